"""Figures of fitted scaling laws (the scaling-law fitter page and notebooks).

- :func:`overlay_figure`: one-input laws (L(x)): the data, every law's curve on a grid that reaches the
  extrapolation target, its bootstrap band, the relative residuals in a lower panel, and the region beyond
  the fitted range shaded with the reason (``FitResult.flags``, :mod:`workbench.fit.domain`).
- :func:`two_input_figure`: laws of two or more inputs (Chinchilla's L(N, D), Hoffmann et al. 2022): a line
  through points sorted by one input reads as noise, so they are shown as predicted against observed (with
  y = x; held-out points open) and, for laws of N and D, as iso-N curves over compute C ≈ 6ND (Kaplan et al.
  2020's approximation of training FLOPs) with the data coloured by N; the parts of a curve outside the
  fitted domain are dotted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def x_grid(x: np.ndarray, target: float | None = None, n: int = 200) -> np.ndarray:
    """A grid over the data's range, extended to ``target``; log-spaced when every value is > 0."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if target is not None and np.isfinite(target):
        lo, hi = min(lo, target), max(hi, target)
    if lo > 0:
        return np.logspace(np.log10(lo), np.log10(hi), n)
    return np.linspace(lo, hi, n)


def _beyond(flags: np.ndarray, why: list[str], x: np.ndarray) -> list[tuple[float, float, str]]:
    """Contiguous runs of grid points outside the fitted domain: (x0, x1, reason of the farthest point)."""
    out, i, flags = [], 0, np.asarray(flags)
    while i < len(x):
        if flags[i] == "inside":
            i += 1
            continue
        j = i
        while j + 1 < len(x) and flags[j + 1] != "inside":
            j += 1
        far = i if i == 0 and j < len(x) - 1 else j  # the end of the run farthest from the data
        out.append((float(x[i]), float(x[j]), why[far]))
        i = j + 1
    return out


