"""Store schema versions: an older store migrates in place (after a backup) and keeps every row; a
newer one is refused; a read-only store is read without any write; write errors surface."""

from __future__ import annotations

import math
import os
import sqlite3
from pathlib import Path

import pytest

from workbench import __version__
from workbench import store as S
from workbench.errors import WorkbenchError
from workbench.store import ReadOnlyStoreError, RunStore, StoreError, StoreVersionError


def _old_store(path: Path) -> None:
    """A store as the releases before schema versions wrote it: the baseline schema, user_version 0."""
    c = sqlite3.connect(path)
    c.execute("PRAGMA journal_mode=WAL")
    c.executescript(S._SCHEMA)
    c.execute("INSERT INTO runs (id, name, sweep, task, config, status, created, updated, version) "
              "VALUES ('r1', 'first', 'sw-1', 'grokking', '{\"lr\": 0.001}', 'finished', 1.0, 2.0, '0.0.9')")
    c.execute("INSERT INTO runs (id, name, status, created, updated, version) "
              "VALUES ('r2', 'second', 'interrupted', 3.0, 4.0, '0.0.9')")
    c.executemany("INSERT INTO metrics (run, step, tokens, wall, name, value, flag) VALUES (?,?,?,?,?,?,?)",
                  [("r1", s, 10 * s, 0.5 * s, "loss", 4.0 - s / 10, None) for s in range(50)]
                  + [("r2", 0, None, 0.0, "loss", None, "nan")])
    c.execute("INSERT INTO artifacts (run, kind, path, meta, created) VALUES ('r1', 'checkpoint', '/x.pt', '{}', 5.0)")
    c.execute("INSERT INTO sweeps (id, name, spec, status, created, updated) "
              "VALUES ('sw-1', 'lr', '{}', 'finished', 1.0, 2.0)")
    c.commit()
    c.close()


def _dump(path: Path) -> dict:
    c = sqlite3.connect(path)
    try:
        return {t: c.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
                for t in ("runs", "metrics", "artifacts", "sweeps")}
    finally:
        c.close()


def test_old_store_migrates_in_place_keeps_rows_and_backs_up(tmp_path):
    db = tmp_path / "old.db"
    _old_store(db)
    before = _dump(db)
    with RunStore(db, mark_interrupted=False) as st:
        assert st.schema_version() == S.SCHEMA_VERSION >= 1
        assert st.backup_path == tmp_path / "old.db.bak-v0"
        assert st.runs()["id"].tolist() == ["r1", "r2"]
        assert st.get_run("r1")["config"] == {"lr": 0.001}
        m = st.metrics("r1")
        assert m["step"].tolist() == list(range(50))
        assert math.isnan(st.metrics("r2")["value"].iloc[0])
    assert _dump(db) == before
    # the backup is the old store, byte for byte in content, owner-only
    bak = tmp_path / "old.db.bak-v0"
    assert _dump(bak) == before
    assert sqlite3.connect(bak).execute("PRAGMA user_version").fetchone()[0] == 0
    assert os.stat(bak).st_mode & 0o077 == 0
    # reopening does not migrate (or back up) again
    with RunStore(db) as st:
        assert not hasattr(st, "backup_path")
        st.log("r2", 1, {"loss": 1.5})  # writable after migration
        assert st.metrics("r2")["value"].tolist()[1:] == [1.5]
    assert not (tmp_path / "old.db.bak-v0.1").exists()


def test_backup_never_overwrites_an_existing_one(tmp_path):
    db = tmp_path / "old.db"
    _old_store(db)
    (tmp_path / "old.db.bak-v0").write_text("keep me")
    with RunStore(db) as st:
        assert st.backup_path == tmp_path / "old.db.bak-v0.1"
    assert (tmp_path / "old.db.bak-v0").read_text() == "keep me"


