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


def test_schedule_free_uses_the_schedulefree_optimizer():
    """A schedule-free run is not AdamW under another name: it equals schedulefree.AdamWScheduleFree
    driven by hand (train mode for steps, eval mode for the weights it reports) to 1e-6."""
    schedulefree = pytest.importorskip("schedulefree")
    from workbench.models import build_model
    from workbench.tasks import make_task

    cfg = TrainConfig(task="digits", task_params={"n_train": 200}, model="mlp", model_params={"hidden": [16]},
                      optimizer="adamw", lr=5e-3, weight_decay=0.01, steps=40, log_every=10, eval_every=40,
                      schedule={"name": "schedule_free", "warmup_steps": 10}, device="cpu", seed=2)
    sf = train(cfg, return_params=True)
    adamw = train(cfg.replace(schedule=None), return_params=True)
    assert _rel(sf.params, adamw.params) > 1e-2

    ds = make_task("digits", {"n_train": 200}, seed=0)
    torch.manual_seed(2)
    model = build_model("mlp", {"hidden": [16]}, ds)
    opt = schedulefree.AdamWScheduleFree(model.parameters(), lr=5e-3, weight_decay=0.01, warmup_steps=10)
    opt.train()
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(ds.x_train), ds.y_train)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    opt.eval()
    ref = {n: p.detach() for n, p in model.named_parameters()}
    assert _rel(sf.params, ref) < 1e-6


def test_schedule_free_is_refused_in_a_stack_with_a_clear_error():
    from workbench.optim import BatchedUnsupportedError
    from workbench.train import ConfigError

    cfg = TrainConfig(task="digits", task_params={"n_train": 100}, model="mlp", steps=5, device="cpu",
                      schedule={"name": "schedule_free"})
    with pytest.raises(BatchedUnsupportedError, match="schedule_free"):
        train_batched([cfg, cfg.replace(seed=1)])
    with pytest.raises(ConfigError, match="optimizer: a schedule_free run needs one of"):
        cfg.replace(optimizer="lion")


def test_presets_are_explicit_and_merge_one_level():
    from workbench.train import PRESETS

    cfg = TrainConfig.preset("nanda", steps=7, task_params={"p": 23})
    assert (cfg.model, cfg.lr, cfg.weight_decay, cfg.steps) == ("nanda", 1e-3, 1.0, 7)
    assert cfg.task_params == {"p": 23, "frac": 0.3}                 # the preset's frac kept, p replaced
    assert PRESETS["nanda"]["task_params"] == {"p": 113, "frac": 0.3}  # the table is not mutated
    assert TrainConfig(task="grokking").weight_decay == 0.0           # no preset unless asked for
    from workbench.train import ConfigError

    with pytest.raises(ConfigError, match="preset: must be one of"):
        TrainConfig.preset("chinchilla")


def test_one_warmup_rule_in_the_engine():
    """A warmup lasts inside the run's steps whichever way it is written."""
    from workbench.train import learning_rates

    base = TrainConfig(task="digits", task_params={"n_train": 100}, model="mlp", steps=200, device="cpu", lr=0.1)
    inside = base.replace(schedule={"name": "cosine", "warmup_steps": 20})
    wrapped = base.replace(schedule={"name": "warmup", "schedule": {"name": "cosine"}, "warmup_steps": 20})
    a, b = (learning_rates([c], torch.device("cpu"), torch.float64)[0] for c in (inside, wrapped))
    assert a.shape == b.shape == (200,)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    assert a[0] == pytest.approx(0.1 / 20) and a[19] == pytest.approx(0.1) and a[-1] < 1e-3


def test_the_loop_quoted_in_the_architecture_doc_is_the_loop():
    """docs/ARCHITECTURE.md quotes loop.py's ``while`` loop; the quote must not drift from the code."""
    import textwrap
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    loop = (root / "workbench" / "train" / "loop.py").read_text()
    body = textwrap.dedent(loop[loop.index("        while run.step < end"):].split("\n\n        paused")[0])
    assert body.count("\n") >= 15 and "batched" not in loop
    assert body in (root / "docs" / "ARCHITECTURE.md").read_text()
