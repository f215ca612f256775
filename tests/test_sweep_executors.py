"""Executors (batched / local / Ray on a loopback head) give the same per-member results; a sweep
killed with SIGKILL resumes with every member finished once and no metric row duplicated or lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.store import RunStore
from workbench.sweeps import resume_sweep, run_sweep, sweep_results, sweep_status
from workbench.sweeps.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[1]

SMALL = {"name": "exec", "base": {"task": "modular", "task_params": {"p": 11, "frac": 0.5}, "model": "mlp",
                                  "model_params": {"hidden": [32]}, "steps": 40, "log_every": 10,
                                  "eval_every": 10, "device": "cpu"},
         "axes": {"lr": [1e-3, 3e-3], "schedule": ["cosine", "linear"]}, "seeds": [0],
         "objective": {"metric": "test_loss", "mode": "min"}}


def _final(store: RunStore, sid: str):
    df = sweep_results(sid, store, metrics=["test_loss", "train_loss"])
    assert (df["status"] == "finished").all(), df
    return df.set_index("index")[["test_loss", "train_loss"]].sort_index()


@pytest.fixture(scope="module")
def ray_local():
    pytest.importorskip("ray")
    from workbench.sweeps.executors import ray_init

    ray = ray_init(None, num_cpus=2)
    yield ray
    ray.shutdown()


def test_three_executors_agree(tmp_path, ray_local):
    results = {}
    for ex, kw in (("batched", {}), ("local", {"workers": 2}), ("ray", {"store_mode": "ship"})):
        store = RunStore(tmp_path / f"{ex}.db")
        sid = run_sweep(SMALL, ex, store, progress=False, **kw)
        st = sweep_status(sid, store)
        assert st["status"] == "finished" and st["done"] == 4 and st["pending"] == 0
        assert len(store.runs(sweep=sid)) == 4
        results[ex] = _final(store, sid)
        store.close()
    # same seeds -> same members; batched vs single differ only by float reassociation
    for ex in ("local", "ray"):
        np.testing.assert_allclose(results[ex].to_numpy(), results["batched"].to_numpy(), rtol=1e-4)
    # the members really differ from each other (the comparison is not vacuous)
    assert results["batched"]["test_loss"].nunique() == 4


def test_ray_direct_store_mode(tmp_path, ray_local):
    spec = {**SMALL, "axes": {"lr": [1e-3, 3e-3]}}
    store = RunStore(tmp_path / "direct.db")
    sid = run_sweep(spec, "ray", store, progress=False, store_mode="direct")
    assert sweep_status(sid, store)["counts"] == {"finished": 2}


def test_bad_member_config_is_refused_before_anything_runs(tmp_path):
    from workbench.sweeps.spec import SweepSpecError

    spec = {**SMALL, "axes": {"model": ["mlp", "gpt"]}}   # gpt cannot model the modular task
    store = RunStore(tmp_path / "f.db")
    with pytest.raises(SweepSpecError, match="model=gpt"):
        run_sweep(spec, "batched", store, progress=False)
    assert store.runs().empty and store.sweeps().empty


def test_failing_member_is_recorded_and_others_go_on(tmp_path, capsys):
    # a member whose checkpoint folder cannot be created (a file is in the way) fails at its first
    # checkpoint; the other finishes, and the CLI says how many failed and why, with a non-zero status
    from workbench.sweeps.cli import cli_main

    (tmp_path / "blocked").write_text("a file, not a folder")
    spec = {**SMALL, "base": {**SMALL["base"], "checkpoint_every": 20},
            "axes": {"checkpoint_dir": [str(tmp_path / "ok"), str(tmp_path / "blocked" / "ck")]}}
    spec_path = tmp_path / "f.yaml"
    SweepSpec.from_dict(spec).to_yaml(spec_path)
    db = tmp_path / "f.db"
    assert cli_main(["run", str(spec_path), "--store", str(db), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 member(s) failed" in err and "blocked" in err
    store = RunStore(db)
    sid = store.sweeps()["id"].iloc[0]
    st = sweep_status(sid, store)
    assert st["counts"] == {"finished": 1, "failed": 1}
    assert "blocked" in store.runs(sweep=sid, status="failed")["error"].iloc[0]


def test_batched_group_error_is_recorded_not_fallen_back(tmp_path, monkeypatch):
    # only BatchedUnsupportedError / ConfigError run a group one member at a time; any other error of the
    # stack fails its members with the traceback, and the solo path is never tried
    import workbench.train as engine
    from workbench.sweeps.executors import BatchedExecutor, Job

    def boom(*a, **k):
        raise RuntimeError("stack exploded")

    solo = []
    monkeypatch.setattr(engine, "train_batched", boom)
    monkeypatch.setattr(engine, "train", lambda *a, **k: solo.append(a))
    store = RunStore(tmp_path / "g.db")
    jobs = [Job(f"r{i}", {**SMALL["base"], "lr": lr}, f"m{i}", index=i) for i, lr in enumerate((1e-3, 3e-3))]
    outs = BatchedExecutor(max_group=2).run(jobs, store, None)
    assert [o.status for o in outs] == ["failed", "failed"] and not solo
    runs = store.runs(status="failed").set_index("id")
    assert set(runs.index) == {"r0", "r1"}
    err = runs.loc["r0", "error"]
    assert "RuntimeError: stack exploded" in err and "Traceback" in err and "boom" in err

    def refuse(*a, **k):
        raise engine.BatchedUnsupportedError("optimizer: no batched form")

    monkeypatch.setattr(engine, "train_batched", refuse)
    store2 = RunStore(tmp_path / "h.db")
    BatchedExecutor(max_group=2).run(jobs, store2, None)
    assert len(solo) == 2  # the refused group ran one member at a time


KILL = {"name": "kill", "base": {"task": "modular", "task_params": {"p": 23, "frac": 0.5}, "model": "mlp",
                                 "model_params": {"hidden": [32]}, "steps": 240, "log_every": 5, "eval_every": 20,
                                 "checkpoint_every": 20, "device": "cpu"},
        "axes": {"lr": [1e-3, 2e-3, 3e-3], "weight_decay": [0.0, 1.0]}, "seeds": [0],
        "resources": {"max_group": 2}}


def _rows(store: RunStore, sid: str) -> dict[str, list[tuple[int, str]]]:
    out = {}
    for _, r in store.runs(sweep=sid).iterrows():
        m = store.metrics(r["id"])
        out[r["name"]] = sorted(zip(m["step"].tolist(), m["name"].tolist()))
    return out


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    spec_path = tmp_path / "kill.yaml"
    SweepSpec.from_dict(KILL).to_yaml(spec_path)
    db = tmp_path / "kill.db"
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "sweep", "run", str(spec_path), "--executor",
                             "batched", "--store", str(db), "--no-progress"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    killed = False
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if not db.exists():
            continue
        s = RunStore(db, mark_interrupted=False)
        try:
            runs = s.runs()
            n_done = int((runs["status"] == "finished").sum()) if len(runs) else 0
            running = set(runs.loc[runs["status"] == "running", "id"]) if len(runs) else set()
            ck = set(s.artifacts(kind="checkpoint")["run"])
        finally:
            s.close()
        if n_done >= 2 and running & ck:     # a group done, a later one midway with a checkpoint
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = True
            break
    assert killed, f"the sweep was not caught midway: {proc.communicate()[0].decode()[-2000:]}"

    store = RunStore(db)           # marks the dead process's runs interrupted
    sid = store.sweeps()["id"].iloc[0]
    st = sweep_status(sid, store)
    assert st["counts"].get("interrupted", 0) >= 1 and st["done"] < 6
    resume_sweep(sid, store, progress=False)
    st = sweep_status(sid, store)
    assert st["status"] == "finished" and st["counts"] == {"finished": 6}
    runs = store.runs(sweep=sid)
    assert len(runs) == 6 and runs["name"].is_unique          # every member exactly once

    ref_store = RunStore(tmp_path / "ref.db")
    ref = run_sweep(KILL, "batched", ref_store, progress=False)
    got, want = _rows(store, sid), _rows(ref_store, ref)
    assert set(got) == set(want)
    for name in want:
        assert len(set(got[name])) == len(got[name]), f"{name}: duplicated metric rows"
        assert got[name] == want[name], f"{name}: metric rows lost or extra"
    # resumed members continue from their checkpoints: final losses as in the uninterrupted sweep
    np.testing.assert_allclose(_final(store, sid).to_numpy(), _final(ref_store, ref).to_numpy(), rtol=1e-5)


def test_cli_status_and_errors(tmp_path, capsys):
    from workbench.sweeps.cli import cli_main

    spec_path = tmp_path / "s.yaml"
    SweepSpec.from_dict({**SMALL, "axes": {"lr": [1e-3, 3e-3]}}).to_yaml(spec_path)
    db = str(tmp_path / "c.db")
    assert cli_main(["run", str(spec_path), "--store", db, "--no-progress"]) == 0
    sid = RunStore(db).sweeps()["id"].iloc[0]
    assert cli_main(["status", sid, "--store", db]) == 0
    assert "2/2 done" in capsys.readouterr().out
    assert cli_main(["compare", sid, "--store", db, "--metric", "train_acc", "--target", "0.5",
                     "--submission", "lr"]) == 0
    assert "AlgoPerf score" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstrategy: hyperband\n")
    assert cli_main(["run", str(bad), "--store", db]) == 2
    assert "strategy" in capsys.readouterr().err
    assert cli_main(["status", "sw-nope", "--store", db]) == 2
