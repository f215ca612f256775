"""Plotly figures of sweeps: AlgoPerf performance profiles (Dahl et al. 2023), final metric against
a hyperparameter, and parallel coordinates of a sweep's members."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def performance_profile_figure(profile: pd.DataFrame, scores: pd.Series | None = None,
                               title: str = "Performance profiles") -> go.Figure:
    """ρ_s(τ) of each submission (rows of ``profile``, columns τ) as step lines; ``scores`` go in the
    legend."""
    fig = go.Figure()
    taus = np.asarray(profile.columns, dtype=float)
    for sub, row in profile.iterrows():
        name = f"{sub} (score {scores[sub]:.3f})" if scores is not None and sub in scores else str(sub)
        fig.add_trace(go.Scatter(x=taus, y=row.to_numpy(dtype=float), mode="lines", name=name,
                                 line={"shape": "hv"}))
    fig.update_layout(title=title, xaxis_title="τ (time / best time)", yaxis_title="ρ(τ): share of workloads",
                      yaxis_range=[-0.02, 1.02], template="plotly_white")
    return fig


def final_metric_figure(results: pd.DataFrame, x: str, y: str, color: str | None = None,
                        log_x: bool = False, title: str | None = None) -> go.Figure:
    """Final ``y`` against hyperparameter ``x`` (one marker per member, mean line per ``color``
    group), e.g. final loss against LR per schedule (Wortsman et al. 2023's LR sensitivity plot)."""
    for c in (x, y) + ((color,) if color else ()):
        if c not in results.columns:
            raise ValueError(f"{c}: not a column of the results; have {list(results.columns)}")
    fig = go.Figure()
    groups = results.groupby(color, sort=True) if color else [("all", results)]
    for key, g in groups:
        fig.add_trace(go.Scatter(x=g[x], y=g[y], mode="markers", name=str(key), legendgroup=str(key),
                                 opacity=0.6, showlegend=False))
        mean = g.groupby(x, sort=True)[y].mean()
        fig.add_trace(go.Scatter(x=mean.index, y=mean.to_numpy(), mode="lines+markers", name=str(key),
                                 legendgroup=str(key)))
    fig.update_layout(title=title or f"final {y} vs {x}", xaxis_title=x, yaxis_title=y, template="plotly_white")
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def parallel_coordinates_figure(results: pd.DataFrame, dims: Sequence[str], color: str,
                                title: str | None = None) -> go.Figure:
    """Parallel coordinates of a sweep: one line per member across ``dims`` (numeric or categorical),
    coloured by ``color`` (e.g. the objective)."""
    fdims = []
    for d in [*dims, color]:
        if d not in results.columns:
            raise ValueError(f"{d}: not a column of the results; have {list(results.columns)}")
        col = results[d]
        if pd.api.types.is_numeric_dtype(col):
            fdims.append({"label": d, "values": col.to_numpy(dtype=float)})
        else:
            cats = sorted(col.astype(str).unique())
            fdims.append({"label": d, "values": [cats.index(v) for v in col.astype(str)],
                          "tickvals": list(range(len(cats))), "ticktext": cats})
    fig = go.Figure(go.Parcoords(line={"color": results[color].to_numpy(dtype=float), "colorscale": "Viridis",
                                       "showscale": True}, dimensions=fdims))
    fig.update_layout(title=title or f"sweep members by {color}", template="plotly_white")
    return fig
