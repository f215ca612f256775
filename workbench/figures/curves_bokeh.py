"""Bokeh figure of metric curves for a dashboard page: the runs page's compare view (the selected runs'
curves overlaid, one panel per metric, ``train_X`` / ``test_X`` sharing a panel with the test curve dashed).

Why Bokeh in the page while exports use the Plotly figure (:func:`workbench.figures.curves.curves_figure`):
Bokeh's JavaScript is loaded by every Panel page anyway, and plotly.js (4.6 MB) was the largest part of the
runs page's load in the browser (issue 13). Both figures draw the same points: the panels come from
:func:`~workbench.figures.curves.metric_panels`, the colours from :func:`~workbench.figures.curves.colour_map`
and each line is decimated with :func:`workbench.curves.minmax_decimate` (spikes kept).

A run's lines in every panel are linked: hiding it with a click on its legend entry hides it in every
panel (as Plotly's legend groups do), and :func:`hidden_runs` reads back which runs are hidden, so an
export leaves them out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
from bokeh.layouts import gridplot
from bokeh.models import ColumnDataSource, GlyphRenderer, HoverTool, Legend
from bokeh.plotting import figure

from workbench.curves import minmax_decimate, x_values
from workbench.figures.curves import X_TITLES, check_curve_args, colour_map, is_test_metric, metric_panels

RUN_TAG = "wb-run:"
"""Prefix of the tag each line carries with its run id (``RUN_TAG + id``): how :func:`hidden_runs` finds them."""


def curves_overlay(metrics: pd.DataFrame, labels: Mapping[str, str], *, names: Sequence[str] | None = None,
                   x: str = "step", max_points: int = 2000, cols: int = 2, height_per_row: int = 300):
    """The curves of some runs, one Bokeh panel per metric panel, in a grid of ``cols`` columns.

    ``metrics``: long rows (``run, step, tokens, wall, name, value``); ``labels``: run id -> legend label
    (the runs drawn, in this order; rows of other runs are ignored); ``names``: the metrics, in panel order
    (default: every metric of ``metrics``, sorted). Returns a Bokeh layout."""
    check_curve_args(metrics, x, cols)
    df = metrics[metrics["run"].isin(list(labels))]
    order = list(names) if names is not None else sorted(df["name"].unique())
    order = [n for n in order if n in set(df["name"])]
    panels = metric_panels(order)
    df = df.assign(_x=x_values(df, x))
    if x == "tokens":
        df = df[df["_x"].notna()]
    colour = colour_map(list(dict.fromkeys(df["run"])))  # as the Plotly figure colours them (export)
    n_cols = min(cols, max(1, len(panels)))
    figs, lines = [], {}  # lines: run id -> its line renderers in every panel
    for panel, members in panels or [("no data for the chosen metrics", [])]:
        fig = figure(title=panel, height=height_per_row, sizing_mode="stretch_width", x_axis_label=X_TITLES[x],
                     tools="pan,box_zoom,wheel_zoom,reset,save", toolbar_location="right")
        fig.add_tools(HoverTool(tooltips=[("", "$name"), ("x", "@x{0,0.[00]}"), ("y", "@y{0.0000}")]))
        fig.xaxis.formatter.use_scientific = False
        fig.title.text_font_size = "14px"
        fig.title.text_font_style = "normal"
        items = []
        for rid, label in labels.items():
            drawn = []
            for name in members:
                rd = df[(df["run"] == rid) & (df["name"] == name)].sort_values("_x")
                if rd.empty:
                    continue
                xd, yd = minmax_decimate(rd["_x"].to_numpy(float), rd["value"].to_numpy(float), max_points)
                src = ColumnDataSource({"x": xd, "y": yd})
                dash = "dashed" if is_test_metric(name) and len(members) > 1 else "solid"
                r = fig.line("x", "y", source=src, line_color=colour[rid], line_width=2, line_dash=dash,
                             name=f"{label} {name}")
                r.tags = [RUN_TAG + str(rid)]  # on the renderer (``line(tags=...)`` would tag the glyph)
                drawn.append(r)
                lines.setdefault(rid, []).append(r)
            if drawn:
                items.append((label, drawn))
        if items:
            fig.add_layout(Legend(items=items, click_policy="hide", label_text_font_size="11px",
                                  border_line_alpha=0), "right")
        figs.append(fig)
    for rs in lines.values():  # one run hidden in one legend is hidden in every panel
        for a, b in zip(rs, rs[1:] + rs[:1]):
            if a is not b:
                a.js_link("visible", b, "visible")
    rows = [figs[i:i + n_cols] for i in range(0, len(figs), n_cols)]
    grid = gridplot(rows, sizing_mode="stretch_width", toolbar_location="right")
    grid.height = height_per_row * math.ceil(len(figs) / n_cols)
    return grid


def hidden_runs(layout) -> set[str]:
    """Ids of the runs whose lines are hidden in ``layout`` (a click on their legend entry in the browser
    sets the lines' ``visible``, which Panel sends back to the server's copy of the figure)."""
    if layout is None:
        return set()
    out = set()
    for r in layout.select({"type": GlyphRenderer}):
        if not r.visible:
            out |= {t.removeprefix(RUN_TAG) for t in r.tags if isinstance(t, str) and t.startswith(RUN_TAG)}
    return out
