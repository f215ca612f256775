"""Data safety around training: a checkpoint that cannot be written marks the run failed with the
reason, and `workbench run --resume` refuses what it cannot resume without
touching the run's metrics; `workbench runs` / `export` read a store this user cannot write."""

from __future__ import annotations

import errno
import os

import pytest

from workbench import store as S
from workbench.cli import main
from workbench.store import RunStore
from workbench.train import checkpoint as ck
from workbench.train import train

CFG = {"task": "modular", "task_params": {"p": 11, "frac": 0.5}, "model": "mlp", "model_params": {"hidden": [16]},
       "steps": 30, "log_every": 5, "eval_every": 10, "checkpoint_every": 10, "device": "cpu"}


def test_failed_checkpoint_write_marks_the_run_failed_with_the_reason(tmp_path, monkeypatch):
    real = ck.save_checkpoint

    def disk_full(obj, path, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(ck, "save_checkpoint", disk_full)
    with RunStore(tmp_path / "s.db") as st:
        with pytest.raises(OSError, match="No space left on device"):
            train(CFG, st, run_id="full")
        rec = st.get_run("full")
        assert rec["status"] == "failed"
        assert "No space left on device" in rec["error"]
        assert st.metrics("full")["step"].max() == 5   # what was logged before the checkpoint at 10 is kept
        assert st.artifacts("full", kind="checkpoint").empty
    monkeypatch.setattr(ck, "save_checkpoint", real)


@pytest.mark.parametrize("make", ["finished", "no-checkpoint"])
def test_resume_refusal_keeps_every_metric_row(tmp_path, capsys, make):
    db = tmp_path / "s.db"
    with RunStore(db) as st:
        if make == "finished":
            rid = train({**CFG, "checkpoint_every": 0}, st, run_id="done").run_id
        else:
            rid = st.create_run("killed", task="modular", config=CFG, run_id="killed")
            st.log(rid, 0, {"train_loss": 2.0})
            st.log(rid, 5, {"train_loss": 1.0})
            st.set_status(rid, "interrupted")
        before = st.metrics(rid)
    assert main(["run", "--resume", rid, "--store", str(db), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench run: error: resume:") and "Nothing was changed" in err
    with RunStore(db) as st:
        after = st.metrics(rid)
        assert len(after) == len(before) > 0 and after.equals(before)
        assert st.get_run(rid)["status"] == ("finished" if make == "finished" else "interrupted")


def test_cli_reads_an_unwritable_store(tmp_path, monkeypatch, capsys):
    """As root permission bits do not stop writes, so the check os.access makes is what is simulated."""
    db = tmp_path / "s.db"
    with RunStore(db) as st:
        rid = st.create_run("theirs", run_id="theirs", status="finished")
        st.log(rid, 0, {"loss": 1.0})
    real = os.access
    monkeypatch.setattr(S.os, "access", lambda p, mode, *a, **k: False if mode == os.W_OK else real(p, mode))
    assert main(["runs", "list", "--store", str(db)]) == 0
    assert "theirs" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "out.csv"), "--store", str(db)]) == 0
    assert "\ntheirs,theirs," in (tmp_path / "out.csv").read_text()
    capsys.readouterr()
    assert main(["runs", "delete", "theirs", "--store", str(db)]) == 2
    assert "read-only" in capsys.readouterr().err
    with RunStore(db, readonly=True) as st:
        assert st.runs()["id"].tolist() == ["theirs"]


def test_a_failed_checkpoint_save_leaves_no_partial_file(tmp_path, monkeypatch):
    import torch

    from workbench.safeio import save_checkpoint

    def half(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", half)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({"w": torch.zeros(2)}, tmp_path / "ck" / "step_1.pt")
    assert list((tmp_path / "ck").iterdir()) == []
