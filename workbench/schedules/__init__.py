"""Learning-rate schedules: pure functions of the step, combinators, registry, torch attachment,
paper rebuilds and adaptive schedules (issue 3).

Quick start::

    from workbench.schedules import build, cosine, ScheduleLR
    s = cosine(total_steps=10_000, warmup_steps=500, min_ratio=0.1)
    s(0), s(np.arange(10_000))          # multipliers of the peak LR
    build(s.to_dict()) == s              # plain-data round trip
    sched = ScheduleLR(optimizer, s)     # step it once per optimizer update

Names: ``available()``; parameters: ``param_specs(name)``. See ``library`` for the formulas.
"""

from .adaptive import (
    AutoLRSConfig,
    AutoLRSResult,
    autolrs,
    is_schedule_free,
    refine,
    refined_schedule,
    schedule_free,
    schedule_free_optimizer,
    schedule_free_pair,
)
from .base import (
    Schedule,
    ScheduleError,
    ScheduleParamError,
    UnknownScheduleError,
    floor,
    rewarm,
    scale,
    sequence,
    warmup_factor,
    with_warmup,
)
from .library import (
    constant,
    cosine,
    cosine_restarts,
    cyclic,
    decay_curve,
    exponential,
    infinite,
    inverse_sqrt,
    linear,
    multistep,
    onecycle,
    optimized,
    piecewise_constant,
    power,
    rex,
    step,
    table,
    two_stage,
    wsd,
)
from .paper import gpt100m_schedule, mpl_schedule
from .registry import ParamSpec, available, build, describe, param_specs, register
from .torch import ScheduleLR, lr_at, lr_table

__all__ = [
    "Schedule", "ScheduleError", "ScheduleParamError", "UnknownScheduleError", "ParamSpec",
    "build", "available", "param_specs", "describe", "register",
    "with_warmup", "sequence", "scale", "floor", "rewarm", "warmup_factor", "decay_curve",
    "constant", "step", "multistep", "exponential", "linear", "cosine", "cosine_restarts", "inverse_sqrt",
    "onecycle", "optimized", "wsd", "rex", "power", "infinite", "cyclic", "piecewise_constant", "two_stage", "table",
    "ScheduleLR", "lr_table", "lr_at",
    "mpl_schedule", "gpt100m_schedule",
    "refine", "refined_schedule", "AutoLRSConfig", "AutoLRSResult", "autolrs",
    "schedule_free", "is_schedule_free", "schedule_free_optimizer", "schedule_free_pair",
]
