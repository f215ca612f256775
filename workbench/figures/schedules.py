"""Plotly figure of learning-rate schedules: multiplier (or absolute LR) against steps or tokens.

``schedule_figure`` takes any list (or name -> schedule mapping) of schedules or schedule specs and
draws one line each, with phase boundaries marked (dotted vertical lines in the trace's colour),
an optional log-y axis and an optional x axis in tokens. Used by notebooks/01_schedules.ipynb and
the dashboards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from workbench.figures.export import PREVIEW_ROLE
from workbench.schedules import Schedule, ScheduleParamError, build

__all__ = ["lab_figure", "sample_schedule", "schedule_figure", "schedule_label"]

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def schedule_label(s: Schedule) -> str:
    """A short label: the name and its non-default-looking parameters."""
    keys = ("total_steps", "warmup_steps", "min_ratio", "decay_shape", "decay_fraction", "decay_steps")
    parts = [f"{k}={s.params[k]}" for k in keys if k in s.params and s.params[k] not in (None, 0, 0.0)]
    return f"{s.name}({', '.join(parts)})" if parts else s.name


def sample_schedule(s: Schedule, total_steps: int, *, points: int = 2000, peak_lr: float | None = None,
                    log_y: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps to draw a schedule at (every step up to ``points``, else ``points`` evenly spaced, plus both
    sides of each phase boundary so jumps stay sharp), its multiplier (x ``peak_lr`` when given) there, and
    its boundaries inside (0, ``total_steps``). ``log_y`` drops the zeros."""
    T = int(total_steps)
    grid = np.arange(T + 1, dtype=np.float64) if T + 1 <= points else np.linspace(0.0, T, points)
    bnd = np.asarray([b for b in s.boundaries if 0 < b < T], dtype=np.float64)
    if bnd.size:  # keep jumps sharp: evaluate just before and at each boundary
        grid = np.unique(np.concatenate([grid, bnd, np.maximum(np.ceil(bnd) - 1, 0)]))
    y = np.asarray(s(grid)) * (peak_lr if peak_lr is not None else 1.0)
    if log_y:
        keep = y > 0
        grid, y = grid[keep], y[keep]
    return grid, y, bnd


def schedule_figure(
    schedules: Sequence[Schedule | dict | str] | Mapping[str, Schedule | dict | str],
    *,
    total_steps: int | None = None,
    x: str = "steps",
    tokens_per_step: float | None = None,
    peak_lr: float | Sequence[float] | None = None,
    log_y: bool = False,
    mark_boundaries: bool = True,
    points: int = 2000,
    title: str | None = None,
) -> go.Figure:
    """One figure for any list of schedules.

    Args:
        schedules: schedules or specs; a mapping gives the legend names.
        total_steps: x range (default: the longest schedule).
        x: ``"steps"`` (optimizer updates) or ``"tokens"`` (needs ``tokens_per_step``).
        peak_lr: plot absolute LR = peak x multiplier (one value, or one per schedule).
        log_y: logarithmic y axis (zeros are dropped from the line).
        mark_boundaries: dotted vertical lines at each schedule's phase boundaries.
        points: at most this many evaluation points per line (every step when the run is shorter;
            step-like schedules stay sharp because boundaries are always included).
    """
    if x not in ("steps", "tokens"):
        raise ScheduleParamError("schedule_figure", "x", x, "'steps' or 'tokens'")
    if x == "tokens" and not (tokens_per_step and tokens_per_step > 0):
        raise ScheduleParamError("schedule_figure", "tokens_per_step", tokens_per_step, "> 0 when x='tokens'")
    if points < 2:
        raise ScheduleParamError("schedule_figure", "points", points, ">= 2")
    items = list(schedules.items()) if isinstance(schedules, Mapping) else [(None, s) for s in schedules]
    built = [(name, build(s)) for name, s in items]
    if not built:
        raise ScheduleParamError("schedule_figure", "schedules", [], "at least one schedule")
    peaks = list(peak_lr) if isinstance(peak_lr, Sequence) else [peak_lr] * len(built)
    if len(peaks) != len(built):
        raise ScheduleParamError("schedule_figure", "peak_lr", peak_lr, f"one value or {len(built)} values")
    T = int(total_steps or max(s.total_steps for _, s in built))
    xscale = float(tokens_per_step) if x == "tokens" else 1.0
    fig = go.Figure()
    for i, ((name, s), peak) in enumerate(zip(built, peaks)):
        color = _COLORS[i % len(_COLORS)]
        grid, y, bnd = sample_schedule(s, T, points=points, peak_lr=peak, log_y=log_y)
        fig.add_trace(go.Scatter(x=grid * xscale, y=y, mode="lines", name=name or schedule_label(s),
                                 line={"color": color, "shape": "linear"}))
        if mark_boundaries:
            for b in bnd:
                fig.add_vline(x=float(b) * xscale, line={"color": color, "dash": "dot", "width": 1}, opacity=0.6)
    fig.update_layout(
        title=title,
        xaxis_title="tokens" if x == "tokens" else "optimizer step",
        yaxis_title="learning rate" if any(p is not None for p in peaks) else "LR multiplier (x peak)",
        yaxis_type="log" if log_y else "linear",
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 40 if title else 20, "b": 60},
    )
    return fig


def empty_figure(title: str, note: str, height: int = 380) -> go.Figure:
    """A blank figure with a centred grey note (what to do to fill it)."""
    fig = go.Figure()
    fig.update_layout(template="plotly_white", height=height, title=title,
                      annotations=[{"text": note, "showarrow": False, "xref": "paper", "yref": "paper",
                                    "x": 0.5, "y": 0.5, "font": {"size": 14, "color": "#888"}}])
    return fig


def lab_figure(schedules: Sequence[tuple[str, Schedule]], *, x_axis: str = "steps", tokens_per_step: float = 1.0,
               log_y: bool = False, boundaries: bool = True, peak_lr: float | None = None,
               preview: tuple[str, Schedule] | None = None) -> go.Figure:
    """The schedule lab's overlay of (label, Schedule) with :func:`schedule_figure`; the ``preview`` (the
    form's current schedule) is drawn dashed grey on top and tagged so that exports leave it out."""
    items = list(schedules) + ([preview] if preview else [])
    if not items:
        return empty_figure("Learning-rate schedules", "add a schedule, or fix the form's values")
    fig = schedule_figure(dict(items), x=x_axis, tokens_per_step=tokens_per_step, peak_lr=peak_lr, log_y=log_y,
                          mark_boundaries=boundaries, title="Learning-rate schedules")
    if preview:
        fig.data[-1].line.dash = "dash"
        fig.data[-1].line.color = "#444444"
        fig.data[-1].meta = {"wb_role": PREVIEW_ROLE}  # shown while editing, never exported
    fig.update_layout(height=380)
    return fig

