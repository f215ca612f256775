"""Loss predictions of learning-rate schedules before training, with a fitted schedule-aware law.

The laws are the multi-power law of Luo et al. (ICLR 2025, "A Multi-Power Law for Loss Curve Prediction
Across Learning Rate Schedules") and the LR-annealing law of Tissue et al. (2024, "Scaling Law with
Learning Rate Annealing"), fitted by :mod:`workbench.fit`. This module turns a schedule into the
per-update absolute LR series those laws take, predicts the curve, says from which step a prediction lies
outside what the law was fitted on, and reads runs of the store into curves to fit a law on. The schedule
lab (``workbench/apps/schedule_lab.py``) shows all of it; nothing here imports Panel.

Step convention (:mod:`workbench.fit.data`): the loss logged at step s is measured after s updates, so a
schedule of T steps gives predictions at steps 1..T.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError

LR_FLOOR = 1e-12
"""Relative floor for LRs of 0 in a prediction (``positive_lr``)."""


def positive_lr(lr: np.ndarray) -> np.ndarray:
    """The LR series with values of 0 (a schedule decaying to ``min_ratio = 0``, a zero warmup start) raised
    to ``LR_FLOOR`` x its peak, since the schedule-aware laws take the log of every LR after step 0. Their
    prediction is the limit as the LR goes to 0: no update happens at an LR of 0, and the multi-power law's
    loss drop for a decay to 1e-12 x peak differs from that limit by ~1e-9 of the drop. Negative or
    non-finite LRs are left for the law to refuse."""
    lr = np.asarray(lr, dtype=np.float64)
    peak = float(np.max(lr)) if lr.size and np.all(np.isfinite(lr)) else 0.0
    return np.where(lr == 0, LR_FLOOR * peak, lr) if peak > 0 else lr


def law_name(result: Any) -> str:
    """The name of a fitted law (a ``FitResult``'s law, or the object's type)."""
    law = getattr(result, "law", None)
    return str(getattr(law, "name", law) or type(result).__name__)


def _curve_input(lr: np.ndarray) -> dict:
    return {"step": np.arange(1, len(lr) + 1), "curve": np.zeros(len(lr), dtype=np.int64), "lrs": [lr]}


def predict_curve(result: Any, lr: np.ndarray) -> np.ndarray:
    """Predicted loss at steps 1..T of a per-update absolute LR series ``lr`` (``lr[i]``: the LR of update i,
    T = len(lr)) with a fitted schedule-aware law (``FitResult.predict``; the loss at step s is measured
    after s updates, the step convention of ``workbench.fit.data``)."""
    lr = np.asarray(lr, dtype=np.float64)
    errors: list[Exception] = []
    # a workbench FitResult takes the curve dict; other objects with predict(lr) are tried as well
    for call in (lambda: result.predict(_curve_input(lr), warn=False), lambda: result.predict(lr)):
        try:
            out = np.asarray(call(), dtype=np.float64).reshape(-1)
        except (TypeError, KeyError, AttributeError) as e:
            errors.append(e)
            continue
        if out.shape[0] == lr.shape[0]:
            return out
        errors.append(ValueError(f"prediction has {out.shape[0]} points for {lr.shape[0]} steps"))
    raise WorkbenchError(f"law {getattr(result, 'law', '?')!r} cannot predict a loss curve from an LR schedule "
                         f"(a schedule-aware law such as the multi-power law is needed): {errors[-1]}")


def schedule_lr(schedule: Any, peak_lr: float) -> np.ndarray:
    """The per-update absolute LR of a schedule (``peak_lr`` x its multiplier at updates 0..T-1)."""
    return np.asarray(schedule(np.arange(int(schedule.total_steps))), dtype=np.float64) * float(peak_lr)


def prediction_curves(law: Any, schedules: Sequence[tuple[str, Any]], peak_lr: float
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Label -> (steps 1..T, predicted loss) for each (label, Schedule)."""
    out = {}
    for label, s in schedules:
        lr = positive_lr(schedule_lr(s, peak_lr))
        out[label] = (np.arange(1, len(lr) + 1), predict_curve(law, lr))
    return out


def has_domain(law: Any) -> bool:
    """Whether ``law`` carries the domain it was fitted on (a workbench FitResult's ``flags``)."""
    return law is not None and hasattr(law, "flags")


def extrapolation(law: Any, schedules: Sequence[tuple[str, Any]], peak_lr: float) -> dict[str, tuple[int, str]]:
    """Label -> (first step whose prediction is outside the law's fitted domain, why) for a workbench
    FitResult (``FitResult.flags``); other law objects carry no domain: empty (see :func:`has_domain`)."""
    if not has_domain(law):
        return {}
    out = {}
    for label, s in schedules:
        try:
            flags, _, why = law.flags(_curve_input(schedule_lr(s, peak_lr)))
        except Exception:  # noqa: BLE001 - no flags rather than no prediction
            continue
        idx = np.nonzero(np.asarray(flags) != "inside")[0]
        if len(idx):
            out[label] = (int(idx[0]) + 1, why[idx[-1]])
    return out


INSIDE = "inside"
"""The predictions table's "extrapolated from step" of a prediction inside the law's fitted domain."""
OUTSIDE = "outside"
"""The predictions table's "extrapolated from step" of a prediction outside the fitted domain at no known step."""
NOT_CHECKED = "not checked"
"""The predictions table's "extrapolated from step" where the law carries no fitted domain to check against."""


