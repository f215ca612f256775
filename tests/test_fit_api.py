"""The fitting API of issue 15: an acyclic import graph, one result protocol, predict_schedule for every
schedule form, the step convention and its errors, extrapolation flags and calibrated bands on synthetic
laws whose truth is known, the bootstrap running the point estimate's procedure, parameters held fixed,
± for every parameter, residual-trend diagnostics, the repetition-aware law, the CLI route for curves and
the threading context."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import workbench.fit as wf
from workbench.fit import (
    ExtrapolationWarning,
    FitData,
    FitDataError,
    Prediction,
    ResultProtocol,
    fit,
    get_law,
    predict_schedule,
)

PKG = Path(wf.__file__).parent

# LR-annealing law (Tissue et al. 2024), the truth of the synthetic curves
TRUE = {"L0": 2.0, "A": 1.2, "alpha": 0.5, "C": 0.4}


def _cosine(T: int, peak: float = 1e-3, floor: float = 0.1) -> np.ndarray:
    t = np.arange(T)
    return peak * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * t / T)))


def _curves(T: int = 1000, every: int = 10, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    law = get_law("lr_annealing")
    out = []
    for name, lr in (("constant", np.full(T, 1e-3)), ("cosine", _cosine(T))):
        st = np.arange(every, T + 1, every)
        y = law.predict(TRUE, FitData.from_curves([(name, st, np.ones(len(st)), lr)]).inputs)
        out.append((name, st, y * np.exp(noise * rng.standard_normal(len(st))), lr))
    return out


# ------------------------------------------------------------------ structure
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):  # every import, also inside functions
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workbench.fit"):
            mod = node.module
            if mod == "workbench.fit":
                out |= {f"workbench.fit.{a.name}" for a in node.names}
            else:
                out.add(mod)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("workbench.fit.")}
    return out


def test_import_graph_of_the_fit_package_is_acyclic():
    mods = {f"workbench.fit.{p.stem}": p for p in PKG.glob("*.py") if p.stem != "__init__"}
    graph = {m: {d for d in _imports(p) if d in mods and d != m} for m, p in mods.items()}
    assert graph["workbench.fit.fitting"] and graph["workbench.fit.result"]  # the parser sees the edges
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, "import cycle: " + " -> ".join(path + [m, d])
            if d not in state:
                visit(d, path + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])
    assert not any("workbench.fit" == d for p in mods.values() for d in _imports(p))  # no module imports the package
    assert not hasattr(get_law("chinchilla"), "extra")  # typed hooks, no law.extra[...]
    assert get_law("chinchilla").log_vjp is not None and get_law("multi_power").procedure is not None


def test_exports():
    for name in ("fit_multi_power", "schedule_law_starts", "predict_schedule", "FitData", "ResultProtocol"):
        assert hasattr(wf, name)


# ------------------------------------------------------------------ one result protocol
def test_fitresult_curveforecast_and_steplaw_share_the_protocol():
    x = np.geomspace(1, 100, 30)
    r = fit("power_law", FitData({"x": x}, 1 + 2 * x ** -0.5))
    steps = np.arange(1, 200)
    fc = wf.fit_curve(steps, 2 + 3 * steps ** -0.4, families=("pow3",), bootstrap=8, n_starts=8, backtest=False)
    rng = np.random.default_rng(0)
    rows = [{"N": N, "D": D, "lr": lr, "bs": bs, "smooth loss": 3 + 0.1 * (np.log(lr) + 7) ** 2 + 0.01 * rng.random()}
            for N in (1e8, 3e8) for D in (1e10, 4e10) for lr in (3e-4, 1e-3, 3e-3) for bs in (64, 128, 256)]
    sl = wf.fit_step_law(pd.DataFrame(rows), threshold=0.2)
    for obj, X in ((r, {"x": np.array([5.0, 500.0])}), (fc, [50, 400]), (sl, {"N": [2e8], "D": [2e10]})):
        assert isinstance(obj, ResultProtocol)
        assert isinstance(obj.params, dict) and obj.params
        assert isinstance(obj.report(), str)
        back = type(obj).from_dict(obj.to_dict())
        assert back.params == pytest.approx(obj.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)
            plain = obj.predict(X)
            lev = obj.predict(X, level=0.9)
        if isinstance(plain, dict):
            plain, lev = plain["lr"], lev["lr"]
        assert isinstance(lev, Prediction) and np.allclose(np.asarray(lev), plain)
        assert len(lev.flags) == len(plain)
        assert obj.figure() is not None
    assert list(fc.predict([50, 400], level=0.9).flags) == ["inside", "far"]


# ------------------------------------------------------------------ predict_schedule
def test_predict_schedule_takes_a_schedule_a_spec_and_an_array():
    from workbench.schedules import build

    r = fit("lr_annealing", FitData.from_curves(_curves()))
    spec = {"name": "cosine", "total_steps": 1500}
    sched = build(spec)
    arr = 1e-3 * np.asarray(sched(np.arange(1500)), float)
    steps = [100, 1000, 1500]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        a = predict_schedule(r, sched, steps, peak_lr=1e-3)
        b = predict_schedule(r, spec, steps, peak_lr=1e-3)
        c = predict_schedule(r, arr, steps)
    truth = get_law("lr_annealing").predict(TRUE, FitData.from_curves([("q", steps, np.ones(3), arr)]).inputs)
    for p in (a, b, c):
        assert np.allclose(np.asarray(p), truth, rtol=1e-4)
    assert np.allclose(np.asarray(a), np.asarray(b)) and np.allclose(np.asarray(a), np.asarray(c))
    assert list(a.at["step"]) == steps
    full = predict_schedule(r, arr)  # default steps: 1..T, including T
    assert full.at["step"][0] == 1 and full.at["step"][-1] == 1500
    with pytest.raises(FitDataError, match="already absolute"):
        predict_schedule(r, arr, steps, peak_lr=1e-3)


# ------------------------------------------------------------------ step convention
def test_step_convention_and_its_errors():
    lr = np.full(100, 1e-3)
    d = FitData.from_curves([("c", np.arange(10, 101, 10), np.ones(10), lr)])  # step 100 = after 100 updates
    assert d.x["step"].max() == 100
    law = get_law("lr_annealing")
    # the loss at step s depends on the LRs of updates 0..s-1: changing lr[s] does not change it
    lr2 = lr.copy()
    lr2[50:] = 5e-4
    p1 = law.predict(TRUE, FitData.from_curves([("c", [50], [1.0], lr)]).inputs)
    p2 = law.predict(TRUE, FitData.from_curves([("c", [50], [1.0], lr2)]).inputs)
    p3 = law.predict(TRUE, FitData.from_curves([("c", [51], [1.0], lr2)]).inputs)
    assert p1 == pytest.approx(p2) and p3[0] != pytest.approx(p1[0])
    with pytest.raises(FitDataError, match="count steps from 1"):
        FitData.from_curves([("c", np.arange(11, 102, 10), np.ones(10), lr)])
    with pytest.raises(FitDataError, match="one value per logged point"):
        FitData.from_curves([("c", np.arange(100, 1001, 100), np.ones(10), np.full(10, 1e-3))])
    with pytest.raises(FitDataError, match="step 0, measured before any update"):
        FitData.from_curves([("c", np.arange(0, 100, 10), np.ones(10), lr)])


def test_from_frame_and_from_csv_read_curves(tmp_path):
    frames = []
    for name, st, y, lr in _curves():
        df = pd.DataFrame({"step": np.arange(0, len(lr) + 1), "lr": np.r_[lr, lr[-1]]})
        df["val_loss"] = np.nan
        df.loc[df["step"].isin(st), "val_loss"] = y
        df.to_csv(tmp_path / f"{name}.csv", index=False)
        frames.append(df.assign(run=name))
    d = FitData.from_frame(pd.concat(frames), step="step", loss="val_loss", lr="lr", curve="run")
    e = FitData.from_csv([tmp_path / "constant.csv", tmp_path / "cosine.csv"], step="step", loss="val_loss", lr="lr")
    assert d.names == e.names == ["constant", "cosine"] and len(d) == len(e) == 200
    assert np.allclose(d.lrs[1][:1000], _cosine(1000))
    r = fit("lr_annealing", e)
    assert r.params["alpha"] == pytest.approx(TRUE["alpha"], rel=1e-3)
    with pytest.raises(FitDataError, match="column 'nope'"):
        FitData.from_csv([tmp_path / "constant.csv"], step="step", loss="nope", lr="lr")


# ------------------------------------------------------------------ flags and calibrated bands
def test_flags_on_a_synthetic_law_with_known_truth():
    data = FitData.from_curves(_curves(noise=1e-3))
    r = fit("lr_annealing", data, calibrate=True)
    assert r.domain.ranges["step"][1] == 1000 and r.calibration is not None
    lr = np.full(4000, 1e-3)
    steps = np.array([500, 1000, 1200, 1500, 1600, 3000, 4000])
    with pytest.warns(ExtrapolationWarning, match="outside the fitted domain"):
        p = predict_schedule(r, lr, steps)
    assert list(p.flags) == ["inside", "inside", "mild", "mild", "far", "far", "far"]
    assert all(f != "inside" for s, f in zip(steps, p.flags) if s > 1.5 * 1000)
    assert "longest fitted curve" in p.why[-1]
    assert np.all(np.diff(np.asarray(p.hi) / np.asarray(p.mean)) >= -1e-12)  # the band widens with distance
    truth = get_law("lr_annealing").predict(TRUE, FitData.from_curves([("q", steps, np.ones(len(steps)), lr)]).inputs)
    assert np.all((p.lo <= truth) & (truth <= p.hi))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warns once per result
        predict_schedule(r, lr, steps)
    # a higher peak LR than fitted is flagged too
    q = r.predict(FitData.from_curves([("hot", [500], [1.0], np.full(500, 2e-3))]), level=0.95)
    assert q.flags[0] == "far" and "peak LR" in q.why[0]
    # point laws: distance beyond the fitted input range
    x = np.geomspace(1, 100, 20)
    pr = fit("power_law", FitData({"x": x}, 1 + 2 * x ** -0.5))
    with pytest.warns(ExtrapolationWarning):
        pp = pr.predict({"x": [50.0, 120.0, 1000.0, 0.5]}, level=0.95)
    assert list(pp.flags) == ["inside", "mild", "far", "far"]


def test_bootstrap_runs_the_point_estimates_procedure():
    from dataclasses import replace

    from workbench.fit.core import multistart
    from workbench.fit.objective import objective

    calls = []
    base = get_law("power_law")

    def procedure(data, *, delta, weights=None):
        calls.append(None if weights is None else np.asarray(weights).copy())
        fun = objective(law, data, loss="huber", delta=delta, weights=None if weights is None else weights[None])
        th, f, _ = multistart(fun, base.starts(), lower=base.lower, upper=base.upper)
        return th, f, len(base.starts())

    law = replace(base, name="power_law_proc", procedure=procedure)
    x = np.geomspace(1, 100, 40)
    y = (1 + 2 * x ** -0.5) * np.exp(0.01 * np.random.default_rng(1).standard_normal(40))
    d = FitData({"x": x}, y, group=np.repeat([0, 1], 20))
    r = fit(law, d, bootstrap=4)
    assert calls[0] is None and len(calls) == 5 and all(w is not None and w.sum() == 40 for w in calls[1:])
    assert r.boot.shape == (4, 3)
    assert any("fewer than 3" in n for n in r.notes)  # 2 groups: time blocks, and it says so
    # the procedure with unit weights is the point estimate
    th1, _, _ = procedure(d, delta=1e-3, weights=np.ones(40))
    assert np.allclose(th1, r.theta, rtol=1e-8)


def test_fixed_parameters_and_plus_minus_for_every_parameter():
    x = np.geomspace(1, 100, 30)
    y = (1 + 2 * x ** -0.5) * np.exp(0.002 * np.random.default_rng(0).standard_normal(30))
    r = fit("power_law", FitData({"x": x}, y), fixed={"alpha": 0.5})
    assert r.params["alpha"] == 0.5 and r.params["A"] == pytest.approx(2, rel=0.02)
    assert "(fixed)" in r.report()
    N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e10, 5), np.geomspace(1e9, 1e12, 5)))
    L = (1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28) * np.exp(0.002 * np.random.default_rng(0).standard_normal(25))
    c = fit("chinchilla", FitData({"N": N, "D": D}, L), n_starts=200)
    rep = c.report().split("[[parameters]]")[1].splitlines()[1:6]
    assert all("+/-" in line for line in rep), rep
    se = c.stderr
    assert se["A"] == pytest.approx(c.params["A"] * c.covariance()[0, 0] ** 0.5, rel=1e-3)  # delta method
    with pytest.raises(FitDataError, match="not a parameter"):
        fit("power_law", FitData({"x": x}, y), fixed={"beta": 1.0})


# ------------------------------------------------------------------ diagnostics and repetition
def test_residual_trend_flags_a_curve_that_flattens_late():
    clean = fit("lr_annealing", FitData.from_curves(_curves(noise=5e-4)))
    assert not any(d["flag"] for d in clean.diagnostics())
    bent = []
    for name, st, y, lr in _curves(noise=5e-4):
        bent.append((name, st, y * (1 + 0.03 * np.clip(st / 1000 - 0.6, 0, None) ** 2 / 0.16), lr))
    r = fit("lr_annealing", FitData.from_curves(bent))
    msgs = [d["message"] for d in r.diagnostics() if d["flag"]]
    assert msgs and "under-fits the end of curve" in msgs[0] and "mis-predicted" in msgs[0]
    assert "[[diagnostics]]" in r.report()
    g = wf.gap_trend(np.arange(100), np.linspace(3, 2, 100), np.linspace(3, 2, 100) * (1 + np.linspace(0, 0.05, 100)))
    assert g["flag"]


def test_fit_runs_the_gap_check_when_train_loss_is_given():
    # validation = the law; training loss: the same on the constant run, but drifting below the validation
    # loss over the second half of the cosine run (over-fitting): the fit flags that curve only
    rows = _curves(noise=2e-4)
    data = FitData.from_curves(rows)
    st, cur = data.x["step"], data.x["curve"]
    opening = np.where(cur == 1, 0.02 * np.clip(st / 1000 - 0.5, 0, None) / 0.5, 0.0)
    train = data.y * (1 - opening)
    r = fit("lr_annealing", data, train_loss=train)
    gap = {d["curve"]: d for d in r.diagnostics() if d["check"] == "gap_trend"}
    assert set(gap) == {"constant", "cosine"}
    assert gap["cosine"]["flag"] and not gap["constant"]["flag"]
    assert gap["cosine"]["growth"] == pytest.approx(0.02, rel=0.1)
    rep = r.report()
    assert "[[diagnostics]]" in rep and "curve cosine: the validation-train gap grows" in rep
    assert "curve constant: the validation-train gap is stable" in rep
    r2 = wf.FitResult.from_json(r.to_json())
    assert r2.gap == r.gap
    assert not fit("lr_annealing", data).gap  # no training loss, no gap check
    with pytest.raises(FitDataError, match="train_loss"):
        fit("lr_annealing", data, train_loss=train[:-1])
    held = fit("lr_annealing", data, train_loss=train, holdout=cur == 0)  # split with the data
    assert [d["curve"] for d in held.gap] == ["cosine"] and held.gap[0]["flag"]


def test_repetition_law_recovers_its_parameters():
    law = get_law("lr_annealing_repeat")
    truth = {"L0": 2.0, "A": 1.2, "alpha": 0.5, "C": 0.4, "r_star": 2.0}
    T = 3000
    rows = [(n, np.arange(20, T + 1, 20), np.ones(T // 20), lr) for n, lr in
            (("constant", np.full(T, 1e-3)), ("cosine", _cosine(T)))]
    d = wf.with_unique(FitData.from_curves(rows), 600.0)  # 5 epochs over a 600-update dataset
    d.y = law.predict(truth, d.inputs)
    r = fit(law, d)
    for k, v in truth.items():
        assert r.params[k] == pytest.approx(v, rel=2e-2), (k, r.params)
    # the fresh-data law cannot follow it: the comparison says the repetition term helps
    table = wf.compare_repetition(FitData(dict(d.x), d.y, d.group, d.lrs, d.names), 600.0)
    assert "helps" in table["verdict"].iloc[1] and "does not" not in table["verdict"].iloc[1]


def test_fit_threads_context_restores_the_callers_setting():
    from workbench.fit.threads import small_problem_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with small_problem_threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        x = np.geomspace(1, 100, 20)
        fit("power_law", FitData({"x": x}, 1 + 2 * x ** -0.5))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ CLI
def test_cli_fit_curves_and_predict(tmp_path, capsys):
    from workbench.cli import main

    paths = []
    for name, st, y, lr in _curves(noise=5e-4):
        p = tmp_path / f"{name}.csv"
        pd.DataFrame({"step": st, "lr": lr[st - 1], "val_loss": y}).to_csv(p, index=False)
        paths.append(str(p))
    out = tmp_path / "fit.json"
    rc = main(["fit", "lr_annealing", "--curves", *paths, "--step", "step", "--loss", "val_loss", "--lr", "lr",
               "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "[[band]] calibrated" in text and "[[fitted domain]]" in text
    (tmp_path / "wsd.yaml").write_text("name: wsd\ntotal_steps: 2000\ndecay_fraction: 0.2\npeak_lr: 0.001\n")
    pred = tmp_path / "pred.csv"
    rc = main(["predict", str(out), "--schedule", str(tmp_path / "wsd.yaml"), "--level", "0.9", "--out", str(pred)])
    text = capsys.readouterr().out
    assert rc == 0, text
    df = pd.read_csv(pred)
    assert {"step", "pred", "lo", "hi", "flag", "why"} <= set(df.columns)
    assert (df.loc[df["step"] > 1500, "flag"] == "far").all() and "far" in text
    assert (df["lo"] <= df["pred"]).all() and (df["pred"] <= df["hi"]).all()
    rc = main(["predict", str(out), "--schedule", str(tmp_path / "nope.yaml")])
    assert rc == 2 and "workbench predict: error: schedule" in capsys.readouterr().err
