"""Scaling-law fitter at the param level (no browser): CSV upload (malformed files give a message), column
mapping and derived columns, fitting several laws with workbench.fit (parameters recovered from
synthetic data with known values), ranking, extrapolation, crossover, and the figure."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.apps.law_fitter import LawFitter
from workbench.fit.data import CSVError, derive, read_csv

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
    app.source.upload(b"size,loss\n1,2,3,4\n5,6\n", "bad.csv")
    assert app.message.visible and app.message.alert_type == "danger"
    assert "line 2 has 4 fields" in app.message.object and app.df.empty
    app.source.upload(b"\xff\xfe\x00garbage", "bin.csv")
    assert "CSV" in app.message.object
    app.source.upload(b"only\n1\n2\n", "one.csv")
    assert "two columns" in app.message.object
    with pytest.raises(CSVError):
        read_csv(b"")


def test_uploaded_mapping_is_shown_and_confirmed_never_guessed(app):
    app.source.upload(power_csv(), "good.csv")
    assert "Proposed mapping: x=size,L=loss" in app.message.object and not app.source.mapping_confirmed
    assert app.source.confirm_btn.visible
    assert app.fit() is None and "confirm the uploaded file's column mapping" in app.message.object
    app.source.confirm_mapping()
    assert app.source.mapping_confirmed and not app.source.confirm_btn.visible
    assert app.fit() is not None, app.message.object
    app.source.upload(power_csv(), "again.csv")  # a new file: a new proposal to confirm
    assert not app.source.mapping_confirmed
    app.source.mapping = "x=tokens_m,L=loss"  # typing a mapping is the user's choice
    assert app.source.mapping_confirmed and app.fit() is not None, app.message.object


def test_fit_recovers_power_law_and_ranks(app):
    app.source.upload(power_csv(), "good.csv")
    app.source.confirm_mapping()
    assert len(app.df) == 40
    app.source.mapping = "x=size,L=loss"
    app.param.update(x_var="x", laws=["power_law", "grok_power"], holdout=0.2, target_scale=1e7)
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
    app.source.upload(power_csv(), "good.csv")
    app.source.mapping = "x=no_such,L=loss"
    app.laws = ["power_law"]
    assert app.fit() is None and "no_such" in app.message.object
    app.source.mapping = "x=size_k,L=loss"
    app.param.update(derived="size_k = size / 1000", x_var="x")
    res = app.fit()
    assert res is not None, app.message.object
    # L = E + A (1000 x')^-alpha: A' = A * 1000^-alpha
    assert res["power_law"].params["A"] == pytest.approx(A * 1000 ** -ALPHA, rel=1e-3)
    app.derived = "nonsense"
    assert app.fit() is None and "derive" in app.message.object
    df = derive(app.df, "D = `tokens_m` * 2")
    assert np.allclose(df["D"], app.df["tokens_m"] * 2)


def test_schedule_laws_are_left_to_the_curve_fitter(app):
    from workbench.fit import get_law

    offered = app.param.laws.objects
    assert "power_law" in offered and "chinchilla" in offered and "data_constrained" in offered
    assert not [n for n in offered if "lrs" in get_law(n).inputs]  # multi_power, lr_annealing: /curves


def test_no_data_is_a_message(app):
    app.fit()
    assert "load a CSV" in app.message.object


def test_opens_on_the_shipped_chinchilla_points(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SHARED_DATA", str(tmp_path / "none"))  # a clone without ../shared
    app = LawFitter(store_path=str(tmp_path / "runs.db"))
    assert app.source.dataset == "data/chinchilla-epoch/svg_extracted_data.csv"
    assert "data/gadre-overtraining/models_flat.csv" in app.source.param.dataset.objects
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
    app.source.load_sweep(sid)
    assert len(app.df) == 4 and "final.test_loss" in app.df.columns
    app.source.mapping = "x=cfg.weight_decay,L=final.test_loss"
    app.param.update(laws=["power_law"], holdout=0.0)
    res = app.fit()
    assert res is not None, app.message.object
    assert res["power_law"].params["E"] == pytest.approx(2.0, rel=1e-3)
