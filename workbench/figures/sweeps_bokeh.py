"""Bokeh figure of the sweep board's first view: a final metric against a hyperparameter, one line per
group, the mean over seeds with min/max whiskers (Wortsman et al. 2023's LR-sensitivity plot).

Why Bokeh for the page while exports and notebooks use the Plotly figure
(``sweeps.metric_vs_param_figure``): Bokeh's JavaScript is loaded by every Panel page anyway, and
plotly.js (4.6 MB) was the largest part of the sweep board's load in the browser (issue 13); the page
loads plotly.js only after its first view is drawn, for the tabs that need it (parallel coordinates,
importance, performance profile). Both figures draw the same points (``sweeps.metric_vs_param_series``).
"""

from __future__ import annotations

import pandas as pd
from bokeh.models import (
    ColumnDataSource,
    CustomJSTickFormatter,
    FactorRange,
    FixedTicker,
    HoverTool,
    Label,
    Legend,
)
from bokeh.plotting import figure

from workbench.figures.sweeps import PALETTE, metric_vs_param_series

FIGURE_NAME = "wb-sweep-metric"
"""Bokeh ``name`` of the figure; its line sources are named ``wb-sweep|<i>``."""


def metric_vs_param_bokeh(table: pd.DataFrame, x: str, y: str, group: str | None = None, *, log_x: bool = True,
                          log_y: bool = False, height: int = 400):
    """``y`` against hyperparameter ``x``, one line per value of ``group``: mean over the members at each
    ``x``, whiskers from min to max. A non-numeric ``x`` (a schedule's name) is a categorical axis."""
    series = metric_vs_param_series(table, x, y, group)
    xs = [agg[x] for _, agg in series]
    numeric = all(pd.api.types.is_numeric_dtype(v) for v in xs)
    factors = [] if numeric else list(dict.fromkeys(str(v) for s in xs for v in s))
    kw = {"x_range": FactorRange(*factors)} if factors else {"x_axis_type": "log" if log_x else "linear"}
    fig = figure(title=f"{y} against {x.removeprefix('cfg.')}" if series else "No results to draw yet", height=height,
                 sizing_mode="stretch_width", y_axis_type="log" if log_y else "linear", name=FIGURE_NAME,
                 x_axis_label=x.removeprefix("cfg."), y_axis_label=y, tools="pan,box_zoom,wheel_zoom,reset,save",
                 toolbar_location="right", **kw)
    fig.title.text_font_size = "15px"
    fig.title.text_font_style = "normal"
    if not series:
        fig.add_layout(Label(x=0.5, y=0.5, text="pick a sweep with finished members", text_align="center",
                             text_color="#888888", text_font_size="14px"))
        fig.x_range.start, fig.x_range.end, fig.y_range.start, fig.y_range.end = 0, 1, 0, 1
        return fig
    items = []
    for i, (name, agg) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        src = ColumnDataSource({"x": agg[x].astype(str) if factors else agg[x], "y": agg["mean"],
                                "lo": agg["min"], "hi": agg["max"], "group": [name] * len(agg)}, name=f"wb-sweep|{i}")
        line = fig.line("x", "y", source=src, line_color=color, line_width=2)
        dots = fig.scatter("x", "y", source=src, color=color, size=7)
        bars = fig.segment(x0="x", y0="lo", x1="x", y1="hi", source=src, line_color=color, line_alpha=0.8)
        items.append((name, [line, dots, bars]))
    swept = sorted({float(v) for v in pd.concat(xs)}) if numeric else []
    if 1 < len(swept) <= 12:  # ticks at the swept values (a log axis over one decade shows one or two)
        fig.xaxis.ticker = FixedTicker(ticks=swept)
        fig.xaxis.formatter = CustomJSTickFormatter(code="return Number(tick.toPrecision(3)).toString();")
    fig.add_tools(HoverTool(renderers=[rs[1] for _, rs in items],
                            tooltips=[("", "@group"), (x.removeprefix("cfg."), "@x"), (f"mean {y}", "@y{0.0000}"),
                                      ("min .. max", "@lo{0.0000} .. @hi{0.0000}")]))
    fig.add_layout(Legend(items=items, orientation="horizontal", click_policy="hide", label_text_font_size="11px",
                          border_line_alpha=0), "below")
    return fig
