"""The runs table: one row per run with the config keys that vary and each metric's final and best
value as columns, plus tags and a note; filtering, sorting and a config diff of chosen runs.

Used by the runs page (``workbench.apps.runs``), ``workbench runs list`` and notebooks. Everything
here is plain pandas over the run store; nothing renders HTML (the page escapes what it shows).

- *final* is a metric's value at its last step (the latest committed there; a diverged run's final loss
  is NaN, shown as such);
  *best* is the minimum for metrics where lower is better (losses, errors, perplexities) and the
  maximum otherwise (accuracies), over finite values.
- A config key *varies* when at least two of the listed runs hold different values for it (a key
  missing from some runs varies too). Nested dicts are flattened with dots (``model_params.width``).
- Filtering is a case-insensitive substring match over the text of a row, never an evaluated
  expression (the store may be shared with other users).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError

BASE_COLUMNS = ["id", "name", "task", "sweep", "status", "created", "tags", "note"]
LOWER_IS_BETTER = ("loss", "err", "ppl", "perplexity", "nll", "bpb", "bpc")
_MISSING = object()


class RunsTableError(WorkbenchError):
    """Bad input to the runs table (an unknown column, a bad sort key)."""


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (losses, errors, perplexities)."""
    m = metric.lower()
    return any(k in m for k in LOWER_IS_BETTER)


