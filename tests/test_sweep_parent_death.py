"""kill -9 of a local-executor sweep's parent takes its worker processes with it (within 5 s), and
``sweep resume`` then finishes the sweep with the results of an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.store import RunStore, _alive
from workbench.sweeps import resume_sweep, run_sweep, sweep_results, sweep_status
from workbench.sweeps.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[1]

SPEC = {"name": "orphans", "base": {"task": "modular", "task_params": {"p": 23, "frac": 0.5}, "model": "mlp",
                                    "model_params": {"hidden": [32]}, "steps": 400, "log_every": 5,
                                    "eval_every": 20, "checkpoint_every": 20, "device": "cpu"},
        "axes": {"lr": [1e-3, 3e-3]}, "seeds": [0]}


def _final(store: RunStore, sid: str):
    df = sweep_results(sid, store, metrics=["test_loss", "train_loss"])
    assert (df["status"] == "finished").all(), df
    return df.set_index("index")[["test_loss", "train_loss"]].sort_index()


def test_die_with_parent_watchdog_exits_an_orphan(tmp_path):
    """The parent-death check itself: a grandchild whose parent is SIGKILLed exits at once."""
    pidfile = tmp_path / "child.pid"
    child_py = tmp_path / "child.py"
    child_py.write_text("import os, sys, time\nfrom workbench.sweeps.executors import die_with_parent\n"
                        "die_with_parent(os.getppid())\n"
                        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    code = (f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, {str(child_py)!r}])\n"
            "time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        deadline = time.time() + 60
        while not pidfile.exists() or not pidfile.read_text():
            assert time.time() < deadline and parent.poll() is None
            time.sleep(0.05)
        child = int(pidfile.read_text())
        assert _alive(child, None)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        t0 = time.time()
        while _alive(child, None) and time.time() - t0 < 5:
            time.sleep(0.05)
        assert not _alive(child, None), "the orphan outlived its parent by 5 s"
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)


@pytest.mark.slow
def test_kill9_parent_of_local_sweep_leaves_no_worker_and_resume_finishes(tmp_path):
    spec_path = tmp_path / "orphans.yaml"
    SweepSpec.from_dict(SPEC).to_yaml(spec_path)
    db = tmp_path / "kill.db"
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "sweep", "run", str(spec_path), "--executor",
                             "local", "--workers", "2", "--store", str(db), "--no-progress"], cwd=ROOT,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    workers: set[int] = set()
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if not db.exists():
                continue
            try:
                s = RunStore(db, mark_interrupted=False, readonly=True)
            except Exception:  # noqa: BLE001 - the store is being created
                continue
            try:
                runs = s.runs()
                running = runs[runs["status"] == "running"] if len(runs) else runs
                ck = set(s.artifacts(kind="checkpoint")["run"])
            finally:
                s.close()
            if len(running) and set(running["id"]) & ck:   # a worker midway, with a checkpoint
                workers = {int(p) for p in running["pid"] if int(p) != proc.pid}
                os.kill(proc.pid, signal.SIGKILL)            # the parent only, not its process group
                proc.wait()
                break
        assert workers, f"the sweep was not caught midway: {proc.communicate()[0].decode()[-2000:]}"
        t0 = time.time()
        while any(_alive(p, None) for p in workers) and time.time() - t0 < 5:
            time.sleep(0.05)
        alive = [p for p in workers if _alive(p, None)]
        assert not alive, f"workers {alive} still alive 5 s after their parent was killed"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    store = RunStore(db)  # the dead workers' runs are marked interrupted
    sid = store.sweeps()["id"].iloc[0]
    st = sweep_status(sid, store)
    assert st["counts"].get("interrupted", 0) >= 1 and "running" not in st["counts"]
    resume_sweep(sid, store, executor="local", progress=False)
    st = sweep_status(sid, store)
    assert st["status"] == "finished" and st["counts"] == {"finished": 2}
    for rid in store.runs(sweep=sid)["id"]:
        m = store.metrics(rid)
        assert not m.duplicated(["step", "name"]).any(), f"{rid}: duplicated metric rows"

    ref_store = RunStore(tmp_path / "ref.db")
    ref = run_sweep(SPEC, "local", ref_store, progress=False, workers=2)
    np.testing.assert_allclose(_final(store, sid).to_numpy(), _final(ref_store, ref).to_numpy(), rtol=1e-5)
    got = {r: sorted(zip(*[store.metrics(i)[c].tolist() for c in ("step", "name")]))
           for r, i in zip(store.runs(sweep=sid)["name"], store.runs(sweep=sid)["id"])}
    want = {r: sorted(zip(*[ref_store.metrics(i)[c].tolist() for c in ("step", "name")]))
            for r, i in zip(ref_store.runs(sweep=ref)["name"], ref_store.runs(sweep=ref)["id"])}
    assert got == want
