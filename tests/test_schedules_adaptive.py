"""Adaptive schedules: refined (Defazio et al. 2023), AutoLRS-style search, schedule-free."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch

import workbench.schedules as S
from workbench.schedules import AutoLRSConfig, ScheduleLR, autolrs, refine, refined_schedule
from workbench.schedules.adaptive import TrainState, forecast_exponential


# --- a tiny deterministic problem -----------------------------------------------------------
def _problem(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(32, 1))
    g = torch.Generator().manual_seed(7)
    X = torch.randn(256, 8, generator=g)
    y = torch.sin(X[:, :1]) + 0.5 * X[:, 1:2] + 0.05 * torch.randn(256, 1, generator=g)
    return model, X, y


def _make_step(model, opt, X, y, sched=None, norms=None):
    def train_step(t: int) -> float:
        idx = (torch.arange(32) + 32 * t) % X.shape[0]
        loss = torch.nn.functional.mse_loss(model(X[idx]), y[idx])  # dropout uses the torch RNG
        opt.zero_grad()
        loss.backward()
        if norms is not None:
            norms.append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))))
        opt.step()
        if sched is not None:
            sched.step()
        return loss.item()

    return train_step


# --- refined ---------------------------------------------------------------------------------
def test_refined_reference_values():
    np.testing.assert_allclose(refine([1, 1, 1, 1, 1]), [1, 0.75, 0.5, 0.25, 0], atol=1e-12)
    np.testing.assert_allclose(refine([1, 1, 2, 2]), [1, 1 / 3, 0.041666666666666664, 0], atol=1e-12)
    np.testing.assert_allclose(refine([1, 1, 2, 2]), [1, 0.3333, 0.041667, 0], atol=1e-4)


def test_refined_worst_case_is_linear_decay():
    T = 1000
    r = refined_schedule(np.full(T, 3.7))
    lin = S.linear(total_steps=T - 1)  # linear decay reaching 0 at the last update T-1
    np.testing.assert_allclose(r(np.arange(T)), lin(np.arange(T)), atol=1e-12)
    assert r.to_dict()["name"] == "table" and S.build(r.to_dict()) == r


def test_refined_median_filter_removes_a_spike_and_growing_norms_anneal_faster():
    g = np.ones(100)
    g[40] = 50.0  # a single outlier
    np.testing.assert_allclose(refine(g, tau=0.05), refine(np.ones(100)), atol=1e-12)
    assert not np.allclose(refine(g, tau=0.0), refine(np.ones(100)))
    rising = refine(np.linspace(1, 3, 100))
    assert rising[50] < refine(np.ones(100))[50]  # larger late gradients: faster annealing
    with pytest.raises(ValueError, match="grad_norms"):
        refine([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="tau"):
        refine([1.0, 1.0], tau=2)


def test_refined_schedule_trains_and_resumes_exactly():
    T = 300
    # run 1: constant LR, log gradient norms
    model, X, y = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    norms: list[float] = []
    step = _make_step(model, opt, X, y, norms=norms)
    for t in range(T):
        step(t)
    ref_sched = refined_schedule(norms, tau=0.1)
    assert ref_sched(0) > ref_sched(T - 1) and ref_sched(T - 1) == 0.0

    def fresh():
        model, X, y = _problem(seed=1)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        return model, opt, ScheduleLR(opt, ref_sched)

    # run 2 uninterrupted
    model, opt, sched = fresh()
    step = _make_step(model, opt, X, y, sched)
    ref = [step(t) for t in range(T)]
    # run 2 interrupted at 137: checkpoint (incl. RNG), rebuild from scratch, continue
    model, opt, sched = fresh()
    step = _make_step(model, opt, X, y, sched)
    losses = [step(t) for t in range(137)]
    buf = io.BytesIO()
    torch.save({"m": model.state_dict(), "o": opt.state_dict(), "s": sched.state_dict(), "rng": torch.get_rng_state()}, buf)
    buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    model, opt, _ = fresh()
    sched = ScheduleLR(opt, S.constant(total_steps=1))
    model.load_state_dict(ck["m"])
    opt.load_state_dict(ck["o"])
    sched.load_state_dict(ck["s"])
    torch.set_rng_state(ck["rng"])
    step = _make_step(model, opt, X, y, sched)
    losses += [step(t) for t in range(137, T)]
    assert losses == ref
    assert np.mean(ref[-20:]) < np.mean(ref[:20])


# --- AutoLRS ---------------------------------------------------------------------------------
def test_forecast_exponential_recovers_an_exponential():
    t = np.arange(1, 21)
    y = 2.0 * np.exp(-0.15 * t) + 0.7
    assert forecast_exponential(y, 200) == pytest.approx(0.7 + 2.0 * np.exp(-0.15 * 200), abs=1e-6)
    assert forecast_exponential([1.0, np.nan, 2.0], 10) == float("inf")


def test_train_state_restore_is_exact():
    model, X, y = _problem()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    step = _make_step(model, opt, X, y)
    for t in range(5):
        step(t)
    snap = TrainState.capture(model, opt)
    a = [step(t) for t in range(5, 15)]
    w_a = copy.deepcopy(model.state_dict())
    snap.restore(model, opt)
    b = [step(t) for t in range(5, 15)]
    assert a == b
    assert all(torch.equal(w_a[k], v) for k, v in model.state_dict().items())


def test_autolrs_search_and_state_restoring_is_exact():
    T = 300
    cfg = AutoLRSConfig(lr_min=1e-4, lr_max=0.5, trials=4, stage_steps=50, trial_steps=10, startup_trials=2, seed=0)
    model, X, y = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    res = autolrs(model, opt, _make_step(model, opt, X, y), T, cfg)
    assert [st.stage_steps for st in res.stages] == [50, 100, 150]  # tau doubles; last stage truncated
    assert [st.trial_steps for st in res.stages] == [10, 20, 40]  # tau' doubles
    assert res.trial_steps_spent == 4 * (10 + 20 + 40)
    assert all(1e-4 <= st.lr <= 0.5 and len(st.trial_lrs) == 4 for st in res.stages)
    for st in res.stages:
        assert st.lr == st.trial_lrs[int(np.argmin(st.forecasts))]
        np.testing.assert_array_equal(res.lrs[st.start:st.start + st.stage_steps], st.lr)
    # uninterrupted run at the committed LRs, from the same initial state: identical losses
    model, X, y = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    step = _make_step(model, opt, X, y)
    replay = []
    for t in range(T):
        for g in opt.param_groups:
            g["lr"] = float(res.lrs[t])
        replay.append(step(t))
    assert replay == res.losses.tolist()
    assert np.mean(res.losses[-20:]) < np.mean(res.losses[:20])
    sched = res.schedule()
    assert sched.total_steps == T and max(sched(np.arange(T))) == 1.0


def test_autolrs_config_validation():
    with pytest.raises(ValueError, match="lr_min"):
        AutoLRSConfig(lr_min=1.0, lr_max=0.1)
    with pytest.raises(ValueError, match="trial_steps"):
        AutoLRSConfig(trial_steps=2)


# --- schedule-free -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_schedule_free_pair(name):
    import schedulefree

    model, X, y = _problem()
    spec = {"name": "schedule_free", "total_steps": 60, "warmup_steps": 10, "optimizer": name}
    assert S.is_schedule_free(spec) and not S.is_schedule_free("cosine")
    opt, sched = S.schedule_free_pair(model.parameters(), 0.01 if name == "adamw" else 0.1, spec)
    assert isinstance(opt, (schedulefree.AdamWScheduleFree, schedulefree.SGDScheduleFree))
    s = S.build(spec)
    step = _make_step(model, opt, X, y, sched)
    losses = []
    for t in range(60):
        losses.append(step(t))
        base = 0.01 if name == "adamw" else 0.1
        # the package's own warmup is the multiplier of the "schedule_free" schedule
        assert opt.param_groups[0]["scheduled_lr"] == pytest.approx(base * s(t), rel=1e-12)
    opt.eval()  # evaluate / save in eval mode
    model.eval()
    with torch.no_grad():
        final = torch.nn.functional.mse_loss(model(X), y).item()
    assert final < losses[0]
    assert s(0) == pytest.approx(0.1) and s(10) == 1.0
