"""Bokeh figures of the schedule lab's page: the overlay of chosen schedules (with the form's preview
dashed) and the predicted loss curves (the part beyond the law's fitted domain dotted and shaded).

Why Bokeh for the page while exports use the Plotly figure (``schedules.lab_figure``): Bokeh's
JavaScript is loaded by every Panel page anyway, and plotly.js (4.6 MB) was the largest part of the
page's load in the browser (issue 13, ~1.5 s of a warm load at load 8); the Plotly figure is built only
when the user exports. Both draw the same points (``schedules.sample_schedule``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from bokeh.models import BoxAnnotation, ColumnDataSource, HoverTool, Label, Legend, Span
from bokeh.plotting import figure

from workbench.figures.schedules import _COLORS, sample_schedule
from workbench.schedules import Schedule

PREVIEW_NAME = "wb-preview"
"""Bokeh ``name`` of the preview line (the form's schedule while it is edited)."""


def _figure(title: str, x_axis: str, y_label: str, log_y: bool, height: int):
    fig = figure(title=title, height=height, sizing_mode="stretch_width", y_axis_type="log" if log_y else "linear",
                 x_axis_label="tokens" if x_axis == "tokens" else "optimizer step", y_axis_label=y_label,
                 tools="pan,box_zoom,wheel_zoom,reset,save", toolbar_location="right")
    fig.add_tools(HoverTool(tooltips=[("", "$name"), ("x", "$x{0,0}"), ("y", "$y{0.0000}")]))
    fig.xaxis.formatter.use_scientific = False
    fig.title.text_font_size = "15px"
    fig.title.text_font_style = "normal"
    return fig


def _legend(fig, items: list) -> None:
    if items:
        fig.add_layout(Legend(items=items, orientation="horizontal", click_policy="hide", label_text_font_size="11px",
                              border_line_alpha=0), "below")


def _note(fig, text: str) -> None:
    fig.add_layout(Label(x=0.5, y=0.5, x_units="data", y_units="data", text=text, text_align="center",
                         text_color="#888888", text_font_size="14px"))
    fig.x_range.start, fig.x_range.end, fig.y_range.start, fig.y_range.end = 0, 1, 0, 1


def lab_overlay(schedules: Sequence[tuple[str, Schedule]], *, x_axis: str = "steps", tokens_per_step: float = 1.0,
                log_y: bool = False, boundaries: bool = True, preview: tuple[str, Schedule] | None = None,
                height: int = 380, points: int = 2000):
    """The schedule lab's overlay of (label, Schedule) multipliers against steps or tokens, phase boundaries
    dotted in the line's colour, the ``preview`` dashed grey on top (named ``PREVIEW_NAME``)."""
    fig = _figure("Learning-rate schedules", x_axis, "LR multiplier (x peak)", log_y, height)
    items = list(schedules) + ([preview] if preview else [])
    if not items:
        _note(fig, "add a schedule, or fix the form's values")
        return fig
    T = max(int(s.total_steps) for _, s in items)
    xscale = float(tokens_per_step) if x_axis == "tokens" else 1.0
    legend = []
    for i, (label, s) in enumerate(items):
        is_preview = preview is not None and i == len(items) - 1
        color = "#444444" if is_preview else _COLORS[i % len(_COLORS)]
        grid, y, bnd = sample_schedule(s, T, points=points, log_y=log_y)
        src = ColumnDataSource({"x": grid * xscale, "y": y}, name=f"wb-sched|{i}")
        r = fig.line("x", "y", source=src, line_color=color, line_width=2, line_dash="dashed" if is_preview else "solid",
                     name=PREVIEW_NAME if is_preview else label)
        legend.append((label, [r]))
        if boundaries and not is_preview:
            for b in bnd:
                fig.add_layout(Span(location=float(b) * xscale, dimension="height", line_color=color,
                                    line_dash="dotted", line_alpha=0.6))
    _legend(fig, legend)
    return fig


def prediction_overlay(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, x_axis: str = "steps",
                       tokens_per_step: float = 1.0, log_y: bool = False,
                       beyond: Mapping[str, tuple[int, str]] | None = None, height: int = 340):
    """Predicted loss curves (label -> (steps, loss); ``workbench.schedule_predict``). ``beyond``: label ->
    (first step outside the law's fitted domain, why); from there a curve is dotted and the region shaded."""
    fig = _figure("Predicted loss (fitted law, before training)", x_axis, "predicted loss", log_y, height)
    beyond = beyond or {}
    scale = float(tokens_per_step) if x_axis == "tokens" else 1.0
    legend = []
    for i, (label, (steps, loss)) in enumerate(curves.items()):
        steps, loss = np.asarray(steps), np.asarray(loss, dtype=np.float64)
        color = _COLORS[i % len(_COLORS)]
        cut = steps >= beyond[label][0] if label in beyond else np.zeros(len(steps), bool)
        inside = ~cut | np.r_[cut[1:], False]  # up to and including the first step outside
        r = fig.line(steps[inside] * scale, loss[inside], line_color=color, line_width=2, name=label)
        renderers = [r]
        if cut.any():
            renderers.append(fig.line(steps[cut] * scale, loss[cut], line_color=color, line_width=2,
                                      line_dash="dotted", name=f"{label} (extrapolated)"))
        legend.append((label, renderers))
    if beyond and curves:
        x0 = min(v[0] for v in beyond.values()) * scale
        fig.add_layout(BoxAnnotation(left=x0, fill_color="grey", fill_alpha=0.12, line_alpha=0))
        top = max(float(np.nanmax(np.asarray(loss, dtype=np.float64))) for _, loss in curves.values())
        fig.add_layout(Label(x=x0, y=top, text="beyond the fitted domain", text_font_size="11px",
                             text_color="#555555", text_baseline="top", x_offset=4))
    _legend(fig, legend)
    return fig
