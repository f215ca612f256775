"""Schedules attached to torch: an ``LRScheduler`` and a device table for batched runs.

- :class:`ScheduleLR` drives any optimizer: LR of group g at update t = ``initial_lr_g * m_g(t)``
  (one schedule per group, or one for all). The base LR is read once from ``initial_lr`` (as torch
  does), so nothing is multiplied twice. ``state_dict`` holds the step and the schedules as plain
  data, so a resumed run continues the schedule at the exact step (and can be saved with
  ``torch.save(..., weights_only=True)``).
- :func:`lr_table` evaluates N schedules once on the host into an ``[N, T]`` tensor on the device;
  :func:`lr_at` looks up the N multipliers at a step given as a device tensor (``index_select``,
  no ``.item()``), so a batched training loop has no host sync per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler

from .base import Schedule, ScheduleParamError
from .registry import build

__all__ = ["ScheduleLR", "lr_table", "lr_at"]

SpecLike = Schedule | dict | str


class ScheduleLR(LRScheduler):
    """``torch.optim.lr_scheduler.LRScheduler`` driven by workbench schedules.

    Args:
        optimizer: any ``torch.optim.Optimizer``; each group's ``lr`` at construction is its peak.
        schedule: a schedule (or spec) for every group, or a list with one per parameter group.
        last_epoch: as in torch (-1 for a fresh run).

    Call ``scheduler.step()`` once per optimizer update (never per micro-batch). The LR used by
    update t (from 0) is ``peak * schedule(t)``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: SpecLike | Sequence[SpecLike], last_epoch: int = -1):
        n = len(optimizer.param_groups)
        if isinstance(schedule, (Schedule, dict, str)):
            scheds = [build(schedule)] * n
        else:
            scheds = [build(s) for s in schedule]
            if len(scheds) != n:
                raise ScheduleParamError("ScheduleLR", "schedule", f"{len(scheds)} schedules",
                                         f"one schedule or exactly one per parameter group ({n})")
        self.schedules: list[Schedule] = scheds
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        t = max(self.last_epoch, 0)
        return [float(base) * s(t) for base, s in zip(self.base_lrs, self.schedules)]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def state_dict(self) -> dict[str, Any]:
        sd = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "schedules")}
        sd["schedules"] = [s.to_dict() for s in self.schedules]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        specs = sd.pop("schedules", None)
        if specs is not None:
            self.schedules = [build(s) for s in specs]
        self.__dict__.update(sd)


def lr_table(
    schedules: Sequence[SpecLike],
    total_steps: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Multipliers of N schedules at updates ``0 .. total_steps-1`` as one ``[N, total_steps]`` tensor
    on ``device`` (computed once on the host in float64)."""
    if total_steps < 1:
        raise ScheduleParamError("lr_table", "total_steps", total_steps, ">= 1")
    steps = np.arange(int(total_steps), dtype=np.float64)
    arr = np.stack([np.asarray(build(s)(steps)) for s in schedules]) if len(schedules) else np.zeros((0, total_steps))
    return torch.as_tensor(arr, dtype=dtype).to(device) if device is not None else torch.as_tensor(arr, dtype=dtype)


def lr_at(table: torch.Tensor, step: torch.Tensor | int, peak: torch.Tensor | None = None) -> torch.Tensor:
    """The N multipliers (times ``peak`` if given, shape [N]) at ``step`` without a host sync.

    ``step`` may be a 0-d integer tensor on the table's device (incremented on the device by the
    training loop); steps past the table hold its last column.
    """
    if not isinstance(step, torch.Tensor):
        step = torch.tensor(int(step), device=table.device)
    idx = step.reshape(1).clamp(0, table.shape[1] - 1)
    out = table.index_select(1, idx).squeeze(1)
    return out * peak if peak is not None else out
