"""Loss-curve laws that take the whole per-step LR schedule as input.

- LR-annealing law (Tissue et al. 2024, "Scaling law with learning rate annealing", eq. 1):
  L(s) = L0 + A·S1^(−α) − C·S2, S1 = Σ_{i≤s} η_i, S2 = Σ_{i≤s} m_i, m_i = λ·m_(i−1) + (η_(i−1) − η_i),
  λ = 0.999. Summed over every step (never thinned).
- Multi-power law (Luo et al., ICLR 2025, eq. 7): L(t) = L0 + A·S1(t)^(−α) − LD(t),
  LD(t) = B·Σ_{k≤t} (η_(k−1) − η_k)·G(η_k^(−γ)·S_k(t)), G(x) = 1 − (C·x + 1)^(−β), S_k(t) = Σ_{τ=k..t} η_τ.
  S1 includes the warmup (the paper's S_W), as the authors' code does.

Inputs: a plain numpy per-step LR array per curve (``lrs``; absolute LR, index = optimizer step) or a
``Schedule`` object with its peak LR (see :func:`lr_array`), plus the observed ``step`` and the curve
index of every point. The O(T²) LD sum is vectorised as a [points × LR-changes] matrix of partial areas
S1(t) − S1(k−1), computed in row chunks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy.signal import lfilter

from workbench.fit.errors import FitDataError
from workbench.fit.laws import Law, Param, register_law

_CHUNK = 4_000_000  # matrix entries per chunk of the LD sum


def lr_array(schedule: object, peak_lr: float = 1.0, total_steps: int | None = None) -> np.ndarray:
    """Per-step absolute LR from a numpy array (returned as float64) or a Schedule (``s(np.arange(T))``)."""
    if isinstance(schedule, np.ndarray | list | tuple):
        return np.asarray(schedule, dtype=np.float64)
    T = total_steps if total_steps is not None else getattr(schedule, "total_steps", None)
    if T is None:
        raise FitDataError("total_steps: needed for a schedule without total_steps")
    return peak_lr * np.asarray(schedule(np.arange(int(T))), dtype=np.float64)


def _curves(X: Mapping) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    if "lrs" not in X:
        raise FitDataError("lrs: schedule-aware laws need the per-step LR of every curve (FitData.from_curves)")
    lrs = [np.asarray(a, np.float64) for a in X["lrs"]]
    step = np.asarray(X["step"]).astype(np.int64)
    curve = np.asarray(X["curve"]).astype(np.int64) if "curve" in X else np.zeros(len(step), np.int64)
    for c, a in enumerate(lrs):
        st = step[curve == c]
        if len(st) and st.max() >= len(a):
            raise FitDataError(f"lrs: schedule of curve {c} has {len(a)} steps, shorter than the curve "
                               f"(last observed step {int(st.max())})")
        if not np.all(np.isfinite(a)) or np.any(a[1:] <= 0):
            raise FitDataError(f"lrs: schedule of curve {c} must be finite and > 0 after step 0")
    return lrs, step, curve


def _prepare_mpl(X: Mapping) -> dict:
    lrs, step, curve = _curves(X)
    blocks = []
    for c, lr in enumerate(lrs):
        sel = np.nonzero(curve == c)[0]
        if not len(sel):
            continue
        s = step[sel]
        S = np.cumsum(lr)
        gap = np.zeros_like(lr)
        gap[1:] = np.diff(lr)
        k = np.nonzero(gap)[0]
        k = k[k <= s.max()]
        rows = max(1, _CHUNK // max(len(k), 1))
        chunks = []
        for r0 in range(0, len(s), rows):
            ss = s[r0:r0 + rows]
            x = np.where(k[None, :] <= ss[:, None], S[ss][:, None] - S[k - 1][None, :], 0.0)
            chunks.append(torch.as_tensor(x))
        blocks.append({"sel": torch.as_tensor(sel), "S1": torch.as_tensor(S[s]), "gap": torch.as_tensor(gap[k]),
                       "eta": torch.as_tensor(lr[k]), "chunks": chunks})
    return {"blocks": blocks, "n": len(step)}


def _mpl(th: torch.Tensor, P: Mapping) -> torch.Tensor:
    L0, A, al, B, C, be, ga = (th[:, i:i + 1] for i in range(7))
    out = torch.zeros(th.shape[0], P["n"], dtype=th.dtype)
    parts = []
    for b in P["blocks"]:
        ld_rows = []
        cscale = C * b["eta"][None, :] ** (-ga)  # [S, K]
        for xt in b["chunks"]:  # [r, K] partial areas S1(t) - S1(k-1), 0 where k > t
            g = 1.0 - (1.0 + cscale[:, None, :] * xt[None]) ** (-be[:, :, None])
            ld_rows.append(g @ b["gap"])
        LD = torch.cat(ld_rows, dim=1) if ld_rows else torch.zeros(th.shape[0], 0, dtype=th.dtype)
        parts.append((b["sel"], L0 + A * b["S1"][None, :] ** (-al) + B * LD))
    for sel, v in parts:
        out = out.index_copy(1, sel, v)
    return out


MULTI_POWER = register_law(Law(
    name="multi_power",
    formula="L(t) = L0 + A*(S1(t))^(-alpha) - B*sum_k (eta_(k-1)-eta_k)*(1-(C*eta_k^(-gamma)*S_k(t)+1)^(-beta))",
    latex=r"L(t) = L_0 + A\,S_1(t)^{-\alpha} - B\sum_{k\le t}(\eta_{k-1}-\eta_k)\,"
          r"\left[1-\left(C\eta_k^{-\gamma}S_k(t)+1\right)^{-\beta}\right]",
    params=(Param("L0", 0.0, 20.0), Param("A", 0.0, np.inf), Param("alpha", 0.0, 3.0), Param("B", 0.0, np.inf),
            Param("C", 0.0, np.inf), Param("beta", 0.0, 5.0), Param("gamma", 0.0, 5.0)),
    inputs=("step", "curve", "lrs"), fn=_mpl, prepare=_prepare_mpl,
    reference="Luo et al., ICLR 2025, 'A Multi-Power Law for Loss Curve Prediction Across LR Schedules', eq. (7)",
))


def _prepare_lra(X: Mapping, lam: float = 0.999) -> dict:
    lrs, step, curve = _curves(X)
    S1 = np.empty(len(step))
    S2 = np.empty(len(step))
    for c, lr in enumerate(lrs):
        sel = curve == c
        d = np.zeros_like(lr)
        d[1:] = lr[:-1] - lr[1:]
        m = lfilter([1.0], [1.0, -lam], d)
        S1[sel] = np.cumsum(lr)[step[sel]]
        S2[sel] = np.cumsum(m)[step[sel]]
    return {"S1": torch.as_tensor(S1), "S2": torch.as_tensor(S2)}


LR_ANNEALING = register_law(Law(
    name="lr_annealing",
    formula="L(s) = L0 + A*S1^(-alpha) - C*S2,  S2 = sum_i m_i,  m_i = 0.999*m_(i-1) + (eta_(i-1) - eta_i)",
    latex=r"L(s) = L_0 + A\,S_1^{-\alpha} - C\,S_2",
    params=(Param("L0", 0.0, 20.0), Param("A", 0.0, np.inf), Param("alpha", 0.0, 3.0), Param("C", 0.0, np.inf)),
    inputs=("step", "curve", "lrs"),
    fn=lambda th, P: th[:, 0:1] + th[:, 1:2] * P["S1"][None] ** (-th[:, 2:3]) - th[:, 3:4] * P["S2"][None],
    prepare=_prepare_lra,
    reference="Tissue et al. 2024, 'Scaling law with learning rate annealing', eq. (1), lambda = 0.999",
))


def schedule_law_starts(law: Law, losses: np.ndarray, peak_lr: float) -> np.ndarray:
    """Data-driven starting points for the schedule-aware laws (L0 near the lowest observed loss)."""
    lo = float(np.min(losses))
    L0s = [lo - 0.6, lo - 0.3, lo - 0.1]
    if law.name == "lr_annealing":
        return np.array([[L0, A, al, C] for L0 in L0s for A in (0.3, 1.0) for al in (0.3, 0.6)
                         for C in (0.1 / peak_lr / 1000, 1.0 / peak_lr / 1000)], float)
    return np.array([[L0, A, al, B, C, 0.5, 0.5] for L0 in L0s for A in (0.3, 0.8) for al in (0.5,)
                     for B in (0.3 / peak_lr / 3, 1.0 / peak_lr / 3) for C in (1.0, 3.0)], float)


def curve_metrics(y: np.ndarray, pred: np.ndarray, curve: Sequence[int] | None = None) -> dict[str, float]:
    """R², MAE, RMSE, mean (PredE) and worst (WorstE) relative error; with ``curve`` given, computed per
    curve and averaged over curves (the convention of Luo et al.'s evaluation code and Table 1)."""
    y = np.asarray(y, float)
    pred = np.asarray(pred, float)
    groups = [np.arange(len(y))] if curve is None else [np.nonzero(np.asarray(curve) == c)[0]
                                                         for c in np.unique(curve)]
    rows = []
    for g in groups:
        e = y[g] - pred[g]
        ss = np.sum((y[g] - y[g].mean()) ** 2)
        rows.append({"r2": 1 - np.sum(e ** 2) / ss if ss > 0 else np.nan, "mae": np.mean(np.abs(e)),
                     "rmse": np.sqrt(np.mean(e ** 2)), "mean_rel": np.mean(np.abs(e) / np.abs(y[g])),
                     "worst_rel": np.max(np.abs(e) / np.abs(y[g]))})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
