"""Plotly figure of a learning-curve forecast (:func:`workbench.fit.learning_curves.fit_curve`): the observed
points, each family's least-squares fit, the weighted ensemble mean and its predictive band (Domhan et al. 2015)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from workbench.fit.learning_curves import CurveForecast


def forecast_figure(forecast: CurveForecast, *, until: float | None = None, level: float = 0.9,
                    min_weight: float = 1e-3, truth: tuple[Sequence[float], Sequence[float]] | None = None,
                    log_x: bool = False, n_grid: int = 300, title: str | None = None) -> go.Figure:
    """Observed points, a dashed line per family with weight ≥ ``min_weight`` (weight in the legend), the
    ensemble mean and its ``level`` band up to step ``until`` (default 4× the last observed step), and
    optionally the true continuation ``truth = (steps, values)`` for checking a forecast."""
    last = float(forecast.steps[-1])
    until = float(until if until is not None else 4 * last)
    first = float(forecast.steps[0])
    grid = np.geomspace(first, until, n_grid) if log_x else np.linspace(first, until, n_grid)
    fig = go.Figure()
    lo, hi = forecast.band(grid, level)
    fig.add_trace(go.Scatter(x=grid, y=hi, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=grid, y=lo, mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(99,110,250,0.2)", name=f"{level:.0%} band"))
    fig.add_trace(go.Scatter(x=forecast.steps, y=forecast.values, mode="markers", name="observed",
                             marker={"size": 4, "color": "black"}))
    if truth is not None:
        fig.add_trace(go.Scatter(x=np.asarray(truth[0], float), y=np.asarray(truth[1], float), mode="markers",
                                 name="actual continuation", marker={"size": 3, "color": "grey"}))
    for name, w in sorted(forecast.weights.items(), key=lambda kv: -kv[1]):
        if w >= min_weight:
            fig.add_trace(go.Scatter(x=grid, y=forecast.predict_family(name, grid), mode="lines",
                                     line={"dash": "dash", "width": 1}, name=f"{name} (w {w:.2f})"))
    fig.add_trace(go.Scatter(x=grid, y=forecast.predict(grid), mode="lines", name="ensemble mean",
                             line={"width": 3, "color": "rgb(99,110,250)"}))
    fig.add_vline(x=last, line={"dash": "dot", "color": "grey"})
    fig.update_xaxes(type="log" if log_x else "linear", title_text="step")
    fig.update_yaxes(title_text="value")
    fig.update_layout(title=title or "learning-curve forecast", template="plotly_white")
    return fig
