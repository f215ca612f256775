"""Live-monitor latency and memory in a real browser (headless Chromium against `panel serve`).

Fills a fresh store with ``--runs`` running runs of ``--points`` train_loss points each, serves the
live monitor, opens it in Chromium, and starts ANOTHER PROCESS that appends one step to every run
every ``--interval`` seconds (one transaction per step, printing the commit time). In the page,
``workbench.apps.live_monitor.PROBE_JS`` records, once per animation frame, when each run's newest
step is in its Bokeh source (i.e. drawn in the next paint). Latency = time seen in the page - commit
time (same machine, same clock). The browser's live JS heap (``performance.memory`` right after a forced
garbage collection) is sampled every ``--sample`` seconds to show whether memory stays flat.

    python bench/dashboard_bench.py                    # goal setting: 64 runs x 1e5 points, 5 minutes
    python bench/dashboard_bench.py --runs 8 --points 20000 --minutes 0.5   # quick
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
from workbench.apps.live_monitor import PROBE_JS  # noqa: E402
from workbench.store import RunStore  # noqa: E402

WRITER = textwrap.dedent("""
    import sys, time, math
    from workbench.store import RunStore
    store = RunStore(sys.argv[1])
    ids = sys.argv[4].split(",")
    step, interval, end = int(sys.argv[2]), float(sys.argv[3]), time.time() + float(sys.argv[5])
    while time.time() < end:
        store.log_many([(r, step, None, time.time(), "train_loss", 1.0 + 0.5 * math.sin(step / 50 + i))
                        for i, r in enumerate(ids)])
        print("COMMIT", step, time.time(), flush=True)
        step += 1
        time.sleep(interval)
""")


# live JS heap: collect garbage first (Chromium started with --expose-gc), so samples are comparable
HEAP_JS = "() => { if (window.gc) window.gc(); return performance.memory.usedJSHeapSize; }"


def fill(path: Path, runs: int, points: int) -> list[str]:
    store = RunStore(path)
    ids = []
    rng = np.random.default_rng(0)
    steps = np.arange(points)
    t0 = time.time() - points * 0.01
    for i in range(runs):
        rid = store.create_run(f"bench-{i:02d}", task="bench", config={"lr": float(10 ** rng.uniform(-4, -2)),
                                                                        "seed": i % 4})
        vals = 3.0 / (1 + steps * 1e-3) + rng.normal(scale=0.02, size=points)
        rows = [(int(s), None, t0 + s * 0.01, "train_loss", float(v), None) for s, v in zip(steps, vals)]
        store.log_rows(rid, rows)
        ids.append(rid)
    store.close()
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between appended steps")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between heap samples")
    a = ap.parse_args(argv)
    if a.runs < 1 or a.points < 1 or a.minutes <= 0:
        ap.error("--runs, --points must be >= 1 and --minutes > 0")
    from playwright.sync_api import sync_playwright

    d = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    db = d / "runs.db"
    t = time.time()
    ids = fill(db, a.runs, a.points)
    print(f"filled {a.runs} runs x {a.points} points in {time.time() - t:.1f} s")
    port = free_port()
    env = {**os.environ, "WORKBENCH_STORE": str(db)}
    log = open(d / "serve.log", "w")
    srv = subprocess.Popen(serve_command(port=port, apps=["monitor"]), env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True, cwd=ROOT)
    writer = None
    try:
        url = f"http://127.0.0.1:{port}"
        # wait until the server listens; a GET of a page would build a (slow, 64-run) session per retry
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
                                        "--enable-precise-memory-info", "--js-flags=--expose-gc"])
            page = b.new_page(viewport={"width": 1500, "height": 1000})
            t = time.time()
            page.goto(url + "/monitor", wait_until="networkidle", timeout=600_000)
            page.wait_for_selector("canvas", timeout=600_000)
            page.evaluate(PROBE_JS)
            page.wait_for_function("Object.keys(window.__wb.log).length > 0", timeout=600_000)
            load_s = time.time() - t
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(a.points), str(a.interval),
                                       ",".join(ids), str(a.minutes * 60)], stdout=subprocess.PIPE, text=True,
                                      cwd=ROOT)
            heap = []
            t_start = time.time()
            while writer.poll() is None:
                heap.append((time.time() - t_start, page.evaluate(HEAP_JS) / 2**20))
                page.wait_for_timeout(int(a.sample * 1000))
            commits = [(int(s), float(tc)) for line in writer.stdout if line.startswith("COMMIT")
                       for _, s, tc in [line.split()]]
            page.wait_for_timeout(3000)
            heap.append((time.time() - t_start, page.evaluate(HEAP_JS) / 2**20))
            seen = page.evaluate("window.__wb.dump()")
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
    for rid in ids:
        rec = seen.get(f"wb-src|{rid}|train_loss", {"seen": []})["seen"]
        for step, tc in commits:
            hit = next((ts for ts, st, _ in rec if st >= step), None)
            if hit is None:
                missed += 1
            else:
                lat.append(hit - tc)
    lat = np.array(lat)
    print(f"\nlive monitor: {a.runs} runs x {a.points:,} points, {len(commits)} appended steps per run over "
          f"{a.minutes:g} min (one step every {a.interval} s), page load {load_s:.1f} s")
    print(f"{'metric':<34}{'value':>12}")
    print(f"{'commit -> drawn latency p50 (s)':<34}{np.percentile(lat, 50):>12.3f}")
    print(f"{'commit -> drawn latency p95 (s)':<34}{np.percentile(lat, 95):>12.3f}")
    print(f"{'commit -> drawn latency max (s)':<34}{lat.max():>12.3f}")
    print(f"{'points never drawn':<34}{missed:>12d}")
    print(f"{'p95 / goal (1 s)':<34}{np.percentile(lat, 95) / 1.0:>12.2f}")
    print("\nbrowser JS heap over time")
    print(f"{'t (s)':>8}{'heap (MiB)':>12}{'ratio to first':>16}")
    for ts, mb in heap:
        print(f"{ts:>8.0f}{mb:>12.1f}{mb / heap[0][1]:>16.2f}")
    t_, m_ = np.array(heap).T
    # samples still catch messages in flight (spikes); the retained heap is the floor: the minimum of
    # each 30 s window after a 30 s warm-up, and its linear trend
    wins = [(w, m_[(t_ >= w) & (t_ < w + 30)].min()) for w in range(30, int(t_.max()) - 29, 30)]
    if len(wins) >= 2:
        w_t, w_m = np.array(wins).T
        slope = np.polyfit((w_t + 15) / 60, w_m, 1)[0]
        data_mb = len(commits) * a.runs * 4 * 8 / 2**20 / a.minutes  # the appended points (4 float64 columns)
        print(f"heap floor per 30 s window (MiB): {' '.join(f'{v:.1f}' for v in w_m)}")
        print(f"heap floor trend {slope:+.2f} MiB/min; the appended points themselves add {data_mb:.2f} MiB/min")
    # the monitor re-decimates a series once it has grown by a quarter, so the heap is a sawtooth: compare
    # its lowest point in the first and in the last 100 s (each holds at least one re-decimation)
    first, last = m_[(t_ >= 30) & (t_ < 130)], m_[t_ >= t_.max() - 100]
    if len(first) and len(last):
        print(f"heap minimum, first 100 s (after 30 s) vs last 100 s: {first.min():.1f} vs {last.min():.1f} MiB "
              f"(ratio {last.min() / first.min():.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
