"""The live monitor's forecast overlay: a running run gets its forecast line and 95 % band ahead of its
loss curve (one band source per metric, a row per running run), and a run whose rows jump out of the band
gets the flag written at the end of its curve; finished runs get none. Browser test: the same in Chromium
against `workbench serve` (forecasts from the server's worker process). Screenshot:
docs/screenshots/monitor_forecast.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.store import RunStore

SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def _fill(path: Path) -> tuple[RunStore, str, str, str]:
    st = RunStore(path)
    rng = np.random.default_rng(0)
    steps = np.arange(10, 810, 10)
    noisy = 2 + 3 * steps ** -0.5 + rng.normal(0, 0.01, len(steps))
    ids = []
    for name in ("off-track", "on-track", "done"):
        rid = st.create_run(name, task="digits", config={"steps": 1600, "lr": 1e-3})
        with st.writer(rid) as w:
            for s, v in zip(steps, noisy):
                w.log(int(s), {"train_loss": float(v)}, tokens=64 * int(s))
        ids.append(rid)
    st.set_status(ids[2], "finished")
    return st, *ids


def _jump(st: RunStore, rid: str, start: int = 810, n: int = 5) -> None:
    with st.writer(rid) as w:
        for s in range(start, start + 10 * n, 10):
            w.log(s, {"train_loss": 2 + 3 * s ** -0.5 + 0.3}, tokens=64 * s)


def test_band_for_running_runs_and_flag_for_a_jump(tmp_path, one_torch_thread):
    from workbench.apps.live_monitor import LiveMonitor

    st, off, on, done = _fill(tmp_path / "runs.db")
    _jump(st, off)
    app = LiveMonitor(store_path=str(st.path), metrics=["train_loss"])
    ov = app.figs.overlays[-1]
    assert ov.refresh() == 2                                    # the two running runs, not the finished one
    ov.update(app.figs)
    (src, lbl), = [v for (p, m), v in ov.sources.items() if m == "train_loss"]
    d = dict(src.data)
    assert sorted(d["run"]) == sorted([off, on])
    i = d["run"].index(on)
    xs, ys = np.asarray(d["xs"][i]), np.asarray(d["ys"][i])
    fc = ov.results[(on, "train_loss")]
    assert fc.steps[-1] == 1600 and xs[0] == fc.anchor                  # forecast from the prefix to the run's end,
    assert xs[-1] == fc.steps[fc.steps <= 1.5 * 800][-1]                # drawn half the run's length ahead
    assert app.figs.x_range.end >= xs[-1]                               # and the shared x range shows it
    bx, by = np.asarray(d["bxs"][i]), np.asarray(d["bys"][i])
    n = len(xs)
    np.testing.assert_array_equal(bx, np.r_[xs, xs[::-1]])
    assert np.all(by[:n] > ys) and np.all(by[n:][::-1] < ys)   # the polygon: upper edge out, lower edge back
    assert d["flag"][d["run"].index(off)] == "above forecast since step 810" and d["flag"][i] == ""
    assert dict(lbl.data)["text"] == ["above forecast since step 810"]
    assert dict(lbl.data)["x"] == [850.0] and dict(lbl.data)["align"] == ["left"]  # at its end, into the room ahead
    app.x_axis = "tokens"                                       # x follows the axis: tokens = 64 x step here
    ov.update(app.figs)
    (src, _), = [v for (p, m), v in ov.sources.items() if m == "train_loss"]
    np.testing.assert_allclose(np.asarray(src.data["xs"][src.data["run"].index(on)]), 64 * xs)


def test_forecast_glyphs_only_once_a_shown_run_is_running(tmp_path):
    """A page of finished runs gets no forecast glyphs (nor the forecast thread); a run that starts
    later gets them on the open figures, without a rebuild."""
    from workbench.apps.live_monitor import LiveMonitor

    st, off, on, done = _fill(tmp_path / "runs.db")
    for r in (off, on):
        st.set_status(r, "finished")
    app = LiveMonitor(store_path=str(st.path), metrics=["train_loss"])
    ov = app.figs.overlays[-1]
    (panel, (fig, _)), = app.figs.figs.items()
    n_renderers = len(fig.renderers)
    assert ov.sources == {} and [p for _, p, _ in ov.pending] == [panel]
    new = st.create_run("late", task="digits", config={"steps": 1600, "lr": 1e-3})
    with st.writer(new) as w:
        for s in range(10, 200, 10):
            w.log(s, {"train_loss": 2 + 3 * s ** -0.5}, tokens=64 * s)
    app.tick()
    assert new in app.runs and app.figs.figs[panel][0] is fig            # joined the open figure
    assert list(ov.sources) == [(panel, "train_loss")] and ov.pending == []
    assert len(fig.renderers) == n_renderers + 3                         # band, line and flag glyphs



@pytest.mark.browser
@pytest.mark.slow
def test_monitor_draws_the_band_and_flags_a_run_forced_off_it(tmp_path, browser):
    # pytest-playwright's session browser (conftest's launch args): a second sync_playwright() in the
    # same process fails once another browser test has started the plugin's event loop
    from conftest import Server, console_errors

    st, off, on, done = _fill(tmp_path / "runs.db")
    srv = Server(tmp_path / "runs.db", apps=["monitor"])
    rows = """(m) => { let out = null; for (const d of Bokeh.documents) for (const x of d.all_models)
                 if (x.name === m && x.data && x.data.run) out = {run: Array.from(x.data.run),
                 flag: Array.from(x.data.flag), n: Array.from(x.data.xs).map(a => a.length)}; return out; }"""
    page = None
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = console_errors(page)
        page.goto(srv.url + "/monitor", timeout=120_000)
        page.wait_for_selector("select", timeout=60_000)
        page.locator("select").nth(1).select_option("digits")  # the task filter: this test's runs only
        page.wait_for_function(f"() => {{ const r = ({rows})('wb-fc|train_loss'); return r && r.run.length === 2; }}",
                               timeout=180_000)               # the worker process's first fits
        got = page.evaluate(rows, "wb-fc|train_loss")
        assert sorted(got["run"]) == sorted([off, on]) and min(got["n"]) > 10 and not any(got["flag"])
        _jump(st, off)                                        # forced off its forecast
        page.wait_for_function(f"() => ({rows})('wb-fc|train_loss').flag.some(f => f.startsWith('above'))",
                               timeout=120_000)
        got = page.evaluate(rows, "wb-fc|train_loss")
        assert got["flag"][got["run"].index(off)] == "above forecast since step 810"
        assert got["flag"][got["run"].index(on)] == ""
        page.wait_for_timeout(800)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "monitor_forecast.png"))
        assert not errors
    finally:
        if page is not None:
            page.close()
        srv.stop()
        st.close()


def test_monitor_lists_forks_under_their_parent(tmp_path):
    from workbench.apps.live_monitor import LiveMonitor

    st = RunStore(tmp_path / "runs.db")
    p, other = st.create_run("parent"), st.create_run("other")
    late, early = st.create_run("parent/fork@40+10 linear"), st.create_run("parent/fork@20+10 cosine")
    st.set_fork(late, p, 40)
    st.set_fork(early, p, 20)
    for r in (p, other, late, early):
        st.log(r, 1, {"train_loss": 1.0})
    app = LiveMonitor(store_path=str(st.path))
    assert app.run_table["id"].tolist() == [p, early, late, other]
    assert list(app.param.runs.objects.values()) == [p, early, late, other]
    assert app.run_labels[early].startswith("↳ parent/fork@20") and not app.run_labels[other].startswith("↳")
