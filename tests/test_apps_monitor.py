"""The live monitor and the export panel without a browser: what the periodic callback streams,
re-decimation, smoothing continuity, grouping, new-run discovery, export bytes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench.apps.export import ExportFailed, ExportPanel
from workbench.apps.live_monitor import LiveMonitor
from workbench.curves import MinMaxBuckets, ema
from workbench.store import RunStore


@pytest.fixture
def filled(tmp_path):
    path = tmp_path / "runs.db"
    s = RunStore(path)
    ids = []
    rng = np.random.default_rng(0)
    for lr in (1e-3, 1e-2):
        for seed in range(2):
            rid = s.create_run(f"lr{lr}-s{seed}", task="demo", config={"lr": lr, "seed": seed})
            with s.writer(rid) as w:
                for st in range(500):
                    w.log(st, {"train_loss": 3 / (1 + st * lr) + rng.normal(scale=0.05),
                               "test_loss": 3.2 / (1 + st * lr)}, tokens=64 * st)
            ids.append(rid)
    yield s, path, ids
    s.close()


def test_initial_view_shows_all_runs_and_metrics(filled) -> None:
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path))
    app.view()
    assert app.runs == ids and set(app.metrics) == {"train_loss", "test_loss"}
    assert not app.message.visible, app.message.object
    src = app.drawn(ids[0], "train_loss")
    raw = s.metrics(ids[0], "train_loss")
    np.testing.assert_array_equal(src["step"], raw["step"])
    np.testing.assert_allclose(src["ys"], ema(raw["value"].to_numpy(), app.smoothing))
    assert len(app.plots.objects) == 1  # train/test overlaid in one panel


def test_tick_streams_new_rows_and_continues_smoothing(filled) -> None:
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path))
    app.view()
    assert app.tick() == 0
    for st in range(500, 520):
        s.log(ids[1], st, {"train_loss": 0.5 + 0.01 * st, "other": 1.0})
    assert app.tick() == 20  # 'other' is not shown
    src = app.drawn(ids[1], "train_loss")
    raw = s.metrics(ids[1], "train_loss")["value"].to_numpy()
    assert src["step"][-1] == 519 and len(src["step"]) == 520
    np.testing.assert_allclose(src["ys"], ema(raw, app.smoothing), rtol=1e-10)
    assert app.tick() == 0


def test_long_series_redecimated_and_spike_kept(filled) -> None:
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path), max_points=100)
    app.view()
    with s.writer(ids[0]) as w:
        for st in range(500, 5000):
            w.log(st, {"train_loss": 100.0 if st == 4321 else 1.0})
    app.tick()
    ser = app.book.series[(ids[0], "train_loss")]
    bound = app.settings.max_points + 2 * ser.slack + 4  # buckets' min and max, a NaN marker, the newest row
    d = app.drawn(ids[0], "train_loss")
    assert len(d["x"]) <= bound
    assert max(d["y"]) == 100.0 and d["step"][-1] == 4999
    # streamed a step at a time, the points held by the browser stay bounded (memory stays flat), and
    # the browser's copy is always the summary plus the rows streamed since the last fold
    sizes = []
    for st in range(5000, 5400):
        s.log(ids[0], st, {"train_loss": 1.0})
        app.tick()
        d = app.drawn(ids[0], "train_loss")
        sizes.append(len(d["x"]))
        assert d["step"][-1] == st
    assert max(sizes) <= bound and min(sizes) <= app.settings.max_points + 4
    assert np.nanmax(d["y"]) == 100.0
    # what the browser holds after a fold equals summarising every row at once
    ser.fold()
    raw = s.series(ids[0], "train_loss")
    ref = MinMaxBuckets.from_points(raw["step"], raw["value"], max_buckets=app.settings.max_points // 2)
    assert ser.buckets.width == ref.width
    np.testing.assert_array_equal(ser.buckets.c["hi"], ref.c["hi"])
    np.testing.assert_array_equal(ser.buckets.c["lo_step"], ref.c["lo_step"])


def test_widgets_change_what_is_drawn(filled) -> None:
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path))
    app.view()
    app.x_axis = "tokens"
    src = app.drawn(ids[0], "train_loss")
    np.testing.assert_array_equal(src["x"], 64 * np.asarray(src["step"]))
    app.smoothing = 0.0
    src = app.drawn(ids[0], "train_loss")  # a rebuild makes new sources
    np.testing.assert_array_equal(src["ys"], src["y"])
    app.color_by, app.bands = "cfg.lr", True
    assert set(app.figs.group_sources) == {(n, lr) for n in ("train_loss", "test_loss") for lr in (1e-3, 1e-2)}
    band = app.figs.group_sources[("test_loss", 1e-3)].data
    assert np.all(band["lo"] <= band["mean"] + 1e-12) and np.all(band["mean"] <= band["hi"] + 1e-12)
    app.hp_key = "cfg.lr"
    app.hp_values = ["0.01"]
    assert app.runs == ids[2:]
    app.view_mode = "grokking"
    assert app.metrics == ["train_loss", "test_loss"]
    assert not app.message.visible, app.message.object


def test_new_run_is_followed(filled) -> None:
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path))
    app.view()
    rid = s.create_run("late", task="demo", config={"lr": 0.1, "seed": 0})
    s.log(rid, 0, {"train_loss": 2.0})
    app.tick()
    assert rid in app.runs
    s.log(rid, 1, {"train_loss": 1.5})
    app.tick()
    assert list(app.drawn(rid, "train_loss")["step"]) == [0, 1]


def test_export_of_current_view(filled) -> None:
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path))
    app.view()
    fig = app.plotly_figure()
    assert isinstance(fig, go.Figure) and len(fig.data) == 2 * 2 * len(ids)  # raw + smoothed, train + test
    csv = app.export.build("csv").decode()
    assert csv.splitlines()[0] == "run,name,step,tokens,wall,value"
    assert len(csv.splitlines()) == 1 + 2 * 500 * len(ids)


def test_empty_store_shows_a_message(tmp_path) -> None:
    app = LiveMonitor(store_path=str(tmp_path / "empty.db"))
    app.view()
    assert "No runs" in app.plots.objects[0].object
    assert app.tick() == 0


def test_export_panel_buttons_and_errors() -> None:
    df = pd.DataFrame({"a": [1, 2]})
    p = ExportPanel(figure=lambda: go.Figure(go.Scatter(y=[1, 2])), data=lambda: df,
                    fit_json=lambda: None, basename="my run/1")
    assert list(p.buttons) == ["png", "svg", "pdf", "html", "csv", "parquet", "json", "tex"]  # tex: pgfplots zip
    assert p.buttons["csv"].filename == "my_run_1.csv"
    assert p.build("csv") == b"a\n1\n2\n"
    p.buttons["csv"]._clicks += 1  # what a click does: the callback fills the download
    assert p.buttons["csv"].data.startswith("data:text/plain")
    with pytest.raises(ExportFailed):
        p.buttons["json"]._clicks += 1
    assert p.message.visible and "nothing to export" in p.message.object
    only = ExportPanel(fit_json=lambda: json.dumps({"E": 1.69}))
    assert list(only.buttons) == ["json"] and json.loads(only.build("json")) == {"E": 1.69}


def test_lr_never_smoothed_and_only_varying_keys_offered(tmp_path) -> None:
    s = RunStore(tmp_path / "s.db")
    ids = []
    for seed in range(3):
        rid = s.create_run(f"s{seed}", task="demo", config={"lr": 0.01, "seed": seed, "wd": 0.1})
        with s.writer(rid) as w:
            for st in range(300):
                w.log(st, {"train_loss": 2.0 + np.sin(st) / 3, "lr": 0.01 * min(1.0, st / 100)})
        ids.append(rid)
    app = LiveMonitor(store_path=str(tmp_path / "s.db"), smoothing=0.9)
    app.view()
    assert set(app.metrics) == {"train_loss", "lr"}
    lr = app.drawn(ids[0], "lr")
    np.testing.assert_array_equal(lr["ys"], lr["y"])  # the warm-up drawn as logged
    loss = app.drawn(ids[0], "train_loss")
    assert not np.allclose(loss["ys"], loss["y"])
    s.log(ids[0], 300, {"lr": 0.5, "train_loss": 9.0})
    app.tick()
    assert app.drawn(ids[0], "lr")["ys"][-1] == 0.5 and app.drawn(ids[0], "train_loss")["ys"][-1] < 9.0
    # lr and wd are the same in every run: only the seed is offered for grouping and filtering
    assert app.param.color_by.objects == ["run", "cfg.seed"]
    assert app.param.hp_key.objects[1:] == ["cfg.seed"]
    s.close()


def test_new_run_highlighted_then_plain(filled, monkeypatch) -> None:
    import workbench.apps.components.monitor_figures as lm

    s, path, ids = filled
    app = LiveMonitor(store_path=str(path))
    app.view()
    app.settings.overlay = False  # two panels (train_loss, test_loss); each keeps its own x range (zoom re-reads it)
    figs = [f for f, _ in app.figs.figs.values()]
    assert len(figs) == 2
    rid = s.create_run("late", task="demo", config={"lr": 0.1, "seed": 0})
    s.log(rid, 0, {"train_loss": 2.0, "test_loss": 2.1})
    app.tick()
    lay = app.figs.layers["train_loss"]
    assert lay.source.data["width"][lay.runs.index(rid)] == lm.HIGHLIGHT_WIDTH
    assert lay.source.data["width"][lay.runs.index(ids[0])] == lm.LINE_WIDTH
    app.figs.highlight[rid] = 0.0  # its few seconds are over
    app.tick()
    assert lay.source.data["width"][lay.runs.index(rid)] == lm.LINE_WIDTH


def test_end_of_line_labels_for_few_lines_and_groups(filled) -> None:
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path))
    app.view()
    lbl = app.figs.labels_src["loss"].data  # train and test overlaid: 4 runs x 2 lines
    assert len(lbl["text"]) == 8 and all(t.startswith("lr0.0") for t in lbl["text"])
    i = lbl["text"].index("lr0.001-s0 train_loss")
    assert lbl["x"][i] == 499 and lbl["y"][i] == app.drawn(ids[0], "train_loss")["ys"][-1]
    s.log(ids[0], 500, {"train_loss": 0.5})
    app.tick()
    lbl = app.figs.labels_src["loss"].data
    assert lbl["x"][lbl["text"].index("lr0.001-s0 train_loss")] == 500  # follows the newest point
    app.color_by, app.bands = "cfg.lr", True
    lbl = app.figs.labels_src["loss"].data
    assert sorted(set(lbl["text"])) == ["lr=0.001", "lr=0.01"] and len(lbl["text"]) == 4


def test_overlay_attached_to_every_panel_and_updated_on_ticks(filled) -> None:
    # the plug-in point for per-run overlays (a forecast band): attach on build, update after applied rows
    s, path, ids = filled
    seen: dict[str, list] = {"attach": [], "update": []}

    class Last:
        def attach(self, fig, panel, members, figures) -> None:
            seen["attach"].append((panel, tuple(members)))

        def update(self, figures) -> None:
            seen["update"].append(max(figures.book.get(ids[0], "train_loss").shown["step"].a))

    app = LiveMonitor(store_path=str(path))
    app.figs.overlays.append(Last())
    app.settings.overlay = False  # rebuild: two panels
    assert seen["attach"] == [("train_loss", ("train_loss",)), ("test_loss", ("test_loss",))]
    assert seen["update"] == [499]
    app.tick()
    assert seen["update"] == [499]  # nothing applied: not called
    s.log(ids[0], 500, {"train_loss": 0.5})
    app.tick()
    assert seen["update"] == [499, 500]


def test_panels_share_x_and_a_zoom_redecimates_every_panel(tmp_path) -> None:
    s = RunStore(tmp_path / "z.db")
    rid = s.create_run("long", task="demo", config={"lr": 1e-3})
    st = np.arange(20_000)
    s.log_rows(rid, [(int(i), None, 1.0 + i, n, float(np.sin(i / 7) + (n == "test_loss")), None)
                     for i in st for n in ("train_loss", "test_loss")])
    app = LiveMonitor(store_path=str(tmp_path / "z.db"), max_points=200, overlay=False)
    app.view()
    (f1, _), (f2, _) = app.figs.figs.values()
    xr = app.figs.x_range
    assert f1.x_range is xr and f2.x_range is xr  # zoom one, zoom all
    assert xr.start < 0 and 19_999 < xr.end < 21_500 and (xr.reset_start, xr.reset_end) == (xr.start, xr.end)
    overview = {n: len(app.drawn(rid, n)["x"]) for n in ("train_loss", "test_loss")}
    assert max(overview.values()) <= 200 + 8
    xr.start, xr.end = 5000.0, 5100.0  # as the box-zoom tool does (synced from the browser)
    app.feed.apply_zoom(force=True)
    for n in ("train_loss", "test_loss"):  # every panel at full resolution in the window, not only one
        d = app.drawn(rid, n)
        inside = d["step"][(d["step"] >= 5000) & (d["step"] <= 5100)]
        np.testing.assert_array_equal(inside, np.arange(5000, 5101))
    # zoomed: new rows do not move the user's range; the reset range follows the data
    s.log_rows(rid, [(int(i), None, 1.0 + i, "train_loss", 0.0, None) for i in range(20_000, 24_000)])
    app.tick()
    assert (xr.start, xr.end) == (5000.0, 5100.0) and xr.reset_end > 24_000
    xr.start, xr.end = xr.reset_start, xr.reset_end  # the reset tool: the overview again, and following
    app.feed.apply_zoom(force=True)
    assert len(app.drawn(rid, "train_loss")["x"]) <= 200 + 2 * app.book.get(rid, "train_loss").slack + 8
    s.log_rows(rid, [(int(i), None, 1.0 + i, "train_loss", 0.0, None) for i in range(24_000, 30_000)])
    app.tick()
    assert xr.end > 30_000 and (xr.start, xr.end) == (xr.reset_start, xr.reset_end)
    s.close()


def test_legend_names_every_run_or_group_and_labels_stay_inside(filled) -> None:
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path))
    app.view()
    html = app.legend.object
    assert html.count('class="wb-legend-item"') == len(ids)
    for rid in ids:
        assert f'data-key="{rid}"' in html
    assert "lr0.001-s0" in html and "dashed: test" in html
    app.color_by = "cfg.lr"
    html = app.legend.object
    assert html.count('class="wb-legend-item"') == 2 and "lr=0.001 (2 runs)" in html
    # a label starts or ends at its line's end, written towards the inside: the frame never cuts it off
    from bokeh.models import LabelSet

    f, _ = next(iter(app.figs.figs.values()))
    (lbl,) = [r for r in f.center if isinstance(r, LabelSet)]
    assert lbl.text_align == "align" and lbl.x_offset == "dx"  # per-label columns
    src = app.figs.labels_src["loss"]
    assert len(src.data["x"]) and set(src.data["align"]) == {"right"} and set(src.data["dx"]) == {-2}
    app.figs.x_range.end = 5000.0  # the lines now end in the left part of the view: labelled rightwards
    app.figs.update_end_labels()
    assert set(src.data["align"]) == {"left"} and set(src.data["dx"]) == {4}


def test_export_never_smooths_the_learning_rate(tmp_path) -> None:
    from workbench.figures.curves import curves_figure

    st = np.arange(400)
    lr = np.where(st % 2 == 0, 1e-3, 2e-3)  # a schedule with a step every step: smoothing would flatten it
    df = pd.DataFrame({"run": "a", "name": np.repeat(["lr", "train_loss"], st.size), "step": np.tile(st, 2),
                       "tokens": np.nan, "wall": np.tile(st, 2) * 1.0,
                       "value": np.concatenate([lr, 3 - st / 400])})
    fig = curves_figure(df, None, names=["lr", "train_loss"], smoothing=0.9, max_points=10_000)
    lr_traces = [t for t in fig.data if " lr<br>" in (t.hovertemplate or "")]
    assert len(lr_traces) == 1 and set(np.round(lr_traces[0].y, 6)) == {1e-3, 2e-3}
    faint = [t for t in fig.data if t.hoverinfo == "skip"]
    assert len(faint) == 1  # the raw curve behind the smoothed one: for train_loss only


def _covers(yr, ys, log: bool = False) -> bool:
    ys = np.asarray(ys, float)
    ys = ys[np.isfinite(ys) & (ys > 0)] if log else ys[np.isfinite(ys)]
    return yr.start <= ys.min() and ys.max() <= yr.end


def test_y_ranges_follow_new_data_until_the_user_zooms(tmp_path) -> None:
    """Notebook 02's live view had every panel's y stuck at the first one or two points (a browser-side
    DataRange1d that the patched NaN-padded rows never recomputed): each panel's y is a server-set range."""
    from bokeh.models import Range1d

    s = RunStore(tmp_path / "y.db")
    rid = s.create_run("young", task="demo", config={"lr": 1e-3})
    s.log(rid, 0, {"train_loss": 4.5762, "acc": 0.0100})
    s.log(rid, 1, {"train_loss": 4.5752, "acc": 0.0135})
    app = LiveMonitor(store_path=str(s.path), smoothing=0.0, overlay=False)
    app.view()
    (fl, _), (fa, _) = app.figs.figs["train_loss"], app.figs.figs["acc"]
    ly, ay = fl.y_range, fa.y_range
    assert isinstance(ly, Range1d) and isinstance(ay, Range1d) and ly is not ay  # one per panel
    assert _covers(ay, [0.01, 0.0135]) and ay.end - ay.start < 0.01
    for st in range(2, 50):  # acc climbs past the first range, loss falls out of it
        s.log(rid, st, {"train_loss": 4.6 - 0.08 * st, "acc": 0.01 + 0.015 * st})
    assert app.tick() == 96
    acc, loss = app.drawn(rid, "acc")["ys"], app.drawn(rid, "train_loss")["ys"]
    assert len(acc) == 50 and _covers(ay, acc) and _covers(ly, loss)
    assert ay.end - ay.start < 1.3 * (acc.max() - acc.min())  # fits the data, not a huge default
    assert (ay.reset_start, ay.reset_end) == (ay.start, ay.end)
    # the user zooms the acc panel: new rows leave the zoom alone; the reset range still follows
    ay.start, ay.end = 0.2, 0.3
    for st in range(50, 60):
        s.log(rid, st, {"train_loss": 0.6 - 0.01 * st, "acc": 0.75 + 0.02 * (st - 50)})
    app.tick()
    assert (ay.start, ay.end) == (0.2, 0.3) and ay.reset_end >= 0.93
    assert _covers(ly, app.drawn(rid, "train_loss")["ys"])  # the other panel still follows
    ay.start, ay.end = ay.reset_start, ay.reset_end  # the reset tool: following again
    s.log(rid, 60, {"acc": 1.5})
    app.tick()
    assert ay.end >= 1.5 and (ay.start, ay.end) == (ay.reset_start, ay.reset_end)
    # log y: positive bounds around the positive values
    app.settings.log_y = True
    ly = app.figs.figs["train_loss"][0].y_range
    loss = app.drawn(rid, "train_loss")["ys"]
    assert ly.start > 0 and _covers(ly, loss, log=True)
    assert np.log10(ly.end / ly.start) < 1.3 * np.log10(loss[loss > 0].max() / loss[loss > 0].min())
    s.close()


