"""Step Law (Li et al. 2025, "Predictable Scale: Part I", arXiv:2503.04715): η_opt = a·N^α·D^β and
B_opt = c·D^γ (B in tokens, N non-embedding parameters).

The authors' recipe (``code/fit_tool.py`` of github.com/step-law/steplaw): in every (N, D) group keep the
runs whose smoothed final loss satisfies |L / L_min − 1| < 0.25 %, convert the batch size from sequences
to tokens (× seq_len), ordinary least squares of log η on (log N, log D) and of log B on log D, refit on
1 000 row resamples (bootstrap) and report the MEAN coefficients (the intercept is averaged in log space).

Why hand-written OLS instead of :func:`workbench.fit.fit`: the problem is linear in log space, so the
normal equations give the exact optimum; with the bootstrap counts as weights all 1 000 resamples are one
batched ``numpy.linalg.solve`` (the authors loop ``sklearn.linear_model.LinearRegression``), milliseconds.

Reproduction status on the released data (``dense_lr_bs_loss.csv``, 1 911 runs, 129 selected): this
recipe gives η = 78·N^−0.77·D^0.20, B = 0.21·D^0.61, not the published 1.79·N^−0.713·D^0.307,
0.58·D^0.571 (the predictions still agree within one LR grid step, ×√2, and B within 10 % on the grid).
Subsets, thresholds, the raw ``loss`` column and adding the MoE runs do not close the gap. The published
bootstrap file (``1004_fitted_lr_bs_scaling_model_parameters.csv``) looks fitted to other data: its
coefficient spread is about half ours (≈ 4× the points) and :func:`bootstrap_design_centre` puts its mean
log D at 23.4 where the same estimate on our resamples gives 23.9 (B fit: 23.4 vs 24.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.fit.data import FitData
from workbench.fit.errors import FitDataError
from workbench.fit.laws import get_law
from workbench.fit.result import FitResult

PUBLISHED = {"a": 1.79, "alpha": -0.713, "beta": 0.307, "c": 0.58, "gamma": 0.571}


def select_near_optimal(df: pd.DataFrame, *, loss: str = "smooth loss", threshold: float = 0.0025,
                        by: tuple[str, ...] = ("N", "D")) -> pd.DataFrame:
    """Rows with |loss / group minimum − 1| < ``threshold`` within their ``by`` group (Step Law's
    near-optimal set; diverged runs never pass since the group minimum is a converged run)."""
    if not 0 < threshold < 1:
        raise FitDataError(f"threshold: must be in (0, 1), got {threshold}")
    for c in (loss, *by):
        if c not in df.columns:
            raise FitDataError(f"{c}: column missing; have {list(df.columns)}")
    if not np.all(np.asarray(df[loss], float) > 0):
        raise FitDataError(f"{loss}: must be > 0 for every run")
    best = df.groupby(list(by))[loss].transform("min")
    return df[(df[loss] / best - 1).abs() < threshold].copy()


def ols_bootstrap(X: np.ndarray, y: np.ndarray, n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients of ``y`` on ``X`` (design with its intercept column) and of ``n`` row resamples.

    A resample is a multinomial count vector w (rows drawn with replacement, as ``DataFrame.sample(frac=1,
    replace=True)``); its fit solves (Xᵀ W X) θ = Xᵀ W y. Returns (θ [P], θ_boot [n, P])."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    if X.ndim != 2 or len(X) != len(y):
        raise FitDataError(f"X: need shape [{len(y)}, P], got {X.shape}")
    if len(y) <= X.shape[1]:
        raise FitDataError(f"rows: need more than {X.shape[1]} points, got {len(y)}")
    if n < 0:
        raise FitDataError(f"bootstrap: must be >= 0, got {n}")
    theta = np.linalg.lstsq(X, y, rcond=None)[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n, len(y)))
    W = np.zeros((n, len(y)))
    np.add.at(W, (np.arange(n)[:, None], idx), 1.0)
    A = np.einsum("bi,ij,ik->bjk", W, X, X)
    b = np.einsum("bi,ij,i->bj", W, X, y)
    ok = np.linalg.matrix_rank(A) == X.shape[1]  # a resample may miss a whole (N, D) level
    boot = np.linalg.solve(A[ok], b[ok][..., None])[..., 0]
    return theta, boot


def bootstrap_design_centre(boot: np.ndarray) -> np.ndarray:
    """Mean of the regressors of the data behind bootstrap OLS fits ``boot`` [n, 1 + K] (intercept first).

    For OLS the intercept is ȳ − Σ θ_k x̄_k, so across resamples the intercept moves with the slopes with
    coefficients −x̄_k; regressing it on the slopes recovers the design centre of data one has not seen."""
    boot = np.asarray(boot, float)
    if boot.ndim != 2 or boot.shape[1] < 2 or len(boot) <= boot.shape[1]:
        raise FitDataError(f"boot: need shape [n > P, P >= 2], got {boot.shape}")
    Z = np.column_stack([np.ones(len(boot)), boot[:, 1:]])
    return -np.linalg.lstsq(Z, boot[:, 0], rcond=None)[0][1:]


@dataclass
class StepLawFit:
    """The two Step Law fits, with the authors' summary (bootstrap means) in ``coefficients``."""

    lr: FitResult
    bs: FitResult
    n_selected: int

    @property
    def coefficients(self) -> dict[str, float]:
        """a, α, β, c, γ: bootstrap means as the paper reports them (OLS point fit without bootstrap)."""
        lr = self.lr.theta if self.lr.boot is None or not len(self.lr.boot) else self.lr.boot.mean(0)
        bs = self.bs.theta if self.bs.boot is None or not len(self.bs.boot) else self.bs.boot.mean(0)
        return {"a": float(np.exp(lr[0])), "alpha": float(lr[1]), "beta": float(lr[2]),
                "c": float(np.exp(bs[0])), "gamma": float(bs[1])}

    def __iter__(self):
        """``lr, bs = fit_step_law(...)`` keeps working (the function used to return a tuple)."""
        return iter((self.lr, self.bs))

    @property
    def params(self) -> dict[str, float]:
        return self.coefficients

    def predict(self, X: Mapping[str, Any], level: float | None = None) -> dict[str, Any]:
        """Optimal LR and batch size (tokens) at ``X`` (``N`` and ``D``): ``{"lr": ..., "bs": ...}``, arrays or
        (with ``level``) :class:`~workbench.fit.result.Prediction` objects."""
        X = {k: np.atleast_1d(np.asarray(v, float)) for k, v in dict(X).items()}
        return {"lr": self.lr.predict(X, level), "bs": self.bs.predict({"D": X["D"]}, level)}

    def report(self) -> str:
        c = self.coefficients
        head = (f"[[step law]] {self.n_selected} near-optimal runs: eta_opt = {c['a']:.4g} * N^{c['alpha']:.4g} * "
                f"D^{c['beta']:.4g},  B_opt = {c['c']:.4g} * D^{c['gamma']:.4g} (bootstrap means)")
        return "\n".join([head, self.lr.report(), self.bs.report()])

    def figure(self, **kw: Any) -> Any:
        return self.lr.figure(**kw)

    def to_dict(self) -> dict:
        return {"lr": self.lr.to_dict(), "bs": self.bs.to_dict(), "n_selected": self.n_selected}

    @classmethod
    def from_dict(cls, d: Mapping) -> StepLawFit:
        return cls(FitResult.from_dict(d["lr"]), FitResult.from_dict(d["bs"]), int(d["n_selected"]))


