"""Run, resume and inspect sweeps; all state lives in the run store.

* :func:`run_sweep` registers the sweep (``store.create_sweep``, the spec as plain data), records its
  members in the store's ``sweep_members`` table (index, trial, axis values, seed, config and the run id
  ``<sweep>-m<index>``, assigned here once, whichever executor trains it) and runs them with an executor.
* :func:`resume_sweep` continues after any crash or ``kill -9``: opening the store marks the dead
  process's runs ``interrupted``; members already ``finished`` / ``diverged`` / ``failed`` are
  skipped, ``interrupted`` ones resume from their checkpoints (``workbench.train.resume``), and
  members never started run from scratch. Each member has a fixed run id (``<sweep>-m<index>``), so
  a member can never be run twice.
* :func:`sweep_status` counts members by status (``pruned`` members count as done).

The Bayesian strategy uses Optuna's TPE sampler (``optuna.samplers.TPESampler``, seeded with
``sampler_seed``) through its ask / tell interface: each round asks ``budget.parallel`` trials
(default: as many as fit one batched group), runs every trial with every seed, and tells Optuna the
median (over seeds) of the objective's last value. On resume, completed trials are replayed into a
fresh study with ``study.add_trial``. The driver (:func:`_drive_bayes`) loops over four phases, re-reading
the store each round, so a resumed sweep continues in whichever phase it stopped: *propose* (TPE asks for
the next trials), *pause* (train undecided trials to their pruning step), *decide* (forecast, store the
decision, mark pruned members) and *finish* (run the kept members to their end).

Pruning (``pruning:`` in the spec; Domhan et al. 2015, Sec. 3.3). Each round, once at least one trial
has completed, every member of the round's trials is trained to ``at_fraction`` of its steps and paused
there (the engine's ``until``: a checkpoint, status ``interrupted``; the run keeps its full ``steps``, so
its schedule is unchanged). For each trial the per-step median over its seeds of the objective's curve
is reported to a RUNNING Optuna trial and :class:`workbench.sweeps.pruning.ExtrapolationPruner` decides:
prune when the forecast gives P(final median better than the best completed trial's) < ``threshold`` —
the median over seeds because that is the value the trial would be told (one fit per trial, and less
noise than any single seed). The decision is stored first (a row of the store's ``sweep_decisions``
table, with the probability), then the pruned trial's members are marked ``pruned`` (never resumed; a batched stack
continues without them) and the survivors resume from their checkpoints to the end. Pruned trials are
told to Optuna as ``TrialState.PRUNED`` with their last median value as intermediate value. A round
started before any trial completed runs to the end without pausing. :func:`resume_sweep` replays the
stored decisions, finishes paused or interrupted survivors and decides trials paused but not yet decided.
Executors: ``batched`` and ``local``; ``ray`` only with ``store_mode='direct'`` (a shipped trial's
checkpoints stay on its worker, so it cannot be paused and resumed).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.store import DONE_STATUSES, RunStatus, RunStore
from workbench.sweeps.executors import EXECUTORS, Executor, ExecutorError, Job, Outcome, make_executor
from workbench.sweeps.results import results_table
from workbench.sweeps.spec import Member, SweepSpec, SweepSpecError

DONE = DONE_STATUSES


class SweepBusyError(WorkbenchError):
    """The sweep is being run by a live process right now."""


def _as_store(store: RunStore | str | os.PathLike | None) -> RunStore:
    if isinstance(store, RunStore):
        return store
    return RunStore(store)


@dataclass
class SweepRecord:
    """A registered sweep as ``run_sweep`` stored it: its spec, executor and options, status and name."""

    id: str
    name: str
    status: str
    spec: SweepSpec
    executor: str
    executor_options: dict[str, Any]


def sweep_record(store: RunStore, sweep_id: str) -> SweepRecord:
    rec = store.get_sweep(sweep_id)
    payload = rec["spec"] or {}
    return SweepRecord(sweep_id, rec["name"], rec["status"], SweepSpec.from_dict(payload.get("spec", payload)),
                       payload.get("executor", "batched"), dict(payload.get("executor_options", {})))


def _as_spec(spec: SweepSpec | Mapping | str | os.PathLike) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, Mapping):
        return SweepSpec.from_dict(spec)
    return SweepSpec.from_yaml(Path(spec))


def member_run_id(sweep_id: str, index: int) -> str:
    return f"{sweep_id}-m{index:04d}"


def _executor_options(spec: SweepSpec, executor: str, options: Mapping[str, Any]) -> dict[str, Any]:
    r = spec.resources
    opts: dict[str, Any] = {}
    if executor == "batched":
        if "max_group" in r:
            opts["max_group"] = r["max_group"]
        if "memory_fraction" in r:
            opts["memory_fraction"] = r["memory_fraction"]
    elif executor == "local":
        if "workers" in r:
            opts["workers"] = r["workers"]
    elif executor == "ray":
        if "cpus_per_trial" in r:
            opts["cpus_per_trial"] = r["cpus_per_trial"]
        if "gpus_per_trial" in r:
            opts["gpus_per_trial"] = r["gpus_per_trial"]
    opts.update(options)
    return opts


# ---------------------------------------------------------------------------------------- members table
def _write_members(store: RunStore, sweep_id: str, members: list[Member]) -> None:
    """Record members with their run ids, assigned here once for every executor (``<sweep>-m<index>``)."""
    store.add_sweep_members(sweep_id, [{**m.to_dict(), "run_id": member_run_id(sweep_id, m.index)} for m in members])


def sweep_members(sweep_id: str, store: RunStore | str | None = None) -> pd.DataFrame:
    """The sweep's members: index, run id, seed, trial, axis values, config, the run's name and status
    (``pending`` when not started)."""
    store = _as_store(store)
    spec = sweep_record(store, sweep_id).spec
    df = store.sweep_member_table(sweep_id)
    runs = store.runs(sweep=sweep_id)
    status = dict(zip(runs["id"], runs["status"]))
    df["status"] = [status.get(r, "pending") for r in df["run_id"]]
    df["name"] = [member_name(spec, int(i)) for i in df["index"]]
    return df


# ---------------------------------------------------------------------------------------- plan + drive
def member_name(spec: SweepSpec, index: int) -> str:
    """The run name of a member (for people; the sweep knows its members by run id)."""
    return f"{spec.name}/m{index:04d}"


def _member_steps(cfg: Mapping[str, Any]) -> int:
    from workbench.train import TrainConfig

    return int(cfg.get("steps", TrainConfig.steps))


def _jobs(store: RunStore, sweep_id: str, spec: SweepSpec, members: list[Member],
          pause: bool = False) -> tuple[list[Job], int]:
    """Jobs that take ``members`` to their end, or with ``pause`` to their pruning step (members paused
    there already are left alone). Returns the jobs and the number of members already done."""
    from workbench.sweeps.executors import last_checkpoint

    runs = store.runs(sweep=sweep_id)
    live = runs[runs["status"] == "running"]
    if len(live):
        raise SweepBusyError(f"sweep {sweep_id}: {len(live)} member(s) are being run by a live process "
                             f"(e.g. run {live['id'].iloc[0]}); stop it before resuming")
    status = dict(zip(runs["id"], runs["status"]))
    table = store.sweep_member_table(sweep_id)
    ids = dict(zip(table["index"], table["run_id"]))
    jobs, done, covered = [], 0, set()
    for m in members:
        name = member_name(spec, m.index)
        rid = ids.get(m.index, member_run_id(sweep_id, m.index))
        st = status.get(rid)
        until = spec.pruning_step(_member_steps(m.config)) if pause else None
        if st in DONE:
            done += 1
        elif st == RunStatus.INTERRUPTED:
            if rid in covered:
                continue
            at, stack = last_checkpoint(store, rid)
            if until is not None and at >= until:     # paused at its pruning step: waits for the decision
                continue
            covered.update(stack)
            jobs.append(Job(rid, m.config, name, "resume", m.index, covers=stack, until=until))
        else:
            jobs.append(Job(rid, m.config, name, "new", m.index, until=until))
    return jobs, done


def _progress_step(o: Outcome, bar: Any, jobs: list[Job]) -> None:
    j = next((j for j in jobs if j.run_id == o.run_id), None)
    bar.update(max(1, len(j.covers)) if j is not None else 1)


def _bar(spec: SweepSpec, total: int, initial: int, progress: bool | None) -> Any:
    """The sweep's progress bar (``progress=None``: on in a terminal, off under CI, as for a run)."""
    from tqdm.auto import tqdm

    from workbench.train.sink import default_progress

    progress = default_progress() if progress is None else progress

    return tqdm(total=total, initial=initial, desc=f"sweep {spec.name}", unit="member", disable=not progress,
                dynamic_ncols=True)


