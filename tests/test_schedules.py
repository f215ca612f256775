"""Schedules: formulas vs torch.optim.lr_scheduler and paper reference values, registry, combinators."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L

import workbench.schedules as S
from workbench.schedules import ScheduleParamError, UnknownScheduleError, build

TOL = 1e-12


def torch_lrs(make, steps: int, lr0: float = 1.0) -> np.ndarray:
    """LR used by each of ``steps`` optimizer updates under a torch scheduler (lr0 = 1: multipliers)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr0)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.asarray(out)


T = 300
TORCH_CASES = {
    "step": (lambda o: L.StepLR(o, 30, 0.5), dict(name="step", total_steps=T, step_size=30, gamma=0.5)),
    "multistep": (lambda o: L.MultiStepLR(o, [30, 60, 90], 0.1), dict(name="multistep", total_steps=T)),
    "exponential": (lambda o: L.ExponentialLR(o, 0.99), dict(name="exponential", total_steps=T, gamma=0.99)),
    "linear": (lambda o: L.LinearLR(o, 1.0, 0.1, total_iters=T), dict(name="linear", total_steps=T, min_ratio=0.1)),
    "cosine": (lambda o: L.CosineAnnealingLR(o, T_max=T, eta_min=0.1), dict(name="cosine", total_steps=T, min_ratio=0.1)),
    "sgdr_mult2": (lambda o: L.CosineAnnealingWarmRestarts(o, T_0=20, T_mult=2, eta_min=0.05),
                   dict(name="cosine_restarts", total_steps=T, cycle_steps=20, cycle_mult=2, min_ratio=0.05)),
    "sgdr_mult1": (lambda o: L.CosineAnnealingWarmRestarts(o, T_0=30), dict(name="cosine_restarts", total_steps=T, cycle_steps=30)),
    "onecycle": (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=T), dict(name="onecycle", total_steps=T)),
    "onecycle_3ph_lin": (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=T, three_phase=True, anneal_strategy="linear"),
                         dict(name="onecycle", total_steps=T, three_phase=True, anneal_shape="linear")),
    "cyclic": (lambda o: L.CyclicLR(o, base_lr=0.1, max_lr=1.0, step_size_up=20, cycle_momentum=False),
               dict(name="cyclic", total_steps=T, cycle_steps=20)),
    "cyclic_tri2": (lambda o: L.CyclicLR(o, base_lr=0.1, max_lr=1.0, step_size_up=20, step_size_down=10, mode="triangular2",
                                         cycle_momentum=False),
                    dict(name="cyclic", total_steps=T, cycle_steps=20, cycle_steps_down=10, mode="triangular2")),
    "cyclic_exp": (lambda o: L.CyclicLR(o, base_lr=0.1, max_lr=1.0, step_size_up=20, mode="exp_range", gamma=0.99,
                                        cycle_momentum=False),
                   dict(name="cyclic", total_steps=T, cycle_steps=20, mode="exp_range", gamma=0.99)),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_matches_torch_scheduler_at_every_step(case):
    make, spec = TORCH_CASES[case]
    ref = torch_lrs(make, T)
    ours = build(spec)(np.arange(T))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=TOL)
    # key points: start, every boundary, end
    s = build(spec)
    for b in (0, *[int(math.ceil(x)) for x in s.boundaries if x < T], T - 1):
        assert abs(s(b) - ref[b]) <= TOL


def test_torch_multiplier_times_peak_is_absolute_lr():
    ref = torch_lrs(lambda o: L.CosineAnnealingLR(o, T_max=50, eta_min=0.003), 50, lr0=0.03)
    np.testing.assert_allclose(0.03 * S.cosine(total_steps=50, min_ratio=0.1)(np.arange(50)), ref, rtol=1e-12)


# --- reference values from papers.md --------------------------------------------------------
@pytest.mark.parametrize("shape,mid", [("linear", 0.5), ("cosine", 0.5), ("1-sqrt", 1 - math.sqrt(0.5))])
def test_wsd_hf_reference(shape, mid):
    s = S.wsd(total_steps=100, warmup_steps=10, decay_steps=10, decay_shape=shape, warmup_from_zero=True)
    assert s(5) == pytest.approx(0.5, abs=TOL)
    assert s(10) == pytest.approx(1.0, abs=TOL) and s(90) == pytest.approx(1.0, abs=TOL)
    assert s(95) == pytest.approx(mid, abs=TOL)
    assert s(100) == pytest.approx(0.0, abs=TOL)
    if shape == "1-sqrt":
        assert s(95) == pytest.approx(0.29289, abs=1e-5)


