"""Plotly figures of sweeps (used by notebooks and the sweep board): AlgoPerf performance profiles
(Dahl et al. 2023), final metric against a hyperparameter (per member, or mean with min/max bars per
group, as Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer training
instabilities"), parallel coordinates of a sweep's members and fANOVA hyperparameter importances."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
LOG_HINTS = ("lr", "weight_decay", "wd", "eps", "lr_min", "params", "tokens")


def is_log_axis(col: str, values: pd.Series) -> bool:
    """Whether a hyperparameter column reads best on a log axis: positive, and a learning-rate-like name
    or spanning two decades or more."""
    leaf = col.split(".")[-1]
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty or (v <= 0).any():
        return False
    return leaf in LOG_HINTS or leaf.endswith("lr") or (v.max() / v.min() >= 100)


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


def metric_vs_param_series(table: pd.DataFrame, x: str, y: str, group: str | None = None
                           ) -> list[tuple[str, pd.DataFrame]]:
    """What the metric-vs-hyperparameter figures draw: one (name, points) per value of ``group`` (all runs
    when None), points = columns ``x``, ``mean``, ``min`` and ``max`` of ``y`` over the members (seeds) at
    each ``x``, sorted by ``x`` where it sorts."""
    if x not in table or y not in table:
        return []
    df = table[[c for c in {x, y, group} if c]].copy()
    df[y] = pd.to_numeric(df[y], errors="coerce")
    df = df.dropna(subset=[y])
    groups = df.groupby(df[group].astype(str)) if group and group in df else [("all runs", df)]
    out = []
    for g, d in groups:
        agg = d.groupby(x)[y].agg(["mean", "min", "max"]).reset_index()
        try:
            agg = agg.sort_values(x)
        except TypeError:
            pass
        out.append((f"{group.removeprefix('cfg.')}={g}" if group else str(g), agg))
    return out


def metric_vs_param_figure(table: pd.DataFrame, x: str, y: str, group: str | None = None, *,
                           log_x: bool = True, log_y: bool = False) -> go.Figure:
    """``y`` (e.g. final test loss) against hyperparameter ``x`` (e.g. LR), one line per value of
    ``group`` (e.g. model size): the mean over seeds with min/max as error bars."""
    fig = go.Figure()
    for i, (name, agg) in enumerate(metric_vs_param_series(table, x, y, group)):
        fig.add_trace(go.Scatter(
            x=agg[x], y=agg["mean"], mode="lines+markers", name=name, line={"color": PALETTE[i % len(PALETTE)]},
            error_y={"type": "data", "symmetric": False, "array": agg["max"] - agg["mean"],
                     "arrayminus": agg["mean"] - agg["min"], "thickness": 1}))
    fig.update_layout(template="plotly_white", height=380, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      title=f"{y} against {x.removeprefix('cfg.')}", xaxis_title=x.removeprefix("cfg."),
                      yaxis_title=y, legend={"orientation": "h", "y": -0.2})
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def _short_labels(cols: list[str]) -> dict[str, str]:
    """Axis labels: the last part of each column name (``cfg.model_params.width`` -> ``width``), the
    full name without its ``cfg.``/``final.`` prefix where two last parts collide."""
    leaf = {c: c.split(".")[-1] for c in cols}
    counts = pd.Series(list(leaf.values())).value_counts()
    return {c: (leaf[c] if counts[leaf[c]] == 1 else c.split(".", 1)[-1]) for c in cols}


def _log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks of a log10 axis at 1, 2 and 5 times the powers of ten inside [lo, hi] (log10 values)."""
    vals = [math.log10(m * 10.0 ** e) for e in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in (1, 2, 5)]
    vals = [v for v in vals if lo - 1e-9 <= v <= hi + 1e-9] or [lo, hi]
    return vals, [f"{10 ** v:.3g}" for v in vals]


