"""Executors: one interface to run a sweep's members on one GPU, a pool of processes, or a Ray cluster.

Every executor takes a list of :class:`Job` (a member to start, or an interrupted member to resume
from its checkpoint) and runs each through the engine (``workbench.train.train`` /
``train_batched`` / ``resume``), which writes runs and metrics to the run store. No training loop
lives here. A job with ``until=k`` pauses its member at step k (the engine's ``until``: a checkpoint,
status ``interrupted``), so the sweep can decide from the curve so far whether to finish it (pruning).

* :class:`BatchedExecutor` (``batched``): members whose configs differ only in fields the engine's
  batched loop can vary per member (LR, schedule, weight decay, seed, optimizer hyperparameters...)
  share a model shape; they are packed into groups that fit in memory and each group trains as one
  batched model (``train_batched``). A group the engine refuses (e.g. an optimizer without a
  batched form) falls back to one ``train`` per member.
* :class:`LocalExecutor` (``local``): a pool of ``spawn``-ed worker processes on this machine
  (``concurrent.futures.ProcessPoolExecutor``), each opening the same SQLite store (WAL: concurrent
  writers are safe). With several GPUs, worker *i* gets ``cuda:i mod n``.
* :class:`RayExecutor` (``ray``): real Ray tasks (``ray.remote``) on the cluster given by
  ``address`` (``ray.init(address=...)``), ``num_gpus`` may be fractional so small trials share a
  GPU. ``store_mode="direct"``: each task opens the store path (one machine or a shared file
  system); ``"ship"``: each task trains into a private temporary store and ships its run back as a
  Parquet export (``RunStore.export``), which the driver imports — for clusters without a shared
  file system. Pausing (``until``) needs ``direct``: a shipped trial's checkpoints stay on its worker.

The memory packing of :class:`BatchedExecutor` is a rough estimate (16 bytes per parameter for the
weights, gradients and two Adam moments, plus activations ~ batch x positions x widest layer x 64
bytes), measured against ``memory_fraction`` of the free device memory; ``resources.max_group``
caps it explicitly.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

EXECUTORS = ("batched", "local", "ray")

class ExecutorError(WorkbenchError):
    """A bad executor choice or option: names it and what is allowed."""


@dataclass
class Job:
    """One member to run: ``action`` is ``new`` (start it as ``run_id``) or ``resume``."""

    run_id: str
    config: dict[str, Any]
    name: str
    action: str = "new"
    index: int = 0
    covers: list[str] = field(default_factory=list)   # resume: every run id of the stack it continues
    until: int | None = None                            # pause at this step (None: train to the end)


@dataclass
class Outcome:
    run_id: str
    status: str
    final: dict[str, float] = field(default_factory=dict)
    error: str | None = None


OnDone = Callable[[Outcome], None]


# ---------------------------------------------------------------------------------------- engine glue
def _engine() -> Any:
    import workbench.train as engine

    return engine


def _outcome(res: Any, run_id: str) -> Outcome:
    final = getattr(res, "final", {}) or {}
    return Outcome(getattr(res, "run_id", run_id) or run_id, str(getattr(res, "status", "finished")),
                   {k: float(v) for k, v in dict(final).items() if isinstance(v, (int, float))})


def _record_failure(store: Any, job: Job, sweep: str | None, exc: BaseException) -> Outcome:
    """Record ``job`` as failed with ``exc``'s type, message and full traceback (the engine normally records
    its own failures; this covers an exception that escaped it). A store that cannot be written (SQLite or
    file-system error, the run vanished) leaves the failure in the returned outcome only."""
    msg = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        try:
            store.get_run(job.run_id)
        except KeyError:
            store.create_run(job.name, task=str(job.config.get("task", "")), config=job.config, sweep=sweep,
                             run_id=job.run_id, status="failed")
        store.set_status(job.run_id, "failed", error=msg + "\n" + tb)
    except (sqlite3.Error, OSError, KeyError, WorkbenchError):
        pass
    return Outcome(job.run_id, "failed", {}, msg)


def record_failures(store: Any, jobs: Sequence[Job], sweep: str | None,
                    body: Callable[[], list[Outcome] | None]) -> list[Outcome] | None:
    """The executors' single top-level failure recorder: run ``body`` (members through the engine, or the
    result of a worker process / Ray task) and return its outcomes. The engine records its own failures
    (diverged, failed runs); an exception that escapes it (a config error caught only by the engine's
    constructor, an out-of-memory or shape error raised before its recorder, a worker process or Ray task
    that died, a store error) is an ``Exception`` subclass: every job of ``jobs`` is then recorded as failed
    with its full traceback (:func:`_record_failure`) and the sweep goes on. ``KeyboardInterrupt`` and
    ``SystemExit`` propagate (an interrupted sweep stays resumable). This is not a fallback: only
    ``BatchedUnsupportedError`` / ``ConfigError`` from ``train_batched`` run a group one member at a time
    (:func:`_run_group`)."""
    try:
        return body()
    except Exception as e:  # noqa: BLE001 - the one top-level recorder (docstring)
        return [_record_failure(store, j, sweep, e) for j in jobs]


def last_checkpoint(store: Any, run_id: str) -> tuple[int, list[str]]:
    """Step of ``run_id``'s last checkpoint still on disk (0 if none) and the run ids trained in the
    same stack (the engine's ``resume`` continues the whole stack)."""
    from workbench.train.checkpoint import last_checkpoint as last

    step, _, stack = last(store, run_id)
    return step, stack


def _status(store: Any, run_id: str) -> str | None:
    try:
        return str(store.get_run(run_id)["status"])
    except KeyError:
        return None


def run_one(store: Any, job: Job, sweep: str | None) -> Outcome:
    """Run or resume one member in this process through the engine; an exception that escapes the engine
    is recorded as the member's failure (:func:`record_failures`). A resume first drops the metric rows
    logged after the checkpoint it continues from (every member of its stack)."""
    engine = _engine()

    def body() -> list[Outcome]:
        if job.action == "resume":
            st = _status(store, job.run_id)
            if st in ("finished", "diverged", "failed", "pruned"):      # resumed already as part of its stack
                return [Outcome(job.run_id, st, {})]
            if job.until is not None and st == "interrupted" and last_checkpoint(store, job.run_id)[0] >= job.until:
                return [Outcome(job.run_id, st, {})]                     # paused there already with its stack
            # drops rows logged after its checkpoint; a member killed before its first checkpoint restarts
            res = engine.resume(job.run_id, store, until=job.until, allow_restart=True)
        else:
            cfg = engine.TrainConfig.from_dict(job.config)
            res = engine.train(cfg, store, name=job.name, sweep=sweep, run_id=job.run_id, until=job.until)
        return [_outcome(res, job.run_id)]

    return record_failures(store, [job], sweep, body)[0]


# ---------------------------------------------------------------------------------------- interface
class Executor:
    """Runs jobs of one sweep; ``on_done`` is called once per finished job (progress bars)."""

    name = "base"

    def run(self, jobs: Sequence[Job], store: Any, sweep: str | None, on_done: OnDone | None = None) -> list[Outcome]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def make_executor(name: str, **options: Any) -> Executor:
    """``batched`` | ``local`` | ``ray`` with their options (see each class)."""
    if name not in EXECUTORS:
        raise ExecutorError(f"executor: must be one of {EXECUTORS}, got {name!r}")
    cls = {"batched": BatchedExecutor, "local": LocalExecutor, "ray": RayExecutor}[name]
    try:
        return cls(**options)
    except TypeError as e:
        raise ExecutorError(f"executor {name!r}: bad option ({e})") from None


# ---------------------------------------------------------------------------------------- batched
def batch_key(cfg: dict[str, Any]) -> str:
    """Members with equal keys can share one batched model (they differ only in the engine's
    ``BATCHABLE_FIELDS``, declared once in :mod:`workbench.train.config`)."""
    from workbench.train.config import batch_key as key

    return key(cfg)


def _free_bytes(device: str) -> int:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def member_bytes(cfg: dict[str, Any]) -> int:
    """Rough memory of one member in a batched group (see the module docstring)."""
    import torch

    from workbench.models import build_model
    from workbench.tasks import make_task

    ds = make_task(cfg.get("task", "modular"), cfg.get("task_params"), seed=0)
    with torch.device("meta"):
        model = build_model(cfg.get("model", "auto"), cfg.get("model_params"), ds)
    n_params = sum(p.numel() for p in model.parameters())
    widest = max((max(p.shape) for p in model.parameters()), default=1)
    positions = ds.input_shape[0] if ds.kind == "lm" or ds.vocab_size is not None else 1
    batch = cfg.get("batch_size") or min(ds.n_train, 512)
    return int(16 * n_params + 64 * int(batch) * positions * widest)


def pack(jobs: Sequence[Job], max_group: int | None = None, memory_fraction: float = 0.5,
         device: str = "cpu") -> list[list[Job]]:
    """Group ``new`` jobs by :func:`batch_key` (and pause step ``until``), then split each group into
    chunks that fit in ``memory_fraction`` of the free memory (and at most ``max_group`` members)."""
    groups: dict[str, list[Job]] = {}
    for j in jobs:
        groups.setdefault(f"{batch_key(j.config)}|{j.until}", []).append(j)
    out = []
    free = _free_bytes(device) * memory_fraction
    for g in groups.values():
        try:
            per = member_bytes(g[0].config)
            cap = max(1, int(free // max(per, 1)))
        except WorkbenchError:  # an unknown model or task: let the engine decide, one chunk
            cap = len(g)
        if max_group is not None:
            cap = min(cap, max_group)
        out += [g[i:i + cap] for i in range(0, len(g), cap)]
    return out


class BatchedExecutor(Executor):
    """Members sharing a model shape train as one batched model (``train_batched``)."""

    name = "batched"

    def __init__(self, max_group: int | None = None, memory_fraction: float = 0.5, device: str | None = None) -> None:
        if max_group is not None and (not isinstance(max_group, int) or max_group < 1):
            raise ExecutorError(f"max_group: must be an integer >= 1, got {max_group!r}")
        if not 0 < memory_fraction <= 1:
            raise ExecutorError(f"memory_fraction: must be in (0, 1], got {memory_fraction!r}")
        self.max_group, self.memory_fraction, self.device = max_group, memory_fraction, device

    def run(self, jobs: Sequence[Job], store: Any, sweep: str | None, on_done: OnDone | None = None) -> list[Outcome]:
        engine = _engine()
        outs: list[Outcome] = []

        def done(o: Outcome) -> None:
            outs.append(o)
            if on_done:
                on_done(o)

        for j in [j for j in jobs if j.action == "resume"]:
            done(run_one(store, j, sweep))
        new = [j for j in jobs if j.action == "new"]
        device = self.device or str(new[0].config.get("device", "cpu")) if new else "cpu"
        if device == "auto":
            from workbench.device import pick_device
            device = str(pick_device("auto"))
        for group in pack(new, self.max_group, self.memory_fraction, device):
            if len(group) == 1:
                done(run_one(store, group[0], sweep))
                continue
            for o in _run_group(engine, store, sweep, group):
                done(o)
        return outs


def _run_group(engine: Any, store: Any, sweep: str | None, group: list[Job]) -> list[Outcome]:
    """One group as one stack (``train_batched`` with the members' run ids). Only a group the engine refuses
    (``BatchedUnsupportedError`` / ``ConfigError``: before any step) runs one member at a time; any other
    error fails every member of the group, recorded with its traceback (:func:`record_failures`), and the
    sweep goes on."""

    def stack() -> list[Outcome] | None:
        try:
            cfgs = [engine.TrainConfig.from_dict(j.config) for j in group]
            results = engine.train_batched(cfgs, store, sweep=sweep, run_ids=[j.run_id for j in group],
                                           names=[j.name for j in group], until=group[0].until, progress=False)
        except (engine.BatchedUnsupportedError, engine.ConfigError):
            for j in group:
                if _status(store, j.run_id) is not None:        # registered before the engine refused
                    store.delete_run(j.run_id)
            return None
        return [_outcome(r, r.run_id or j.run_id) for j, r in zip(group, results)]

    out = record_failures(store, group, sweep, stack)
    return [run_one(store, j, sweep) for j in group] if out is None else out


# ---------------------------------------------------------------------------------------- local pool
def die_with_parent(parent_pid: int, poll: float = 0.5) -> None:
    """Make this (worker) process exit when ``parent_pid`` dies, even by SIGKILL, so no orphan goes on
    training and a ``sweep resume`` right after finds the members interrupted, not running. On Linux
    the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)`` through ctypes); on
    every platform a daemon thread also checks ``os.getppid()`` every ``poll`` seconds (and covers a
    parent that died before the prctl call)."""
    import signal
    import threading

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)   # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl: the watchdog alone
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="workbench-parent-watchdog", daemon=True).start()


def _worker_init(threads: int, parent_pid: int | None = None) -> None:
    import torch

    if parent_pid is not None:
        die_with_parent(parent_pid)
    torch.set_num_threads(max(1, threads))


def _local_task(store_path: str, job: Job, sweep: str | None, device: str | None) -> Outcome:
    from workbench.store import RunStore

    if device is not None and job.action == "new":
        job.config = {**job.config, "device": device}
    with RunStore(store_path, mark_interrupted=False) as store:
        return run_one(store, job, sweep)


class LocalExecutor(Executor):
    """A pool of worker processes on this machine (``spawn`` start method, so CUDA works in them)."""

    name = "local"

    def __init__(self, workers: int | None = None, threads_per_worker: int = 1) -> None:
        n = workers if workers is not None else max(1, (os.cpu_count() or 1))
        if not isinstance(n, int) or n < 1:
            raise ExecutorError(f"workers: must be an integer >= 1, got {workers!r}")
        self.workers, self.threads = n, threads_per_worker

    def run(self, jobs: Sequence[Job], store: Any, sweep: str | None, on_done: OnDone | None = None) -> list[Outcome]:
        import multiprocessing as mp

        import torch

        if str(store.path) == ":memory:":
            raise ExecutorError("store: the local executor needs a store file that worker processes can open, "
                                "not ':memory:'")
        n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
        outs: list[Outcome] = []
        with ProcessPoolExecutor(max_workers=min(self.workers, max(1, len(jobs))), mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init, initargs=(self.threads, os.getpid())) as pool:
            futs = {}
            for i, j in enumerate(jobs):
                dev = f"cuda:{i % n_gpu}" if n_gpu > 1 and str(j.config.get("device", "auto")) in ("auto", "cuda") else None
                futs[pool.submit(_local_task, str(store.path), j, sweep, dev)] = j
            pending = set(futs)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    o = record_failures(store, [futs[f]], sweep, lambda f=f: [f.result()])[0]  # a worker died
                    outs.append(o)
                    if on_done:
                        on_done(o)
        return outs


# ---------------------------------------------------------------------------------------- ray
def _ray_task(store_path: str | None, job: Job, sweep: str | None, threads: int) -> tuple[Outcome, bytes | None]:
    import torch

    from workbench.store import RunStore

    torch.set_num_threads(max(1, threads))
    if store_path is not None:   # direct: write to the shared store
        with RunStore(store_path, mark_interrupted=False) as store:
            return run_one(store, job, sweep), None
    with tempfile.TemporaryDirectory() as d:   # ship: a private store, exported back as Parquet
        with RunStore(Path(d) / "trial.db", mark_interrupted=False) as store:
            out = run_one(store, job, sweep)
            path = store.export(Path(d) / "trial.parquet", [out.run_id])
            return out, path.read_bytes()


def ray_init(address: str | None = None, **kw: Any) -> Any:
    """Connect to a Ray cluster (``address``: ``auto``, ``ray://host:port``, ``host:port``) or, with
    ``None``, start a small local one on loopback (2 CPUs, a 200 MB object store, no dashboard).
    Returns the ``ray`` module."""
    import ray

    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        opts = {"num_cpus": os.cpu_count() or 2, "object_store_memory": 200_000_000, "include_dashboard": False,
                "_node_ip_address": "127.0.0.1"}
        opts.update(kw)
        ray.init(address="local", **opts, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False, **kw)
    return ray


class RayExecutor(Executor):
    """Ray tasks on a cluster; fractional ``gpus_per_trial`` lets many small trials share a GPU."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 store_mode: str = "ship", init_kwargs: dict | None = None) -> None:
        if store_mode not in ("ship", "direct"):
            raise ExecutorError(f"store_mode: must be 'ship' or 'direct', got {store_mode!r}")
        if not cpus_per_trial > 0:
            raise ExecutorError(f"cpus_per_trial: must be > 0, got {cpus_per_trial!r}")
        if gpus_per_trial < 0:
            raise ExecutorError(f"gpus_per_trial: must be >= 0, got {gpus_per_trial!r}")
        self.address, self.cpus, self.gpus = address, cpus_per_trial, gpus_per_trial
        self.store_mode, self.init_kwargs = store_mode, dict(init_kwargs or {})

    def run(self, jobs: Sequence[Job], store: Any, sweep: str | None, on_done: OnDone | None = None) -> list[Outcome]:
        ray = ray_init(self.address, **self.init_kwargs)
        task = ray.remote(_ray_task).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)
        direct = self.store_mode == "direct"
        if direct and str(store.path) == ":memory:":
            raise ExecutorError("store_mode: 'direct' needs a store file the Ray workers can open")
        threads = max(1, int(self.cpus))
        refs = {}
        for j in jobs:
            if not direct and j.action == "resume":
                # a shipped trial's checkpoints lived on a worker: start the member again from scratch
                store.delete_run(j.run_id)
                j = Job(j.run_id, j.config, j.name, "new", j.index, until=j.until)
            if not direct and j.action == "new" and str(j.config.get("device", "auto")) == "auto" and self.gpus == 0:
                j = Job(j.run_id, {**j.config, "device": "cpu"}, j.name, j.action, j.index, until=j.until)
            refs[task.remote(str(store.path) if direct else None, j, sweep, threads)] = j
        outs: list[Outcome] = []
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ref = ready[0]
            j = refs[ref]

            def collect(ref: Any = ref) -> list[Outcome]:  # a task that died (node lost, OOM) raises here
                o, blob = ray.get(ref)
                if blob is not None:
                    with tempfile.TemporaryDirectory() as d:
                        p = Path(d) / "trial.parquet"
                        p.write_bytes(blob)
                        store.import_file(p, on_conflict="replace")
                return [o]

            o = record_failures(store, [j], sweep, collect)[0]
            outs.append(o)
            if on_done:
                on_done(o)
        return outs
