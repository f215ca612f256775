"""The training sink's store writes (workbench/train/sink.py): rows built with numpy equal a plain
per-value reference, a window's rows are committed before a member's status changes, forced syncs
return only once everything is committed, the writer thread's errors reach the training thread and
mark the run failed, the queue is bounded, large windows share a transaction, and a SIGKILL keeps every committed window whole."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.store import RunStore, StoreError
from workbench.train import TrainConfig, train_batched
from workbench.train.sink import Sink, WindowCommitter

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TPS = 7  # tokens per step
NAMES = ["train_loss", "test_loss", "train_acc", "lr", "grad_norm"]
SMALL = dict(task="digits", task_params={"n_train": 200}, model="mlp", model_params={"hidden": []}, loss="mse",
             optimizer="sgd", lr=0.05, device="cpu", batch_size=32)


def _store(tmp_path: Path, n: int) -> tuple[RunStore, list[str]]:
    store = RunStore(tmp_path / "sink.db")
    return store, [store.create_run(f"m{i}", run_id=f"m{i}") for i in range(n)]


def _script(seed: int, n: int, steps: int) -> list[tuple[int, dict[str, torch.Tensor], list[int] | None]]:
    """Log points: random values with NaN / inf in non-loss metrics, some points for a subset of the
    members, one (step, name) logged twice (the later value wins), and member 2's loss going NaN."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(steps):
        v = rng.normal(size=(len(NAMES), n)).astype(np.float32)
        v[3, rng.integers(n)] = [np.nan, np.inf, -np.inf][s % 3]
        if s == 9:
            v[0, 2] = np.nan
        out.append((s, {k: torch.from_numpy(v[j]) for j, k in enumerate(NAMES)}, None))
        if s % 4 == 3:   # an extra metric for two members only, and a repeat of lr for member 0
            out.append((s, {"extra": torch.from_numpy(rng.normal(size=n).astype(np.float32)),
                            "lr": torch.full((n,), 0.5)}, [0, 1]))
    return out


def _reference(script: list, n: int, sync_every: int) -> tuple[list, dict, set[int]]:
    """What the store should hold, per value in plain Python: rows (member, step, name, value) (within a
    window a (step, name) logged twice keeps the later value), the final dicts, and the diverged members
    (their rows stop after the window where their loss went non-finite)."""
    rows: list = []
    final: dict = {i: {} for i in range(n)}
    dead: set[int] = set()
    windows = [script[i:i + sync_every] for i in range(0, len(script), sync_every)]
    for win in windows:
        seen: dict = {i: {} for i in range(n)}
        for step, d, members in win:
            for i in range(n) if members is None else members:
                for k, t in d.items():
                    seen[i].setdefault(step, {})[k] = float(t[i])
        for i in range(n):
            if i in dead:
                continue
            for step in sorted(seen[i]):
                rows += [(i, step, k, x) for k, x in seen[i][step].items()]
                final[i].update(seen[i][step])
                final[i]["step"] = step
            if any(k.endswith("loss") and not math.isfinite(x) for d in seen[i].values() for k, x in d.items()):
                dead.add(i)
                last = max(seen[i])
                rows.append((i, last, "diverged", 1.0))
                final[i]["diverged"] = 1.0
    return rows, final, dead


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("sync_every", [1, 3, 50])
def test_rows_equal_a_per_value_reference(tmp_path, sync_every):
    n = 4
    store, ids = _store(tmp_path, n)
    script = _script(sync_every, n, 16)
    cfg = TrainConfig(task="digits", steps=16, sync_every=sync_every)  # the sink reads no other field
    sink = Sink(cfg, store, ids, TPS)
    alive = torch.ones(n, dtype=torch.bool)
    for step, d, members in script:
        sink.log(step, d, alive, step + 1, members=members)
    sink.sync(alive, 16, force=True)
    sink.close()
    want, final, dead = _reference(script, n, sync_every)
    m = store.metrics(ids)
    got = [(ids.index(r), int(s), k, x) for r, s, k, x in zip(m["run"], m["step"], m["name"], m["value"])]
    assert sorted(map(repr, got)) == sorted(map(repr, want))   # repr: nan == nan
    assert (m["tokens"] == m["step"] * TPS).all()
    for i in range(n):
        assert sink.final[i].keys() == final[i].keys() and all(_same(sink.final[i][k], final[i][k]) for k in final[i])
    assert dead == {2} and sink.dead == [i in dead for i in range(n)]
    assert [store.get_run(r)["status"] for r in ids] == ["running", "running", "diverged", "running"]
    last = max(step for i, step, k, x in want if i == 2)
    assert last >= 9
    assert store.get_run(ids[2])["error"] == f"loss not finite at step <= {last}"


