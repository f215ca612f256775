"""The `Schedule` type, its errors and the small pure combinators.

A schedule is a pure function of progress: ``s(step)`` returns the *multiplier* of the peak LR
(absolute LR = peak x multiplier, kept apart so nothing is multiplied twice). ``step`` counts
optimizer updates from 0 (never micro-batches); it may be an int, a float or a numpy array (every
step of a run at once, for plots and for the loss-curve laws). Steps past ``total_steps`` hold the
final value; negative steps raise.

The one warmup rule (every schedule, the combinators and the training engine follow it)
-------------------------------------------------------------------------------------------
**A schedule of ``total_steps = T`` lasts T updates, its warmup included**: with ``warmup_steps = W`` the
first W updates ramp up (:func:`warmup_factor`) and the rest of the schedule runs over the remaining
T − W updates, at the progress ``(t − W) / (T − W)`` (the Hugging Face convention). So
``cosine(T, warmup_steps=W)`` and ``with_warmup(cosine(T), W)`` are the same T-update curve, and a run of
``steps = T`` with either spec trains T updates (``workbench.configcheck.fill_horizon`` gives both the run's
``steps``). Milestones written in absolute steps (``wsd``'s ``decay_steps``, ``step``'s boundaries) stay
absolute inside the registered schedules; :func:`with_warmup` wrapping an arbitrary schedule maps its
steps to the remaining span.

Combinators (optax-like: plain functions returning new schedules, never mutating their input, so
nesting cannot change a schedule -- the ``SequentialLR`` bugs):

- :func:`with_warmup` -- a warmup phase (linear, exponential) at the start of any schedule, inside its
  length (the one warmup rule above);
- :func:`sequence` -- phases one after the other, each seeing its own local step;
- :func:`scale` -- multiply by a constant;
- :func:`floor` -- never go below ``min_ratio``;
- :func:`rewarm` -- continual pre-training (Gupta et al. 2023, "Continual pre-training of large
  language models: how to (re)warm your model?"): after a finished schedule, warm up again from
  its final value to a new peak, then run a second schedule.

Schedules are written here rather than taken from optax/timm/transformers because the workbench
needs numpy-vectorised evaluation, a registry with one parameter vocabulary and a round trip to
plain data, none of which those libraries provide together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

__all__ = [
    "Schedule",
    "ScheduleError",
    "ScheduleParamError",
    "UnknownScheduleError",
    "warmup_factor",
    "with_warmup",
    "sequence",
    "scale",
    "floor",
    "rewarm",
]

ArrayFn = Callable[[np.ndarray], np.ndarray]


class ScheduleError(WorkbenchError):
    """Base class of every schedule error (a ``ValueError``)."""


class ScheduleParamError(ScheduleError):
    """A schedule parameter is out of its allowed range; names the parameter and the range."""

    def __init__(self, schedule: str, param: str, value: Any, allowed: str):
        self.schedule, self.param, self.value, self.allowed = schedule, param, value, allowed
        super().__init__(f"schedule {schedule!r}: parameter {param!r} = {value!r} is invalid; allowed: {allowed}")


class UnknownScheduleError(ScheduleError, KeyError):
    """No schedule registered under that name."""

    def __str__(self) -> str:  # KeyError would add quotes
        return str(self.args[0])


def _plain(v: Any) -> Any:
    """Convert a parameter value to plain data (JSON/YAML friendly)."""
    if isinstance(v, Schedule):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    return v


@dataclass(frozen=True, eq=False)
class Schedule:
    """A learning-rate schedule: ``s(step) -> multiplier`` of the peak LR.

    Attributes:
        name: registry name (``build(s.to_dict())`` rebuilds an equal schedule).
        params: the validated parameters (plain data, nested schedules as :class:`Schedule`).
        fn: vectorised body, called with float64 steps already clipped to ``[0, total_steps]``.
        total_steps: run length in optimizer updates.
        boundaries: phase boundaries in steps (end of warmup, decay start, milestones, ...).
    """

    name: str
    params: Mapping[str, Any]
    fn: ArrayFn = field(repr=False)
    total_steps: int
    boundaries: tuple[float, ...] = ()

    def __call__(self, step: int | float | np.ndarray | Sequence[float]) -> float | np.ndarray:
        t = np.asarray(step, dtype=np.float64)
        if t.size and not t.min() >= 0:  # also catches NaN
            raise ScheduleParamError(self.name, "step", step if t.ndim == 0 else "array", ">= 0 (optimizer updates from 0)")
        # scalars go through the same array code path, so s(t) == s(array)[i] bit for bit
        tc = np.minimum(np.atleast_1d(t), float(self.total_steps))
        out = np.asarray(self.fn(tc), dtype=np.float64)
        if out.shape != tc.shape:
            out = np.array(np.broadcast_to(out, tc.shape))
        return float(out[0]) if t.ndim == 0 else out.reshape(t.shape)

    # --- tokens ---------------------------------------------------------------------------
    def at_tokens(self, tokens: float | np.ndarray, tokens_per_step: float) -> float | np.ndarray:
        """Multiplier after ``tokens`` tokens, with ``tokens_per_step`` tokens per optimizer update."""
        if tokens_per_step <= 0:
            raise ScheduleParamError(self.name, "tokens_per_step", tokens_per_step, "> 0")
        return self(np.asarray(tokens, dtype=np.float64) / float(tokens_per_step))

    def total_tokens(self, tokens_per_step: float) -> float:
        """Run length in tokens."""
        if tokens_per_step <= 0:
            raise ScheduleParamError(self.name, "tokens_per_step", tokens_per_step, "> 0")
        return float(self.total_steps) * float(tokens_per_step)

    def values(self, total_steps: int | None = None) -> np.ndarray:
        """Multiplier at every optimizer update ``0 .. total_steps-1`` (default: the schedule's length)."""
        n = self.total_steps if total_steps is None else int(total_steps)
        return self(np.arange(n, dtype=np.float64))

    # --- plain data -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data with ``"name"``; ``workbench.schedules.build(d)`` rebuilds the schedule."""
        return {"name": self.name, **{k: _plain(v) for k, v in self.params.items()}}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_plain(v)!r}" for k, v in self.params.items())
        return f"Schedule({self.name}: {args})"


