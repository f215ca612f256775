"""Time-to-result comparison of training algorithms, as in AlgoPerf.

Dahl et al. 2023, "Benchmarking neural network training algorithms" (Sec. 4.5):

* each submission *s* (here: a schedule or optimizer) on each workload *w* gets a time to reach
  the workload's validation target, ``t_{s,w}`` — the median over seeds (studies); a run that never
  reaches the target counts as ``inf``;
* the performance ratio ``r_{s,w} = t_{s,w} / min_s t_{s,w}``;
* the performance profile ``ρ_s(τ) = |{w : r_{s,w} ≤ τ}| / |W|``;
* the benchmark score is the normalised area under the profile for ``τ ∈ [1, r_max]``, ``r_max = 4``:
  ``B_s = 1 / (r_max − 1) ∫_1^{r_max} ρ_s(τ) dτ``.

ρ_s is a step function, so the area is computed exactly: a workload with ratio r ≤ r_max adds
``(r_max − max(r, 1)) / (r_max − 1)`` to the mean, a miss (or r > r_max) adds 0. Written here
rather than taken from the AlgoPerf repository because that code is tied to its own log format and
workload registry; these are a few lines of numpy / pandas on the run store's tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError

TAU_MAX = 4.0


class AlgoPerfError(WorkbenchError):
    """Bad input to the AlgoPerf functions: names the argument and what is allowed."""


def time_to_target(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, target: float,
                   mode: str = "max", times: Sequence[float] | np.ndarray | None = None) -> float:
    """The first ``steps`` (or ``times``, e.g. wall seconds, at the same rows) at which ``values``
    reaches ``target`` (``>=`` for ``mode='max'``, ``<=`` for ``'min'``); ``inf`` if never.
    NaN values never count as reaching the target."""
    if mode not in ("min", "max"):
        raise AlgoPerfError(f"mode: must be 'min' or 'max', got {mode!r}")
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    if s.shape != v.shape or s.ndim != 1:
        raise AlgoPerfError(f"steps, values: must be 1-D of equal length, got shapes {s.shape} and {v.shape}")
    t = s if times is None else np.asarray(times, dtype=float)
    if t.shape != s.shape:
        raise AlgoPerfError(f"times: must have the length of steps ({s.size}), got {t.shape}")
    order = np.argsort(s, kind="stable")
    v, t = v[order], t[order]
    with np.errstate(invalid="ignore"):
        hit = v >= target if mode == "max" else v <= target
    hit &= ~np.isnan(v)
    idx = np.flatnonzero(hit)
    return float(t[idx[0]]) if idx.size else float("inf")


def median_time(times: Sequence[float]) -> float:
    """Median over seeds with misses as ``inf`` (so a submission that misses on most seeds misses)."""
    a = np.asarray(list(times), dtype=float)
    if a.size == 0:
        return float("inf")
    return float(np.median(a))


def performance_ratios(times: pd.DataFrame) -> pd.DataFrame:
    """``r[s, w] = t[s, w] / min_s t[s, w]`` for a table of times, submissions x workloads. A workload
    that no submission solves gives ``inf`` for all."""
    _check_times(times)
    t = times.astype(float)
    best = t.min(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = t / best
    r = r.where(np.isfinite(best.values)[None, :].repeat(len(t), 0), np.inf)
    r = r.where(np.isfinite(t), np.inf)
    return r


def performance_profile(times: pd.DataFrame, taus: Sequence[float] | np.ndarray | None = None,
                        tau_max: float = TAU_MAX) -> pd.DataFrame:
    """ρ_s(τ) for each submission (rows of ``times``) at each τ (columns); ``taus`` defaults to
    401 points in ``[1, tau_max]``."""
    r = performance_ratios(times)
    taus = np.linspace(1.0, tau_max, 401) if taus is None else np.asarray(taus, dtype=float)
    rho = (r.values[:, :, None] <= taus[None, None, :]).mean(axis=1)
    return pd.DataFrame(rho, index=times.index, columns=pd.Index(taus, name="tau"))


def score(times: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.Series:
    """The AlgoPerf benchmark score of each submission: the exact normalised area under ρ_s on
    ``[1, tau_max]`` (1 = fastest on every workload, 0 = never within ``tau_max`` of the best)."""
    if not tau_max > 1:
        raise AlgoPerfError(f"tau_max: must be > 1, got {tau_max!r}")
    r = performance_ratios(times).values
    contrib = np.where(r <= tau_max, (tau_max - np.maximum(r, 1.0)) / (tau_max - 1.0), 0.0)
    return pd.Series(contrib.mean(axis=1), index=times.index, name="score")


def _check_times(times: Any) -> None:
    if not isinstance(times, pd.DataFrame) or times.empty:
        raise AlgoPerfError("times: must be a non-empty DataFrame, submissions (rows) x workloads (columns)")
    a = times.to_numpy(dtype=float)
    if np.isnan(a).any():
        raise AlgoPerfError("times: NaN entries; a miss must be inf, not NaN")
    if (a <= 0).any():
        raise AlgoPerfError("times: must be > 0 (time or steps to target; a miss is inf)")


# ---------------------------------------------------------------------------------------- from runs
def label(v: Any) -> str:
    """A readable label of a config value: a schedule dict by its name (+ the other params)."""
    if isinstance(v, Mapping):
        name = v.get("name", "")
        rest = ",".join(f"{k}={v[k]}" for k in sorted(v) if k not in ("name", "total_steps"))
        return f"{name}({rest})" if rest else str(name)
    return str(v)


def _field(cfg: Mapping, path: str) -> Any:
    cur: Any = cfg
    for p in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def run_times(store: Any, *, sweeps: str | Sequence[str] | None = None, runs: Sequence[str] | None = None,
              metric: str = "test_acc", target: float = 0.99, mode: str = "max",
              targets: Mapping[str, Mapping[str, Any]] | None = None,
              workload: str = "task", submission: str = "schedule.name") -> pd.DataFrame:
    """Time to target of every run: one row per run with ``workload``, ``submission``, ``seed``,
    ``steps`` (first logged step at target), ``wall`` (seconds from the run's first metric row),
    ``reached``. ``workload`` / ``submission`` are dotted config paths (e.g. ``task_params.p``);
    ``targets`` maps a workload label to its own ``{metric, value, mode}``."""
    if runs is None:
        if sweeps is None:
            raise AlgoPerfError("sweeps or runs: give the sweeps (ids) or the run ids to compare")
        sw = [sweeps] if isinstance(sweeps, str) else list(sweeps)
        meta = pd.concat([store.runs(sweep=s) for s in sw], ignore_index=True)
    else:
        meta = store.runs()
        meta = meta[meta["id"].isin(list(runs))]
    if meta.empty:
        raise AlgoPerfError("sweeps / runs: no runs to compare")
    rows = []
    for _, r in meta.iterrows():
        cfg = r["config"]
        wl = label(_field(cfg, workload) if workload not in ("task",) else cfg.get("task", r.get("task")))
        sub = label(_field(cfg, submission))
        tg = dict(targets.get(wl, {})) if targets else {}
        m, val, md = tg.get("metric", metric), float(tg.get("value", target)), tg.get("mode", mode)
        df = store.metrics(r["id"], m)
        if df.empty:
            steps = wall = float("inf")
        else:
            w = df["wall"].to_numpy(dtype=float)
            w0 = np.nanmin(w) if np.isfinite(w).any() else 0.0
            steps = time_to_target(df["step"], df["value"], val, md)
            wall = time_to_target(df["step"], df["value"], val, md, times=np.nan_to_num(w - w0, nan=np.inf))
        rows.append({"run": r["id"], "workload": wl, "submission": sub, "seed": cfg.get("seed"),
                     "status": r["status"], "steps": steps, "wall": wall, "reached": bool(np.isfinite(steps))})
    return pd.DataFrame(rows)


def times_table(per_run: pd.DataFrame, time: str = "steps") -> pd.DataFrame:
    """Submissions x workloads table of the median (over seeds) ``time`` (``steps`` or ``wall``). A
    submission that has no run on a workload counts as a miss there."""
    if time not in ("steps", "wall"):
        raise AlgoPerfError(f"time: must be 'steps' or 'wall', got {time!r}")
    tab = per_run.groupby(["submission", "workload"])[time].apply(median_time).unstack("workload")
    tab = tab.fillna(np.inf)
    # a step-0 hit would make ratios divide by zero: count it as one step / the smallest positive time
    pos = tab.to_numpy()[np.isfinite(tab.to_numpy()) & (tab.to_numpy() > 0)]
    tab = tab.where(tab > 0, pos.min() if pos.size else 1.0)
    tab.columns.name = "workload"
    return tab


def compare(store: Any, *, time: str = "steps", tau_max: float = TAU_MAX, **kw: Any) -> dict[str, pd.DataFrame]:
    """Everything for an AlgoPerf comparison of runs in a store: ``per_run`` (time to target of each
    run), ``times`` (median over seeds), ``ratios``, ``profile`` (ρ_s(τ)) and ``score`` (a table with
    the score and the number of workloads reached)."""
    per_run = run_times(store, **kw)
    times = times_table(per_run, time)
    sc = score(times, tau_max).to_frame()
    sc["workloads_reached"] = np.isfinite(times).sum(axis=1)
    sc["workloads"] = times.shape[1]
    return {"per_run": per_run, "times": times, "ratios": performance_ratios(times),
            "profile": performance_profile(times, tau_max=tau_max), "score": sc.sort_values("score", ascending=False)}
