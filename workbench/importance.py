"""Hyperparameter importance of a sweep: how much of the variance of the objective each
hyperparameter explains, by functional ANOVA on a random forest (Hutter, Hoos & Leyton-Brown 2014,
"An Efficient Approach for Assessing Hyperparameter Importance", ICML), through Optuna's
:class:`optuna.importance.FanovaImportanceEvaluator` rather than a hand-written fANOVA.

The sweep's members become finished Optuna trials (``optuna.trial.create_trial``) of an in-memory
study: numeric hyperparameters as float distributions (log-scaled where they span decades, as
learning rates do), the rest (schedules, optimizers) as categorical ones. Members whose objective is
missing or not finite (diverged runs) are left out, and the importances say how many trials they
rest on: with few trials the forest, and so the numbers, are rough.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError

MIN_TRIALS = 4


class ImportanceError(WorkbenchError):
    """Too few usable trials, or an objective / parameter that is not in the table."""


def _spans_decades(v: np.ndarray) -> bool:
    return bool(v.min() > 0 and v.max() / v.min() >= 20)


def hyperparameter_importance(table: pd.DataFrame, objective: str, params: Sequence[str], *,
                              mode: str = "min", seed: int = 0, n_trees: int = 64) -> pd.DataFrame:
    """fANOVA importances of ``params`` (columns of ``table``, one row per sweep member) for the
    column ``objective``. Returns a frame sorted by importance (largest first) with columns
    ``param, importance`` (summing to 1) and the attribute ``attrs["n_trials"]``. Parameters that do
    not vary among the usable members are left out (they explain nothing)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator

    if mode not in ("min", "max"):
        raise ImportanceError(f"mode: must be 'min' or 'max', got {mode!r}")
    missing = [c for c in [objective, *params] if c not in table.columns]
    if missing:
        raise ImportanceError(f"columns {missing} are not in the results table (have {list(table.columns)})")
    y = pd.to_numeric(table[objective], errors="coerce")
    rows = table[np.isfinite(y.to_numpy(float))]
    if len(rows) < MIN_TRIALS:
        raise ImportanceError(f"{objective}: importance needs at least {MIN_TRIALS} members with a finite value, "
                              f"got {len(rows)}")
    dists: dict[str, Any] = {}
    values: dict[str, list] = {}
    for p in params:
        col = rows[p]
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().all():
            v = num.to_numpy(float)
            if v.min() == v.max():
                continue
            dists[p] = FloatDistribution(float(v.min()), float(v.max()), log=_spans_decades(v))
            values[p] = [float(x) for x in v]
        else:
            s = col.map(lambda x: "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x))
            if s.nunique() < 2:
                continue
            dists[p] = CategoricalDistribution(sorted(s.unique()))
            values[p] = s.tolist()
    if not dists:
        raise ImportanceError("params: none of them varies among the members with a finite objective")
    trials = [optuna.trial.create_trial(params={p: values[p][i] for p in dists}, distributions=dists,
                                        value=float(v))
              for i, v in enumerate(pd.to_numeric(rows[objective]).to_numpy(float))]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per call
    try:
        study = optuna.create_study(direction="minimize" if mode == "min" else "maximize")
        study.add_trials(trials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            imp = optuna.importance.get_param_importances(
                study, evaluator=FanovaImportanceEvaluator(n_trees=n_trees, seed=seed), normalize=True)
    finally:
        optuna.logging.set_verbosity(verbosity)
    out = pd.DataFrame({"param": list(imp), "importance": [float(v) for v in imp.values()]})
    out = out.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs["n_trials"] = len(trials)
    return out
