"""The run store: round trips, cursor tailing, bad input, concurrency and SIGKILL durability."""

from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench import __version__
from workbench.store import STATUSES, RunStore, StoreError, UnknownRunError, to_wide


def test_run_record_round_trip(store: RunStore) -> None:
    cfg = {"task": {"name": "grokking", "p": 113}, "lr": 1e-3, "betas": [0.9, 0.98]}
    rid = store.create_run("nanda", task="grokking", config=cfg, sweep=None, device="cpu")
    rec = store.get_run(rid)
    assert rec["config"] == cfg
    assert (rec["name"], rec["task"], rec["status"], rec["device"]) == ("nanda", "grokking", "running", "cpu")
    assert rec["version"] == __version__
    assert rec["finished"] is None or math.isnan(rec["finished"])
    store.set_status(rid, "finished")
    rec = store.get_run(rid)
    assert rec["status"] == "finished" and rec["finished"] >= rec["created"]


def test_metrics_long_and_wide(store: RunStore) -> None:
    a = store.create_run("a", config={"lr": 1e-3, "seed": 0})
    b = store.create_run("b", config={"lr": 3e-3, "seed": 0})
    with store.writer(a, every_rows=10_000, every_seconds=1e9) as w:
        for step in range(5):
            w.log(step, {"train_loss": 1.0 / (step + 1), "test_loss": 2.0 / (step + 1)}, tokens=step * 64)
        assert store.metrics(a).empty  # buffered, not yet committed
    store.log(b, 0, {"train_loss": 9.0})
    long = store.metrics([a, b])
    assert len(long) == 11
    assert set(long.columns) >= {"run", "step", "tokens", "wall", "name", "value"}
    wide = store.metrics([a, b], wide=True)
    assert len(wide) == 6
    row = wide[(wide.run == a) & (wide.step == 3)].iloc[0]
    assert row["train_loss"] == pytest.approx(0.25) and row["test_loss"] == pytest.approx(0.5)
    assert row["tokens"] == 192
    assert math.isnan(wide[wide.run == b].iloc[0]["test_loss"])
    only = store.metrics(a, names=["test_loss"])
    assert set(only["name"]) == {"test_loss"}
    # wide form equals a direct pivot of the long form
    direct = long.pivot_table(index=["run", "step"], columns="name", values="value").reset_index()
    pd.testing.assert_frame_equal(to_wide(long)[direct.columns].reset_index(drop=True), direct,
                                  check_names=False)


def test_multi_run_writer_one_transaction(store: RunStore) -> None:
    ids = [store.create_run(f"m{i}") for i in range(4)]
    with store.writer(ids, every_rows=10**6, every_seconds=1e9) as w:
        for i, rid in enumerate(ids):
            w.log(0, {"loss": float(i)}, run=rid)
        with pytest.raises(StoreError, match="name the run"):
            w.log(1, {"loss": 0.0})
    df = store.metrics(ids)
    assert df.groupby("run")["value"].first().to_dict() == {rid: float(i) for i, rid in enumerate(ids)}


def test_sweep_queries(store: RunStore) -> None:
    sid = store.create_sweep("lr-grid", {"axes": {"lr": [1e-3, 3e-3]}})
    ids = [store.create_run(f"lr{lr}", sweep=sid, config={"lr": lr, "opt": {"name": "adamw"}}) for lr in (1e-3, 3e-3)]
    store.create_run("other")
    runs = store.runs(sweep=sid, expand_config=True)
    assert runs["id"].tolist() == ids
    assert runs["cfg.lr"].tolist() == [1e-3, 3e-3] and runs["cfg.opt.name"].tolist() == ["adamw", "adamw"]
    for i, rid in enumerate(ids):
        store.log(rid, 10, {"final_loss": float(i)})
    assert len(store.sweep_metrics(sid)) == 2
    assert store.get_sweep(sid)["spec"] == {"axes": {"lr": [1e-3, 3e-3]}}


def test_non_finite_values_are_kept_not_dropped(store: RunStore) -> None:
    rid = store.create_run("div")
    store.log(rid, 0, {"loss": float("nan"), "g": float("inf"), "h": -math.inf, "ok": 1.5})
    got = store.metrics(rid).set_index("name")["value"]
    assert math.isnan(got["loss"]) and got["g"] == math.inf and got["h"] == -math.inf and got["ok"] == 1.5



