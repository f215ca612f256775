"""``fit(law, data)``: the papers' procedure. Huber loss (δ = 1e-3 by default) on log residuals,
**summed** over points (Hoffmann et al. 2022 App. D.2; Besiroglu et al. 2024 note that a mean makes
L-BFGS stop early), from every start of the law's grid, all starts as one batched L-BFGS problem
(:mod:`workbench.fit.core`), best few polished with scipy L-BFGS-B. ``loss="ls_log"`` / ``"ls"``: least
squares on log / linear residuals (Step Law, Gadre et al.). Bootstrap: resample points or whole curves
(``group``), all resamples refitted at once as one batch, started from the full-data optimum.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import torch

from workbench.fit.core import huber, multistart
from workbench.fit.data import FitData
from workbench.fit.errors import FitDataError
from workbench.fit.laws import Law, get_law
from workbench.fit.result import FitResult

LOSSES = ("huber", "ls_log", "ls", "huber_lin")


def objective(law: Law, data: FitData, *, loss: str = "huber", delta: float = 1e-3,
              weights: np.ndarray | None = None):
    """The batched objective ``fun(theta[S, P], rows) -> [S]`` (``weights[rows]`` per point if given)."""
    if loss not in LOSSES:
        raise FitDataError(f"loss: must be one of {LOSSES}, got {loss!r}")
    if not delta > 0:
        raise FitDataError(f"delta: must be > 0, got {delta}")
    T = law.tensors(data.inputs)
    y = torch.as_tensor(np.array(data.y, dtype=np.float64))
    logy = torch.log(y) if loss in ("huber", "ls_log") else None
    W = None if weights is None else torch.as_tensor(np.asarray(weights, float))

    def fun(th: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if loss in ("huber", "ls_log"):
            r = logy[None, :] - law.log_predict_t(th, T)
        else:
            r = y[None, :] - law.fn(th, T)
        rho = huber(r, delta) if loss.startswith("huber") else 0.5 * r * r
        if W is not None:
            rho = rho * W[rows]
        return rho.sum(-1)

    log_vjp = law.extra.get("log_vjp")
    if log_vjp is not None and loss in ("huber", "ls_log"):
        def value_and_grad(th: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Objective and gradient in one pass: ∇ = −Jᵀψ(r) with ψ = ρ' (clip(r, ±δ) for Huber)."""
            lp, vjp = log_vjp(th, T)
            r = logy[None, :] - lp
            if loss == "huber":
                rho, psi = huber(r, delta), r.clamp(-delta, delta)
            else:
                rho, psi = 0.5 * r * r, r
            if W is not None:
                w = W[rows]
                rho, psi = rho * w, psi * w
            return rho.sum(-1), -vjp(psi)

        fun.value_and_grad = value_and_grad  # type: ignore[attr-defined]
    return fun


def _boot_weights(data: FitData, n: int, by: str, rng: np.random.Generator) -> np.ndarray:
    if by == "points":
        idx = rng.integers(0, len(data), size=(n, len(data)))
        return np.stack([np.bincount(r, minlength=len(data)) for r in idx]).astype(float)
    if by == "curves":
        if data.group is None:
            raise FitDataError("bootstrap_by: 'curves' needs data.group (a curve or run id per point)")
        labels, inv = np.unique(data.group, return_inverse=True)
        draws = rng.integers(0, len(labels), size=(n, len(labels)))
        counts = np.stack([np.bincount(r, minlength=len(labels)) for r in draws]).astype(float)
        return counts[:, inv]
    raise FitDataError(f"bootstrap_by: must be 'points' or 'curves', got {by!r}")


def fit(law: Law | str, data: FitData | Mapping, *, loss: str | None = None, delta: float = 1e-3,
        starts: np.ndarray | None = None, n_starts: int | None = None, n_polish: int = 3,
        bootstrap: int = 0, bootstrap_by: str = "points", holdout: np.ndarray | None = None,
        level: float = 0.95, seed: int = 0, max_iter: int = 200, keep: float = 0.1) -> FitResult:
    """Fit ``law`` to ``data`` and return a :class:`FitResult`.

    ``holdout``: boolean mask (or indices) of points left out of the fit and predicted afterwards
    (held-out mean / worst relative error, R²). ``bootstrap``: number of resamples (points or whole curves).
    With no ``starts`` / ``n_starts`` given, a law that names its paper's own procedure
    (``law.extra["procedure"]``, e.g. the multi-power law's two-stage fit) is fitted with it, and a law
    with data-driven starts (``law.extra["data_starts"]``) starts from those instead of its fixed grid.
    ``keep``: share of a large grid that continues after a short screening run (``core.multistart``);
    ``keep=1`` runs every start to convergence.
    """
    law = get_law(law)
    if isinstance(data, Mapping):
        data = FitData({k: v for k, v in data.items() if k != law.target}, data[law.target])
    loss = loss or law.loss
    if bootstrap < 0:
        raise FitDataError(f"bootstrap: must be >= 0, got {bootstrap}")
    if not 0 < level < 1:
        raise FitDataError(f"level: must be in (0, 1), got {level}")
    t0 = time.perf_counter()
    test = None
    if holdout is not None:
        mask = np.zeros(len(data), bool)
        mask[np.asarray(holdout)] = True
        if mask.all() or not mask.any():
            raise FitDataError("holdout: must leave out some but not all points")
        test, data = data.subset(np.nonzero(mask)[0]), data.subset(np.nonzero(~mask)[0])
    data.validate(law, log_target=loss in ("huber", "ls_log"))
    fun = objective(law, data, loss=loss, delta=delta)
    procedure = law.extra.get("procedure")
    if procedure is not None and starts is None and n_starts is None and loss == law.loss:
        # the law's own published procedure (e.g. the multi-power law's two-stage fit)
        theta, fval, n_used = procedure(data, delta=delta)
    else:
        if starts is None and n_starts is None and "data_starts" in law.extra:
            starts = law.extra["data_starts"](data)
        S0 = law.starts(limit=n_starts, seed=seed) if starts is None else np.atleast_2d(np.asarray(starts, float))
        if S0.shape[1] != law.n_params:
            raise FitDataError(f"starts: need {law.n_params} columns ({law.param_names}), got {S0.shape[1]}")
        theta, fval, _ = multistart(fun, S0, lower=law.lower, upper=law.upper, n_polish=n_polish,
                                      max_iter=max_iter, keep=keep)
        n_used = len(S0)
    boot = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        W = _boot_weights(data, bootstrap, bootstrap_by, rng)
        bfun = objective(law, data, loss=loss, delta=delta, weights=W)
        from workbench.fit.core import batched_lbfgs
        res = batched_lbfgs(bfun, np.repeat(theta[None, :], bootstrap, 0), lower=law.lower, upper=law.upper,
                            max_iter=max_iter)
        boot = res.x[np.isfinite(res.fun)]
    result = FitResult.build(law, theta, data, objective=fval, loss=loss, delta=delta, boot=boot, level=level,
                             n_starts=n_used, seconds=time.perf_counter() - t0)
    if test is not None:
        result.heldout = result.evaluate(test)
    return result
