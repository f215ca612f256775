"""fANOVA hyperparameter importance (workbench.importance, through Optuna's evaluator): on a full
factorial grid with an additive objective the importances match the analytic variance shares of the
main effects; a parameter the objective ignores gets ~0; non-finite members are left out."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from workbench.importance import ImportanceError, hyperparameter_importance


def grid_table(seed: int = 0) -> pd.DataFrame:
    lrs = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    scheds = ["cosine", "linear", "wsd"]
    wds = [0.0, 0.05, 0.1]
    rows = []
    for lr, sch, wd in itertools.product(lrs, scheds, wds):
        f = 2.0 * (np.log10(lr) + 3) ** 2  # the LR bowl
        g = {"cosine": 0.0, "linear": 0.5, "wsd": 0.25}[sch]
        rows.append({"cfg.lr": lr, "cfg.schedule": sch, "cfg.wd": wd, "cfg.seed": 0, "final.loss": f + g})
    return pd.DataFrame(rows)


def test_additive_objective_matches_variance_shares() -> None:
    t = grid_table()
    lr_effect = 2.0 * (np.log10(t["cfg.lr"]) + 3) ** 2
    sch_effect = t["cfg.schedule"].map({"cosine": 0.0, "linear": 0.5, "wsd": 0.25})
    total = lr_effect.var(ddof=0) + sch_effect.var(ddof=0)  # additive: no interaction term
    imp = hyperparameter_importance(t, "final.loss", ["cfg.lr", "cfg.schedule", "cfg.wd", "cfg.seed"])
    got = dict(zip(imp["param"], imp["importance"]))
    assert set(got) == {"cfg.lr", "cfg.schedule", "cfg.wd"}  # the constant seed is left out
    assert sum(got.values()) == pytest.approx(1.0)
    assert got["cfg.lr"] == pytest.approx(lr_effect.var(ddof=0) / total, abs=0.05)
    assert got["cfg.schedule"] == pytest.approx(sch_effect.var(ddof=0) / total, abs=0.05)
    assert got["cfg.wd"] < 0.03  # the objective ignores it
    assert imp["param"].iloc[0] == "cfg.lr" and imp.attrs["n_trials"] == 45
    again = hyperparameter_importance(t, "final.loss", ["cfg.lr", "cfg.schedule", "cfg.wd"])
    assert np.allclose(again["importance"], imp["importance"])  # seeded


def test_non_finite_members_are_left_out_and_bad_input() -> None:
    t = grid_table()
    t.loc[:4, "final.loss"] = np.nan  # diverged members
    imp = hyperparameter_importance(t, "final.loss", ["cfg.lr", "cfg.schedule"], mode="min")
    assert imp.attrs["n_trials"] == 40
    with pytest.raises(ImportanceError, match="at least 4 members"):
        hyperparameter_importance(t.iloc[:7], "final.loss", ["cfg.lr"])
    with pytest.raises(ImportanceError, match=r"\['nope'\] are not in the results table"):
        hyperparameter_importance(t, "nope", ["cfg.lr"])
    with pytest.raises(ImportanceError, match="none of them varies"):
        hyperparameter_importance(t, "final.loss", ["cfg.seed"])
    with pytest.raises(ImportanceError, match="mode"):
        hyperparameter_importance(t, "final.loss", ["cfg.lr"], mode="best")