def test_series_equals_the_long_form(store: RunStore) -> None:
    rid = store.create_run("s")
    vals = [1.0, float("nan"), 2.5, float("inf"), -math.inf, 0.25]
    for i, v in enumerate(vals):
        store.log(rid, i * 3, {"loss": v, "other": float(i)}, tokens=None if i % 2 else 10 * i)
    d = store.series(rid, "loss")
    long = store.metrics(rid, "loss")
    np.testing.assert_array_equal(d["id"], long["id"].to_numpy(float))
    np.testing.assert_array_equal(d["step"], long["step"].to_numpy(float))
    np.testing.assert_array_equal(d["value"], long["value"].to_numpy(float))  # NaN == NaN here
    np.testing.assert_array_equal(d["tokens"], long["tokens"].to_numpy(float))
    assert store.series(rid, "absent")["value"].size == 0

@pytest.mark.parametrize(
    "call, match",
    [
        (lambda s, r: s.log("nope", 0, {"x": 1.0}), "no such run"),
        (lambda s, r: s.log(r, -1, {"x": 1.0}), "step"),
        (lambda s, r: s.log(r, 0, {"x": "abc"}), "metric 'x'"),
        (lambda s, r: s.log(r, 0, {}), "metrics"),
        (lambda s, r: s.create_run("x", config={"f": object()}), "config"),
        (lambda s, r: s.create_run("x", config=[1, 2]), "config"),
        (lambda s, r: s.create_run("x", config={"lr": float("nan")}), "config"),
        (lambda s, r: s.set_status(r, "done"), "status"),
        (lambda s, r: s.create_run("x", run_id=r), "already exists"),
        (lambda s, r: s.get_run("missing"), "no such run"),
        (lambda s, r: s.export("out.txt"), r"\.csv or \.parquet"),
        (lambda s, r: s.writer(r, every_rows=0), "every_rows"),
    ],
)
def test_bad_input_gets_clear_error(store: RunStore, call, match: str) -> None:
    rid = store.create_run("r")
    with pytest.raises((StoreError, UnknownRunError), match=match):
        call(store, rid)


def test_tail_cursor_returns_each_row_once(store: RunStore) -> None:
    rid = store.create_run("t")
    seen: list[int] = []
    cursor = 0
    for step in range(20):
        store.log(rid, step, {"a": step, "b": -step})
        if step % 3 == 0:
            df, cursor = store.tail(cursor, runs=[rid])
            seen += df["id"].tolist()
    df, cursor = store.tail(cursor)
    seen += df["id"].tolist()
    assert len(seen) == len(set(seen)) == 40
    assert seen == sorted(seen)
    assert cursor == store.cursor()
    assert store.tail(cursor)[0].empty


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_export_import_round_trip(store: RunStore, tmp_path: Path, ext: str) -> None:
    sid = store.create_sweep("s")
    a = store.create_run("a", task="lm", config={"lr": 1e-3, "sched": {"name": "cosine"}}, sweep=sid)
    b = store.create_run("b", task="lm", config={"lr": 2e-3})
    store.log(a, 0, {"loss": 3.0, "bad": float("nan")}, tokens=100)
    store.log(a, 1, {"loss": 2.5, "bad": float("inf")}, tokens=200)
    store.set_status(a, "diverged", error="loss went NaN at step 0")
    store.set_status(b, "finished")  # b has no metrics: still exported
    path = store.export(tmp_path / f"runs.{ext}")
    other = RunStore(tmp_path / "other.db")
    assert sorted(other.import_file(path)) == sorted([a, b])
    for rid in (a, b):
        x, y = store.get_run(rid), other.get_run(rid)
        for k in ("name", "task", "config", "status", "sweep", "error", "version"):
            assert x[k] == y[k] or (pd.isna(x[k]) and pd.isna(y[k])), k
    m1 = store.metrics(a).drop(columns="id")
    m2 = other.metrics(a).drop(columns="id")
    pd.testing.assert_frame_equal(m1.reset_index(drop=True), m2.reset_index(drop=True), check_dtype=False)
    with pytest.raises(StoreError, match="already exists"):
        other.import_file(path)
    assert other.import_file(path, on_conflict="skip") == []
    assert sorted(other.import_file(path, on_conflict="replace")) == sorted([a, b])
    assert len(other.metrics(a)) == 4  # replaced, not duplicated


