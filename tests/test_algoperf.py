"""AlgoPerf time-to-result comparison (Dahl et al. 2023): hand-computed profiles and scores, the
exact area against a numerical integral, and times read back from a run store."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.sweeps.algoperf import (
    AlgoPerfError,
    compare,
    median_time,
    performance_profile,
    performance_ratios,
    score,
    time_to_target,
)

INF = math.inf


@pytest.fixture
def times() -> pd.DataFrame:
    # submissions x workloads; C misses w1 and is 5x slower on w2
    return pd.DataFrame({"w1": [10.0, 20.0, INF], "w2": [40.0, 10.0, 50.0]}, index=["A", "B", "C"])


def test_time_to_target_first_hit_and_miss():
    steps = [0, 10, 20, 30]
    assert time_to_target(steps, [0.1, 0.5, 0.99, 1.0], 0.99, "max") == 20
    assert time_to_target(steps, [4.0, 3.0, 2.0, 1.5], 2.0, "min") == 20
    assert time_to_target(steps, [0.1, 0.2, 0.3, 0.4], 0.99, "max") == INF
    # NaN never reaches a target; unsorted rows are sorted by step; wall times at the same rows
    assert time_to_target([30, 0, 10, 20], [1.0, 0.0, np.nan, 1.0], 0.9, "max") == 20
    assert time_to_target(steps, [0.1, 0.5, 0.99, 1.0], 0.99, times=[0.0, 1.5, 2.5, 9.0]) == 2.5


def test_median_over_seeds_counts_misses_as_infinite():
    assert median_time([1, 2, INF]) == 2
    assert median_time([1, INF, INF]) == INF
    assert median_time([]) == INF


def test_ratios_profile_and_score_hand_computed(times):
    r = performance_ratios(times)
    assert r.loc["A"].tolist() == [1.0, 4.0]
    assert r.loc["B"].tolist() == [2.0, 1.0]
    assert r.loc["C", "w1"] == INF and r.loc["C", "w2"] == 5.0
    rho = performance_profile(times, taus=[1.0, 1.99, 2.0, 4.0])
    assert rho.loc["A"].tolist() == [0.5, 0.5, 0.5, 1.0]
    assert rho.loc["B"].tolist() == [0.5, 0.5, 1.0, 1.0]
    assert rho.loc["C"].tolist() == [0.0, 0.0, 0.0, 0.0]
    s = score(times)
    # A: w1 full area 1, w2 reaches at tau=4 -> 0; B: w1 from tau=2 -> 2/3, w2 -> 1
    assert s["A"] == pytest.approx(0.5)
    assert s["B"] == pytest.approx(5 / 6)
    assert s["C"] == 0.0


def test_exact_score_matches_numerical_area():
    rng = np.random.default_rng(0)
    t = pd.DataFrame(rng.uniform(1, 10, size=(5, 7)))
    t.iloc[1, 2] = INF
    t.iloc[:, 4] = INF            # nobody solves workload 4
    taus = np.linspace(1, 4, 200_001)
    rho = performance_profile(t, taus=taus).to_numpy()
    area = np.trapezoid(rho, taus, axis=1) / 3.0
    np.testing.assert_allclose(score(t).to_numpy(), area, atol=1e-4)
    assert (score(t) <= 6 / 7 + 1e-12).all()      # workload 4 contributes nothing to anyone


def test_bad_input_is_named():
    with pytest.raises(AlgoPerfError, match="mode"):
        time_to_target([0], [1.0], 1.0, mode="up")
    with pytest.raises(AlgoPerfError, match="NaN"):
        score(pd.DataFrame({"w": [1.0, np.nan]}))
    with pytest.raises(AlgoPerfError, match="tau_max"):
        score(pd.DataFrame({"w": [1.0]}), tau_max=1.0)


def test_compare_from_store(store):
    # two schedules x two tasks x two seeds, written straight into the store
    reach = {("cosine", "modular"): [20, 30], ("linear", "modular"): [10, 10],
             ("cosine", "lm"): [40, 40], ("linear", "lm"): [None, None]}
    for (sched, task), hits in reach.items():
        for seed, hit in enumerate(hits):
            rid = store.create_run(task=task, config={"task": task, "schedule": {"name": sched}, "seed": seed},
                                   sweep="sw")
            for step in range(0, 60, 10):
                acc = 1.0 if hit is not None and step >= hit else 0.5
                store.log(rid, step=step, metrics={"test_acc": acc})
            store.set_status(rid, "finished")
    out = compare(store, sweeps="sw", metric="test_acc", target=0.99, mode="max")
    t = out["times"]
    assert t.loc["cosine", "modular"] == 25 and t.loc["linear", "modular"] == 10
    assert t.loc["cosine", "lm"] == 40 and t.loc["linear", "lm"] == INF
    sc = out["score"]["score"]
    # cosine: modular ratio 2.5 -> (4-2.5)/3 = 0.5, lm ratio 1 -> 1; linear: modular 1, lm miss
    assert sc["cosine"] == pytest.approx(0.75)
    assert sc["linear"] == pytest.approx(0.5)
    assert out["score"].loc["linear", "workloads_reached"] == 1