def _slow_inserts(store: RunStore, monkeypatch, delay: float = 0.02) -> list:
    """Make every commit slow (a slow disk), so windows wait in the writer's queue."""
    calls = []
    insert = store._insert

    def slow(rows):
        time.sleep(delay)
        insert(rows)
        calls.append(len(rows))

    monkeypatch.setattr(store, "_insert", slow)
    return calls


def test_a_status_change_comes_after_every_row_of_its_window(tmp_path, monkeypatch):
    """A ragged stack with a diverging member, on a slow store: at the moment any member's status
    changes (diverged, finished), every row it will ever have is committed."""
    store = RunStore(tmp_path / "order.db")
    _slow_inserts(store, monkeypatch)
    rows_at_status: dict[str, list[int]] = {}
    set_status = store.set_status

    def spy(run_id, status, **kw):
        rows_at_status.setdefault(run_id, []).append(len(store.metrics(run_id)))
        set_status(run_id, status, **kw)

    monkeypatch.setattr(store, "set_status", spy)
    base = TrainConfig.from_dict({**SMALL, "steps": 30, "log_every": 1, "eval_every": 5, "sync_every": 1})
    cfgs = [base, base.replace(lr=1e3, seed=1), base.replace(seed=2, steps=12)]
    res = train_batched(cfgs, store)
    assert [r.status for r in res] == ["finished", "diverged", "finished"]
    for r in res:
        assert store.get_run(r.run_id)["status"] == r.status
        n = len(store.metrics(r.run_id))
        assert rows_at_status[r.run_id][0] == n > 0, r.status
    assert store.metrics(res[1].run_id, "diverged")["value"].tolist() == [1.0]
    assert store.metrics(res[2].run_id)["step"].max() == 12


def test_a_forced_sync_returns_with_everything_committed(tmp_path, monkeypatch):
    n = 3
    store, ids = _store(tmp_path, n)
    calls = _slow_inserts(store, monkeypatch, 0.05)
    sink = Sink(TrainConfig(task="digits", sync_every=1), store, ids, TPS)
    alive = torch.ones(n, dtype=torch.bool)
    for s in range(6):
        sink.log(s, {"train_loss": torch.full((n,), 1.0 / (s + 1))}, alive, s + 1)
    sink.sync(alive, 6, force=True)             # what the loop does before a checkpoint
    assert len(calls) == 6 and len(store.metrics(ids)) == 6 * n
    sink.close()


