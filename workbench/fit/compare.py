"""Comparing fitted laws: ranking by held-out error and AIC, the crossover of two laws (the scale where
one overtakes the other, "Rethinking conventional wisdom..." / Languini Kitchen) with a bootstrap
interval, and extrapolation to target scales with bands."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from workbench.fit.errors import FitDataError
from workbench.fit.result import FitResult


def compare(results: Sequence[FitResult] | Mapping[str, FitResult], test: object | None = None) -> pd.DataFrame:
    """One row per fit: k, n, R², AIC, BIC, held-out mean / worst relative error (from ``test`` if given,
    else each fit's own holdout); sorted by held-out mean relative error, then AIC."""
    items = results.items() if isinstance(results, Mapping) else [(r.law.name, r) for r in results]
    rows = []
    for name, r in items:
        ho = r.evaluate(test) if test is not None else (r.heldout or {})
        rows.append({"law": name, "k": r.law.n_params, "n": r.n, "r2": r.r2, "aic": r.aic, "bic": r.bic,
                     "heldout_mean_rel": ho.get("mean_rel", np.nan), "heldout_worst_rel": ho.get("worst_rel", np.nan)})
    df = pd.DataFrame(rows).sort_values(["heldout_mean_rel", "aic"], na_position="last").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


def _cross(fa: Callable[[np.ndarray], np.ndarray], fb: Callable[[np.ndarray], np.ndarray],
           lo: float, hi: float, n: int = 400) -> float:
    xs = np.geomspace(lo, hi, n)
    d = fa(xs) - fb(xs)
    s = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
    if not len(s):
        return np.nan
    i = s[0]
    g = lambda lx: float(fa(np.array([np.exp(lx)]))[0] - fb(np.array([np.exp(lx)]))[0])  # noqa: E731
    return float(np.exp(brentq(g, np.log(xs[i]), np.log(xs[i + 1]))))


def crossover(a: FitResult, b: FitResult, *, var: str = "x", lo: float = 1e-6, hi: float = 1e30,
              fixed: Mapping[str, float] | None = None, level: float = 0.95) -> dict:
    """Scale of ``var`` (other inputs ``fixed``) where the predictions of ``a`` and ``b`` first cross in
    [lo, hi] (log grid + brentq); with bootstrap samples in both, a percentile interval over paired resamples."""
    if not 0 < lo < hi:
        raise FitDataError(f"lo, hi: need 0 < lo < hi, got {lo}, {hi}")
    fixed = dict(fixed or {})

    def f(r: FitResult, theta: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        return lambda xs: r.law.predict(theta, {var: xs, **{k: np.full_like(xs, v) for k, v in fixed.items()}})

    x0 = _cross(f(a, a.theta), f(b, b.theta), lo, hi)
    out = {"x": x0, "ci": None, "boot": None}
    if a.boot is not None and b.boot is not None:
        m = min(len(a.boot), len(b.boot))
        xs = np.array([_cross(f(a, a.boot[i]), f(b, b.boot[i]), lo, hi) for i in range(m)])
        ok = xs[np.isfinite(xs)]
        out["boot"] = xs
        out["found_fraction"] = float(len(ok) / max(m, 1))
        if len(ok):
            out["ci"] = tuple(float(v) for v in np.percentile(ok, [(1 - level) / 2 * 100, (1 + level) / 2 * 100]))
    return out


def extrapolate(results: Sequence[FitResult] | Mapping[str, FitResult], X: Mapping[str, Sequence[float]],
                band: float = 0.95) -> pd.DataFrame:
    """Predictions of every fit at the target inputs ``X`` with bootstrap bands where available."""
    items = results.items() if isinstance(results, Mapping) else [(r.law.name, r) for r in results]
    X = {k: np.atleast_1d(np.asarray(v, float)) for k, v in X.items()}
    rows = []
    for name, r in items:
        if r.boot is not None and len(r.boot):
            p, lo, hi = r.predict(X, band=band)
        else:
            p = r.predict(X)
            lo = hi = np.full_like(p, np.nan)
        for i in range(len(p)):
            rows.append({"law": name, **{k: v[i] for k, v in X.items()}, "pred": p[i], "lo": lo[i], "hi": hi[i]})
    return pd.DataFrame(rows)
