"""Predictive pruning of hyperparameter trials from a learning-curve forecast (Domhan et al. 2015, Sec. 3.3):
stop a trial when the probability that its curve ends better than the best completed trial falls below a
threshold. :class:`ExtrapolationPruner` is an ``optuna.pruners.BasePruner``, so it works with plain Optuna
(``trial.report(value, step)`` then ``trial.should_prune()``); the forecast is
:func:`workbench.fit.learning_curves.fit_curve`.

The reported intermediate values must be the same quantity as the trial's final objective (e.g. the
training loss), since the forecast of the former at the final step is compared with the best of the latter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from workbench._compat import deprecated_alias
from workbench.fit.errors import FitDataError
from workbench.fit.learning_curves import fit_curve, should_stop

PRUNER_FAMILIES = ("pow3", "pow4", "mmf", "exp4", "ilog2")


class ExtrapolationPruner(optuna.pruners.BasePruner):
    """Prune when P(value at ``final_step`` better than the best completed trial) < ``threshold``.

    ``final_step``: the step whose forecast is compared (default: the last step reported by the best
    completed trial). No pruning before ``min_points`` intermediate values, before ``n_warmup_steps``,
    while no trial has completed, or when the curve cannot be fitted; a non-finite latest value (a
    diverged run) is pruned at once. Steps ≤ 0 are dropped (the families take logs of the step).
    """

    def __init__(self, threshold: float = 0.05, *, final_step: int | None = None, min_points: int = 8,
                 n_warmup_steps: int = 0, families: Sequence[str] = PRUNER_FAMILIES, bootstrap: int = 32,
                 seed: int = 0, n_boot: int | None = None) -> None:
        bootstrap = deprecated_alias("n_boot", n_boot, "bootstrap", bootstrap)
        if not 0 < threshold < 1:
            raise ValueError(f"threshold: must lie in (0, 1), got {threshold}")
        if min_points < 4:
            raise ValueError(f"min_points: must be >= 4, got {min_points}")
        if final_step is not None and final_step <= 0:
            raise ValueError(f"final_step: must be > 0, got {final_step}")
        if n_warmup_steps < 0:
            raise ValueError(f"n_warmup_steps: must be >= 0, got {n_warmup_steps}")
        self.threshold, self.final_step, self.min_points = float(threshold), final_step, int(min_points)
        self.n_warmup_steps, self.families, self.bootstrap, self.seed = int(n_warmup_steps), tuple(families), bootstrap, seed
        self.last_probability: float | None = None  # P(better) of the latest decision, for logging

    def prune(self, study: optuna.study.Study, trial: FrozenTrial) -> bool:
        """Optuna's pruning hook: fit the trial's curve so far and apply Domhan's rule."""
        self.last_probability = None
        iv = trial.intermediate_values
        if not iv:
            return False
        steps = np.array(sorted(iv), dtype=float)
        values = np.array([iv[int(s)] for s in steps], dtype=float)
        if not math.isfinite(values[-1]):
            return True
        if steps[-1] < self.n_warmup_steps:
            return False
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not done:
            return False
        best = study.best_trial
        final = self.final_step
        if final is None:
            final = max(best.intermediate_values) if best.intermediate_values else None
        if final is None or steps[-1] >= final:
            return False
        keep = (steps > 0) & np.isfinite(values)
        if keep.sum() < self.min_points:
            return False
        try:
            fc = fit_curve(steps[keep], values[keep], families=self.families, bootstrap=self.bootstrap, seed=self.seed,
                           maximize=study.direction == StudyDirection.MAXIMIZE)
        except FitDataError:
            return False
        self.last_probability = fc.prob_better(float(best.value), float(final))
        return should_stop(fc, float(best.value), float(final), self.threshold)