def test_wsd_hf_min_ratio_reference():
    s = S.wsd(total_steps=100, warmup_steps=10, decay_steps=10, decay_shape="cosine", min_ratio=0.1,
              warmup_init=0.1, warmup_from_zero=True)
    assert s(0) == pytest.approx(0.1, abs=TOL)
    assert s(95) == pytest.approx(0.55, abs=TOL)
    assert s(100) == pytest.approx(0.1, abs=TOL)


def test_wsd_decay_fraction_equals_decay_steps():
    a = S.wsd(total_steps=1000, decay_fraction=0.2, decay_shape="1-sqrt")
    b = S.wsd(total_steps=1000, decay_steps=200, decay_shape="1-sqrt")
    np.testing.assert_array_equal(a(np.arange(1001)), b(np.arange(1001)))
    assert a.boundaries == (800.0,)


def test_rex_reference():
    s = S.rex(total_steps=100)
    np.testing.assert_allclose(s([25, 50, 75]), [0.857142857142857, 2 / 3, 0.4], atol=1e-12)
    assert s(0) == 1.0 and s(100) == 0.0


def test_inverse_sqrt_hf_reference():
    s = S.inverse_sqrt(total_steps=1000, warmup_steps=100, warmup_from_zero=True)
    assert s(400) == pytest.approx(0.5, abs=TOL)
    assert s(50) == pytest.approx(0.5, abs=TOL) and s(100) == pytest.approx(1.0, abs=TOL)
    for t in (100, 250, 999):  # HF: 1/sqrt((t + tau - W)/tau), tau = W
        assert s(t) == pytest.approx(1 / math.sqrt((t + 100 - 100) / 100), abs=TOL)


def test_onecycle_defaults_reference():
    s = S.onecycle(total_steps=1000)
    assert s(0) == pytest.approx(1 / 25, abs=TOL)
    assert s(299) == pytest.approx(1.0, abs=TOL)  # pct_start 0.3: peak at 0.3 T - 1
    assert s(999) == pytest.approx(1 / 25 / 1e4, abs=TOL)


def test_multistep_30_60_90_reference():
    s = S.multistep(total_steps=100, milestones=[30, 60, 90], gamma=0.1)
    assert 0.1 * s(29) == pytest.approx(0.1, abs=TOL)
    assert 0.1 * s(30) == pytest.approx(0.01, abs=TOL)
    assert 0.1 * s(60) == pytest.approx(1e-3, abs=TOL)
    assert 0.1 * s(90) == pytest.approx(1e-4, abs=TOL)


def test_power_scheduler_formula():
    B, tps = 8, 8 * 2048
    kw = dict(a=4.6, b=-0.51, batch_size=B, tokens_per_step=tps, max_lr=0.02)
    s = S.power(total_steps=10000, warmup_steps=100, decay_fraction=0.1, warmup_from_zero=True, **kw)

    def eta(n, beta=B):  # Shen et al. 2024: min(eta_max, beta a n^b)
        return min(0.02, beta * 4.6 * n ** -0.51)

    assert eta(100 * tps) == 0.02 and eta(5000 * tps) < 0.02  # both branches are exercised
    for t in (100, 500, 5000, 9000):
        assert 0.02 * s(t) == pytest.approx(eta(t * tps), rel=1e-12)
    assert 0.02 * s(50) == pytest.approx(0.5 * eta(100 * tps), rel=1e-12)  # warmup to eta(n_W)
    assert 0.02 * s(9500) == pytest.approx(0.5 * eta(9000 * tps), rel=1e-12)  # linear final decay
    assert s(10000) == 0.0
    # doubling beta at the same tokens doubles the LR below the cap
    s2 = S.power(total_steps=10000, warmup_steps=100, decay_fraction=0.1, **{**kw, "batch_size": 2 * B})
    assert s2(5000) / s(5000) == pytest.approx(2.0, rel=1e-12)


