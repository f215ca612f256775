"""Law fitters: reference fits on the papers' data (skipped without ../shared/data), parameter recovery
on synthetic data from known parameters, comparison, errors and round trips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.fit import (
    FitData,
    FitDataError,
    FitResult,
    available_laws,
    chinchilla_allocation,
    compare,
    crossover,
    extrapolate,
    fit,
    get_law,
    user_law,
)

SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared paper data not found at {SHARED}")


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# ------------------------------------------------------------------ Chinchilla (Besiroglu et al. 2024)
def chinchilla_data() -> FitData:
    df = pd.read_csv(SHARED / "chinchilla-epoch" / "svg_extracted_data.csv")
    df = df[df["loss"] < np.sort(df["loss"].to_numpy())[-5]]
    N = df["Model Size"].to_numpy()
    return FitData({"N": N, "D": df["Training FLOP"].to_numpy() / (6 * N)}, df["loss"].to_numpy())


@pytest.mark.slow
@pytest.mark.shared_data
@needs_shared
def test_chinchilla_full_grid_matches_replication():
    d = chinchilla_data()
    assert len(d) == 240
    r = fit("chinchilla", d, bootstrap=40, seed=42)
    p = r.params
    assert r.n_starts == 4500
    assert abs(r.objective - 0.0010183) < 1e-7
    assert f"{p['E']:.4g}" == "1.817" and f"{p['alpha']:.3g}" == "0.347" and f"{p['beta']:.3g}" == "0.367"
    assert rel(p["A"], 477.8) < 0.02 and rel(p["B"], 2143.8) < 0.02
    # published intervals: estimate +/- 1.96 SE (Besiroglu et al.), ours: percentile bootstrap
    pub = {"A": (482.01, 124.52), "B": (2085.43, 1293.28), "E": (1.817, 0.026), "alpha": (0.3478, 0.0154),
           "beta": (0.3658, 0.0206)}
    for k, (m, se) in pub.items():
        lo, hi = r.ci[k]
        assert lo < m + 1.96 * se and hi > m - 1.96 * se, (k, r.ci[k])
        assert lo <= p[k] <= hi
    n_opt, d_opt = chinchilla_allocation(p, 1e24)
    assert rel(6 * n_opt * d_opt, 1e24) < 1e-9
    # the allocation minimises the fitted loss along C = 6ND
    Ns = n_opt * np.array([0.5, 1.0, 2.0])
    L = r.predict({"N": Ns, "D": 1e24 / (6 * Ns)})
    assert L[1] < L[0] and L[1] < L[2]


# ------------------------------------------------------------------ parameter recovery (synthetic)
def _grid(*vals):
    return np.meshgrid(*vals, indexing="ij")


RECOVERY = {
    "power_law": ({"E": 1.7, "A": 5.0, "alpha": 0.4}, lambda: {"x": np.geomspace(1, 1e5, 40)}),
    "chinchilla": ({"A": 400.0, "B": 410.0, "E": 1.69, "alpha": 0.34, "beta": 0.28},
                   lambda: dict(zip("ND", (a.ravel() for a in _grid(np.geomspace(1e7, 1e10, 8), np.geomspace(1e9, 1e12, 8)))))),
    "kaplan": ({"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
               lambda: dict(zip("ND", (a.ravel() for a in _grid(np.geomspace(1e6, 1e10, 8), np.geomspace(1e8, 1e12, 8)))))),
    "gadre": ({"E": 1.8, "a": 300.0, "b": 1000.0, "eta": 0.12},
              lambda: dict(zip("CM", (a.ravel() for a in _grid(np.geomspace(1e17, 1e22, 8), np.geomspace(5, 640, 6)))))),
    "gadre_downstream": ({"epsilon": 0.85, "k": 50.0, "gamma": 1.5}, lambda: {"L": np.linspace(2.0, 5.0, 30)}),
    "step_law_lr": ({"a": 1.79, "alpha": -0.713, "beta": 0.307},
                    lambda: dict(zip("ND", (a.ravel() for a in _grid(np.geomspace(2e8, 1e9, 5), np.geomspace(4e9, 1e11, 5)))))),
    "step_law_bs": ({"c": 0.58, "gamma": 0.571}, lambda: {"D": np.geomspace(4e9, 1e11, 12)}),
    "grok_power": ({"A": 3000.0, "alpha": 1.2}, lambda: {"x": np.geomspace(0.1, 3.0, 12)}),
    "grok_critical": ({"A": 200.0, "x_c": 0.2, "alpha": 1.5}, lambda: {"x": np.linspace(0.25, 0.9, 14)}),
}


@pytest.mark.parametrize("name", sorted(RECOVERY))
def test_parameter_recovery(name):
    law = get_law(name)
    true, make_x = RECOVERY[name]
    X = make_x()
    y = law.predict(true, X)
    rng = np.random.default_rng(1)
    y = y * (1 + 1e-5 * rng.standard_normal(len(y)))
    r = fit(law, FitData(X, y), n_starts=300)
    for k, v in true.items():
        assert rel(r.params[k], v) < 0.02, (k, r.params[k], v)
    assert r.r2 > 0.9999


def test_schedule_laws_recover_synthetic_params():
    T = 3000
    lr_cos = 1e-3 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * np.arange(T) / T)))
    lr_cos[:100] = np.linspace(0, 1e-3, 100)
    lr_const = np.where(np.arange(T) < 100, np.linspace(0, 1e-3, T)[: T] * 0 + np.minimum(np.arange(T) / 100, 1) * 1e-3, 1e-3)
    lr_two = np.where(np.arange(T) < 1500, lr_const, 3e-4)
    steps = np.arange(120, T, 60)
    for name, true in [("lr_annealing", [2.5, 0.4, 0.5, 0.4]), ("multi_power", [2.5, 0.4, 0.5, 300.0, 2.0, 0.5, 0.6])]:
        law = get_law(name)
        curves = [(n, steps, np.ones(len(steps)), lr) for n, lr in [("cos", lr_cos), ("const", lr_const), ("two", lr_two)]]
        d = FitData.from_curves(curves)
        d.y = law.predict(true, d.inputs)
        r = fit(law, d, starts=np.array(true)[None, :] * np.array([[1.05] * len(true)]), n_polish=1)
        pred = r.predict(d)
        assert np.max(np.abs(pred - d.y) / d.y) < 1e-3
        assert rel(r.params["L0"], true[0]) < 0.05


def test_user_law_from_callable():
    def saturating(x, L_inf, k):
        return L_inf * (1 - torch.exp(-k * x)) if isinstance(x, torch.Tensor) else L_inf * (1 - np.exp(-k * x))

    law = user_law(saturating, params=("L_inf", "k"), name="saturating_test", bounds={"k": (0, 10)}, grid={"L_inf": [1, 3], "k": [0.1, 1]})
    assert "saturating_test" in available_laws()
    x = np.linspace(0.1, 5, 25)
    r = fit(law, FitData({"x": x}, 2.0 * (1 - np.exp(-0.7 * x))))
    assert rel(r.params["L_inf"], 2.0) < 1e-4 and rel(r.params["k"], 0.7) < 1e-4
    with pytest.raises(FitDataError, match="not a parameter"):
        user_law(saturating, params=("L_inf", "k"), bounds={"nope": (0, 1)}, register=False)
    with pytest.raises(FitDataError, match="params"):
        user_law(saturating, params=("x", "k"), register=False)  # a parameter named like an input


# ------------------------------------------------------------------ FitResult, comparison
def test_fitresult_bootstrap_holdout_json_roundtrip_and_figure():
    law = get_law("power_law")
    x = np.geomspace(1, 1e4, 30)
    rng = np.random.default_rng(0)
    y = law.predict([1.5, 4.0, 0.5], {"x": x}) * np.exp(0.01 * rng.standard_normal(30))
    r = fit("power_law", FitData({"x": x}, y), bootstrap=50, holdout=np.arange(25, 30), seed=3)
    assert set(r.ci) == {"E", "A", "alpha"} and all(lo < r.params[k] < hi for k, (lo, hi) in r.ci.items())
    assert r.heldout["worst_rel"] >= r.heldout["mean_rel"] > 0
    p, lo, hi = r.predict({"x": np.array([1e5])}, band=0.9)
    assert lo[0] <= p[0] <= hi[0]
    assert np.isfinite(r.aic) and r.bic > r.aic  # k log n > 2k for n = 25
    s = r.to_json()
    r2 = FitResult.from_json(s)
    assert r2.params == r.params and r2.ci == r.ci and np.allclose(r2.predict({"x": x}), r.predict({"x": x}))
    assert "alpha" in r.report()
    fig = r.figure()
    assert len(fig.data) >= 3 and fig.layout.xaxis.type == "log"


def test_compare_crossover_extrapolate():
    x = np.geomspace(1, 1e4, 30)
    y = 1.0 + 5.0 * x ** -0.5
    a = fit("power_law", FitData({"x": x}, y), bootstrap=20, holdout=np.arange(24, 30))
    flat = user_law(lambda x, c: c + 0 * x, params=("c",), name="flat_test", inputs=("x",), grid={"c": [1.0]})
    b = fit(flat, FitData({"x": x}, y), holdout=np.arange(24, 30))
    df = compare([a, b])
    assert df.loc[0, "law"] == "power_law" and df.loc[0, "heldout_mean_rel"] < df.loc[1, "heldout_mean_rel"]
    # power law crosses the constant where 1 + 5 x^-0.5 = c
    c = b.params["c"]
    cr = crossover(a, b, var="x", lo=1e-2, hi=1e8)
    assert rel(cr["x"], (5.0 / (c - 1.0)) ** 2) < 1e-2
    ex = extrapolate([a], {"x": [1e6]})
    assert ex.loc[0, "lo"] - 1e-9 <= ex.loc[0, "pred"] <= ex.loc[0, "hi"] + 1e-9


# ------------------------------------------------------------------ bad data
def test_bad_data_errors(tmp_path):
    x = np.geomspace(1, 100, 10)
    y = 1 + x ** -0.5
    with pytest.raises(FitDataError, match="NaN or inf"):
        fit("power_law", FitData({"x": x}, np.where(x > 50, np.nan, y)))
    with pytest.raises(FitDataError, match="x: must be > 0"):
        fit("power_law", FitData({"x": x - 5}, y))
    with pytest.raises(FitDataError, match="fewer than the 3 parameters"):
        fit("power_law", FitData({"x": x[:2]}, y[:2]))
    with pytest.raises(FitDataError, match="shorter than the curve"):
        FitData.from_curves([("c", np.array([10, 200]), np.array([3.0, 2.0]), np.ones(100))])
    with pytest.raises(FitDataError, match="unknown name"):
        get_law("nope")
    p = tmp_path / "d.csv"
    pd.DataFrame({"params": [1e8, 1e9], "tokens": [1e9, 1e10], "loss": [3.0, 2.5]}).to_csv(p, index=False)
    with pytest.raises(FitDataError, match="column 'toks'"):
        FitData.from_csv(p, "N=params,D=toks,L=loss")
    d = FitData.from_csv(p, "N=params,D=tokens,L=loss")
    assert list(d.x) == ["N", "D"] and d.y.tolist() == [3.0, 2.5]
