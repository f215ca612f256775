"""Sweep specs: YAML / dict round trips, strategies, linked axes and validation before anything runs."""

from __future__ import annotations

import math

import pytest

from workbench.sweeps.spec import SweepSpec, SweepSpecError

YAML = """
name: schedules
strategy: grid
base: {task: modular, task_params: {p: 23, frac: 0.5}, model: mlp, steps: 50, lr: 0.001, batch_size: 64}
axes:
  schedule: [cosine, linear, {name: wsd, decay_frac: 0.2}]
  weight_decay: {grid: [0.0, 1.0, 3]}
linked:
  - {param: lr, scale_with: batch_size, ref: 32, power: 0.5}
seeds: [0, 1]
objective: {metric: test_loss, mode: min}
target: {metric: test_acc, value: 0.99, mode: max}
"""


def test_yaml_dict_round_trip(tmp_path):
    s = SweepSpec.from_yaml(YAML)
    assert SweepSpec.from_dict(s.to_dict()) == s
    p = tmp_path / "spec.yaml"
    s.to_yaml(p)
    assert SweepSpec.from_yaml(p) == s
    assert SweepSpec.from_yaml(p).to_dict() == s.to_dict()


def test_grid_members_product_times_seeds_with_linked_lr():
    s = SweepSpec.from_yaml(YAML)
    ms = s.members()
    assert len(ms) == 3 * 3 * 2 == s.n_members()
    assert [m.index for m in ms] == list(range(18))
    assert {m.seed for m in ms} == {0, 1}
    assert ms[0].config["schedule"] == {"name": "cosine"}
    assert ms[-1].config["schedule"] == {"name": "wsd", "decay_frac": 0.2}
    assert sorted({m.config["weight_decay"] for m in ms}) == [0.0, 0.5, 1.0]
    # LR scaled with the square root of the batch size: 1e-3 * sqrt(64 / 32)
    assert all(m.config["lr"] == pytest.approx(1e-3 * math.sqrt(2)) for m in ms)
    assert ms[0].config["task_params"] == {"p": 23, "frac": 0.5}
    assert len({m.key for m in ms}) == 18          # every member distinct


def test_log_grid_and_dotted_axes():
    s = SweepSpec.from_dict({"name": "x", "base": {"task": "modular"},
                             "axes": {"lr": {"log_grid": [1e-4, 1e-2, 3]}, "task_params.frac": [0.3, 0.5]}})
    ms = s.members()
    assert [m.config["lr"] for m in ms[::2]] == pytest.approx([1e-4, 1e-3, 1e-2])
    assert ms[1].config["task_params"] == {"frac": 0.5}


def test_random_strategy_is_seeded_and_in_range():
    d = {"name": "r", "strategy": "random", "budget": {"trials": 50}, "seeds": [0],
         "axes": {"lr": {"log_uniform": [1e-4, 1e-1]}, "wd": {"uniform": [0.0, 2.0]},
                  "bs": {"int_uniform": [8, 16]}, "schedule": ["cosine", "linear"]}}
    a, b = SweepSpec.from_dict(d).members(), SweepSpec.from_dict(d).members()
    assert [m.config for m in a] == [m.config for m in b]
    lrs = [m.config["lr"] for m in a]
    assert all(1e-4 <= x <= 1e-1 for x in lrs) and min(lrs) < 1e-3 < max(lrs)   # spread in log space
    assert all(0 <= m.config["wd"] <= 2 for m in a)
    assert {m.config["bs"] for m in a} <= set(range(8, 17)) and all(isinstance(m.config["bs"], int) for m in a)
    assert {m.config["schedule"]["name"] for m in a} == {"cosine", "linear"}
    c = SweepSpec.from_dict({**d, "sampler_seed": 1}).members()
    assert [m.config for m in c] != [m.config for m in a]


