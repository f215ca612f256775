"""The engine's contracts beyond equivalence: buffers are stacked with the parameters, the caller's RNG
is untouched, a store may be a path, datasets are never changed in place."""

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from workbench import models, tasks
from workbench.store import RunStore
from workbench.train import TrainConfig, train, train_batched

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass
class MaskedConfig:
    d_in: int = 64
    d_out: int = 10
    hidden: int = 16


class MaskedMLP(nn.Module):
    """An MLP whose first layer is multiplied by a fixed random 0/1 mask and whose output by a fixed
    temperature: both registered buffers, drawn from the member's seed (so members differ)."""

    def __init__(self, cfg: MaskedConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.fc1 = nn.Linear(cfg.d_in, cfg.hidden)
        self.fc2 = nn.Linear(cfg.hidden, cfg.d_out)
        self.register_buffer("mask", (torch.rand(cfg.hidden, cfg.d_in) < 0.5).float())
        self.register_buffer("temperature", torch.rand(()) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(nn.functional.linear(x, self.fc1.weight * self.mask, self.fc1.bias))
        return self.fc2(h) / self.temperature


def _rel(a: dict, b: dict) -> float:
    return max(((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12)).item() for k in b)


def test_stack_of_a_model_with_buffers_matches_solo_runs(monkeypatch):
    monkeypatch.setitem(models.MODELS, "masked", (MaskedMLP, MaskedConfig))
    base = TrainConfig(task="digits", task_params={"n_train": 200}, model="masked", optimizer="adamw", lr=1e-2,
                       steps=100, batch_size=32, log_every=25, eval_every=50, device="cpu")
    cfgs = [base.replace(seed=i, lr=1e-2 * (1 + i), weight_decay=0.1 * i) for i in range(3)]
    stacked = train_batched(cfgs, return_params=True)
    solo = [train(c, return_params=True) for c in cfgs]
    assert _rel(solo[0].params, solo[1].params) > 1e-2            # the members really differ
    for rb, ra in zip(stacked, solo):
        assert _rel(rb.params, ra.params) < 1e-5
        assert rb.final["test_loss"] == pytest.approx(ra.final["test_loss"], rel=1e-5)


def test_train_leaves_the_callers_rng_state_unchanged():
    cfg = TrainConfig(task="digits", task_params={"n_train": 100}, model="mlp", model_params={"hidden": [8]},
                      steps=5, log_every=5, eval_every=5, device="cpu", seed=3)
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    a = train(cfg, return_params=True)
    assert torch.equal(torch.get_rng_state(), before)
    train_batched([cfg, cfg.replace(seed=4)])
    assert torch.equal(torch.get_rng_state(), before)
    b = train(cfg, return_params=True)                              # and the run is still a function of its seed
    assert _rel(a.params, b.params) == 0.0


def test_store_may_be_a_path(tmp_path):
    cfg = TrainConfig(task="digits", task_params={"n_train": 100}, model="mlp", model_params={"hidden": [8]},
                      steps=5, log_every=5, eval_every=5, device="cpu")
    db = tmp_path / "runs.db"
    r = train(cfg, db, name="by-path")
    rs = train_batched([cfg, cfg.replace(seed=1)], str(db), run_ids=["m0", "m1"])
    with RunStore(db) as s:
        assert s.get_run(r.run_id)["status"] == "finished"
        assert [x.run_id for x in rs] == ["m0", "m1"]
        assert set(s.runs()["status"]) == {"finished"}


def test_dataset_to_returns_a_copy():
    ds = tasks.make_task("modular", {"p": 7}, seed=0)
    x = ds.x_train
    moved = ds.to(torch.device("cpu"))
    assert ds.x_train is x and moved is not ds
    assert torch.equal(moved.x_train, x)
