"""The runs page's Bokeh compare figure (workbench.figures.curves_bokeh): the same panels, colours and
points as the Plotly figure exports use, the test curve dashed, a run hidden in one panel hidden in all
(and read back for exports), bad arguments named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bokeh.models import GlyphRenderer, GridPlot

from workbench.curves import CurveError, minmax_decimate
from workbench.figures.curves import curves_figure
from workbench.figures.curves_bokeh import curves_overlay, hidden_runs


def _metrics() -> pd.DataFrame:
    rows = []
    for rid, k in (("a", 1.0), ("b", 2.0)):
        for s in range(0, 3000, 1):
            spike = 50.0 if (rid == "a" and s == 1234) else 0.0
            rows += [{"run": rid, "step": s, "tokens": s * 8, "wall": s * 0.1, "name": "train_loss",
                      "value": k * np.exp(-s / 1000) + spike},
                     {"run": rid, "step": s, "tokens": s * 8, "wall": s * 0.1, "name": "test_loss",
                      "value": k * np.exp(-s / 1500)}]
        rows += [{"run": rid, "step": s, "tokens": s * 8, "wall": s * 0.1, "name": "lr", "value": 1e-3}
                 for s in range(0, 3000, 100)]
    return pd.DataFrame(rows)


def _lines(layout) -> dict[str, GlyphRenderer]:
    return {r.name: r for r in layout.select({"type": GlyphRenderer})}


def test_panels_points_and_dashes_match_the_export_figure() -> None:
    m = _metrics()
    labels = {"a": "run a", "b": "run <b>"}
    grid = curves_overlay(m, labels, names=["train_loss", "test_loss", "lr"], max_points=500)
    assert isinstance(grid, GridPlot)
    figs = [child[0] for child in grid.children]
    assert [f.title.text for f in figs] == ["loss", "lr"]  # train/test share a panel, as in the export
    lines = _lines(grid)
    assert set(lines) == {f"{lab} {n}" for lab in labels.values() for n in ("train_loss", "test_loss", "lr")}
    assert lines["run a test_loss"].glyph.line_dash == [6]  # dashed
    assert lines["run a train_loss"].glyph.line_dash == []
    a = m[(m["run"] == "a") & (m["name"] == "train_loss")]
    xd, yd = minmax_decimate(a["step"].to_numpy(float), a["value"].to_numpy(float), 500)
    src = lines["run a train_loss"].data_source.data
    np.testing.assert_array_equal(src["x"], xd)
    np.testing.assert_array_equal(src["y"], yd)
    assert len(src["y"]) <= 500 and max(src["y"]) == pytest.approx(50 + np.exp(-1.234))  # the spike is kept
    # the same colour per run as the Plotly figure of the export
    plotly = curves_figure(m, pd.DataFrame({"id": ["a", "b"], "name": ["run a", "run <b>"]}),
                           names=["train_loss", "test_loss", "lr"])
    pcol = {t.name: t.line.color for t in plotly.data}
    assert lines["run a lr"].glyph.line_color == pcol["run a"]
    assert lines["run <b> train_loss"].glyph.line_color == pcol["run <b>"]


def test_a_run_hidden_in_one_panel_is_hidden_everywhere_and_read_back() -> None:
    grid = curves_overlay(_metrics(), {"a": "run a", "b": "run b"}, names=["train_loss", "test_loss", "lr"])
    lines = _lines(grid)
    assert hidden_runs(grid) == set()
    # the browser hides the other lines of the run through js links (a ring over the run's lines in every panel)

    def linked(r: GlyphRenderer) -> set[str]:
        return {v.name for cb in r.js_property_callbacks.get("change:visible", []) for v in cb.args.values()
                if isinstance(v, GlyphRenderer)}

    ring = {f"run a {n}" for n in ("train_loss", "test_loss", "lr")}
    assert set().union(*(linked(lines[n]) for n in ring)) == ring
    assert all(linked(lines[f"run b {n}"]) <= {f"run b {k}" for k in ("train_loss", "test_loss", "lr")}
               for n in ("train_loss", "test_loss", "lr"))
    lines["run a lr"].visible = False  # as a click on run a's legend entry in the lr panel
    assert hidden_runs(grid) == {"a"}
    assert hidden_runs(None) == set()


def test_bad_arguments_are_named() -> None:
    m = _metrics()
    with pytest.raises(CurveError, match="x: must be one of"):
        curves_overlay(m, {"a": "a"}, x="epoch")
    with pytest.raises(CurveError, match="cols: must be >= 1"):
        curves_overlay(m, {"a": "a"}, cols=0)
    with pytest.raises(CurveError, match="metrics: missing columns"):
        curves_overlay(m.drop(columns="value"), {"a": "a"})
