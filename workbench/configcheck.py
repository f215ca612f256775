"""Validate a training configuration's nested specs by building them, before anything trains.

``TrainConfig`` checks its own scalar fields; :func:`check_nested` checks what those fields name — the
schedule (with its parameters, and that it covers the whole run), the optimizer (with its parameters,
e.g. ``betas`` given to SGD), the model (with its parameters, on the task's data shapes) and the
device string — by building each one the way training will: the schedule through
``workbench.schedules.build``, the optimizer over one tiny tensor, the model on PyTorch's ``meta``
device (no memory), so a config that constructs is a config that can start. Whether a named device is
*present* (``cuda`` on a CPU-only box) is checked when training starts, so a config written on a GPU
machine can still be read elsewhere.

Builds are cached on the plain-data key of what they check: a sweep of many members that share a
model and optimizer pays for one build.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import torch

from workbench import schedules
from workbench import tasks as T
from workbench.errors import WorkbenchError
from workbench.models import build_model
from workbench.optim import build_optimizer

DEVICE_TYPES = ("cpu", "cuda", "mps")


def _key(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def check_device(device: Any, error: type[WorkbenchError] = WorkbenchError) -> None:
    """``auto`` or a device string of a supported type (``cpu``, ``cuda[:i]``, ``mps``)."""
    if device == "auto":
        return
    ok = isinstance(device, str)
    if ok:
        try:
            ok = torch.device(device).type in DEVICE_TYPES
        except (RuntimeError, ValueError):
            ok = False
    if not ok:
        raise error(f"device: must be 'auto', 'cpu', 'cuda', 'cuda:<i>' or 'mps', got {device!r}")


def fill_horizon(spec: dict, steps: int) -> dict:
    """``spec`` with its horizon filled in by the one warmup rule (:mod:`workbench.schedules.base`): a
    schedule lasts the run's ``steps`` updates, warmup included. A schedule that takes ``total_steps`` gets
    ``steps``, and so does the ``warmup`` combinator's inner schedule (the warmup lies inside its length).
    A horizon written in the spec is kept."""
    spec = dict(spec)
    names = {p.name for p in schedules.param_specs(spec.get("name", ""))}
    if "total_steps" in names and "total_steps" not in spec:
        spec["total_steps"] = steps
    inner = spec.get("schedule")
    if spec.get("name") == "warmup" and isinstance(inner, dict):
        spec["schedule"] = fill_horizon(inner, steps)
    return spec


def check_schedule(spec: dict | None, steps: int, error: type[WorkbenchError] = WorkbenchError) -> None:
    """Build the schedule (``total_steps`` defaults to the run's ``steps``, as in training); a schedule
    that ends before the run would sit at its floor for the rest of it, silently: an error."""
    if spec is None:
        return
    spec = dict(spec)
    name = spec.get("name")
    if not isinstance(name, str):
        raise error(f"schedule.name: must be a schedule name, one of {schedules.available()}, got {name!r}")
    try:
        spec = fill_horizon(spec, steps)
    except schedules.ScheduleError as e:
        raise error(f"schedule: {e}") from None
    sched = _build_schedule(_key(spec))
    if isinstance(sched, Exception):
        raise error(f"schedule: {sched}") from None
    total = getattr(sched, "total_steps", None)
    if total is not None and total < steps:
        raise error(f"schedule.total_steps: the schedule ends at step {total} but the run has steps={steps}; "
                    f"it would sit at its final LR for the last {steps - total} steps. Leave total_steps out "
                    "(it defaults to steps) or make it >= steps")


@functools.lru_cache(maxsize=256)
def _build_schedule(spec_json: str) -> Any:
    try:
        return schedules.build(json.loads(spec_json))
    except (WorkbenchError, TypeError, ValueError) as e:
        return e


def check_optimizer(name: str, params: dict, lr: float, weight_decay: float, orthograd: bool,
                    error: type[WorkbenchError] = WorkbenchError) -> None:
    """Build the optimizer over one small tensor: unknown names, unknown or wrong-typed parameters
    (``betas`` for SGD) and out-of-range values (``betas=[2, 0.9]``) fail here, naming the field."""
    msg = _build_optimizer(name, _key(params), float(lr), float(weight_decay), bool(orthograd))
    if msg is not None:
        raise error(msg)


@functools.lru_cache(maxsize=256)
def _build_optimizer(name: str, params_json: str, lr: float, weight_decay: float, orthograd: bool) -> str | None:
    params = json.loads(params_json)
    w = torch.zeros(2, 2, requires_grad=True)
    try:
        build_optimizer(name, [("weight", w)], lr=lr, weight_decay=weight_decay, orthograd=orthograd, **params)
    except WorkbenchError as e:
        return str(e)
    except TypeError as e:  # an unexpected keyword, or a parameter of the wrong type
        return f"optimizer_params: {name!r} does not accept {sorted(params)} ({e})"
    except (ValueError, RuntimeError) as e:
        return f"optimizer_params: invalid for {name!r} ({e})"
    return None


def check_model(task: str, task_params: dict, model: str, model_params: dict,
                error: type[WorkbenchError] = WorkbenchError) -> None:
    """Build the model on the ``meta`` device for the task's data shapes (no memory allocated)."""
    msg = _build_model(task, _key(task_params), model, _key(model_params))
    if msg is not None:
        raise error(msg)


@functools.lru_cache(maxsize=256)
def _dataset(task: str, params_json: str) -> T.Dataset:
    return T.make_task(task, json.loads(params_json), seed=0)


@functools.lru_cache(maxsize=256)
def _build_model(task: str, task_params_json: str, model: str, model_params_json: str) -> str | None:
    try:
        ds = _dataset(task, task_params_json)
    except (WorkbenchError, TypeError, ValueError) as e:
        return f"task_params: {e}"
    try:
        with torch.device("meta"):
            build_model(model, json.loads(model_params_json), ds)
    except WorkbenchError as e:
        return str(e)
    except (TypeError, ValueError, RuntimeError, AssertionError) as e:
        return f"model_params: invalid for model {model!r} on task {task!r} ({e})"
    return None


def check_nested(cfg: Any, error: type[WorkbenchError] = WorkbenchError) -> None:
    """Check every nested spec of a ``TrainConfig`` by building it; raise ``error`` naming the field."""
    check_device(cfg.device, error)
    check_schedule(cfg.schedule, cfg.steps, error)
    check_optimizer(cfg.optimizer, cfg.optimizer_params, cfg.lr, cfg.weight_decay, cfg.orthograd, error)
    check_model(cfg.task, cfg.task_params, cfg.model, cfg.model_params, error)


__all__ = ["fill_horizon", "check_nested", "check_device", "check_schedule", "check_optimizer", "check_model", "DEVICE_TYPES"]
