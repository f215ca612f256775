"""The live monitor in headless Chromium against `panel serve`: it loads with no console errors,
a widget change changes the figure, points written by another process appear within 2 s, and the
export buttons download a valid PNG and a self-contained HTML file."""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import Server, console_errors

from workbench.apps.live_monitor import PROBE_JS

SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"

pytestmark = pytest.mark.browser

WRITER = textwrap.dedent("""
    import sys, time, math
    from workbench.store import RunStore
    store = RunStore(sys.argv[1])
    rid = store.create_run("live-writer", task="demo", config={"lr": 0.003, "seed": 9})
    store.log(rid, 0, {"train_loss": 3.1, "test_loss": 3.3})
    print("RUN", rid, flush=True)
    sys.stdin.readline()  # wait until the page shows the run, so every commit below is streaming
    n, per = int(sys.argv[2]), float(sys.argv[3])
    with store.writer(rid, every_rows=10**9, every_seconds=10**9) as w:
        for step in range(1, n):
            w.log(step, {"train_loss": 3 * math.exp(-step / 200) + 0.1, "test_loss": 3.3 * math.exp(-step / 250)})
            if step % 5 == 4:
                w.flush()
                print("COMMIT", step, time.time(), flush=True)
                time.sleep(per)
    store.set_status(rid, "finished")
""")


def _fill(path: Path) -> list[str]:
    from workbench.store import RunStore

    ids = []
    with RunStore(path) as s:
        for lr in (1e-3, 1e-2):
            for seed in range(2):
                rid = s.create_run(f"lr{lr}-s{seed}", task="demo", config={"lr": lr, "seed": seed})
                with s.writer(rid) as w:
                    for st in range(2000):
                        w.log(st, {"train_loss": 3 / (1 + st * lr * 3) + 0.02 * math.sin(st),
                                   "test_loss": 3.4 / (1 + st * lr * 2), "train_acc": min(1, st * lr / 2)},
                              tokens=st * 128)
                s.set_status(rid, "finished")
                ids.append(rid)
    return ids



@pytest.fixture(scope="module")
def mon(tmp_path_factory):
    d = tmp_path_factory.mktemp("monitor")
    ids = _fill(d / "runs.db")
    srv = Server(d / "runs.db", apps=["monitor"])
    srv.ids = ids
    yield srv
    srv.stop()


def _open(page, url: str) -> list[str]:
    errors = console_errors(page)
    page.set_viewport_size({"width": 1500, "height": 1000})
    page.goto(url + "/monitor", wait_until="networkidle")
    page.wait_for_selector("canvas", timeout=30_000)
    page.evaluate(PROBE_JS)
    return errors


FIND = """(n) => { const out = []; for (const d of Bokeh.documents) for (const m of d.all_models)
    if (m.name === n && m.data) out.push(m); return out; }"""


def _last_x(page, name: str) -> list[float]:
    """Last drawn x of every source of that name in the page (a rebuild makes a new one)."""
    return page.evaluate(f"(n) => ({FIND})(n).map(m => m.data.x[m.data.x.length - 1])", name)


def test_monitor_loads_and_widget_changes_figure(mon, page) -> None:
    errors = _open(page, mon.url)
    name = f"wb-src|{mon.ids[0]}|train_loss"
    page.wait_for_function("(n) => window.__wb.log[n] !== undefined", arg=name, timeout=20_000)
    assert _last_x(page, name) == [1999]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "monitor.png"), full_page=True)
    # x by tokens: the drawn x values change to step * 128
    page.locator(".wb-xaxis").get_by_text("tokens").click()
    page.wait_for_function(f"(n) => ({FIND})(n).some(m => m.data.x[m.data.x.length - 1] === 1999 * 128)",
                           arg=name, timeout=15_000)
    assert not errors, errors


def test_points_from_another_process_appear_within_2s(mon, page) -> None:
    errors = _open(page, mon.url)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(mon.store_path), "200", "0.15"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        rid = proc.stdout.readline().split()[1]
        name = f"wb-src|{rid}|train_loss"
        page.wait_for_function("(n) => window.__wb.log[n] !== undefined", arg=name, timeout=30_000)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        commits = []
        for line in proc.stdout:
            if line.startswith("COMMIT"):
                _, step, t = line.split()
                commits.append((int(step), float(t)))
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    page.wait_for_function("(n) => window.__wb.log[n] && window.__wb.log[n].max >= 199", arg=name, timeout=10_000)
    seen = page.evaluate("(n) => window.__wb.log[n].seen", name)
    first_seen = seen[0][0]
    lat = []
    for step, t in commits:
        if t < first_seen:  # committed before the run's figure existed (discovery, not streaming)
            continue
        t_draw = next(ts for ts, st, _ in seen if st >= step)
        lat.append(t_draw - t)
    assert len(lat) >= 20, (len(lat), len(commits))
    lat.sort()
    assert lat[int(0.95 * (len(lat) - 1))] < 2.0, lat[-5:]  # p95: one stall of a loaded 2-core CI box is not a fail
    assert not errors, errors


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_export_png_and_html(mon, page, tmp_path) -> None:
    errors = _open(page, mon.url)
    with page.expect_download(timeout=60_000) as dl:
        page.locator(".wb-export-png button").click()
    png = Path(dl.value.path()).read_bytes()
    w, h = _png_size(png)
    assert w >= 300 and h >= 200 and len(png) > 10_000
    assert dl.value.suggested_filename == "monitor.png"
    with page.expect_download(timeout=60_000) as dl:
        page.locator(".wb-export-html button").click()
    html = Path(dl.value.path()).read_text()
    assert html.lower().startswith("<!doctype html>") and "Plotly.newPlot" in html and "live monitor" in html
    assert not errors, errors
