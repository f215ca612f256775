"""Schedule-aware loss-curve laws on the multi-power-law paper's curves (Luo et al., ICLR 2025; data in
../shared/data/mpl-loss-curves, skipped without it): the LD sum and its hand-written gradient against a
plain autograd implementation, the two-stage fit against the authors' published parameters, and the
test-set metrics against the paper's Table 1 (multi-power law vs the LR-annealing law of Tissue et al. 2024).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.fit import FitData, curve_metrics, fit, get_law
from workbench.fit.schedule_laws import fit_multi_power, schedule_law_starts

TRAIN = ["cosine_24000", "constant_24000", "wsdcon_9"]
TEST = ["constant_72000", "cosine_72000", "wsd_20000_24000", "wsdld_20000_24000", "wsdcon_3", "wsdcon_18"]
# authors' fitted parameters (repo src/config.py), [L0, A, alpha, B, C, beta, gamma]
REF = {"25": [3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257],
       "100": [2.6514477, 0.60115152, 0.45295811, 437.9464276, 2.13245612, 0.59785199, 0.65523644],
       "400": [2.37474466, 0.65421216, 0.42878731, 523.42464371, 2.02462735, 0.59350493, 0.63472457]}
# paper Table 1 (test set), R2 / mean relative error (PredE) / worst relative error (WorstE)
TABLE1 = {"25": {"lr_annealing": (0.9904, 0.0014, 0.0047), "multi_power": (0.9975, 0.0012, 0.0040)}}


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def _mpl_lr(stem: str, T: int) -> np.ndarray:
    from workbench.schedules.paper import mpl_schedule

    s, peak = mpl_schedule(stem)
    return peak * np.asarray(s(np.arange(T)), float)


def mpl_curves(root, size: str, stems: list[str]) -> FitData:
    """The paper's curves with the per-step LR rebuilt from the schedule; the step-24000 row dropped as the
    authors' data_loader.py does (SOURCE.md)."""
    out = []
    for stem in stems:
        df = pd.read_csv(root / "mpl-loss-curves" / f"csv_{size}" / f"{stem}.csv")
        df = df[df["step"] != 24000]
        out.append((stem, df["step"].to_numpy(), df["loss"].to_numpy(), _mpl_lr(stem, int(df["step"].max()) + 1)))
    # the repository's step s is the index of the last update applied (its code sums the LRs of updates
    # 0..s): step_offset=1 maps it to the workbench convention (loss after s updates, workbench.fit.data)
    return FitData.from_curves(out, step_offset=1)


# ------------------------------------------------------------------ the LD sum and its gradient
def _dense_mpl(th: torch.Tensor, lrs: list[np.ndarray], steps: np.ndarray, curve: np.ndarray) -> torch.Tensor:
    """Eq. (7) of Luo et al. term by term with plain torch autograd (independent of the fused version), at
    t = s − 1 for the loss at step s (the step convention of workbench.fit.data: measured after s updates)."""
    L0, A, al, B, C, be, ga = th
    out = []
    for c, s in zip(curve, steps):
        t = int(s) - 1
        lr = torch.as_tensor(lrs[c])
        S = torch.cumsum(lr, 0)
        k = torch.arange(1, int(t) + 1)
        G = 1 - (1 + C * lr[k] ** (-ga) * (S[int(t)] - S[k - 1])) ** (-be)
        out.append(L0 + A * S[int(t)] ** (-al) + B * torch.sum((lr[k] - lr[k - 1]) * G))
    return torch.stack(out)


