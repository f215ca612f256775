"""Live-monitor latency, completeness, page load and memory in a real browser (headless Chromium
against `panel serve`).

Fills a fresh store with ``--runs`` running runs of ``--points`` train_loss points each, serves the
live monitor, opens it in Chromium (page load: navigation until every run's newest step is drawn),
and starts ANOTHER PROCESS that appends one step to every run ``--rate`` times a second (one
transaction per step, printing the commit time). Half-way through it starts one more run (how long a
new run takes to appear, issue 13). In the page, ``workbench.apps.components.monitor_probe.PROBE_JS`` records,
once per animation frame, when each run's newest step is in its source (drawn in the next paint).
Latency = time seen in the page - commit time (same machine, same clock). The browser's live JS heap
(``performance.memory`` right after a forced garbage collection) is sampled every ``--sample`` seconds;
its floor (minimum per 30 s window) must not grow over the last 3 minutes. A sample may catch a tick's
message and its decoded arrays still referenced by BokehJS (a few MiB at 64-256 runs), so one sample is
not the retained heap; the minimum of a window is, when the window has enough samples: at the old 10 s
interval a window had 3 and its floor swung by 13 MiB at 64 runs (27-41 MiB, no trend), at 3 s it has 10. ``--bands`` opens the page
grouped by ``cfg.seed`` with a mean line and band per group, and measures the bands' latency instead.
A second page load afterwards is the warm load. The machine's load average is printed with the table.

The issue's sizes (issue 14; each fills a fresh store; run on a quiet machine, one at a time; the
load average is printed before and after):

    python bench/dashboard_bench.py --runs 64 --points 100000 --minutes 5 --rate 20           # 64 runs x 1e5
    python bench/dashboard_bench.py --runs 256 --points 100000 --minutes 5 --rate 20          # 256 runs x 1e5
    python bench/dashboard_bench.py --runs 256 --points 100000 --minutes 5 --rate 20 --bands  # group bands
    python bench/dashboard_bench.py --runs 8 --points 20000 --minutes 0.5   # smoke (make bench)

Five minutes, so that the heap floor is compared over the last 3 minutes (30 s windows after a 30 s
warm-up). ``--store PATH`` fills PATH on the first call and reuses it on later ones (same ``--runs``):
only a store this bench filled is accepted.

The store is filled by SQL (rows generated in SQLite, then summarised by the store's own block upsert),
not row by row through ``log_rows``: 2.6e7 rows would take minutes. The appended steps go through
``RunStore.log_many`` as a training process's writes do.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.apps import serve_command  # noqa: E402
from workbench.apps.components.monitor_probe import PROBE_JS  # noqa: E402
from workbench.store import RunStore  # noqa: E402

WRITER = textwrap.dedent("""
    import sys, time, math
    from workbench.store import RunStore
    store = RunStore(sys.argv[1])
    ids = sys.argv[4].split(",")
    step, interval, t0 = int(sys.argv[2]), float(sys.argv[3]), time.time()
    end, new_at, new = t0 + float(sys.argv[5]), t0 + float(sys.argv[5]) / 2, None
    k = 0
    while time.time() < end:
        if new is None and time.time() >= new_at:
            new = store.create_run("bench-new", task="bench", config={"lr": 1e-3, "seed": 0})
            ids.append(new)
            first = True
        store.log_many([(r, step, None, time.time(), "train_loss", 1.0 + 0.5 * math.sin(step / 50 + i))
                        for i, r in enumerate(ids)])
        tc = time.time()
        print("COMMIT", step, tc, flush=True)
        if new is not None and first:
            print("NEWRUN", new, tc, flush=True)
            first = False
        step += 1
        k += 1
        time.sleep(max(0.0, t0 + k * interval - time.time()))  # a steady rate, not interval + write time
