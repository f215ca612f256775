"""Law fitter at the param level (no browser): CSV upload (malformed files give a message), column
mapping and derived columns, fitting several laws with workbench.fit (parameters recovered from
synthetic data with known values), ranking, extrapolation, crossover, and the figure."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.apps.law_fitter import CSVError, LawFitter, derive, read_csv

E, A, ALPHA = 1.5, 4.0, 0.5  # L = E + A x^-alpha (Hestness et al. 2017)


def power_csv(n: int = 40, noise: float = 0.0) -> bytes:
    rng = np.random.default_rng(0)
    x = np.logspace(1, 5, n)
    y = (E + A * x ** -ALPHA) * (1 + noise * rng.standard_normal(n))
    lines = ["size,tokens_m,loss"] + [f"{a},{a / 1e6},{b}" for a, b in zip(x, y)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SHARED_DATA", str(tmp_path / "none"))  # no data folder: start empty
    monkeypatch.setattr("workbench.datasets.REPO_DATA", tmp_path / "none")
    return LawFitter(store_path=str(tmp_path / "runs.db"))


def test_malformed_csv_is_a_message(app):
    app.upload(b"size,loss\n1,2,3,4\n5,6\n", "bad.csv")
    assert app.message.visible and app.message.alert_type == "danger"
    assert "line 2 has 4 fields" in app.message.object and app.df.empty
    app.upload(b"\xff\xfe\x00garbage", "bin.csv")
    assert "CSV" in app.message.object
    app.upload(b"only\n1\n2\n", "one.csv")
    assert "two columns" in app.message.object
    with pytest.raises(CSVError):
        read_csv(b"")


def test_uploaded_mapping_is_shown_and_confirmed_never_guessed(app):
    app.upload(power_csv(), "good.csv")
    assert "Proposed mapping: x=size,L=loss" in app.message.object and not app.mapping_confirmed
    assert app.confirm_btn.visible
    assert app.fit() is None and "confirm the uploaded file's column mapping" in app.message.object
    app.confirm_mapping()
    assert app.mapping_confirmed and not app.confirm_btn.visible
    assert app.fit() is not None, app.message.object
    app.upload(power_csv(), "again.csv")  # a new file: a new proposal to confirm
    assert not app.mapping_confirmed
    app.mapping = "x=tokens_m,L=loss"  # typing a mapping is the user's choice
    assert app.mapping_confirmed and app.fit() is not None, app.message.object


def test_fit_recovers_power_law_and_ranks(app):
    app.upload(power_csv(), "good.csv")
    app.confirm_mapping()
    assert len(app.df) == 40
    app.param.update(mapping="x=size,L=loss", x_var="x", laws=["power_law", "grok_power"], holdout=0.2,
                     target_scale=1e7)
    res = app.fit()
    assert res is not None, app.message.object
    p = res["power_law"].params
    assert p["E"] == pytest.approx(E, rel=1e-4) and p["A"] == pytest.approx(A, rel=1e-3)
    assert p["alpha"] == pytest.approx(ALPHA, rel=1e-3)
    ranking = app.compare_table.value
    assert list(ranking["law"])[0] == "power_law"  # the true law wins on held-out error
    assert ranking.loc[0, "heldout_mean_rel"] < 1e-6
    params = app.params_table.value
    assert set(params["law"]) == {"power_law", "grok_power"}
    assert f"{E + A * 1e7 ** -ALPHA:.4g}" in app.extra.object  # extrapolation to the target scale
    assert "Crossover" in app.extra.object
    fig = app.figure()
    names = [t.name for t in fig.data]
    assert "data" in names and "power_law" in names and "grok_power" in names
    tr = next(t for t in fig.data if t.name == "power_law")
    assert np.allclose(tr.y, E + A * np.asarray(tr.x) ** -ALPHA, rtol=1e-4)
    assert fig.layout.xaxis.type == "log"


def test_mapping_errors_and_derived_columns(app):
    app.upload(power_csv(), "good.csv")
    app.param.update(mapping="x=no_such,L=loss", laws=["power_law"])
    assert app.fit() is None and "no_such" in app.message.object
    app.param.update(mapping="x=size_k,L=loss", derived="size_k = size / 1000", x_var="x")
    res = app.fit()
    assert res is not None, app.message.object
    # L = E + A (1000 x')^-alpha: A' = A * 1000^-alpha
    assert res["power_law"].params["A"] == pytest.approx(A * 1000 ** -ALPHA, rel=1e-3)
    app.derived = "nonsense"
    assert app.fit() is None and "derive" in app.message.object
    df = derive(app.df, "D = `tokens_m` * 2")
    assert np.allclose(df["D"], app.df["tokens_m"] * 2)


def test_schedule_law_is_refused_on_points_with_a_reason(app):
    app.upload(power_csv(), "good.csv")
    app.confirm_mapping()
    app.param.update(mapping="x=size,L=loss", laws=["multi_power"])
    assert app.fit() is None and "loss curves" in app.message.object


def test_no_data_is_a_message(app):
    app.fit()
    assert "load a CSV" in app.message.object


def test_opens_on_the_shipped_chinchilla_points(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SHARED_DATA", str(tmp_path / "none"))  # a clone without ../shared
    app = LawFitter(store_path=str(tmp_path / "runs.db"))
    assert app.dataset == "data/chinchilla-epoch/svg_extracted_data.csv"
    assert "data/gadre-overtraining/models_flat.csv" in app.param.dataset.objects
    assert "data/mpl-loss-curves/csv_25/cosine_24000.csv" in app.param.curve_files.objects
    assert app.laws == ["chinchilla"] and len(app.df) == 245
    df = app.frame()
    assert np.allclose(df["D"], df["Training FLOP"] / (6 * df["Model Size"]))
    app.drop_highest = 5
    assert len(app.frame()) == 240


def test_sweep_as_data(store, tmp_path):
    sid = store.create_sweep("wd", {})
    for wd in (0.1, 0.3, 1.0, 3.0):
        rid = store.create_run(f"wd{wd}", config={"weight_decay": wd}, sweep=sid)
        store.log(rid, 0, {"test_loss": 2.0 + 0.5 * wd ** -0.5})
        store.set_status(rid, "finished")
    app = LawFitter(store_path=str(store.path))
    app.load_sweep(sid)
    assert len(app.df) == 4 and "final.test_loss" in app.df.columns
    app.param.update(mapping="x=cfg.weight_decay,L=final.test_loss", laws=["power_law"], holdout=0.0)
    res = app.fit()
    assert res is not None, app.message.object
    assert res["power_law"].params["E"] == pytest.approx(2.0, rel=1e-3)


# ------------------------------------------------------------------ loss curves (schedule-aware laws)
MPL_TRUE = [2.5, 0.4, 0.5, 300.0, 2.0, 0.5, 0.6]  # L0, A, alpha, B, C, beta, gamma (Luo et al. 2025, eq. 7)
T_SYN, PEAK = 1000, 1e-3


def syn_lr(name: str, total: int = T_SYN, **kw) -> np.ndarray:
    from workbench.schedules import build

    return PEAK * np.asarray(build(name, total_steps=total, warmup_steps=50, **kw)(np.arange(total)), float)


def mpl_truth(lr: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Loss of a curve under the multi-power law with MPL_TRUE (the generating model of the synthetic set)."""
    from workbench.fit import FitData, get_law

    d = FitData.from_curves([("c", steps, np.ones(len(steps)), lr)])
    return get_law("multi_power").predict(MPL_TRUE, d.inputs)


