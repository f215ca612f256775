"""Laws for repeated data (several epochs over a finite dataset): effective data under repetition,
Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (NeurIPS 2023), eq. (5):

    D' = U + U·R*·(1 − exp(−R/R*)),   R = D/U − 1 (repetitions beyond the first epoch),

a repeated token is worth exp(−R/R*) of a fresh one (R* ≈ 15 in the paper: data repeated up to ~4 epochs
is almost as good as new, beyond ~40 epochs worthless).

- ``data_constrained``: Chinchilla's form with D replaced by D' (inputs N, D and unique tokens U).
- ``lr_annealing_repeat``: the LR-annealing law (Tissue et al. 2024) whose LR area counts each update by
  the worth of its data, S1'(s) = Σ_{i<s} η_i·exp(−R_i/R*), R_i = max((i + 1)/U − 1, 0) with U the dataset
  size in updates (``unique_steps`` = unique tokens / tokens per update). With R* → ∞ it is the plain law.

:func:`compare_repetition` fits a fresh-data law and its repetition variant on the same curves and says
whether the repetition term helps (AIC and the residual-trend diagnostic), for the comparison table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.signal import lfilter

from workbench.fit.compare import compare
from workbench.fit.data import FitData
from workbench.fit.errors import FitDataError
from workbench.fit.fitting import fit
from workbench.fit.laws import Law, Param, register_law
from workbench.fit.schedule_laws import _curves, _peak


def _dc_log(th: torch.Tensor, X: Mapping[str, torch.Tensor]) -> torch.Tensor:
    a, b, e, al, be, rs = (th[:, i:i + 1] for i in range(6))
    U = X["U"][None, :]
    R = torch.clamp(X["D"][None, :] / U - 1.0, min=0.0)
    Dp = U + U * rs * (1.0 - torch.exp(-R / rs))
    u1 = a - al * torch.log(X["N"])[None, :]
    u2 = b - be * torch.log(Dp)
    u3 = e.expand_as(u1)
    return torch.logsumexp(torch.stack([u1, u2, u3]), 0)


DATA_CONSTRAINED = register_law(Law(
    name="data_constrained",
    formula="L = E + A / N^alpha + B / D'^beta,  D' = U + U*R*(1 - exp(-(D/U - 1)/R*))  (U unique tokens)",
    latex=r"L = E + \frac{A}{N^{\alpha}} + \frac{B}{D'^{\beta}},\ D' = U + U R^*\left(1-e^{-(D/U-1)/R^*}\right)",
    params=(Param("a", -np.inf, np.inf, (5.0, 10.0, 15.0, 20.0)), Param("b", -np.inf, np.inf, (5.0, 10.0, 15.0, 20.0)),
            Param("e", -np.inf, np.inf, (-1.0, 0.0, 1.0)), Param("alpha", 0.0, 3.0, (0.25, 0.5, 1.0)),
            Param("beta", 0.0, 3.0, (0.25, 0.5, 1.0)), Param("r_star", 0.05, 1e4, (5.0, 15.0, 50.0))),
    inputs=("N", "D", "U"), positive=("N", "D", "U"),
    fn=lambda th, X: torch.exp(_dc_log(th, X)), log_fn=_dc_log,
    reported=lambda t: {"A": np.exp(t[0]), "B": np.exp(t[1]), "E": np.exp(t[2]), "alpha": t[3], "beta": t[4],
                        "r_star": t[5]},
    unreport=lambda p: np.array([np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"], p["r_star"]]),
    reference="Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models', eq. (5) (data term)",
))


def _prepare_lrr(X: Mapping, lam: float = 0.999) -> dict:
    lrs, t, curve = _curves(X)
    if "unique_steps" not in X:
        raise FitDataError("unique_steps: the repetition law needs the dataset size in updates per point")
    U = np.asarray(X["unique_steps"], float)
    if not np.all(np.isfinite(U) & (U > 0)):
        raise FitDataError("unique_steps: must be finite and > 0 (dataset size in optimizer updates)")
    blocks = []
    S2 = np.empty(len(t))
    for c, lr in enumerate(lrs):
        sel = np.nonzero(curve == c)[0]
        if not len(sel):
            continue
        d = np.zeros_like(lr)
        d[1:] = lr[:-1] - lr[1:]
        S2[sel] = np.cumsum(lfilter([1.0], [1.0, -lam], d))[t[sel]]
        T = int(t[sel].max()) + 1
        u = float(U[sel][0])
        R = np.maximum((np.arange(T) + 1.0) / u - 1.0, 0.0)
        blocks.append({"sel": torch.as_tensor(sel), "t": torch.as_tensor(t[sel]), "lr": torch.as_tensor(lr[:T]),
                       "R": torch.as_tensor(R)})
    return {"blocks": blocks, "S2": torch.as_tensor(S2), "n": len(t)}


def _lrr(th: torch.Tensor, P: Mapping) -> torch.Tensor:
    L0, A, al, C, rs = (th[:, i:i + 1] for i in range(5))
    S1 = torch.zeros(th.shape[0], P["n"], dtype=torch.float64)
    for b in P["blocks"]:
        w = torch.exp(-b["R"][None, :] / rs)
        cs = torch.cumsum(b["lr"][None, :] * w, dim=1)
        S1[:, b["sel"]] = cs[:, b["t"]]
    return L0 + A * S1 ** (-al) - C * P["S2"][None]


LR_ANNEALING_REPEAT = register_law(Law(
    name="lr_annealing_repeat",
    formula="L(s) = L0 + A*S1'^(-alpha) - C*S2,  S1' = sum_i eta_i*exp(-R_i/R*),  R_i = max((i+1)/U - 1, 0)",
    latex=r"L(s) = L_0 + A\,S_1'^{-\alpha} - C\,S_2,\ S_1' = \sum_{i<s}\eta_i e^{-R_i/R^*}",
    params=(Param("L0", 0.0, 20.0), Param("A", 0.0, np.inf), Param("alpha", 0.0, 3.0), Param("C", 0.0, np.inf),
            Param("r_star", 0.05, 1e4)),
    inputs=("step", "curve", "lrs", "unique_steps"), fn=_lrr, prepare=_prepare_lrr,
    reference="Tissue et al. 2024 eq. (1) with Muennighoff et al. 2023 eq. (5) effective data",
))


def _lrr_starts(data: FitData) -> np.ndarray:
    lo, peak = float(np.min(data.y)), _peak(data)
    return np.array([[L0, A, al, C, rs] for L0 in (lo - 0.6, lo - 0.3, lo - 0.1) for A in (0.3, 1.0) for al in (0.3, 0.6)
                     for C in (0.1 / peak / 1000, 1.0 / peak / 1000) for rs in (1.0, 5.0, 30.0)], float)


LR_ANNEALING_REPEAT.data_starts = _lrr_starts


def with_unique(data: FitData, unique_steps: float | Sequence[float]) -> FitData:
    """``data`` with the dataset size in updates (one number, or one per curve) as input ``unique_steps``."""
    curve = np.asarray(data.x["curve"]).astype(int)
    u = np.atleast_1d(np.asarray(unique_steps, float))
    if len(u) == 1:
        u = np.full(int(curve.max()) + 1, u[0])
    if len(u) <= curve.max():
        raise FitDataError(f"unique_steps: give one value or one per curve ({int(curve.max()) + 1}), got {len(u)}")
    x = dict(data.x)
    x["unique_steps"] = u[curve]
    return FitData(x, data.y, data.group, data.lrs, data.names)


def compare_repetition(data: FitData, unique_steps: float | Sequence[float], *, test: FitData | None = None,
                       base: str = "lr_annealing") -> pd.DataFrame:
    """Fit the fresh-data ``base`` law and ``lr_annealing_repeat`` on ``data`` (the dataset size in updates:
    ``unique_steps``); the comparison table (:func:`workbench.fit.compare`, on ``test`` when given) with the
    number of curves the residual-trend check flags and a ``verdict`` column saying whether repetition helps."""
    if base != "lr_annealing":
        raise FitDataError(f"base: only 'lr_annealing' has a repetition variant, got {base!r}")
    d2 = with_unique(data, unique_steps)
    r0 = fit(base, data)
    r1 = fit("lr_annealing_repeat", d2)
    t2 = None if test is None else with_unique(test, unique_steps)
    rows = []
    for name, r, t in ((base, r0, test), ("lr_annealing_repeat", r1, t2)):
        df = compare({name: r}, t)
        df["trend_flags"] = sum(d["flag"] for d in r.diagnostics())
        rows.append(df)
    out = pd.concat(rows, ignore_index=True)
    helps = (r1.aic < r0.aic - 2) and out.loc[1, "trend_flags"] <= out.loc[0, "trend_flags"]
    out["verdict"] = ["", f"repetition term {'helps' if helps else 'does not help'} (AIC {r1.aic - r0.aic:+.1f}, "
                          f"R* = {r1.params['r_star']:.3g} epochs)"]
    return out
