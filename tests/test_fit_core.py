"""The batched multi-start minimiser (workbench.fit.core): screening a large grid (successive halving)
finds the optimum of running every start to convergence, and both agree with scipy's L-BFGS-B."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from workbench.fit import FitData, fit, get_law
from workbench.fit.core import multistart


def _rastrigin_like(th: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Many local minima; the global one at (1, -2) with value 0."""
    x = th - torch.tensor([1.0, -2.0], dtype=th.dtype)
    return (x * x).sum(-1) + 2.0 * (1 - torch.cos(2 * np.pi * x)).sum(-1)


def test_screening_keeps_the_global_optimum_of_a_multimodal_problem():
    g = np.linspace(-5, 5, 30)
    starts = np.array([[a, b] for a in g for b in g])  # 900 starts > screen_min
    x_s, f_s, raw_s = multistart(_rastrigin_like, starts, n_polish=1)
    x_a, f_a, raw_a = multistart(_rastrigin_like, starts, n_polish=1, keep=1.0)
    assert len(raw_s.fun) < len(starts) == len(raw_a.fun)      # screening really dropped starts
    assert f_s == pytest.approx(f_a, abs=1e-10) and f_a < 1e-10
    np.testing.assert_allclose(x_s, [1.0, -2.0], atol=1e-5)


def test_bad_keep_is_refused():
    with pytest.raises(ValueError, match="keep"):
        multistart(_rastrigin_like, np.zeros((2, 2)), keep=0.0)


def test_chinchilla_synthetic_grid_screened_equals_every_start_and_scipy():
    rng = np.random.default_rng(3)
    N = np.geomspace(1e7, 1e10, 12).repeat(6)
    D = np.tile(np.geomspace(1e9, 1e12, 6), 12)
    true = {"A": 400.0, "B": 410.0, "E": 1.69, "alpha": 0.34, "beta": 0.28}
    L = true["E"] + true["A"] / N ** true["alpha"] + true["B"] / D ** true["beta"]
    data = FitData({"N": N, "D": D}, L * np.exp(rng.normal(scale=0.01, size=L.size)))
    screened, every = fit("chinchilla", data), fit("chinchilla", data, keep=1.0)
    assert screened.objective == pytest.approx(every.objective, rel=1e-6)
    # scipy L-BFGS-B from our optimum does not find a lower objective
    law = get_law("chinchilla")
    from workbench.fit.fitting import objective

    fun = objective(law, data)

    def fg(v):
        t = torch.tensor(v[None, :], requires_grad=True)
        f = fun(t, torch.zeros(1, dtype=torch.long))[0]
        f.backward()
        return float(f.detach()), t.grad[0].numpy().copy()

    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
              for lo, hi in zip(law.lower, law.upper)]
    res = minimize(fg, screened.theta, jac=True, method="L-BFGS-B", bounds=bounds)
    assert res.fun >= screened.objective - 1e-9
