"""Diagnostics that catch a wrong law: systematic residuals at the end of a fitted curve, and a train /
validation gap that opens.

``gap_trends(result, train)`` (run by ``fit(..., train_loss=...)``, shown by ``report()``): per fitted
curve the trend of the relative validation - training gap over the late half of the curve (:func:`gap_trend`).

``residual_trend(result)``: per fitted curve (or group; the whole data sorted by its first input without
groups) the mean log residual over the last quarter of its points, with a standard error from the noise level
of the residuals' first differences (blind to a smooth trend) and their lag-1 autocorrelation (effective sample
size n(1 − ρ)/(1 + ρ)). A late mean beyond 4 standard
errors and beyond 0.1 % is reported in plain language: the law under-fits (or over-fits) the end of the
curve, so longer or different schedules will be mis-predicted. A flattening late curve is the mark of
repeated data (several epochs; Muennighoff et al. 2023), for which :mod:`workbench.fit.repetition` offers
a law with a repetition term.
"""

from __future__ import annotations

import numpy as np

from workbench.fit.errors import FitDataError

MIN_EFFECT = 1e-3  # 0.1 % of the loss: smaller systematic residuals are not worth a warning
Z = 4.0


def _lag1(r: np.ndarray) -> float:
    if len(r) < 3 or np.std(r) == 0:
        return 0.0
    a = r - r.mean()
    return float(np.clip(np.sum(a[1:] * a[:-1]) / np.sum(a * a), -0.99, 0.99))


def _order(result: object) -> tuple[np.ndarray, np.ndarray, bool]:
    """(curve/group id, ordering key, is a loss curve) of every fitted point."""
    x = result.x
    if "lrs" in result.law.inputs:
        return np.asarray(x["curve"]), np.asarray(x["step"], float), True
    if result.group is not None:
        return np.asarray(result.group), np.asarray(x[result.law.inputs[0]], float), False
    return np.zeros(result.n, int), np.asarray(x[result.law.inputs[0]], float), False


def _label(result: object, g: object, curves: bool) -> str:
    names = list(getattr(result, "names", []) or [])
    return names[int(g)] if curves and int(g) < len(names) else str(g)


def gap_trends(result: object, train: np.ndarray, *, tail: float = 0.5) -> list[dict]:
    """:func:`gap_trend` of every fitted curve (or group), the fitted target being the validation loss and
    ``train`` the training loss at the same points. One dict per curve: ``check`` (``"gap_trend"``),
    ``curve``, ``slope_per_1k``, ``growth``, ``flag``, ``message`` (naming the curve); curves with fewer than 8
    points get ``flag`` False and a message saying they were too short to check."""
    train = np.asarray(train, float).ravel()
    if train.shape != np.shape(result.y):
        raise FitDataError(f"train_loss: needs one value per fitted point ({len(result.y)}), got {train.shape[0]}")
    if not np.all(np.isfinite(train)):
        raise FitDataError(f"train_loss: {int(np.sum(~np.isfinite(train)))} value(s) are NaN or inf")
    group, key, curves = _order(result)
    out = []
    for g in np.unique(group):
        idx = np.nonzero(group == g)[0]
        idx = idx[np.argsort(key[idx], kind="stable")]
        label = _label(result, g, curves)
        if len(idx) < 8:
            out.append({"check": "gap_trend", "curve": label, "slope_per_1k": float("nan"), "growth": float("nan"),
                        "flag": False, "message": f"curve {label}: too few points ({len(idx)} < 8) for the "
                                                  f"train/validation gap check"})
            continue
        d = gap_trend(key[idx], train[idx], np.asarray(result.y, float)[idx], tail=tail)
        out.append({"check": "gap_trend", "curve": label, **d, "message": f"curve {label}: {d['message']}"})
    return out


def residual_trend(result: object, *, tail: float = 0.25) -> list[dict]:
    """One dict per curve/group: ``check`` (``"residual_trend"``), ``curve``, ``late_mean`` (mean log residual over the last ``tail`` of its
    points, > 0: data above the law), ``z`` (against the noise level estimated from first differences), ``flag``
    (bool) and a plain-language ``message``."""
    group, order_key, curves = _order(result)
    r_all = np.asarray(result.residuals, float)
    out = []
    for g in np.unique(group):
        idx = np.nonzero(group == g)[0]
        idx = idx[np.argsort(order_key[idx], kind="stable")]
        r = r_all[idx]
        if len(r) < 8:
            continue
        k = max(int(np.ceil(tail * len(r))), 3)
        late = r[-k:]
        # noise level from first differences (blind to a smooth systematic trend), inflated by the lag-1
        # autocorrelation of the differenced noise
        dr = np.diff(r)
        sd = float(np.std(dr) / np.sqrt(2)) or 1e-12
        rho = max(_lag1(dr) + 0.5, 0.0)  # iid noise gives lag-1 autocorrelation -0.5 in the differences
        n_eff = max(k * (1 - rho) / (1 + rho), 1.0)
        se = sd / np.sqrt(n_eff)
        m = float(late.mean())
        z = m / se if se > 0 else 0.0
        flag = bool(abs(z) > Z and abs(m) > MIN_EFFECT)
        label = _label(result, g, curves)
        if not flag:
            msg = f"curve {label}: no systematic late residuals ({100 * m:+.3f} % over the last {k} points)"
        elif m > 0:
            msg = (f"the law under-fits the end of curve {label}: the measured values lie {100 * m:.2f} % above the "
                   f"law over its last {k} points (z = {z:.1f}); the curve flattens more than the law allows "
                   f"(repeated data? a capacity limit?); longer or different schedules will be mis-predicted")
        else:
            msg = (f"the law over-fits the end of curve {label}: the measured values lie {100 * -m:.2f} % below the "
                   f"law over its last {k} points (z = {z:.1f}); the curve keeps improving faster than the law "
                   f"allows; longer or different schedules will be mis-predicted")
        out.append({"check": "residual_trend", "curve": label, "late_mean": m, "z": float(z), "flag": flag, "message": msg})
    return out


def gap_trend(steps: np.ndarray, train: np.ndarray, val: np.ndarray, *, tail: float = 0.5) -> dict:
    """Whether the validation − training gap opens over the last ``tail`` of a run: slope of the relative gap
    per 1 000 steps (least squares) and a message when it grows by more than 0.5 % of the loss over the tail
    (over-fitting / repeated data: the fresh-data laws will under-predict the validation loss)."""
    steps, train, val = (np.asarray(a, float) for a in (steps, train, val))
    if not (len(steps) == len(train) == len(val)) or len(steps) < 8:
        raise FitDataError("steps, train, val: need equal lengths of at least 8 points")
    k = max(int(len(steps) * tail), 4)
    s, g = steps[-k:], (val[-k:] - train[-k:]) / val[-k:]
    slope = float(np.polyfit(s, g, 1)[0])
    grow = slope * (s[-1] - s[0])
    opens = bool(grow > 5e-3)
    msg = (f"the validation-train gap grows by {100 * grow:.2f} % of the loss over the last {k} points: the model "
           f"starts to over-fit (repeated data?); fresh-data laws will under-predict the validation loss"
           if opens else f"the validation-train gap is stable ({100 * grow:+.2f} % over the last {k} points)")
    return {"slope_per_1k": slope * 1000, "growth": grow, "flag": opens, "message": msg}