def _drive(store: RunStore, sweep_id: str, spec: SweepSpec, ex: Executor, progress: bool | None) -> None:
    if spec.strategy == "bayes":
        _drive_bayes(store, sweep_id, spec, ex, progress)
        return
    members = spec.members()
    _write_members(store, sweep_id, members)
    jobs, done = _jobs(store, sweep_id, spec, members)
    bar = _bar(spec, len(members), done, progress)
    try:
        ex.run(jobs, store, sweep_id, on_done=lambda o: _progress_step(o, bar, jobs))
    finally:
        bar.close()


def _final_objective(store: RunStore, run_id: str, spec: SweepSpec) -> float | None:
    m = store.metrics(run_id, spec.objective["metric"])
    if m.empty:
        return None
    v = float(m.sort_values("step")["value"].iloc[-1])
    return v if v == v else None


def _decisions(store: RunStore, sweep_id: str) -> dict[int, dict[str, Any]]:
    """trial -> its stored pruning decision ``{trial, pruned, prob, best, step, value, reason}``."""
    df = store.sweep_decisions(sweep_id)
    out = {}
    for r in df.to_dict("records"):
        out[int(r["trial"])] = {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
    return out


def _median_curve(store: RunStore, run_ids: list[str], metric: str, until: int) -> dict[int, float]:
    """step -> median over ``run_ids`` of ``metric`` at that step, for 0 < step <= until."""
    m = store.metrics(run_ids, metric)
    if m.empty:
        return {}
    m = m[(m["step"] > 0) & (m["step"] <= until)]
    return {int(k): float(v) for k, v in m.groupby("step")["value"].median().items()}


def _dists(spec: SweepSpec) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from workbench.sweeps.spec import _key

    dists: dict[str, Any] = {}
    for a in spec.axes:
        if a.kind == "list":
            dists[a.name] = CategoricalDistribution([_key(v) for v in a.values])
        elif a.kind == "int_uniform":
            dists[a.name] = IntDistribution(int(a.low), int(a.high))
        else:
            dists[a.name] = FloatDistribution(a.low, a.high, log=a.kind == "log_uniform")
    return dists


def _trial_params(spec: SweepSpec, g: pd.DataFrame) -> dict[str, Any]:
    from workbench.sweeps.spec import _key

    p0 = g["params"].iloc[0]
    return {a.name: (_key(p0[a.name]) if a.kind == "list" else p0[a.name]) for a in spec.axes}


def _study(store: RunStore, spec: SweepSpec, known: dict[int, pd.DataFrame], dec: dict[int, dict[str, Any]],
           seed: int, skip: Collection[int] = ()) -> Any:
    """A fresh TPE study with every trial of ``known`` but ``skip`` replayed: pruned trials as PRUNED,
    trials with a finished member as COMPLETE (median over seeds of the final objective), others FAIL."""
    import optuna
    from optuna.trial import TrialState, create_trial

    direction = "minimize" if spec.objective["mode"] == "min" else "maximize"
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed))
    dists = _dists(spec)
    for t, g in sorted(known.items()):
        if t in skip:
            continue
        params = _trial_params(spec, g)
        d = dec.get(t, {})
        if d.get("pruned"):
            iv = {int(d["step"]): float(d["value"])} if d.get("value") is not None else None
            study.add_trial(create_trial(params=params, distributions=dists, state=TrialState.PRUNED,
                                         intermediate_values=iv))
            continue
        vals = [_final_objective(store, r, spec) for r, st in zip(g["run_id"], g["status"]) if st == "finished"]
        vals = [v for v in vals if v is not None]
        state = TrialState.COMPLETE if vals else TrialState.FAIL
        study.add_trial(create_trial(params=params, distributions=dists, state=state,
                                     value=statistics.median(vals) if vals else None))
    return study