def test_infinite_schedule_formula():
    W, Tcd, Ta, T_ = 10, 40, 30, 200
    c, r = 0.3, 0.03
    s = S.infinite(total_steps=T_, warmup_steps=W, cooldown_steps=Tcd, const_ratio=c, anneal_steps=Ta, min_ratio=r,
                   warmup_from_zero=True)
    t_ann = T_ - Ta
    assert s(0) == 0.0 and s(5) == pytest.approx(0.5, abs=TOL)
    for t in (W, 20, 30, W + Tcd - 1):
        assert s(t) == pytest.approx(c + 0.5 * (1 - c) * (1 + math.cos(math.pi * (t - W) / Tcd)), abs=TOL)
    for t in (W + Tcd, 100, t_ann):
        assert s(t) == pytest.approx(c, abs=TOL)
    for t in (t_ann, 180, T_):
        assert s(t) == pytest.approx(c * (r / c) ** ((t - t_ann) / Ta), abs=TOL)
    assert s(T_) == pytest.approx(r, abs=TOL)


def test_cosine_with_warmup_hf_formula():
    W, T_ = 50, 500
    s = S.cosine(total_steps=T_, warmup_steps=W, warmup_from_zero=True)
    for t in (0, 25, 49, 50, 51, 275, 499, 500):
        ref = t / W if t < W else 0.5 * (1 + math.cos(math.pi * (t - W) / (T_ - W)))
        assert s(t) == pytest.approx(ref, abs=TOL)


def test_two_stage_and_piecewise():
    s = S.two_stage(total_steps=160, switch_step=80, stage2_ratio=0.3)
    assert s(79) == 1.0 and s(80) == 0.3 and s(160) == 0.3
    p = S.piecewise_constant(total_steps=100, boundaries=[10.5, 50], values=[1, 0.5, 0.25])
    np.testing.assert_array_equal(p([0, 10, 11, 49, 50, 100]), [1, 1, 0.5, 0.5, 0.25, 0.25])


# --- warmup ------------------------------------------------------------------------------
def _example_specs() -> list[dict]:
    return [
        dict(name="constant", total_steps=100),
        dict(name="step", total_steps=100, step_size=30),
        dict(name="multistep", total_steps=100),
        dict(name="exponential", total_steps=100, gamma=0.97),
        dict(name="linear", total_steps=100, min_ratio=0.1),
        dict(name="cosine", total_steps=100),
        dict(name="cosine_restarts", total_steps=100, cycle_steps=10, cycle_mult=2),
        dict(name="inverse_sqrt", total_steps=100),
        dict(name="onecycle", total_steps=100),
        dict(name="wsd", total_steps=100, decay_shape="1-sqrt"),
        dict(name="rex", total_steps=100),
        dict(name="power", total_steps=100, batch_size=4, tokens_per_step=4096),
        dict(name="infinite", total_steps=100, cooldown_steps=20, const_ratio=0.5, anneal_steps=20, min_ratio=0.1),
        dict(name="cyclic", total_steps=100, cycle_steps=10),
        dict(name="piecewise_constant", total_steps=100, boundaries=[50], values=[1, 0.1]),
        dict(name="two_stage", total_steps=100, switch_step=60, stage2_ratio=0.2),
        dict(name="table", total_steps=100, values=[1.0, 0.5, 0.0]),
        dict(name="optimized", total_steps=100, knots=[1.0, 1.0, 0.4, 0.0], warmup_steps=10),
        dict(name="optimized", total_steps=100, knots=[1.0, 0.5], knot_steps=[20.0, 80.0]),
        dict(name="schedule_free", total_steps=100, warmup_steps=10),
        dict(name="warmup", schedule=dict(name="cosine", total_steps=90), warmup_steps=10),
        dict(name="sequence", schedules=[dict(name="cosine", total_steps=50), dict(name="constant", total_steps=50)]),
        dict(name="scale", schedule=dict(name="cosine", total_steps=100), factor=0.5),
        dict(name="floor", schedule=dict(name="cosine", total_steps=100), min_ratio=0.2),
        dict(name="rewarm", first=dict(name="cosine", total_steps=50, min_ratio=0.1),
             then=dict(name="cosine", total_steps=40), warmup_steps=10),
    ]


def test_examples_cover_every_registered_schedule():
    assert {d["name"] for d in _example_specs()} == set(S.available())


@pytest.mark.parametrize("spec", _example_specs(), ids=lambda d: d["name"])
def test_round_trip_through_plain_data(spec):
    s = build(spec)
    d = json.loads(json.dumps(s.to_dict()))
    s2 = build(d)
    assert s2 == s and s2.to_dict() == s.to_dict()
    steps = np.arange(s.total_steps + 5)
    np.testing.assert_array_equal(s(steps), s2(steps))
    assert isinstance(s(0), float) and s(steps).shape == steps.shape
    vals = s(steps)
    assert np.all(np.isfinite(vals)) and np.all(vals >= 0)
    # array evaluation equals scalar evaluation
    np.testing.assert_array_equal(vals[::7], [s(int(t)) for t in steps[::7]])