def curves_csv(lrs: dict[str, np.ndarray], every: int = 10) -> bytes:
    rows = ["step,lr,loss,curve"]
    for name, lr in lrs.items():
        steps = np.arange(every, len(lr), every)
        rows += [f"{s},{float(lr[s])!r},{float(v)!r},{name}" for s, v in zip(steps, mpl_truth(lr, steps))]
    return ("\n".join(rows) + "\n").encode()


def traces(fig, curve: str, kind: str) -> list:
    return [t for t in fig.data if t.meta and t.meta["curve"] == curve and t.meta["kind"] == kind]


def test_schedule_law_fit_predicts_held_out_and_typed_schedules(app, one_torch_thread):
    lrs = {"cosine": syn_lr("cosine", min_ratio=0.1), "constant": syn_lr("constant"),
           "wsd": syn_lr("wsd", decay_fraction=0.2, min_ratio=0.1)}
    app.upload(curves_csv(lrs), "syn.csv")
    assert list(app.curves) == ["cosine", "constant", "wsd"], app.message.object
    lr_wsd = app.curves["wsd"][2]  # per-step LR up to the last logged step, interpolated between logged steps
    assert len(lr_wsd) == 991 and np.allclose(lr_wsd[10:], lrs["wsd"][10:991], rtol=2e-2)
    # the paper's early-stopped two-stage procedure is close; the optimum recovers the generating law
    app.param.update(fit_on=["cosine", "constant"], curve_law="multi_power", fit_points=20, curve_method="paper")
    res = app.fit_curves(background=False)
    assert res is not None and res.r2 > 0.99, app.message.object
    app.curve_method = "optimum"
    res = app.fit_curves(background=False)
    assert res is not None, app.message.object
    assert len(res.y) == 40  # observed points thinned to 20 per training curve
    # a schedule nobody trained, typed in from the registry: longer than every training run
    app.typed_schedule = "cosine"
    app.set_typed_values(total_steps=1500, warmup_steps=50, min_ratio=0.1)
    label = app.add_typed()
    assert label in app.typed, app.message.object
    table = app.curve_table.value.set_index("curve")
    assert table.loc["wsd", "role"] == "held out" and table.loc[label, "role"] == "not trained"
    fig = app.figure() if app.mode == "curves" else app._curve_fig
    for name in ("cosine", "constant", "wsd"):
        (meas,), (pred,) = traces(fig, name, "measured"), traces(fig, name, "predicted")
        y, p = np.asarray(meas.y), np.asarray(pred.y)
        assert np.array_equal(meas.x, pred.x)
        # the table's metrics are those of the drawn curves (R² and relative errors computed here)
        r2 = 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)
        assert table.loc[name, "R²"] == pytest.approx(r2, rel=1e-9)
        assert table.loc[name, "worst rel. err"] == pytest.approx(np.max(np.abs(y - p) / y), rel=1e-9)
        assert r2 > 0.9999 and table.loc[name, "worst rel. err"] < 2e-3, (name, table.loc[name].to_dict())
    assert not traces(fig, label, "measured")
    (typed,) = traces(fig, label, "predicted")
    truth = mpl_truth(syn_lr("cosine", 1500, min_ratio=0.1), np.asarray(typed.x, np.int64))
    assert np.max(np.abs(np.asarray(typed.y) - truth) / truth) < 5e-3  # extrapolated to 1.5x the length
    params = dict(zip(app.curve_params.value["param"], app.curve_params.value["value"]))
    assert params["L0"] == pytest.approx(MPL_TRUE[0], rel=0.05)


