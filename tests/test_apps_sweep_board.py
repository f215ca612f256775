"""Sweep board at the param level (no browser): YAML validation through SweepSpec (errors as
messages), the form -> YAML round trip, results / progress tables from the store, the
metric-vs-hyperparameter and parallel-coordinates figures, the AlgoPerf profile, and a real
(tiny) sweep launched from the page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from workbench.apps.sweep_board import SweepBoard
from workbench.figures.sweeps import parallel_coordinates_figure
from workbench.sweeps.progress import progress_table
from workbench.sweeps.results import results_table
from workbench.sweeps.spec import SweepSpec  # noqa: E402

LRS = (1e-3, 3e-3, 1e-2)
WIDTHS = (64, 128)


def final_loss(lr: float, width: int, seed: int) -> float:
    """A synthetic LR-sensitivity bowl whose optimum moves with width (seed adds noise)."""
    best = -2.5 - 0.5 * (width == 128)
    return (np.log10(lr) - best) ** 2 + 100 / width + 0.01 * seed


@pytest.fixture
def filled(store):
    """A store with one finished sweep: schedule x lr x width x 2 seeds, losses from `final_loss`."""
    spec = {"name": "lr-sweep", "strategy": "grid", "base": {"task": "modular", "steps": 100},
            "axes": {"schedule": ["cosine", "linear"], "lr": list(LRS)}, "seeds": [0, 1],
            "target": {"metric": "test_acc", "value": 0.9, "mode": "max"}}
    sid = store.create_sweep("lr-sweep", {"spec": spec, "executor": "batched"})
    for sch in ("cosine", "linear"):
        for lr in LRS:
            for width in WIDTHS:
                for seed in (0, 1):
                    cfg = {"task": "modular", "schedule": {"name": sch, "total_steps": 100}, "lr": lr,
                           "model_params": {"width": width}, "seed": seed, "steps": 100}
                    rid = store.create_run(f"{sch}-{lr}-{width}-{seed}", task="modular", config=cfg, sweep=sid)
                    # cosine reaches the accuracy target at step 60, linear at step 80 (lr > 1e-3 only)
                    hit = 60 if sch == "cosine" else 80
                    for step in range(0, 101, 20):
                        acc = 1.0 if (step >= hit and lr > 1e-3) else 0.5
                        store.log(rid, step, {"test_loss": final_loss(lr, width, seed) + (100 - step) / 100,
                                              "test_acc": acc})
                    store.set_status(rid, "finished")
    return store, sid


def test_results_table_has_varied_params_and_final_metrics(filled):
    store, sid = filled
    t = results_table(store, sid)
    assert len(t) == 24
    assert {"cfg.schedule", "cfg.lr", "cfg.seed", "cfg.model_params.width", "final.test_loss"} <= set(t.columns)
    assert "cfg.task" not in t.columns and "cfg.steps" not in t.columns  # constant fields are left out
    for _, r in t.iterrows():
        assert r["final.test_loss"] == pytest.approx(final_loss(r["cfg.lr"], r["cfg.model_params.width"], r["cfg.seed"]))
        assert r["best.test_loss"] == pytest.approx(r["final.test_loss"])  # losses decrease here


def test_board_defaults_and_metric_vs_lr_per_width(filled, tmp_path):
    store, sid = filled
    app = SweepBoard(store_path=str(store.path))
    assert app.sweep == sid
    assert (app.x_param, app.group_by, app.metric) == ("cfg.lr", "cfg.model_params.width", "final.test_loss")
    fig = app.figure()
    assert fig.layout.xaxis.type == "log"
    assert sorted(t.name for t in fig.data) == ["model_params.width=128", "model_params.width=64"]
    for tr in fig.data:
        width = int(tr.name.split("=")[1])
        for x, y in zip(tr.x, tr.y):  # mean over seeds and schedules
            assert y == pytest.approx(np.mean([final_loss(x, width, s) for s in (0, 1)]))
        # error bars span min..max over seeds
        assert np.allclose(np.asarray(tr.error_y.array) + np.asarray(tr.error_y.arrayminus), 0.01)
    app.group_by = "cfg.schedule"  # changing a widget changes the figure
    assert sorted(t.name for t in app.figure().data) == ["schedule=cosine", "schedule=linear"]
    app.log_y = True
    assert app.figure().layout.yaxis.type == "log"


def test_parallel_coordinates_axes(filled):
    store, sid = filled
    t = results_table(store, sid)
    fig = parallel_coordinates_figure(t, color="final.test_loss")
    dims = {d.label: d for d in fig.data[0].dimensions}
    assert "lr (log)" in dims and np.allclose(sorted(set(dims["lr (log)"].values)), np.log10(LRS))
    assert list(dims["schedule"].ticktext) == ["cosine", "linear"]
    assert "test_loss" in dims


def test_parallel_coordinates_are_readable_and_keep_brushes(filled):
    """One axis per varied hyperparameter plus the objective (not every metric), short labels, LR ticks
    in real values, and the sweep id as uirevision so a brush survives the board's refresh."""
    store, sid = filled
    t = results_table(store, sid)
    fig = parallel_coordinates_figure(t, color="final.test_loss", uirevision=sid)
    pc = fig.data[0]
    assert [d.label for d in pc.dimensions] == ["schedule", "lr (log)", "width", "test_loss"]
    lr = pc.dimensions[1]
    assert list(lr.ticktext) == ["0.001", "0.002", "0.005", "0.01"]
    assert np.allclose(np.power(10.0, lr.tickvals), [1e-3, 2e-3, 5e-3, 1e-2])
    assert pc.uirevision == sid and fig.layout.uirevision == sid
    pc.dimensions[1].constraintrange = [-2.6, -2.4]  # a brush (what a drag in the browser sets) is allowed
    assert len(fig.to_dict()["data"][0]["dimensions"]) == 4


