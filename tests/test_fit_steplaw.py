"""Step Law (Li et al. 2025, Predictable Scale Part I): the authors' selection + OLS + bootstrap recipe,
checked against an independent implementation, synthetic parameter recovery, and the released data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.fit.errors import FitDataError
from workbench.fit.steplaw import (
    PUBLISHED,
    bootstrap_design_centre,
    fit_step_law,
    ols_bootstrap,
    published_step_law,
    select_near_optimal,
)


def synthetic_grid(a=1.79, alpha=-0.713, beta=0.307, c=0.58, gamma=0.571, seq_len=2048) -> pd.DataFrame:
    """A grid search per (N, D): loss is a bowl in (log lr, log bs) centred on the true Step Law optimum."""
    rows, rng = [], np.random.default_rng(0)
    for N in (2e8, 4e8, 1e9):
        for D in (5e9, 2e10, 8e10):
            lr0, bs0 = a * N**alpha * D**beta, c * D**gamma / seq_len
            # a fixed log-spaced grid, not centred on the optimum (random offset per group)
            for lr in lr0 * np.exp(np.linspace(-1.5, 1.5, 61) + rng.uniform(-0.025, 0.025)):
                for bs in bs0 * np.exp(np.linspace(-1.5, 1.5, 61) + rng.uniform(-0.025, 0.025)):
                    u, v = np.log(lr / lr0), np.log(bs / bs0)
                    rows.append((N, D, lr, bs, 2.5 + 0.02 * u * u + 0.01 * v * v))
    return pd.DataFrame(rows, columns=["N", "D", "lr", "bs", "smooth loss"])


def test_synthetic_parameter_recovery():
    true = {"a": 3.0, "alpha": -0.6, "beta": 0.25, "c": 0.4, "gamma": 0.6}
    r = fit_step_law(synthetic_grid(**true))
    for k, v in true.items():
        got = r.coefficients[k]
        assert abs(got - v) < (0.03 * abs(v) if k in ("a", "c") else 3e-3), (k, got, v)
    rb = fit_step_law(synthetic_grid(**true), bootstrap=200)  # bootstrap mean: within 3 standard errors
    sd = rb.lr.boot.std(0)
    assert np.all(np.abs(rb.lr.boot.mean(0) - r.lr.theta) < 3 * sd / np.sqrt(200))
    lr, bs = r  # tuple unpacking still works
    assert lr is r.lr and bs is r.bs


def test_selection_is_relative_and_strict():
    df = pd.DataFrame({"N": [1, 1, 1, 2, 2], "D": [1, 1, 1, 1, 1], "smooth loss": [2.0, 2.004, 2.006, 3.0, 9.0]})
    kept = select_near_optimal(df, threshold=0.0025)
    assert kept["smooth loss"].tolist() == [2.0, 2.004, 3.0]  # 2.006 / 2.0 - 1 = 0.003; 9.0 diverged
    with pytest.raises(FitDataError, match="threshold"):
        select_near_optimal(df, threshold=1.5)
    with pytest.raises(FitDataError, match="smooth loss"):
        select_near_optimal(df.drop(columns="smooth loss"))


def test_ols_bootstrap_matches_explicit_resamples():
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(40), rng.normal(size=40), rng.normal(size=40)])
    y = X @ [0.5, -0.7, 0.3] + 0.1 * rng.normal(size=40)
    theta, boot = ols_bootstrap(X, y, 20, seed=7)
    assert np.allclose(theta, np.linalg.lstsq(X, y, rcond=None)[0])
    idx = np.random.default_rng(7).integers(0, 40, size=(20, 40))  # the same draws, fitted one by one
    ref = np.stack([np.linalg.lstsq(X[i], y[i], rcond=None)[0] for i in idx])
    assert np.allclose(boot, ref, atol=1e-10)


def test_bootstrap_design_centre_recovers_regressor_means():
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(19.8, 0.5, 300), rng.normal(23.0, 0.9, 300)
    X = np.column_stack([np.ones(300), x1, x2])
    y = X @ [0.6, -0.7, 0.3] + 0.2 * rng.normal(size=300)
    _, boot = ols_bootstrap(X, y, 2000, seed=1)
    assert np.allclose(bootstrap_design_centre(boot), [x1.mean(), x2.mean()], atol=0.1)


def test_bad_input_names_the_field():
    df = synthetic_grid()
    with pytest.raises(FitDataError, match="seq_len"):
        fit_step_law(df, seq_len=0)
    with pytest.raises(FitDataError, match="lr"):
        fit_step_law(df.drop(columns="lr"))
    with pytest.raises(FitDataError, match="bootstrap"):
        ols_bootstrap(np.ones((5, 1)), np.ones(5), -1)


@pytest.mark.shared_data
def test_published_bootstrap_file_gives_paper_coefficients(shared_data):
    pub = published_step_law(shared_data / "steplaw" / "1004_fitted_lr_bs_scaling_model_parameters.csv")
    for k, v in PUBLISHED.items():
        assert f"{pub[k]:.2g}" == f"{v:.2g}", (k, pub[k], v)


def _dense(shared_data) -> pd.DataFrame:
    return pd.read_csv(shared_data / "steplaw" / "dense_lr_bs_loss.csv")


@pytest.mark.shared_data
def test_recipe_on_released_runs_matches_independent_ols(shared_data):
    df = _dense(shared_data)
    assert len(df) == 1911
    r = fit_step_law(df, bootstrap=1000, seed=0)
    # independent selection (loop over groups) and OLS (numpy lstsq on the design built here)
    keep = []
    for _, g in df.groupby(["N", "D"]):
        m = g["smooth loss"].min()
        keep.append(g[(g["smooth loss"] / m - 1).abs() < 0.0025])
    s = pd.concat(keep)
    assert r.n_selected == len(s)
    X = np.column_stack([np.ones(len(s)), np.log(s["N"]), np.log(s["D"])])
    lr = np.linalg.lstsq(X, np.log(s["lr"]), rcond=None)[0]
    bs = np.linalg.lstsq(X[:, [0, 2]], np.log(s["bs"] * 2048), rcond=None)[0]
    assert np.allclose(r.lr.theta, lr, atol=1e-9) and np.allclose(r.bs.theta, bs, atol=1e-9)
    # the bootstrap mean (the paper's summary) sits within a standard error of the point fit
    sd = r.lr.boot.std(0)
    assert np.all(np.abs(r.lr.boot.mean(0) - lr) < sd)
    # on the released grid the refit's optimum agrees with the published law within one LR grid step
    # (the grid spaces LRs by sqrt 2) and the batch size within 15 %
    g = df[["N", "D"]].drop_duplicates()
    c, p = r.coefficients, PUBLISHED
    eta = (c["a"] * g.N ** c["alpha"] * g.D ** c["beta"]) / (p["a"] * g.N ** p["alpha"] * g.D ** p["beta"])
    B = (c["c"] * g.D ** c["gamma"]) / (p["c"] * g.D ** p["gamma"])
    assert np.all(np.abs(np.log(eta)) < np.log(np.sqrt(2))) and np.all(np.abs(np.log(B)) < np.log(1.15))


@pytest.mark.shared_data
@pytest.mark.xfail(strict=True, reason="the published Step Law was fitted to data beyond the released dense "
                   "runs (see workbench/fit/steplaw.py docstring); flips to XPASS if a recipe reproduces it")
def test_released_runs_reproduce_published_step_law_to_2_sf(shared_data):
    c = fit_step_law(_dense(shared_data), bootstrap=1000, seed=0).coefficients
    assert {k: f"{v:.2g}" for k, v in c.items()} == {k: f"{v:.2g}" for k, v in PUBLISHED.items()}


@pytest.mark.shared_data
def test_published_fit_came_from_a_lower_d_design(shared_data):
    """Evidence for the xfail above: the design centre implied by the authors' bootstrap fits differs from
    the centre the same estimate gives on resamples of the released selection."""
    pub = pd.read_csv(shared_data / "steplaw" / "1004_fitted_lr_bs_scaling_model_parameters.csv")
    pub_centre = bootstrap_design_centre(pub[["lr_intercept", "lr_coefN", "lr_coefD"]].to_numpy())
    ours = bootstrap_design_centre(fit_step_law(_dense(shared_data), bootstrap=1000).lr.boot)
    assert abs(pub_centre[0] - ours[0]) < 0.05  # same model sizes on average
    assert ours[1] - pub_centre[1] > 0.3  # but the published data sit at smaller D