def test_a_range_the_server_set_coming_back_late_is_not_a_zoom(tmp_path) -> None:
    """Notebook 02 in CI: a range the server had set came back from the browser seconds later; the monitor
    took it for a zoom into the first points (re-read that window, then sent nothing of the new rows) and
    froze at 2-3 points while the run trained on. Also y: an old range back must not stop it following."""
    s = RunStore(tmp_path / "echo.db")
    rid = s.create_run("young", task="demo", config={"lr": 1e-3})
    s.log(rid, 0, {"train_loss": 4.0})
    app = LiveMonitor(store_path=str(s.path), smoothing=0.0, overlay=False)
    app.view()
    xr, yr = app.figs.x_range, app.figs.figs["train_loss"][0].y_range
    old_x, old_y = [], []
    for st in range(1, 40):  # a young run: each tick moves the ranges; keep what the server set
        s.log(rid, st * 50, {"train_loss": 4.0 - 0.1 * st})
        app.tick()
        old_x.append((xr.start, xr.end))
        old_y.append((yr.start, yr.end))
    assert len(set(old_x)) > 10 and len(set(old_y)) > 10
    a, b = old_x[2]  # the range of three points before, back now: start, then end, as the browser sends them
    assert b < 0.75 * 40 * 50
    xr.start = a
    xr.end = b
    yr.start, yr.end = old_y[2]
    assert (xr.start, xr.end) == (xr.reset_start, xr.reset_end)  # the current range, sent again
    app.feed.apply_zoom(force=True)
    assert app.book.get(rid, "train_loss").zoom is None  # the overview, not a window
    for st in range(40, 60):
        s.log(rid, st * 50, {"train_loss": 4.0 - 0.1 * st})
        assert app.tick() == 1
    d = app.drawn(rid, "train_loss")
    assert d["step"].tolist() == [st * 50 for st in range(60)]  # every new row drawn
    assert xr.start <= 0 and xr.end >= 59 * 50 and (xr.start, xr.end) == (xr.reset_start, xr.reset_end)
    assert _covers(yr, d["ys"]) and (yr.start, yr.end) == (yr.reset_start, yr.reset_end)  # y follows again
    # a range the server never set is the user's zoom, as before
    xr.start, xr.end = 600.0, 1300.0
    app.feed.apply_zoom(force=True)
    assert app.book.get(rid, "train_loss").zoom is not None
    s.close()


