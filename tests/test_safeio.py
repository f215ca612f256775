"""Owner-only store files and checkpoints, and checkpoints loaded with weights_only=True (issue 12):
other users of a shared machine cannot read a store, and a planted checkpoint cannot run code."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.safeio import CheckpointError, load_checkpoint, make_dirs, save_checkpoint
from workbench.store import RunStore

CFG = {"task": "modular", "task_params": {"p": 11, "frac": 0.5}, "model": "mlp", "model_params": {"hidden": [16]},
       "steps": 30, "lr": 0.02, "schedule": {"name": "cosine"}, "log_every": 5, "eval_every": 10, "device": "cpu",
       "checkpoint_every": 10}


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o002)  # group- and world-readable by default, as on many shared boxes
    yield
    os.umask(old)


class Payload:
    """Unpickling this creates ``target`` (what a planted checkpoint would do, with worse intent)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_store_files_and_folders_are_owner_only(tmp_path, loose_umask) -> None:
    path = tmp_path / "new" / "deeper" / "runs.db"
    store = RunStore(path)
    rid = store.create_run(name="x", task="t", config={"lr": 1e-3})
    store.log(rid, step=0, metrics={"loss": 1.0})
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert p.exists() and mode(p) == 0o600, (p, oct(mode(p)))
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "deeper") == 0o700
    store.close()


def test_existing_folders_are_left_alone(tmp_path, loose_umask) -> None:
    d = tmp_path / "mine"
    d.mkdir()
    os.chmod(d, 0o755)
    RunStore(d / "runs.db").close()
    assert mode(d) == 0o755 and mode(d / "runs.db") == 0o600


def test_shared_store_is_group_readable(tmp_path, loose_umask, monkeypatch) -> None:
    path = tmp_path / "team" / "runs.db"
    store = RunStore(path, shared=True)
    store.create_run(name="x", task="t", config={})
    assert mode(path) == 0o640 and mode(Path(f"{path}-wal")) == 0o640 and mode(tmp_path / "team") == 0o750
    store.close()
    # the environment (what `workbench --shared-store` sets) has the same effect
    monkeypatch.setenv("WORKBENCH_SHARED_STORE", "1")
    RunStore(tmp_path / "env" / "runs.db").close()
    assert mode(tmp_path / "env" / "runs.db") == 0o640 and mode(tmp_path / "env") == 0o750
    # asking for a shared store opens up an existing private one of ours
    monkeypatch.delenv("WORKBENCH_SHARED_STORE")
    RunStore(tmp_path / "p" / "runs.db").close()
    assert mode(tmp_path / "p" / "runs.db") == 0o600
    RunStore(tmp_path / "p" / "runs.db", shared=True).close()
    assert mode(tmp_path / "p" / "runs.db") & 0o040


def test_cli_shared_store_flag(tmp_path, loose_umask) -> None:
    from workbench.cli import main

    assert main(["runs", "list", "--store", str(tmp_path / "s" / "runs.db"), "--shared-store"]) == 0
    assert mode(tmp_path / "s" / "runs.db") == 0o640
    assert "WORKBENCH_SHARED_STORE" not in os.environ  # the flag does not leak into later commands
    assert main(["runs", "list", "--store", str(tmp_path / "p" / "runs.db")]) == 0
    assert mode(tmp_path / "p" / "runs.db") == 0o600


def test_checkpoints_are_owner_only_and_load_weights_only(tmp_path, loose_umask, one_torch_thread) -> None:
    from workbench.train import resume, train

    store = RunStore(tmp_path / "runs" / "r.db")
    res = train(CFG, store, run_id="paused", until=20)
    assert res.status == "interrupted"
    cks = store.artifacts("paused", kind="checkpoint")
    assert len(cks)
    for p in map(Path, cks["path"]):
        assert p.exists() and mode(p) == 0o600, (p, oct(mode(p)))
        assert mode(p.parent) == 0o700 and mode(p.parent.parent) == 0o700
        sd = load_checkpoint(p)  # the package's own checkpoints are tensors and plain data
        assert sd["step"] in (10, 20) and isinstance(sd["configs"][0], dict)
    done = resume("paused", store)
    assert done.status == "finished" and done.step == 30


def test_a_pickle_payload_in_a_checkpoint_is_refused_and_never_runs(tmp_path, one_torch_thread) -> None:
    target = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"step": 3, "params": {"w": torch.ones(2)}, "x": Payload(target)}, evil)
    assert not target.exists()
    with pytest.raises(CheckpointError, match="refused") as ei:
        load_checkpoint(evil)
    assert isinstance(ei.value, WorkbenchError)
    assert not target.exists()
    # the same file where resume finds the run's checkpoint: refused, nothing runs
    from workbench.train import resume, train

    store = RunStore(tmp_path / "r.db")
    train(CFG, store, run_id="paused", until=10)
    ck = Path(store.artifacts("paused", kind="checkpoint")["path"].iloc[-1])
    ck.write_bytes(evil.read_bytes())
    with pytest.raises(CheckpointError, match="refused"):
        resume("paused", store)
    assert not target.exists()


def test_save_checkpoint_ignores_the_umask_and_replaces_atomically(tmp_path, loose_umask) -> None:
    p = save_checkpoint({"a": torch.arange(3)}, tmp_path / "x" / "c.pt")
    assert mode(p) == 0o600 and mode(p.parent) == 0o700
    assert not list(p.parent.glob("*.tmp*"))
    torch.testing.assert_close(load_checkpoint(p)["a"], torch.arange(3))
    assert make_dirs(tmp_path / "x") == tmp_path / "x"  # exists: fine, unchanged
    with pytest.raises(CheckpointError, match="could not be read"):
        load_checkpoint(tmp_path / "missing.pt")
