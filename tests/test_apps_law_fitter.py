"""Law fitter at the param level (no browser): CSV upload (malformed files give a message), column
mapping and derived columns, fitting several laws with workbench.fit (parameters recovered from
synthetic data with known values), ranking, extrapolation, crossover, and the figure."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("workbench.fit")

from workbench.apps.law_fitter import CSVError, LawFitter, derive, read_csv  # noqa: E402

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


def test_fit_recovers_power_law_and_ranks(app):
    app.upload(power_csv(), "good.csv")
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


def test_schedule_law_is_refused_with_a_reason(app):
    app.upload(power_csv(), "good.csv")
    app.param.update(mapping="x=size,L=loss", laws=["multi_power"])
    assert app.fit() is None and "loss curves" in app.message.object


def test_no_data_is_a_message(app):
    app.fit()
    assert "load a CSV" in app.message.object


@pytest.mark.shared_data
def test_chinchilla_preset_from_shared_data(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SHARED_DATA", str(shared_data))
    app = LawFitter(store_path=str(tmp_path / "runs.db"))
    key = next(k for k in app.param.dataset.objects if k.endswith("svg_extracted_data.csv"))
    app.dataset = key
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
