"""Pieces of the runs page's compare view (:mod:`workbench.apps.runs`): the config diff as an HTML table
(every user string escaped) and a legend label per compared run."""

from __future__ import annotations

import html

import pandas as pd


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
