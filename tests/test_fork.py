"""Cooldown forks (Hägele et al. 2024): fork_points keep checkpoints; a fork of 4 cooldowns from one parent
equals 4 separate resumes from the same checkpoint with the cooldown schedule (1e-5) in one launch; a ragged
stack (members with different steps) equals each member trained alone; the fork links are in the store."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

from workbench.schedules import build
from workbench.store import RunStore
from workbench.train import ConfigError, TrainConfig, fork, resume, train, train_batched

F = importlib.import_module("workbench.train.fork")  # the module (workbench.train.fork is also the function)
pytestmark = pytest.mark.usefixtures("one_torch_thread")

PARENT = dict(task="digits", task_params={"n_train": 200}, model="mlp", model_params={"hidden": [16]}, steps=60,
              lr=1e-2, schedule={"name": "constant", "warmup_steps": 5}, log_every=5, eval_every=10, device="cpu",
              batch_size=32, fork_points=[20, 40], checkpoint_every=10, keep_checkpoints=1)


def _rel(a: dict, b: dict) -> float:
    return max(((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12)).item() for k in b)


@pytest.fixture
def parent(tmp_path):
    st = RunStore(tmp_path / "runs.db")
    r = train(TrainConfig.from_dict(PARENT), st, name="parent")
    yield st, r.run_id
    st.close()


def _resume_from(st: RunStore, parent_id: str, cfg: TrainConfig, step: int):
    """A separate run with ``cfg`` resumed from the parent's checkpoint of ``step`` (the reference)."""
    path = F.checkpoint.at_step(st, parent_id, step)[0]
    rid = st.create_run("ref", task=cfg.task, config=cfg.to_dict(), status="interrupted")
    st.add_artifact(rid, "checkpoint", path, {"step": step, "member": 0, "members": [rid]})
    return resume(rid, st, return_params=True)


def test_fork_points_keep_their_checkpoints(parent):
    st, pid = parent
    files = sorted(p.name for p in (st.path.parent / "checkpoints" / pid).iterdir())
    assert files == ["fork_00000020.pt", "fork_00000040.pt", "step_00000060.pt"]  # keep_checkpoints=1 spares forks
    assert all(os.stat(p).st_mode & 0o077 == 0 for p in (st.path.parent / "checkpoints" / pid).iterdir())
    with pytest.raises(ConfigError, match=r"fork_points: each must be an integer step in \[1, steps - 1 = 59\]"):
        TrainConfig.from_dict({**PARENT, "fork_points": [60]})


def test_cooldown_schedule_is_constant_then_decays_to_zero():
    spec = F.cooldown_schedule({"name": "constant", "warmup_steps": 5}, 20, 10, "1-sqrt")
    s = build(spec)
    v = s(np.arange(31))
    assert s.total_steps == 30 and np.all(v[5:21] == 1.0) and v[30] == 0.0
    np.testing.assert_allclose(v[20:30], 1 - np.sqrt(np.arange(10) / 10))  # Hägele et al.'s 1-sqrt


def test_fork_of_four_cooldowns_equals_four_resumes_in_one_launch(parent, monkeypatch):
    st, pid = parent
    launches = []
    real = F.train_batched
    monkeypatch.setattr(F, "train_batched", lambda cfgs, *a, **k: launches.append(len(cfgs)) or real(cfgs, *a, **k))
    res = fork(pid, at_steps=[20], cooldown_steps=[10, 20], shapes=["linear", "cosine"], store=st,
               return_params=True)
    assert launches == [4] and len(res) == 4
    links = st.forks(pid)
    assert sorted(links["run"]) == sorted(r.run_id for r in res) and set(links["fork_step"]) == {20}
    for r in res:
        cfg = TrainConfig.from_dict(r.config)
        assert r.status == "finished" and st.get_run(r.run_id)["status"] == "finished" and r.step == cfg.steps
        ref = _resume_from(st, pid, cfg, 20)
        assert _rel(r.params, ref.params) < 1e-5
        for k in ("train_loss", "test_loss"):
            assert r.final[k] == pytest.approx(ref.final[k], rel=1e-5)
        mine, theirs = st.metrics(r.run_id), st.metrics(ref.run_id)
        assert mine["step"].max() == cfg.steps == theirs["step"].max()     # no rows past its own end
        a = mine[mine.name == "test_loss"].set_index("step")["value"]
        b = theirs[theirs.name == "test_loss"].set_index("step")["value"]
        np.testing.assert_allclose(a.loc[b.index], b, rtol=1e-5)


def test_later_fork_step_repeats_the_parent_then_cools_down(parent):
    st, pid = parent
    (early, late) = fork(pid, at_steps=[20, 40], cooldown_steps=[10], shapes=["1-sqrt"], store=st, return_params=True)
    assert set(st.forks(pid)["fork_step"]) == {20, 40}
    ref = _resume_from(st, pid, TrainConfig.from_dict(late.config), 40)
    assert late.step == 50 and _rel(late.params, ref.params) < 1e-5


