"""Registry of schedules by name, with typed and validated parameters.

``build(spec, **params)`` turns plain data (a dict with ``"name"``, a name string, YAML, a
dashboard form) into a :class:`~workbench.schedules.base.Schedule`; ``schedule.to_dict()`` gives the
data back (round trip). ``param_specs(name)`` lists :class:`ParamSpec` rows (name, type, default,
low, high, doc, choices) for widgets and validation; ``available()`` lists the names.

One vocabulary across every schedule: ``total_steps`` (run length in optimizer updates),
``warmup_steps`` / ``warmup_shape`` / ``warmup_init`` / ``warmup_from_zero``, ``min_ratio``
(min LR / peak), ``decay_steps`` / ``decay_fraction`` / ``decay_shape``, ``gamma`` (per-step or
per-milestone factor), ``cycle_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .base import Schedule, ScheduleParamError, UnknownScheduleError, check_warmup

__all__ = ["ParamSpec", "register", "build", "available", "param_specs", "describe"]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a schedule.

    ``type`` is one of ``int``, ``float``, ``str``, ``bool``, ``list`` (of ``item``) or
    :class:`Schedule` (a nested schedule spec). ``low`` / ``high`` are inclusive bounds
    (``None``: unbounded). ``optional``: ``None`` is an allowed value.
    """

    name: str
    type: type
    default: Any = None
    low: float | None = None
    high: float | None = None
    doc: str = ""
    choices: tuple[Any, ...] | None = None
    required: bool = False
    optional: bool = False
    item: type | None = None

    def allowed(self) -> str:
        """Human-readable allowed range, used in error messages."""
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        tname = "a schedule spec" if self.type is Schedule else (
            f"a list of {getattr(self.item, '__name__', 'values')}" if self.type is list else self.type.__name__)
        lo = "-inf" if self.low is None else repr(self.low)
        hi = "inf" if self.high is None else repr(self.high)
        rng = f" in [{lo}, {hi}]" if (self.low is not None or self.high is not None) else ""
        return tname + rng + (" or None" if self.optional else "")


@dataclass(frozen=True)
class _Entry:
    name: str
    params: tuple[ParamSpec, ...]
    factory: Callable[..., Schedule]
    doc: str


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, params: Sequence[ParamSpec], doc: str = "") -> Callable[[Callable[..., Schedule]], Callable[..., Schedule]]:
    """Decorator: register ``factory(**validated_params) -> Schedule`` under ``name``.

    The returned function validates its keyword arguments, so ``cosine(total_steps=100)`` and
    ``build("cosine", total_steps=100)`` are the same schedule.
    """

    def deco(factory: Callable[..., Schedule]) -> Callable[..., Schedule]:
        _REGISTRY[name] = _Entry(name, tuple(params), factory, doc or (factory.__doc__ or "").strip())

        def public(**kwargs: Any) -> Schedule:
            return build(name, **kwargs)

        public.__name__ = factory.__name__
        public.__qualname__ = factory.__qualname__
        public.__doc__ = factory.__doc__
        public.__module__ = factory.__module__
        return public

    return deco


def available() -> list[str]:
    """Registered schedule names (sorted)."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise UnknownScheduleError(f"unknown schedule {name!r}; available: {available()}")
    return _REGISTRY[name]


def param_specs(name: str) -> list[ParamSpec]:
    """The typed parameters of schedule ``name``."""
    return list(_entry(name).params)


def describe(name: str) -> str:
    """The docstring of schedule ``name`` (formula and paper)."""
    return _entry(name).doc


def _coerce(sched: str, p: ParamSpec, v: Any) -> Any:
    if v is None:
        if p.optional:
            return None
        raise ScheduleParamError(sched, p.name, v, p.allowed())
    t = p.type
    try:
        if t is Schedule:
            return build(v)
        if t is bool:
            if not isinstance(v, bool):
                raise TypeError
            out: Any = v
        elif t is int:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
                raise TypeError
            out = int(v)
        elif t is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                raise TypeError
            out = float(v)
        elif t is str:
            if not isinstance(v, str):
                raise TypeError
            out = v
        elif t is list:
            if isinstance(v, (str, dict)) or not hasattr(v, "__iter__"):
                raise TypeError
            item = ParamSpec(p.name, p.item or float, low=p.low, high=p.high)
            return [_coerce(sched, item, x) for x in v]
        else:  # pragma: no cover - registry misuse
            raise TypeError
    except ScheduleParamError:
        raise
    except (TypeError, ValueError) as e:
        raise ScheduleParamError(sched, p.name, v, p.allowed()) from e
    if p.choices is not None and out not in p.choices:
        raise ScheduleParamError(sched, p.name, v, p.allowed())
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        if (p.low is not None and out < p.low) or (p.high is not None and out > p.high):
            raise ScheduleParamError(sched, p.name, v, p.allowed())
    return out


def build(spec: dict[str, Any] | str | Schedule, **params: Any) -> Schedule:
    """Build a schedule from plain data: ``build({"name": "cosine", "total_steps": 1000})``,
    ``build("cosine", total_steps=1000)``; keyword ``params`` override the spec's.

    Raises :class:`~workbench.schedules.base.ScheduleParamError` (a ``ValueError``) naming the
    parameter and its allowed range, or :class:`UnknownScheduleError` for an unknown name.
    """
    if isinstance(spec, Schedule):
        if not params:
            return spec
        spec = spec.to_dict()
    if isinstance(spec, str):
        name, given = spec, {}
    elif isinstance(spec, dict):
        given = dict(spec)
        name = given.pop("name", None)
        if not isinstance(name, str):
            raise ScheduleParamError("?", "name", name, f"a schedule name, one of {available()}")
    else:
        raise ScheduleParamError("?", "spec", type(spec).__name__, "a dict with 'name', a name string or a Schedule")
    given.update(params)
    entry = _entry(name)
    known = {p.name: p for p in entry.params}
    for k in given:
        if k not in known:
            raise ScheduleParamError(name, k, given[k], f"a parameter of {name!r}: {sorted(known)}")
    values: dict[str, Any] = {}
    for p in entry.params:
        if p.name in given:
            values[p.name] = _coerce(name, p, given[p.name])
        elif p.required:
            raise ScheduleParamError(name, p.name, "<missing>", "required: " + p.allowed())
        else:
            values[p.name] = p.default
    if "warmup_steps" in values and "warmup_shape" in values:
        check_warmup(name, values["warmup_steps"], values["warmup_shape"], values.get("warmup_init", 0.0),
                     values.get("total_steps"))
    s = entry.factory(**values)
    values.update({k: v for k, v in s.params.items() if k in known})  # normalised by the factory
    return Schedule(name, values, s.fn, s.total_steps, s.boundaries)
