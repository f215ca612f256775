"""Curve processing: debiased EMA against TensorBoard's algorithm and pandas, spike-keeping
decimation invariants, grouping across seeds against a direct computation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from workbench.curves import (
    BUCKET_COLS,
    CurveError,
    EmaState,
    MinMaxBuckets,
    band_on_grid,
    ema,
    group_curves,
    minmax_decimate,
    minmax_indices,
    x_values,
)


def tensorboard_smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's scalar-card smoothing (tf-scalar-card / vz_chart_helpers `resmoothDataset`),
    transcribed: debiased EMA; non-finite points are passed through and do not update the average."""
    last, num_acc, out = 0.0, 0, []
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        num_acc += 1
        debias = 1 - weight ** num_acc if weight != 1 else 1
        out.append(last / debias)
    return out


@pytest.mark.parametrize("w", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_tensorboard_and_pandas(w: float) -> None:
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(size=500)) + 10
    got = ema(y, w)
    np.testing.assert_allclose(got, tensorboard_smooth(list(y), w), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got, pd.Series(y).ewm(alpha=1 - w, adjust=True).mean().to_numpy(),
                               rtol=1e-9, atol=1e-9)


def test_ema_is_debiased_constant_stays_constant() -> None:
    y = np.full(50, 3.25)
    np.testing.assert_allclose(ema(y, 0.95), y, rtol=1e-12)  # no pull towards 0 at the start


def test_ema_passes_non_finite_through() -> None:
    y = np.array([1.0, 2.0, np.nan, 4.0, np.inf, 0.5, -np.inf, 3.0])
    got = ema(y, 0.7)
    ref = tensorboard_smooth(list(y), 0.7)
    for g, r in zip(got, ref):
        assert (math.isnan(g) and math.isnan(r)) or g == pytest.approx(r, rel=1e-12)
    finite = np.isfinite(y)
    np.testing.assert_allclose(got[finite], ema(y[finite], 0.7))


def test_ema_continues_from_state() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=301)
    whole = ema(y, 0.9)
    a, st = ema(y[:120], 0.9, return_state=True)
    b, st2 = ema(y[120:], 0.9, state=st, return_state=True)
    np.testing.assert_allclose(np.concatenate([a, b]), whole, rtol=1e-12)
    assert isinstance(st2, EmaState) and st2.count == 301


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.5", True])
def test_ema_rejects_bad_weight(bad) -> None:
    with pytest.raises(CurveError, match="weight"):
        ema([1.0, 2.0], bad)


def test_ema_rejects_2d() -> None:
    with pytest.raises(CurveError, match="values"):
        ema(np.zeros((2, 2)), 0.5)


# ------------------------------------------------------------------ decimation
def test_decimate_short_curve_unchanged() -> None:
    x, y = np.arange(100), np.sin(np.arange(100))
    xd, yd = minmax_decimate(x, y, 200)
    np.testing.assert_array_equal(xd, x)
    np.testing.assert_array_equal(yd, y)


@pytest.mark.parametrize("n, n_out", [(100_000, 2000), (10_001, 500), (1003, 7), (5000, 4999)])
def test_decimate_invariants(n: int, n_out: int) -> None:
    rng = np.random.default_rng(n)
    x = np.arange(n) * 2
    y = np.cumsum(rng.normal(size=n))
    idx = minmax_indices(y, n_out)
    assert len(idx) <= n_out
    assert np.all(np.diff(idx) > 0)  # a subsequence, in order
    assert idx[0] == 0 and idx[-1] == n - 1
    xd, yd = minmax_decimate(x, y, n_out)
    np.testing.assert_array_equal(xd, x[idx])
    assert yd.max() == y.max() and yd.min() == y.min()


