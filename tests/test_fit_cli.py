"""`workbench fit` (workbench.fit.cli.cli_main): parameter recovery from a CSV, JSON round trip, figure,
and one-line errors with exit status 2 for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.fit import FitResult
from workbench.fit.cli import cli_main

TRUE = {"E": 1.7, "A": 5.0, "alpha": 0.4}


@pytest.fixture
def power_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = np.geomspace(1e2, 1e8, 30)
    y = (TRUE["E"] + TRUE["A"] * x ** -TRUE["alpha"]) * np.exp(rng.normal(0, 1e-4, x.size))
    # two junk columns and a few outliers at the top, to be dropped with --drop-top
    df = pd.DataFrame({"params": x, "loss": y, "name": [f"r{i}" for i in range(x.size)]})
    df = pd.concat([df, pd.DataFrame({"params": [1e3, 1e4], "loss": [50.0, 60.0], "name": ["bad1", "bad2"]})])
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    return path


def test_fit_recovers_power_law(power_csv, tmp_path, capsys):
    out = tmp_path / "fit.json"
    fig = tmp_path / "fig.html"
    rc = cli_main(["power_law", "--csv", str(power_csv), "--map", "x=params,L=loss", "--drop-top", "2",
                   "--bootstrap", "10", "--out", str(out), "--figure", str(fig)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "[[fit]] power_law" in printed and "alpha" in printed and "(95%)" in printed
    r = FitResult.from_json(out.read_text())
    assert r.n == 30
    for k, v in TRUE.items():
        assert abs(r.params[k] - v) / v < 0.01, (k, r.params[k])
    assert set(r.ci) == set(TRUE)
    assert fig.stat().st_size > 10_000 and b"plotly" in fig.read_bytes()[:200_000].lower()


def test_fit_holdout_and_starts(power_csv, tmp_path, capsys):
    out = tmp_path / "fit.json"
    rc = cli_main(["power_law", "--csv", str(power_csv), "--map", "x=params,L=loss", "--drop-top", "2",
                   "--holdout", "0.2", "--starts", "12", "--out", str(out)])
    assert rc == 0
    assert "[[held out]]" in capsys.readouterr().out
    r = FitResult.from_json(out.read_text())
    assert r.n == 24 and r.n_starts == 12 and r.heldout["mean_rel"] < 1e-3


def test_fit_chinchilla_two_inputs(tmp_path):
    p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e10, 6), np.geomspace(1e9, 1e12, 6)))
    L = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    csv = tmp_path / "c.csv"
    pd.DataFrame({"params": N, "tokens": D, "loss": L}).to_csv(csv, index=False)
    out = tmp_path / "c.json"
    rc = cli_main(["chinchilla", "--csv", str(csv), "--map", "N=params,D=tokens,L=loss", "--starts", "150",
                   "--out", str(out)])
    assert rc == 0
    got = FitResult.from_json(out.read_text()).params
    for k, v in p.items():
        assert abs(got[k] - v) / v < 0.02, (k, got[k])


def test_list(capsys):
    assert cli_main(["--list"]) == 0
    text = capsys.readouterr().out
    assert "power_law" in text and "E + A * x^(-alpha)" in text and "chinchilla" in text


CSV = ["--csv", "{csv}"]
MAP = ["--map", "x=params,L=loss"]


@pytest.mark.parametrize("args, needle", [
    (["nope", *CSV, *MAP], "unknown name 'nope'"),
    (["power_law", *CSV, "--map", "x=size,L=loss"], "column 'size'"),
    (["power_law", *CSV, "--map", "xparams"], "NAME=COLUMN"),
    (["power_law", *CSV, "--map", "q=params,L=loss"], "'q' is not an input"),
    (["power_law", *CSV, "--map", "L=loss"], "needs input 'x'"),
    (["power_law", *CSV, *MAP, "--drop-top", "99"], "drop-top"),
    (["power_law", *CSV, *MAP, "--holdout", "1.5"], "holdout"),
    (["power_law", *CSV, *MAP, "--bootstrap", "-1"], "bootstrap"),
    (["power_law", *CSV, *MAP, "--loss", "l1"], "loss"),
    (["power_law", *CSV, *MAP, "--figure", "{tmp}/f.txt"], "must end in"),
    (["power_law", *CSV, *MAP, "--bogus"], "unrecognized arguments: --bogus"),
    (["power_law", *CSV, *MAP, "--starts", "many"], "--starts"),
    (["power_law", "--csv", "{tmp}/missing.csv", *MAP], "no such file"),
    (["power_law", *CSV, *MAP, "--sweep", "s"], "not allowed with"),
    (["power_law", "--sweep", "s", "--store", "{tmp}/none.db", *MAP], "no such file"),
    (["power_law", *MAP], "--csv FILE or --sweep"),
    ([], "give a law name"),
])
def test_bad_input_exit_2(power_csv, tmp_path, capsys, args, needle):
    args = [a.format(csv=power_csv, tmp=tmp_path) for a in args]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench fit: error:") and needle in err, err
    assert "\n" not in err and "Traceback" not in err


def test_nan_data_exit_2(tmp_path, capsys):
    csv = tmp_path / "nan.csv"
    pd.DataFrame({"n": [1.0, 2.0, 3.0, 4.0, 5.0], "loss": [3.0, np.nan, 2.5, 2.4, "oops"]}).to_csv(csv, index=False)
    assert cli_main(["power_law", "--csv", str(csv), "--map", "x=n,L=loss"]) == 2
    err = capsys.readouterr().err
    assert "NaN" in err and err.count("\n") == 1


def test_sweep_from_store(tmp_path, capsys):
    from workbench.store import RunStore

    db = tmp_path / "s.db"
    store = RunStore(db)
    for wd in (0.05, 0.1, 0.2, 0.4, 0.8, 1.6):
        rid = store.create_run(name=f"wd{wd}", task="grokking", config={"weight_decay": wd}, sweep="wd")
        store.log(rid, step=10, metrics={"steps_to_grok": 1e6})
        store.log(rid, step=20, metrics={"steps_to_grok": 300.0 * wd ** -1.5})
        store.set_status(rid, "finished")
    out = tmp_path / "g.json"
    rc = cli_main(["grok_power", "--sweep", "wd", "--store", str(db), "--map", "x=cfg.weight_decay,t=steps_to_grok",
                   "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    p = FitResult.from_json(out.read_text()).params
    assert abs(p["alpha"] - 1.5) < 1e-3 and abs(p["A"] - 300) / 300 < 1e-3
    assert cli_main(["grok_power", "--sweep", "nope", "--store", str(db), "--map", "x=cfg.weight_decay,t=s"]) == 2
    assert "no runs" in capsys.readouterr().err


def test_main_command_delegates(power_csv, capsys):
    from workbench.cli import main

    assert main(["fit", "power_law", "--csv", str(power_csv), *MAP, "--drop-top", "2", "--starts", "8"]) == 0
    assert "[[parameters]]" in capsys.readouterr().out
    assert main(["fit", "power_law", "--csv", str(power_csv), "--map", "x=nope"]) == 2


def test_csv_read_within_the_size_limits(power_csv, tmp_path, capsys, monkeypatch):
    """The CLI reads its CSVs (--csv and --curves) through workbench.fit.data.read_csv: over MAX_CSV_BYTES
    or ragged, a one-line error naming the limit or the line, exit 2."""
    import workbench.fit.data as fd

    monkeypatch.setattr(fd, "MAX_CSV_BYTES", power_csv.stat().st_size - 1)
    assert cli_main(["power_law", "--csv", str(power_csv), "--map", "x=params,L=loss"]) == 2
    err = capsys.readouterr().err
    assert "MAX_CSV_BYTES" in err and err.count("\n") == 1, err
    curves = tmp_path / "c.csv"
    curves.write_text("step,lr,loss\n" + "".join(f"{s},0.001,{3 - s / 1000}\n" for s in range(1, 400)))
    assert cli_main(["multi_power", "--curves", str(curves)]) == 2
    err = capsys.readouterr().err
    assert "MAX_CSV_BYTES" in err and err.count("\n") == 1, err
    monkeypatch.undo()
    ragged = tmp_path / "r.csv"
    ragged.write_text("params,loss\n1,2\n3,4,5\n")
    assert cli_main(["power_law", "--csv", str(ragged), "--map", "x=params,L=loss"]) == 2
    err = capsys.readouterr().err
    assert "line 3 has 3 fields" in err and err.count("\n") == 1, err