def _kept(trial: int, reason: str) -> dict[str, Any]:
    """A decision that keeps trial ``trial`` (no forecast behind it, or before its fields are filled in)."""
    return {"trial": trial, "pruned": False, "prob": None, "step": None, "value": None, "reason": reason}


def _decide(store: RunStore, sweep_id: str, spec: SweepSpec, study: Any, t: int, g: pd.DataFrame) -> dict[str, Any]:
    """The pruning decision of trial ``t`` (all its members paused or done), stored before it is applied."""
    from optuna.trial import TrialState, create_trial

    from workbench.sweeps.pruning import ExtrapolationPruner

    pr = spec.pruning
    paused = [r for r, st in zip(g["run_id"], g["status"]) if st == "interrupted"]
    steps = _member_steps(g["config"].iloc[0])
    at = spec.pruning_step(steps)
    if not paused:
        d = _kept(t, "no member left to finish")
    elif not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        d = _kept(t, "no completed trial yet")
    else:
        d = _kept(t, "")
        curve = _median_curve(store, paused, spec.objective["metric"], at)
        pruner = ExtrapolationPruner(pr["threshold"], final_step=steps, min_points=pr["min_points"],
                                     families=pr["families"], seed=spec.sampler_seed)
        frozen = create_trial(state=TrialState.RUNNING, params=_trial_params(spec, g), distributions=_dists(spec),
                              intermediate_values=curve)
        d["pruned"] = bool(pruner.prune(study, frozen))
        d["prob"] = pruner.last_probability
        d["best"] = float(study.best_value)
        if curve:
            d["step"], d["value"] = max(curve), curve[max(curve)]
        prob = "n/a" if d["prob"] is None else f"{d['prob']:.3g}"
        d["reason"] = (f"P(better than {study.best_value:.4g} at step {steps}) = {prob} "
                       f"{'<' if d['pruned'] else '>='} {pr['threshold']:g}")
    store.add_sweep_decision(sweep_id, d)
    return d