def test_each_migration_step_runs_once_in_order(tmp_path, monkeypatch):
    """Adding a step is appending to MIGRATIONS: a store at the previous version gets exactly that step."""
    db = tmp_path / "s.db"
    RunStore(db).close()
    calls = []

    def step(conn):
        calls.append(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("ALTER TABLE runs ADD COLUMN extra TEXT")

    monkeypatch.setattr(S, "MIGRATIONS", [*S.MIGRATIONS, step, "CREATE TABLE t2 (a); CREATE INDEX t2a ON t2(a)"])
    monkeypatch.setattr(S, "SCHEMA_VERSION", len(S.MIGRATIONS))
    with RunStore(db) as st:
        assert st.schema_version() == S.SCHEMA_VERSION
        assert calls == [S.SCHEMA_VERSION - 2]  # ran inside the transaction, before the new version was set
        names = {r[0] for r in st._query("SELECT name FROM sqlite_master")}
        assert {"t2", "t2a"} <= names
        assert st.backup_path.name == f"s.db.bak-v{S.SCHEMA_VERSION - 2}"
    with RunStore(db):
        pass
    assert len(calls) == 1


def test_failed_migration_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    db = tmp_path / "old.db"
    _old_store(db)
    before = _dump(db)

    def broken(conn):
        conn.execute("CREATE TABLE half_done (a)")
        raise RuntimeError("step failed")

    monkeypatch.setattr(S, "MIGRATIONS", [*S.MIGRATIONS, broken])
    monkeypatch.setattr(S, "SCHEMA_VERSION", len(S.MIGRATIONS))
    with pytest.raises(RuntimeError, match="step failed"):
        RunStore(db)
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA user_version").fetchone()[0] == 0
    assert not c.execute("SELECT 1 FROM sqlite_master WHERE name IN ('half_done', 'store_meta')").fetchall()
    c.close()
    assert _dump(db) == before


def test_newer_store_is_refused_and_untouched(tmp_path):
    db = tmp_path / "new.db"
    with RunStore(db) as st:
        st.create_run("x", run_id="x")
        st._conn.execute("UPDATE store_meta SET value='9.9.9' WHERE key='workbench_version'")
        st._conn.execute(f"PRAGMA user_version={S.SCHEMA_VERSION + 3}")
    before = _dump(db)
    for ro in (None, True):
        with pytest.raises(StoreVersionError) as e:
            RunStore(db, readonly=ro)
        msg = str(e.value)
        assert f"written by workbench 9.9.9 (schema {S.SCHEMA_VERSION + 3})" in msg
        assert f"this is workbench {__version__} (schema {S.SCHEMA_VERSION})" in msg
        assert isinstance(e.value, WorkbenchError)
    assert _dump(db) == before
    assert not list(tmp_path.glob("*.bak-*"))


def test_readonly_store_reads_and_refuses_writes(tmp_path):
    db = tmp_path / "s.db"
    with RunStore(db) as st:
        rid = st.create_run("a", run_id="a")
        st.log(rid, 0, {"loss": 1.0})
    before = _dump(db)
    with RunStore(db, readonly=True) as ro:
        assert ro.readonly
        assert ro.runs()["id"].tolist() == ["a"]
        assert ro.metrics("a")["value"].tolist() == [1.0]
        ro.export(tmp_path / "out.csv")
        for write in (lambda: ro.create_run("b"), lambda: ro.log("a", 1, {"loss": 2.0}),
                      lambda: ro.set_status("a", "failed"), lambda: ro.delete_run("a"),
                      lambda: ro.import_file(tmp_path / "out.csv", on_conflict="replace")):
            with pytest.raises(ReadOnlyStoreError, match="read-only"):
                write()
    assert _dump(db) == before


def test_unwritable_store_is_detected_and_opened_readonly(tmp_path, monkeypatch):
    """Root ignores permission bits, so the detection is driven through os.access (what it consults)."""
    db = tmp_path / "s.db"
    with RunStore(db) as st:
        st.create_run("a", run_id="a", status="running")  # a 'running' run another user's process owns
        st._conn.execute("UPDATE runs SET pid=999999999")
    before = _dump(db)
    real = os.access
    monkeypatch.setattr(S.os, "access", lambda p, mode, *a, **k: False if mode == os.W_OK else real(p, mode))
    with RunStore(db) as ro:  # mark_interrupted is a write: skipped
        assert ro.readonly
        assert ro.get_run("a")["status"] == "running"
        with pytest.raises(ReadOnlyStoreError):
            ro.create_run("b")
    assert _dump(db) == before


def test_readonly_store_at_an_older_schema_is_refused_with_a_reason(tmp_path):
    db = tmp_path / "old.db"
    _old_store(db)
    with pytest.raises(StoreVersionError, match="read-only here, so it cannot be migrated"):
        RunStore(db, readonly=True)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 0


@pytest.mark.parametrize("make, field", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b"this is not a database, just text" * 100), "not a usable workbench store"),
])
def test_bad_store_paths_are_workbench_errors(tmp_path, make, field):
    p = tmp_path / "x.db"
    make(p)
    with pytest.raises(StoreError, match=field):
        RunStore(p)


def test_disk_full_surfaces_the_real_error(tmp_path):
    """SQLite rolls back by itself on SQLITE_FULL; the store must not hide that under a failing ROLLBACK."""
    db = tmp_path / "s.db"
    with RunStore(db) as st:
        rid = st.create_run("a", run_id="a")
        pages = st._query("PRAGMA page_count")[0][0]
        st._conn.execute(f"PRAGMA max_page_count={pages + 1}")
        rows = [(s, None, 0.0, "loss", float(s), None) for s in range(20000)]
        with pytest.raises(StoreError, match="database or disk is full"):
            st.log_rows(rid, rows)
        assert not st._conn.in_transaction
        assert st.metrics(rid).empty  # nothing half-written
        st._conn.execute("PRAGMA max_page_count=1073741823")
        st.log(rid, 0, {"loss": 1.0})  # and the store works again once there is room
        assert len(st.metrics(rid)) == 1


@pytest.mark.parametrize("kw, field", [
    ({"step": 2**70}, "step"), ({"step": -1}, "step"), ({"step": 1.5}, "step"), ({"step": True}, "step"),
    ({"step": 1, "tokens": 2**70}, "tokens"), ({"step": 1, "tokens": -3}, "tokens"),
    ({"step": 1, "tokens": 1.5}, "tokens"), ({"step": 1, "tokens": float("nan")}, "tokens"),
])
def test_log_refuses_out_of_range_steps_and_tokens(tmp_path, kw, field):
    with RunStore(tmp_path / "s.db") as st:
        rid = st.create_run("a")
        with pytest.raises(StoreError, match=field):
            st.log(rid, metrics={"loss": 1.0}, **kw)
        assert st.metrics(rid).empty
