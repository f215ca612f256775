"""Sweeps as tables: members and pruning decisions live in ``sweep_members`` / ``sweep_decisions``
(migrated from the artifacts of earlier releases), every member has one run id on every executor, and
the batched executor falls back to one run at a time only when the engine refuses a stack."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from workbench import store as S
from workbench.store import RunStatus, RunStore
from workbench.sweeps import run_sweep, sweep_members, sweep_pruning, sweep_status

SMALL = {"name": "tab", "base": {"task": "modular", "task_params": {"p": 11, "frac": 0.5}, "model": "mlp",
                                 "model_params": {"hidden": [16]}, "steps": 20, "log_every": 10,
                                 "eval_every": 10, "device": "cpu"},
         "axes": {"lr": [1e-3, 3e-3]}, "seeds": [0], "objective": {"metric": "test_loss", "mode": "min"}}


def _old_sweep_store(path: Path) -> None:
    """A store of the release before sweep tables: members and decisions as artifacts (path = sweep id);
    the batched executor had given member 0's run a fresh id, found by its name ``lr/m0000``."""
    c = sqlite3.connect(path)
    c.executescript(S._SCHEMA)
    spec = {"spec": {"name": "lr", "base": {}, "axes": {"lr": [0.1, 0.2]}}, "executor": "batched"}
    c.execute("INSERT INTO sweeps (id, name, spec, status, created, updated) VALUES ('sw', 'lr', ?, 'finished', 1, 2)",
              (json.dumps(spec),))
    for rid, name in (("a1b2c3", "lr/m0000"), ("sw-m0001", "lr/m0001")):
        c.execute("INSERT INTO runs (id, name, sweep, task, config, status, created, updated, version) "
                  "VALUES (?, ?, 'sw', 'modular', '{}', 'finished', 1, 2, '0.0.9')", (rid, name))
    for i in range(2):
        meta = {"index": i, "params": {"lr": [0.1, 0.2][i]}, "seed": 0, "config": {"lr": [0.1, 0.2][i]},
                "trial": i, "run_id": f"sw-m{i:04d}"}
        c.execute("INSERT INTO artifacts (run, kind, path, meta, created) VALUES (NULL, 'sweep_member', 'sw', ?, 3)",
                  (json.dumps(meta),))
    dec = {"trial": 1, "pruned": True, "prob": 0.01, "best": 0.5, "step": 10, "value": 0.9, "reason": "hopeless"}
    c.execute("INSERT INTO artifacts (run, kind, path, meta, created) VALUES "
              "(NULL, 'sweep_prune_decision', 'sw', ?, 4)", (json.dumps(dec),))
    c.execute("INSERT INTO artifacts (run, kind, path, meta, created) VALUES ('a1b2c3', 'checkpoint', '/x.pt', '{}', 5)")
    c.commit()
    c.close()


def test_artifacts_of_an_old_store_migrate_into_the_sweep_tables(tmp_path):
    db = tmp_path / "old.db"
    _old_sweep_store(db)
    with RunStore(db, mark_interrupted=False) as st:
        members = st.sweep_member_table("sw")
        assert members["index"].tolist() == [0, 1]
        assert members["run_id"].tolist() == ["a1b2c3", "sw-m0001"]        # the run really trained
        assert members["params"].tolist() == [{"lr": 0.1}, {"lr": 0.2}]
        dec = sweep_pruning("sw", st)
        assert dec["trial"].tolist() == [1] and dec["pruned"].tolist() == [True]
        assert dec["prob"].iloc[0] == pytest.approx(0.01) and dec["reason"].iloc[0] == "hopeless"
        assert st.artifacts()["kind"].tolist() == ["checkpoint"]            # moved, the rest untouched
        assert sweep_members("sw", st)["status"].tolist() == ["finished", "finished"]
    assert (tmp_path / "old.db.bak-v0").exists()


def test_member_run_ids_are_assigned_up_front_on_the_batched_executor(tmp_path):
    store = RunStore(tmp_path / "s.db")
    sid = run_sweep(SMALL, "batched", store, progress=False, sweep_id="ids")
    members = sweep_members(sid, store)
    assert members["run_id"].tolist() == ["ids-m0000", "ids-m0001"]
    assert sorted(store.runs(sweep=sid)["id"]) == ["ids-m0000", "ids-m0001"]
    assert set(members["status"]) == {RunStatus.FINISHED}


def test_batched_executor_records_an_engine_failure_instead_of_falling_back(tmp_path, monkeypatch):
    import workbench.train as engine

    calls = []

    def broken(*a, **kw):
        raise RuntimeError("boom inside the stack")

    monkeypatch.setattr(engine, "train_batched", broken)
    monkeypatch.setattr(engine, "train", lambda *a, **kw: calls.append(1))
    store = RunStore(tmp_path / "f.db")
    sid = run_sweep(SMALL, "batched", store, progress=False)
    assert sweep_status(sid, store)["counts"] == {"failed": 2}
    assert calls == []                                                  # no silent one-by-one retry
    errors = store.runs(sweep=sid)["error"].tolist()
    assert all("RuntimeError: boom inside the stack" in e and "Traceback" in e for e in errors)


def test_batched_executor_falls_back_when_the_engine_refuses_the_stack(tmp_path):
    spec = {**SMALL, "base": {**SMALL["base"], "optimizer": "lamb"}}    # no batched form: one run each
    store = RunStore(tmp_path / "r.db")
    sid = run_sweep(spec, "batched", store, progress=False, sweep_id="lamb")
    assert sweep_status(sid, store)["counts"] == {"finished": 2}
    assert sorted(store.runs(sweep=sid)["id"]) == ["lamb-m0000", "lamb-m0001"]
