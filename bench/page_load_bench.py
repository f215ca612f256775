"""Cold and warm page loads of every dashboard page with the reference store, in a real browser (headless
Chromium against ``workbench serve``), as a table.

The store is a fresh one with the reference runs and sweeps (``make reference``, ``data/reference``)
imported, as ``workbench serve`` does on first start. For each repetition and each page (the order
shuffled per repetition, so pages are measured interleaved): a NEW server is started (``--apps`` all),
the page is opened once (cold: the first visit after ``make serve``, in a browser context with an empty
cache) and then ``--warm`` more times in new tabs of the same browser context (warm: a user coming back to
the page, whose browser has Panel's, Bokeh's and plotly's scripts cached, as any browser does;
``--fresh-context`` opens each warm load in a new, empty context instead, i.e. re-downloads and
re-compiles every script on every load). A load is timed from navigation until the
page's content is drawn: the index lists the apps; a dashboard page has its app's content in the DOM and
Bokeh's document idle (``Bokeh.documents[0].is_idle``) with a figure drawn (a plotly plot or a Bokeh
canvas), or, for a page whose first view is a table (``CONTENT``: the runs page, whose figure appears once
runs are selected), that table's rows drawn. Each tab then stays open ``--dwell`` seconds (2, untimed; a
visit) before it is closed: a page sends its first view and adds the rest once the browser reports it loaded
(the monitor's other panels and display options, the export controls), and with the tab closed at the
instant of first paint that deferred work ran in the server while the *next* load was being timed (the
monitor's warm loads then measured slower than its cold ones: 1.31-1.83 s against 1.29-1.37 s). The
machine's load average is printed with the table (the machine may be shared).

    python bench/page_load_bench.py                # 3 repetitions, 2 warm loads each
    python bench/page_load_bench.py --reps 1 --warm 1 --pages schedules laws

Goals (issue 13, on 2 cores): cold <= 3 s, warm <= 1.5 s for every page.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
GOALS = {"cold": 3.0, "warm": 1.5}

CONTENT = {"runs": ".tabulator-row"}  # pages whose first view shows no figure: what is drawn
DRAWN = """(sel) => { const B = window.Bokeh; if (!B || !B.documents || !B.documents.length) return false;
    const d = B.documents[0]; if (d.is_idle === false) return false;
    const roots = document.querySelectorAll('.bk-Column, .bk-Row, .bk-panel-models-layout-Column');
    const deep = (root, sel) => { if (root.querySelector(sel)) return true;
        for (const el of root.querySelectorAll('*')) if (el.shadowRoot && deep(el.shadowRoot, sel)) return true;
        return false; };
    return roots.length > 0 && (sel ? deep(document, sel)
                                : (deep(document, '.js-plotly-plot .main-svg') || deep(document, 'canvas'))); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s")


class Server:
    def __init__(self, store: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "a")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", str(self.port),
                                      "--store", str(store)], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        wait_http(self.url + "/")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def load(ctx, url: str, page_name: str, timeout: float, shot: Path | None = None, dwell: float = 0.0) -> float:
    """One load of ``url`` in a new tab of the browser context ``ctx``; the tab stays open ``dwell`` seconds
    after it is drawn (not timed) before it is closed."""
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=timeout * 1000)
    if page_name == "index":
        page.wait_for_selector("text=Schedule lab", timeout=timeout * 1000)
    else:
        page.wait_for_function(DRAWN, arg=CONTENT.get(page_name), timeout=timeout * 1000, polling=50)
    dt = time.perf_counter() - t0
    if shot is not None:
        page.wait_for_timeout(500)
        page.screenshot(path=str(shot), full_page=True)
    if dwell > 0:
        page.wait_for_timeout(dwell * 1000)
    page.close()
    return dt


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    from workbench.apps import APPS
    from workbench.reference import ensure_reference_runs
    from workbench.store import RunStore

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warm", type=int, default=2)
    ap.add_argument("--pages", nargs="+", default=["index", *APPS])
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--screenshots", type=Path, help="save one screenshot per page (warm) in this folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dwell", type=float, default=2.0,
                    help="seconds each tab stays open after it is drawn (a visit), before the next load")
    ap.add_argument("--fresh-context", action="store_true",
                    help="each warm load in a new, empty browser context (no cached scripts)")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="wb-pageload-"))
    store = tmp / "runs.db"
    with RunStore(store) as s:
        n = ensure_reference_runs(s)
        n_sweeps = len(s.sweeps())
    print(f"reference store: {n} runs, {n_sweeps} sweeps ({store})", flush=True)
    times: dict[str, dict[str, list[float]]] = {p: {"cold": [], "warm": []} for p in a.pages}
    rng = random.Random(a.seed)
    load0 = os.getloadavg()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for rep in range(a.reps):
            order = list(a.pages)
            rng.shuffle(order)
            for name in order:
                srv = Server(store, tmp / "serve.log")
                contexts = [browser.new_context(viewport={"width": 1500, "height": 1000})]
                try:
                    url = srv.url + ("/" if name == "index" else f"/{name}")
                    times[name]["cold"].append(load(contexts[0], url, name, a.timeout, dwell=a.dwell))
                    for w in range(a.warm):
                        shot = (a.screenshots / f"{name}.png" if a.screenshots and rep == a.reps - 1
                                and w == a.warm - 1 else None)
                        if shot is not None:
                            shot.parent.mkdir(parents=True, exist_ok=True)
                        if a.fresh_context:
                            contexts.append(browser.new_context(viewport={"width": 1500, "height": 1000}))
                        times[name]["warm"].append(load(contexts[-1], url, name, a.timeout, shot, dwell=a.dwell))
                finally:
                    for ctx in contexts:
                        ctx.close()
                    srv.stop()
                print(f"rep {rep + 1}: {name:10s} cold {times[name]['cold'][-1]:.2f} s, warm "
                      + ", ".join(f"{t:.2f}" for t in times[name]["warm"][-a.warm:]) + " s", flush=True)
        browser.close()
    load1 = os.getloadavg()

    def med(v: list[float]) -> float:
        v = sorted(v)
        return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])

    print(f"\npage loads, {a.reps} repetitions x (1 cold + {a.warm} warm"
          f"{', each warm in a fresh browser context' if a.fresh_context else ', warm with the browser cache'}), median [min, max] in seconds; "
          f"goal cold <= {GOALS['cold']} s, warm <= {GOALS['warm']} s; {os.cpu_count()} CPUs, "
          f"load average {load0[0]:.1f} at start, {load1[0]:.1f} at end")
    print(f"{'page':10s} {'cold':>22s} {'cold/goal':>10s} {'warm':>22s} {'warm/goal':>10s}")
    for name in a.pages:
        row = [f"{name:10s}"]
        for kind in ("cold", "warm"):
            v = times[name][kind]
            row.append(f"{med(v):6.2f} [{min(v):5.2f}, {max(v):5.2f}]".rjust(22))
            row.append(f"{med(v) / GOALS[kind]:10.2f}")
        print(" ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
