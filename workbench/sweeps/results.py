"""One results table for a sweep, used by ``sweep_results``, the sweep board and the law fitter.

:func:`results_table` gives one row per run of a sweep: id, name, status, seed, the *varied* config
fields (``cfg.*``, schedules shown by label) and, per metric, its value at its last step (``final.<name>``),
the best finite value (``best.<name>``: the minimum where lower is better -- losses, errors, perplexities,
nll, bits per byte or character: :func:`workbench.runs_table.lower_is_better`, the runs table's rule -- and
the maximum otherwise) and the last step logged.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from workbench.runs_table import lower_is_better

RESULT_METRICS = ["train_loss", "test_loss", "val_loss", "loss", "train_acc", "test_acc", "val_acc"]


def label(v: Any) -> str:
    """A config value as a short cell: a schedule dict as ``name(k=v,...)``, a list as its text."""
    if isinstance(v, dict):
        name = v.get("name", "")
        rest = ",".join(f"{k}={v[k]}" for k in sorted(v) if k not in ("name", "total_steps"))
        return f"{name}({rest})" if rest else str(name)
    if isinstance(v, (list, tuple)):
        return str(list(v))
    return v


def results_table(store: Any, sweep: str, metrics: list[str] | None = RESULT_METRICS) -> pd.DataFrame:
    """One row per run of ``sweep``: id, name, status, seed, the *varied* config fields (``cfg.*``,
    schedules shown by label) and each metric's value at its last step (``final.<name>``) and its
    best (``best.<name>``, min where :func:`~workbench.runs_table.lower_is_better`, max otherwise)."""
    runs = store.runs(sweep=sweep, expand_config=True)
    if runs.empty:
        return pd.DataFrame(columns=["id", "name", "status"])
    cfg_cols = [c for c in runs.columns if c.startswith("cfg.")]
    # group nested schedule dicts into one label column
    sched = [c for c in cfg_cols if c.startswith("cfg.schedule.")]
    out = runs[["id", "name", "status"]].copy()
    if sched:
        out["cfg.schedule"] = [label({k.removeprefix("cfg.schedule."): r[k] for k in sched
                                       if not (isinstance(r[k], float) and math.isnan(r[k]))})
                               for _, r in runs.iterrows()]
    for c in cfg_cols:
        if c in sched:
            continue
        col = runs[c].map(label)
        try:
            varied = col.astype(str).nunique(dropna=False) > 1
        except TypeError:
            varied = True
        if varied or c in ("cfg.seed", "cfg.lr"):
            out[c] = col
    ids = runs["id"].tolist()
    # each series' two ends and finite extremes (RunStore.series_ends: O(series), not a read of every row;
    # a 256-run sweep of 10^5 steps is 25.6 M rows a metric)
    e = store.series_ends(ids, metrics) if ids else pd.DataFrame()
    if len(e):
        last = e.pivot(index="run", columns="name", values="last_value")
        best_min = e.pivot(index="run", columns="name", values="lo")
        best_max = e.pivot(index="run", columns="name", values="hi")
        steps = e.groupby("run")["last_step"].max().rename("last_step")
        out = out.merge(steps, left_on="id", right_index=True, how="left")
        for n in sorted(last.columns):
            out[f"final.{n}"] = out["id"].map(last[n])
            best = best_min[n] if lower_is_better(n) else best_max[n]
            out[f"best.{n}"] = out["id"].map(best)
    return out.reset_index(drop=True)