def _apply_decisions(store: RunStore, members_df: pd.DataFrame, dec: dict[int, dict[str, Any]]) -> None:
    """Mark the members of pruned trials ``pruned`` (also after a crash between decision and marking)."""
    for t, rid, st in zip(members_df["trial"], members_df["run_id"], members_df["status"]):
        if dec.get(int(t), {}).get("pruned") and st == "interrupted":
            store.set_status(rid, "pruned")


@dataclass
class _Bayes:
    """What the Bayesian driver knows at the top of a round, read from the store."""

    members_df: pd.DataFrame
    known: dict[int, pd.DataFrame]          # trial -> its members
    members: list[Member]
    dec: dict[int, dict[str, Any]]          # trial -> pruning decision

    @classmethod
    def read(cls, store: RunStore, sweep_id: str, spec: SweepSpec) -> _Bayes:
        df = sweep_members(sweep_id, store)
        known = {} if df.empty else {int(t): g for t, g in df.groupby("trial")}
        members = [Member(int(r["index"]), r["params"], int(r["seed"]), r["config"], int(r["trial"]))
                   for _, r in df.iterrows()]
        dec = _decisions(store, sweep_id) if spec.pruning is not None else {}
        return cls(df, known, members, dec)


def _pause(store: RunStore, sweep_id: str, spec: SweepSpec, ex: Executor, b: _Bayes) -> bool:
    """Phase 2: train every member of the undecided trials to its pruning step. True if it ran any."""
    undecided = [m for m in b.members if m.trial not in b.dec]
    jobs, _ = _jobs(store, sweep_id, spec, undecided, pause=True) if undecided else ([], 0)
    if jobs:
        ex.run(jobs, store, sweep_id)
    return bool(jobs)


def _decide_paused(store: RunStore, sweep_id: str, spec: SweepSpec, b: _Bayes) -> bool:
    """Phase 3: decide each trial paused at its pruning step from its forecast, store the decision, then
    mark the members of pruned trials ``pruned`` (also after a crash between the two). True if it decided any."""
    _apply_decisions(store, b.members_df, b.dec)
    ts = sorted({m.trial for m in b.members if m.trial not in b.dec})
    if ts:
        study = _study(store, spec, b.known, b.dec, spec.sampler_seed, skip=set(ts))
        for t in ts:
            _decide(store, sweep_id, spec, study, t, b.known[t])
    return bool(ts)


