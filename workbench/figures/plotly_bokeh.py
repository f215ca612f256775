"""Draw a Plotly figure of the law fitters with Bokeh, for the page (:func:`to_bokeh`), and drop the traces
hidden in the page from the Plotly figure that is exported (:func:`shown_traces`).

Why: the scaling-law and curve-law pages build their figures with Plotly (``scaling.overlay_figure``,
``scaling.two_input_figure``, ``fits.schedule_law_figure``: the same figures serve notebooks and every
export format), but plotly.js (4.6 MB) was the largest part of those pages' load in the browser (issue 13),
while Bokeh's JavaScript is loaded by every Panel page anyway. No maintained library converts Plotly figures
to Bokeh, so this handles the subset those figures use: ``go.Scatter`` traces (markers, lines, ``fill="toself"``
bands, numeric marker colours on a colour scale, open symbols, dashes, ``legendgroup``/``showlegend``),
subplots from ``make_subplots`` (placed by their axis domains, shared x axes), log axes, axis titles,
``add_vrect``/``add_hline`` shapes, subplot titles and notes (annotations). The Plotly figure stays the
figure of record: every point drawn here is read from it.

Renderer ``tags`` hold the index of their Plotly trace, so the traces a user hid with a click on the legend
are left out of an export (:func:`shown_traces`), as with the Plotly pane before.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from bokeh.layouts import gridplot
from bokeh.models import (
    BoxAnnotation,
    ColumnDataSource,
    CustomJS,
    CustomJSTickFormatter,
    HoverTool,
    Label,
    Legend,
    LegendItem,
    Span,
)
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

SOURCE_PREFIX = "wb-trace|"
"""Bokeh ``name`` of a trace's data source: the prefix, then the Plotly trace's name."""
_DASH = {"dash": "dashed", "dot": "dotted", "dashdot": "dashdot", "longdash": "dashed", "solid": "solid"}


def _arr(v: Any) -> np.ndarray:
    return np.asarray([] if v is None else v, dtype=float)


def _axis(layout: Any, ref: str) -> Any:
    """The layout axis of a trace reference (``"x"``, ``"x2"``, ``"y"``...)."""
    return layout[ref[0] + "axis" + ref[1:]]


def _title(ax: Any) -> str:
    return (ax.title.text or "") if ax.title is not None else ""


def _panels(fig: Any) -> list[tuple[str, str]]:
    """The (xref, yref) pairs of the figure's subplots: from the traces, else the layout's first axes."""
    pairs = []
    for t in fig.data:
        p = (t.xaxis or "x", t.yaxis or "y")
        if p not in pairs:
            pairs.append(p)
    for k in fig.layout:  # subplots without traces (make_subplots anchors each y axis on its x axis)
        if k.startswith("yaxis") and fig.layout[k].anchor:
            p = (fig.layout[k].anchor, "y" + k[5:])
            if p not in pairs:
                pairs.append(p)
    return pairs or [("x", "y")]


def to_bokeh(fig: Any, *, min_height: int = 120) -> Any:
    """A Bokeh layout (one plot per subplot, stretched to the width) drawing the Plotly figure ``fig``."""
    layout = fig.layout
    height = int(layout.height or 450)
    margin_h = 90  # titles, axes and legends take about what Plotly's margins took
    panels = _panels(fig)
    dom = {p: (tuple(_axis(layout, p[0]).domain or (0, 1)), tuple(_axis(layout, p[1]).domain or (0, 1)))
           for p in panels}
    rows = sorted({d[1] for d in dom.values()}, key=lambda d: -d[1])
    cols = sorted({d[0] for d in dom.values()}, key=lambda d: d[0])
    plots: dict[tuple[str, str], Any] = {}
    for p in panels:
        xa, ya = _axis(layout, p[0]), _axis(layout, p[1])
        (x0, x1), (y0, y1) = dom[p]
        h = max(min_height, int((height - margin_h) * (y1 - y0)) + (40 if len(rows) == 1 or y0 == 0 else 10))
        share = next((plots[q].x_range for q in plots if dom[q][0] == dom[p][0]
                      and (xa.matches or _axis(layout, q[0]).matches)), None)
        kw = {"x_range": share} if share is not None else {}
        b = figure(height=h, sizing_mode="stretch_width", x_axis_type="log" if xa.type == "log" else "linear",
                   y_axis_type="log" if ya.type == "log" else "linear", x_axis_label=_title(xa) or None,
                   y_axis_label=_title(ya) or None, tools="pan,box_zoom,wheel_zoom,reset,save",
                   toolbar_location="right", **kw)
        b.add_tools(HoverTool(tooltips=[("", "$name"), ("x", "$x{0.000g}"), ("y", "$y{0.0000g}")]))
        b.title.text_font_size, b.title.text_font_style = "14px", "normal"
        if xa.showticklabels is False:
            b.xaxis.formatter = CustomJSTickFormatter(code="return ''")  # (a 0px font breaks log axes' labels)
        plots[p] = b
    top = plots[min(panels, key=lambda p: (-dom[p][1][1], dom[p][0][0]))]
    if layout.title is not None and layout.title.text:
        top.title.text = layout.title.text
    groups: dict[tuple[tuple[str, str], str], dict] = {}
    for i, t in enumerate(fig.data):
        p = (t.xaxis or "x", t.yaxis or "y")
        r = _trace(plots[p], t, i)
        if r is None:
            continue
        r.tags = [i]  # the Plotly trace it draws (shown_traces)
        key = t.legendgroup or f"#{i}"
        g = groups.setdefault((p, key), {"names": [], "renderers": []})
        g["renderers"].append(r)
        if t.showlegend is not False:
            g["names"].append(t.name or f"trace {i}")
    for g in groups.values():  # a group's item is named by what its traces' names share ("cosine (fitted on)")
        g["label"] = (os.path.commonprefix(g["names"]).rstrip(" :(") or g["names"][0]) if g["names"] else None
    _legends(plots, groups)
    _shapes(fig, plots, dom)
    grid = [[next((plots[p] for p in panels if dom[p] == (c, rw)), None) for c in cols] for rw in rows]
    if len(panels) == 1:
        return top
    return gridplot(grid, sizing_mode="stretch_width", toolbar_location="right", merge_tools=True)


def _trace(b: Any, t: Any, i: int) -> Any:
    """One Plotly scatter trace as a Bokeh renderer (None for an empty trace)."""
    x, y = _arr(t.x), _arr(t.y)
    if not len(x):
        return None
    name = t.name or f"trace {i}"
    alpha = 1.0 if t.opacity is None else float(t.opacity)
    src = ColumnDataSource({"x": x, "y": y}, name=f"{SOURCE_PREFIX}{name}")
    if t.fill == "toself":
        return b.patch("x", "y", source=src, fill_color=t.fillcolor or "grey", fill_alpha=alpha, line_alpha=0,
                       name=name)
    line = t.line
    color = (line.color if line is not None else None) or "#1f77b4"
    if t.mode and "markers" in t.mode:
        m = t.marker
        size = float(m.size) if m.size is not None and np.isscalar(m.size) else 6.0
        a = alpha * (1.0 if m.opacity is None else float(m.opacity))
        fill: Any = m.color if isinstance(m.color, str) else color
        if m.color is not None and not isinstance(m.color, str):  # numbers on a colour scale
            from bokeh.transform import linear_cmap

            v = _arr(m.color)
            lo = float(np.nanmin(v)) if m.cmin is None else float(m.cmin)
            hi = float(np.nanmax(v)) if m.cmax is None else float(m.cmax)
            src.data["c"] = v
            fill = linear_cmap("c", Viridis256, lo, hi if hi > lo else lo + 1)
        opened = isinstance(m.symbol, str) and m.symbol.endswith("-open")
        return b.scatter("x", "y", source=src, size=size * 1.4, fill_color=fill,
                         fill_alpha=0 if opened else a, line_color=fill, line_alpha=a, name=name)
    width = float(line.width) if line is not None and line.width is not None else 2.0
    dash = _DASH.get(line.dash or "solid", "solid") if line is not None else "solid"
    return b.line("x", "y", source=src, line_color=color, line_width=width, line_dash=dash, line_alpha=alpha, name=name)


def _legends(plots: dict, groups: dict) -> None:
    """One legend below each plot with named traces; a click hides a group's renderers in every plot."""
    by_label: dict[str, list] = {}
    for (_, key), g in groups.items():
        by_label.setdefault(key, []).extend(g["renderers"])
    for p, b in plots.items():
        items = [LegendItem(label=g["label"], renderers=g["renderers"])
                 for (q, key), g in groups.items() if q == p and g["label"] is not None]
        for (q, key), g in groups.items():  # the group's renderers in the other plots follow its legend item
            if q != p or g["label"] is None:
                continue
            others = [r for r in by_label[key] if r not in g["renderers"]]
            if others:
                g["renderers"][0].js_on_change("visible", CustomJS(args={"others": others}, code=(
                    "for (const r of others) r.visible = cb_obj.visible")))
        if items:
            ncols = 1 if len(items) > 8 else min(len(items), 3)
            b.add_layout(Legend(items=items, click_policy="hide", label_text_font_size="11px", ncols=ncols,
                                border_line_alpha=0, spacing=12, padding=4), "below")


