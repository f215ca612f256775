"""Plotly figures of fitted laws: data, fit, bootstrap band and a residual panel, log axes."""

from __future__ import annotations

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
