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


# ------------------------------------------------------------------ guardrails (issue 17 item 3, issue 15 item 4)
CHIN = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}  # Hoffmann et al. 2022's form


def chin_truth(N, D):
    return CHIN["E"] + CHIN["A"] / np.asarray(N) ** CHIN["alpha"] + CHIN["B"] / np.asarray(D) ** CHIN["beta"]


def test_two_input_law_is_predicted_vs_observed_and_iso_n_over_compute(app, one_torch_thread):
    N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5)))
    rows = ["params,tokens,loss"] + [f"{float(n)!r},{float(d)!r},{float(v)!r}" for n, d, v in
                                     zip(N, D, chin_truth(N, D))]
    app.source.upload(("\n".join(rows) + "\n").encode(), "nd.csv")
    app.source.mapping = "N=params,D=tokens,L=loss"
    app.param.update(laws=["chinchilla"], holdout=0.2)
    res = app.fit()
    assert res is not None, app.message.object
    fig = app.figure()
    names = [t.name for t in fig.data]
    assert "chinchilla" not in names  # no line through points sorted by one input
    (diag,) = [t for t in fig.data if t.name == "y = x"]
    assert np.allclose(diag.x, diag.y)
    fitted = next(t for t in fig.data if t.name == "chinchilla (fitted)")
    held = next(t for t in fig.data if t.name == "chinchilla (held out)")
    assert len(fitted.x) + len(held.x) == 25 and len(held.x) == 5
    assert np.allclose(fitted.y, fitted.x, rtol=1e-4) and np.allclose(held.y, held.x, rtol=1e-3)  # true law
    iso = [t for t in fig.data if t.meta and "N" in t.meta]
    assert {round(np.log10(t.meta["N"]), 3) for t in iso} == {7.0, 7.5, 8.0, 8.5, 9.0}
    for t in iso:  # each line is the law along D at fixed N, drawn over compute C = 6ND
        C, L = np.asarray(t.x, float), np.asarray(t.y, float)
        ok = np.isfinite(L)
        assert np.allclose(L[ok], chin_truth(t.meta["N"], C[ok] / (6 * t.meta["N"])), rtol=1e-4)
    # the grid reaches 3x beyond the fitted D range each way: those parts are dotted, outside the domain
    assert any(not t.meta["inside"] and t.line.dash == "dot" for t in iso)
    assert not app.warnings.visible  # a true law on exact data: nothing to warn about
    assert "[[warnings]]" not in res["chinchilla"].report()


def test_low_r2_warns_in_the_page_and_the_report(app):
    rng = np.random.default_rng(1)
    x = np.logspace(1, 5, 40)
    rows = ["size,shuffled,loss"] + [f"{float(a)!r},{float(b)!r},{float(E + A * a ** -ALPHA)!r}"
                                     for a, b in zip(x, rng.permutation(x))]
    app.source.upload(("\n".join(rows) + "\n").encode(), "wrong.csv")
    app.source.mapping = "x=shuffled,L=loss"  # the wrong column: the law cannot describe it
    app.param.update(laws=["power_law"], holdout=0.0)
    res = app.fit()
    assert res is not None, app.message.object
    r2 = res["power_law"].r2
    assert r2 < 0.9
    assert app.warnings.visible and "below 0.9" in app.warnings.object and "power_law" in app.warnings.object
    report = res["power_law"].report()
    assert "[[warnings]]" in report and f"R² {r2:.3f} is below 0.9" in report
    app.source.mapping = "x=size,L=loss"  # the right column: the warning goes
    app.fit()
    assert not app.warnings.visible, app.warnings.object