def _shapes(fig: Any, plots: dict, dom: dict) -> None:
    """Plotly's vrect/hline shapes and annotations on the plot their axis references name."""
    def plot_of(ref: str | None, axis: str) -> Any:
        ref = (ref or axis).split(" ")[0]
        return next((b for p, b in plots.items() if p[0 if axis == "x" else 1] == ref), None)

    for s in fig.layout.shapes or ():
        if s.type == "rect" and str(s.yref).endswith("domain"):
            b = plot_of(s.xref, "x")
            if b is not None:
                b.add_layout(BoxAnnotation(left=float(s.x0), right=float(s.x1), fill_color=s.fillcolor or "grey",
                                           fill_alpha=float(s.opacity if s.opacity is not None else 0.15),
                                           line_alpha=0, level="underlay"))
        elif s.type == "line" and str(s.xref).endswith("domain") and s.y0 == s.y1:
            b = plot_of(s.yref, "y")
            if b is not None:
                b.add_layout(Span(location=float(s.y0), dimension="width", line_color=s.line.color or "grey",
                                  line_dash=_DASH.get(s.line.dash or "solid", "solid")))
    for a in fig.layout.annotations or ():
        text = str(a.text or "")
        if a.xref == "paper" and a.yref == "paper":
            hit = [p for p in plots if dom[p][0][0] <= a.x <= dom[p][0][1] and abs(dom[p][1][1] - a.y) < 0.06]
            if hit and fig.data:  # a subplot's title
                plots[hit[0]].title.text = text
            elif not fig.data:  # a note on an empty figure
                b = next(iter(plots.values()))
                b.x_range.start, b.x_range.end, b.y_range.start, b.y_range.end = 0, 1, 0, 1
                b.add_layout(Label(x=0.5, y=0.5, text=text, text_align="center", text_color="#52606d",
                                   text_font_size="14px"))
                b.axis.visible, b.grid.visible, b.toolbar_location = False, False, None
        else:  # a shaded region's reason, at the top of the subplot's data
            p = next((p for p in plots if p[0] == str(a.xref or "x").split(" ")[0]), None)
            ys = [_arr(t.y) for t in fig.data if p and (t.xaxis or "x", t.yaxis or "y") == p and t.fill is None]
            ys = np.concatenate(ys) if ys else np.array([])
            ys = ys[np.isfinite(ys)]
            if p is not None and a.x is not None and len(ys):
                plots[p].add_layout(Label(x=float(a.x), y=float(ys.max()), text=text, text_font_size="10px",
                                          text_color="#555555", text_baseline="top", x_offset=4))


def shown_traces(fig: Any, shown: Any) -> Any:
    """``fig`` without the traces whose renderers are hidden in the Bokeh layout ``shown`` (legend clicks)."""
    from bokeh.models import GlyphRenderer

    hidden = set()
    for r in (shown.select({"type": GlyphRenderer}) if shown is not None else ()):
        if not r.visible and r.tags:
            hidden.add(int(r.tags[0]))
    groups = {fig.data[i].legendgroup for i in hidden if fig.data[i].legendgroup and fig.data[i].showlegend is not False}
    hidden |= {i for i, t in enumerate(fig.data) if t.legendgroup and t.legendgroup in groups}  # as a legend click
    if not hidden:
        return fig
    import plotly.graph_objects as go

    out = go.Figure(fig)
    out.data = tuple(t for i, t in enumerate(out.data) if i not in hidden)
    return out