def test_schedule_law_on_store_runs(store, one_torch_thread):
    """Runs that logged lr and train_loss (every 10 steps) as curves; the LR-annealing law (Tissue et al.
    2024) fitted on two of them predicts the held-out run generated from the same parameters."""
    from workbench.fit import FitData, get_law

    true = [2.5, 0.4, 0.5, 0.4]
    law = get_law("lr_annealing")
    for name, lr in {"cos": syn_lr("cosine", min_ratio=0.1), "const": syn_lr("constant"),
                     "wsd": syn_lr("wsd", min_ratio=0.1)}.items():
        rid = store.create_run(name, config={"lr": PEAK})
        steps = np.arange(0, T_SYN, 10)
        y = law.predict(true, FitData.from_curves([(name, steps[1:], np.ones(len(steps) - 1), lr)]).inputs)
        for s, v in zip(steps[1:], y):
            store.log(rid, int(s), {"lr": float(lr[s]), "train_loss": float(v)})
        store.log(rid, 0, {"lr": float(lr[0])})  # a step without a loss is skipped
        store.set_status(rid, "finished")
    app = LawFitter(store_path=str(store.path))
    assert set(app.param.curve_runs.objects) == {"cos", "const", "wsd"}
    app.load_store_curves()
    app.param.update(fit_on=["cos", "const"], curve_law="lr_annealing")
    res = app.fit_curves(background=False)
    assert res is not None, app.message.object
    assert res.params["L0"] == pytest.approx(true[0], rel=0.05)  # 1000-step curves pin L0 down only roughly
    t = app.curve_table.value.set_index("curve")
    assert t.loc["wsd", "role"] == "held out" and t.loc["wsd", "worst rel. err"] < 1e-3
    assert (t["R²"] > 0.9999).all()


def test_schedule_law_background_fit_reports_status(app):
    app.upload(curves_csv({"a": syn_lr("constant", 300), "b": syn_lr("cosine", 300, min_ratio=0.1)}), "s.csv")
    app.param.update(curve_law="lr_annealing", fit_on=["a", "b"])
    assert app.fit_curves() is None  # started in a thread: the page is not blocked
    app._curve_thread.join(120)
    assert app.curve_result is not None and "Fitted lr_annealing" in app.curve_status.object
    assert not app.curve_fit_btn.disabled


@pytest.mark.parametrize("csv_text, needle", [
    ("step,loss,curve\n10,3.0,a\n20,2.9,a\n", "missing ['lr']"),
    ("step,lr,loss\n10,0.001,3.0\n20,0.0,2.9\n30,0.001,2.8\n", "lr: curve"),
    ("step,lr,loss\n10,0.001,-1\n20,0.001,2.9\n", "loss: curve"),
    ("step,lr,loss,curve\n10,0.001,3.0,a\n20,0.001,2.9,b\n", "at least 2 logged steps"),
    ("step,lr,loss\n1.5,0.001,3.0\n2.5,0.001,2.9\n", "whole optimizer steps"),
])
def test_malformed_curves_are_messages(app, csv_text, needle):
    assert app.load_curve_csv(csv_text.encode(), "bad.csv") is None
    assert app.message.visible and app.message.alert_type == "danger"
    assert needle in app.message.object and not app.curves


def test_curve_fit_input_errors_are_messages(app):
    assert app.fit_curves(background=False) is None and "load loss curves first" in app.message.object
    app.load_curve_csv(curves_csv({"a": syn_lr("constant", 300)}), "one.csv")
    app.fit_on = []
    assert app.fit_curves(background=False) is None and "fit_on" in app.message.object
    app.param.update(fit_on=["a"], skip_frac=0.9, fit_points=5, curve_law="multi_power")
    assert app.fit_curves(background=False) is None and "fit_points" in app.message.object
    app.typed_schedule = "piecewise_constant"  # LR 0 from step 200: the laws take powers of the LR
    app.set_typed_values(total_steps=500, boundaries=[200], values=[1.0, 0.0])
    assert app.add_typed() is None and "must stay > 0" in app.message.object
    app.set_typed_values(total_steps=0)
    assert app.add_typed() is None and app.message.alert_type == "danger"
    with pytest.raises(ValueError, match="not a parameter"):
        app.set_typed_values(nope=1)