def test_objective_from_the_spec_and_importance(store):
    """The spec's objective (train_loss here, not the default test_loss) chooses the plotted metric and
    the importance view, whose fANOVA ranks the LR (the bowl) above the schedule (a small offset)."""
    spec = {"name": "obj", "strategy": "grid", "base": {"task": "modular", "steps": 10},
            "axes": {"schedule": ["cosine", "linear"], "lr": list(LRS)}, "seeds": [0, 1],
            "objective": {"metric": "train_loss", "mode": "min"}}
    sid = store.create_sweep("obj", {"spec": spec})
    for sch in ("cosine", "linear"):
        for lr in (1e-4, *LRS, 3e-2):
            for seed in (0, 1):
                rid = store.create_run(f"{sch}-{lr}-{seed}", config={"schedule": sch, "lr": lr, "seed": seed},
                                       sweep=sid)
                loss = (np.log10(lr) + 2.5) ** 2 + 0.05 * (sch == "linear") + 0.001 * seed
                store.log(rid, 10, {"train_loss": loss, "test_loss": 1.0 - loss})
                store.set_status(rid, "finished")
    app = SweepBoard(store_path=str(store.path))
    assert app.sweep == sid and app.metric == "final.train_loss"
    assert app.importance.visible and "from the spec" in app.importance_md.object
    bars = app.importance.object.data[0]
    imp = dict(zip(bars.y, bars.x))
    assert set(imp) == {"lr", "schedule"} and imp["lr"] > 0.9 > imp["schedule"]
    app.metric = "final.test_loss"  # the user's choice is kept, the objective stays the spec's
    app.refresh_results()
    assert app.metric == "final.test_loss" and "train_loss" in app.importance_md.object


def test_results_table_updates_to_finished(store):
    """The periodic refresh re-reads the results when a member's status changes, so the last members
    show as finished once the sweep is done (it used to stop refreshing while they still read running)."""
    sid = store.create_sweep("live", {"spec": {"name": "live"}})
    ids = []
    for lr in LRS:
        rid = store.create_run(f"m{lr}", config={"lr": lr, "steps": 10}, sweep=sid)
        store.log(rid, 10, {"test_loss": lr})
        ids.append(rid)
    store.set_status(ids[0], "finished")
    app = SweepBoard(store_path=str(store.path))
    assert app.results.value["status"].tolist() == ["finished", "running", "running"]
    for rid in ids[1:]:
        store.set_status(rid, "finished")
    app._tick()
    assert app.results.value["status"].tolist() == ["finished"] * 3


def test_progress_and_algoperf_profile(filled):
    store, sid = filled
    df, summary = progress_table(store, sid)
    assert len(df) == 24 and (df["progress"] == 1.0).all() and summary["eta_s"] == 0.0
    app = SweepBoard(store_path=str(store.path))
    assert app.profile.visible
    # time to target: cosine 60 steps, linear 80 (one workload): ratio 4/3 -> score (4 - 4/3)/3 = 0.888...
    score = app.score.value["score"]
    assert score["cosine"] == pytest.approx(1.0) and score["linear"] == pytest.approx((4 - 80 / 60) / 3)


