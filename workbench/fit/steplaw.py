"""Step Law (Li et al. 2025, "Predictable Scale: Part I"): η_opt = a·N^α·D^β, B_opt = c·D^γ (B in tokens).
Procedure of the authors' ``fit_tool.py``: per (N, D) group keep the runs whose smoothed loss is within
0.25 % of the group's best, convert batch size to tokens, least squares in log space; bootstrap
resamples (the published coefficients are the means over 1 000 bootstrap fits)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.fit.data import FitData
from workbench.fit.errors import FitDataError
from workbench.fit.fitting import fit
from workbench.fit.result import FitResult


def select_near_optimal(df: pd.DataFrame, *, loss: str = "smooth loss", threshold: float = 0.0025,
                        by: tuple[str, str] = ("N", "D")) -> pd.DataFrame:
    """Rows within ``threshold`` (relative) of the best ``loss`` of their (N, D) group."""
    if not 0 <= threshold < 1:
        raise FitDataError(f"threshold: must be in [0, 1), got {threshold}")
    for c in (loss, *by):
        if c not in df.columns:
            raise FitDataError(f"{c}: column missing; have {list(df.columns)}")
    best = df.groupby(list(by))[loss].transform("min")
    return df[df[loss] <= best * (1 + threshold)].copy()


def fit_step_law(df: pd.DataFrame, *, seq_len: int = 2048, threshold: float = 0.0025, bootstrap: int = 0,
                 seed: int = 0, loss: str = "smooth loss") -> tuple[FitResult, FitResult]:
    """Fit (lr law, batch-size law) to grid-search runs with columns N, D, lr, bs (sequences), ``loss``."""
    sel = select_near_optimal(df, loss=loss, threshold=threshold)
    bs_tokens = sel["bs"].to_numpy(float) * seq_len
    N, D, y = sel["N"].to_numpy(float), sel["D"].to_numpy(float), sel["lr"].to_numpy(float)
    # closed-form OLS in log space as the start (the problem is linear; the fit then confirms it)
    X1 = np.column_stack([np.ones_like(N), np.log(N), np.log(D)])
    s_lr = np.linalg.lstsq(X1, np.log(y), rcond=None)[0]
    s_bs = np.linalg.lstsq(X1[:, [0, 2]], np.log(bs_tokens), rcond=None)[0]
    lr = fit("step_law_lr", FitData({"N": N, "D": D}, y), starts=s_lr[None, :], bootstrap=bootstrap, seed=seed)
    bs = fit("step_law_bs", FitData({"D": D}, bs_tokens), starts=s_bs[None, :], bootstrap=bootstrap, seed=seed)
    return lr, bs
