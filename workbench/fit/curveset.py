"""Fit a schedule-aware law on some loss curves and predict every curve (the curve-law fitter page, notebooks).

The laws (multi-power law, Luo et al. ICLR 2025 eq. 7; LR-annealing law, Tissue et al. 2024 eq. 1) take a
run's whole per-update LR as input. A *curve* here is ``(steps, losses, lr)`` (``workbench.fit.data.Curve``:
observed steps and losses, the absolute LR of every update 0..last step). Only the observed points are
thinned for the fit (``fit_points`` per curve, evenly spread); the LR series always keeps every step, since
both laws sum over all steps. Predictions cover the curves fitted on, the curves held out, and *typed*
schedules nobody trained (an LR array without measurements), each with per-curve metrics where measured and
the first step beyond the law's fitted domain with the reason (``FitResult.flags``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workbench.fit.data import Curve, FitData, thin_index
from workbench.fit.errors import FitDataError
from workbench.fit.metrics import curve_metrics


def kept(steps: np.ndarray, skip_frac: float) -> np.ndarray:
    """Indices of the observed points past the first ``skip_frac`` of a curve (its warmup, early transient)."""
    return np.nonzero(steps >= max(1, int(skip_frac * int(steps[-1]))))[0]


def curve_fit_data(curves: Mapping[str, Curve], fit_on: Sequence[str], *, skip_frac: float = 0.1,
                   fit_points: int = 24, n_params: int = 0) -> tuple[FitData, float]:
    """The training data of a curve fit (``FitData.from_curves``: at most ``fit_points`` observed points per
    curve of ``fit_on``, the whole per-step LR) and the largest LR in it (for a starting grid)."""
    if not curves:
        raise FitDataError("curves: load loss curves first (data files, an upload or runs of the store)")
    names = [n for n in fit_on if n in curves]
    if not names:
        raise FitDataError(f"fit_on: choose at least one of the loaded curves {list(curves)[:8]}")
    rows = []
    for n in names:
        steps, loss, lr = curves[n]
        keep = kept(steps, skip_frac)
        keep = keep[thin_index(len(keep), int(fit_points))]
        if len(keep) < 2:
            raise FitDataError(f"skip_frac: leaves {len(keep)} point(s) of curve {n!r}; lower it")
        rows.append((n, steps[keep], loss[keep], lr))
    data = FitData.from_curves(rows)
    if len(data) < n_params:
        raise FitDataError(f"fit_points: {len(data)} points in all, fewer than the {n_params} parameters of the "
                           "law; raise fit_points or fit on more curves")
    return data, float(max(np.max(r[3]) for r in rows))


def curve_predictions(result: Any, curves: Mapping[str, Curve], typed: Mapping[str, np.ndarray],
                      fitted_on: Sequence[str], *, skip_frac: float = 0.1, eval_points: int = 200,
                      extra: Mapping[str, np.ndarray] | None = None) -> dict[str, dict[str, Any]]:
    """Per curve: ``role`` (fit / heldout / typed), ``pred_step`` and ``pred`` (the prediction at the measured
    points past ``skip_frac``, at most ``eval_points``; for a typed schedule at evenly spread steps), for
    measured curves ``step``, ``loss``, ``fit_pred`` and ``metrics`` (:func:`curve_metrics`), and ``beyond``
    = (first step outside the fitted domain, why) where the prediction leaves it. ``extra``: further inputs
    of the law, one value per curve in the order measured curves then typed (e.g. ``unique_steps``)."""
    rows, meta = [], []
    for n, (steps, loss, lr) in curves.items():
        keep = kept(steps, skip_frac)
        keep = keep[thin_index(len(keep), int(eval_points))]
        rows.append((n, steps[keep], loss[keep], lr))
        meta.append((n, "fit" if n in fitted_on else "heldout"))
    for n, lr in typed.items():
        T = len(lr)
        st = np.unique(np.linspace(max(1, int(skip_frac * (T - 1))), T - 1,
                                   min(int(eval_points), T)).round().astype(np.int64))
        rows.append((n, st, np.ones(len(st)), lr))
        meta.append((n, "typed"))
    if not rows:
        return {}
    data = FitData.from_curves(rows)
    if extra:
        cid = np.asarray(data.x["curve"]).astype(int)
        data = FitData({**data.x, **{k: np.asarray(v, float)[cid] for k, v in extra.items()}}, data.y, data.group,
                       data.lrs, data.names)
    pred = np.asarray(result.predict(data, warn=False), float)
    try:
        flags, _, why = result.flags(data)
    except Exception:  # noqa: BLE001 - no shading rather than no prediction
        flags, why = np.full(len(data), "inside", dtype=object), [""] * len(data)
    flags = np.asarray(flags)
    out: dict[str, dict[str, Any]] = {}
    for c, ((n, role), (_, st, y, _lr)) in enumerate(zip(meta, rows)):
        sel = np.asarray(data.x["curve"]) == c
        p = pred[sel]
        d: dict[str, Any] = {"role": role, "pred_step": st, "pred": p}
        out_idx = np.nonzero(flags[sel] != "inside")[0]
        if len(out_idx):  # the law's fitted domain ends here
            d["beyond"] = (int(st[out_idx[0]]), [w for w, m in zip(why, sel) if m][out_idx[-1]])
        if role != "typed":
            d.update(step=st, loss=y, fit_pred=p, metrics=curve_metrics(y, p))
        out[n] = d
    return out


def metrics_table(curves: Mapping[str, Mapping[str, Any]], result: Any, fitted_on: Sequence[str]) -> list[dict]:
    """One row per curve of :func:`curve_predictions`: role, points in the fit, R², mean and worst relative
    error, final measured and predicted loss, and where and why the prediction leaves the fitted domain."""
    labels = {"fit": "fitted on", "heldout": "held out", "typed": "not trained"}
    n_fit = {n: int(np.sum(np.asarray(result.x["curve"]) == i)) for i, n in enumerate(fitted_on)}
    rows = []
    for n, d in curves.items():
        m = d.get("metrics", {})
        rows.append({"curve": n, "role": labels[d["role"]], "fit points": n_fit.get(n, 0), "R²": m.get("r2", np.nan),
                     "mean rel. err": m.get("mean_rel", np.nan), "worst rel. err": m.get("worst_rel", np.nan),
                     "final step": int(d["pred_step"][-1]),
                     "final loss": float(d["loss"][-1]) if "loss" in d else np.nan,
                     "predicted final": float(d["pred"][-1]),
                     "extrapolated from step": d["beyond"][0] if "beyond" in d else None,
                     "why": d["beyond"][1] if "beyond" in d else ""})
    return rows
