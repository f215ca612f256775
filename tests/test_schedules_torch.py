"""ScheduleLR on real optimizers (per-group multipliers, exact resume), lr_table / lr_at, figures."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import workbench.schedules as S
from workbench.figures.schedules import schedule_figure
from workbench.schedules import ScheduleLR, lr_at, lr_table


def _model_and_data(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    g = torch.Generator().manual_seed(123)
    X = torch.randn(64, 4, generator=g)
    y = X @ torch.randn(4, 1, generator=g) + 0.1 * torch.randn(64, 1, generator=g)
    return model, X, y


def _groups(model, lr=0.05):
    return [{"params": [model[0].weight, model[2].weight], "lr": lr}, {"params": [model[0].bias, model[2].bias], "lr": lr / 10}]


def _step(model, opt, sched, X, y, t):
    idx = torch.arange(t * 8, t * 8 + 8) % 64
    loss = torch.nn.functional.mse_loss(model(X[idx]), y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


def test_per_group_multipliers_and_no_double_multiplication():
    model, X, y = _model_and_data()
    opt = torch.optim.SGD(_groups(model), lr=1.0)
    s0 = S.cosine(total_steps=50, warmup_steps=5)
    s1 = S.wsd(total_steps=50, decay_shape="1-sqrt", min_ratio=0.1)
    sched = ScheduleLR(opt, [s0, s1])
    for t in range(60):
        lrs = [g["lr"] for g in opt.param_groups]
        assert lrs[0] == pytest.approx(0.05 * s0(t), rel=1e-15, abs=1e-18)
        assert lrs[1] == pytest.approx(0.005 * s1(t), rel=1e-15, abs=1e-18)
        _step(model, opt, sched, X, y, t)
    assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]


def test_one_schedule_for_all_groups_and_wrong_count():
    model, _, _ = _model_and_data()
    opt = torch.optim.AdamW(_groups(model))
    sched = ScheduleLR(opt, {"name": "linear", "total_steps": 10, "min_ratio": 0.1})
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.005]
    for _ in range(10):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05 * 0.1, 0.005 * 0.1], rel=1e-14)
    with pytest.raises(ValueError, match="per parameter group"):
        ScheduleLR(torch.optim.AdamW(_groups(model)), [S.constant(total_steps=5)] * 3)


@pytest.mark.parametrize("resume_at", [1, 17, 40])
def test_resumed_scheduler_continues_exactly(resume_at):
    spec = {"name": "wsd", "total_steps": 60, "warmup_steps": 6, "decay_shape": "cosine", "min_ratio": 0.05}
    # uninterrupted run
    model, X, y = _model_and_data()
    opt = torch.optim.AdamW(_groups(model), weight_decay=0.1)
    sched = ScheduleLR(opt, spec)
    ref_loss, ref_lr = [], []
    for t in range(60):
        ref_lr.append([g["lr"] for g in opt.param_groups])
        ref_loss.append(_step(model, opt, sched, X, y, t))
    # interrupted run: save at resume_at, rebuild everything, load, continue
    model, X, y = _model_and_data()
    opt = torch.optim.AdamW(_groups(model), weight_decay=0.1)
    sched = ScheduleLR(opt, spec)
    losses, lrs = [], []
    for t in range(resume_at):
        lrs.append([g["lr"] for g in opt.param_groups])
        losses.append(_step(model, opt, sched, X, y, t))
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)  # plain data only
    model2, _, _ = _model_and_data(seed=99)
    opt2 = torch.optim.AdamW(_groups(model2, lr=123.0), weight_decay=0.1)  # wrong peak before loading
    sched2 = ScheduleLR(opt2, S.constant(total_steps=1))  # wrong schedule before loading
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.schedules[0] == S.build(spec) and sched2.base_lrs == [0.05, 0.005]
    for t in range(resume_at, 60):
        lrs.append([g["lr"] for g in opt2.param_groups])
        losses.append(_step(model2, opt2, sched2, X, y, t))
    assert lrs == ref_lr
    assert losses == ref_loss  # bit-identical


def test_scheduler_matches_torch_lambdalr():
    s = S.cyclic(total_steps=100, cycle_steps=7, warmup_steps=5, mode="triangular2")
    p = torch.nn.Parameter(torch.zeros(1))
    o1, o2 = torch.optim.SGD([p], lr=0.3), torch.optim.SGD([p], lr=0.3)
    a, b = ScheduleLR(o1, s), torch.optim.lr_scheduler.LambdaLR(o2, lambda t: s(t))
    for _ in range(100):
        assert o1.param_groups[0]["lr"] == o2.param_groups[0]["lr"]
        o1.step(), o2.step(), a.step(), b.step()


def test_lr_table_and_lookup():
    scheds = [S.cosine(total_steps=100, warmup_steps=10), {"name": "wsd", "total_steps": 80}, S.constant(total_steps=100)]
    tab = lr_table(scheds, 120, dtype=torch.float64)
    assert tab.shape == (3, 120) and tab.dtype == torch.float64
    for i, s in enumerate(scheds):
        np.testing.assert_array_equal(tab[i].numpy(), S.build(s)(np.arange(120)))
    step = torch.tensor(0)
    peak = torch.tensor([1e-3, 2e-3, 3e-3], dtype=torch.float64)
    for t in range(125):
        got = lr_at(tab, step, peak)
        np.testing.assert_array_equal(got.numpy(), tab[:, min(t, 119)].numpy() * peak.numpy())
        step += 1  # stays a device tensor: no host sync in the loop
    assert lr_table(scheds, 10).dtype == torch.float32


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA for torch.cuda.set_sync_debug_mode")
def test_lr_lookup_has_no_host_sync_on_cuda():
    tab = lr_table([S.cosine(total_steps=100)] * 64, 100, device="cuda")
    peak = torch.full((64,), 1e-3, device="cuda")
    step = torch.zeros((), dtype=torch.long, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(100):
            lrs = lr_at(tab, step, peak)
            step += 1
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert lrs.shape == (64,)


def test_schedule_figure():
    s = {"cos": S.cosine(total_steps=1000, warmup_steps=100, min_ratio=0.1), "ms": S.multistep(total_steps=100)}
    fig = schedule_figure(s, log_y=True)
    assert [t.name for t in fig.data] == ["cos", "ms"] and fig.layout.yaxis.type == "log"
    assert len(fig.layout.shapes) == 1 + 3  # warmup end; 3 milestones
    x = np.asarray(fig.data[1].x)
    y = np.asarray(fig.data[1].y)
    np.testing.assert_array_equal(y, S.multistep(total_steps=100)(x))
    assert 29 in x and 30 in x  # jumps stay sharp
    fig2 = schedule_figure([S.cosine(total_steps=1000)], x="tokens", tokens_per_step=2048, peak_lr=3e-4, points=50)
    assert max(fig2.data[0].x) == 1000 * 2048 and max(fig2.data[0].y) == pytest.approx(3e-4)
    assert fig2.layout.xaxis.title.text == "tokens"
    with pytest.raises(ValueError, match="tokens_per_step"):
        schedule_figure(["constant"], x="tokens")
