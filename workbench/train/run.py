"""Entry points: :func:`train` (one run), :func:`train_batched` (N runs as one stack), :func:`resume`.

Each builds the members' models (member i initialised from ``seed_i`` exactly as a run alone), a
backend, the data and the LR table, registers the runs in the store, and hands them to
:func:`workbench.train.loop.run_loop`. Randomness: each member owns a ``torch.Generator`` seeded with its
``seed`` (``Run.generators``): its initial weights are drawn from it (``build_model(..., generator=)``),
batches come from the data's own per-epoch generators, and checkpoints save and restore the members'
generator states. Torch's global RNG is never used, so the caller's RNG state is the same after
``train()`` as before it.

``store`` is a :class:`~workbench.store.RunStore`, a path (opened and closed here) or None (nothing
recorded). ``progress=None`` means on in a terminal and off under CI (:func:`default_progress`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from workbench.device import configure_precision, pick_device
from workbench.models import build_model
from workbench.store import RunStore
from workbench.train import checkpoint
from workbench.train.backends import make_backend
from workbench.train.config import ConfigError, TrainConfig, check_batchable, check_until
from workbench.train.data import MemberData
from workbench.train.loop import Run, RunResult, run_loop
from workbench.train.sink import Sink, default_progress

StoreLike = RunStore | str | os.PathLike | None


@contextlib.contextmanager
def open_store(store: StoreLike) -> Iterator[RunStore | None]:
    """``store`` as a RunStore (a path is opened here and closed on exit; a RunStore is left open)."""
    if store is None or isinstance(store, RunStore):
        yield store
        return
    with RunStore(store) as s:
        yield s


def learning_rates(cfgs: Sequence[TrainConfig], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[N, steps] learning rate of each member at each step: peak ``lr`` x its schedule's multiplier."""
    peaks = torch.tensor([c.lr for c in cfgs], dtype=torch.float64)
    return (peaks[:, None] * multipliers(cfgs, "cpu").double()).to(device, dtype)


def multipliers(cfgs: Sequence[TrainConfig], device: torch.device | str) -> torch.Tensor:
    """[N, steps] LR multipliers of each member's schedule (ones for no schedule, and for a schedule-free
    run, whose optimizer applies its own warmup to the peak LR). ``steps`` is the longest member's; a
    shorter member's columns past its own end are never used (it is frozen there)."""
    steps = max(c.steps for c in cfgs)
    cfgs = [c.replace(schedule=None) if c.schedule_free else c for c in cfgs]
    if all(c.schedule is None for c in cfgs):
        return torch.ones(len(cfgs), steps, device=device)
    from workbench.schedules import lr_table

    return lr_table([schedule_spec(c) for c in cfgs], steps, device=device)


def schedule_spec(cfg: TrainConfig) -> dict:
    """The member's schedule spec with its horizon filled in by the one warmup rule
    (:mod:`workbench.schedules.base`; :func:`workbench.configcheck.fill_horizon`): a schedule lasts the
    run's ``steps`` updates, warmup included, so ``{"name": "warmup", "schedule": {"name": "cosine"},
    "warmup_steps": W}`` is the same LR curve as ``{"name": "cosine", "warmup_steps": W}``. A horizon
    written in the spec is kept as written."""
    from workbench.configcheck import fill_horizon

    return fill_horizon(dict(cfg.schedule or {"name": "constant"}), cfg.steps)


def _build(cfgs: Sequence[TrainConfig], stacked: bool, store: Any, run_ids: list[str | None]) -> Run:
    c = cfgs[0]
    device = pick_device(c.device)
    if device.type == "cuda":
        configure_precision(c.tf32)
    data = MemberData(c.task, c.task_params, [m.seed for m in cfgs], [m.data_seed for m in cfgs], c.batch_size,
                      device)
    generators = [torch.Generator().manual_seed(m.seed) for m in cfgs]   # one per member: its own randomness
    models = [build_model(c.model, c.model_params, data.ds, generator=g).to(device) for g in generators]
    model = make_backend(cfgs, models, device, stacked)
    lrs = learning_rates(cfgs, model.lr_device, model.lr_dtype)
    alive = torch.ones(len(cfgs), dtype=torch.bool, device=device)
    return Run(cfgs, model, data, lrs, store, run_ids, 0, alive, generators=generators)


def _tokens_per_step(run: Run) -> int:
    ds = run.data.ds
    return run.data.examples_per_step * (ds.seq_len if ds.kind == "lm" else 1)


def _go(run: Run, progress: bool | None, until: int | None, return_params: bool, resumed_at: int = -1
        ) -> list[RunResult]:
    show = default_progress() if progress is None else bool(progress)
    sink = Sink(run.cfgs[0], run.store, run.run_ids, _tokens_per_step(run), run.step, show)
    return run_loop(run, sink, until, resumed_at, return_params)


def train(cfg: TrainConfig | dict, store: StoreLike = None, *, name: str | None = None, sweep: str | None = None,
          run_id: str | None = None, progress: bool | None = None, return_params: bool = False,
          until: int | None = None) -> RunResult:
    """Train one run (plain module, any library optimizer); stream metrics into ``store`` if given.
    ``until=k``: pause at step k (checkpoint, status ``interrupted``, the schedule still sees ``steps``)."""
    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
    check_until(until)
    with open_store(store) as st:
        run = _build([cfg], False, st, [None])
        if st is not None:
            run.run_ids = [st.create_run(name or f"{cfg.task}-s{cfg.seed}", task=cfg.task, config=cfg.to_dict(),
                                         sweep=sweep, device=str(run.data.device), run_id=run_id)]
        return _go(run, progress, until, return_params)[0]


