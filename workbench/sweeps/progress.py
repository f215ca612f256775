"""A sweep's progress and records as the sweep board shows them: the stored spec, per-member progress
(status, last step against the config's ``steps``, step rate, ETA) and, for a pruned Bayesian sweep, why
each pruned member was stopped. Read from the run store, so they also cover sweeps started elsewhere
(CLI, notebook)."""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd

from workbench.sweeps.runner import sweep_members, sweep_pruning, sweep_status

PROGRESS_COLUMNS = ["id", "name", "status", "step", "steps", "progress", "steps/s", "eta_s"]


def stored_spec(store: Any, sweep: str) -> dict:
    """The SweepSpec plain data of a sweep in the store (``run_sweep`` stores it under ``"spec"``
    next to the executor; a sweep created by hand may store the spec itself)."""
    rec = store.get_sweep(sweep)["spec"] or {}
    return rec["spec"] if isinstance(rec.get("spec"), dict) else rec


def pruning_reasons(store: Any, sweep: str, run_ids: pd.Series) -> list[str]:
    """For each run of a pruned Bayesian sweep, why its trial was pruned (the forecast decision of
    ``workbench.sweeps.sweep_pruning``), or "" for a run that was kept."""
    members = sweep_members(sweep, store)
    dec = sweep_pruning(sweep, store)
    trial_of = dict(zip(members["run_id"], members["trial"]))
    why = {int(t): f"P(beats {best:.4g}) = {prob:.2g} at step {int(st)}"
           for t, p, prob, best, st in zip(dec["trial"], dec["pruned"], dec["prob"], dec["best"], dec["step"]) if p}
    return [why.get(trial_of.get(i), "") for i in run_ids]


def progress_table(store: Any, sweep: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-member progress of a sweep from the store (status, last step / total steps, steps per
    second, ETA) and a summary (counts per status, expected members, overall ETA in seconds)."""
    runs = store.runs(sweep=sweep)
    summary: dict[str, Any] = {"members": len(runs), "expected": None, "eta_s": None}
    try:  # members not started yet count as pending (the spec knows the sweep's members)
        st = sweep_status(sweep, store)
        summary.update(expected=st["members"], status=st["status"])
    except Exception:  # noqa: BLE001 - a sweep recorded without a spec: count the runs only
        pass
    if runs.empty:
        summary["counts"] = {"pending": summary["expected"]} if summary["expected"] else {}
        return pd.DataFrame(columns=PROGRESS_COLUMNS), summary
    ids = runs["id"].tolist()
    # per run: its last step and the wall times of its first and last rows (the rate), from each series'
    # two ends (RunStore.series_ends): the cost grows with the series, not with the rows logged
    ends = store.series_ends(ids)
    info = {}
    for run, g in ends.groupby("run"):
        info[run] = (int(g["last_step"].max()), g["first_wall"].min(), g["last_wall"].max())
    out = []
    now = time.time()
    for _, r in runs.iterrows():
        last, w0, w1 = info.get(r["id"], (None, None, None))
        total = r["config"].get("steps") if isinstance(r["config"], dict) else None
        step = int(last) if last is not None else 0
        done = r["status"] != "running"
        frac = 1.0 if r["status"] == "finished" else (min(step / total, 1.0) if total else float("nan"))
        rate = step / (w1 - w0) if (last is not None and w1 and w0 and w1 > w0) else float("nan")
        eta = 0.0 if done else ((total - step) / rate if total and rate and rate > 0 else float("nan"))
        if not done and last is not None and w1 and now - w1 > 0 and not math.isnan(eta):
            eta = max(eta - (now - w1), 0.0)
        out.append({"id": r["id"], "name": r["name"], "status": r["status"], "step": step, "steps": total,
                    "progress": frac, "steps/s": rate, "eta_s": eta})
    df = pd.DataFrame(out)
    if (df["status"] == "pruned").any():
        df["why"] = pruning_reasons(store, sweep, df["id"])
    summary["counts"] = {k: int(v) for k, v in df["status"].value_counts().items()}
    if summary["expected"] and summary["expected"] > len(df):
        summary["counts"]["pending"] = summary["expected"] - len(df)
    etas = df.loc[df["status"] == "running", "eta_s"].dropna()
    summary["eta_s"] = float(etas.max()) if len(etas) else (0.0 if (df["status"] != "running").all() else None)
    return df, summary
