"""ExtrapolationPruner (Domhan et al. 2015's predictive termination) with plain Optuna: hopeless trials are
pruned early, the best trial is untouched and fewer steps are spent than without pruning; and the engine's
``until`` pause that the sweep runner prunes with (resume finishes a paused run exactly)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

from workbench.sweeps.pruning import ExtrapolationPruner

STEPS = 100
# final values 0.2 above each asymptote E; trial 0 completes first and sets the bar (≈ 1.2)
ASYMPTOTES = [1.0, 3.0, 0.9, 2.5, 2.8]


def _run(pruner: optuna.pruners.BasePruner | None, sign: float = 1.0) -> tuple[optuna.study.Study, int]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if sign > 0 else "maximize",
                                pruner=pruner or optuna.pruners.NopPruner())
    for e in ASYMPTOTES:
        study.enqueue_trial({"E": e})
    spent = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal spent
        e = trial.suggest_float("E", 0.0, 5.0)
        rng = np.random.default_rng(trial.number)
        v = 0.0
        for s in range(1, STEPS + 1):
            v = sign * (e + 2.0 * s ** -0.5 + 0.005 * rng.standard_normal())
            spent += 1
            trial.report(v, s)
            if s >= 20 and s % 10 == 0 and trial.should_prune():
                raise optuna.TrialPruned()
        return v

    study.optimize(objective, n_trials=len(ASYMPTOTES))
    return study, spent


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["loss", "accuracy"])
def test_hopeless_trials_are_pruned_and_the_best_is_kept(sign: float, one_torch_thread) -> None:
    pruner = ExtrapolationPruner(0.05, families=("pow3", "ilog2"), bootstrap=16)
    pruned_study, spent = _run(pruner, sign)
    full_study, full_spent = _run(None, sign)
    states = {t.params["E"]: t.state for t in pruned_study.trials}
    assert states[3.0] == states[2.5] == states[2.8] == optuna.trial.TrialState.PRUNED
    assert states[1.0] == states[0.9] == optuna.trial.TrialState.COMPLETE
    assert spent < full_spent == STEPS * len(ASYMPTOTES)
    assert pruned_study.best_trial.params == full_study.best_trial.params == {"E": 0.9}
    assert pruned_study.best_value == full_study.best_value


def test_no_pruning_without_a_completed_trial_or_enough_points(one_torch_thread) -> None:
    study = optuna.create_study(pruner=ExtrapolationPruner(min_points=8))
    t = study.ask()
    for s in range(1, 31):
        t.report(5.0 + s ** -0.5, s)
    assert not t.should_prune()  # nobody has completed yet
    study.tell(t, 1.0)
    t2 = study.ask()
    for s in range(1, 6):
        t2.report(5.0 + s ** -0.5, s)
    assert not t2.should_prune()  # 5 points < min_points, even though hopeless
    t2.report(float("nan"), 6)
    assert t2.should_prune()  # a diverged run is pruned at once


@pytest.mark.parametrize("kw", [{"threshold": 0.0}, {"threshold": 1.0}, {"min_points": 2}, {"final_step": 0},
                                {"n_warmup_steps": -1}])
def test_bad_arguments(kw) -> None:
    with pytest.raises(ValueError, match=next(iter(kw))):
        ExtrapolationPruner(**kw)


# ---------------------------------------------------------------------------------------- pausing the engine
CFG = {"task": "modular", "task_params": {"p": 11, "frac": 0.5}, "model": "mlp", "model_params": {"hidden": [16]},
       "steps": 40, "lr": 0.02, "schedule": {"name": "cosine"}, "log_every": 5, "eval_every": 10, "device": "cpu"}


def test_until_pauses_without_changing_the_horizon_and_resume_finishes_exactly(tmp_path, one_torch_thread) -> None:
    from workbench.store import RunStore
    from workbench.train import resume as resume_run
    from workbench.train import train

    store = RunStore(tmp_path / "r.db")
    full = train(CFG, store, run_id="full", return_params=True)
    paused = train(CFG, store, run_id="paused", until=15)
    assert paused.status == "interrupted" and paused.step == 15
    assert store.get_run("paused")["status"] == "interrupted"
    assert store.metrics("paused", "train_loss")["step"].max() < 15
    # the cosine schedule of the paused run is the 40-step one: its LRs so far equal the full run's
    lr_p, lr_f = store.metrics("paused", "lr"), store.metrics("full", "lr")
    assert lr_p["value"].tolist() == lr_f.loc[lr_f["step"] < 15, "value"].tolist()
    done = resume_run("paused", store, return_params=True)
    assert done.status == "finished" and done.step == 40
    for k, v in full.params.items():
        torch.testing.assert_close(done.params[k], v, rtol=1e-6, atol=1e-7)
    assert len(store.metrics("paused")) == len(store.metrics("full"))


def test_a_batched_stack_resumes_without_its_pruned_member(tmp_path, one_torch_thread) -> None:
    from workbench.store import RunStore
    from workbench.train import resume as resume_run
    from workbench.train import train, train_batched

    store = RunStore(tmp_path / "b.db")
    cfgs = [{**CFG, "lr": lr, "seed": s} for lr, s in ((0.02, 0), (1e-5, 1), (0.01, 2))]
    res = train_batched(cfgs, store, names=["a", "b", "c"], until=20)
    assert [r.status for r in res] == ["interrupted"] * 3
    ids = [r.run_id for r in res]
    store.set_status(ids[1], "pruned")
    n_pruned_rows = len(store.metrics(ids[1]))
    out = resume_run(ids[2], store, return_params=True)
    assert out.status == "finished" and out.step == 40
    assert [store.get_run(i)["status"] for i in ids] == ["finished", "pruned", "finished"]
    assert len(store.metrics(ids[1])) == n_pruned_rows                       # the pruned member never moved
    alone = train(cfgs[2], return_params=True)                               # the member trained alone, no pause
    for k, v in alone.params.items():
        torch.testing.assert_close(out.params[k], v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("until", [0, -3, 2.5, True])
def test_bad_until_names_the_argument(until) -> None:
    from workbench.train import ConfigError, train

    with pytest.raises(ConfigError, match="until"):
        train(CFG, until=until)