def flatten_config(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dicts flattened to dotted keys; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v
    return out


def _canon(v: Any) -> str:
    if v is _MISSING:
        return "\x00missing"
    try:
        return json.dumps(v, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(v)


def varying_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The flattened config keys whose values differ between at least two of ``configs`` (in the
    order first seen)."""
    flat = [flatten_config(c or {}) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [k for k in keys if len({_canon(f.get(k, _MISSING)) for f in flat}) > 1]


def config_diff(configs: Mapping[str, Mapping[str, Any]], *, only_differences: bool = False) -> pd.DataFrame:
    """Side-by-side configs of some runs: one row per flattened key, one column per run (label ->
    config), a ``differs`` column; differing keys first, then the rest, each group sorted by key. A
    key a run lacks shows as ``None`` there."""
    if not configs:
        raise RunsTableError("configs: give at least one run's config")
    flat = {label: flatten_config(c or {}) for label, c in configs.items()}
    keys = sorted(set().union(*[set(f) for f in flat.values()]))
    rows = []
    for k in keys:
        vals = [f.get(k, _MISSING) for f in flat.values()]
        differs = len({_canon(v) for v in vals}) > 1
        if only_differences and not differs:
            continue
        rows.append({"key": k, **{lbl: (None if v is _MISSING else v) for lbl, v in zip(flat, vals)},
                     "differs": differs})
    df = pd.DataFrame(rows, columns=["key", *flat, "differs"], dtype=object)
    df["differs"] = df["differs"].astype(bool)
    if len(df):
        df = df.sort_values(["differs", "key"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return df


def final_and_best(store: Any, run_ids: Sequence[str], metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Per run (index): ``last_step`` and, per metric, ``final.<m>`` (its value at its last step) and
    ``best.<m>`` (min or max over finite values, by :func:`lower_is_better`). Read from
    :meth:`~workbench.store.RunStore.series_ends`: the cost grows with the runs' metric series, not with
    their rows (the runs page on a store of 256 runs x 10^5 steps: 1.7 s a load, down from 20 s)."""
    ids = list(run_ids)
    if not ids:
        return pd.DataFrame(index=pd.Index([], name="run"))
    if metrics is not None and not list(metrics):
        return pd.DataFrame(index=pd.Index(ids, name="run"))
    ends = store.series_ends(ids, None if metrics is None else list(metrics))
    out: dict[str, dict[str, float]] = {r: {} for r in ids}
    for run, name, lo, hi, step, value in zip(ends["run"], ends["name"], ends["lo"], ends["hi"],
                                              ends["last_step"], ends["last_value"]):
        out[run][f"final.{name}"] = float(value)
        out[run][f"best.{name}"] = float(lo if lower_is_better(name) else hi)
        out[run]["last_step"] = max(out[run].get("last_step", -1), int(step))
    df = pd.DataFrame.from_dict(out, orient="index")
    df.index.name = "run"
    names = sorted({c.split(".", 1)[1] for c in df.columns if c.startswith("final.")})
    cols = (["last_step"] if "last_step" in df else []) + [f"{p}.{n}" for n in names for p in ("final", "best")]
    return df.reindex(columns=cols)


def _cell(v: Any) -> Any:
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, sort_keys=True, default=str)
    return v


def runs_table(store: Any, *, sweep: str | None = None, task: str | None = None,
               status: str | Sequence[str] | None = None, metrics: Sequence[str] | None = None,
               flags: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The runs of a store (oldest first) with ``BASE_COLUMNS`` (``tags`` as one comma-separated
    string, ``note`` as text, ``sweep`` "" when a run has none), ``cfg.<key>`` for each config key
    that varies among them, ``last_step`` and ``final.<m>`` / ``best.<m>`` for each metric. ``flags``
    (run -> text, :func:`workbench.forecast_watch.running_flags`) adds a ``forecast`` column after
    ``status`` ("above forecast since step 1 200"; "" for the other runs)."""
    runs = store.runs(sweep=sweep, task=task, status=status)
    if runs.empty:
        return pd.DataFrame(columns=BASE_COLUMNS)
    ids = runs["id"].tolist()
    ann = store.annotations(ids)
    tags = dict(zip(ann["run"], (", ".join(t) for t in ann["tags"])))
    notes = dict(zip(ann["run"], ann["note"]))
    out = pd.DataFrame({
        "id": ids, "name": runs["name"].astype(str).tolist(), "task": runs["task"].fillna("").astype(str).tolist(),
        "sweep": [s if isinstance(s, str) else "" for s in runs["sweep"]], "status": runs["status"].tolist(),
        "created": runs["created"].astype(float).tolist(),
        "tags": [tags.get(r, "") for r in ids], "note": [notes.get(r, "") for r in ids]})
    if flags is not None:
        out.insert(out.columns.get_loc("status") + 1, "forecast", [flags.get(r, "") for r in ids])
    configs = runs["config"].tolist()
    flat = [flatten_config(c or {}) for c in configs]
    for k in varying_keys(configs):
        out[f"cfg.{k}"] = [_cell(f.get(k)) for f in flat]
    fb = final_and_best(store, ids, metrics)
    if len(fb.columns):
        out = out.join(fb, on="id")
    return out


def filter_table(table: pd.DataFrame, query: str = "", *, status: Iterable[str] = (), tag: str | None = None
                 ) -> pd.DataFrame:
    """Rows whose text contains every word of ``query`` (case-insensitive; a ``key=value`` word matches
    the config column ``cfg.key``, or ``cfg.<...>.key``, by value: ``lr=3e-3`` matches 0.003), whose status is in ``status`` (all if empty) and that carry
    ``tag`` (any if None/"")."""
    if table.empty:
        return table
    keep = np.ones(len(table), dtype=bool)
    status = list(status)
    if status:
        keep &= table["status"].isin(status).to_numpy()
    if tag:
        keep &= np.array([tag in [t.strip() for t in str(s).split(",")] for s in table["tags"]])
    words = str(query or "").lower().split()
    if words:
        text = [" ".join(_text(v) for v in row).lower() for row in table.itertuples(index=False)]
        for w in words:
            key, eq, val = w.partition("=")
            cols = [c for c in table.columns if c.lower() == f"cfg.{key}"] or \
                [c for c in table.columns if c.lower().startswith("cfg.") and c.lower().endswith(f".{key}")]
            if eq and cols:
                keep &= np.array([any(_same(v, val) for v in vals) for vals in zip(*(table[c] for c in cols))])
            else:
                keep &= np.array([w in t for t in text])
    return table[keep]


def _same(v: Any, text: str) -> bool:
    """``v`` equals the typed ``text``: as numbers when both are (``3e-3`` matches 0.003), else as text."""
    try:
        return math.isclose(float(v), float(text), rel_tol=1e-9)
    except (TypeError, ValueError):
        return str(v).lower() == text or _text(v).lower() == text


def sort_table(table: pd.DataFrame, by: str | None, descending: bool = False) -> pd.DataFrame:
    """Rows sorted by column ``by`` (numbers as numbers, missing values last); None keeps the order."""
    if not by:
        return table
    if by not in table.columns:
        raise RunsTableError(f"sort: no column {by!r}; have {list(table.columns)}")
    col = table[by]
    num = pd.to_numeric(col, errors="coerce")
    key = num if num.notna().sum() >= col.notna().sum() and col.notna().any() else col.astype(str)
    order = key.sort_values(ascending=not descending, na_position="last", kind="stable").index
    return table.loc[order]


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4g}"
    return str(v)


def format_table(table: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """The table as aligned plain text for a terminal: full values (nothing cut), numbers right-aligned
    to 4 significant digits, ``created`` as local time, empty text for a missing value (only a
    diverged run's NaN final metric prints as ``nan``)."""
    flagged = "forecast" in table.columns and table["forecast"].astype(bool).any()
    cols = list(columns) if columns else [c for c in ("id", "name", "task", "status", "forecast", "sweep",
                                                     "last_step", "created")
                                          if c in table.columns and (c != "forecast" or flagged)]
    unknown = [c for c in cols if c not in table.columns]
    if unknown:
        raise RunsTableError(f"columns: unknown {unknown}; choose from {list(table.columns)}")
    cells: list[list[str]] = []
    right = []
    for c in cols:
        col = table[c]
        is_num = c != "created" and pd.api.types.is_numeric_dtype(col)
        right.append(is_num)
        if c == "created":
            cells.append([time.strftime("%Y-%m-%d %H:%M", time.localtime(v)) if v == v else "" for v in col])
        elif c == "last_step":
            cells.append(["" if v != v else str(int(v)) for v in col])
        else:
            diverged = (table["status"] == "diverged").tolist() if "status" in table else [False] * len(table)
            cells.append(["" if v is None or (isinstance(v, float) and math.isnan(v) and not (
                d and c.startswith("final."))) else _text(v) for v, d in zip(col, diverged)])
    widths = [max([len(c), *map(len, col)]) for c, col in zip(cols, cells)]
    lines = ["  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cols, widths, right)).rstrip()]
    for i in range(len(table)):
        lines.append("  ".join(col[i].rjust(w) if r else col[i].ljust(w)
                               for col, w, r in zip(cells, widths, right)).rstrip())
    return "\n".join(lines)
