"""``fit(law, data)``: the papers' procedure. Huber loss (δ = 1e-3 by default) on log residuals,
**summed** over points (Hoffmann et al. 2022 App. D.2; Besiroglu et al. 2024 note that a mean makes
L-BFGS stop early), from every start of the law's grid, all starts as one batched L-BFGS problem
(:mod:`workbench.fit.core`), best few polished with scipy L-BFGS-B; or the law's own procedure (the
multi-power law's). ``loss="ls_log"`` / ``"ls"``: least squares on log / linear residuals (Step Law, Gadre
et al.). Parameters can be held fixed (``fixed={"alpha": 0.5}``, lmfit's ``vary=False``).

Uncertainty: the bootstrap refits every resample with the point estimate's own procedure (the law's
``procedure`` when it has one, else batched L-BFGS on the same objective and bounds, started from the
point estimate); whole curves are resampled with >= 3 curves, blocks of consecutive points within each
curve with fewer (a moving-block bootstrap, Künsch 1989; the result's notes say so). ``calibrate=True``
measures the law's misspecification by backtests on the fitted data (:mod:`workbench.fit.calibration`) so
that ``predict(x, level=...)`` bands widen with the distance from the data. The work runs with one thread
(:mod:`workbench.fit.threads`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from workbench.fit.calibration import backtest
from workbench.fit.core import batched_lbfgs, multistart
from workbench.fit.data import FitData, holdout_mask
from workbench.fit.diagnostics import gap_trends
from workbench.fit.errors import FitDataError
from workbench.fit.laws import Law, get_law
from workbench.fit.objective import LOSSES, objective, with_fixed
from workbench.fit.result import FitResult
from workbench.fit.threads import small_problem_threads

__all__ = ["LOSSES", "fit", "objective"]


def _block_weights(labels: np.ndarray, inv: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    W = np.zeros((n, len(inv)))
    for g in range(len(labels)):
        idx = np.nonzero(inv == g)[0]
        m = len(idx)
        b = max(1, int(round(m ** (1 / 3))))
        nb = int(np.ceil(m / b))
        for i in range(n):
            starts = rng.integers(0, m - b + 1, size=nb)
            take = (starts[:, None] + np.arange(b)[None, :]).ravel()[:m]
            W[i, idx] += np.bincount(take, minlength=m)
    return W


def _boot_weights(data: FitData, n: int, by: str, rng: np.random.Generator) -> np.ndarray:
    """[n, points] resample counts: ``points`` (iid), ``curves`` (whole groups) or ``blocks`` (moving blocks of
    consecutive points within each group, in the data's order)."""
    if by == "points":
        idx = rng.integers(0, len(data), size=(n, len(data)))
        return np.stack([np.bincount(r, minlength=len(data)) for r in idx]).astype(float)
    if by in ("curves", "blocks"):
        if data.group is None:
            raise FitDataError(f"bootstrap_by: {by!r} needs data.group (a curve or run id per point)")
        labels, inv = np.unique(data.group, return_inverse=True)
        if by == "blocks":
            return _block_weights(labels, inv, n, rng)
        draws = rng.integers(0, len(labels), size=(n, len(labels)))
        counts = np.stack([np.bincount(r, minlength=len(labels)) for r in draws]).astype(float)
        return counts[:, inv]
    raise FitDataError(f"bootstrap_by: must be 'auto', 'points', 'curves' or 'blocks', got {by!r}")


def _resolve_boot_by(data: FitData, by: str, notes: list[str]) -> str:
    if by != "auto":
        return by
    if data.group is None:
        return "points"
    k = len(np.unique(data.group))
    if k >= 3:
        return "curves"
    notes.append(f"bootstrap: {k} curve(s), fewer than 3, so whole curves cannot be resampled; resampled blocks "
                 f"of consecutive points within each curve instead (moving-block bootstrap): the intervals "
                 f"reflect noise along the curves, not the spread between schedules")
    return "blocks"


class _Estimator:
    """The point estimate's procedure, applied to any data and per-point weights (bootstrap, backtests)."""

    def __init__(self, law: Law, *, loss: str, delta: float, starts: np.ndarray | None, n_starts: int | None,
                 n_polish: int, seed: int, max_iter: int, keep: float, fixed: Mapping[str, float]) -> None:
        self.law, self.loss, self.delta = law, loss, delta
        self.n_polish, self.max_iter, self.keep = n_polish, max_iter, keep
        self.fixed = {law.param_names.index(k): float(v) for k, v in fixed.items()}
        self.use_procedure = (law.procedure is not None and starts is None and n_starts is None
                              and loss == law.loss and not self.fixed)
        self.starts, self.n_starts, self.seed = starts, n_starts, seed

    def start_grid(self, data: FitData) -> np.ndarray:
        law = self.law
        starts = self.starts
        if starts is None and self.n_starts is None and law.data_starts is not None:
            starts = law.data_starts(data)
        S0 = law.starts(limit=self.n_starts, seed=self.seed) if starts is None else np.atleast_2d(
            np.asarray(starts, float))
        if S0.shape[1] != law.n_params:
            raise FitDataError(f"starts: need {law.n_params} columns ({law.param_names}), got {S0.shape[1]}")
        return S0

    def __call__(self, data: FitData, weights: np.ndarray | None = None) -> tuple[np.ndarray, float, int]:
        law = self.law
        if self.use_procedure:
            return law.procedure(data, delta=self.delta, weights=weights)
        fun = objective(law, data, loss=self.loss, delta=self.delta,
                        weights=None if weights is None else np.asarray(weights, float)[None, :])
        S0 = self.start_grid(data)
        lo, hi = law.lower, law.upper
        if self.fixed:
            free = [i for i in range(law.n_params) if i not in self.fixed]
            g = with_fixed(fun, law.n_params, self.fixed)
            S0f = np.unique(S0[:, free], axis=0)
            x, f, _ = multistart(g, S0f, lower=lo[free], upper=hi[free], n_polish=self.n_polish,
                                 max_iter=self.max_iter, keep=self.keep)
            theta = np.empty(law.n_params)
            theta[free] = x
            for i, v in self.fixed.items():
                theta[i] = v
            return theta, f, len(S0f)
        theta, f, _ = multistart(fun, S0, lower=lo, upper=hi, n_polish=self.n_polish, max_iter=self.max_iter,
                                 keep=self.keep)
        return theta, f, len(S0)


def fit(law: Law | str, data: FitData | Mapping, *, loss: str | None = None, delta: float = 1e-3,
        starts: np.ndarray | None = None, n_starts: int | None = None, n_polish: int = 3,
        bootstrap: int = 0, bootstrap_by: str = "auto", holdout: np.ndarray | None = None,
        holdout_fraction: float | None = None, level: float = 0.95, seed: int = 0, max_iter: int = 200,
        keep: float = 0.1, fixed: Mapping[str, float] | None = None, calibrate: bool = False,
        train_loss: np.ndarray | None = None) -> FitResult:
    """Fit ``law`` to ``data`` and return a :class:`FitResult`.

    ``holdout``: boolean mask (or indices) of points left out of the fit and predicted afterwards (held-out
    mean / worst relative error, R²); ``holdout_fraction``: choose them with :func:`workbench.fit.data.holdout_mask`
    (whole curves/groups when there are several, else the points with the largest first input). ``bootstrap``: number of resamples, refitted
    with the point estimate's procedure; ``bootstrap_by``: ``auto`` (whole curves with >= 3, time blocks with
    fewer, points without groups), ``points``, ``curves`` or ``blocks``. With no ``starts`` / ``n_starts``
    given, a law with its own ``procedure`` (the multi-power law's) is fitted with it, and a law with
    ``data_starts`` starts from those instead of its fixed grid. ``keep``: share of a large grid that
    continues after a short screening run (``core.multistart``); ``keep=1`` runs every start to
    convergence. ``fixed``: parameters (fitted names) held at the given values. ``calibrate``: backtest the
    fit on its own data so prediction bands include the law's misspecification. ``train_loss``: the training
    loss at the same points as the fitted (validation) loss; the fit then checks every curve for a
    train/validation gap that opens (:func:`workbench.fit.diagnostics.gap_trends`: over-fitting or repeated
    data, which the fresh-data laws do not model) and ``report()`` / ``diagnostics()`` show the result.
    """
    law = get_law(law)
    if isinstance(data, Mapping):
        if law.target not in data:
            raise FitDataError(f"data: no target column {law.target!r} (law {law.name!r} needs "
                               f"{', '.join(law.inputs)} and {law.target}), got columns {sorted(map(str, data))}")
        data = FitData({k: v for k, v in data.items() if k != law.target}, data[law.target])
    loss = loss or law.loss
    if loss not in LOSSES:
        raise FitDataError(f"loss: must be one of {LOSSES}, got {loss!r}")
    for name, v, lo in (("n_starts", n_starts, 1), ("n_polish", n_polish, 0), ("bootstrap", bootstrap, 0),
                        ("max_iter", max_iter, 1)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo):
            raise FitDataError(f"{name}: must be an integer >= {lo}{' or None' if name == 'n_starts' else ''}, got {v!r}")
    if not 0 < level < 1:
        raise FitDataError(f"level: must be in (0, 1), got {level}")
    fixed = dict(fixed or {})
    for k, v in fixed.items():
        if k not in law.param_names:
            raise FitDataError(f"fixed: {k!r} is not a parameter of {law.name!r} ({law.param_names})")
        if not np.isfinite(v):
            raise FitDataError(f"fixed: {k} must be a finite number, got {v}")
    if len(fixed) >= law.n_params:
        raise FitDataError(f"fixed: at least one parameter of {law.name!r} must vary")
    if train_loss is not None:
        train_loss = np.asarray(train_loss, float).ravel()
        if train_loss.shape != (len(data),):
            raise FitDataError(f"train_loss: needs one value per point of data ({len(data)}), got {train_loss.shape[0]}")
    t0 = time.perf_counter()
    test = None
    if holdout is not None and holdout_fraction is not None:
        raise FitDataError("holdout, holdout_fraction: give one of them")
    if holdout_fraction is not None:
        holdout = holdout_mask(data, holdout_fraction, key=law.inputs[0] if law.inputs[0] in data.x else None,
                               seed=seed)
    if holdout is not None:
        mask = np.zeros(len(data), bool)
        mask[np.asarray(holdout)] = True
        if mask.all() or not mask.any():
            raise FitDataError("holdout: must leave out some but not all points")
        test, data = data.subset(np.nonzero(mask)[0]), data.subset(np.nonzero(~mask)[0])
        if train_loss is not None:
            train_loss = train_loss[~mask]
    data.validate(law, log_target=loss in ("huber", "ls_log"))
    est = _Estimator(law, loss=loss, delta=delta, starts=starts, n_starts=n_starts, n_polish=n_polish, seed=seed,
                     max_iter=max_iter, keep=keep, fixed=fixed)
    notes: list[str] = []
    with small_problem_threads():
        theta, fval, n_used = est(data)
        boot = None
        if bootstrap:
            by = _resolve_boot_by(data, bootstrap_by, notes)
            W = _boot_weights(data, bootstrap, by, np.random.default_rng(seed))
            if est.use_procedure:
                boot = np.stack([est(data, w)[0] for w in W])
            else:
                bfun = objective(law, data, loss=loss, delta=delta, weights=W)
                x0 = np.repeat(theta[None, :], bootstrap, 0)
                if fixed:
                    free = [i for i in range(law.n_params) if i not in est.fixed]
                    g = with_fixed(bfun, law.n_params, est.fixed)
                    res = batched_lbfgs(g, x0[:, free], lower=law.lower[free], upper=law.upper[free],
                                        max_iter=max_iter)
                    bx = x0.copy()
                    bx[:, free] = res.x
                    res.x = bx
                else:
                    res = batched_lbfgs(bfun, x0, lower=law.lower, upper=law.upper, max_iter=max_iter)
                boot = res.x[np.isfinite(res.fun)]
        result = FitResult.build(law, theta, data, objective=fval, loss=loss, delta=delta, boot=boot, level=level,
                                 n_starts=n_used, seconds=0.0)
        result.fixed = fixed
        result.notes = notes
        if train_loss is not None:
            result.gap = gap_trends(result, train_loss)
        if calibrate:
            if np.any(np.asarray(data.y) <= 0):
                notes.append("calibration: skipped (the target has values <= 0; bands are relative)")
            else:
                noise = float(np.std(np.log(data.y) - np.log(np.maximum(result.fitted, 1e-300))))
                result.calibration = backtest(law, data, lambda d: est(d)[0], noise=noise)
    result.seconds = time.perf_counter() - t0
    if test is not None:
        result.heldout = result.evaluate(test)
    return result