def overlay_figure(laws: Mapping[str, Mapping[str, Any]], x: np.ndarray, y: np.ndarray, x_name: str, *,
                   log: bool = True) -> go.Figure:
    """Data and every law against input ``x_name``. ``laws``: name -> ``grid``, ``pred`` (on the grid),
    optional ``lo``/``hi`` (band on the grid), ``fitted`` (the prediction at the data, for the residuals),
    ``flags``/``why`` (per grid point, from ``FitResult.flags``)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.05)
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.argsort(x, kind="stable")
    fig.add_trace(go.Scatter(x=x[order], y=y[order], mode="markers", name="data",
                             marker={"color": "#333", "size": 5, "opacity": 0.6}), row=1, col=1)
    shaded: list[tuple[float, float, str]] = []
    for i, (name, d) in enumerate(laws.items()):
        c = PALETTE[i % len(PALETTE)]
        g = np.asarray(d["grid"], float)
        if d.get("lo") is not None:
            fig.add_trace(go.Scatter(x=np.r_[g, g[::-1]], y=np.r_[d["hi"], np.asarray(d["lo"])[::-1]], fill="toself",
                                     fillcolor=c, opacity=0.15, line={"width": 0}, name=f"{name} band",
                                     showlegend=False, hoverinfo="skip"), row=1, col=1)
        fig.add_trace(go.Scatter(x=g, y=d["pred"], mode="lines", name=name, line={"color": c, "width": 1.5}),
                      row=1, col=1)
        if d.get("fitted") is not None:
            p = np.asarray(d["fitted"], float)
            fig.add_trace(go.Scatter(x=x[order], y=(y[order] - p[order]) / p[order], mode="markers",
                                     name=f"{name} residual", marker={"color": c, "size": 4}, showlegend=False),
                          row=2, col=1)
        if d.get("flags") is not None:
            shaded += _beyond(d["flags"], list(d["why"]), g)
    for x0, x1, why in shaded[:2]:
        fig.add_vrect(x0=x0, x1=x1, fillcolor="grey", opacity=0.12, line_width=0, row=1, col=1,
                      annotation_text=f"beyond the fitted domain: {why}"[:90], annotation_position="top left",
                      annotation_font_size=10)
    fig.add_hline(y=0, line={"dash": "dot", "color": "grey"}, row=2, col=1)
    fig.update_layout(template="plotly_white", height=520, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      title="Fitted laws", legend={"orientation": "h", "y": -0.15})
    fig.update_yaxes(title_text="target", row=1, col=1)
    fig.update_yaxes(title_text="rel. residual", row=2, col=1)
    fig.update_xaxes(title_text=x_name, row=2, col=1)
    if log:
        fig.update_xaxes(type="log")
        fig.update_yaxes(type="log", row=1, col=1)
    return fig


def iso_n_lines(result: Any, N: np.ndarray, D: np.ndarray, *, n_lines: int = 5, n: int = 80,
                reach: float = 3.0) -> list[dict]:
    """Iso-N curves of a fitted L(N, D) law: for up to ``n_lines`` model sizes spread over the data's
    (log-)quantiles, the prediction over D from the data's range widened ``reach`` times each way, as compute
    C = 6ND, with the fitted-domain flags of every point. Other inputs of the law are held at their median."""
    N, D = np.asarray(N, float), np.asarray(D, float)
    sizes = np.unique(N)
    if len(sizes) > n_lines:
        sizes = np.unique(sizes[np.round(np.linspace(0, len(sizes) - 1, n_lines)).astype(int)])
    d_grid = np.logspace(np.log10(D.min() / reach), np.log10(D.max() * reach), n)
    out = []
    for s in sizes:
        X = {"N": np.full(n, s), "D": d_grid}
        for k in result.law.inputs:
            if k not in X:
                X[k] = np.full(n, float(np.median(np.asarray(result.x[k], float))))
        pred = np.asarray(result.predict(X, warn=False), float)
        flags, _, why = result.flags(X)
        out.append({"N": float(s), "C": 6 * s * d_grid, "pred": pred, "flags": np.asarray(flags), "why": why})
    return out


def two_input_figure(laws: Mapping[str, Mapping[str, Any]], *, iso: Mapping[str, Any] | None = None) -> go.Figure:
    """Predicted against observed for every law (``laws``: name -> ``observed``, ``predicted``, optional
    ``heldout`` mask), with the line y = x; and, with ``iso`` (``law``, ``lines`` from :func:`iso_n_lines`,
    data ``N``, ``D``, ``y``), iso-N curves over compute C ≈ 6ND."""
    cols = 2 if iso else 1
    titles = ["predicted vs observed (on y = x: a perfect fit)"]
    if iso:
        titles.append(f"{iso['law']}: iso-N curves over compute C ≈ 6ND")
    fig = make_subplots(rows=1, cols=cols, subplot_titles=titles, horizontal_spacing=0.1)
    lo, hi = np.inf, -np.inf
    for i, (name, d) in enumerate(laws.items()):
        c = PALETTE[i % len(PALETTE)]
        ob, pr = np.asarray(d["observed"], float), np.asarray(d["predicted"], float)
        held = np.asarray(d.get("heldout", np.zeros(len(ob), bool)), bool)
        lo, hi = min(lo, ob.min(), pr.min()), max(hi, ob.max(), pr.max())
        for mask, kind, sym in ((~held, "fitted", "circle"), (held, "held out", "circle-open")):
            if mask.any():
                fig.add_trace(go.Scatter(x=ob[mask], y=pr[mask], mode="markers", name=f"{name} ({kind})",
                                         legendgroup=name, marker={"color": c, "size": 6, "symbol": sym,
                                                                   "opacity": 0.75}), row=1, col=1)
    if np.isfinite(lo):
        pad = 0.02 * (hi - lo)
        fig.add_trace(go.Scatter(x=[lo - pad, hi + pad], y=[lo - pad, hi + pad], mode="lines", name="y = x",
                                 line={"color": "grey", "dash": "dash", "width": 1}), row=1, col=1)
    fig.update_xaxes(title_text="observed", row=1, col=1)
    fig.update_yaxes(title_text="predicted", row=1, col=1)
    if iso:
        N, D, y = (np.asarray(iso[k], float) for k in ("N", "D", "y"))
        lines = iso["lines"]
        logs = np.log10([ln["N"] for ln in lines])
        span = (logs.max() - logs.min()) or 1.0
        colors = sample_colorscale("Viridis", [float((v - logs.min()) / span) * 0.9 for v in logs])
        fig.add_trace(go.Scatter(x=6 * N * D, y=y, mode="markers", name="data (colour: log10 N)",
                                 marker={"size": 5, "color": np.log10(N), "colorscale": "Viridis", "opacity": 0.7,
                                         "cmin": logs.min(), "cmax": logs.min() + span / 0.9}), row=1, col=2)
        for ln, c in zip(lines, colors):
            inside = ln["flags"] == "inside"
            for mask, dash, suffix in ((inside, "solid", ""), (~inside, "dot", " beyond the fitted domain")):
                yy = np.where(mask, ln["pred"], np.nan)
                if np.isfinite(yy).any():
                    fig.add_trace(go.Scatter(x=ln["C"], y=yy, mode="lines", name=f"N = {ln['N']:.3g}{suffix}",
                                             legendgroup=f"N{ln['N']}", showlegend=not suffix,
                                             line={"color": c, "dash": dash, "width": 1.5},
                                             hovertext=None if not suffix else [w for w in ln["why"]],
                                             meta={"N": ln["N"], "inside": not suffix}), row=1, col=2)
        fig.update_xaxes(type="log", title_text="compute C = 6ND (FLOPs)", row=1, col=2)
        fig.update_yaxes(type="log", title_text="loss", row=1, col=2)
    fig.update_layout(template="plotly_white", height=520, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      legend={"orientation": "h", "y": -0.18, "font": {"size": 11}})
    return fig


def empty_figure(note: str, height: int = 520) -> go.Figure:
    """A blank figure carrying ``note`` (what to do to fill it)."""
    return go.Figure(layout={"template": "plotly_white", "height": height, "xaxis": {"visible": False},
                             "yaxis": {"visible": False},
                             "annotations": [{"text": note, "showarrow": False, "font": {"size": 14, "color": "#52606d"},
                                              "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]})
