"""The batched fit objective ``fun(theta[S, P], rows) -> [S]`` of a law on data (Huber or least squares on
log or linear residuals, summed over points; Hoffmann et al. 2022 App. D.2), optionally weighted per row
(bootstrap resamples) and with parameters held fixed. Used by :func:`workbench.fit.fit` and by the laws'
own procedures (the multi-power law's two-stage fit), so it sits below both in the import graph."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from workbench.fit.core import huber
from workbench.fit.errors import FitDataError

LOSSES = ("huber", "ls_log", "ls", "huber_lin")


def objective(law: object, data: object, *, loss: str = "huber", delta: float = 1e-3,
              weights: np.ndarray | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The batched objective ``fun(theta[S, P], rows) -> [S]`` (``weights[rows]`` per point if given)."""
    if loss not in LOSSES:
        raise FitDataError(f"loss: must be one of {LOSSES}, got {loss!r}")
    if not delta > 0:
        raise FitDataError(f"delta: must be > 0, got {delta}")
    T = law.tensors(data.inputs)
    y = torch.as_tensor(np.array(data.y, dtype=np.float64))
    logy = torch.log(y) if loss in ("huber", "ls_log") else None
    W = None if weights is None else torch.as_tensor(np.atleast_2d(np.asarray(weights, float)))

    def fun(th: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if loss in ("huber", "ls_log"):
            r = logy[None, :] - law.log_predict_t(th, T)
        else:
            r = y[None, :] - law.fn(th, T)
        rho = huber(r, delta) if loss.startswith("huber") else 0.5 * r * r
        if W is not None:
            rho = rho * W[rows]
        return rho.sum(-1)

    log_vjp = law.log_vjp
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


def with_fixed(fun: Callable, n_params: int, fixed: dict[int, float]) -> Callable:
    """``fun`` seen as a function of the free parameters only: ``fixed`` maps parameter index -> value
    (lmfit's ``vary=False``). Keeps a fused ``value_and_grad`` (the gradient's fixed columns dropped)."""
    free = [i for i in range(n_params) if i not in fixed]
    fidx = torch.as_tensor(free)
    vals = torch.tensor([fixed[i] for i in sorted(fixed)], dtype=torch.float64)
    kidx = torch.as_tensor(sorted(fixed))

    def full(th: torch.Tensor) -> torch.Tensor:
        out = torch.empty(th.shape[0], n_params, dtype=th.dtype)
        out[:, fidx] = th
        out[:, kidx] = vals.to(th.dtype)
        return out

    def g(th: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if th.requires_grad:
            parts = []
            j = 0
            for i in range(n_params):
                if i in fixed:
                    parts.append(torch.full((th.shape[0],), fixed[i], dtype=th.dtype))
                else:
                    parts.append(th[:, j])
                    j += 1
            return fun(torch.stack(parts, -1), rows)
        return fun(full(th), rows)

    vg = getattr(fun, "value_and_grad", None)
    if vg is not None:
        def value_and_grad(th: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f, grad = vg(full(th), rows)
            return f, grad[:, fidx]

        g.value_and_grad = value_and_grad  # type: ignore[attr-defined]
    g.full = full  # type: ignore[attr-defined]
    return g
