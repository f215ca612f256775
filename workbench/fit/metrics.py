"""Goodness-of-fit metrics shared by every result (a leaf of ``workbench.fit``'s import graph)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