def test_extrapolation_beyond_the_fitted_domain_is_shaded_with_the_reason(app):
    app.source.upload(power_csv(), "good.csv")
    app.source.confirm_mapping()
    app.param.update(laws=["power_law"], holdout=0.2, target_scale=1e7)
    res = app.fit()
    assert res is not None, app.message.object
    fitted_max = float(np.max(res["power_law"].x["x"]))  # the held-out 20 % (largest x) are outside
    fig = app.figure()
    (rect,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert rect.x0 > fitted_max and rect.x1 == pytest.approx(1e7)
    (note,) = [a for a in fig.layout.annotations if "beyond the fitted domain" in a.text]
    assert "outside the fitted range" in note.text
    assert "beyond the fitted domain** (far" in app.extra.object  # the extrapolated value says so too


def test_rows_of_several_tasks_warn(app, store):
    """A sweep whose runs are of two tasks (or a table with a task column) fits with a warning."""
    sid = store.create_sweep("mixed", {})
    for i, wd in enumerate((0.1, 0.3, 1.0, 3.0, 10.0)):
        rid = store.create_run(f"wd{wd}", task=("lm", "grokking")[i % 2], config={"weight_decay": wd}, sweep=sid)
        store.log(rid, 0, {"test_loss": 2.0 + 0.5 * wd ** -0.5})
        store.set_status(rid, "finished")
    app = LawFitter(store_path=str(store.path))
    app.source.load_sweep(sid)
    app.source.mapping = "x=cfg.weight_decay,L=final.test_loss"
    app.param.update(laws=["power_law"], holdout=0.0)
    res = app.fit()
    assert res is not None, app.message.object
    assert app.warnings.visible and "the data mix tasks (grokking, lm)" in app.warnings.object
    assert "the data mix tasks (grokking, lm)" in res["power_law"].report()
    x = np.logspace(1, 3, 6)
    rows = ["size,loss,task"] + [f"{a},{E + A * a ** -ALPHA},{t}" for a, t in zip(x, "aabbab")]
    app.source.upload(("\n".join(rows) + "\n").encode(), "tasks.csv")
    app.source.confirm_mapping()
    app.laws = ["power_law"]
    assert app.fit() is not None and "the data mix tasks (a, b)" in app.warnings.object


def data_constrained_csv() -> bytes:
    """Points of the data-constrained law (Muennighoff et al. 2023, eq. (5)) with known parameters: three
    sizes N, two unique-token budgets U, 1 to 40 epochs over them (D = epochs x U)."""
    from workbench.fit import get_law

    law = get_law("data_constrained")
    theta = law.unreport({"A": 400.0, "B": 2000.0, "E": 1.7, "alpha": 0.34, "beta": 0.28, "r_star": 15.0})
    n, u, ep = (g.ravel() for g in np.meshgrid([1e8, 3e8, 1e9], [1e9, 4e9], [1, 2, 4, 8, 16, 40]))
    y = law.predict(np.asarray(theta), {"N": n, "D": u * ep, "U": u})
    rows = ["params,tokens,unique_tokens,loss"] + [f"{a},{b},{c},{d}" for a, b, c, d in zip(n, u * ep, u, y)]
    return ("\n".join(rows) + "\n").encode()


def test_a_law_that_needs_unique_tokens_prompts_for_their_column(app):
    from workbench.apps.components.lawfit_mapping import NOT_MAPPED

    prompt = app.unique
    app.source.upload(data_constrained_csv(), "repeats.csv")
    assert not prompt.select.visible and not prompt.note.visible  # power law: no U to ask for
    app.laws = ["data_constrained"]
    assert prompt.select.visible and prompt.select.value == NOT_MAPPED
    assert "unique_tokens" in prompt.select.options
    assert prompt.note.visible and "needs the unique tokens **U**" in prompt.note.object
    # choosing the column maps it, and confirms nothing else of the uploaded file's proposal
    prompt.select.value = "unique_tokens"
    assert "U=unique_tokens" in app.source.mapping and not app.source.mapping_confirmed
    assert app.source.confirm_btn.visible
    app.source.mapping = "N=params,D=tokens,L=loss"  # typed without U: the prompt says so again, fit refuses
    assert prompt.select.value == NOT_MAPPED and prompt.note.visible
    assert app.fit() is None and "map ['U']" in app.message.object
    app.source.mapping = "N=params,D=tokens,U=nope,L=loss"  # typed, a column the data lacks
    assert prompt.note.visible and "'nope' is not a column of the data" in prompt.note.object
    app.source.mapping = "N=params,D=tokens,U=unique_tokens,L=loss"  # typed: the choice follows
    assert prompt.select.value == "unique_tokens" and not prompt.note.visible
    app.holdout = 0.0
    res = app.fit()
    assert res is not None, app.message.object
    assert res["data_constrained"].r2 > 0.999
    # a derived column is a choice too; and a law without U hides the prompt
    app.derived = "`unique (B)` = unique_tokens / 1e9"
    assert "unique (B)" in prompt.select.options
    app.laws = ["chinchilla"]
    assert not prompt.select.visible and not prompt.note.visible