def _finish_kept(store: RunStore, sweep_id: str, spec: SweepSpec, ex: Executor, b: _Bayes, bar: Any) -> bool:
    """Phase 4: run every started, kept member to its end (resuming paused ones). True if it ran any."""
    jobs, done = _jobs(store, sweep_id, spec, b.members)
    bar.n = done
    bar.refresh()
    if jobs:
        ex.run(jobs, store, sweep_id, on_done=lambda o: _progress_step(o, bar, jobs))
    return bool(jobs)


def _propose(store: RunStore, sweep_id: str, spec: SweepSpec, b: _Bayes, parallel: int) -> bool:
    """Phase 1: ask TPE (every finished trial replayed) for the next ``parallel`` trials and record their
    members. False when the budget is spent."""
    import optuna

    trials, seeds = int(spec.budget["trials"]), spec.seeds
    if len(b.known) >= trials:
        return False
    study = _study(store, spec, b.known, b.dec, spec.sampler_seed + len(b.known))
    new = []
    for k in range(len(b.known), min(trials, len(b.known) + max(1, parallel))):
        tr = study.ask()
        params = {a.name: a.suggest(tr) for a in spec.axes}
        new += [Member(k * len(seeds) + j, params, s, spec.config_for(params, s), trial=k) for j, s in enumerate(seeds)]
    if spec.pruning is not None and not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        for k in sorted({m.trial for m in new}):       # nothing to compare with yet: run them to the end
            store.add_sweep_decision(sweep_id, _kept(k, "no completed trial yet"))
    _write_members(store, sweep_id, new)
    return True


def _drive_bayes(store: RunStore, sweep_id: str, spec: SweepSpec, ex: Executor, progress: bool | None) -> None:
    """Rounds of propose -> pause -> decide -> finish until the budget is spent. Each round re-reads the
    store, so a resumed sweep picks up in whichever phase it was killed."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parallel = int(spec.budget.get("parallel", max(1, int(spec.resources.get("max_group", 8)) // len(spec.seeds))))
    bar = _bar(spec, int(spec.budget["trials"]) * len(spec.seeds), 0, progress)
    try:
        while True:
            b = _Bayes.read(store, sweep_id, spec)
            if spec.pruning is not None and (_pause(store, sweep_id, spec, ex, b)
                                             or _decide_paused(store, sweep_id, spec, b)):
                continue
            if _finish_kept(store, sweep_id, spec, ex, b, bar):
                continue
            if not _propose(store, sweep_id, spec, b, parallel):
                break
    finally:
        bar.close()


def _close(store: RunStore, sweep_id: str) -> None:
    """Record the sweep's status: finished when every member is done, else interrupted."""
    members = sweep_members(sweep_id, store)
    left = [s for s in members["status"] if s not in DONE]
    store.set_sweep_status(sweep_id, "finished" if not left else "interrupted")


# ---------------------------------------------------------------------------------------- public API
def run_sweep(spec: SweepSpec | Mapping | str | os.PathLike, executor: str = "batched",
              store: RunStore | str | os.PathLike | None = None, *, progress: bool | None = None,
              sweep_id: str | None = None, **executor_options: Any) -> str:
    """Validate ``spec``, register it in ``store`` and run all its members with ``executor``
    (``batched`` | ``local`` | ``ray``; options such as ``workers=``, ``max_group=``, ``address=``,
    ``gpus_per_trial=`` go to the executor). Returns the sweep id."""
    if executor not in EXECUTORS:
        raise ExecutorError(f"executor: must be one of {EXECUTORS}, got {executor!r}")
    spec = _as_spec(spec).validate()
    store = _as_store(store)
    opts = _executor_options(spec, executor, executor_options)
    ex = make_executor(executor, **opts)
    _check_pausable(spec, ex)
    sid = store.create_sweep(spec.name, {"spec": spec.to_dict(), "executor": executor,
                                         "executor_options": _plain_opts(opts)}, sweep_id=sweep_id)
    return _run(store, sid, spec, ex, progress)


def _run(store: RunStore, sweep_id: str, spec: SweepSpec, ex: Executor, progress: bool | None) -> str:
    """Drive a registered sweep to its end with executor ``ex`` (closed afterwards), then record its status."""
    try:
        _drive(store, sweep_id, spec, ex, progress)
    finally:
        ex.close()
    _close(store, sweep_id)
    return sweep_id


