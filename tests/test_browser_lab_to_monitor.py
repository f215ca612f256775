"""Issue 13, done-when: a run started from the schedule lab (its "Train last chosen" button, a small CPU
config) is drawn in a live monitor page open on the same store within 1.5 s of its first row being
committed. Also: the lab's fit on chosen runs of the store runs in the background in a served session
(``components/background.py``) and its result reaches the page.

Both pages are served by one ``workbench serve`` in headless Chromium. The commit time is read from the
store: a thread of the test polls the store file (its own read-only SQLite connection, every 5 ms) for the
new run's first metric row; the commit happened after the start of the last poll that did not see it,
which is taken as the commit time (so the latency is never under-estimated). The monitor page's own
probe (``components/monitor_probe.py``) records, just before a frame is painted, the time each run's row
of a metric's drawn source gets its first point."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import Server, console_errors

from workbench.apps.components.monitor_probe import PROBE_JS

pytestmark = pytest.mark.browser

LIMIT_S = 1.5  # issue 13: a new run appears in an open monitor <= 1.5 s after its first row


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from workbench.store import RunStore

    d = tmp_path_factory.mktemp("lab2mon")
    with RunStore(d / "runs.db") as s:  # one finished run, so the monitor has drawn a figure before
        rid = s.create_run("earlier", task="modular", config={"lr": 1e-3, "seed": 0})
        for step in range(0, 50, 5):
            s.log(rid, step, {"train_loss": 3.0 - 0.02 * step, "test_loss": 3.1 - 0.02 * step})
        s.set_status(rid, "finished")
        from test_apps_schedule_lab import _annealing_runs

        lm = _annealing_runs(s, "lm")  # lm-constant, lm-cosine: lr and train_loss from the LR-annealing law
    srv = Server(d / "runs.db", apps=["schedules", "monitor"])
    srv.earlier, srv.lm = rid, lm
    yield srv
    srv.stop()


class CommitWatch(threading.Thread):
    """Polls the store for the first metric row of a run that had none when the watch was made (the
    server may have imported reference runs too); ``commit`` is then the start time of the last poll that
    saw no such row (the row was committed after it), ``seen`` the time of the poll that saw it."""

    def __init__(self, path: Path, timeout: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.path, self.timeout = path, timeout
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        self.known = {r for (r,) in con.execute("SELECT DISTINCT run FROM metrics")}
        con.close()
        self.run_id: str | None = None
        self.commit = self.seen = None
        self.stop = threading.Event()

    def run(self) -> None:
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        marks = ",".join("?" * len(self.known))
        sql = f"SELECT run FROM metrics WHERE run NOT IN ({marks}) LIMIT 1"
        deadline = time.time() + self.timeout
        last_empty = time.time()
        while not self.stop.is_set() and time.time() < deadline:
            t = time.time()
            row = con.execute(sql, tuple(self.known)).fetchone()
            if row is not None:
                self.run_id, self.commit, self.seen = row[0], last_empty, time.time()
                break
            last_empty = t
            time.sleep(0.005)
        con.close()


FIRST_DRAWN = """(rid) => { const log = (window.__wb || {}).log || {};
    const ts = Object.keys(log).filter(k => k.startsWith('wb-src|' + rid + '|') && log[k].n > 0)
        .map(k => log[k].seen[0][0]);
    return ts.length ? Math.min(...ts) : null; }"""


def test_run_launched_from_the_lab_is_drawn_in_the_monitor_within_1_5_s(served, browser) -> None:
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    monitor, lab = ctx.new_page(), ctx.new_page()
    errors = console_errors(monitor)
    lab_errors = console_errors(lab)
    # the monitor, open and drawn, with its probe installed
    monitor.goto(served.url + "/monitor", wait_until="networkidle", timeout=120_000)
    monitor.wait_for_selector("canvas", timeout=60_000)
    monitor.evaluate(PROBE_JS)
    monitor.wait_for_function("(n) => window.__wb.log[n] !== undefined", arg=f"wb-src|{served.earlier}|train_loss",
                              timeout=60_000)
    # the lab: a 300-step cosine, chosen, trained with the lab's default small CPU config (modular task, MLP)
    lab.goto(served.url + "/schedules", timeout=120_000)
    lab.wait_for_selector("canvas", timeout=60_000)
    box = lab.locator("input.bk-input").first  # total_steps of the generated form
    box.fill("300")
    box.press("Enter")
    lab.wait_for_timeout(500)
    lab.get_by_role("button", name="Add to chosen").click()
    lab.wait_for_selector("text=Added cosine (300 steps)", timeout=30_000)
    watch = CommitWatch(served.store_path)
    watch.start()
    try:
        lab.get_by_role("button", name="Train last chosen").click()
        monitor.bring_to_front()  # the user looks at the monitor (a hidden tab may be throttled)
        lab.wait_for_selector("text=started", timeout=30_000)
        watch.join(120)
        assert watch.run_id is not None, "no row of the launched run reached the store in 120 s"
        rid = watch.run_id
        lab.wait_for_selector(f"text=Run {rid} started", timeout=10_000)  # the run the page says it started
        monitor.wait_for_function(f"(rid) => ({FIRST_DRAWN})(rid) !== null", arg=rid, timeout=30_000, polling=50)
        drawn = monitor.evaluate(FIRST_DRAWN, rid)
    finally:
        watch.stop.set()
    latency = drawn - watch.commit
    print(f"launched run {rid}: first row committed in ({watch.commit:.3f}, {watch.seen:.3f}], drawn in the "
          f"monitor {latency:.3f} s after (at most)")
    assert latency < LIMIT_S, f"drawn {latency:.2f} s after its first row was committed (limit {LIMIT_S} s)"
    assert not errors and not lab_errors, (errors, lab_errors)
    ctx.close()


def test_the_labs_background_fit_reaches_the_page(served, page) -> None:
    errors = console_errors(page)
    page.set_viewport_size({"width": 1500, "height": 1100})
    page.goto(served.url + "/schedules", timeout=120_000)
    page.wait_for_selector("canvas", timeout=60_000)
    pick = page.locator(".wb-fit-pick input").first
    for rid in served.lm:  # the option with this id (the box's search is fuzzy: the first hit may be another)
        pick.click()
        pick.fill(rid)
        page.locator(".choices__list--dropdown .choices__item--choice", has_text=rid).first.click()
        page.wait_for_timeout(300)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Fit multi-power law on the chosen runs").click()
    # the result, delivered on the session's next tick, or an error in the message area
    page.wait_for_selector("text=/Fitted multi_power on 2 run|Fit failed|fit_runs:/", timeout=180_000)
    assert page.locator("text=Fitted multi_power on 2 run(s)").count() >= 1, page.locator(".alert").all_inner_texts()
    button = page.get_by_role("button", name="Fit multi-power law on the chosen runs")
    for _ in range(40):  # the page is freed in the same tick; the browser applies the patch a moment later
        if button.is_enabled() and not page.locator(".wb-fit-spinner").first.is_visible():
            break
        page.wait_for_timeout(250)
    assert button.is_enabled() and not page.locator(".wb-fit-spinner").first.is_visible()
    assert not errors, errors