def parallel_coordinates_figure(results: pd.DataFrame, dims: Sequence[str] | None = None, color: str | None = None,
                                title: str | None = None, *, uirevision: str | None = None) -> go.Figure:
    """Parallel coordinates of a sweep's members: one axis per column of ``dims`` (by default every varied
    hyperparameter ``cfg.*`` but the seed) and one for ``color`` (the objective; all ``final.*`` metrics
    when it is None and ``dims`` is too), lines coloured by ``color``. Categorical columns (schedules,
    optimizers) become integer-coded axes with their labels; positive columns spanning decades (LR, weight
    decay) are drawn on a log10 scale with ticks in the real values. Labels are short and tilted so they
    do not overlap. Drag along an axis to brush (several axes combine); ``uirevision`` (the sweep id)
    keeps the brushes while the board refreshes."""
    if dims is None:
        cols = [c for c in results.columns if c.startswith("cfg.") and c != "cfg.seed"
                and results[c].astype(str).nunique() > 1]  # an axis with one value says nothing
        cols += [color] if color and color in results else [c for c in results.columns if c.startswith("final.")]
    else:
        cols = [*dims, *([color] if color else [])]
        for d in cols:
            if d not in results.columns:
                raise ValueError(f"{d}: not a column of the results; have {list(results.columns)}")
    labels = _short_labels(cols)
    fdims: list[dict[str, Any]] = []
    for c in cols:
        s = results[c]
        num = pd.to_numeric(s, errors="coerce")
        if num.notna().all() and len(num):
            if is_log_axis(c, num):
                v = np.log10(num.to_numpy(float))
                tv, tt = _log_ticks(float(v.min()), float(v.max()))
                fdims.append({"label": f"{labels[c]} (log)", "values": v, "tickvals": tv, "ticktext": tt})
            else:
                fdims.append({"label": labels[c], "values": num.to_numpy(float)})
        else:
            cats = sorted(s.astype(str).unique())
            code = {v: i for i, v in enumerate(cats)}
            fdims.append({"label": labels[c], "values": s.astype(str).map(code).to_numpy(),
                          "tickvals": list(range(len(cats))),
                          "ticktext": [html.escape(v, quote=False) for v in cats]})  # plotly parses tags in text
    line: dict[str, Any] = {}
    if color and color in results:
        cv = pd.to_numeric(results[color], errors="coerce")
        if cv.notna().any():
            line = {"color": cv.to_numpy(float), "colorscale": "Viridis", "showscale": True,
                    "colorbar": {"title": {"text": labels.get(color, color)}}}
    tilt = -25 if len(fdims) > 5 else 0
    fig = go.Figure(go.Parcoords(dimensions=fdims, line=line, labelangle=tilt, labelside="top",
                                 labelfont={"size": 12}, tickfont={"size": 10}, rangefont={"size": 9},
                                 uirevision=uirevision) if fdims else None)
    fig.update_layout(template="plotly_white", height=400, margin={"l": 70, "r": 70, "t": 90 if tilt else 70, "b": 30},
                      title={"text": title or "Parallel coordinates (drag along an axis to brush)", "y": 0.98},
                      uirevision=uirevision)
    return fig


def importance_figure(imp: pd.DataFrame, objective: str) -> go.Figure:
    """fANOVA importances (``workbench.importance.hyperparameter_importance``) as horizontal bars."""
    fig = go.Figure()
    if len(imp):
        d = imp.iloc[::-1]
        fig.add_trace(go.Bar(x=d["importance"], y=[p.removeprefix("cfg.") for p in d["param"]], orientation="h",
                             marker={"color": PALETTE[0]}, text=[f"{v:.2f}" for v in d["importance"]],
                             textposition="auto", name="importance"))
    n = imp.attrs.get("n_trials", 0)
    fig.update_layout(template="plotly_white", height=max(220, 60 + 40 * len(imp)),
                      margin={"l": 140, "r": 20, "t": 50, "b": 50}, xaxis_range=[0, 1],
                      title=f"Hyperparameter importance for {objective} (fANOVA, {n} members)",
                      xaxis_title="share of the objective's variance explained")
    return fig
