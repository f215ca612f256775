"""Plotly figures of metric curves: one panel per metric (train and test of the same quantity
overlaid), runs coloured by a hyperparameter, debiased-EMA smoothing with the raw curve faint
behind, log axes, and mean + min/max bands across seeds. Used by the live monitor's export, the
sweep board and notebooks; the processing itself is in :mod:`workbench.curves`.

Input is the store's long form (``RunStore.metrics`` / ``tail``: columns ``run, step, tokens,
wall, name, value``) and, optionally, the runs table (``RunStore.runs(expand_config=True)``) for
names and hyperparameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

from workbench.curves import CurveError, ema, group_curves, minmax_decimate, smoothing_for, x_values

GROKKING_METRICS = ("train_acc", "test_acc", "train_loss", "test_loss", "weight_norm", "sum_sq_weights",
                    "sc_fraction", "zero_loss_fraction", "grad_weight_cos", "restricted_loss", "excluded_loss")
"""Metrics of the grokking view (Power et al. 2022; Nanda et al. 2023 progress measures: restricted
/ excluded loss, sum of squared weights; Prieto et al. 2025: Softmax Collapse fraction, zero-loss
fraction, gradient–weight cosine), shown when the store has them."""

X_TITLES = {"step": "step", "tokens": "tokens", "wall": "wall time (s)"}


def metric_panels(names: Sequence[str], *, overlay: bool = True) -> list[tuple[str, list[str]]]:
    """Group metric names into panels: with ``overlay``, ``train_X`` / ``test_X`` (also ``val_X``)
    share the panel ``X``; others get their own. Order follows the first appearance in ``names``."""
    panels: dict[str, list[str]] = {}
    for n in names:
        key = n
        if overlay:
            for pre in ("train_", "test_", "val_"):
                if n.startswith(pre) and len(n) > len(pre):
                    key = n[len(pre):]
                    break
        panels.setdefault(key, []).append(n)
    return [(k, v) for k, v in panels.items()]


def is_test_metric(name: str) -> bool:
    return name.startswith(("test_", "val_"))


def colour_map(values: Sequence, colorscale: str = "Viridis") -> dict:
    """A colour per distinct value: numeric values on a continuous scale (log-spaced when all are
    positive and span more than 10x, as learning rates do), others from a qualitative palette."""
    uniq = [v for v in dict.fromkeys(values)]
    nums = [v for v in uniq if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            and math.isfinite(float(v))]
    if uniq and len(nums) == len(uniq) and len(uniq) > 1:
        arr = np.array(nums, dtype=float)
        if arr.min() > 0 and arr.max() / arr.min() > 10:
            arr = np.log(arr)
        lo, hi = arr.min(), arr.max()
        pos = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        cols = sample_colorscale(colorscale, list(0.05 + 0.85 * pos))
        return dict(zip(uniq, cols))
    pal = qualitative.Plotly + qualitative.D3
    return {v: pal[i % len(pal)] for i, v in enumerate(uniq)}


def _rgba(col: str, alpha: float) -> str:
    col = col.strip()
    if col.startswith("#"):
        h = col.lstrip("#")
        r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    elif col.startswith("rgb"):
        r, g, b = (float(v) for v in col[col.index("(") + 1:col.index(")")].split(",")[:3])
    else:
        return col
    return f"rgba({int(r)},{int(g)},{int(b)},{alpha})"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def check_curve_args(metrics: pd.DataFrame, x: str, cols: int) -> None:
    """Raise :class:`CurveError` naming the field unless ``x`` is an x-axis choice, ``cols >= 1`` and
    ``metrics`` has the long form's columns (shared by this module's and the Bokeh curve figures)."""
    if x not in X_TITLES:
        raise CurveError(f"x: must be one of {sorted(X_TITLES)}, got {x!r}")
    if cols < 1:
        raise CurveError(f"cols: must be >= 1, got {cols}")
    need = {"run", "name", "value", x}
    if not need <= set(metrics.columns):
        raise CurveError(f"metrics: missing columns {sorted(need - set(metrics.columns))}")


def curves_figure(metrics: pd.DataFrame, runs: pd.DataFrame | None = None, *, names: Sequence[str] | None = None,
                  x: str = "step", log_x: bool = False, log_y: bool = False, smoothing: float = 0.0,
                  color_by: str | None = None, bands: bool = False, overlay: bool = True,
                  max_points: int = 2000, cols: int = 2, title: str | None = None,
                  height_per_row: int = 300) -> go.Figure:
    """Metric curves of some runs, one subplot per metric panel.

    ``metrics``: long rows (``run, step, tokens, wall, name, value``). ``runs``: the runs table (``id``,
    ``name``, ``cfg.*``) for labels and ``color_by`` (a column such as ``cfg.lr``). ``smoothing``:
    debiased-EMA weight in [0, 1); when > 0 the raw curve is drawn faint behind. ``bands``: with
    ``color_by``, one mean line per group with a min/max band across its runs instead of one line
    per run. Each drawn line is decimated to ``max_points`` keeping spikes."""
    check_curve_args(metrics, x, cols)
    ema(np.zeros(1), smoothing)  # validates the weight
    df = metrics if names is None else metrics[metrics["name"].isin(list(names))]
    order = list(names) if names is not None else sorted(df["name"].unique())
    order = [n for n in order if n in set(df["name"])]
    panels = metric_panels(order, overlay=overlay)
    df = df.assign(_x=x_values(df, x))
    if x == "tokens":
        df = df[df["_x"].notna()]

    labels: dict = {}
    group_of: dict = {}
    if runs is not None and len(runs):
        meta = runs.set_index("id")
        labels = {rid: str(meta.at[rid, "name"]) if "name" in meta else str(rid) for rid in meta.index}
        if color_by is not None:
            if color_by not in meta.columns:
                raise CurveError(f"color_by: no column {color_by!r} in the runs table "
                                 f"(have {sorted(c for c in meta.columns if c.startswith('cfg.'))})")
            group_of = meta[color_by].to_dict()
    run_ids = list(dict.fromkeys(df["run"]))
    if color_by is not None and not group_of:
        group_of = {r: None for r in run_ids}
    keyed = [group_of.get(r) for r in run_ids] if color_by else run_ids
    cmap = colour_map([k for k in keyed if k is not None] or [None])
    colour = {r: cmap.get(k, "#888888") for r, k in zip(run_ids, keyed)}

    n_rows = max(1, math.ceil(len(panels) / cols))
    n_cols = min(cols, max(1, len(panels)))
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[p for p, _ in panels] or [""],
                        horizontal_spacing=0.08, vertical_spacing=min(0.12, 0.3 / n_rows))
    shown_legend: set = set()
    for i, (_panel, members) in enumerate(panels):
        row, col = i // n_cols + 1, i % n_cols + 1
        for name in members:
            dash = "dash" if is_test_metric(name) and len(members) > 1 else "solid"
            sub = df[df["name"] == name]
            w = smoothing_for(name, smoothing)  # the learning rate is drawn as logged
            if bands and color_by:
                sub = sub.assign(_g=sub["run"].map(group_of))
                g = group_curves(sub, "_g", x="_x", y="value", align="interp")
                for gv, gd in g.groupby("group", sort=True):
                    c = cmap.get(gv, "#888888")
                    xs = gd["x"].to_numpy()
                    mean = ema(gd["mean"].to_numpy(), w) if w else gd["mean"].to_numpy()
                    fig.add_trace(go.Scatter(x=np.concatenate([xs, xs[::-1]]),
                                             y=np.concatenate([gd["max"].to_numpy(), gd["min"].to_numpy()[::-1]]),
                                             fill="toself", fillcolor=_rgba(c, 0.18), line={"width": 0},
                                             hoverinfo="skip", showlegend=False, legendgroup=str(gv)),
                                  row=row, col=col)
                    label = f"{color_by.removeprefix('cfg.')}={_fmt(gv)}"
                    fig.add_trace(go.Scatter(x=xs, y=mean, mode="lines", name=label, legendgroup=str(gv),
                                             line={"color": c, "dash": dash},
                                             showlegend=label not in shown_legend,
                                             hovertemplate=f"{name} {label}<br>%{{x}}: %{{y:.4g}} (n=%{{customdata}})",
                                             customdata=gd["n"].to_numpy()),
                                  row=row, col=col)
                    shown_legend.add(label)
                continue
            for rid, rd in sub.groupby("run", sort=False):
                rd = rd.sort_values("_x")
                xs, ys = rd["_x"].to_numpy(), rd["value"].to_numpy(float)
                c = colour[rid]
                label = labels.get(rid, str(rid))
                if color_by:
                    label = f"{label} ({color_by.removeprefix('cfg.')}={_fmt(group_of.get(rid))})"
                if w:
                    xr, yr = minmax_decimate(xs, ys, max_points)
                    fig.add_trace(go.Scatter(x=xr, y=yr, mode="lines", line={"color": _rgba(c, 0.25), "width": 1,
                                                                             "dash": dash},
                                             hoverinfo="skip", showlegend=False, legendgroup=str(rid)),
                                  row=row, col=col)
                    ys = ema(ys, w)
                xd, yd = minmax_decimate(xs, ys, max_points)
                fig.add_trace(go.Scatter(x=xd, y=yd, mode="lines", name=label, legendgroup=str(rid),
                                         line={"color": c, "dash": dash}, showlegend=label not in shown_legend,
                                         hovertemplate=f"{label} {name}<br>%{{x}}: %{{y:.4g}}<extra></extra>"),
                              row=row, col=col)
                shown_legend.add(label)
    fig.update_xaxes(type="log" if log_x else "linear", title_text=X_TITLES[x])
    fig.update_yaxes(type="log" if log_y else "linear")
    fig.update_layout(template="plotly_white", height=max(320, height_per_row * n_rows),
                      title=title, margin={"l": 50, "r": 20, "t": 60 if title else 40, "b": 40},
                      legend={"font": {"size": 10}})
    return fig