@pytest.mark.parametrize("col, v, msg", [("step", 2.5, "integer"), ("step", -1, "integer"), ("tokens", "many", "integer"),
                                          ("wall", float("inf"), "finite"), ("wall", "noon", "real number"),
                                          ("value", "high", "nan and inf allowed")])
def test_import_number_validator(store: RunStore, tmp_path: Path, col: str, v: object, msg: str) -> None:
    # one number validator for every numeric cell: whole numbers, finite reals, metric values (nan/inf kept)
    a = store.create_run("a", task="lm", config={})
    store.log(a, 3, {"loss": float("nan")}, tokens=100)
    df = pd.read_csv(store.export(tmp_path / "ok.csv"))
    other = RunStore(tmp_path / "other.db")
    df2 = df.astype(object)
    df2.loc[0, col] = v
    bad = tmp_path / "bad.csv"
    df2.to_csv(bad, index=False)
    with pytest.raises(StoreError, match=f"{col}: must be .*{msg}"):
        other.import_file(bad)
    assert other.import_file(tmp_path / "ok.csv") == [a]
    assert np.isnan(other.metrics(a)["value"].iloc[0])


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_tags_and_notes_round_trip_through_export(store: RunStore, tmp_path: Path, ext: str) -> None:
    """Tags and notes travel with an export (``run_tags``, ``run_note``) and come back on import; a replace
    import replaces them; a file without the columns leaves a store's tags alone; a bad tag is refused."""
    a = store.create_run("a", task="lm", config={"lr": 1e-3})
    b = store.create_run("b", task="lm", config={"lr": 2e-3})
    store.log(a, 0, {"loss": 3.0})
    store.set_tags(a, ["baseline", "paper fig 2"])
    store.set_note(a, "diverged once at\nstep 40; rerun with \"warmup\" = 100")
    path = store.export(tmp_path / f"runs.{ext}")
    other = RunStore(tmp_path / "other.db")
    other.import_file(path)
    ann = other.annotations().set_index("run")
    assert ann.loc[a, "tags"] == ["baseline", "paper fig 2"] and ann.loc[a, "note"] == store.annotations()["note"][0]
    assert b not in ann.index  # no tags and no note: nothing stored
    other.set_tags(a, ["changed"])
    other.import_file(path, on_conflict="replace")
    assert other.annotations().set_index("run").loc[a, "tags"] == ["baseline", "paper fig 2"]
    df = pd.read_csv(path) if ext == "csv" else pd.read_parquet(path)
    plain = tmp_path / f"plain.{ext}"
    old = df.drop(columns=["run_tags", "run_note"])
    old.to_csv(plain, index=False) if ext == "csv" else old.to_parquet(plain)
    other.set_tags(a, ["kept"])
    other.import_file(plain, on_conflict="replace")
    assert other.annotations().set_index("run").loc[a, "tags"] == ["kept"]
    bad = df.astype(object)
    bad.loc[0, "run_tags"] = '["x,y"]'
    bad_path = tmp_path / f"bad.{ext}"
    bad.to_csv(bad_path, index=False) if ext == "csv" else bad.to_parquet(bad_path)
    with pytest.raises(StoreError, match="run_tags: must be a JSON list"):
        RunStore(tmp_path / "third.db").import_file(bad_path)


def test_import_rejects_foreign_file(store: RunStore, tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    pd.DataFrame({"a": [1]}).to_csv(p, index=False)
    with pytest.raises(StoreError, match="not a workbench export"):
        store.import_file(p)


def test_artifacts(store: RunStore, tmp_path: Path) -> None:
    rid = store.create_run("a")
    store.add_artifact(rid, "checkpoint", tmp_path / "step100.pt", {"step": 100})
    store.add_artifact(rid, "figure", tmp_path / "loss.png")
    df = store.artifacts(rid, kind="checkpoint")
    assert df["meta"].tolist() == [{"step": 100}] and df["path"].iloc[0].endswith("step100.pt")
    store.delete_run(rid)
    with pytest.raises(UnknownRunError):
        store.artifacts(rid)
    assert store.artifacts().empty


def test_status_values_are_the_documented_ones() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if "status `running`" in ln)
    documented = set(re.findall(r"`(\w+)`", line[line.index("status"):]))
    assert set(STATUSES) <= documented | set(re.findall(r"`(\w+)`", readme.split(line)[1][:200])), STATUSES


