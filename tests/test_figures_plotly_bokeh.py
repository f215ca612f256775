"""The law fitters' pages draw their Plotly figures with Bokeh (``workbench.figures.plotly_bokeh``, issue 13:
no plotly.js in those pages): every trace's points reach a Bokeh source unchanged, subplots keep their
axes (log, shared x), legend groups become one legend item, shaded regions and notes are kept, and a trace
hidden in the page is left out of the exported Plotly figure."""

from __future__ import annotations

import numpy as np
from bokeh.models import BoxAnnotation, ColumnDataSource, GlyphRenderer, Label, Legend, LogScale, Span

from workbench.figures.fits import schedule_law_figure
from workbench.figures.plotly_bokeh import SOURCE_PREFIX, shown_traces, to_bokeh
from workbench.figures.scaling import empty_figure, overlay_figure


def _overlay():
    x = np.logspace(1, 3, 12)
    y = 1.5 + 4 * x ** -0.5
    g = np.logspace(1, 4, 30)
    law = {"grid": g, "pred": 1.5 + 4 * g ** -0.5, "lo": 1.4 + 4 * g ** -0.5, "hi": 1.6 + 4 * g ** -0.5,
           "fitted": y * 1.01, "flags": np.array(["inside"] * 20 + ["x above"] * 10), "why": ["x above the data"] * 30}
    return overlay_figure({"power_law": law}, x, y, "N")


def test_every_trace_is_drawn_with_its_points_and_axes():
    fig = _overlay()
    out = to_bokeh(fig)
    sources = {s.name[len(SOURCE_PREFIX):]: s for s in out.select({"type": ColumnDataSource})
               if s.name and s.name.startswith(SOURCE_PREFIX)}
    for t in fig.data:
        src = sources[t.name]
        assert np.array_equal(src.data["x"], np.asarray(t.x, float))
        assert np.array_equal(src.data["y"], np.asarray(t.y, float))
    plots = [c[0] for c in out.children]
    top, bottom = sorted(plots, key=lambda p: -p.height)
    assert isinstance(top.x_scale, LogScale) and isinstance(top.y_scale, LogScale)  # log x and y on the data
    assert top.x_range is bottom.x_range  # the residuals share the x axis
    (box,) = [a for a in top.center if isinstance(a, BoxAnnotation)]  # beyond the fitted domain, from the first flagged grid point
    assert box.left == np.logspace(1, 4, 30)[20] and box.right == 1e4
    assert any("beyond the fitted domain" in a.text for a in top.center if isinstance(a, Label))
    assert [a.location for a in bottom.center if isinstance(a, Span)] == [0]
    legend = top.select_one({"type": Legend})
    assert [i.label.value for i in legend.items] == ["data", "power_law"]


def test_legend_groups_and_hidden_traces_leave_the_export():
    n = np.arange(10, 200, 10)
    curves = {"cosine": {"step": n, "loss": 3 + 1 / n, "pred_step": n, "pred": 3 + 1.01 / n, "fit_pred": 3 + 1.01 / n,
                         "role": "fit"},
              "wsd": {"step": n, "loss": 3 + 2 / n, "pred_step": n, "pred": 3 + 2.02 / n, "fit_pred": 3 + 2.02 / n,
                      "role": "heldout"}}
    fig = schedule_law_figure(curves, law="multi_power")
    out = to_bokeh(fig)
    top = max((c[0] for c in out.children), key=lambda p: p.height)
    legend = top.select_one({"type": Legend})
    assert [i.label.value for i in legend.items] == ["cosine (fitted on)", "wsd (held out)"]
    assert [len(i.renderers) for i in legend.items] == [2, 2]  # measured and predicted toggle together
    assert shown_traces(fig, out) is fig
    for r in legend.items[1].renderers:  # a click on "wsd (held out)"
        r.visible = False
    kept = shown_traces(fig, out)
    assert [t.meta["curve"] for t in kept.data] == ["cosine"] * 3
    assert len(fig.data) == 6  # the page's figure is unchanged
    (rel,) = [r for r in out.select({"type": GlyphRenderer}) if r.name == "wsd: relative error"]
    (cb,) = legend.items[1].renderers[0].js_property_callbacks["change:visible"]
    assert cb.args["others"] == [rel]  # in the page its residual line in the lower plot follows the legend item


def test_empty_figure_keeps_its_note():
    out = to_bokeh(empty_figure("Choose data and laws, then press Fit."))
    assert [lb.text for lb in out.select({"type": Label})] == ["Choose data and laws, then press Fit."]