@pytest.mark.parametrize("patch, field", [
    ({"strategy": "hyperband"}, "strategy"),
    ({"name": ""}, "name"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"seeds": [-1]}, "seeds"),
    ({"axes": {"lr": 0.1}}, "axes.lr"),
    ({"axes": {"lr": {"uniform": [1, 0]}}, "strategy": "random", "budget": {"trials": 2}}, "axes.lr.uniform"),
    ({"axes": {"lr": {"log_uniform": [0, 1]}}, "strategy": "random", "budget": {"trials": 2}}, "axes.lr.log_uniform"),
    ({"axes": {"lr": {"uniform": [0, 1]}}}, "axes.lr"),                 # a range in a grid
    ({"strategy": "random"}, "budget.trials"),
    ({"budget": {"trials": 0}}, "budget.trials"),
    ({"objective": {"metric": "test_loss", "mode": "lowest"}}, "objective.mode"),
    ({"target": {"metric": "test_acc"}}, "target.value"),
    ({"linked": [{"param": "lr", "scale_with": "batch_size"}]}, "linked[0].ref"),
    ({"resources": {"gpus_per_trial": 0}}, "resources.gpus_per_trial"),
    ({"axes": {"seed": [1, 2]}}, "axes.seed"),
    ({"colour": "red"}, "colour"),
])
def test_bad_specs_name_the_field(patch, field):
    d = {"name": "ok", "base": {"task": "modular"}, "axes": {"lr": [1e-3]}, **patch}
    with pytest.raises(SweepSpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        SweepSpec.from_dict(d)


def test_validate_checks_registry_names():
    s = SweepSpec.from_dict({"name": "x", "base": {"task": "modular"}, "axes": {"schedule": ["cosine", "cosinus"]}})
    with pytest.raises(SweepSpecError, match="cosinus.*available"):
        s.validate(engine=False)
    s = SweepSpec.from_dict({"name": "x", "base": {"task": "modular"}, "axes": {"optimizer": ["adamw", "adamm"]}})
    with pytest.raises(SweepSpecError, match="adamm"):
        s.validate(engine=False)


def test_max_members_budget():
    s = SweepSpec.from_dict({"name": "x", "axes": {"lr": [1, 2, 3]}, "seeds": [0, 1], "budget": {"max_members": 5}})
    with pytest.raises(SweepSpecError, match="budget.max_members"):
        s.members()


# ---------------------------------------------------------------------------------------- pruning
BAYES = {"name": "bo", "strategy": "bayes", "budget": {"trials": 4},
         "base": {"task": "modular", "task_params": {"p": 11}, "model": "mlp", "steps": 100, "log_every": 5},
         "axes": {"lr": {"log_uniform": [1e-4, 1e-1]}}, "objective": {"metric": "train_loss", "mode": "min"}}


@pytest.mark.parametrize("pruning", [True, {"at_fraction": 0.3, "threshold": 0.1, "min_points": 5,
                                             "families": ["pow3", "ilog2"]}])
def test_pruning_round_trips_through_dict_and_yaml(pruning, tmp_path):
    s = SweepSpec.from_dict({**BAYES, "pruning": pruning}).validate()
    assert s.pruning is not None and set(s.pruning) == {"at_fraction", "threshold", "min_points", "families"}
    if pruning is not True:
        assert s.pruning == pruning
    assert SweepSpec.from_dict(s.to_dict()) == s
    s.to_yaml(tmp_path / "bo.yaml")
    back = SweepSpec.from_yaml(tmp_path / "bo.yaml")
    assert back == s and back.pruning == s.pruning
    assert SweepSpec.from_dict({**BAYES, "pruning": False}).pruning is None
    assert "pruning" not in SweepSpec.from_dict(BAYES).to_dict()


def test_pruning_step_keeps_the_fraction_of_the_run():
    s = SweepSpec.from_dict({**BAYES, "pruning": {"at_fraction": 0.25}})
    assert [s.pruning_step(n) for n in (100, 10, 3, 1)] == [25, 2, 1, 1]


@pytest.mark.parametrize("pruning, field", [
    ("yes", "pruning"),
    ({"at_fraction": 1.0}, "pruning.at_fraction"),
    ({"at_fraction": 0}, "pruning.at_fraction"),
    ({"threshold": 1.5}, "pruning.threshold"),
    ({"threshold": "low"}, "pruning.threshold"),
    ({"min_points": 3}, "pruning.min_points"),
    ({"min_points": 8.5}, "pruning.min_points"),
    ({"families": []}, "pruning.families"),
    ({"families": ["pow3", "cubic"]}, "pruning.families"),
    ({"patience": 3}, "pruning"),
])
def test_bad_pruning_names_the_field_and_range(pruning, field):
    with pytest.raises(SweepSpecError, match=field.replace(".", r"\.")):
        SweepSpec.from_dict({**BAYES, "pruning": pruning})


def test_pruning_needs_bayes_and_enough_logged_points():
    with pytest.raises(SweepSpecError, match="pruning: needs strategy 'bayes'"):
        SweepSpec.from_dict({"name": "g", "axes": {"lr": [1e-3]}, "pruning": True})
    # pausing at step 50 with log_every 10 leaves 4 values (10..40) < min_points 8: could never prune
    s = SweepSpec.from_dict({**BAYES, "base": {**BAYES["base"], "log_every": 10}, "pruning": True})
    with pytest.raises(SweepSpecError, match="pruning.at_fraction.*4 logged values"):
        s.validate()
    # a test_* objective is logged every eval_every steps
    s = SweepSpec.from_dict({**BAYES, "objective": {"metric": "test_loss"}, "pruning": True})
    with pytest.raises(SweepSpecError, match="eval_every=100"):
        s.validate()
    SweepSpec.from_dict({**BAYES, "pruning": {"min_points": 4}, "base": {**BAYES["base"], "log_every": 10}}).validate()


def test_yaml_reads_exponents_without_a_dot_as_numbers():
    """PyYAML (YAML 1.1) would read ``1e-5`` as a string; specs written by hand use that form."""
    text = ("name: bo\nstrategy: bayes\nbudget: {trials: 4}\nbase: {task: modular, model: mlp, steps: 100, "
            "lr: 3e-3, weight_decay: 1E-2}\naxes: {lr: {log_uniform: [1e-5, 1e-1]}}\n"
            "objective: {metric: train_loss, mode: min}\n")
    s = SweepSpec.from_yaml(text).validate()
    assert s.axes[0].low == 1e-5 and s.axes[0].high == 0.1
    assert s.base["lr"] == 3e-3 and s.base["weight_decay"] == 0.01
    from workbench import yamlio

    assert yamlio.load("[1, 1.5, 2e3, '1e-3', yes, null, 0x10]") == [1, 1.5, 2000.0, "1e-3", True, None, 16]