""")


# live JS heap: collect garbage first (Chromium started with --expose-gc; twice: objects freed by the first
# collection's finalizers go in the second), so samples are comparable; --enable-precise-memory-info makes
# performance.memory exact (without it Chromium rounds it to coarse steps and updates it only now and then)
HEAP_JS = "() => { if (window.gc) { window.gc(); window.gc(); } return performance.memory.usedJSHeapSize; }"


def fill(path: Path, runs: int, points: int) -> list[str]:
    """Runs of ``points`` train_loss rows each (a noisy 1/t decay), generated inside SQLite."""
    from workbench.store import _update_blocks

    store = RunStore(path)
    ids = []
    rng = np.random.default_rng(0)
    t0 = time.time() - points * 0.01
    for i in range(runs):
        rid = store.create_run(f"bench-{i:03d}", task="bench", config={"lr": float(10 ** rng.uniform(-4, -2)),
                                                                         "seed": i % 4})
        with store._write() as conn:
            before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM metrics").fetchone()[0]
            conn.execute("WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?2 - 1) "
                         "INSERT INTO metrics (run, step, tokens, wall, name, value) SELECT ?1, i, NULL, ?3 + i * 0.01, "
                         "'train_loss', 3.0 / (1 + i * 1e-3) + (random() % 1000) / 25000.0 FROM s",
                         (rid, points, t0))
            _update_blocks(conn, before)
        ids.append(rid)
    store.close()
    return ids


def adopt(path: Path, runs: int) -> list[str]:
    """The bench runs of an earlier fill, marked running again by this process (the old writer is gone).

    Only a store this bench filled is reused: a run of another task refuses the store (the page would
    show it, and its rows would be tailed and drawn, so the numbers would not be this bench's). The bench
    runs beyond ``runs`` (an earlier, larger fill; the extra run of each earlier call) are marked
    ``interrupted``, a status the page does not show by default, so the page shows exactly ``runs`` runs."""
    store = RunStore(path, mark_interrupted=False)
    df = store.runs()
    foreign = df[df["task"] != "bench"]
    if len(foreign):
        store.close()
        raise SystemExit(f"dashboard_bench: error: --store {path}: {len(foreign)} run(s) not made by this bench "
                         f"(e.g. {foreign['name'].iloc[0]!r}); give a store filled by it, or omit --store")
    ids = [r for r, n in zip(df["id"], df["name"]) if n != "bench-new"][:runs]
    if len(ids) < runs:
        store.close()
        raise SystemExit(f"dashboard_bench: error: --store {path} holds {len(ids)} bench runs, --runs is {runs}")
    for r in df["id"]:
        if r not in ids:
            store.set_status(r, "interrupted")
    for r in ids:
        store.claim(r)
    store.close()
    return ids


def ids_last_step(path: Path, ids: list[str]) -> int:
    store = RunStore(path, mark_interrupted=False)
    (s,), = store._query(f"SELECT MIN(mx) FROM (SELECT MAX(step) AS mx FROM metrics WHERE run IN "
                         f"({','.join('?' * len(ids))}) AND name = 'train_loss' GROUP BY run)", ids)
    store.close()
    return int(s)


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_by_root() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used: user + system) of every process (Linux /proc)."""
    out, tck = {}, os.sysconf("SC_CLK_TCK")
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(d)] = (int(f[1]), (int(f[11]) + int(f[12])) / tck)
    return out


def tree_cpu(root: int, exclude: tuple[int, ...] = ()) -> float:
    """CPU seconds used by the living processes under ``root`` (itself excluded), but not under ``exclude``:
    the server's tree, or the browser's (this process's children less the server and the writer). A
    measure of the work a tick costs that, unlike latency, hardly depends on what else the machine runs."""
    procs = _cpu_by_root()
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [k for k in kids.get(root, []) if k not in exclude]
    while todo:
        pid = todo.pop()
        total += procs[pid][1]
        todo += [k for k in kids.get(pid, []) if k not in exclude]
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drawn_all(page, keys: list[str], step: int, timeout_s: float) -> float:
    """Seconds until every probe key has drawn ``step`` (page already navigated and probed)."""
    t = time.time()
    page.wait_for_function("([ks, s]) => ks.every(k => window.__wb.log[k] && window.__wb.log[k].max >= s)",
                           arg=[keys, step], timeout=int(timeout_s * 1000), polling=50)
    return time.time() - t


