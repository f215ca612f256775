"""Schedules of published loss-curve data sets, rebuilt per step.

- :func:`mpl_schedule` -- the 9 schedules of the multi-power-law data (Luo et al. 2025, "A
  multi-power law for loss curve prediction across learning rate schedules", ICLR 2025; data
  ``shared/data/mpl-loss-curves``): linear warmup 0 -> 3e-4 over 2160 steps (papers' convention:
  LR 0 at step 0), then constant; cosine to 3e-5; WSD with an exponential (geometric) decay from
  20000 to 24000 (``wsd_20000_24000``) or a linear one (``wsdld_20000_24000``); two-stage
  ``wsdcon_k``: 3e-4 until step 8000, then k x 1e-5 until 16000.
- :func:`gpt100m_schedule` -- the cosine / WSD / 8-1-1 schedules of ``shared/data/gpt100m-3sched``
  (T = 33907, peak 1e-3, no warmup, final 1e-4; WSD decays geometrically over the last 20 %,
  8-1-1 steps to 1e-3/sqrt(10) at 80 % and to 1e-4 at 90 % of T).

Both return ``(schedule, peak_lr)``: the absolute LR at step t is ``peak_lr * schedule(t)``.
"""

from __future__ import annotations

import math
import re

from .base import Schedule, ScheduleParamError
from .library import constant, cosine, piecewise_constant, two_stage, wsd

__all__ = ["mpl_schedule", "gpt100m_schedule", "MPL_STEMS", "GPT100M_STEMS"]

MPL_PEAK, MPL_FINAL, MPL_WARMUP = 3e-4, 3e-5, 2160
MPL_STEMS = ("constant_24000", "constant_72000", "cosine_24000", "cosine_72000", "wsd_20000_24000",
             "wsdld_20000_24000", "wsdcon_3", "wsdcon_9", "wsdcon_18")
GPT100M_STEMS = ("cosine", "wsd", "811")
GPT100M_T, GPT100M_PEAK, GPT100M_FINAL = 33907, 1e-3, 1e-4


def mpl_schedule(stem: str) -> tuple[Schedule, float]:
    """Rebuild the per-step LR of ``mpl-loss-curves/csv_*/<stem>.csv``: ``(schedule, 3e-4)``."""
    w = {"warmup_steps": MPL_WARMUP, "warmup_from_zero": True}
    r = MPL_FINAL / MPL_PEAK
    if m := re.fullmatch(r"constant_(\d+)", stem):
        return constant(total_steps=int(m[1]), **w), MPL_PEAK
    if m := re.fullmatch(r"cosine_(\d+)", stem):
        return cosine(total_steps=int(m[1]), min_ratio=r, **w), MPL_PEAK
    if m := re.fullmatch(r"(wsd|wsdld)_(\d+)_(\d+)", stem):
        start, end = int(m[2]), int(m[3])
        shape = "exponential" if m[1] == "wsd" else "linear"
        return wsd(total_steps=end, decay_steps=end - start, decay_shape=shape, min_ratio=r, **w), MPL_PEAK
    if m := re.fullmatch(r"wsdcon_(\d+)", stem):
        return two_stage(total_steps=16000, switch_step=8000, stage2_ratio=int(m[1]) * 1e-5 / MPL_PEAK, **w), MPL_PEAK
    raise ScheduleParamError("mpl_schedule", "stem", stem, f"one of {list(MPL_STEMS)}")


def gpt100m_schedule(stem: str) -> tuple[Schedule, float]:
    """Rebuild the per-step LR of ``gpt100m-3sched/<stem>.csv``: ``(schedule, 1e-3)``."""
    T, r = GPT100M_T, GPT100M_FINAL / GPT100M_PEAK
    if stem == "cosine":
        return cosine(total_steps=T, min_ratio=r), GPT100M_PEAK
    if stem == "wsd":
        return wsd(total_steps=T, decay_fraction=0.2, decay_shape="exponential", min_ratio=r), GPT100M_PEAK
    if stem == "811":
        return piecewise_constant(total_steps=T, boundaries=[0.8 * T, 0.9 * T],
                                  values=[1.0, 1.0 / math.sqrt(10.0), r]), GPT100M_PEAK
    raise ScheduleParamError("gpt100m_schedule", "stem", stem, f"one of {list(GPT100M_STEMS)}")