def test_reader_never_blocks_writer(tmp_path: Path) -> None:
    """A reader holding an open read transaction (a snapshot) does not stop commits (WAL)."""
    path = tmp_path / "wal.db"
    w = RunStore(path, timeout=1.0)
    rid = w.create_run("w")
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    before = reader.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    t0 = time.monotonic()
    for step in range(50):
        w.log(rid, step, {"x": step})
    assert time.monotonic() - t0 < 1.0
    # the open snapshot still sees the old state; a new read sees everything
    assert reader.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == before
    reader.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 50
    assert w._query("PRAGMA journal_mode")[0][0] == "wal"


def test_threads_share_one_store(store: RunStore) -> None:
    ids = [store.create_run(f"t{i}") for i in range(4)]

    def work(rid: str) -> None:
        for step in range(100):
            store.log(rid, step, {"v": float(step)})

    threads = [threading.Thread(target=work, args=(r,)) for r in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = store.metrics(ids).groupby("run").size()
    assert (counts == 100).all()


WRITER = textwrap.dedent(
    """
    import sys, time
    from workbench.store import RunStore
    store = RunStore(sys.argv[1])
    rid = store.create_run("victim", task="kill-test", config={"batch": 50})
    print("RUN", rid, flush=True)
    step = 0
    with store.writer(rid, every_rows=100, every_seconds=1e9) as w:
        while True:
            w.log(step, {"a": float(step), "b": float(-step)})  # 2 rows a step, commit every 50 steps
            step += 1
            if step % 50 == 0:
                print("COMMITTED", w.rows_written, flush=True)
    """
)


def _spawn_writer(path: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    assert line[0] == "RUN", line
    return proc, line[1]


@pytest.mark.parametrize("attempt", range(20))
def test_sigkill_writer_loses_nothing_committed(tmp_path: Path, attempt: int) -> None:
    """A writer killed with SIGKILL mid-stream while a reader tails: every commit the writer reported
    is there, the database is intact, each transaction is whole, and the run becomes `interrupted`."""
    path = tmp_path / "kill.db"
    proc, rid = _spawn_writer(path)
    reader = RunStore(path, mark_interrupted=False)
    rng = np.random.default_rng(attempt)
    deadline = time.monotonic() + rng.uniform(0.3, 1.0)
    tailed: list[int] = []
    cursor = 0
    while time.monotonic() < deadline:
        df, cursor = reader.tail(cursor, runs=[rid])
        tailed += df["id"].tolist()
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # the kill can cut the last line short: count only whole "COMMITTED <n>" lines
    whole = [ln.split() for ln in out.splitlines()]
    reported = max([int(w[1]) for w in whole if len(w) == 2 and w[0] == "COMMITTED" and w[1].isdigit()], default=0)

    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    after = RunStore(path)  # the next open marks the dead writer's run
    assert after.get_run(rid)["status"] == "interrupted"
    m = after.metrics(rid)
    n = len(m)
    assert n >= reported > 0 or n >= reported == 0
    assert n % 100 == 0, "a transaction was torn"
    # every row the reader saw is still there, rows are whole steps, no step duplicated
    assert set(tailed) <= set(m["id"])
    wide = after.metrics(rid, wide=True)
    assert wide["step"].tolist() == list(range(len(wide)))
    np.testing.assert_array_equal(wide["a"].to_numpy(), -wide["b"].to_numpy())
    reader.close()
    after.close()


def test_live_writer_is_not_marked_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    proc, rid = _spawn_writer(path)
    try:
        other = RunStore(path)
        assert other.get_run(rid)["status"] == "running"
    finally:
        proc.kill()
        proc.communicate()


def test_claim_takes_over_an_interrupted_run(tmp_path: Path) -> None:
    path = tmp_path / "claim.db"
    proc, rid = _spawn_writer(path)
    proc.kill()
    proc.communicate()
    s = RunStore(path)
    assert s.get_run(rid)["status"] == "interrupted"
    s.claim(rid)
    assert s.get_run(rid)["status"] == "running"
    assert s.get_run(rid)["pid"] == os.getpid()
    assert RunStore(path).get_run(rid)["status"] == "running"  # this process is alive


def test_delete_metrics_from_step(store: RunStore) -> None:
    a, b = store.create_run("a"), store.create_run("b")
    for step in range(10):
        store.log(a, step, {"x": step})
        store.log(b, step, {"x": step})
    assert store.delete_metrics([a], from_step=6) == 4
    assert store.metrics(a)["step"].max() == 5 and len(store.metrics(b)) == 10
    with pytest.raises(StoreError, match="from_step"):
        store.delete_metrics(a, from_step=-1)


# ------------------------------------------------------------------ block summaries and read paths
def _overview_buckets(store, rid, name, max_buckets):
    from workbench.curves import MinMaxBuckets

    ov, cursor = store.overview([(rid, name)], max_buckets=max_buckets)
    o = ov[(rid, name)]
    if "rows" in o:
        r = o["rows"]
        return MinMaxBuckets.from_points(r["step"], r["value"], r["tokens"], r["wall"], max_buckets=max_buckets), cursor
    return MinMaxBuckets.from_buckets(o["width"], o["b"], o["cols"], max_buckets=max_buckets, last=o["last"],
                                      first_wall=o["first_wall"]), cursor


def test_overview_equals_summarising_the_rows(tmp_path) -> None:
    from workbench.curves import BUCKET_COLS, MinMaxBuckets

    s = RunStore(tmp_path / "s.db")
    rng = np.random.default_rng(0)
    a, b = s.create_run("a"), s.create_run("b")
    n = 40_000
    v = rng.normal(size=n)
    v[[10, 20_000]] = [np.nan, -np.inf]
    with s.writer([a, b], every_rows=3_000) as w:  # two runs' rows interleaved in each transaction
        for st in range(n):
            w.log(st, {"loss": v[st]}, run=a, tokens=8 * st)
            if st % 3 == 0:
                w.log(st, {"loss": 1.0 + v[st]}, run=b)
    got, cursor = _overview_buckets(s, a, "loss", 300)
    assert cursor == s.cursor()
    ref = MinMaxBuckets.from_points(np.arange(n), v, 8.0 * np.arange(n), max_buckets=300)
    assert got.width == ref.width >= 128
    np.testing.assert_array_equal(got.b, ref.b)
    for col in BUCKET_COLS:
        if col.endswith("wall"):
            continue
        np.testing.assert_allclose(got.c[col], ref.c[col], rtol=1e-12, equal_nan=True, err_msg=col)
    assert got.last[0] == n - 1 and got.last[3] == v[-1]
    # rows deleted from a step on (a resumed run) leave the summary as if they had never been written
    s.delete_metrics(a, from_step=30_000)
    got, _ = _overview_buckets(s, a, "loss", 300)
    ref = MinMaxBuckets.from_points(np.arange(30_000), v[:30_000], max_buckets=300)
    np.testing.assert_array_equal(got.c["hi_step"], ref.c["hi_step"])
    np.testing.assert_array_equal(got.c["n"], ref.c["n"])
    s.delete_run(b)
    assert s._query("SELECT COUNT(*) FROM metric_blocks WHERE run=?", (b,))[0][0] == 0


def test_series_ends_equal_a_recomputation_from_the_rows(tmp_path) -> None:
    """series_ends (block summaries + one index lookup per end) against pandas over every row: several
    blocks, NaN/inf (stored as NULL with a flag), a step logged out of order and one logged twice, rows
    deleted from a step on, a name filter, and a series that is only non-finite."""
    s = RunStore(tmp_path / "e.db")
    rng = np.random.default_rng(3)
    a, b = s.create_run("a"), s.create_run("b")
    v = rng.normal(size=1_000)
    v[[5, 700]] = [np.inf, np.nan]
    for st in range(1_000):
        s.log(a, st, {"loss": v[st], "acc": float(st % 7)})
    s.log(a, 999, {"loss": 4.5})         # the last step logged twice: the later row is the final one
    s.log(a, 500, {"loss": -9.0})        # committed last, out of order: the lowest value, not the final one
    s.log(b, 3, {"loss": math.nan})
    s.log(b, 10, {"acc": 1.0})
    s.log(b, 12, {"loss": -math.inf})    # b's loss has no finite value: lo = hi = NaN
    s.delete_metrics(b, from_step=11)
    s.log(b, 11, {"acc": 0.5})

    def check(names=None) -> None:
        got = s.series_ends([a, b], names).set_index(["run", "name"])
        m = s.metrics([a, b])
        if names is not None:
            m = m[m["name"].isin(names)]
        assert len(got) == m.groupby(["run", "name"]).ngroups
        for (run, name), g in m.groupby(["run", "name"]):
            r = got.loc[(run, name)]
            g = g.sort_values(["step", "id"])
            fin = g["value"][np.isfinite(g["value"])]
            assert r["n"] == len(g)
            np.testing.assert_equal([r["lo"], r["hi"]], [fin.min(), fin.max()] if len(fin) else [np.nan, np.nan])
            assert (r["first_step"], r["last_step"]) == (g["step"].iloc[0], g["step"].iloc[-1])
            assert (r["first_wall"], r["last_wall"]) == (g["wall"].iloc[0], g["wall"].iloc[-1])
            np.testing.assert_equal(r["last_value"], g["value"].iloc[-1])

    check()
    check(["acc"])
    assert s.series_ends([a, b], []).empty and s.series_ends([]).empty
    ends = s.series_ends([a]).set_index("name")
    assert ends.at["loss", "lo"] == -9.0 and ends.at["loss", "last_value"] == 4.5
    assert ends.at["loss", "n"] == 1_002


def test_writer_block_summaries_equal_the_sql_rebuild(tmp_path) -> None:
    """The writer folds each window into metric_blocks with numpy (one upsert); the three SQL passes of
    the rebuild are the independent reference. Windows of several runs and metrics, steps out of order
    and repeated, ties of the extremes, NaN/inf values (stored as NULL with a flag), tokens missing."""
    s = RunStore(tmp_path / "b.db")
    runs = [s.create_run(f"r{i}") for i in range(3)]
    rng = np.random.default_rng(7)
    for w in range(25):
        rows = []
        for _ in range(int(rng.integers(1, 400))):
            step = int(rng.integers(0, 1200)) if rng.random() < 0.2 else w * 40 + int(rng.integers(0, 60))
            value = float(rng.integers(0, 3)) if rng.random() < 0.97 else float(rng.normal())  # ties at the extremes
            if rng.random() < 0.05:
                value = float(rng.choice([np.nan, np.inf, -np.inf]))
            tokens = None if rng.random() < 0.3 else step * 16
            rows.append((str(rng.choice(runs)), step, tokens, float(rng.random()), str(rng.choice(["a", "b/c"])),
                         value))
        s.log_many(rows)
    # windows touching hundreds of blocks: the writer's multi-row upsert (MULTI_ROWS blocks a statement),
    # into blocks the windows above already hold
    for w in range(2):
        s.log_many([(str(rng.choice(runs)), int(rng.integers(0, 40000)), None, float(w), str(rng.choice(["a", "b/c"])),
                     float(rng.integers(0, 3))) for _ in range(3000)])
    cols = "run, name, block, n, k, lo, lo_step, lo_tokens, lo_wall, hi, hi_step, hi_tokens, hi_wall, nf_step"
    got = s._query(f"SELECT {cols}, sum FROM metric_blocks ORDER BY run, name, block")
    with s._write() as conn:
        __import__("workbench.store", fromlist=["_rebuild_blocks"])._rebuild_blocks(conn)
    ref = s._query(f"SELECT {cols}, sum FROM metric_blocks ORDER BY run, name, block")
    assert len(got) == len(ref) > 50
    assert [g[:-1] for g in got] == [r[:-1] for r in ref]
    np.testing.assert_allclose([g[-1] for g in got], [r[-1] for r in ref], rtol=1e-12, atol=1e-12)
    assert any(r[4] < r[3] for r in ref) and any(r[13] is not None for r in ref)  # the non-finite cases ran


def test_a_window_is_inserted_in_its_rows_order(tmp_path) -> None:
    # the writer inserts MULTI_ROWS rows a statement and the rest one by one: ids must follow the rows' order
    from workbench.store import MULTI_ROWS

    s = RunStore(tmp_path / "o.db")
    rid = s.create_run("r")
    n = 3 * MULTI_ROWS + 5
    steps = np.random.default_rng(3).permutation(n)
    s.log_many([(rid, int(st), None, float(i), "loss", float(i)) for i, st in enumerate(steps)])
    m = s.metrics(rid)                                       # in id order
    assert m["value"].tolist() == [float(i) for i in range(n)] and m["step"].tolist() == steps.tolist()
    assert m["wall"].tolist() == m["value"].tolist() and m["id"].is_monotonic_increasing


def test_metric_columns_round_trip_and_index_order() -> None:
    # the sink hands the writer columns; merged windows are put back in (run, name, step) groups
    from workbench.store import MetricColumns

    rows = [("b", 2, None, 1.0, "x", 0.5, None), ("a", 1, 16, None, "y", None, "nan"),
            ("b", 1, None, 2.0, "x", 1.5, None), ("b", 2, None, 3.0, "x", 2.5, None)]
    c = MetricColumns.from_rows(rows)
    assert len(c) == 4 and list(c) == rows
    # grouped by series, steps ascending; the (b, x, 2) logged twice keeps its order (the later one wins)
    assert list(c.in_index_order()) == [rows[2], rows[0], rows[3], rows[1]]
    assert list(MetricColumns.concat([c, MetricColumns.from_rows(rows[:1])])) == rows + rows[:1]


def test_imported_runs_have_block_summaries_and_old_imports_still_paint(tmp_path) -> None:
    # the monitor's first paint reads metric_blocks: an imported run without them showed 0 points
    from workbench.curves import MinMaxBuckets

    src = RunStore(tmp_path / "src.db")
    rid = src.create_run("r")
    v = np.sin(np.arange(3000) / 50)
    src.log_rows(rid, [(st, None, 1.0 * st, "loss", float(v[st]), None) for st in range(3000)])
    path = src.export(tmp_path / "runs.csv")
    dst = RunStore(tmp_path / "dst.db")
    dst.import_file(path)
    blocks = dst._query("SELECT SUM(n), MAX(hi) FROM metric_blocks WHERE run=? AND name='loss'", (rid,))
    assert blocks == src._query("SELECT SUM(n), MAX(hi) FROM metric_blocks WHERE run=? AND name='loss'", (rid,))
    assert blocks[0][0] == 3000
    dst.import_file(path, on_conflict="replace")  # replaced: summarised once, not twice
    assert dst._query("SELECT SUM(n) FROM metric_blocks WHERE run=?", (rid,))[0][0] == 3000
    # a store imported before import_file kept summaries: the overview reads the rows instead of nothing
    dst._conn.execute("DELETE FROM metric_blocks")
    ov, _ = dst.overview([(rid, "loss")], max_buckets=100)
    got = ov[(rid, "loss")]
    assert got["n"] == 3000
    b = MinMaxBuckets.from_points(got["rows"]["step"], got["rows"]["value"], max_buckets=100)
    assert b.n == 3000 and b.c["hi"].max() == v.max()


def test_store_at_schema_1_gets_block_summaries_on_open(tmp_path) -> None:
    import workbench.store as S

    path = tmp_path / "old.db"
    s = RunStore(path)
    rid = s.create_run("old")
    s.log_rows(rid, [(st, None, 0.0, "loss", float(st % 17), None) for st in range(5000)])
    s._conn.execute("DROP TABLE metric_blocks")  # as written by schema 1, before the summaries existed
    s._conn.execute("PRAGMA user_version=1")
    s.close()
    s = RunStore(path)
    assert s.schema_version() == S.SCHEMA_VERSION >= 2 and s.backup_path.exists()
    (n, hi), = s._query("SELECT SUM(n), MAX(hi) FROM metric_blocks WHERE run=?", (rid,))
    assert (n, hi) == (5000, 16.0)
    assert len(s.series(rid, "loss")["step"]) == 5000


def test_tail_series_overview_read_through_indexes(store) -> None:
    """The live read paths touch only the rows they return (O(new rows)), whatever the store holds:
    the tail seeks the primary key, a series (or a step range of it) the (run, name, step) index, the
    overview the block summary's primary key."""
    plans = {
        "tail": "SELECT id, run, step, tokens, wall, name, value, flag FROM metrics WHERE id > ? ORDER BY id LIMIT 10",
        "series": "SELECT id, step FROM metrics WHERE run = ? AND name = ? AND step >= ? AND step <= ? ORDER BY id",
        "overview": "SELECT block, n FROM metric_blocks WHERE run=? AND name=? ORDER BY block",
    }
    args = {"tail": (0,), "series": ("r", "n", 0, 10), "overview": ("r", "n")}
    for k, sql in plans.items():
        plan = " ".join(r[3] for r in store._query("EXPLAIN QUERY PLAN " + sql, args[k]))
        assert "SEARCH" in plan and "SCAN" not in plan, (k, plan)
    for sql in __import__("workbench.store", fromlist=["_BLOCKS_UPSERT"])._BLOCKS_UPSERT:
        select = sql.split("SELECT", 1)[1].split("ON CONFLICT")[0]
        plan = " ".join(r[3] for r in store._query("EXPLAIN QUERY PLAN SELECT" + select, (0,)))
        assert "INTEGER PRIMARY KEY (rowid>?)" in plan, plan  # only the rows just written


def test_overview_cache_gives_the_uncached_read(tmp_path) -> None:
    """overview's process-wide cache of complete buckets (workbench.summary_cache) against a read without it,
    on both read paths (blocks merged here / grouped in SQL), after: appends (a hit: only new blocks are
    read), a row logged late into an old block, rows deleted and logged again with other wall times, a run
    replaced by an import, and a second RunStore on the same file (which shares the cache)."""
    from workbench.summary_cache import CACHE

    path = tmp_path / "c.db"
    s = RunStore(path)
    a, b = s.create_run("a"), s.create_run("b")
    rng = np.random.default_rng(5)

    def log(run, steps, shift=0.0):
        for st in steps:
            s.log(run, int(st), {"loss": float(rng.normal()) + shift, "acc": float(st % 5)}, tokens=4 * int(st))

    log(a, range(0, 5_000, 2))
    log(b, range(0, 5_000, 3), 1.0)
    pairs = [(r, m) for r in (a, b) for m in ("loss", "acc")]

    def same(store=s) -> None:
        for mb in (30, 8):  # 30: the blocks merged here (k = 1); 8: grouped in SQL (k = 3)
            got, c1 = store.overview(pairs, max_buckets=mb)
            ref, c2 = store.overview(pairs, max_buckets=mb, cache=False)
            assert c1 == c2
            for key in pairs:
                g, r = got[key], ref[key]
                assert "rows" not in g and (g["width"], g["n"], g["last"]) == (r["width"], r["n"], r["last"])
                np.testing.assert_array_equal(g["b"], r["b"])
                for col in r["cols"]:
                    np.testing.assert_array_equal(g["cols"][col], r["cols"][col], err_msg=f"{key} {mb} {col}")

    CACHE.clear()
    same()                                   # fills the cache
    assert len(CACHE) == 2 * len(pairs)
    hits = CACHE.hits
    log(a, range(5_000, 6_000, 2))           # appends: the cached buckets are reused
    same()
    assert CACHE.hits >= hits + 2 * len(pairs)
    s.log(a, 131, {"loss": -50.0})           # logged late into an old block: a new minimum there
    same()
    s.delete_metrics(b, from_step=1_000)     # a resumed run: rows deleted, then logged again
    log(b, range(1_002, 5_000, 3), 1.0)
    same()
    exported = s.export(tmp_path / "a.parquet", [a])
    s.log(a, 6_001, {"loss": 0.5})
    s.import_file(exported, on_conflict="replace")
    same()
    other = RunStore(path)                   # another store object on the same file: the same entries
    hits = CACHE.hits
    same(other)
    assert CACHE.hits > hits
    assert RunStore(":memory:")._store_uid() == ""  # no cache for an in-memory store
