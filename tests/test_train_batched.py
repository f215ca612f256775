"""Batched training: each member equals the same config trained alone (fp32, same seed) to 1e-5
relative over 100 steps; diverged members are frozen while the others go on."""

import math

import pytest

from workbench.optim import BatchedUnsupportedError
from workbench.store import RunStore
from workbench.train import ConfigError, TrainConfig, train, train_batched

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny ops: 1 thread is fastest


def _rel(a: dict, b: dict) -> float:
    return max(((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12)).item() for k in b)


BASE = dict(task="digits", task_params={"n_train": 200}, model="mlp", model_params={"hidden": [16]}, steps=100,
            log_every=25, eval_every=50, device="cpu", batch_size=32)


@pytest.mark.parametrize("opt,params,lr", [
    ("adamw", {"betas": [0.9, 0.98]}, 1e-2),
    ("adam", {}, 1e-2),
    ("sgd", {"momentum": 0.9, "nesterov": True}, 5e-2),
    ("lion", {"betas": [0.9, 0.99]}, 1e-3),
])
def test_batched_equals_alone(opt, params, lr):
    base = TrainConfig.from_dict({**BASE, "optimizer": opt, "optimizer_params": params, "lr": lr})
    cfgs = [base.replace(seed=i, lr=lr * (1 + i), weight_decay=0.1 * i,
                         schedule={"name": "cosine"} if i == 2 else None) for i in range(3)]
    batched = train_batched(cfgs, return_params=True)
    for c, rb in zip(cfgs, batched):
        ra = train(c, return_params=True)
        assert _rel(rb.params, ra.params) < 1e-5
        assert rb.final["train_loss"] == pytest.approx(ra.final["train_loss"], rel=1e-5)


def test_batched_equals_alone_with_tricks():
    """⊥Grad, per-member gradient clipping, Grokfast EMA and per-member data splits."""
    base = TrainConfig(task="modular", task_params={"p": 11, "frac": 0.5}, model="mlp",
                       model_params={"hidden": [24], "bias": False}, optimizer="adamw", lr=1e-3, steps=100,
                       log_every=50, eval_every=50, device="cpu", orthograd=True,
                       grokfast={"kind": "ema", "alpha": 0.9, "lamb": 1.0})
    cfgs = [base.replace(seed=i, data_seed=i, grad_clip=[0.05, None][i]) for i in range(2)]
    batched = train_batched(cfgs, return_params=True)
    for c, rb in zip(cfgs, batched):
        assert _rel(rb.params, train(c, return_params=True).params) < 1e-5


def test_diverged_member_is_frozen_and_others_go_on():
    store = RunStore(":memory:")
    base = TrainConfig.from_dict({**BASE, "model_params": {"hidden": []}, "loss": "mse", "optimizer": "sgd",
                                  "lr": 0.05, "steps": 40, "log_every": 5})
    cfgs = [base, base.replace(lr=1e3, seed=1), base.replace(seed=2)]   # linear + MSE at lr 1e3 blows up
    res = train_batched(cfgs, store, return_params=True)
    assert [r.status for r in res] == ["finished", "diverged", "finished"]
    assert store.get_run(res[1].run_id)["status"] == "diverged"
    assert store.get_run(res[0].run_id)["status"] == "finished"
    m = store.metrics(res[1].run_id, "diverged")
    assert m["value"].tolist() == [1.0]
    alone = train(cfgs[2], return_params=True)
    assert _rel(res[2].params, alone.params) < 1e-5
    assert math.isfinite(res[0].final["train_loss"])


def test_single_run_divergence_stops_and_marks_store():
    store = RunStore(":memory:")
    cfg = TrainConfig.from_dict({**BASE, "model_params": {"hidden": []}, "loss": "mse", "optimizer": "sgd",
                                 "lr": 1e3, "steps": 200, "log_every": 5, "sync_every": 1})
    r = train(cfg, store)
    assert r.status == "diverged" and store.get_run(r.run_id)["status"] == "diverged"
    assert r.step < 200


def test_batch_must_share_structure_and_optimizer():
    a = TrainConfig.from_dict({**BASE, "optimizer": "adamw"})
    with pytest.raises(ConfigError, match="log_every: must be the same for every member"):
        train_batched([a, a.replace(log_every=a.log_every + 1)])
    with pytest.raises(BatchedUnsupportedError, match="'lamb' has no per-member batched"):
        train_batched([a.replace(optimizer="lamb")] * 2)