def train_batched(cfgs: Sequence[TrainConfig | dict], store: StoreLike = None, *, sweep: str | None = None,
                  run_ids: Sequence[str] | None = None, names: Sequence[str] | None = None,
                  progress: bool | None = None, return_params: bool = False,
                  until: int | None = None, start: dict | None = None) -> list[RunResult]:
    """Train N members as one stacked model; one store run per member, with ids ``run_ids`` when given
    (``until``: as in :func:`train`). The members may differ only in ``BATCHABLE_FIELDS`` and ``steps``
    (each stops at its own). ``start``: a stacked checkpoint state of these N members (step, parameters,
    optimizer, alive mask, RNG) to continue from instead of step 0 (:func:`workbench.train.fork.fork`)."""
    cfgs = [c if isinstance(c, TrainConfig) else TrainConfig.from_dict(c) for c in cfgs]
    check_until(until)
    check_batchable(cfgs)
    for arg, vals in (("run_ids", run_ids), ("names", names)):
        if vals is not None and len(vals) != len(cfgs):
            raise ConfigError(f"{arg}: must give one per member ({len(cfgs)}), got {len(vals)}")
    if start is not None and len(start.get("configs", [])) != len(cfgs):
        raise ConfigError(f"start: must hold one state per member ({len(cfgs)}), got {len(start.get('configs', []))}")
    with open_store(store) as st:
        run = _build(cfgs, True, st, [None] * len(cfgs))
        if start is not None:
            _load_state(run, start)
        if st is not None:
            run.run_ids = [st.create_run((names[i] if names else None) or f"{c.task}-s{c.seed}-m{i}", task=c.task,
                                         config=c.to_dict(), sweep=sweep, device=str(run.data.device),
                                         run_id=run_ids[i] if run_ids else None)
                           for i, c in enumerate(cfgs)]
        return _go(run, progress, until, return_params, resumed_at=run.step if start is not None else -1)


def _load_state(run: Run, sd: dict) -> None:
    """Continue ``run`` from checkpoint state ``sd``: weights, optimizer, filter, alive mask, the members'
    generator states, step. (A checkpoint written before runs owned generators holds the global RNG state
    instead; nothing of the loop draws from it, and it is not restored into the caller's RNG.)"""
    run.model.load_state_dict(sd)
    run.alive = sd["alive"].to(run.alive.device)
    rng = sd.get("rng")
    if torch.is_tensor(rng) and rng.dim() == 2 and rng.shape[0] == len(run.generators):
        for g, state in zip(run.generators, rng):
            g.set_state(state.detach().to("cpu", torch.uint8).clone())
    run.step = int(sd["step"])


def _check_resumable(st: Any, run_id: str, path: Any, allow_restart: bool) -> None:
    """Refuse (ConfigError, nothing changed) anything but an ``interrupted`` run with a checkpoint on disk
    (``allow_restart``: one without a checkpoint restarts from step 0; the sweep runner uses it for
    members killed before their first checkpoint)."""
    status = st.get_run(run_id)["status"]
    if status != "interrupted":
        raise ConfigError(f"resume: run {run_id!r} is {status!r}; only an interrupted run (killed, or paused "
                          "with until=) can be resumed. Nothing was changed")
    if path is None and not allow_restart:
        none = st.artifacts(run_id, kind="checkpoint").empty
        raise ConfigError(f"resume: run {run_id!r} has no checkpoint on disk "
                          f"({'none recorded' if none else 'recorded files are gone'}), so it cannot continue where "
                          "it stopped (train with checkpoint_every > 0 to make runs resumable). Nothing was changed")


def resume(run_id: str, store: StoreLike, *, progress: bool | None = None, return_params: bool = False,
           until: int | None = None, allow_restart: bool = False) -> RunResult:
    """Continue a killed / interrupted run from its last checkpoint at the exact step (with the
    optimizer, filter, schedule position and RNG state). A member of a stack resumes the whole stack
    except members marked ``pruned`` (unless ``run_id`` is one); the result of ``run_id`` is returned.
    ``until=k`` pauses again at step k. Anything but an interrupted run with a checkpoint is refused with
    :class:`ConfigError` before anything changes (``allow_restart=True``: an interrupted run without a
    checkpoint starts again from step 0, its metrics replaced)."""
    check_until(until)
    with open_store(store) as st:
        _, path, stack = checkpoint.last_checkpoint(st, run_id)
        _check_resumable(st, run_id, path, allow_restart)
        members = [r for r in stack if r == run_id or st.get_run(r)["status"] != "pruned"]
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        cfgs = [TrainConfig.from_dict({k: v for k, v in st.get_run(r)["config"].items() if k in fields})
                for r in members]
        sd = checkpoint.load(path, pick_device(cfgs[0].device)) if path is not None else None
        stacked = len(members) > 1 or bool(sd and sd.get("stacked", sd.get("batched")))
        run = _build(cfgs, stacked, st, list(members))
        if sd is not None:
            if len(members) < len(stack):
                sd = checkpoint.select_members(sd, [stack.index(r) for r in members])
            _load_state(run, sd)
        for r in members:
            if st.get_run(r)["status"] != "diverged":
                st.claim(r)
        # rows logged after the checkpoint are logged again by the resumed run: drop them, never duplicate
        st.delete_metrics(members, from_step=run.step)
        results = _go(run, progress, until, return_params, resumed_at=run.step)
        return results[members.index(run_id)]
