"""The cooldown-fork figure (Hägele et al. 2024, Fig. 3 style): final loss against total compute of every
fork of a constant-LR run, one line per cooldown shape and fork step (points: cooldown lengths), with
the parent's constant-LR curve. Input: :func:`workbench.train.fork.fork_results`."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative


def forks_figure(forks: pd.DataFrame, parent: pd.DataFrame, *, metric: str = "test_loss", log_x: bool = False,
                 title: str | None = None) -> go.Figure:
    """Final ``metric`` of each fork against its compute (tokens trained, the parent's shared prefix
    included), a line per (shape, fork step) through its cooldown lengths; the parent's curve in grey."""
    fig = go.Figure()
    pc = parent.dropna(subset=["value"])
    x_parent = pc["tokens"] if pc["tokens"].notna().all() and len(pc) else pc["step"]
    fig.add_trace(go.Scatter(x=x_parent, y=pc["value"], mode="lines", name="parent (constant LR)",
                             line={"color": "rgba(90,90,90,0.8)", "width": 1.5}))
    done = forks.dropna(subset=["final"])
    colours = {s: qualitative.D3[i % len(qualitative.D3)] for i, s in enumerate(sorted(done["shape"].unique()))}
    dashes = ["solid", "dot", "dash", "dashdot", "longdash"]
    for j, fs in enumerate(sorted(done["fork_step"].unique())):
        for shape, g in done[done["fork_step"] == fs].groupby("shape", sort=True):
            g = g.sort_values("cooldown_steps")
            x = g["tokens"] if g["tokens"].notna().all() else g["step"]
            fig.add_trace(go.Scatter(
                x=x, y=g["final"], mode="lines+markers", name=f"{shape}, fork at {fs}",
                line={"color": colours[shape], "dash": dashes[j % len(dashes)]}, marker={"size": 8},
                customdata=[[c, f, html.escape(str(n))] for c, f, n in zip(g["cooldown_steps"], g["fork_step"], g["name"])],
                hovertemplate="cooldown %{customdata[0]} steps from step %{customdata[1]}<br>"
                              f"final {metric} %{{y:.4g}}<br>compute %{{x:.3g}}<extra>%{{customdata[2]}}</extra>"))
    xunit = "tokens" if len(done) and done["tokens"].notna().all() else "steps"
    fig.update_layout(title=title or f"Cooldown forks: final {metric} against compute", template="plotly_white",
                      xaxis_title=f"total compute ({xunit} trained)", yaxis_title=f"final {metric}",
                      legend={"orientation": "v"}, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    if log_x:
        fig.update_xaxes(type="log")
    elif len(done):  # open on the forks: from just before the first fork to the last end (zoom out to see all)
        fx = done["tokens"] if xunit == "tokens" else done["step"]
        px = x_parent.to_numpy(float)
        x0, x1 = 0.8 * float(fx.min()) if len(done["fork_step"]) else 0.0, 1.03 * float(max(fx.max(), px.max(initial=0)))
        ys = np.r_[done["final"].to_numpy(float), pc["value"].to_numpy(float)[(px >= x0) & (px <= x1)]]
        lo, hi = float(np.nanmin(ys)), float(np.nanmax(ys))
        pad = 0.08 * (hi - lo) or 0.05 * abs(hi) or 1.0
        fig.update_xaxes(range=[x0, x1])
        fig.update_yaxes(range=[lo - pad, hi + pad])
    return fig