# --- warmup ---------------------------------------------------------------------------------
WARMUP_SHAPES = ("linear", "exponential", "none")


def warmup_factor(
    t: np.ndarray, warmup_steps: float, shape: str = "linear", init: float = 0.0, from_zero: bool = False
) -> np.ndarray:
    """Warmup ramp from ``init`` to 1 over ``warmup_steps`` updates (values for ``t < warmup_steps``).

    Progress ``p = (t + 1) / W`` by default, so the first update (t = 0) gets ``init + (1 - init)/W > 0``
    and the W-th update (t = W - 1) reaches the peak. ``from_zero=True`` uses the papers' / Hugging
    Face convention ``p = t / W`` (LR ``init`` -- often 0 -- at the first update, peak at t = W).
    ``linear``: ``init + (1 - init) p``; ``exponential``: ``init ** (1 - p)`` (geometric, init > 0).
    """
    t = np.asarray(t, dtype=np.float64)
    if warmup_steps <= 0 or shape == "none":
        return np.ones_like(t)
    p = np.clip((t if from_zero else t + 1.0) / float(warmup_steps), 0.0, 1.0)
    if shape == "linear":
        return init + (1.0 - init) * p
    if shape == "exponential":
        return np.power(init, 1.0 - p)
    raise ScheduleParamError("warmup", "warmup_shape", shape, f"one of {WARMUP_SHAPES}")


def check_warmup(name: str, warmup_steps: float, shape: str, init: float, total_steps: float | None) -> None:
    """Shared validation of the warmup parameters."""
    if warmup_steps < 0:
        raise ScheduleParamError(name, "warmup_steps", warmup_steps, ">= 0")
    if total_steps is not None and warmup_steps > total_steps:
        raise ScheduleParamError(name, "warmup_steps", warmup_steps, f"<= total_steps ({total_steps}): warmup longer than the run")
    if shape not in WARMUP_SHAPES:
        raise ScheduleParamError(name, "warmup_shape", shape, f"one of {WARMUP_SHAPES}")
    if shape == "none" and warmup_steps > 0:
        raise ScheduleParamError(name, "warmup_shape", shape, "'linear' or 'exponential' when warmup_steps > 0 (or set warmup_steps=0)")
    if not 0.0 <= init <= 1.0:
        raise ScheduleParamError(name, "warmup_init", init, "[0, 1] (multiplier at the start of warmup)")
    if shape == "exponential" and warmup_steps > 0 and init <= 0.0:
        raise ScheduleParamError(name, "warmup_init", init, "(0, 1] for an exponential warmup")