def _result(name: str, theta: np.ndarray, boot: np.ndarray | None, x: dict, y: np.ndarray) -> FitResult:
    law = get_law(name)
    data = FitData(x, y)
    r = np.log(y) - np.log(law.predict(theta, data.inputs))
    return FitResult.build(law, theta, data, objective=float(0.5 * np.sum(r * r)), loss="ls_log", delta=1e-3,
                           boot=boot, level=0.95, n_starts=1, seconds=0.0)


def fit_step_law(df: pd.DataFrame, *, seq_len: int = 2048, threshold: float = 0.0025, bootstrap: int = 0,
                 seed: int = 0, loss: str = "smooth loss") -> StepLawFit:
    """Fit the Step Law to grid-search runs (columns N, D, lr, bs in sequences, ``loss``; a ``seq_len``
    column, as in the MoE file, overrides ``seq_len``) with the authors' recipe (module docstring)."""
    if seq_len <= 0:
        raise FitDataError(f"seq_len: must be > 0, got {seq_len}")
    for c in ("lr", "bs"):
        if c not in df.columns:
            raise FitDataError(f"{c}: column missing; have {list(df.columns)}")
    sel = select_near_optimal(df, loss=loss, threshold=threshold)
    sl = sel["seq_len"].to_numpy(float) if "seq_len" in sel.columns else np.full(len(sel), float(seq_len))
    N, D = sel["N"].to_numpy(float), sel["D"].to_numpy(float)
    lr, bs = sel["lr"].to_numpy(float), sel["bs"].to_numpy(float) * sl
    for name, v in (("N", N), ("D", D), ("lr", lr), ("bs", bs)):
        if not np.all(np.isfinite(v) & (v > 0)):
            raise FitDataError(f"{name}: must be finite and > 0 for every selected run")
    one = np.ones_like(N)
    th_lr, b_lr = ols_bootstrap(np.column_stack([one, np.log(N), np.log(D)]), np.log(lr), bootstrap, seed=seed)
    th_bs, b_bs = ols_bootstrap(np.column_stack([one, np.log(D)]), np.log(bs), bootstrap, seed=seed + 1)
    return StepLawFit(_result("step_law_lr", th_lr, b_lr if bootstrap else None, {"N": N, "D": D}, lr),
                      _result("step_law_bs", th_bs, b_bs if bootstrap else None, {"D": D}, bs), len(sel))


def published_step_law(path: str | Path) -> dict[str, float]:
    """Means over the authors' 1 000 bootstrap fits (``1004_fitted_lr_bs_scaling_model_parameters.csv``)."""
    p = pd.read_csv(path)
    need = ["lr_intercept", "lr_coefN", "lr_coefD", "bs_intercept", "bs_coefD"]
    missing = [c for c in need if c not in p.columns]
    if missing:
        raise FitDataError(f"{missing[0]}: column missing in {path}; need {need}")
    m = p[need].mean()
    return {"a": float(np.exp(m["lr_intercept"])), "alpha": float(m["lr_coefN"]), "beta": float(m["lr_coefD"]),
            "c": float(np.exp(m["bs_intercept"])), "gamma": float(m["bs_coefD"])}
