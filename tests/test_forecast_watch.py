"""Runs against their forecast: the learning-curve forecast from a run's own prefix and the task's
schedule-aware law give a 95 % band ahead of the curve; rows that jump out of the band for k consecutive
logs flag the run ("above forecast since step N"); a run inside its band is not flagged."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.fit import FitData, FitResult, get_law
from workbench.forecast_watch import (
    Flag,
    ForecastWatch,
    off_band,
    prefix_length,
    running_flags,
    save_task_law,
)
from workbench.schedules import mpl_schedule
from workbench.store import RunStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DATA = Path(__file__).resolve().parents[1] / "data" / "mpl-loss-curves" / "csv_25"
REF25 = [3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257]


def test_off_band_flags_only_a_trailing_streak_of_k():
    s = np.arange(10, 110, 10)
    lo, hi = np.zeros(10), np.ones(10)
    v = np.array([.5, .5, 2, .5, 2, 2, 2, .5, 2, 2])
    assert off_band(s, v, lo, hi, 3) is None                    # back inside, then only 2 above
    assert off_band(s, v, lo, hi, 2) == Flag("above", 90, 2)
    v2 = np.array([.5] * 6 + [-1, -1, -1, -1])
    f = off_band(s, v2, lo, hi, 3)
    assert f == Flag("below", 70, 4) and f.text == "below forecast since step 70"
    assert Flag("above", 1200, 3).text == "above forecast since step 1 200"
    assert off_band(s, np.r_[[.5] * 7, 2, -1, 2], lo, hi, 2) is None  # sides must agree


def test_prefix_grid_leaves_a_quarter_out_of_sample_and_moves_rarely():
    ps = [prefix_length(n) for n in range(1, 2001)]
    assert all(p == 0 or 12 <= p <= 0.75 * n for n, p in zip(range(1, 2001), ps))
    assert len(set(ps)) <= 16                                    # a refit only when p moves up its sqrt-2 grid


def _log(st, rid, steps, values, name="train_loss"):
    with st.writer(rid) as w:
        for s, v in zip(steps, values):
            w.log(int(s), {name: float(v)})


def test_learning_curve_forecast_flags_a_jump_above_and_below(tmp_path, capsys):
    st = RunStore(tmp_path / "r.db")
    rng = np.random.default_rng(0)
    steps = np.arange(10, 810, 10)
    rid, rid2 = (st.create_run(n, task="lm", config={"steps": 1600, "lr": 1e-3}) for n in ("a", "b"))
    noisy = 2 + 3 * steps ** -0.5 + rng.normal(0, 0.01, len(steps))
    for r in (rid, rid2):
        _log(st, r, steps, noisy)
    w = ForecastWatch()
    fc = w.watch(st, rid)
    assert fc.source == "learning curve" and fc.flag is None and fc.anchor == steps[prefix_length(80) - 1]
    assert fc.steps[0] == fc.anchor and fc.steps[-1] == 1600 and np.all(fc.lo < fc.mean) and np.all(fc.mean < fc.hi)
    truth = 2 + 3 * fc.steps ** -0.5
    assert np.mean((fc.lo <= truth) & (truth <= fc.hi)) > 0.9   # the band holds the noise-free curve
    jump = np.arange(810, 860, 10)
    _log(st, rid, jump, 2 + 3 * jump ** -0.5 + 0.3)
    _log(st, rid2, jump, 2 + 3 * jump ** -0.5 - 0.3)
    fits = len(w._fits)
    assert w.watch(st, rid).flag == Flag("above", 810, 5)
    assert running_flags(st, watch=w) == {rid: "above forecast since step 810", rid2: "below forecast since step 810"}
    assert len(w._fits) == fits + 1                              # cached: only run b's prefix fitted anew
    from workbench.cli import main
    from workbench.runs_table import format_table, runs_table

    assert main(["runs", "list", "--store", str(st.path)]) == 0          # `workbench runs list` shows the flag
    out = capsys.readouterr().out.splitlines()
    assert "forecast" in out[0].split()
    assert any(rid in line and "above forecast since step 810" in line for line in out)
    assert any(rid2 in line and "below forecast since step 810" in line for line in out)
    assert running_flags(st, watch=w, budget_s=0) == {rid2: "below forecast since step 810"}  # newest first
    st.set_status(rid2, "finished")
    flags = running_flags(st, watch=w)
    assert flags == {rid: "above forecast since step 810"}
    t = runs_table(st, flags=flags)
    assert list(t.columns[:6]) == ["id", "name", "task", "sweep", "status", "forecast"]
    assert t.set_index("id")["forecast"].to_dict() == {rid: "above forecast since step 810", rid2: ""}
    assert "forecast" not in format_table(runs_table(st, flags={})).splitlines()[0]  # no flag: no column
    from workbench.apps.runs import RunsPage

    page = RunsPage(store_path=str(st.path))         # the runs page: flags computed in the background
    page.forecast_task.wait(120)
    shown = page.table.value.set_index("id")["forecast"]
    assert shown[rid] == "above forecast since step 810" and shown[rid2] == ""
    few = st.create_run("c", task="lm")
    _log(st, few, [1, 2, 3], [3, 2.5, 2.2])
    assert "needs 16" in w.watch(st, few).note and not w.watch(st, few).ok
    with pytest.raises(WorkbenchError, match="k: must be an integer >= 1"):
        ForecastWatch(k=0)


def test_task_law_forecast_is_used_first_and_flags_a_jump(tmp_path):
    curves = []
    for stem in ("cosine_24000", "constant_24000"):
        df = pd.read_csv(DATA / f"{stem}.csv")
        df = df[df["step"] != 24000]
        s, peak = mpl_schedule(stem)
        curves.append((stem, df["step"].to_numpy(), df["loss"].to_numpy(),
                       peak * np.asarray(s(np.arange(int(df["step"].max()) + 1)), float)))
    data = FitData.from_curves(curves, step_offset=1)
    boot = np.asarray(REF25) * (1 + 0.003 * np.random.default_rng(0).standard_normal((32, 7)))
    law = FitResult.build(get_law("multi_power"), np.asarray(REF25), data, objective=0.0, loss="huber", delta=1e-3,
                          boot=boot, level=0.95, n_starts=1, seconds=0.0)
    st = RunStore(tmp_path / "r.db")
    path = save_task_law(st, law, "lm", "train_loss")
    assert os.stat(path).st_mode & 0o077 == 0
    s, peak = mpl_schedule("wsd_20000_24000")
    rid = st.create_run("wsd", task="lm", config={"steps": 24000, "lr": peak, "schedule": s.to_dict()})
    steps = np.arange(200, 12001, 200)
    X = {"step": steps, "curve": np.zeros(len(steps), int), "lrs": [peak * s(np.arange(24000))]}
    _log(st, rid, steps, get_law("multi_power").predict(np.asarray(REF25), X))   # on the law's curve
    w = ForecastWatch()
    fc = w.watch(st, rid)
    assert fc.source == "law:multi_power" and fc.flag is None and fc.steps[-1] == 24000
    # the band is the bootstrap band of the saved law, read back from its file
    final = X | {"step": np.array([24000]), "curve": np.zeros(1, int)}
    P = np.array([get_law("multi_power").predict(b, final)[0] for b in boot])
    assert fc.lo[-1] == pytest.approx(np.percentile(P, 2.5), rel=1e-6)
    assert fc.hi[-1] == pytest.approx(np.percentile(P, 97.5), rel=1e-6)
    _log(st, rid, [12200, 12400, 12600], [4.0, 4.0, 4.0])
    assert w.watch(st, rid).flag == Flag("above", 12200, 3)
    # the same through the command line: `workbench task-law FIT.json --task T`; bad files and laws exit 2
    from workbench.cli import main

    fit_json = tmp_path / "fit.json"
    law.to_json(str(fit_json))
    assert main(["task-law", str(fit_json), "--task", "digits", "--store", str(st.path)]) == 0
    assert st.artifacts(None, kind="task_law")["meta"].iloc[-1] == {"task": "digits", "metric": "train_loss",
                                                                    "law": "multi_power"}
    (tmp_path / "bad.json").write_text("{}")
    assert main(["task-law", str(tmp_path / "bad.json"), "--task", "x", "--store", str(st.path)]) == 2
    assert main(["task-law", str(tmp_path / "missing.json"), "--task", "x", "--store", str(st.path)]) == 2