def test_writer_error_reaches_the_training_thread_and_marks_the_run_failed(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "err.db")
    insert, calls = store._insert, []

    def failing(rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise StoreError(f"store {store.path}: write failed: database or disk is full")
        insert(rows)

    monkeypatch.setattr(store, "_insert", failing)
    base = TrainConfig.from_dict({**SMALL, "steps": 40, "log_every": 1, "eval_every": 5, "sync_every": 1})
    with pytest.raises(StoreError, match="disk is full"):
        train_batched([base, base.replace(seed=1)], store)
    runs = store.runs()
    assert runs["status"].tolist() == ["failed", "failed"]
    assert all("disk is full" in e for e in runs["error"])
    m = store.metrics(runs["id"].tolist())
    assert sorted(m["step"].unique().tolist()) == [0, 1]   # the two windows committed before the error, no later one
    assert len(calls) < 40, "training went on long after the writer failed"


def test_an_error_first_seen_at_close_still_marks_the_run_failed(tmp_path, monkeypatch):
    n = 2
    store, ids = _store(tmp_path, n)

    def failing(rows):
        raise StoreError("store: write failed: disk I/O error")

    monkeypatch.setattr(store, "_insert", failing)
    sink = Sink(TrainConfig(task="digits", sync_every=1), store, ids, TPS)
    sink.log(0, {"train_loss": torch.ones(n)}, torch.ones(n, dtype=torch.bool), 1)
    with pytest.raises(StoreError, match="disk I/O error"):
        sink.close()
    assert [store.get_run(r)["status"] for r in ids] == ["failed", "failed"]
    assert "disk I/O error" in store.get_run(ids[0])["error"]


def test_the_queue_is_bounded_and_commits_in_order(tmp_path, monkeypatch):
    store, ids = _store(tmp_path, 1)
    gate, entered = threading.Event(), threading.Event()
    insert = store._insert

    def gated(rows):
        entered.set()
        gate.wait()
        insert(rows)

    monkeypatch.setattr(store, "_insert", gated)
    w = WindowCommitter(store, max_windows=2)
    rows = [[(ids[0], s, None, 0.0, "x", float(s), None)] for s in range(5)]
    w.put(rows[0])
    assert entered.wait(10)             # the thread holds window 0; the queue can take 2 more
    w.put(rows[1])
    w.put(rows[2])
    done = threading.Event()
    t = threading.Thread(target=lambda: (w.put(rows[3]), done.set()))
    t.start()
    assert not done.wait(0.3), "put did not block with a full queue"
    gate.set()
    t.join(10)
    assert done.is_set()
    w.put(rows[4])
    w.close()
    m = store.metrics(ids[0])
    assert m["step"].tolist() == [0, 1, 2, 3, 4] and m["id"].is_monotonic_increasing
    assert w.rows_written == 5


def _wait_for(pred, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_large_windows_share_one_transaction_and_a_forced_sync_commits_them_at_once(tmp_path, monkeypatch):
    store, ids = _store(tmp_path, 2)
    calls: list[list[tuple]] = []
    insert = store._insert
    monkeypatch.setattr(store, "_insert", lambda rows: (calls.append(list(rows)), insert(rows)))
    w = WindowCommitter(store, hold_rows=4, hold_seconds=60)

    def window(step: int) -> list[tuple]:   # 2 runs x 2 metrics, in the index's order within the window
        return [(r, step, None, 0.0, k, float(step), None) for r in ids for k in ("a", "b")]

    for step in range(3):
        w.put(window(step))
    time.sleep(0.3)
    assert calls == [], "large windows were committed before their hold ran out"
    t0 = time.monotonic()
    w.drain()                                            # a forced sync: at once, not after 60 s
    assert time.monotonic() - t0 < 10 and len(calls) == 1 and len(calls[0]) == 12
    assert [(r[0], r[4], r[1]) for r in calls[0]] == sorted((r[0], r[4], r[1]) for r in calls[0])
    m = store.metrics(ids)
    assert len(m) == 12 and all(g["step"].is_monotonic_increasing for _, g in m.groupby(["run", "name"]))
    w.put(window(3))
    w.put([(ids[0], 3, None, 0.0, "diverged", 1.0, None)], [(ids[0], "diverged", "loss not finite")])
    assert _wait_for(lambda: store.get_run(ids[0])["status"] == "diverged")  # a status change commits what is held
    assert len(calls) == 2 and len(calls[1]) == 5 and len(store.metrics(ids)) == 17
    w.put([(ids[1], 4, None, 0.0, "a", 4.0, None)])      # a small window: committed without waiting
    assert _wait_for(lambda: len(calls) == 3)
    w.close()
    quick = WindowCommitter(store, hold_rows=4, hold_seconds=0.2)
    quick.put(window(5))
    assert _wait_for(lambda: len(calls) == 4), "a held window was not committed when its time ran out"
    quick.close()
    assert len(store.metrics(ids)) == 22 and quick.rows_written == 4 and w.rows_written == 18


_CHILD = """
import sys
from workbench.store import RunStore
from workbench.train import TrainConfig, train_batched
cfg = TrainConfig.from_dict({cfg!r})
train_batched([cfg.replace(seed=i) for i in range(3)], RunStore(sys.argv[1]))
"""


def test_sigkill_keeps_every_committed_window_whole(tmp_path):
    cfg = {**SMALL, "steps": 10**6, "log_every": 1, "eval_every": 10**6, "sync_every": 1}
    db = tmp_path / "kill.db"
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(cfg=cfg))
    proc = subprocess.Popen([sys.executable, str(script), str(db)], env={**os.environ, "PYTHONPATH": str(ROOT)})
    seen: list[int] = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(seen) < 600:
            time.sleep(0.1)
            assert proc.poll() is None, "the child ended before it could be killed"
            if db.exists():
                with RunStore(db, mark_interrupted=False) as s:
                    ids = s.runs()["id"].tolist()
                    if ids:
                        seen = s.metrics(ids)["id"].tolist()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert len(seen) >= 600, "the child committed too few rows in 120 s"
    store = RunStore(db)
    ids = store.runs()["id"].tolist()
    assert store.runs()["status"].tolist() == ["interrupted"] * 3
    m = store.metrics(ids)
    assert set(seen) <= set(m["id"])                     # every row a reader saw before the kill
    per_step = m.groupby(["step", "run"])["name"].agg(sorted)
    steps = per_step.index.get_level_values("step").unique().tolist()
    assert steps == list(range(len(steps))) and len(steps) > 600 // 3 // 12
    for step in steps:                                   # every step whole: all members, the same metrics
        got = per_step.loc[step]
        assert got.index.tolist() == sorted(ids) and all(g == got.iloc[0] for g in got), step