def _check_pausable(spec: SweepSpec, ex: Executor) -> None:
    if spec.pruning is not None and getattr(ex, "store_mode", "direct") != "direct":
        ex.close()
        raise ExecutorError("executor: ray with store_mode 'ship' cannot pause and resume trials, which pruning "
                            "needs (a shipped trial's checkpoints stay on its worker); use store_mode='direct' "
                            "on a shared file system, the batched or local executor, or pruning: false")


def _plain_opts(opts: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in opts.items() if isinstance(v, (int, float, str, bool, type(None)))}


def resume_sweep(sweep_id: str, store: RunStore | str | os.PathLike | None = None, *, executor: str | None = None,
                 progress: bool | None = None, **executor_options: Any) -> str:
    """Continue a sweep after a crash or kill: skip finished members, resume interrupted ones from
    their checkpoints, start the rest (with the sweep's executor unless ``executor`` is given)."""
    store = _as_store(store)
    rec = sweep_record(store, sweep_id)
    spec = rec.spec
    ex_name = executor or rec.executor
    opts = {**rec.executor_options, **executor_options} if executor in (None, ex_name) else dict(executor_options)
    ex = make_executor(ex_name, **opts)
    _check_pausable(spec, ex)
    store.set_sweep_status(sweep_id, "running")
    return _run(store, sweep_id, spec, ex, progress)


def sweep_status(sweep_id: str, store: RunStore | str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"id", "name", "status", "strategy", "members", "counts": {status: n}, "done", "pending"}``."""
    store = _as_store(store)
    rec = sweep_record(store, sweep_id)
    spec = rec.spec
    members = sweep_members(sweep_id, store)
    total = spec.n_members() if spec.strategy != "bayes" else max(spec.n_members(), len(members))
    counts = members["status"].value_counts().to_dict() if len(members) else {}
    counts["pending"] = counts.get("pending", 0) + total - len(members)
    done = sum(counts.get(s, 0) for s in DONE)
    return {"id": sweep_id, "name": rec.name, "status": rec.status, "strategy": spec.strategy,
            "executor": rec.executor, "members": total,
            "counts": {k: int(v) for k, v in counts.items() if v}, "done": done, "pending": total - done}


def sweep_results(sweep_id: str, store: RunStore | str | os.PathLike | None = None,
                  metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per member: index, seed, status, the axis values (one column each) and the last value
    of each metric (default: the objective and target metrics)."""
    store = _as_store(store)
    spec = sweep_record(store, sweep_id).spec
    df = sweep_members(sweep_id, store)
    names = metrics or sorted({spec.objective["metric"], *([spec.target["metric"]] if spec.target else [])})
    from workbench.sweeps.spec import _key

    for a in spec.axes:
        df[a.name] = [_key(p.get(a.name)) for p in df["params"]]
    table = results_table(store, sweep_id, names).set_index("id")
    for n in names:
        col = table[f"final.{n}"] if f"final.{n}" in table.columns else pd.Series(dtype=float)
        df[n] = [float(col.get(r, float("nan"))) for r in df["run_id"]]
    return df.drop(columns=["params", "config"])


PRUNING_COLUMNS = ["trial", "pruned", "prob", "best", "step", "value", "reason"]


def sweep_pruning(sweep_id: str, store: RunStore | str | os.PathLike | None = None) -> pd.DataFrame:
    """The pruning decisions of a Bayesian sweep, one row per decided trial: ``trial``, ``pruned``,
    ``prob`` (forecast P(better than the best completed trial), NaN when no forecast was made), ``best``
    (that best value), ``step`` / ``value`` (the last point of the median curve the forecast saw) and
    ``reason``. Empty for a sweep without pruning or before its first decision."""
    store = _as_store(store)
    store.get_sweep(sweep_id)                       # unknown id -> UnknownRunError
    return store.sweep_decisions(sweep_id)[PRUNING_COLUMNS].astype({"trial": int, "pruned": bool})


__all__ = ["run_sweep", "resume_sweep", "sweep_status", "sweep_members", "sweep_results", "sweep_pruning", "sweep_record",
           "SweepRecord",
           "member_run_id", "SweepBusyError", "SweepSpecError", "ExecutorError", "Outcome"]