def test_decimate_keeps_a_one_point_spike_that_striding_loses() -> None:
    n = 100_000
    y = np.ones(n)
    y[54_321] = 50.0  # a loss spike
    y[77_777] = -3.0
    stride = y[:: n // 1000]
    assert stride.max() == 1.0  # the naive way hides it
    xd, yd = minmax_decimate(np.arange(n), y, 1000)
    assert 54_321 in xd and 77_777 in xd
    assert yd.max() == 50.0 and yd.min() == -3.0


def test_decimate_keeps_every_bucket_extreme() -> None:
    rng = np.random.default_rng(3)
    n, n_out = 10_002, 202  # 100 buckets of 100 inner points
    y = rng.normal(size=n)
    idx = set(minmax_indices(y, n_out).tolist())
    inner = y[1:-1].reshape(100, 100)
    for b in range(100):
        assert 1 + b * 100 + int(inner[b].argmax()) in idx
        assert 1 + b * 100 + int(inner[b].argmin()) in idx


def test_decimate_keeps_gaps() -> None:
    n = 20_000
    y = np.linspace(0, 1, n)
    y[5000:5010] = np.nan
    y[-100:] = np.inf  # a diverged tail
    idx = minmax_indices(y, 300)
    assert len(idx) <= 300
    assert np.isnan(y[idx]).any() and np.isinf(y[idx]).any()
    finite = y[idx][np.isfinite(y[idx])]
    assert finite.max() == np.nanmax(y[np.isfinite(y)]) and finite.min() == 0.0


@pytest.mark.parametrize("bad", [3, 0, -5, 2.5, True])
def test_decimate_rejects_bad_n_out(bad) -> None:
    with pytest.raises(CurveError, match="n_out"):
        minmax_indices(np.arange(10.0), bad)


def test_decimate_rejects_mismatched_lengths() -> None:
    with pytest.raises(CurveError, match="same length"):
        minmax_decimate(np.arange(10), np.arange(5000.0), 100)


# ------------------------------------------------------------------ grouping
def _runs() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for lr in (1e-3, 3e-3):
        for seed in range(3):
            for step in range(0, 100, 10):
                rows.append({"run": f"lr{lr}-s{seed}", "cfg.lr": lr, "step": step,
                             "value": 1 / (1 + step * lr * 10) + rng.normal(scale=0.01)})
    return pd.DataFrame(rows)


def test_group_curves_exact_matches_direct_computation() -> None:
    df = _runs()
    out = group_curves(df, "cfg.lr")
    assert list(out.columns) == ["group", "x", "mean", "min", "max", "n"]
    assert len(out) == 2 * 10
    for (g, xv), row in out.set_index(["group", "x"]).iterrows():
        vals = [v for r, gg, s, v in zip(df["run"], df["cfg.lr"], df["step"], df["value"]) if gg == g and s == xv]
        assert row["n"] == 3
        assert row["mean"] == pytest.approx(sum(vals) / 3, rel=1e-12)
        assert row["min"] == min(vals) and row["max"] == max(vals)


def test_group_curves_interp_aligns_offset_steps() -> None:
    # two seeds of y = 2x logged at different steps: on the union grid, interpolation is exact
    a = pd.DataFrame({"run": "a", "g": 1, "step": [0, 10, 20, 30], "value": [0.0, 20, 40, 60]})
    b = pd.DataFrame({"run": "b", "g": 1, "step": [5, 15, 25], "value": [10.0, 30, 50]})
    out = group_curves(pd.concat([a, b]), "g", align="interp")
    inside = out[(out["x"] >= 5) & (out["x"] <= 25)]
    assert (inside["n"] == 2).all()
    np.testing.assert_allclose(inside["mean"], 2 * inside["x"])
    np.testing.assert_allclose(inside["min"], inside["max"])
    edge = out[out["x"].isin([0, 30])]
    assert (edge["n"] == 1).all()  # no extrapolation beyond a run's own range
    exact = group_curves(pd.concat([a, b]), "g")
    assert (exact["n"] == 1).all()


def test_group_curves_ignores_non_finite() -> None:
    df = pd.DataFrame({"run": ["a", "b", "c"], "g": 0, "step": 1, "value": [1.0, np.inf, 3.0]})
    row = group_curves(df, "g").iloc[0]
    assert row["n"] == 2 and row["mean"] == 2.0 and row["max"] == 3.0


def test_group_curves_bad_input() -> None:
    with pytest.raises(CurveError, match="cfg.wd"):
        group_curves(_runs(), "cfg.wd")
    with pytest.raises(CurveError, match="align"):
        group_curves(_runs(), "cfg.lr", align="nearest")


def test_x_values_wall_is_relative_per_run() -> None:
    df = pd.DataFrame({"run": ["a", "a", "b"], "step": [0, 1, 0], "tokens": [0, 64, 0],
                       "wall": [100.0, 101.5, 300.0]})
    assert x_values(df, "wall").tolist() == [0.0, 1.5, 0.0]
    assert x_values(df, "tokens").tolist() == [0, 64, 0]
    with pytest.raises(CurveError, match="x"):
        x_values(df, "epoch")


def test_band_on_grid_matches_group_curves_interp() -> None:
    rng = np.random.default_rng(11)
    rows, xs, ys = [], [], []
    for seed in range(4):
        x = np.sort(rng.choice(np.arange(0, 1000), size=200, replace=False)).astype(float)
        y = np.sin(x / 100) + seed * 0.1
        xs.append(x)
        ys.append(y)
        rows.append(pd.DataFrame({"run": seed, "g": 0, "step": x, "value": y}))
    grid, mean, mn, mx, cnt = band_on_grid(xs, ys, n=50)
    assert grid[0] == min(x[0] for x in xs) and grid[-1] == max(x[-1] for x in xs)
    # independent check: interpolate each run at the grid points by hand
    for j, gx in enumerate(grid):
        vals = [np.interp(gx, x, y) for x, y in zip(xs, ys) if x[0] <= gx <= x[-1]]
        assert cnt[j] == len(vals)
        if vals:
            assert mean[j] == pytest.approx(np.mean(vals)) and mn[j] == min(vals) and mx[j] == max(vals)
    # and on x values every run logged, it agrees with group_curves(align="interp")
    common = set(xs[0]).intersection(*map(set, xs[1:]))
    g = group_curves(pd.concat(rows), "g", align="interp").set_index("x")
    for cx in list(common)[:5]:
        assert g.loc[cx, "mean"] == pytest.approx(np.mean([np.interp(cx, x, y) for x, y in zip(xs, ys)]))


def test_band_on_grid_log_and_bad_input() -> None:
    grid, mean, *_ = band_on_grid([np.array([1.0, 10, 100, 1000])], [np.array([4.0, 3, 2, 1])], n=4, log_x=True)
    np.testing.assert_allclose(grid, [1, 10, 100, 1000])
    np.testing.assert_allclose(mean, [4, 3, 2, 1])
    with pytest.raises(CurveError, match="n"):
        band_on_grid([np.arange(3.0)], [np.arange(3.0)], n=1)
    g, *_rest, c = band_on_grid([], [])
    assert g.size == 0 and c.size == 0


# --------------------------------------------------------------------------- incremental min/max buckets
def _brute_buckets(step: np.ndarray, v: np.ndarray, width: int) -> dict[int, tuple]:
    """Reference: per bucket of ``width`` steps, (min, step of first min, max, step of first max, rows,
    finite rows, first non-finite step) by a plain loop."""
    out: dict[int, list] = {}
    for s, x in zip(step.tolist(), v.tolist()):
        b = out.setdefault(s // width, [math.inf, None, -math.inf, None, 0, 0, None])
        b[4] += 1
        if not math.isfinite(x):
            b[6] = s if b[6] is None else min(b[6], s)
            continue
        b[5] += 1
        if x < b[0]:
            b[0], b[1] = x, s
        if x > b[2]:
            b[2], b[3] = x, s
    return {k: tuple(b) for k, b in out.items()}


def _as_dict(m: MinMaxBuckets) -> dict[int, tuple]:
    c = m.c
    out = {}
    for i, b in enumerate(m.b.tolist()):
        lo = c["lo"][i]
        out[b] = (math.inf if np.isnan(lo) else lo, None if np.isnan(lo) else int(c["lo_step"][i]),
                  -math.inf if np.isnan(c["hi"][i]) else c["hi"][i], None if np.isnan(c["hi"][i]) else int(c["hi_step"][i]),
                  int(c["n"][i]), int(c["k"][i]), None if np.isnan(c["nf_step"][i]) else int(c["nf_step"][i]))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_minmax_buckets_match_brute_force_and_incremental_equals_at_once(seed) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(500, 20_000))
    step = np.sort(rng.choice(3 * n, size=n, replace=False))  # gaps between logged steps
    v = rng.normal(size=n)
    v[rng.choice(n, 5, replace=False)] = np.nan
    v[rng.choice(n, 3, replace=False)] = np.inf
    v[rng.choice(n, 50)] = 1.5  # ties: the first row holding the extreme wins
    at_once = MinMaxBuckets.from_points(step, v, step * 2.0, 10.0 + step, max_buckets=300)
    assert at_once.b.size <= 300 and at_once.width & (at_once.width - 1) == 0
    assert _as_dict(at_once) == _brute_buckets(step, v, at_once.width)
    inc = MinMaxBuckets(max_buckets=300)
    i = 0
    while i < n:  # pieces of random size, including single rows
        k = int(rng.integers(1, 400))
        inc.append(step[i:i + k], v[i:i + k], step[i:i + k] * 2.0, 10.0 + step[i:i + k])
        i += k
    assert inc.width == at_once.width
    np.testing.assert_array_equal(inc.b, at_once.b)
    for col in BUCKET_COLS:
        if col == "sum":  # the same numbers added in another order
            np.testing.assert_allclose(inc.c[col], at_once.c[col], rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(inc.c[col], at_once.c[col])
    # every bucket's min and max are among the display points, with the newest row and a NaN per gap
    p = inc.points("tokens", 0.0)
    assert p["step"][-1] == step[-1] and np.all(np.diff(p["step"]) >= 0)
    assert set(inc.c["hi_step"][np.isfinite(inc.c["hi"])]) <= set(p["step"])
    assert np.isnan(p["y"]).sum() == np.isfinite(inc.c["nf_step"]).sum()
    ok = np.isfinite(p["y"])  # a gap's NaN point breaks the line (its x is NaN off the step axis)
    np.testing.assert_array_equal(p["x"][ok], 2.0 * p["step"][ok])
    assert np.nanmax(p["y"]) == np.nanmax(np.where(np.isfinite(v), v, np.nan))


def test_minmax_buckets_smoothing_exact_when_undecimated_and_from_bucket_means() -> None:
    rng = np.random.default_rng(3)
    v = rng.normal(size=600)
    m = MinMaxBuckets.from_points(np.arange(600), v, max_buckets=1000)
    np.testing.assert_allclose(m.points("step", 0.9)["ys"], ema(v, 0.9), rtol=1e-12)
    # decimated: the last smoothed value is the EMA of bucket means with weight w**k per bucket
    m = MinMaxBuckets.from_points(np.arange(600), v, max_buckets=100)
    w, k = 0.9, m.width
    means = v.reshape(-1, k).mean(axis=1)
    s = 0.0
    for x in means:
        s = w ** k * s + (1 - w ** k) * x
    assert m.points("step", w)["ys"][-1] == pytest.approx(s / (1 - w ** 600), rel=1e-10)


def test_minmax_buckets_bad_input() -> None:
    with pytest.raises(CurveError, match="width"):
        MinMaxBuckets(100, width=3)
    with pytest.raises(CurveError, match="max_buckets"):
        MinMaxBuckets(1)
    with pytest.raises(CurveError, match="step"):
        MinMaxBuckets().append([-1], [0.0])
    with pytest.raises(CurveError, match="one length"):
        MinMaxBuckets().append([1, 2], [0.0])


def test_nanquantile_columns_equals_numpy() -> None:
    from workbench.curves import nanquantile_columns

    rng = np.random.default_rng(5)
    a = rng.normal(size=(37, 60))
    a[rng.random(a.shape) < 0.3] = np.nan  # columns with some, and (below) none, finite values
    a[:, 7] = np.nan
    a[:36, 8], a[36, 8] = np.nan, 1.5  # one finite value
    a[3, 9] = np.inf  # not finite: left out like NaN
    want_a = np.where(np.isfinite(a), a, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanquantile(want_a, [0.0, 0.25, 0.5, 0.75, 1.0], axis=0)
    got = nanquantile_columns(a, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.isnan(got[:, 7]).all() and np.all(got[:, 8] == a[36, 8])