def test_yaml_round_trip():
    yaml = pytest.importorskip("yaml")
    s = S.rewarm(S.wsd(total_steps=200, warmup_steps=20, decay_shape="cosine", min_ratio=0.05),
                 S.cosine(total_steps=100, min_ratio=0.1), warmup_steps=10)
    assert build(yaml.safe_load(yaml.safe_dump(s.to_dict()))) == s


@pytest.mark.parametrize("spec", [d for d in _example_specs() if d["name"] not in ("warmup", "rewarm")
                                  and any(p.name == "warmup_steps" for p in S.param_specs(d["name"]))],
                         ids=lambda d: d["name"])
def test_default_warmup_never_gives_zero_at_first_update(spec):
    spec = {**spec, "warmup_steps": 10}
    s = build(spec)
    assert s(0) > 0
    z = build({**spec, "warmup_from_zero": True}) if "warmup_from_zero" in {p.name for p in S.param_specs(spec["name"])} else None
    if z is not None:
        assert z(0) == 0.0  # the papers' convention, explicit


def test_warmup_shapes():
    lin = S.constant(total_steps=100, warmup_steps=10)
    np.testing.assert_allclose(lin(np.arange(11)), [(t + 1) / 10 for t in range(10)] + [1.0], atol=TOL)
    ex = S.constant(total_steps=100, warmup_steps=10, warmup_shape="exponential", warmup_init=0.01)
    np.testing.assert_allclose(ex(np.arange(10)), [0.01 ** (1 - (t + 1) / 10) for t in range(10)], rtol=TOL)
    assert ex(9) == pytest.approx(1.0) and ex(100) == 1.0


# --- combinators ---------------------------------------------------------------------------
def test_nesting_never_changes_a_schedule():
    a, b, c = S.cosine(total_steps=30), S.constant(total_steps=20), S.linear(total_steps=25, min_ratio=0.2)
    flat = S.sequence([a, b, c])
    nested = S.sequence([a, S.sequence([b, c])])
    steps = np.arange(80)
    np.testing.assert_array_equal(flat(steps), nested(steps))
    assert flat.boundaries == nested.boundaries == (30.0, 50.0)
    # each phase sees its own local step
    np.testing.assert_array_equal(flat(np.arange(50, 75)), c(np.arange(25)))
    np.testing.assert_array_equal(flat(np.arange(0, 30)), a(np.arange(30)))
    # the inner schedule object is unchanged by being composed
    np.testing.assert_array_equal(a(np.arange(31)), S.cosine(total_steps=30)(np.arange(31)))


def test_with_warmup_follows_the_one_warmup_rule_and_scale_floor():
    # one rule: total length T includes the warmup, whichever way the warmup is written
    inner = S.cosine(total_steps=90, min_ratio=0.1)
    w = S.with_warmup(inner, 10)
    t = np.arange(0, 95)
    np.testing.assert_allclose(w(t), S.cosine(total_steps=90, warmup_steps=10, min_ratio=0.1)(t), rtol=1e-12, atol=0)
    assert w.total_steps == 90 and w.boundaries[0] == 10.0 and w(0) == pytest.approx(1 / 10)
    assert w(10) == pytest.approx(1.0) and w(90) == pytest.approx(0.1)
    for shape in ("linear", "exponential"):
        kw = {"warmup_shape": shape, "warmup_init": 0.01} if shape == "exponential" else {}
        lib = S.linear(total_steps=50, warmup_steps=7, **kw)
        wrapped = S.with_warmup(S.linear(total_steps=50), 7, shape=shape, init=kw.get("warmup_init", 0.0))
        np.testing.assert_allclose(wrapped(np.arange(52)), lib(np.arange(52)), rtol=1e-12, atol=1e-15)
    with pytest.raises(S.ScheduleParamError, match="warmup_steps"):
        S.with_warmup(inner, 91)
    np.testing.assert_allclose(S.scale(inner, 0.5)(np.arange(91)), 0.5 * inner(np.arange(91)), rtol=0)
    f = S.floor(S.cosine(total_steps=90), 0.2)
    assert f(90) == 0.2 and f(0) == 1.0