def test_y_range_covers_the_faint_raw_line_behind_the_smoothed_one(filled) -> None:
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path), smoothing=0.9, overlay=False)
    app.view()
    for st in range(500, 510):  # a spike: the smoothed line barely moves, the faint raw one does
        s.log(ids[0], st, {"train_loss": 40.0 if st == 505 else 0.5})
    app.tick()
    yr = app.figs.figs["train_loss"][0].y_range
    d = app.drawn(ids[0], "train_loss")
    assert d["ys"].max() < 40 and _covers(yr, d["y"]) and _covers(yr, d["ys"])


def test_spread_moves_overlapping_labels_apart_least_squares() -> None:
    from workbench.apps.components.monitor_legend import spread

    # already apart: unchanged
    np.testing.assert_allclose(spread([10.0, 50.0, 30.0], 13, 0, 200), [10.0, 50.0, 30.0])
    # three labels at one height: a stack centred where they all want to be, 13 apart, order kept
    np.testing.assert_allclose(spread([100.0, 100.0, 100.0], 13, 0, 200), [87.0, 100.0, 113.0])
    # against the top of the frame: the stack is pushed down inside it
    np.testing.assert_allclose(spread([195.0, 198.0], 13, 0, 190), [177.0, 190.0])
    rng = np.random.default_rng(1)
    for _ in range(50):  # invariants against a brute-force check of the gaps and bounds
        t = rng.uniform(0, 220, size=rng.integers(1, 17))
        p = spread(t, 13, 0, 212)
        o = np.argsort(t, kind="stable")
        assert np.all(np.diff(p[o]) >= 13 - 1e-9)  # no overlap, the lines' order kept
        assert p.min() >= -1e-9 and p.max() <= 212 + 1e-9
        if len(t) * 13 <= 212:  # a least-squares optimum moves labels no further than a stack on the mean
            assert np.abs(p - t).sum() <= np.abs(t - t.mean()).sum() + 13 * len(t) ** 2