def predictions_table(curves: dict[str, tuple[np.ndarray, np.ndarray]],
                      beyond: dict[str, tuple[int, str]], *, domain: bool = True) -> pd.DataFrame:
    """One row per predicted curve: final and least predicted loss, and the step from which the prediction
    leaves the fitted domain and why (``extrapolation``). "extrapolated from step" is text, never a NaN
    cell: the step (``OUTSIDE`` if ``beyond`` gives none), ``INSIDE`` for a prediction that stays in the
    fitted domain, or ``NOT_CHECKED`` (the reason in "why") when ``domain`` is False, i.e. the law carries no
    fitted domain (:func:`has_domain`)."""
    rows = []
    for label, (steps, loss) in curves.items():
        b = beyond.get(label)
        if b is not None:  # a domain flag without a step still says the prediction leaves the domain
            ext, why = (OUTSIDE if b[0] is None else str(int(b[0]))), str(b[1])
        elif domain:
            ext, why = INSIDE, ""
        else:
            ext, why = NOT_CHECKED, "the law carries no fitted domain to check the schedule against"
        rows.append({"schedule": label, "steps": int(steps[-1]), "final loss": float(loss[-1]),
                     "min loss": float(np.min(loss)), "extrapolated from step": ext, "why": why})
    cols = ["schedule", "steps", "final loss", "min loss", "extrapolated from step", "why"]
    # object dtype: Bokeh serialises pandas' string dtype in Tabulator as NaN
    return pd.DataFrame(rows, columns=cols).astype({c: object for c in ("schedule", "extrapolated from step", "why")})


def store_curves(store: Any, ids: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Runs of the store as loss curves (run id, steps, loss, per-step LR) to fit a schedule-aware law on:
    the runs must be of one task and have logged ``lr`` and a loss (``train_loss``, else ``loss``) at 3
    steps or more after step 0. Bad choices raise a :class:`WorkbenchError` naming ``fit_runs``."""
    ids = list(ids)
    if not ids:
        raise WorkbenchError("fit_runs: choose the runs to fit the law on (runs of one task that logged 'lr' "
                             "and a loss)")
    runs = store.runs().set_index("id")
    unknown = [r for r in ids if r not in runs.index]
    if unknown:
        raise WorkbenchError(f"fit_runs: no run {unknown[0]!r} in the store")
    tasks = runs.loc[ids, "task"].fillna("").replace("", "?").value_counts()
    if len(tasks) > 1:
        mix = ", ".join(f"{t} ({n} run{'s' if n > 1 else ''})" for t, n in tasks.items())
        raise WorkbenchError(f"fit_runs: the chosen runs mix tasks: {mix}. A loss law fitted across tasks "
                             "describes none of them; choose runs of one task")
    df = store.metrics(ids, ["lr", "train_loss", "loss"], wide=True)
    ycol = "train_loss" if "train_loss" in df else "loss"
    curves, missing = [], []
    for rid in ids:
        g = df[df["run"] == rid] if "lr" in df and ycol in df else df.iloc[:0]
        g = g.dropna(subset=["lr", ycol]) if len(g) else g
        # the loss at step 0 precedes every update: no schedule-aware law models it (workbench.fit.data)
        g = g[g["step"] > 0] if len(g) else g
        if len(g) < 3:
            missing.append(rid)
            continue
        steps = g["step"].to_numpy(dtype=np.int64)
        lr = np.interp(np.arange(int(steps.max()) + 1), steps, g["lr"].to_numpy(float))  # per-step LR
        curves.append((rid, steps, g[ycol].to_numpy(float), lr))
    if missing:
        names = ", ".join(runs.loc[missing, "name"].astype(str).tolist()[:5])
        raise WorkbenchError(f"fit_runs: {len(missing)} chosen run(s) did not log both 'lr' and a loss "
                             f"('train_loss') at 3 steps or more: {names}")
    return curves


def optimise_against(law: Any, specs: Sequence[dict], peak_lr: float, *, knots: int = 32, iters: int = 300) -> Any:
    """The schedule minimising ``law``'s predicted final loss (``workbench.schedule_design.optimize_schedule``,
    Luo et al. 2025) for baselines ``specs``: their common length and (longest) warmup, ``peak_lr``, min LR 0,
    non-increasing after the warmup. Returns the ``optimized`` Schedule (its ``design`` attached)."""
    from workbench.schedule_design import optimize_schedule
    from workbench.schedules import build

    if law is None:
        raise WorkbenchError("law: load or fit a schedule-aware law first (Loss prediction)")
    if not specs:
        raise WorkbenchError("chosen: add the baseline schedules first; the optimised one gets their length")
    scheds = [build(d) for d in specs]
    totals = {int(s.total_steps) for s in scheds}
    if len(totals) != 1:
        raise WorkbenchError(f"chosen: schedules must have the same length (total_steps) to compare, "
                             f"got {sorted(totals)}")
    T = totals.pop()
    warm = max(int(s.params.get("warmup_steps") or 0) for s in scheds)
    from_zero = any(bool(s.params.get("warmup_from_zero")) for s in scheds)
    return optimize_schedule(law, T, peak_lr=float(peak_lr), warmup=min(warm, T - 3),
                             knots=max(1, min(knots, T - warm - 1)), iters=iters, warmup_from_zero=from_zero)