# --- combinators ----------------------------------------------------------------------------
def with_warmup(
    schedule: Schedule,
    warmup_steps: int,
    shape: str = "linear",
    init: float = 0.0,
    from_zero: bool = False,
) -> Schedule:
    """Warm ``schedule`` up over its first ``warmup_steps`` updates (see :func:`warmup_factor`), by the one
    warmup rule (module docstring): the result lasts ``schedule.total_steps = T`` updates, warmup included;
    after the ramp the wrapped schedule runs at its own progress over the remaining ``T - W`` updates (its
    step ``u = (t - W) * T / (T - W)``), so ``with_warmup(cosine(T), W)`` is ``cosine(T, warmup_steps=W)``.
    The ramp ends at ``schedule(0)`` (continuous).
    """
    T = int(schedule.total_steps)
    check_warmup("warmup", warmup_steps, shape, init, T)
    W = float(warmup_steps)
    k = T / (T - W) if T > W else 0.0  # the wrapped schedule's steps per step after the warmup
    s0 = schedule(0)

    def fn(t: np.ndarray) -> np.ndarray:
        inner = schedule.fn(np.clip((t - W) * k, 0.0, float(T)))
        return np.where(t < W, warmup_factor(t, W, shape, init, from_zero) * s0, inner)

    params = {"schedule": schedule, "warmup_steps": int(warmup_steps), "warmup_shape": shape,
              "warmup_init": float(init), "warmup_from_zero": bool(from_zero)}
    bounds = (W,) + (tuple(W + b / k for b in schedule.boundaries) if k else ())
    return Schedule("warmup", params, fn, T, bounds)


def sequence(schedules: Sequence[Schedule]) -> Schedule:
    """Run ``schedules`` one after the other; each sees its own local step from 0."""
    scheds = list(schedules)
    if not scheds:
        raise ScheduleParamError("sequence", "schedules", [], "a non-empty list of schedules")
    starts = np.cumsum([0] + [s.total_steps for s in scheds])
    total = int(starts[-1])

    def fn(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        idx = np.clip(np.searchsorted(starts[1:-1], t, side="right"), 0, len(scheds) - 1)
        out = np.empty(t.shape, dtype=np.float64)
        for i, s in enumerate(scheds):
            m = idx == i
            if np.any(m):
                out[m] = s.fn(np.clip(t[m] - starts[i], 0.0, float(s.total_steps)))
        return out

    bounds: list[float] = []
    for i, s in enumerate(scheds):
        if i:
            bounds.append(float(starts[i]))
        bounds.extend(float(b + starts[i]) for b in s.boundaries)
    return Schedule("sequence", {"schedules": scheds}, fn, total, tuple(sorted(set(bounds))))


def scale(schedule: Schedule, factor: float) -> Schedule:
    """Multiply a schedule by a constant ``factor`` (> 0)."""
    if not factor > 0:
        raise ScheduleParamError("scale", "factor", factor, "> 0")
    return Schedule("scale", {"schedule": schedule, "factor": float(factor)},
                    lambda t: factor * schedule.fn(t), schedule.total_steps, schedule.boundaries)


def floor(schedule: Schedule, min_ratio: float) -> Schedule:
    """Clip a schedule from below at ``min_ratio`` (in [0, 1])."""
    if not 0.0 <= min_ratio <= 1.0:
        raise ScheduleParamError("floor", "min_ratio", min_ratio, "[0, 1] (min LR / peak LR)")
    return Schedule("floor", {"schedule": schedule, "min_ratio": float(min_ratio)},
                    lambda t: np.maximum(schedule.fn(t), min_ratio), schedule.total_steps, schedule.boundaries)


def rewarm(first: Schedule, then: Schedule, warmup_steps: int, shape: str = "linear") -> Schedule:
    """Continual pre-training (Gupta et al. 2023): ``first``, then ``then`` re-warmed linearly (or
    geometrically) from ``first``'s final multiplier to ``then(0)`` over its first ``warmup_steps`` updates
    (inside ``then``'s length, the one warmup rule): ``first.total_steps + then.total_steps`` updates."""
    end = float(first(first.total_steps))
    if shape == "exponential" and end <= 0:
        raise ScheduleParamError("rewarm", "shape", shape, "'linear' when the first schedule ends at 0")
    inner = with_warmup(then, warmup_steps, shape=shape, init=min(max(end, 0.0), 1.0), from_zero=True)
    seq = sequence([first, inner])
    params = {"first": first, "then": then, "warmup_steps": int(warmup_steps), "warmup_shape": shape}
    return Schedule("rewarm", params, seq.fn, seq.total_steps, seq.boundaries)