def test_progress_of_a_running_member(store):
    sid = store.create_sweep("live", {})
    rid = store.create_run("m0", config={"steps": 100}, sweep=sid)
    store.log(rid, 0, {"train_loss": 1.0}, wall=1000.0)
    store.log(rid, 50, {"train_loss": 0.5}, wall=1010.0)  # 5 steps/s
    df, summary = progress_table(store, sid)
    row = df.iloc[0]
    assert row["status"] == "running" and row["progress"] == pytest.approx(0.5)
    assert row["steps/s"] == pytest.approx(5.0)
    assert summary["counts"] == {"running": 1}


def test_progress_says_why_a_trial_was_pruned(store, one_torch_thread):
    """A pruned Bayesian sweep: the progress table gains a ``why`` column with the forecast decision for
    the pruned members (the same as ``sweep_pruning``) and nothing for the kept ones."""
    from workbench.sweeps import run_sweep, sweep_pruning

    spec = {"name": "bo-prune", "strategy": "bayes", "budget": {"trials": 4, "parallel": 2}, "seeds": [0],
            "base": {"task": "modular", "task_params": {"p": 11, "frac": 0.5}, "model": "mlp",
                     "model_params": {"hidden": [16]}, "steps": 60, "log_every": 2, "eval_every": 10,
                     "device": "cpu"},
            "axes": {"lr": {"log_uniform": [1e-5, 1e-1]}}, "objective": {"metric": "train_loss", "mode": "min"},
            "pruning": {"at_fraction": 0.5, "threshold": 0.05, "families": ["pow3", "ilog2"]}}
    sid = run_sweep(spec, "batched", store, progress=False)
    df, summary = progress_table(store, sid)
    dec = sweep_pruning(sid, store)
    assert dec["pruned"].any(), "sampler_seed 0 proposes hopeless small-LR trials in the second round"
    pruned = df["status"] == "pruned"
    assert summary["counts"]["pruned"] == int(pruned.sum()) == int(dec["pruned"].sum())
    assert df.loc[pruned, "why"].str.fullmatch(r"P\(beats [0-9.e+-]+\) = [0-9.e+-]+ at step \d+").all()
    assert (df.loc[~pruned, "why"] == "").all()


def test_yaml_validation_messages(tmp_path):
    app = SweepBoard(store_path=str(tmp_path / "runs.db"))
    assert app.sweep is None and "No sweeps" in app.progress_md.object
    spec = app.define.validate()
    assert spec == SweepSpec.from_yaml(app.define.yaml_text)
    assert "valid" in app.message.object and len(app.define.members_table.value) == spec.n_members()
    app.define.yaml_text = "name: x\nstrategy: foo\n"
    assert app.define.validate() is None
    assert app.message.alert_type == "danger" and "strategy" in app.message.object
    app.define.yaml_text = "name: x\naxes: {schedule: [no_such_schedule]}\n"
    app.define.validate()
    assert "no_such_schedule" in app.message.object
    app.define.yaml_text = "name: [unclosed\n"
    app.define.validate()
    assert "YAML" in app.message.object


def test_form_round_trip_and_bad_form(tmp_path):
    app = SweepBoard(store_path=str(tmp_path / "runs.db"))
    app.define.form_name, app.define.form_schedules, app.define.form_lrs, app.define.form_seeds, app.define.form_steps = (
        "f", ["cosine", "wsd"], "1e-3, 1e-2", "0, 1", 50)
    app.define.apply_form()
    spec = SweepSpec.from_yaml(app.define.yaml_text)
    assert spec.name == "f" and spec.n_members() == 2 * 2 * 2 and spec.base["steps"] == 50
    assert yaml.safe_load(app.define.yaml_text)["axes"]["lr"] == [1e-3, 1e-2]
    app.define.form_lrs = "fast"
    app.define.apply_form()
    assert app.message.alert_type == "danger" and "form_lrs" in app.message.object
    app.define.form_lrs, app.define.form_seeds = "-1", "0"
    app.define.apply_form()
    assert "form_lrs" in app.message.object


def test_launch_tiny_sweep(tmp_path):
    app = SweepBoard(store_path=str(tmp_path / "runs.db"))
    app.define.yaml_text = (
        "name: tiny\nbase: {task: modular, task_params: {p: 11, frac: 0.5}, model: mlp, steps: 20,"
        " log_every: 5, eval_every: 10}\naxes: {schedule: [cosine, linear], lr: [0.001, 0.01]}\nseeds: [0]\n")
    sid = app.launch(background=False)
    assert sid and app.sweep == sid
    runs = app.store.runs(sweep=sid)
    assert len(runs) == 4 and set(runs["status"]) == {"finished"}
    app.refresh_progress()
    assert "4 run(s) of 4 members" in app.progress_md.object
    t = app.data()
    assert isinstance(t, pd.DataFrame) and len(t) == 4 and "final.test_loss" in t.columns
    assert sorted(set(t["cfg.lr"])) == [0.001, 0.01]


