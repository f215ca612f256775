"""Processing of metric curves for display and comparison: smoothing, decimation, grouping.

Pure numpy / pandas, no plotting: the live monitor, the figure builders and notebooks share it.

Smoothing: :func:`ema` is the *debiased* exponential moving average of TensorBoard's scalar
dashboard and W&B's "Exponential moving average" (Adam's bias correction, Kingma & Ba 2015, §3)::

    m_t = w·m_(t-1) + (1 − w)·x_t,  m_0 = 0;    s_t = m_t / (1 − w^t)

with t counting the finite points so far; non-finite points are passed through unchanged and do
not move the average (as TensorBoard does). ``w = 0`` is no smoothing; ``s_t`` equals the weighted
mean Σ w^i x_(t−i) / Σ w^i (pandas ``ewm(alpha=1-w, adjust=True)``). It is computed with
``scipy.signal.lfilter`` (one IIR pass, O(n)), and can be continued on appended points from an
:class:`EmaState`, so a live curve is smoothed incrementally.

Decimation: :func:`minmax_decimate` keeps, for each of ``n_out / 2`` equal-count buckets, the
points with the smallest and the largest value (in their original order), plus the first and last
point: a spike — or a divergence — of one point is never hidden, which plain striding or
averaging does (the scheme of M4, Jugel et al. 2014, without the first/last-per-pixel column).
Non-finite values are kept where they fall in a bucket, so a curve's gaps stay visible.

Grouping: :func:`group_curves` groups runs by a config value (e.g. learning rate) and returns per
group and x the mean and the min/max band across the group's runs (seeds), aligning runs on exact
x values or by linear interpolation onto the union of their x values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from workbench.errors import WorkbenchError


class CurveError(WorkbenchError):
    """Bad input to a curve function: names the field and the allowed range."""


@dataclass(frozen=True)
class EmaState:
    """Where a debiased EMA stands after some points: the biased average ``m`` and the number of
    finite points ``count`` folded into it."""

    m: float = 0.0
    count: int = 0


def _check_weight(weight: float) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.floating)) or not 0 <= weight < 1:
        raise CurveError(f"weight: EMA smoothing weight must be in [0, 1), got {weight!r}")
    return float(weight)


def ema(values: Sequence[float] | np.ndarray, weight: float, *, state: EmaState | None = None,
        return_state: bool = False) -> np.ndarray | tuple[np.ndarray, EmaState]:
    """Debiased EMA of ``values`` with smoothing ``weight`` in [0, 1) (TensorBoard / W&B slider).

    With ``state`` the smoothing continues from earlier points (``ema(a + b) == concat(ema(a), ema(b,
    state=state_after_a))``); ``return_state=True`` also returns the state after the last point."""
    w = _check_weight(weight)
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise CurveError(f"values: must be one-dimensional, got shape {x.shape}")
    st = state or EmaState()
    out = x.copy()
    finite = np.isfinite(x)
    xf = x[finite]
    if xf.size:
        if w == 0.0:
            out[finite] = xf
            new = EmaState(float(xf[-1]), st.count + xf.size)
        else:
            m, _ = lfilter([1.0 - w], [1.0, -w], xf, zi=[w * st.m])
            k = st.count + np.arange(1, xf.size + 1)
            debias = -np.expm1(k * math.log(w))  # 1 - w**k, accurate for w near 1
            out[finite] = m / debias
            new = EmaState(float(m[-1]), int(k[-1]))
    else:
        new = st
    return (out, new) if return_state else out


def minmax_decimate(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
                    n_out: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n_out`` points of the curve (x, y) for display, keeping every bucket's min and max.

    Returns ``(x_kept, y_kept)``, a subsequence in the original order; curves of ``<= n_out`` points
    come back unchanged. The global minimum and maximum, and the first and last points, are always kept."""
    idx = minmax_indices(y, n_out)
    xa, ya = np.asarray(x), np.asarray(y, dtype=float)
    if xa.shape != ya.shape:
        raise CurveError(f"x, y: must have the same length, got {xa.shape} and {ya.shape}")
    return xa[idx], ya[idx]


def minmax_indices(y: Sequence[float] | np.ndarray, n_out: int = 2000) -> np.ndarray:
    """Indices (sorted) that :func:`minmax_decimate` keeps."""
    if isinstance(n_out, bool) or not isinstance(n_out, (int, np.integer)) or n_out < 4:
        raise CurveError(f"n_out: must be an integer >= 4, got {n_out!r}")
    ya = np.asarray(y, dtype=float)
    if ya.ndim != 1:
        raise CurveError(f"y: must be one-dimensional, got shape {ya.shape}")
    n = ya.size
    if n <= n_out:
        return np.arange(n)
    inner = ya[1:-1]
    finite = np.isfinite(inner)
    gaps = not finite.all()
    n_buckets = (n_out - 2) // (3 if gaps else 2)  # a bucket keeps its min, its max (and its first gap)
    size = math.ceil(inner.size / n_buckets)
    n_buckets = math.ceil(inner.size / size)
    pad = n_buckets * size - inner.size
    lo = np.concatenate([np.where(finite, inner, np.inf), np.full(pad, np.inf)]).reshape(n_buckets, size)
    hi = np.concatenate([np.where(finite, inner, -np.inf), np.full(pad, -np.inf)]).reshape(n_buckets, size)
    base = np.arange(n_buckets) * size
    keep = [base + lo.argmin(axis=1), base + hi.argmax(axis=1)]
    if gaps:
        nf = np.concatenate([~finite, np.zeros(pad, bool)]).reshape(n_buckets, size)
        keep.append((base + nf.argmax(axis=1))[nf.any(axis=1)])
    inner_idx = np.concatenate(keep)
    inner_idx = inner_idx[inner_idx < inner.size] + 1
    return np.unique(np.concatenate([[0], inner_idx, [n - 1]]))


