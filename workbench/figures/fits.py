"""Plotly figures of fitted laws: data, fit, bootstrap band and a residual panel, log axes; and measured
against predicted loss curves of the schedule-aware laws (one pair of traces per curve)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def fit_figure(result, *, x: str | None = None, log_x: bool = True, log_y: bool = True, band: float = 0.95,
               title: str | None = None) -> go.Figure:
    """Data (markers), fitted values (line, sorted by ``x``), bootstrap band when available, and the
    residuals (log y − log fit) in a lower panel. ``x``: the input on the horizontal axis (default: first)."""
    law = result.law
    x = x or next(k for k in result.x if k not in ("curve",))
    xv = np.asarray(result.x[x], float)
    order = np.argsort(xv, kind="stable")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.05)
    fig.add_trace(go.Scatter(x=xv, y=result.y, mode="markers", name="data", marker={"size": 6}), row=1, col=1)
    if result.boot is not None and len(result.boot) and "lrs" not in law.inputs:
        _, lo, hi = result.predict(result.x, band=band)
        fig.add_trace(go.Scatter(x=xv[order], y=hi[order], mode="lines", line={"width": 0}, showlegend=False,
                                 hoverinfo="skip"), row=1, col=1)
        fig.add_trace(go.Scatter(x=xv[order], y=lo[order], mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor="rgba(99,110,250,0.2)", name=f"{band:.0%} band"), row=1, col=1)
    fig.add_trace(go.Scatter(x=xv[order], y=result.fitted[order], mode="lines", name=f"fit: {law.name}"), row=1, col=1)
    fig.add_trace(go.Scatter(x=xv, y=result.residuals, mode="markers", name="residual", marker={"size": 5}),
                  row=2, col=1)
    fig.add_hline(y=0, line={"dash": "dot", "color": "grey"}, row=2, col=1)
    fig.update_xaxes(type="log" if log_x else "linear", title_text=x, row=2, col=1)
    fig.update_xaxes(type="log" if log_x else "linear", row=1, col=1)
    fig.update_yaxes(type="log" if log_y else "linear", title_text=law.target, row=1, col=1)
    fig.update_yaxes(title_text="log residual", row=2, col=1)
    fig.update_layout(title=title or f"{law.name}: R² {result.r2:.4f}", template="plotly_white")
    return fig


LOSS_CURVE_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                      "#bcbd22", "#17becf")
ROLE_LABELS = {"fit": "fitted on", "heldout": "held out", "typed": "not trained"}


def _thin(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` evenly spaced points of a series (display only; the first and last are kept)."""
    if n <= 0 or len(x) <= n:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, n).round().astype(int))
    return x[idx], y[idx]


def schedule_law_figure(curves: Mapping[str, Mapping[str, Any]], *, law: str = "", log_y: bool = False,
                        residuals: bool = True, max_points: int = 1500, title: str | None = None) -> go.Figure:
    """Measured against predicted loss curves of a schedule-aware law (multi-power law, Luo et al. ICLR 2025
    eq. 7; LR-annealing law, Tissue et al. 2024 eq. 1), one colour per curve: the measured curve as markers
    (thinned to ``max_points`` for display), the law's prediction as a line (dashed for curves left out of
    the fit, dotted for schedules nobody trained), and, with ``residuals``, the relative error
    (measured − predicted) / measured of every curve that has a measurement in a lower panel.

    ``curves``: name -> mapping with ``pred_step``, ``pred`` (the prediction), optional ``step`` and
    ``loss`` (the measurement; absent for an untrained schedule), optional ``fit_pred`` (the prediction
    at ``step``, for the residuals), ``role`` (``"fit"``, ``"heldout"`` or ``"typed"``) and ``beyond``
    (first step outside the law's fitted domain, why): the region from the earliest such step is shaded.
    Every trace carries ``meta = {"curve": name, "kind": "measured" | "predicted" | "rel_error", "role": role}``."""
    rows = 2 if residuals else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.72, 0.28] if residuals else [1.0])
    for i, (name, c) in enumerate(curves.items()):
        color = LOSS_CURVE_PALETTE[i % len(LOSS_CURVE_PALETTE)]
        role = str(c.get("role", "fit"))
        label = f"{name} ({ROLE_LABELS.get(role, role)})"
        if c.get("loss") is not None and c.get("step") is not None:
            xs, ys = _thin(np.asarray(c["step"], float), np.asarray(c["loss"], float), max_points)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{label}: measured", legendgroup=name,
                                     marker={"color": color, "size": 5, "opacity": 0.7},
                                     meta={"curve": name, "kind": "measured", "role": role}), row=1, col=1)
        dash = {"fit": "solid", "heldout": "dash", "typed": "dot"}.get(role, "solid")
        fig.add_trace(go.Scatter(x=np.asarray(c["pred_step"], float), y=np.asarray(c["pred"], float), mode="lines",
                                 name=f"{label}: predicted", legendgroup=name,
                                 line={"color": color, "width": 1.5, "dash": dash},
                                 meta={"curve": name, "kind": "predicted", "role": role}), row=1, col=1)
        if residuals and c.get("fit_pred") is not None and c.get("loss") is not None:
            y = np.asarray(c["loss"], float)
            rel = (y - np.asarray(c["fit_pred"], float)) / y
            xs, rs = _thin(np.asarray(c["step"], float), rel, max_points)
            fig.add_trace(go.Scatter(x=xs, y=rs, mode="lines", name=f"{name}: relative error", legendgroup=name,
                                     showlegend=False, line={"color": color, "width": 1, "dash": dash},
                                     meta={"curve": name, "kind": "rel_error", "role": role}), row=2, col=1)
    starts = [c["beyond"][0] for c in curves.values() if c.get("beyond")]
    if starts:
        x1 = max(float(np.max(np.asarray(c["pred_step"], float))) for c in curves.values())
        fig.add_vrect(x0=min(starts), x1=max(x1, min(starts)), fillcolor="grey", opacity=0.12, line_width=0,
                      annotation_text="beyond the fitted domain", annotation_position="top left", row=1, col=1)
    if residuals:
        fig.add_hline(y=0, line={"dash": "dot", "color": "grey"}, row=2, col=1)
        fig.update_yaxes(title_text="rel. error", exponentformat="e", row=2, col=1)
    fig.update_xaxes(title_text="step", row=rows, col=1)
    fig.update_yaxes(title_text="loss", type="log" if log_y else "linear", row=1, col=1)
    fig.update_layout(template="plotly_white", height=560 if residuals else 440,
                      margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      title=title or (f"{law}: measured (markers) vs predicted (lines)" if law
                                      else "Measured vs predicted loss curves"),
                      legend={"orientation": "h", "y": -0.14, "font": {"size": 11}})
    return fig