def test_page_figure_is_bokeh_with_the_plotly_figures_points(filled):
    """The page draws the metric-vs-hyperparameter view with Bokeh (no plotly.js before first paint): the
    same means (over seeds and schedules) and min/max bars as the exported Plotly figure, checked against
    ``final_loss``; a categorical x (the schedule) gets a factor axis; no sweep draws an empty figure."""
    from bokeh.models import ColumnDataSource, FactorRange, LogScale

    from workbench.figures.sweeps_bokeh import metric_vs_param_bokeh

    store, sid = filled
    app = SweepBoard(store_path=str(store.path))
    fig = app.plot.object
    assert isinstance(fig.x_scale, LogScale) and not isinstance(fig.y_scale, LogScale)
    srcs = {s.name: s.data for s in fig.select({"type": ColumnDataSource}) if (s.name or "").startswith("wb-sweep|")}
    assert len(srcs) == 2
    for d in srcs.values():
        width = int(d["group"][0].split("=")[1])
        for x, y, lo, hi in zip(d["x"], d["y"], d["lo"], d["hi"]):
            losses = [final_loss(x, width, s) for s in (0, 1)]
            assert y == pytest.approx(np.mean(losses))
            assert (lo, hi) == (pytest.approx(min(losses)), pytest.approx(max(losses)))
    plotly_means = sorted(np.round(np.concatenate([tr.y for tr in app.figure().data]), 9))
    assert plotly_means == sorted(np.round(np.concatenate([d["y"] for d in srcs.values()]), 9))
    app.log_y = True
    assert isinstance(app.plot.object.y_scale, LogScale)
    cat = metric_vs_param_bokeh(app._table, "cfg.schedule", "final.test_loss", "cfg.model_params.width")
    assert isinstance(cat.x_range, FactorRange) and list(cat.x_range.factors) == ["cosine", "linear"]
    empty = metric_vs_param_bokeh(pd.DataFrame(), "x", "y")
    assert not [s for s in empty.select({"type": ColumnDataSource}) if (s.name or "").startswith("wb-sweep|")]


def test_size_family_at_one_lr_plots_loss_against_width(store):
    """A sweep that varies only the width (one LR, as the reference LM size family): the board's x axis is
    the width, not the constant LR, and one line shows all members."""
    sid = store.create_sweep("sizes", {"spec": {"name": "sizes", "axes": {"model_params.width": [32, 64, 96]}}})
    for width in (32, 64, 96):
        rid = store.create_run(f"w{width}", config={"lr": 3e-3, "model_params": {"width": width}, "seed": 0,
                                                    "steps": 10}, sweep=sid)
        store.log(rid, 10, {"test_loss": 3.0 - width / 100})
        store.set_status(rid, "finished")
    app = SweepBoard(store_path=str(store.path))
    assert app.x_param == "cfg.model_params.width" and app.group_by != "cfg.lr"
    xs = sorted(x for tr in app.figure().data for x in tr.x)
    assert xs == [32, 64, 96]


def test_best_is_the_minimum_wherever_lower_is_better(store):
    """best.* in the sweep board follows the runs table's rule (workbench.runs_table.lower_is_better): the
    minimum for perplexity, nll and bits per byte as for losses (the board once took the maximum of any name
    without "loss" or "err", so a sweep's best val_ppl was its worst), the maximum for accuracy."""
    from workbench.runs_table import final_and_best

    sid = store.create_sweep("lm", {"spec": {}, "executor": "local"})
    rid = store.create_run("m0", task="lm", config={"lr": 1e-3}, sweep=sid)
    names = ["val_ppl", "Val_NLL", "bpb", "test_acc", "train_loss"]
    for step, vals in enumerate([[30.0, 3.4, 1.2, 0.2, 3.0], [12.0, 2.5, 0.9, 0.7, 2.0], [15.0, 2.7, 1.0, 0.6, 2.2]]):
        store.log(rid, step, dict(zip(names, vals)))
    t = results_table(store, sid, names).set_index("id")
    want = {"val_ppl": 12.0, "Val_NLL": 2.5, "bpb": 0.9, "test_acc": 0.7, "train_loss": 2.0}
    assert {n: t.at[rid, f"best.{n}"] for n in names} == want
    fb = final_and_best(store, [rid])                # the runs table agrees
    assert {n: fb.at[rid, f"best.{n}"] for n in names} == want