def test_end_labels_of_lines_ending_together_do_not_overlap(tmp_path) -> None:
    from workbench.apps.components.monitor_legend import FRAME_MARGIN_PX, LABEL_GAP_PX

    s = RunStore(tmp_path / "l.db")
    for i in range(6):  # six runs ending at the same step, within 1 % of each other's loss
        rid = s.create_run(f"run{i}", task="demo", config={"seed": i})
        s.log_rows(rid, [(st, None, float(st), "train_loss", 2.0 - st / 100 + i * 1e-3, None) for st in range(100)])
    for i in range(2):  # and two far below them
        rid = s.create_run(f"low{i}", task="demo", config={"seed": 10 + i})
        s.log_rows(rid, [(st, None, float(st), "train_loss", -5.0 - i * 1e-3, None) for st in range(100)])
    app = LiveMonitor(store_path=str(tmp_path / "l.db"), smoothing=0.0)
    app.view()
    (panel,) = app.figs.labels_src
    d = app.figs.labels_src[panel].data
    assert len(d["text"]) == 8
    yr = app.figs.y.ranges[panel]
    h = app.figs.figs[panel][0].height - FRAME_MARGIN_PX
    px = (np.array(d["y"]) - yr.start) / (yr.end - yr.start) * h + np.array(d["dy"])  # where each label sits
    order = np.argsort(d["y"], kind="stable")
    assert np.all(np.diff(px[order]) >= LABEL_GAP_PX - 1e-9)  # none overlaps the next, order kept
    assert np.all(px >= 0) and np.all(px <= h)
    low = [i for i, t in enumerate(d["text"]) if t.startswith("low")]
    assert all(abs(d["dy"][i] - 3) < LABEL_GAP_PX for i in low)  # labels with room stay near their line
    s.close()


