"""The Bayesian strategy (Optuna TPE through ask / tell): trials x seeds, in range, resumable."""

from __future__ import annotations

import pytest

from workbench.store import RunStore
from workbench.sweeps import resume_sweep, run_sweep, sweep_results, sweep_status
from workbench.sweeps.spec import SweepSpec, SweepSpecError

BAYES = {"name": "bo", "strategy": "bayes", "budget": {"trials": 4, "parallel": 2}, "seeds": [0, 1],
         "base": {"task": "modular", "task_params": {"p": 11, "frac": 0.5}, "model": "mlp",
                  "model_params": {"hidden": [16]}, "steps": 20, "log_every": 10, "eval_every": 10, "device": "cpu"},
         "axes": {"lr": {"log_uniform": [1e-4, 1e-1]}, "schedule": ["cosine", "linear"]},
         "objective": {"metric": "train_loss", "mode": "min"}}


def test_bayes_sweep_runs_trials_times_seeds_and_resume_is_a_no_op(tmp_path):
    store = RunStore(tmp_path / "bo.db")
    sid = run_sweep(BAYES, "batched", store, progress=False)
    st = sweep_status(sid, store)
    assert st["status"] == "finished" and st["counts"] == {"finished": 8}
    res = sweep_results(sid, store)
    assert sorted(res["trial"].unique().tolist()) == [0, 1, 2, 3]
    assert res.groupby("trial")["seed"].apply(sorted).tolist() == [[0, 1]] * 4
    assert res["lr"].between(1e-4, 1e-1).all()
    n_rows = len(store.metrics(store.runs(sweep=sid)["id"].tolist()))
    resume_sweep(sid, store, progress=False)            # nothing left to do: nothing runs again
    assert len(store.runs(sweep=sid)) == 8
    assert len(store.metrics(store.runs(sweep=sid)["id"].tolist())) == n_rows


def test_pruning_without_extrapolation_is_refused():
    with pytest.raises(SweepSpecError, match="pruning"):
        SweepSpec.from_dict({**BAYES, "pruning": True}).validate()
