"""Learning-curve extrapolation (Domhan et al. 2015): parameter recovery for every family, band coverage on
synthetic noisy curves, the end of real constant-LR loss curves forecast from their first quarter (skipped
without ../shared/data), the predictive stopping rule, the mixture's consistency with its own samples,
JSON round trip, errors and the figure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.fit import CurveForecast, FitDataError, fit_curve, should_stop
from workbench.fit.learning_curves import DEFAULT_FAMILIES, FAMILIES, fit_family

SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared paper data not found at {SHARED}")

# true parameters in the fitting frame (x in (0, 1], rising curves), one set per family
TRUE = {"pow3": (1.2, 0.3, 0.6), "ilog2": (1.5, 0.2), "janoschek": (1.1, 0.1, 4.0, 0.7),
        "weibull": (1.1, 0.1, 3.0, 0.8), "mmf": (1.2, 0.1, 5.0, 1.3), "log_power": (1.1, -1.5, -1.2),
        "vap": (0.1, -0.05, 0.2), "exp4": (1.1, 4.0, 0.6, 0.3), "pow4": (1.2, 8.0, 0.5, 0.7),
        "loglog_linear": (3.0, 1.0), "dr_hill": (1.2, 0.15, 1.4)}


def test_every_family_has_a_recovery_case() -> None:
    assert set(TRUE) == set(FAMILIES) == set(DEFAULT_FAMILIES)


@pytest.mark.parametrize("name", sorted(TRUE))
def test_parameter_recovery(name: str, one_torch_thread) -> None:
    x = np.linspace(0.01, 1, 100)
    p = np.array(TRUE[name])
    z = FAMILIES[name](x, p) + 1e-4 * np.random.default_rng(1).standard_normal(len(x))
    ff = fit_family(name, x, z)
    np.testing.assert_allclose(ff.params, p, rtol=0.02, atol=1e-3)
    xf = np.linspace(1, 3, 7)  # the extrapolation matches the true curve too
    np.testing.assert_allclose(ff.predict(xf), FAMILIES[name](xf, p), atol=2e-3)


def test_fit_curve_recovers_a_loss_curve_in_user_units(one_torch_thread) -> None:
    steps = np.arange(10, 1001, 10.0)
    loss = 2.0 + 3.0 * steps ** -0.5  # pow3 in raw steps: c − a·x^(−α) after the loss → rising-curve map
    fc = fit_curve(steps, loss, families=("pow3", "exp4"), bootstrap=16)
    at = np.array([2000.0, 10000.0])
    np.testing.assert_allclose(fc.predict_family("pow3", at), 2.0 + 3.0 * at ** -0.5, rtol=1e-4)
    assert fc.weights["pow3"] > 0.9


def _noisy_pow_curve(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = np.arange(1.0, 201.0)
    E, A, alpha = rng.uniform(1.0, 2.0), rng.uniform(1.0, 3.0), rng.uniform(0.3, 0.8)
    return steps, E + A * steps ** -alpha + 0.02 * rng.standard_normal(len(steps))


def test_band_covers_held_out_points_at_about_its_level(one_torch_thread) -> None:
    inside, total = 0, 0
    for seed in range(8):
        steps, y = _noisy_pow_curve(seed)
        fc = fit_curve(steps[:60], y[:60], families=("pow3", "mmf", "exp4"), bootstrap=32, seed=seed)
        held = steps[60::7]
        lo, hi = fc.band(held, 0.9)
        yh = y[60::7]
        inside += int(np.sum((yh >= lo) & (yh <= hi)))
        total += len(held)
        lo0, hi0 = fc.band(held, 0.9, noise=False)  # the noise-free curve's band is inside the data band
        assert np.all(hi0 - lo0 <= hi - lo + 1e-12)
    assert inside / total >= 0.8


@pytest.mark.shared_data
@needs_shared
@pytest.mark.parametrize("size", ["csv_25", "csv_100", "csv_400"])
def test_real_constant_lr_curve_end_from_its_first_quarter(size: str, one_torch_thread) -> None:
    df = pd.read_csv(SHARED / "mpl-loss-curves" / size / "constant_72000.csv")
    T = float(df["step"].iloc[-1])
    first = df[df["step"] <= 0.25 * T]
    fc = fit_curve(first["step"], first["loss"])
    true_end = float(df["loss"].iloc[-1])
    mean = float(fc.predict([T])[0])
    lo, hi = fc.band([T], 0.95)
    assert abs(mean - true_end) / true_end < 0.03
    assert lo[0] <= true_end <= hi[0]


def test_mixture_probabilities_agree_with_its_samples(one_torch_thread) -> None:
    steps, y = _noisy_pow_curve(3)
    fc = fit_curve(steps[:80], y[:80], families=("pow3", "pow4", "janoschek"), bootstrap=32)
    at = [400.0]
    draws = fc.sample(at, 20000, seed=1)[:, 0]
    target = float(np.median(draws) + 0.01)
    assert fc.prob_better(target, at[0]) == pytest.approx(np.mean(draws < target), abs=0.02)
    lo, hi = fc.band(at, 0.8)
    assert np.mean((draws >= lo[0]) & (draws <= hi[0])) == pytest.approx(0.8, abs=0.02)
    assert fc.quantile(0.5, at)[0] == pytest.approx(np.median(draws), abs=0.01)


def test_should_stop_a_hopeless_curve_and_keep_a_promising_one(one_torch_thread) -> None:
    steps = np.arange(1.0, 61.0)
    rng = np.random.default_rng(0)
    good = 1.0 + 2.0 * steps ** -0.5 + 0.01 * rng.standard_normal(60)  # heads for ~1.1 at step 300
    bad = 2.0 + 2.0 * steps ** -0.5 + 0.01 * rng.standard_normal(60)  # heads for ~2.1
    fams = ("pow3", "mmf")
    best_completed = 1.5
    assert should_stop(fit_curve(steps, bad, families=fams, bootstrap=16), best_completed, 300.0)
    assert not should_stop(fit_curve(steps, good, families=fams, bootstrap=16), best_completed, 300.0)
    # accuracies: larger is better
    acc_good, acc_bad = 2.0 - good, 2.0 - bad
    fg = fit_curve(steps, acc_good, families=fams, maximize=True, bootstrap=16)
    fb = fit_curve(steps, acc_bad, families=fams, maximize=True, bootstrap=16)
    assert should_stop(fb, 0.5, 300.0) and not should_stop(fg, 0.5, 300.0)
    assert fg.prob_better(0.5, 300.0) > 0.95 > 0.05 > fb.prob_better(0.5, 300.0)


def test_bound_censors_forecasts_at_the_best_reachable_value(one_torch_thread) -> None:
    # a loss falling steeply at the end of its observed part: unbounded families extrapolate below 0
    steps = np.arange(1.0, 41.0)
    y = 0.8 - 0.02 * steps + 0.002 * np.random.default_rng(1).standard_normal(40)
    fams = ("pow3", "ilog2")
    free = fit_curve(steps, y, families=fams, bootstrap=16)
    at = np.array([200.0, 400.0])
    assert free.quantile(0.05, at).min() < 0  # the case the bound is for
    fc = fit_curve(steps, y, families=fams, bootstrap=16, bound=0.0)
    lo, hi = fc.band(at, 0.9)
    assert lo.min() >= 0 and fc.predict(at).min() >= 0 and fc.sample(at, 500).min() >= 0
    assert fc.cdf(-1e-9, [400.0])[0] == 0.0
    # above the bound nothing changes: the same mixture, censored only below 0
    for target in (0.05, 0.2):
        assert fc.prob_better(target, 400.0) == pytest.approx(free.prob_better(target, 400.0), abs=1e-12)
    np.testing.assert_allclose(hi, np.maximum(free.band(at, 0.9)[1], 0.0))
    back = CurveForecast.from_dict(json.loads(json.dumps(fc.to_dict())))
    assert back.bound == 0.0 and np.array_equal(back.band(at, 0.9)[0], lo)
    with pytest.raises(FitDataError, match="bound"):
        fit_curve(steps, y, families=fams, bound=0.5)  # observed values below a loss bound


def test_json_round_trip(one_torch_thread) -> None:
    steps, y = _noisy_pow_curve(5)
    fc = fit_curve(steps[:50], y[:50], families=("pow3", "ilog2"), bootstrap=8)
    back = CurveForecast.from_dict(json.loads(json.dumps(fc.to_dict())))
    at = np.array([60.0, 150.0, 500.0])
    np.testing.assert_allclose(back.predict(at), fc.predict(at))
    np.testing.assert_allclose(back.band(at, 0.9), fc.band(at, 0.9))
    assert back.prob_better(1.5, 500.0) == fc.prob_better(1.5, 500.0)
    assert back.weights == fc.weights and back.maximize == fc.maximize
    assert "pow3" in fc.report() and "ensemble mean" in back.report(500.0)


@pytest.mark.parametrize(("steps", "values", "match"), [
    ([1, 2, 3, 4, 5, 6], [1, 0.9, np.nan, 0.7, 0.6, 0.5], "NaN or inf"),
    ([1, 2, 3, 4, 5, 6], [1, 0.9, np.inf, 0.7, 0.6, 0.5], "NaN or inf"),
    ([1, 2, 2, 4, 5, 6], [1, 0.9, 0.8, 0.7, 0.6, 0.5], "strictly increasing"),
    ([0, 1, 2, 3, 4, 5], [1, 0.9, 0.8, 0.7, 0.6, 0.5], "must be > 0"),
    ([1, 2, 3, 4], [1, 0.9, 0.8, 0.7], "needs at least 5 points"),
    ([1, 2, 3], [1, 0.9], "same length"),
])
def test_bad_input_raises(steps, values, match) -> None:
    with pytest.raises(FitDataError, match=match):
        fit_curve(steps, values, families=("pow3", "mmf"))


def test_bad_arguments_raise(one_torch_thread) -> None:
    with pytest.raises(FitDataError, match="unknown learning-curve family"):
        fit_curve([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], families=("pow5",))
    steps, y = _noisy_pow_curve(0)
    fc = fit_curve(steps[:30], y[:30], families=("pow3",), bootstrap=4)
    with pytest.raises(FitDataError, match="level"):
        fc.band([100.0], 1.5)
    with pytest.raises(FitDataError, match="threshold"):
        should_stop(fc, 1.0, 100.0, threshold=0.0)
    # one name per concept (bootstrap=, as in fit()); the old n_boot= still works, with a DeprecationWarning
    with pytest.warns(DeprecationWarning, match="n_boot= is deprecated, use bootstrap="):
        old = fit_curve(steps[:30], y[:30], families=("pow3",), n_boot=4)
    assert np.array_equal(old.fits["pow3"]["boot"], fc.fits["pow3"]["boot"])
    with pytest.raises(FitDataError, match="bootstrap >= 0"):
        fit_curve(steps[:30], y[:30], families=("pow3",), bootstrap=-1)


def test_forecast_figure(one_torch_thread) -> None:
    from workbench.figures.learning_curves import forecast_figure

    steps, y = _noisy_pow_curve(2)
    fc = fit_curve(steps[:50], y[:50], families=("pow3", "mmf"), bootstrap=8)
    fig = forecast_figure(fc, truth=(steps[50:], y[50:]), level=0.8)
    names = [t.name for t in fig.data]
    assert {"observed", "ensemble mean", "80% band", "actual continuation"} <= set(names)
    assert any(n and n.startswith("pow3") for n in names)
    mean = next(t for t in fig.data if t.name == "ensemble mean")
    np.testing.assert_allclose(np.asarray(mean.y), fc.predict(np.asarray(mean.x)))
    fig.to_json()