def test_many_runs_share_a_panel_budget_of_points(filled, monkeypatch) -> None:
    import workbench.apps.components.monitor_series as ms

    monkeypatch.setattr(ms, "LINE_POINTS_MIN", 50)
    monkeypatch.setattr(ms, "PANEL_POINTS", 400)  # 4 runs: 100 points a line (settings.max_points is 1600)
    s, path, ids = filled
    app = LiveMonitor(store_path=str(path), smoothing=0.0)
    app.view()
    assert app.book.max_points == 100
    for r in ids:  # 500 rows each: a summary of at most 100 points, whose min/max are the rows' own
        d = app.drawn(r, "train_loss")
        raw = s.series(r, "train_loss")
        assert len(d["x"]) <= 100 and d["y"].min() == raw["value"].min() and d["y"].max() == raw["value"].max()
    rid = s.create_run("late", task="demo", config={"lr": 0.1, "seed": 0})
    s.log(rid, 0, {"train_loss": 2.0})
    app.tick()  # a run joining the open page gets the page's resolution; nothing is reloaded
    assert rid in app.runs and app.book.max_points == 100
    app.runs = ids[:1]  # one run: up to PANEL_POINTS a line again
    assert app.book.max_points == 400 and len(app.drawn(ids[0], "train_loss")["x"]) > 100
