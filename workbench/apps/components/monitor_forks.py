"""Cooldown forks in the live monitor (:mod:`workbench.train.fork`): the runs list shows each run's forks
right under it (by fork step, then in the order they were created), labelled ``↳ <name>``."""

from __future__ import annotations

from typing import Any

import pandas as pd


def group_forks(store: Any, runs: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """``runs`` (the store's runs table) reordered so forks follow their parent, and the ids of the forks
    whose parent is in the table (their labels get the ``↳`` mark)."""
    links = store.forks()
    if links.empty or runs.empty:
        return runs, set()
    parent = dict(zip(links["run"], links["parent_run"]))
    step = dict(zip(links["run"], links["fork_step"]))
    ids = runs["id"].tolist()
    present = set(ids)
    children: dict[str, list[str]] = {}
    for r in ids:
        if parent.get(r) in present:
            children.setdefault(parent[r], []).append(r)
    order: list[str] = []

    def visit(r: str) -> None:
        order.append(r)
        for c in sorted(children.get(r, []), key=lambda c: step[c]):  # stable: creation order within a step
            visit(c)

    for r in ids:
        if parent.get(r) not in present:
            visit(r)
    pos = {r: i for i, r in enumerate(order)}
    out = runs.iloc[sorted(range(len(ids)), key=lambda i: pos[ids[i]])].reset_index(drop=True)
    return out, {r for r in ids if parent.get(r) in present}