def test_ragged_stack_members_equal_alone():
    base = TrainConfig.from_dict({**PARENT, "fork_points": [], "checkpoint_every": 0, "schedule": None})
    cfgs = [base.replace(steps=30, schedule={"name": "cosine"}), base.replace(steps=50, seed=1)]
    for rb, c in zip(train_batched(cfgs, return_params=True), cfgs):
        ra = train(c, return_params=True)
        assert rb.step == c.steps and _rel(rb.params, ra.params) < 1e-5
        assert rb.final["test_loss"] == pytest.approx(ra.final["test_loss"], rel=1e-5)


def test_fork_refuses_bad_input(parent, tmp_path):
    st, pid = parent
    with pytest.raises(ConfigError, match=r"at_steps: run .* has no checkpoint on disk at step\(s\) \[30\]"):
        fork(pid, [30], [10], store=st)
    with pytest.raises(ConfigError, match="shapes: must be a non-empty list"):
        fork(pid, [20], [10], shapes=["exp"], store=st)
    with pytest.raises(ConfigError, match="cooldown_steps: must be a non-empty list of integers >= 1"):
        fork(pid, [20], [0], store=st)
    cos = train(TrainConfig.from_dict({**PARENT, "schedule": {"name": "cosine"}}), st)
    with pytest.raises(ConfigError, match="not in run .* constant-LR phase"):
        fork(cos.run_id, [20], [10], store=st)
    assert st.forks().empty  # nothing linked by a refused fork


def test_fork_links_round_trip_and_go_with_their_run(tmp_path):
    with RunStore(tmp_path / "s.db") as st:
        p, c = st.create_run("p"), st.create_run("c")
        st.set_fork(c, p, 120)
        assert st.forks(p).to_dict("records") == [{"run": c, "parent_run": p, "fork_step": 120}]
        st.delete_run(c)
        assert st.forks().empty


def test_fork_cli_trains_and_draws_the_figure(parent, tmp_path, capsys):
    from workbench.cli import main

    st, pid = parent
    out = tmp_path / "forks.html"
    assert main(["fork", pid, "--at", "20", "40", "--cooldown", "10", "--shapes", "linear", "1-sqrt",
                 "--store", str(st.path), "--figure", str(out)]) == 0
    text = capsys.readouterr().out
    assert "trained 4 fork(s)" in text and out.exists()
    forks, par = F.fork_results(st, pid)
    assert sorted(zip(forks["fork_step"], forks["shape"])) == [(20, "1-sqrt"), (20, "linear"), (40, "1-sqrt"),
                                                               (40, "linear")]
    assert (forks["cooldown_steps"] == 10).all() and (forks["step"] == forks["fork_step"] + 10).all()
    from workbench.figures.forks import forks_figure

    fig = forks_figure(forks, par)
    assert [t.name for t in fig.data][0] == "parent (constant LR)" and len(fig.data) == 5
    # each fork's point is its final test loss at its compute (tokens of its last step)
    for t in fig.data[1:]:
        for x, y, cd in zip(t.x, t.y, (c[0] for c in t.customdata)):
            row = forks[(forks["tokens"] == x) & (forks["final"] == y)]
            assert len(row) == 1 and row["cooldown_steps"].iloc[0] == cd
    xr, yr = fig.layout.xaxis.range, fig.layout.yaxis.range               # opens on the forks, all of them inside
    assert xr[0] <= forks["tokens"].min() and forks["tokens"].max() <= xr[1]
    assert yr[0] < forks["final"].min() and forks["final"].max() < yr[1]
    assert main(["fork", pid, "--at", "20", "--store", str(st.path)]) == 2
    assert "give both --at and --cooldown" in capsys.readouterr().err
    assert main(["fork", "nope", "--at", "20", "--cooldown", "5", "--store", str(st.path)]) == 2
    assert "run 'nope'" in capsys.readouterr().err


def test_fork_of_a_stack_member_equals_its_resume(tmp_path):
    """A parent trained in a stack (a sweep member): the fork starts from its member's slice of the file."""
    with RunStore(tmp_path / "s.db") as st:
        cfg = TrainConfig.from_dict(PARENT)
        _, second = train_batched([cfg, cfg.replace(seed=1, lr=2e-2)], st)
        (res,) = fork(second.run_id, [20], [10], ["cosine"], store=st, return_params=True)
        path = F.checkpoint.at_step(st, second.run_id, 20)[0]
        other = st.create_run("other", status="pruned")   # the first member's slot, left out of the resume
        ref = st.create_run("ref", task=cfg.task, config=res.config, status="interrupted")
        st.add_artifact(ref, "checkpoint", path, {"step": 20, "member": 1, "members": [other, ref]})
        r = resume(ref, st, return_params=True)
        assert _rel(res.params, r.params) < 1e-5 and res.final["test_loss"] == pytest.approx(r.final["test_loss"],
                                                                                               rel=1e-5)