def group_curves(df: pd.DataFrame, by: str, *, x: str = "step", y: str = "value", run: str = "run",
                 align: str = "exact") -> pd.DataFrame:
    """Mean and min/max band across the runs of each group, per x.

    ``df``: long rows with columns ``run``, ``by`` (the group key, e.g. ``cfg.lr``), ``x`` and ``y``
    (one metric). ``align="exact"`` aggregates the runs that logged each x value; ``"interp"``
    interpolates each run linearly onto the union of the group's x values inside the run's own
    range (no extrapolation). Returns columns ``group, x, mean, min, max, n`` (n = runs aggregated),
    sorted by group and x. Non-finite values are ignored by the aggregates."""
    for col in (run, by, x, y):
        if col not in df.columns:
            raise CurveError(f"df: missing column {col!r} (have {sorted(map(str, df.columns))})")
    if align not in ("exact", "interp"):
        raise CurveError(f"align: must be 'exact' or 'interp', got {align!r}")
    cols = ["group", "x", "mean", "min", "max", "n"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    d = df[[run, by, x, y]].rename(columns={run: "run", by: "group", x: "x", y: "y"}).copy()
    d["y"] = d["y"].astype(float).where(np.isfinite(d["y"].astype(float)))
    d = d.dropna(subset=["x", "y"])
    if align == "interp":
        parts = []
        for g, gd in d.groupby("group", sort=True, dropna=False):
            grid = np.unique(gd["x"].to_numpy(float))
            for r, rd in gd.groupby("run", sort=False):
                rd = rd.groupby("x", sort=True)["y"].last()
                xs, ys = rd.index.to_numpy(float), rd.to_numpy(float)
                gx = grid[(grid >= xs[0]) & (grid <= xs[-1])]
                parts.append(pd.DataFrame({"group": g, "run": r, "x": gx, "y": np.interp(gx, xs, ys)}))
        d = pd.concat(parts, ignore_index=True) if parts else d.iloc[:0]
    else:
        d = d.groupby(["group", "run", "x"], sort=False, dropna=False)["y"].last().reset_index()
    out = d.groupby(["group", "x"], sort=True, dropna=False)["y"].agg(["mean", "min", "max", "count"])
    out = out.rename(columns={"count": "n"}).reset_index()
    return out[cols]


def x_values(df: pd.DataFrame, x: str) -> pd.Series:
    """The x column for the x-axis choice ``x`` in ``("step", "tokens", "wall")``; wall time is given
    in seconds since each run's first row."""
    if x not in ("step", "tokens", "wall"):
        raise CurveError(f"x: must be 'step', 'tokens' or 'wall', got {x!r}")
    if x == "wall":
        return df["wall"] - df.groupby("run")["wall"].transform("min")
    return df[x]


def band_on_grid(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], n: int = 1000, *,
                 log_x: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and min/max band of several curves (one group's seeds) on a common grid of ``n`` x values.

    Each curve is interpolated linearly onto the grid inside its own x range (no extrapolation);
    the grid spans all curves' x values (log-spaced with ``log_x``, for a log axis). O(total points),
    so a live dashboard can recompute it every second for 64 runs of 1e5 points (unlike
    :func:`group_curves`, which keeps every logged x). Non-finite y values are skipped.
    Returns ``(grid, mean, min, max, count)``; where no curve covers a grid point, mean/min/max are NaN."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise CurveError(f"n: grid size must be an integer >= 2, got {n!r}")
    if len(xs) != len(ys):
        raise CurveError(f"xs, ys: need as many x arrays as y arrays, got {len(xs)} and {len(ys)}")
    curves = []
    for xa, ya in zip(xs, ys):
        xa, ya = np.asarray(xa, float), np.asarray(ya, float)
        ok = np.isfinite(xa) & np.isfinite(ya) & ((xa > 0) if log_x else True)
        xa, ya = xa[ok], ya[ok]
        if xa.size:
            o = np.argsort(xa, kind="stable")
            curves.append((xa[o], ya[o]))
    if not curves:
        e = np.array([])
        return e, e, e, e, np.array([], dtype=int)
    lo = min(c[0][0] for c in curves)
    hi = max(c[0][-1] for c in curves)
    grid = np.geomspace(lo, hi, n) if log_x and hi > lo else np.linspace(lo, hi, n)
    stack = np.full((len(curves), n), np.nan)
    for i, (xa, ya) in enumerate(curves):
        inside = (grid >= xa[0]) & (grid <= xa[-1])
        stack[i, inside] = np.interp(grid[inside], xa, ya)
    count = np.isfinite(stack).sum(axis=0)
    with warnings.catch_warnings():  # all-NaN columns (no curve covers them) are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, mn, mx = np.nanmean(stack, axis=0), np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
    return grid, mean, mn, mx, count
