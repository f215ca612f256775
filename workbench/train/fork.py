"""Cooldown forks: branch many cooldowns from one run's constant-LR phase as ONE batched launch.

Hägele et al. (2024), "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations":
a run trained at a constant LR can be *cooled down* from any checkpoint of its stable phase, and a
short cooldown (e.g. 20 % of the run, ``1-sqrt`` shape) matches a cosine run of the same length; so one
constant-LR run plus cheap cooldowns replaces a grid of runs from scratch. :func:`fork` takes a parent
run with checkpoints at its ``fork_points`` (``TrainConfig.fork_points``) and trains every combination of
fork step x cooldown length x decay shape as members of one :func:`~workbench.train.train_batched` stack:

* member schedule (:func:`cooldown_schedule`): the parent's constant LR (its warmup included) until the
  fork step, then :func:`~workbench.schedules.library.decay_curve` of the shape from the parent's LR to 0
  over ``cooldown_steps`` updates -- the ``sequence`` combinator of ``constant`` and a full-length ``wsd``
  decay; the member's ``steps`` is fork step + cooldown length;
* the stack starts from the parent's checkpoint at the *earliest* fork step (its state copied to every
  member); a member forked later repeats the parent's constant-LR updates up to its own fork step (same
  data, same LR: the parent's trajectory, as a stack member equals a run alone to 1e-5), and each member
  stops at its own end (a ragged stack: final metrics, run finished, then frozen);
* every member is a run linked to its parent in the store (``RunStore.set_fork``: ``parent_run``,
  ``fork_step``), written before the launch so the monitor can group forks under their parent.

A member equals :func:`~workbench.train.resume` of the same cooldown config from the parent's checkpoint
to 1e-5 (tests/test_fork.py). Cost: one launch of N members for (last end - first fork step) steps.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from workbench.device import pick_device
from workbench.optim import BATCHED_OPTIMIZERS
from workbench.train import checkpoint
from workbench.train.config import ConfigError, TrainConfig
from workbench.train.loop import RunResult
from workbench.train.run import StoreLike, multipliers, open_store, train_batched

SHAPES: tuple[str, ...] = ("linear", "1-sqrt", "cosine")
_WARMUP_KEYS = ("warmup_steps", "warmup_shape", "warmup_init", "warmup_from_zero")


def cooldown_schedule(parent_schedule: dict | None, fork_step: int, cooldown_steps: int, shape: str) -> dict:
    """The schedule spec of a fork: ``constant`` (with the parent's warmup) for ``fork_step`` updates, then
    a ``wsd`` decay of ``shape`` over all of its ``cooldown_steps`` to 0 (Hägele et al. 2024), as one
    ``sequence`` lasting ``fork_step + cooldown_steps``."""
    warm = {k: v for k, v in (parent_schedule or {}).items() if k in _WARMUP_KEYS}
    return {"name": "sequence", "schedules": [
        {"name": "constant", "total_steps": int(fork_step), **warm},
        {"name": "wsd", "total_steps": int(cooldown_steps), "decay_fraction": 1.0, "decay_shape": shape,
         "min_ratio": 0.0}]}


def _int_list(name: str, v: Any, lo: int) -> list[int]:
    vals = list(v) if isinstance(v, (list, tuple)) else [v]
    if not vals or any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < lo for x in vals):
        raise ConfigError(f"{name}: must be a non-empty list of integers >= {lo}, got {v!r}")
    return sorted({int(x) for x in vals})


def _check_shapes(shapes: Any) -> list[str]:
    vals = [shapes] if isinstance(shapes, str) else list(shapes or [])
    if not vals or any(s not in SHAPES for s in vals):
        raise ConfigError(f"shapes: must be a non-empty list of {list(SHAPES)}, got {shapes!r}")
    return list(dict.fromkeys(vals))


def _check_constant_phase(parent: TrainConfig, run_id: str, fork_step: int) -> None:
    """The parent's LR multipliers up to ``fork_step`` must be the fork's prefix (constant 1 after warmup)."""
    prefix = TrainConfig.from_dict({**parent.to_dict(), "steps": fork_step + 1, "fork_points": [],
                                    "schedule": cooldown_schedule(parent.schedule, fork_step, 1, "linear")})
    got = multipliers([parent], "cpu")[0, :fork_step].double().numpy()
    want = multipliers([prefix], "cpu")[0, :fork_step].double().numpy()
    if not (np.allclose(got, want, rtol=0, atol=1e-9) and got[-1] == 1.0):
        raise ConfigError(f"at_steps: step {fork_step} is not in run {run_id!r}'s constant-LR phase (its LR "
                          f"multiplier there is {got[-1]:.4g}, the schedule {parent.schedule!r}); fork from a "
                          "constant-LR (or WSD stable-phase) run")


def _stack_state(sd: dict, member: int, n: int, optimizer: str) -> dict:
    """A checkpoint state (a stack's or a plain run's) as the state of an n-member stack, every member a
    copy of ``member``."""
    if sd.get("stacked", sd.get("batched")):
        return checkpoint.select_members(sd, [member] * n)
    opt = sd["opt"]
    if optimizer not in BATCHED_OPTIMIZERS or "state" not in opt or len(opt.get("param_groups", [])) != 1:
        raise ConfigError(f"optimizer: a fork runs batched; {optimizer!r} with this checkpoint's optimizer state "
                          f"cannot be stacked (batched optimizers: {BATCHED_OPTIMIZERS})")
    if sd.get("filter"):
        raise ConfigError("grokfast: forking a plain (unstacked) run with a gradient filter is not supported")

    def rep(t: torch.Tensor) -> torch.Tensor:
        return t.unsqueeze(0).repeat(n, *([1] * t.dim()))

    ids = opt["param_groups"][0]["params"]
    state, steps = [], []
    for i in ids:
        st = opt["state"].get(i, {})
        state.append({k: rep(v) for k, v in st.items() if k != "step" and torch.is_tensor(v)})
        if "step" in st:
            steps.append(int(st["step"]))
    return {**sd, "params": {k: rep(v) for k, v in sd["params"].items()},
            "buffers": {k: rep(v) for k, v in sd.get("buffers", {}).items()},
            "opt": {"name": optimizer, "step": steps[0] if steps else int(sd["step"]), "state": state},
            "filter": None, "alive": sd["alive"].reshape(-1)[:1].repeat(n), "stacked": True,
            "configs": [sd["configs"][0]] * n}


def fork(run_id: str, at_steps: Sequence[int], cooldown_steps: Sequence[int], shapes: Sequence[str] = SHAPES,
         store: StoreLike = None, *, progress: bool | None = None, return_params: bool = False) -> list[RunResult]:
    """Branch every (fork step, cooldown length, shape) of ``run_id`` as ONE batched launch (see the module
    docstring, Hägele et al. 2024). ``at_steps``: steps of the parent's constant-LR phase with a checkpoint
    on disk (``fork_points``); ``cooldown_steps``: decay lengths; ``shapes``: of :data:`SHAPES`. Returns one
    :class:`RunResult` per member (fork steps, then lengths, then shapes, in sorted order)."""
    at = _int_list("at_steps", at_steps, 1)
    cds = _int_list("cooldown_steps", cooldown_steps, 1)
    shp = _check_shapes(shapes)
    if store is None:
        raise ConfigError("store: a fork needs the run store holding the parent run and its checkpoints")
    with open_store(store) as st:
        rec = st.get_run(run_id)
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        parent = TrainConfig.from_dict({k: v for k, v in rec["config"].items() if k in fields})
        found = {s: checkpoint.at_step(st, run_id, s) for s in at}
        missing = [s for s, f in found.items() if f is None]
        if missing:
            have = sorted({int((m or {}).get("step", -1)) for m in st.artifacts(run_id, kind="checkpoint")["meta"]})
            raise ConfigError(f"at_steps: run {run_id!r} has no checkpoint on disk at step(s) {missing}; it has "
                              f"{have} (train it with fork_points=[...] to keep checkpoints there)")
        for s in at:
            _check_constant_phase(parent, run_id, s)
        cfgs, names, combos = [], [], []
        for s in at:
            for cd in cds:
                for shape in shp:
                    cfgs.append(parent.replace(schedule=cooldown_schedule(parent.schedule, s, cd, shape), steps=s + cd,
                                               fork_points=[], checkpoint_every=0))
                    names.append(f"{rec['name']}/fork@{s}+{cd} {shape}")
                    combos.append(s)
        path, member, _ = found[at[0]]
        sd = checkpoint.load(path, pick_device(parent.device))
        start = {**_stack_state(sd, member, len(cfgs), parent.optimizer.lower()),
                 "configs": [c.to_dict() for c in cfgs]}
        ids = [uuid.uuid4().hex[:12] for _ in cfgs]
        for rid, s in zip(ids, combos):     # linked before the launch: the monitor groups them while they run
            st.set_fork(rid, run_id, s)
        return train_batched(cfgs, st, run_ids=ids, names=names, progress=progress,
                             return_params=return_params, start=start)


def fork_results(store: Any, parent_run: str, metric: str = "test_loss") -> tuple[Any, Any]:
    """The forks of ``parent_run`` and its own curve, for :func:`workbench.figures.forks.forks_figure`:
    ``(forks, parent)`` DataFrames. ``forks``: one row per fork run (``run, name, status, fork_step,
    cooldown_steps, shape, step, tokens, final``: ``metric`` at its last logged step, tokens there =
    compute); ``parent``: the parent's ``step, tokens, value`` of ``metric``."""
    import pandas as pd

    links = store.forks(parent_run)
    rows = []
    for rid, s in zip(links["run"], links["fork_step"]):
        try:
            rec = store.get_run(rid)
        except Exception:  # noqa: BLE001  (a link whose launch never created the run)
            continue
        phases = (rec["config"].get("schedule") or {}).get("schedules") or [{}, {}]
        m = store.metrics(rid, [metric])
        last = m.iloc[-1] if len(m) else None
        rows.append({"run": rid, "name": rec["name"], "status": rec["status"], "fork_step": int(s),
                     "cooldown_steps": int(rec["config"].get("steps", 0)) - int(s),
                     "shape": phases[-1].get("decay_shape", "?"),
                     "step": None if last is None else int(last["step"]),
                     "tokens": None if last is None else last["tokens"],
                     "final": None if last is None else float(last["value"])})
    cols = ["run", "name", "status", "fork_step", "cooldown_steps", "shape", "step", "tokens", "final"]
    pm = store.metrics(parent_run, [metric])
    return pd.DataFrame(rows, columns=cols), pm[["step", "tokens", "value"]].reset_index(drop=True)
