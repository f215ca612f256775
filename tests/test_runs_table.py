"""The runs table (workbench.runs_table), tags and notes in the run store, and `workbench runs list`:
varying keys, final/best metrics checked against a plain pandas recomputation over the store's rows,
filter/sort, the config diff, aligned text with full names, and the run_notes schema step."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.cli import main
from workbench.runs_table import (
    RunsTableError,
    config_diff,
    filter_table,
    final_and_best,
    flatten_config,
    format_table,
    lower_is_better,
    runs_table,
    sort_table,
    varying_keys,
)
from workbench.store import RunStore, StoreError

LONG = "a-run-name-much-longer-than-twenty-seven-characters"


@pytest.fixture
def filled(store: RunStore) -> tuple[RunStore, list[str], str]:
    rng = np.random.default_rng(0)
    sid = store.create_sweep("grid")
    ids = []
    for i, lr in enumerate((1e-3, 3e-3, 1e-2)):
        rid = store.create_run(f"{LONG}-{i}", task="modular", sweep=sid if i < 2 else None,
                               config={"lr": lr, "seed": 0, "model": {"width": 64 * (i + 1), "depth": 2}})
        for step in range(0, 50, 5):
            store.log(rid, step, {"train_loss": float(rng.uniform(0.1, 3)), "test_acc": float(rng.uniform(0, 1))})
        store.set_status(rid, "finished")
        ids.append(rid)
    store.log(ids[2], 50, {"train_loss": math.nan})  # diverged: its final loss is NaN
    store.set_status(ids[2], "diverged")
    return store, ids, sid


def test_flatten_and_varying_keys() -> None:
    assert flatten_config({"a": 1, "m": {"w": 2, "o": {"x": [1, 2]}}, "e": {}}) == \
        {"a": 1, "m.w": 2, "m.o.x": [1, 2], "e": {}}
    cfgs = [{"lr": 0.1, "seed": 0, "m": {"w": 1}}, {"lr": 0.2, "seed": 0, "m": {"w": 1}}, {"lr": 0.1, "seed": 0}]
    assert varying_keys(cfgs) == ["lr", "m.w"]  # m.w is missing from the third run: it varies
    assert varying_keys([{"a": 1}]) == []
    assert lower_is_better("test_loss") and lower_is_better("val_ppl") and not lower_is_better("test_acc")


def test_final_and_best_match_a_recomputation(filled) -> None:
    store, ids, _ = filled
    got = final_and_best(store, ids)
    m = store.metrics(ids).sort_values(["step", "id"])  # final: the value at the last step
    for rid in ids:
        for name, g in m[m["run"] == rid].groupby("name"):
            assert got.at[rid, f"final.{name}"] == pytest.approx(g["value"].iloc[-1], nan_ok=True)
            finite = g["value"][np.isfinite(g["value"])]
            best = finite.min() if name == "train_loss" else finite.max()
            assert got.at[rid, f"best.{name}"] == pytest.approx(best)
        assert got.at[rid, "last_step"] == m[m["run"] == rid]["step"].max()
    assert math.isnan(got.at[ids[2], "final.train_loss"]) and math.isfinite(got.at[ids[2], "best.train_loss"])
    only = final_and_best(store, ids, ["test_acc"])
    assert list(only.columns) == ["last_step", "final.test_acc", "best.test_acc"]


def test_runs_table_columns(filled) -> None:
    store, ids, sid = filled
    t = runs_table(store)
    assert t["id"].tolist() == ids
    assert [c for c in t.columns if c.startswith("cfg.")] == ["cfg.lr", "cfg.model.width"]  # seed, depth constant
    assert t["sweep"].tolist() == [sid, sid, ""]
    assert {"final.train_loss", "best.train_loss", "final.test_acc", "best.test_acc"} <= set(t.columns)
    assert runs_table(store, status="diverged")["id"].tolist() == [ids[2]]


def test_filter_and_sort(filled) -> None:
    store, ids, _ = filled
    store.set_tags(ids[1], ["baseline", "good"])
    store.set_note(ids[0], "Loss spike at step 20")
    t = runs_table(store)
    assert filter_table(t, "lr=3e-3")["id"].tolist() == [ids[1]]  # numbers compare as numbers
    assert filter_table(t, "SPIKE")["id"].tolist() == [ids[0]]  # the note is searched, case-insensitively
    assert filter_table(t, "width=192 modular")["id"].tolist() == [ids[2]]
    assert filter_table(t, tag="good")["id"].tolist() == [ids[1]]
    assert filter_table(t, tag="goo").empty  # tags match whole
    assert filter_table(t, status=["diverged"])["id"].tolist() == [ids[2]]
    assert filter_table(t, "__import__('os')").empty  # text, never evaluated
    s = sort_table(t, "cfg.model.width", descending=True)
    assert s["id"].tolist() == ids[::-1]
    s = sort_table(t, "final.train_loss")
    assert s["id"].tolist()[-1] == ids[2]  # NaN last
    with pytest.raises(RunsTableError, match="sort: no column 'bogus'"):
        sort_table(t, "bogus")


def test_config_diff_highlights_differences() -> None:
    d = config_diff({"a": {"lr": 0.1, "m": {"w": 64, "d": 2}}, "b": {"lr": 0.3, "m": {"w": 64, "d": 2}, "x": 1}})
    assert d["key"].tolist() == ["lr", "x", "m.d", "m.w"]  # differing first
    assert d["differs"].tolist() == [True, True, False, False]
    assert d.loc[1, "a"] is None and d.loc[1, "b"] == 1
    assert d.loc[3, "a"] == 64 and isinstance(d.loc[3, "a"], int)  # not turned into 64.0
    assert config_diff({"a": {"lr": 1}, "b": {"lr": 1}}, only_differences=True).empty
    with pytest.raises(RunsTableError):
        config_diff({})


def test_tags_and_notes_in_the_store(filled, tmp_path: Path) -> None:
    store, ids, _ = filled
    assert store.set_tags(ids[0], " good, baseline,good ,") == ["good", "baseline"]
    store.set_note(ids[0], "first <b>try</b> & more")
    store.set_tags(ids[0], ["best"])  # replaces the tags, keeps the note
    ann = store.annotations()
    assert ann.to_dict("records") == [{"run": ids[0], "tags": ["best"], "note": "first <b>try</b> & more"}]
    with pytest.raises(StoreError, match="tags: each tag"):
        store.set_tags(ids[0], ["x" * 65])
    with pytest.raises(StoreError, match="note: at most"):
        store.set_note(ids[0], "x" * 20_001)
    with pytest.raises(StoreError, match="note: must be a string"):
        store.set_note(ids[0], 3)  # type: ignore[arg-type]
    store.delete_run(ids[0])
    assert store.annotations().empty  # no orphan note left behind


def test_old_store_gains_the_notes_table(tmp_path: Path) -> None:
    """A store written before run_notes existed opens, keeps its runs and takes tags."""
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, sweep TEXT, task TEXT NOT NULL "
                      "DEFAULT '', config TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL, device TEXT NOT NULL "
                      "DEFAULT 'cpu', created REAL NOT NULL, updated REAL NOT NULL, finished REAL, version TEXT NOT "
                      "NULL, host TEXT, pid INTEGER, pid_start TEXT, error TEXT);"
                      "INSERT INTO runs VALUES ('r1','old','', '', '{}', 'finished', 'cpu', 1, 1, 1, '0', NULL, "
                      "NULL, NULL, NULL);")
    con.commit()
    con.close()
    s = RunStore(path)
    assert s.runs()["id"].tolist() == ["r1"]
    assert s.set_tags("r1", "kept") == ["kept"]
    s.close()
    assert RunStore(path).annotations()["tags"].tolist() == [["kept"]]


def test_format_table_is_aligned_with_full_names(filled) -> None:
    store, ids, _ = filled
    text = format_table(runs_table(store), ["id", "name", "sweep", "status", "cfg.lr", "final.train_loss",
                                            "best.test_acc"])
    lines = text.splitlines()
    assert len(lines) == 4
    assert all(f"{LONG}-{i}" in text for i in range(3))  # never cut
    starts = [ln.index(LONG) for ln in lines[1:]]
    assert len(set(starts)) == 1 and lines[0].index("name") == starts[0]  # one column start
    # numbers right-aligned: every row's lr ends where the header "cfg.lr" ends
    end = lines[0].index("cfg.lr") + len("cfg.lr")
    assert [ln[:end].rstrip()[-5:] for ln in lines[1:]] == ["0.001", "0.003", " 0.01"]
    assert "nan" in lines[3] and "nan" not in "".join(lines[1:3])  # the diverged final loss only
    with pytest.raises(RunsTableError, match="columns: unknown"):
        format_table(runs_table(store), ["nope"])


def test_cli_runs_list(filled, capsys) -> None:
    store, ids, sid = filled
    path = str(store.path)
    assert main(["runs", "list", "--store", path]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out  # the run without a sweep shows an empty sweep cell
    assert all(f"{LONG}-{i}" in out for i in range(3)) and sid in out
    assert main(["runs", "list", "--store", path, "--columns", "name,cfg.lr,final.test_acc"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "cfg.lr", "final.test_acc"]
    t = runs_table(store)
    for line, (_, r) in zip(out[1:], t.iterrows()):
        assert line.split()[-1] == f"{r['final.test_acc']:.4g}"
    assert main(["runs", "list", "--store", path, "--columns", "name,bogus"]) == 2
    assert "columns: unknown ['bogus']" in capsys.readouterr().err


def test_empty_store_table(store: RunStore) -> None:
    t = runs_table(store)
    assert t.empty and list(t.columns)[:3] == ["id", "name", "task"]
    assert isinstance(filter_table(t, "x"), pd.DataFrame)
