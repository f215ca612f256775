"""``predict_schedule(result, schedule_or_lrs, steps=None, level=0.95)``: the loss curve a fitted
schedule-aware law predicts for a schedule nobody has trained, with its band and extrapolation flags.

The schedule may be a ``Schedule`` (multipliers of the peak LR), a schedule spec (dict or registry name, or
the dict read from a YAML file), or a per-update absolute LR array. Steps follow the step convention of
:mod:`workbench.fit.data` (the loss at step s is measured after s updates): a ``T``-step schedule is
predicted at steps 1..T, by default at ``n_points`` of them spread evenly and always including T.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from workbench.fit.data import FitData, lr_array
from workbench.fit.errors import FitDataError
from workbench.fit.result import FitResult, Prediction


def predict_schedule(result: FitResult, schedule_or_lrs: object, steps: Sequence[int] | np.ndarray | None = None,
                     level: float | None = 0.95, *, peak_lr: float | None = None, total_steps: int | None = None,
                     n_points: int = 200, name: str = "schedule") -> Prediction:
    """Predicted loss at ``steps`` of ``schedule_or_lrs`` (module docstring) with a ``level`` band and flags.

    ``peak_lr`` scales a Schedule or spec (default: a spec's own ``peak_lr``/``lr`` entry, else the fitted
    peak LR, noted in ``band_kind``); it must not be given with an absolute LR array."""
    if "lrs" not in result.law.inputs:
        raise FitDataError(f"law: {result.law.name!r} does not take an LR schedule; predict_schedule needs a "
                           f"schedule-aware law (multi_power, lr_annealing, ...)")
    note = ""
    if isinstance(schedule_or_lrs, np.ndarray | list | tuple):
        if peak_lr is not None:
            raise FitDataError("peak_lr: an LR array is already absolute; leave peak_lr out")
        lr = lr_array(schedule_or_lrs)
    else:
        spec = schedule_or_lrs
        if isinstance(spec, Mapping):
            spec = dict(spec)
            own = spec.pop("peak_lr", None)
            if peak_lr is None and own is not None:
                peak_lr = float(own)
        if peak_lr is None:
            peak_lr = result.domain.ranges["peak_lr"][1] if result.domain is not None else None
            if peak_lr is None:
                raise FitDataError("peak_lr: give the peak LR of the schedule")
            note = f"; peak LR {peak_lr:g} (the fitted peak; pass peak_lr= to change it)"
        lr = lr_array(spec, float(peak_lr), total_steps)
    T = len(lr)
    if T < 1:
        raise FitDataError("schedule: has no steps")
    if not np.all(np.isfinite(lr)) or np.any(lr[1:] <= 0) or lr[0] < 0:
        raise FitDataError(f"schedule: the LR must be finite and > 0 after update 0 (the laws take powers of it); "
                           f"min is {np.nanmin(lr):g}")
    if steps is None:
        st = np.unique(np.linspace(1, T, min(n_points, T)).round().astype(np.int64))
    else:
        st = np.asarray(steps)
        if st.ndim != 1 or not len(st):
            raise FitDataError("steps: give a 1-D list of steps")
    data = FitData.from_curves([(name, st, np.ones(len(st)), lr)])
    if level is None:
        level = result.level
    p = result.predict(data, level=level)
    p.at = {"step": st}
    p.band_kind += note
    return p
