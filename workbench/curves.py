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

from workbench.errors import WorkbenchError


class CurveError(WorkbenchError):
    """Bad input to a curve function: names the field and the allowed range."""


@dataclass(frozen=True)
class EmaState:
    """Where a debiased EMA stands after some points: the biased average ``m`` and the number of
    finite points ``count`` folded into it."""

    m: float = 0.0
    count: int = 0


NOT_SMOOTHED = frozenset({"lr", "eff_lr"})
"""Metrics drawn as logged whatever the smoothing (also ``lr/<group>``): a learning-rate schedule smoothed
would show a warm-up or a decay that did not happen, and a constant LR a zig-zag."""


def smoothing_for(name: str, weight: float) -> float:
    """The EMA weight to draw metric ``name`` with: 0 for the schedule's own values (``NOT_SMOOTHED``)."""
    return 0.0 if name in NOT_SMOOTHED or name.startswith("lr/") else weight


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
            if xf.size <= 256:  # a live tick's few new points: a loop, no scipy (whose import takes ~0.5 s)
                m, acc = np.empty(xf.size), st.m
                for i, v in enumerate(xf.tolist()):
                    acc = w * acc + (1.0 - w) * v
                    m[i] = acc
            else:
                from scipy.signal import lfilter  # imported on first use, not with the module

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
                 log_x: bool = False, quantiles: tuple[float, float] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and min/max band of several curves (one group's seeds) on a common grid of ``n`` x values.

    Each curve is interpolated linearly onto the grid inside its own x range (no extrapolation);
    the grid spans all curves' x values (log-spaced with ``log_x``, for a log axis). O(total points),
    so a live dashboard can recompute it every second for 64 runs of 1e5 points (unlike
    :func:`group_curves`, which keeps every logged x). Non-finite y values are skipped.
    Returns ``(grid, mean, min, max, count)``; where no curve covers a grid point, mean/min/max are NaN.
    With ``quantiles=(q_lo, q_hi)`` (in [0, 1]) the band is those quantiles across the curves instead of
    min and max (e.g. ``(0.25, 0.75)``: the middle half of the seeds)."""
    if quantiles is not None and not (len(quantiles) == 2 and 0 <= quantiles[0] <= quantiles[1] <= 1):
        raise CurveError(f"quantiles: must be two numbers 0 <= q_lo <= q_hi <= 1, got {quantiles!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise CurveError(f"n: grid size must be an integer >= 2, got {n!r}")
    if len(xs) != len(ys):
        raise CurveError(f"xs, ys: need as many x arrays as y arrays, got {len(xs)} and {len(ys)}")
    curves = []
    for xa, ya in zip(xs, ys):
        xa, ya = np.asarray(xa, float), np.asarray(ya, float)
        ok = np.isfinite(xa) & np.isfinite(ya) & ((xa > 0) if log_x else True)
        if not ok.all():
            xa, ya = xa[ok], ya[ok]
        if xa.size:
            if xa.size > 1 and (xa[1:] < xa[:-1]).any():  # a live series is in step order: no sort then
                o = np.argsort(xa, kind="stable")
                xa, ya = xa[o], ya[o]
            curves.append((xa, ya))
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
        mean = np.nanmean(stack, axis=0)
        if quantiles is None:
            mn, mx = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
        else:
            mn, mx = nanquantile_columns(stack, quantiles)
    return grid, mean, mn, mx, count


def nanquantile_columns(a: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``np.nanquantile(a, qs, axis=0)`` (linear interpolation, NaN where a column has no finite value)
    for a 2-d ``a``, in one sort. numpy's ``nanquantile`` along an axis loops in Python over the columns
    (``apply_along_axis``): 400 columns of a group band took 0.1 s, most of a live monitor's tick."""
    a = np.where(np.isfinite(a), a, np.nan)
    srt = np.sort(a, axis=0)  # NaN sorts last
    cnt = np.isfinite(a).sum(axis=0)
    out = np.full((len(qs), a.shape[1]), np.nan)
    ok = cnt > 0
    if not ok.any():
        return out
    cols = np.flatnonzero(ok)
    for i, q in enumerate(qs):
        pos = float(q) * (cnt[ok] - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, cnt[ok] - 1)
        frac = pos - lo
        vlo, vhi = srt[lo, cols], srt[hi, cols]
        out[i, ok] = vlo + (vhi - vlo) * frac
    return out


# --------------------------------------------------------------------------- incremental decimation
BUCKET_COLS = ("n", "k", "sum", "lo", "lo_step", "lo_tokens", "lo_wall", "hi", "hi_step", "hi_tokens",
               "hi_wall", "nf_step")
"""Per-bucket columns of :class:`MinMaxBuckets`: rows ``n``, finite rows ``k`` and their ``sum``; the
minimum ``lo`` and maximum ``hi`` finite value with the step, tokens and wall time of the row that holds
it (the earliest on ties); ``nf_step`` the first step with a non-finite value (NaN if none)."""


def _reduce_buckets(b: np.ndarray, c: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Merge the rows of a bucket table that share a bucket number (``b`` sorted, ties in arrival order)."""
    if b.size == 0:
        return b, c
    start = np.flatnonzero(np.concatenate([[True], b[1:] != b[:-1]]))
    if start.size == b.size:
        return b, c
    out = {"n": np.add.reduceat(c["n"], start), "k": np.add.reduceat(c["k"], start),
           "sum": np.add.reduceat(c["sum"], start), "nf_step": np.fmin.reduceat(c["nf_step"], start)}
    pos = np.arange(b.size)
    group = np.cumsum(np.concatenate([[0], (b[1:] != b[:-1]).astype(np.int64)]))
    for side, red, fill in (("lo", np.minimum, np.inf), ("hi", np.maximum, -np.inf)):
        v = np.where(np.isnan(c[side]), fill, c[side])
        best = red.reduceat(v, start)
        # the first row of each bucket that holds the extreme value (earliest wins ties)
        first = np.minimum.reduceat(np.where(v == best[group], pos, b.size), start)
        for col in ("", "_step", "_tokens", "_wall"):
            out[side + col] = c[side + col][first]
        out[side] = np.where(np.isinf(best) & (best == fill), np.nan, out[side])
    return b[start], out


class MinMaxBuckets:
    """Min/max decimation of one growing series, kept incrementally: the points of each bucket of
    ``width`` consecutive steps (``width`` a power of two) are summarised by the rows holding their
    minimum and maximum (with step, tokens, wall), their count and finite sum (for smoothing and group
    means) and their first non-finite step. When there are more than ``max_buckets`` buckets the width
    doubles and neighbouring buckets merge, which is exact (the min of two buckets is the min of their
    mins). So appending points in any number of pieces gives the same buckets as summarising all of
    them at once (:meth:`from_points`), and an append costs O(new points), not O(history).

    The scheme is M4's (Jugel et al. 2014, "M4: a visualization-oriented time series data aggregation")
    min/max per bucket, on a fixed power-of-two grid of steps so that the store can keep the same
    summary per block of 64 steps (``RunStore.overview``) and a summary read from it continues here.
    Hand-written rather than taken from HoloViews/Datashader: ``decimate`` there samples points at random
    (a one-step spike or divergence can vanish) and ``rasterize`` re-aggregates the whole series into an
    image on every update; neither keeps a summary that new points extend.
    """

    def __init__(self, max_buckets: int = 700, width: int = 1) -> None:
        if isinstance(max_buckets, bool) or not isinstance(max_buckets, (int, np.integer)) or max_buckets < 2:
            raise CurveError(f"max_buckets: must be an integer >= 2, got {max_buckets!r}")
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1 or width & (width - 1):
            raise CurveError(f"width: must be a power of two >= 1, got {width!r}")
        self.max_buckets, self.width = int(max_buckets), int(width)
        self.b = np.empty(0, dtype=np.int64)
        self.c: dict[str, np.ndarray] = {k: np.empty(0) for k in BUCKET_COLS}
        self.last: tuple[float, float, float, float] | None = None  # (step, tokens, wall, value) of the newest row
        self.first_wall = math.nan

    # ------------------------------------------------------------------ building
    @classmethod
    def from_points(cls, step: np.ndarray, value: np.ndarray, tokens: np.ndarray | None = None,
                    wall: np.ndarray | None = None, *, max_buckets: int = 700, width: int = 1) -> MinMaxBuckets:
        """The summary of all these points at once (the reference that incremental appends equal)."""
        m = cls(max_buckets, width)
        m.append(step, value, tokens, wall)
        return m

    @classmethod
    def from_buckets(cls, width: int, b: np.ndarray, cols: dict[str, np.ndarray], *, max_buckets: int = 700,
                     last: tuple[float, float, float, float] | None = None,
                     first_wall: float = math.nan) -> MinMaxBuckets:
        """A summary from bucket rows already reduced at ``width`` (e.g. read from the run store)."""
        m = cls(max_buckets, width)
        o = np.argsort(np.asarray(b, dtype=np.int64), kind="stable")
        m.b, m.c = _reduce_buckets(np.asarray(b, dtype=np.int64)[o], {k: np.asarray(cols[k], float)[o]
                                                                        for k in BUCKET_COLS})
        m.last, m.first_wall = last, first_wall
        m._shrink()
        return m

    def append(self, step: np.ndarray, value: np.ndarray, tokens: np.ndarray | None = None,
               wall: np.ndarray | None = None) -> None:
        """Fold new rows (in commit order) into the summary."""
        s = np.asarray(step, dtype=np.int64)
        v = np.asarray(value, dtype=float)
        if s.shape != v.shape or s.ndim != 1:
            raise CurveError(f"step, value: must be one-dimensional and of one length, got {s.shape} and {v.shape}")
        if s.size == 0:
            return
        if s.min() < 0:
            raise CurveError(f"step: must be >= 0, got {int(s.min())}")
        t = np.full(s.size, np.nan) if tokens is None else np.asarray(tokens, dtype=float)
        w = np.full(s.size, np.nan) if wall is None else np.asarray(wall, dtype=float)
        fin = np.isfinite(v)
        vf = np.where(fin, v, np.nan)
        new = {"n": np.ones(s.size), "k": fin.astype(float), "sum": np.where(fin, v, 0.0),
               "lo": vf, "lo_step": s.astype(float), "lo_tokens": t, "lo_wall": w,
               "hi": vf, "hi_step": s.astype(float), "hi_tokens": t, "hi_wall": w,
               "nf_step": np.where(fin, np.nan, s.astype(float))}
        if math.isnan(self.first_wall) and w.size:
            self.first_wall = float(w[0])
        self.last = (float(s[-1]), float(t[-1]), float(w[-1]), float(v[-1]))
        self._merge(s // self.width, new)
        self._shrink()

    def _merge(self, bn: np.ndarray, new: dict[str, np.ndarray]) -> None:
        i = int(np.searchsorted(self.b, bn.min()))  # only buckets from the first touched one are redone
        b = np.concatenate([self.b[i:], bn])
        cols = {k: np.concatenate([self.c[k][i:], new[k]]) for k in BUCKET_COLS}
        o = np.argsort(b, kind="stable")
        b, cols = _reduce_buckets(b[o], {k: a[o] for k, a in cols.items()})
        self.b = np.concatenate([self.b[:i], b])
        self.c = {k: np.concatenate([self.c[k][:i], cols[k]]) for k in BUCKET_COLS}

    def _shrink(self) -> None:
        while self.b.size > self.max_buckets:
            self.width *= 2
            self.b, self.c = _reduce_buckets(self.b // 2, self.c)

    # ------------------------------------------------------------------ reading
    @property
    def n(self) -> int:
        """Rows summarised."""
        return int(self.c["n"].sum())

    def points(self, x: str = "step", smoothing: float = 0.0) -> dict[str, np.ndarray]:
        """The display points in step order: each bucket's min and max rows (one point if they are the
        same step), a NaN at its first non-finite step, and the newest row. Columns ``x`` (step, tokens or
        wall time since the first row), ``y``, ``ys`` (debiased EMA of the bucket means, a bucket of k
        finite rows counting as k rows at its mean: exactly :func:`ema` where no bucket holds two
        finite rows) and ``step``."""
        if x not in ("step", "tokens", "wall"):
            raise CurveError(f"x: must be 'step', 'tokens' or 'wall', got {x!r}")
        c, nb = self.c, self.b.size
        ys_b = _bucket_ema(c["k"], c["sum"], _check_weight(smoothing))
        one = c["lo_step"] == c["hi_step"]
        order_lo_first = ~(c["hi_step"] < c["lo_step"])
        parts = []
        for side in ("lo", "hi"):
            keep = np.isfinite(c[side]) & (~one | (side == "lo"))
            first = order_lo_first if side == "lo" else ~order_lo_first
            parts.append((c[side + "_step"][keep], np.where(first[keep], 0, 1), c[side][keep],
                          ys_b[keep], c[side + "_tokens"][keep], c[side + "_wall"][keep]))
        nf = np.isfinite(c["nf_step"])
        parts.append((c["nf_step"][nf], np.full(nf.sum(), 2), np.full(nf.sum(), np.nan),
                      np.full(nf.sum(), np.nan), np.full(nf.sum(), np.nan), np.full(nf.sum(), np.nan)))
        if self.last is not None and nb:
            ls, lt, lw, lv = self.last
            shown = np.concatenate([p[0] for p in parts]) if parts else np.empty(0)
            if not np.any(shown == ls) and math.isfinite(lv):
                parts.append((np.array([ls]), np.array([3]), np.array([lv]), ys_b[-1:], np.array([lt]),
                              np.array([lw])))
        st, tie, y, ys, tok, wall = (np.concatenate([p[i] for p in parts]) for i in range(6))
        o = np.lexsort((tie, st))
        st, y, ys, tok, wall = st[o], y[o], ys[o], tok[o], wall[o]
        xs = st if x == "step" else tok if x == "tokens" else wall - self.first_wall
        return {"x": xs, "y": y, "ys": ys if smoothing else y, "step": st}

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """Each bucket's step at the middle of its rows' min and max step, and its finite mean (NaN if none)."""
        c = self.c
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(c["k"] > 0, c["sum"] / c["k"], np.nan)
        mid = np.where(np.isfinite(c["lo_step"]), 0.5 * (c["lo_step"] + c["hi_step"]), self.b * self.width)
        return mid, mean


def _bucket_ema(k: np.ndarray, total: np.ndarray, w: float) -> np.ndarray:
    """Debiased EMA over buckets: a bucket of ``k`` finite rows with sum ``total`` moves the average as
    ``k`` rows at its mean would (weight ``w**k``); buckets without finite rows carry it unchanged (NaN
    until the first). With every ``k`` in {0, 1} this is :func:`ema` of the rows."""
    out = np.full(k.size, np.nan)
    if w == 0.0:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(k > 0, total / np.maximum(k, 1), np.nan)
    lw = math.log(w)
    m, cnt = 0.0, 0.0
    for i in range(k.size):  # O(buckets): the summary is at most max_buckets long
        ki = k[i]
        if ki > 0:
            a = math.exp(ki * lw)
            m = a * m + (1.0 - a) * (total[i] / ki)
            cnt += ki
        if cnt > 0:
            out[i] = m / -math.expm1(cnt * lw)
    return out
