"""Single runs with the store: streamed metrics, schedules, resume after SIGKILL, CLI, configs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from workbench.metrics import METRIC_NAMES, METRIC_PREFIXES
from workbench.store import RunStore
from workbench.train import ConfigError, TrainConfig, cli_main, resume, train

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny ops: 1 thread is fastest


SMALL = dict(task="modular", task_params={"p": 11, "frac": 0.5}, model="mlp",
             model_params={"hidden": [16], "bias": False}, optimizer="adamw", lr=1e-3, device="cpu")


def test_config_round_trip_and_errors():
    cfg = TrainConfig.from_dict({**SMALL, "schedule": {"name": "cosine"}, "grokfast": {"kind": "ema"}})
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="colour: unknown config field"):
        TrainConfig.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match=r"lr: must be a number in \(0.0"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match="steps: must be an integer"):
        TrainConfig(steps=0)
    with pytest.raises(ConfigError, match="loss: must be one of"):
        TrainConfig(loss="hinge")


def test_metrics_stream_into_store_with_contract_names(tmp_path):
    store = RunStore(tmp_path / "wb.db")
    cfg = TrainConfig.from_dict({**SMALL, "steps": 30, "log_every": 10, "eval_every": 10, "sharpness_every": 30,
                                 "sharpness_iters": 3})
    r = train(cfg, store, name="demo")
    assert r.status == "finished" and store.get_run(r.run_id)["status"] == "finished"
    m = store.metrics(r.run_id, wide=True)
    names = set(store.metric_names(r.run_id))
    assert all(n in METRIC_NAMES or n.startswith(METRIC_PREFIXES) for n in names)
    assert {"train_loss", "test_loss", "train_acc", "test_acc", "lr", "weight_norm", "grad_norm"} <= names
    assert m["step"].tolist() == [0, 10, 20, 30]
    assert m.loc[m.step == 0, "sharpness"].notna().all()
    # the logged loss at step 0 is the loss of the initial model, computed directly
    torch.manual_seed(cfg.seed)
    from workbench.models import build_model
    from workbench.tasks import make_task
    ds = make_task("modular", cfg.task_params, seed=cfg.data_seed)
    model = build_model("mlp", cfg.model_params, ds)
    direct = torch.nn.functional.cross_entropy(model(ds.x_train), ds.y_train).item()
    assert m.loc[m.step == 0, "train_loss"].item() == pytest.approx(direct, rel=1e-6)
    assert r.final["test_acc"] == m.loc[m.step == 30, "test_acc"].item()


def test_schedule_sets_lr_per_step():
    cfg = TrainConfig.from_dict({**SMALL, "steps": 20, "log_every": 5, "schedule": {"name": "linear"}})
    store = RunStore(":memory:")
    r = train(cfg, store)
    from workbench.schedules import build
    m = store.metrics(r.run_id, "lr")
    expect = [1e-3 * float(build({"name": "linear", "total_steps": 20})(s)) for s in m["step"]]
    assert m["value"].tolist() == pytest.approx(expect, rel=1e-6)


_CHILD = """
import sys, torch
torch.set_num_threads(1)
from workbench.store import RunStore
from workbench.train import TrainConfig, train
cfg = TrainConfig.from_dict({cfg!r})
train(cfg, RunStore(sys.argv[1]), run_id="victim")
"""


def test_resume_after_kill_continues_at_the_exact_step(tmp_path):
    cfg = {**SMALL, "steps": 4000, "log_every": 50, "eval_every": 500, "checkpoint_every": 100,
           "grokfast": {"kind": "ema", "alpha": 0.9, "lamb": 1.0}, "schedule": {"name": "cosine"}}
    db = tmp_path / "wb.db"
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(cfg=cfg))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(db)], env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            time.sleep(0.2)
            if db.exists():
                with RunStore(db, mark_interrupted=False) as s:
                    try:
                        if len(s.artifacts("victim", "checkpoint")) >= 3:
                            break
                    except KeyError:
                        pass
            assert proc.poll() is None, "the child finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    store = RunStore(db)                        # opening marks the dead writer's run interrupted
    assert store.get_run("victim")["status"] == "interrupted"
    ck_step = max(a["step"] for a in store.artifacts("victim", "checkpoint")["meta"])
    assert 0 < ck_step < 4000
    resumed = resume("victim", store, return_params=True)
    assert resumed.status == "finished" and resumed.step == 4000
    assert store.get_run("victim")["status"] == "finished"
    full = train(TrainConfig.from_dict(cfg), return_params=True)
    for k, v in full.params.items():
        torch.testing.assert_close(resumed.params[k], v, rtol=1e-6, atol=1e-7)
    assert resumed.final["test_loss"] == pytest.approx(full.final["test_loss"], rel=1e-6)


def test_cli_run_and_config_file(tmp_path, capsys):
    db = tmp_path / "wb.db"
    rc = cli_main(["grokking", "--p", "11", "--frac", "0.5", "--wd", "1", "--steps", "20", "--model", "mlp",
                   "--device", "cpu", "--store", str(db), "--no-progress"])
    assert rc == 0
    with RunStore(db) as s:
        runs = s.runs()
        cfg = runs["config"].iloc[0]
        assert cfg["task_params"] == {"p": 11, "frac": 0.5} and cfg["weight_decay"] == 1.0
        assert cfg["optimizer_params"]["betas"] == [0.9, 0.98]
    yml = tmp_path / "cfg.yaml"
    yml.write_text("task: parity\ntask_params: {n_bits: 8, k: 2, n_train: 64, n_test: 32}\nsteps: 10\ndevice: cpu\n")
    assert cli_main(["--config", str(yml), "--store", str(db), "--no-progress", "--seeds", "2"]) == 0
    assert "finished" in capsys.readouterr().out
    assert cli_main(["grokking", "--frac", "1.5", "--store", str(db)]) == 2


def test_grokking_cli_presets():
    """`workbench run grokking` defaults to the CPU settings; `--preset nanda` gives the paper's; flags win."""
    import argparse

    from workbench.train import GROKKING_PRESETS, config_from_args

    def ns(**kw):
        return argparse.Namespace(**kw)

    cpu = config_from_args("grokking", ns())
    assert (cpu.model, cpu.task_params["p"], cpu.task_params["frac"], cpu.lr) == ("mlp", 97, 0.5, 3e-3)
    assert cpu.weight_decay == 1.0 and cpu.stop_at_test_acc == 0.95
    nanda = config_from_args("grokking", ns(preset="nanda"))
    assert (nanda.model, nanda.task_params, nanda.lr, nanda.weight_decay) == ("nanda", {"p": 113, "frac": 0.3},
                                                                             1e-3, 1.0)
    assert list(nanda.optimizer_params["betas"]) == [0.9, 0.98]
    over = config_from_args("grokking", ns(preset="nanda", p=23, steps=7))
    assert over.task_params == {"p": 23, "frac": 0.3} and over.steps == 7
    assert GROKKING_PRESETS["cpu"]["task_params"] == {"p": 97, "frac": 0.5}  # the table was not mutated
    with pytest.raises(ValueError, match="--preset"):
        config_from_args("lm", ns(preset="nanda"))