def test_rewarm_continual_pretraining():
    first = S.cosine(total_steps=100, min_ratio=0.1)
    then = S.cosine(total_steps=100)
    s = S.rewarm(first, then, warmup_steps=10)
    assert s(99) == pytest.approx(first(99))
    assert s(100) == pytest.approx(0.1)  # re-warming starts where the first schedule ended
    assert s(105) == pytest.approx(0.55)
    assert s(110) == pytest.approx(1.0) and s(200) == pytest.approx(0.0, abs=1e-15)
    assert s.total_steps == 200  # the re-warmup lies inside then's 100 updates (the one warmup rule)


def test_tokens_axis():
    s = S.cosine(total_steps=1000)
    assert s.total_tokens(4096) == 4096 * 1000
    np.testing.assert_array_equal(s.at_tokens(np.array([0, 4096 * 500]), 4096), s([0, 500]))


def test_steps_past_the_end_hold_the_final_value():
    s = S.cosine(total_steps=100, min_ratio=0.1)
    np.testing.assert_array_equal(s([100, 101, 10**9]), [0.1, 0.1, 0.1])


# --- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize("spec,param", [
    (dict(name="cosine", total_steps=-5), "total_steps"),
    (dict(name="cosine", total_steps=100, warmup_steps=-1), "warmup_steps"),
    (dict(name="cosine", total_steps=100, warmup_steps=200), "warmup_steps"),
    (dict(name="cosine", total_steps=100, min_ratio=1.5), "min_ratio"),
    (dict(name="wsd", total_steps=100, decay_shape="cubic"), "decay_shape"),
    (dict(name="wsd", total_steps=100, warmup_steps=50, decay_steps=80), "decay_steps"),
    (dict(name="wsd", total_steps=100, decay_shape="exponential"), "min_ratio"),
    (dict(name="cosine", total_steps=100, decay_steps=5), "decay_steps"),
    (dict(name="cosine", total_steps="many"), "total_steps"),
    (dict(name="cosine", total_steps=10.5), "total_steps"),
    (dict(name="cosine"), "total_steps"),
    (dict(name="multistep", total_steps=100, milestones=[60, 30]), "milestones"),
    (dict(name="exponential", total_steps=100, gamma=1.5), "gamma"),
    (dict(name="constant", total_steps=100, warmup_steps=10, warmup_shape="exponential"), "warmup_init"),
    (dict(name="infinite", total_steps=100, cooldown_steps=90, const_ratio=0.5, anneal_steps=20, min_ratio=0.1),
     "cooldown_steps"),
    (dict(name="onecycle", total_steps=100, pct_start=0.0), "pct_start"),
    (dict(name="warmup", schedule=dict(name="cosine", total_steps=-1)), "total_steps"),
])
def test_bad_parameters_name_the_parameter_and_range(spec, param):
    with pytest.raises(ScheduleParamError) as e:
        build(spec)
    assert e.value.param == param and "allowed" in str(e.value) and param in str(e.value)
    assert isinstance(e.value, ValueError)


def test_unknown_name_and_negative_step():
    with pytest.raises(UnknownScheduleError, match="available"):
        build("cosinus", total_steps=10)
    with pytest.raises(ValueError):
        build({"total_steps": 10})
    with pytest.raises(ScheduleParamError, match="step"):
        S.cosine(total_steps=10)(-1)
    with pytest.raises(ScheduleParamError, match="step"):
        S.cosine(total_steps=10)(np.array([0.0, np.nan]))


def test_param_specs_for_widgets():
    specs = {p.name: p for p in S.param_specs("wsd")}
    assert specs["total_steps"].required and specs["total_steps"].low == 1
    assert specs["decay_shape"].choices == ("linear", "cosine", "1-sqrt", "exponential")
    assert specs["min_ratio"].low == 0.0 and specs["min_ratio"].high == 1.0
    # one vocabulary: every schedule with a warmup uses the same names
    for name in S.available():
        names = {p.name for p in S.param_specs(name)}
        assert not names & {"decay_iters", "transition_steps", "num_warmup_steps", "T_max", "eta_min"}
        if "warmup_steps" in names and name not in ("rewarm", "schedule_free"):
            assert {"warmup_shape", "warmup_init", "warmup_from_zero"} <= names
    # every default is itself valid
    for name in S.available():
        for p in S.param_specs(name):
            if p.default is not None and p.low is not None and isinstance(p.default, (int, float)):
                assert p.low <= p.default and (p.high is None or p.default <= p.high)