def test_ld_sum_and_gradient_match_plain_autograd():
    T = 1500
    t = np.arange(T)
    warm = np.minimum(t / 100, 1.0) * 1e-3
    cosine = np.where(t < 100, warm, 1e-3 * (0.1 + 0.45 * (1 + np.cos(np.pi * t / T))))
    lrs = [cosine, np.where(t < 900, warm, 2e-4), warm]  # cosine, two-stage, constant (all with warmup)
    steps = np.tile(np.arange(100, T, 37), 3)
    curve = np.repeat([0, 1, 2], len(steps) // 3)
    d = FitData({"step": steps, "curve": curve}, np.ones(len(steps)), curve, lrs)
    law = get_law("multi_power")
    th = torch.tensor([[2.5, 0.4, 0.5, 300.0, 2.0, 0.5, 0.6], [3.0, 0.6, 0.3, 80.0, 0.0, 1.2, 0.2]],
                      dtype=torch.float64, requires_grad=True)
    w = torch.linspace(-1, 1, len(steps), dtype=torch.float64)
    fused = law.fn(th, law.tensors(d.inputs))
    (fused * w).sum().backward()
    for i in range(2):
        ti = th.detach()[i].clone().requires_grad_(True)
        dense = _dense_mpl(ti, lrs, steps, curve)
        (dense * w).sum().backward()
        assert torch.allclose(fused[i].detach(), dense.detach(), rtol=1e-12, atol=1e-12)
        assert torch.allclose(th.grad[i], ti.grad, rtol=1e-9, atol=1e-12), (th.grad[i], ti.grad)


# ------------------------------------------------------------------ the paper's curves
@pytest.mark.shared_data
def test_mpl_reference_params_reproduce_readme_metrics(shared_data, one_torch_thread):
    test = mpl_curves(shared_data, "25", TEST)
    m = curve_metrics(test.y, get_law("multi_power").predict(REF["25"], test.inputs), test.group)
    want = {"r2": 0.9988, "mae": 0.00376, "rmse": 0.00465, "mean_rel": 0.00110, "worst_rel": 0.00409}
    for k, v in want.items():
        assert rel(m[k], v) < 0.005, (k, m[k], v)


_FITS: dict[str, object] = {}


def _mpl_fit(root, size: str):
    if size not in _FITS:
        _FITS[size] = fit_multi_power(mpl_curves(root, size, TRAIN))
    return _FITS[size]


@pytest.mark.shared_data
@pytest.mark.parametrize("size", ["25", "100", "400"])
def test_two_stage_fit_recovers_published_params(shared_data, one_torch_thread, size):
    """Grid + L-BFGS on the 4-parameter form, then AdamW on all seven, reproduces the authors' fitted
    parameters (their own code's output) for every model size."""
    r = _mpl_fit(shared_data, size)
    for name, got, want in zip(r.law.param_names, r.theta, REF[size]):
        assert rel(got, want) < 0.01, (size, name, got, want)


@pytest.mark.shared_data
def test_table1_25m_multi_power_beats_lr_annealing(shared_data, one_torch_thread):
    """Fit both laws on cosine_24000, constant_24000, wsdcon_9 and predict the six unseen schedules.

    Paper Table 1 (25M): R² and worst relative error within 10 %. The mean relative error of our MPL fit
    (0.00099) is 17 % *below* the table's 0.0012 (the authors' updated README gets 0.00110 from their own
    parameters), so it is checked to be within 20 %; the LR-annealing law's worst error is 25 % above the
    table's (0.0059 vs 0.0047), so it is checked within 30 %. The ordering of the paper holds on all three."""
    train, test = mpl_curves(shared_data, "25", TRAIN), mpl_curves(shared_data, "25", TEST)
    mpl = _mpl_fit(shared_data, "25").evaluate(test)
    law = get_law("lr_annealing")
    lra = fit(law, train, starts=schedule_law_starts(law, train.y, 3e-4), n_polish=1).evaluate(test)
    got = {"multi_power": mpl, "lr_annealing": lra}
    tol = {"multi_power": (0.1, 0.2, 0.1), "lr_annealing": (0.1, 0.1, 0.3)}
    for name, (r2, mean_rel, worst_rel) in TABLE1["25"].items():
        m, t = got[name], tol[name]
        assert rel(m["r2"], r2) < t[0] and rel(m["mean_rel"], mean_rel) < t[1], (name, m)
        assert rel(m["worst_rel"], worst_rel) < t[2], (name, m)
    assert mpl["r2"] > lra["r2"] and mpl["mean_rel"] < lra["mean_rel"] and mpl["worst_rel"] < lra["worst_rel"]


# ------------------------------------------------------------------ routes of the multi-power fit (issue 15 item 6)
def _cos_lr(T: int, peak: float = 3e-3, floor: float = 0.05) -> np.ndarray:
    t = np.arange(T)
    return peak * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * t / T)))


def test_spread_route_wins_where_the_paper_start_is_far_from_the_truth(one_torch_thread):
    # curves of a multi-power law whose (beta, gamma) lie far from the paper's start (0.5, 0.5): the route
    # from spread starts fits them clearly better and is kept; with spread=False only the paper's route runs
    import workbench.fit.schedule_laws as SL

    law = get_law("multi_power")
    truth = [2.5, 0.8, 0.45, 300.0, 4.0, 3.0, 0.1]
    T = 1500
    rows = [(n, np.arange(15, T + 1, 15), np.ones(T // 15), lr)
            for n, lr in (("constant", np.full(T, 3e-3)), ("cosine", _cos_lr(T)),
                          ("step", np.r_[np.full(T // 2, 3e-3), np.full(T - T // 2, 3e-4)]))]
    data = FitData.from_curves(rows)
    rng = np.random.default_rng(0)
    data.y = law.predict(truth, data.inputs) * np.exp(2e-4 * rng.standard_normal(len(data)))
    paper = fit_multi_power(data, spread=False)
    both = fit_multi_power(data)
    assert both.objective < 0.8 * paper.objective  # measured: 0.0021 against 0.0031
    assert both.n_starts == paper.n_starts + len(SL.SPREAD_BETA) * len(SL.SPREAD_GAMMA) * len(SL.SPREAD_C)
    assert fit("multi_power", data).objective == pytest.approx(both.objective)  # fit() runs the same procedure
    # the decision rule itself: an insignificant improvement keeps the paper's route, a clear one wins
    th = np.asarray(paper.theta)
    assert SL._better(data, (th, 1.0, 1), (th + 1, 0.999999, 1), None)[1] == 1.0
    assert SL._better(data, (th, 1.0, 1), (th + 1, 0.1, 1), None)[1] == 0.1
