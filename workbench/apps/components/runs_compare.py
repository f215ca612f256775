"""Pieces of the runs page (:mod:`workbench.apps.runs`): a table cell as shown, and for the compare view the
config diff as an HTML table (every user string escaped), a legend label and a configs row per compared run."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from workbench.runs_table import flatten_config
from workbench.store import RunStore


def shown_cell(v: Any) -> Any:
    """A cell as the table shows it: floats to 4 significant digits."""
    if isinstance(v, float) and math.isfinite(v):
        return float(f"{v:.4g}")
    return v


def diff_html(diff: pd.DataFrame) -> str:
    """The config diff as an HTML table (every value escaped); rows whose values differ carry the
    class ``wb-diff`` and a highlight."""
    runs = [c for c in diff.columns if c not in ("key", "differs")]
    head = "".join(f"<th>{html.escape(str(r))}</th>" for r in runs)
    rows = []
    for _, r in diff.iterrows():
        cls = ' class="wb-diff" style="background:#fff1c2;font-weight:600"' if r["differs"] else ""
        cells = "".join(f"<td>{'' if r[c] is None else html.escape(str(r[c]))}</td>" for c in runs)
        rows.append(f"<tr{cls}><td>{html.escape(str(r['key']))}</td>{cells}</tr>")
    return ("<style>.wb-config-diff td,.wb-config-diff th{padding:2px 12px;text-align:left;"
            "border-bottom:1px solid #eee}</style>"
            f'<table class="wb-config-diff" style="border-collapse:collapse;font-size:13px">'
            f"<thead><tr><th>config key</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def run_labels(sel: pd.DataFrame) -> dict[str, str]:
    """A label per run: its name, with the id added where two runs share a name."""
    counts = sel["name"].value_counts()
    return {r: (n if counts[n] == 1 else f"{n} ({r})") for r, n in zip(sel["id"], sel["name"])}


def run_configs(store: RunStore, sel: pd.DataFrame) -> pd.DataFrame | None:
    """One row per run of ``sel`` (rows of the runs table): id, name, tags, note and every flattened config key."""
    if sel.empty:
        return None
    rows = []
    for _, r in sel.iterrows():
        run = store.get_run(r["id"])
        rows.append({"run": r["id"], "run_name": run["name"], "run_tags": r.get("tags", ""),
                     "run_note": r.get("note", ""), **flatten_config(run["config"])})
    return pd.DataFrame(rows)