def _open(page, url: str, keys: list[str], step: int) -> float:
    """Page load: navigation until every run (or group) shows its newest step."""
    t = time.time()
    page.goto(url, wait_until="commit", timeout=600_000)
    page.wait_for_function("() => window.Bokeh && window.Bokeh.documents && window.Bokeh.documents.length > 0",
                           timeout=600_000, polling=50)
    page.evaluate(PROBE_JS)
    _drawn_all(page, keys, step, 600)
    return time.time() - t


def _latencies(rec: list, commits: list[tuple[int, float]]) -> tuple[np.ndarray, int]:
    """Per commit, seconds until a drawn step >= it (the probe's records have increasing steps)."""
    if not rec:
        return np.empty(0), len(commits)
    ts, st = np.array([r[0] for r in rec]), np.array([r[1] for r in rec])
    steps = np.array([s for s, _ in commits])
    tc = np.array([t for _, t in commits])
    i = np.searchsorted(st, steps)  # first record with a step >= the committed one
    ok = i < st.size
    return ts[i[ok]] - tc[ok], int((~ok).sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=20.0, help="steps appended to every run per second")
    ap.add_argument("--bands", action="store_true", help="open grouped by cfg.seed with mean + band per group")
    ap.add_argument("--sample", type=float, default=3.0,
                    help="seconds between heap samples (10 per 30 s window: its minimum is the floor)")
    ap.add_argument("--screenshot", type=Path, default=None, help="save a PNG of the page at the end")
    ap.add_argument("--store", type=Path, default=None,
                    help="store file: filled when absent, else reused (it must hold only this bench's runs)")
    a = ap.parse_args(argv)
    if a.runs < 1 or a.points < 1 or a.minutes <= 0 or a.rate <= 0:
        ap.error("--runs, --points must be >= 1, --minutes and --rate > 0")
    from playwright.sync_api import sync_playwright

    print(f"load average before: {load_avg()}")
    d = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    db = d / "runs.db" if a.store is None else a.store
    t = time.time()
    if a.store is not None and a.store.exists():
        ids = adopt(db, a.runs)
        print(f"reusing {db}: {len(ids)} runs, newest step {ids_last_step(db, ids)}")
    else:
        ids = fill(db, a.runs, a.points)
        print(f"filled {a.runs} runs x {a.points} points in {time.time() - t:.1f} s (store {db})")
    port = free_port()
    env = {**os.environ, "WORKBENCH_STORE": str(db)}
    log = open(d / "serve.log", "w")
    srv = subprocess.Popen(serve_command(port=port, apps=["monitor"]), env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True, cwd=ROOT)
    path = "/monitor" + ("?color_by=cfg.seed&bands=1&band=quartiles" if a.bands else "")
    groups = sorted({i % 4 for i in range(a.runs)})
    keys = ([f"wb-grp|{g}|train_loss" for g in groups] if a.bands else [f"wb-src|{r}|train_loss" for r in ids])
    writer = None
    try:
        url = f"http://127.0.0.1:{port}"
        # wait until the server listens; a GET of a page would build a session per retry
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                urllib.request.urlopen(url + "/static/extensions/panel/css/loading.css", timeout=5)
                break
            except Exception:
                time.sleep(0.3)
        chromium = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium, headless=True,
                                  args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                        "--disable-background-networking", "--disable-component-update",
                                        "--disable-sync", "--enable-precise-memory-info", "--js-flags=--expose-gc"])
            ctx = b.new_context(viewport={"width": 1500, "height": 1000})
            page = ctx.new_page()
            load_cold = _open(page, url + path, keys, ids_last_step(db, ids))
            wlog = open(d / "writer.log", "w")  # a file, not a pipe: a full pipe would stall the writer
            first_step = max(a.points, ids_last_step(db, ids) + 1)
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(first_step), str(1.0 / a.rate),
                                       ",".join(ids), str(a.minutes * 60)], stdout=wlog, text=True,
                                      cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            heap = []
            t_start = time.time()
            cpu0 = (tree_cpu(srv.pid) + _cpu_by_root()[srv.pid][1], tree_cpu(os.getpid(), (srv.pid, writer.pid)))
            while writer.poll() is None:
                heap.append((time.time() - t_start, page.evaluate(HEAP_JS) / 2**20))
                page.wait_for_timeout(int(a.sample * 1000))
            cpu1 = (tree_cpu(srv.pid) + _cpu_by_root()[srv.pid][1], tree_cpu(os.getpid(), (srv.pid, writer.pid)))
            cpu = [(b - a) / (time.time() - t_start) for a, b in zip(cpu0, cpu1)]
            wlog.close()
            lines = [ln.split() for ln in (d / "writer.log").read_text().splitlines()]
            commits = [(int(x[1]), float(x[2])) for x in lines if len(x) == 3 and x[0] == "COMMIT"]
            newrun = [(x[1], float(x[2])) for x in lines if len(x) == 3 and x[0] == "NEWRUN"]
            page.wait_for_timeout(3000)
            heap.append((time.time() - t_start, page.evaluate(HEAP_JS) / 2**20))
            seen = page.evaluate("window.__wb.dump()")
            if a.screenshot is not None:
                page.screenshot(path=str(a.screenshot), full_page=True)
            page.close()
            warm = ctx.new_page()
            last = commits[-1][0] if commits else a.points - 1
            load_warm = _open(warm, url + path, keys, last)
            b.close()
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
        os.killpg(srv.pid, 15)
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:  # a server busy in a callback ignores SIGTERM for a while
            os.killpg(srv.pid, 9)
            srv.wait(10)
        log.close()
    lat, missed = [], 0
    for k in keys:
        lk, mk = _latencies(seen.get(k, {"seen": []})["seen"], commits)
        lat.append(lk)
        missed += mk
    lat = np.concatenate(lat) if lat else np.empty(0)
    new_s = float("nan")
    if newrun and not a.bands:
        rec = seen.get(f"wb-src|{newrun[0][0]}|train_loss", {"seen": []})["seen"]
        if rec:
            new_s = rec[0][0] - newrun[0][1]
    t_, m_ = np.array(heap).T
    # samples still catch messages in flight (spikes); the retained heap is the floor: the minimum of each
    # 30 s window after a 30 s warm-up. Growth: the last window's floor over the floor 3 minutes before it
    wins = [(w, m_[(t_ >= w) & (t_ < w + 30)].min()) for w in range(30, int(t_.max()) - 29, 30)]
    growth, span = float("nan"), 0.0
    if len(wins) >= 2:
        w_t, w_m = np.array(wins).T
        j = int(np.searchsorted(w_t, w_t[-1] - 180))
        growth, span = w_m[-1] / w_m[j] - 1, (w_t[-1] - w_t[j]) / 60
    view = "group bands (cfg.seed, quartiles)" if a.bands else "every run"
    print(f"\nlive monitor, {view}: {a.runs} runs x {a.points:,} points, {len(commits)} steps appended to every run "
          f"at {a.rate:g}/s over {a.minutes:g} min; load average after: {load_avg()}")
    p95 = np.percentile(lat, 95) if lat.size else float("nan")
    rows = [
        ("page load, cold (s)", load_cold, 3.0),
        ("page load, warm (s)", load_warm, 1.5),
        ("commit -> drawn p50 (s)", np.percentile(lat, 50) if lat.size else float("nan"), None),
        ("commit -> drawn p95 (s)", p95, 1.0),
        ("commit -> drawn max (s)", lat.max() if lat.size else float("nan"), None),
        ("points never drawn", missed, 0),
        ("new run: first row -> drawn (s)", new_s, 1.5),
        (f"heap floor growth, last {span:.1f} min", growth, 0.10),
        ("server CPU while writing (cores)", cpu[0], None),
        ("browser CPU while writing (cores)", cpu[1], None),
    ]
    print(f"{'metric':<38}{'value':>10}{'goal':>8}{'value/goal':>12}")
    for name, v, goal in rows:
        g = "" if goal is None else f"{goal:g}"
        r = "" if not goal else f"{v / goal:.2f}"
        print(f"{name:<38}{v:>10.3f}{g:>8}{r:>12}" if isinstance(v, float) else f"{name:<38}{v:>10d}{g:>8}{r:>12}")
    print("\nbrowser JS heap (MiB) after GC, per sample: " + " ".join(f"{m:.0f}" for m in m_))
    if wins:
        print("heap floor per 30 s window (MiB): " + " ".join(f"{v:.1f}" for _, v in wins))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
