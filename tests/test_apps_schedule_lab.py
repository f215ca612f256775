"""Schedule lab at the param level (no browser): the form is generated from the registry's
ParamSpecs, widget changes redraw the figure with the schedule's values (checked against the
papers' reference values), invalid values show the schedule library's message, a fitted law gives
predicted curves, and runs / sweeps launched from the page land in the store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import panel as pn
import pytest

from workbench import fit as fitmod
from workbench import schedule_predict as sp
from workbench.apps.schedule_lab import ScheduleLab, predict_curve
from workbench.schedules import Schedule, build, param_specs


@pytest.fixture
def lab(tmp_path):
    return ScheduleLab(store_path=str(tmp_path / "runs.db"))


def trace(fig, name_start: str):
    return next(t for t in fig.data if t.name.startswith(name_start))


def y_at(tr, x: float) -> float:
    xs = np.asarray(tr.x, dtype=float)
    i = int(np.argmin(np.abs(xs - x)))
    assert abs(xs[i] - x) < 1e-9, f"no point at x={x}"
    return float(np.asarray(tr.y)[i])


def test_form_is_generated_from_param_specs(lab):
    lab.schedule = "cosine"
    specs = {p.name: p for p in param_specs("cosine") if p.type is not Schedule}
    assert set(lab.param_widgets) == set(specs)
    w = lab.param_widgets["warmup_steps"]
    assert isinstance(w, pn.widgets.IntInput) and w.start == specs["warmup_steps"].low
    mr = lab.param_widgets["min_ratio"]
    assert (mr.start, mr.end) == (specs["min_ratio"].low, specs["min_ratio"].high)
    assert lab.param_widgets["warmup_shape"].options == list(specs["warmup_shape"].choices)
    # nested-schedule factories are left to the spec editor
    assert "sequence" not in lab.param.schedule.objects and "warmup" not in lab.param.schedule.objects
    lab.schedule = "multistep"  # a list parameter is a comma-separated text box
    lab.set_values(total_steps=100, milestones=[30, 60, 90])
    s = lab.current()
    assert s(29) == pytest.approx(1.0) and s(30) == pytest.approx(0.1) and s(60) == pytest.approx(0.01)


def test_widget_change_redraws_with_reference_values(lab):
    """HF get_wsd_schedule reference (papers.md): W=10, S=80, D=10 -> m(5)=0.5, m(90)=1, m(95)=0.5 (cosine)."""
    lab.schedule = "wsd"
    lab.set_values(total_steps=100, warmup_steps=10, decay_fraction=0.1, decay_shape="cosine",
                   warmup_from_zero=True)
    tr = trace(lab.figure(), "preview")
    assert y_at(tr, 5) == pytest.approx(0.5) and y_at(tr, 90) == pytest.approx(1.0)
    assert y_at(tr, 95) == pytest.approx(0.5) and y_at(tr, 100) == pytest.approx(0.0)
    lab.set_values(decay_shape="1-sqrt")  # changing one widget changes the curve
    assert y_at(trace(lab.figure(), "preview"), 95) == pytest.approx(0.29289, abs=1e-5)
    # phase boundaries as vertical lines (end of warmup, decay start)
    xs = sorted(sh.x0 for sh in lab.figure().layout.shapes)
    assert xs == pytest.approx([10.0, 90.0])
    lab.show_boundaries = False
    assert not lab.figure().layout.shapes


def test_rex_reference_and_tokens_axis(lab):
    lab.schedule = "rex"
    lab.set_values(total_steps=100)
    lab.add_current()
    assert lab.chosen == [build("rex", total_steps=100).to_dict()]
    tr = trace(lab.figure(), "1.")
    for z, m in ((25, 0.857143), (50, 0.666667), (75, 0.4)):
        assert y_at(tr, z) == pytest.approx(m, abs=1e-6)
    lab.tokens_per_step = 1000
    lab.x_axis = "tokens"
    tr = trace(lab.figure(), "1.")
    assert max(tr.x) == pytest.approx(100 * 1000)
    assert y_at(tr, 50_000) == pytest.approx(0.666667, abs=1e-6)
    lab.log_y = True
    assert lab.figure().layout.yaxis.type == "log"


def test_invalid_values_show_the_library_message(lab):
    lab.schedule = "cosine"
    lab.set_values(total_steps=100)
    lab.add_current()
    lab.set_values(warmup_steps=500)  # warmup longer than the run
    assert lab.message.visible and lab.message.alert_type == "danger"
    assert "warmup_steps" in lab.message.object and "total_steps" in lab.message.object
    assert [t.name[:2] for t in lab.figure().data] == ["1."]  # the chosen curve stays, no preview
    lab.add_current()  # adding an invalid schedule is refused with the same message
    assert len(lab.chosen) == 1 and "warmup_steps" in lab.message.object
    lab.set_values(warmup_steps=10)
    assert not (lab.message.visible and lab.message.alert_type == "danger")
    with pytest.raises(ValueError, match="not a parameter"):
        lab.set_values(no_such=1)


def test_spec_editor_nested_and_bad_input(lab):
    spec = {"name": "warmup", "warmup_steps": 10, "schedule": {"name": "cosine", "total_steps": 90}}
    lab.add_spec(json.dumps(spec))
    assert len(lab.chosen) == 1 and build(lab.chosen[0]) == build(spec)
    lab.add_spec("{not: valid: yaml")
    assert lab.message.visible and "spec" in lab.message.object
    lab.add_spec('{"name": "cosine", "total_steps": -5}')
    assert "total_steps" in lab.message.object and len(lab.chosen) == 1
    lab.remove(0)
    assert lab.chosen == []


def test_data_export_table_round_trips(lab):
    lab.schedule = "linear"
    lab.set_values(total_steps=50)
    lab.add_current()
    lab.peak_lr = 0.01
    df = lab.data()
    s = build(lab.chosen[0])
    assert len(df) == 51 and np.allclose(df["multiplier"], s(np.arange(51)))
    assert np.allclose(df["lr"], 0.01 * s(np.arange(51)))


class AnnealingLaw:
    """Independent stand-in for a fitted LR-annealing law (Tissue et al. 2024):
    L = L0 + A * S1^(-alpha) - C * S2 with S1 = cumsum(lr), S2 = sum of momentum m_i (lambda 0.999)."""

    law = "lr_annealing"

    def __init__(self, L0=2.628, A=0.429, alpha=0.55, C=0.411, lam=0.999):
        self.p = (L0, A, alpha, C, lam)

    def predict(self, lr):
        L0, A, alpha, C, lam = self.p
        lr = np.asarray(lr, float)
        s1 = np.cumsum(lr) / lr.max()
        m, s2 = 0.0, []
        prev = lr[0]
        for x in lr:
            m = lam * m + (prev - x) / lr.max()
            prev = x
            s2.append(m)
        return L0 + A * np.maximum(s1, 1e-12) ** -alpha - C * np.cumsum(s2)

    def to_json(self):
        return json.dumps({"law": self.law, "params": list(self.p)})


def test_predicted_curves_rank_schedules(lab):
    for name in ("constant", "cosine"):
        lab.schedule = name
        lab.set_values(total_steps=2000)
        lab.add_current()
    law = AnnealingLaw()
    lab.set_law(law)
    pred = lab.predictions()
    # step convention (workbench.fit.data): a 2000-step schedule ends at step 2000, after updates 0..1999
    assert list(pred["steps"]) == [2000, 2000]
    for (_, row), d in zip(pred.iterrows(), lab.chosen):
        s = build(d)
        assert row["final loss"] == pytest.approx(law.predict(s(np.arange(2000)) * lab.peak_lr)[-1])
    # annealing lowers the final loss under this law: cosine beats constant
    assert pred["final loss"].iloc[1] < pred["final loss"].iloc[0]
    assert lab.law.results.visible and [r.name for r in lab.law.plot.object.renderers][:2] == list(pred["schedule"])


def test_law_that_cannot_take_a_schedule_is_a_message(lab):
    class PowerLaw:
        law = "power_law"

        def predict(self, x):
            return np.ones(3)

    lab.schedule = "cosine"
    lab.set_values(total_steps=20)
    lab.add_current()
    lab.set_law(PowerLaw())
    assert lab.message.visible and "schedule-aware" in lab.message.object
    with pytest.raises(ValueError, match="schedule-aware"):
        predict_curve(PowerLaw(), np.ones(5))


def test_bad_law_file_is_a_message(lab):
    lab.load_law(b"{ not json")
    assert lab.message.visible and "law file" in lab.message.object


def test_sweep_spec_requires_common_length(lab):
    for n in (20, 30):
        lab.schedule = "cosine"
        lab.set_values(total_steps=n)
        lab.add_current()
    lab.launch_sweep(background=False)
    assert "same length" in lab.message.object
    lab.remove(1)
    spec = lab.sweep_spec()
    assert spec["base"]["steps"] == 20 and spec["axes"]["schedule"] == lab.chosen


def test_launch_run_and_sweep_write_to_the_store(lab):
    lab.launch.base_config = "task: modular\ntask_params: {p: 11, frac: 0.5}\nmodel: mlp\nseed: 0\nlog_every: 5\neval_every: 10\n"
    for name in ("cosine", "linear"):
        lab.schedule = name
        lab.set_values(total_steps=20)
        lab.add_current()
    rid = lab.launch_run(background=False)
    assert rid and "monitor" in lab.launch.status.object
    rec = lab.store.get_run(rid)
    assert rec["status"] == "finished" and rec["config"]["steps"] == 20
    assert build(rec["config"]["schedule"]) == build(lab.chosen[-1])
    lr = lab.store.metrics(rid, "lr")
    got = lr["value"].to_numpy()
    want = lab.peak_lr * build(lab.chosen[-1])(lr["step"].to_numpy())
    assert np.allclose(got, want, rtol=1e-5)  # the engine followed the schedule drawn here
    sid = lab.launch_sweep(background=False)
    runs = lab.store.runs(sweep=sid)
    assert len(runs) == 2 and set(runs["status"]) == {"finished"}
    assert sorted(c["schedule"]["name"] for c in runs["config"]) == ["cosine", "linear"]


def test_view_builds(lab):
    view = lab.__panel__()
    assert isinstance(view, pn.viewable.Viewable)
    assert isinstance(lab.predictions(), pd.DataFrame)


def annealing_curves(law, theta: np.ndarray) -> list[tuple]:
    """A constant and a cosine curve (600 steps, peak 3e-4) made by ``law`` with parameters ``theta``."""
    curves = []
    for name in ("constant", "cosine"):
        lr = 3e-4 * build(name, total_steps=600, **({"min_ratio": 0.1} if name == "cosine" else {}))(np.arange(601))
        steps = np.arange(10, 601, 10)
        inputs = {"step": steps, "curve": np.zeros(len(steps), dtype=np.int64), "lrs": [lr]}
        curves.append((name, steps, law.predict(theta, inputs), lr))
    return curves


def test_real_schedule_law_from_workbench_fit(lab):
    """A LR-annealing law (Tissue et al. 2024) fitted by workbench.fit on two synthetic curves made
    with known parameters predicts a third schedule's curve as the law itself does."""
    law = fitmod.get_law("lr_annealing")
    theta = np.array([2.628, 0.429, 0.55, 0.411])
    if len(law.params) != len(theta):
        pytest.skip("lr_annealing parameters changed")
    curves = annealing_curves(law, theta)
    res = fitmod.fit(law, fitmod.FitData.from_curves(curves))
    lab.schedule = "wsd"
    lab.set_values(total_steps=600, min_ratio=0.1)
    lab.add_current()
    lab.set_law(res)
    lr = lab.peak_lr * build(lab.chosen[0])(np.arange(601))
    want = law.predict(theta, {"step": np.arange(601), "curve": np.zeros(601, dtype=np.int64), "lrs": [lr]})
    assert lab.predictions()["final loss"].iloc[0] == pytest.approx(want[-1], rel=1e-3)


def _annealing_runs(store, task: str, names=("constant", "cosine")) -> list[str]:
    """Runs that logged lr and train_loss, made by the LR-annealing law (Tissue et al. 2024) with known
    parameters (the law's own predict), one per schedule."""
    law = fitmod.get_law("lr_annealing")
    theta = np.array([2.628, 0.429, 0.55, 0.411])
    ids = []
    for name in names:
        lr = 3e-4 * build(name, total_steps=600, **({"min_ratio": 0.1} if name == "cosine" else {}))(np.arange(601))
        steps = np.arange(10, 601, 10)
        loss = law.predict(theta, {"step": steps, "curve": np.zeros(len(steps), dtype=np.int64), "lrs": [lr]})
        rid = store.create_run(f"{task}-{name}", task=task, config={"schedule": name})
        for st, y in zip(steps, loss):
            store.log(rid, int(st), {"lr": float(lr[st]), "train_loss": float(y)})
        store.set_status(rid, "finished")
        ids.append(rid)
    return ids


def test_fit_on_chosen_runs_of_one_task_and_refuse_mixed_tasks(lab):
    lm = _annealing_runs(lab.store, "lm")
    other = _annealing_runs(lab.store, "modular", names=("constant",))
    lab.refresh_fit_runs()
    assert set(lab.law.param.fit_runs.objects) == set(lm + other)
    # nothing chosen: a message naming the field, no fit
    assert lab.fit_law_on_runs("lr_annealing") is None
    assert lab.message.alert_type == "danger" and "fit_runs" in lab.message.object
    # mixed tasks: refused with the tasks named
    lab.law.fit_runs = lm + other
    assert lab.fit_law_on_runs("lr_annealing") is None
    assert "mix tasks" in lab.message.object and "lm (2 runs)" in lab.message.object
    assert "modular (1 run)" in lab.message.object
    # one task: fitted, and the prediction of a chosen schedule follows the law
    lab.law.fit_runs = lm
    res = lab.fit_law_on_runs("lr_annealing")
    assert res is not None, lab.message.object
    assert res.r2 > 0.999
    lab.schedule = "wsd"
    lab.set_values(total_steps=600, min_ratio=0.1)
    lab.add_current()
    assert len(lab.predictions()) == 1 and lab.law.results.visible


def test_prediction_with_a_schedule_that_decays_to_zero(lab):
    """min_ratio = 0 (an LR of 0 at the end) predicts, as the limit of a tiny final LR."""
    law = fitmod.get_law("multi_power")
    theta = [3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257]
    if len(law.params) != len(theta):
        pytest.skip("multi_power parameters changed")

    class Fitted:  # the published 25M parameters of Luo et al. (2025) under the workbench law
        def predict(self, X, **_):
            return law.predict(np.array(theta), X)

    lab.set_law(Fitted())
    for ratio in (0.0, 1e-9):
        lab.chosen = []
        lab.schedule = "cosine"
        lab.set_values(total_steps=3000, min_ratio=ratio)
        lab.add_current()
        assert not (lab.message.visible and lab.message.alert_type == "danger"), lab.message.object
        p = lab.predictions()
        assert len(p) == 1 and np.isfinite(p["final loss"].iloc[0])
        if ratio == 0.0:
            at_zero = p["final loss"].iloc[0]
    assert at_zero == pytest.approx(p["final loss"].iloc[0], rel=1e-6)  # continuous at an LR of 0


def test_an_error_stays_until_the_user_acts(lab):
    lab.show_error("**ValueError**: broken")
    lab.show_info("Fitted something.")
    assert lab.message.alert_type == "danger" and "broken" in lab.message.object
    assert "Fitted something." in lab.message.object
    lab.on_exception(RuntimeError("from a watcher"))  # Panel's per-session exception handler
    assert "RuntimeError" in lab.message.object and lab.message.visible
    lab.add_current()  # the user acts: the old message goes
    assert lab.message.alert_type == "info" and "broken" not in lab.message.object


def test_optimise_adds_the_law_optimum_and_trains_it_with_the_baselines(lab):
    """Optimise (workbench.schedule_design): with a fitted law and chosen baselines, the optimised schedule
    joins the chosen ones, its predicted final loss is the lowest, and the batched sweep holds all of them."""
    lab.optimise()
    assert "law" in lab.message.object                     # no law yet: a message, no schedule
    fitmod = pytest.importorskip("workbench.fit")
    law = fitmod.get_law("lr_annealing")
    theta = np.array([2.628, 0.429, 0.55, 0.411])
    curves = annealing_curves(law, theta)
    lab.set_law(fitmod.fit(law, fitmod.FitData.from_curves(curves)))
    for name in ("cosine", "wsd"):
        lab.schedule = name
        lab.set_values(total_steps=600)
        lab.add_current()
    spec = lab.optimise(iters=100)
    assert spec["name"] == "optimized" and lab.chosen[-1] == spec and len(lab.chosen) == 3
    pred = lab.predictions().set_index("schedule")["final loss"]
    assert pred.iloc[-1] <= pred.iloc[:-1].min()
    assert "predicted final loss" in lab.launch.status.object
    lab.optimise(iters=50)                                  # a second Optimise replaces the first
    assert [d["name"] for d in lab.chosen].count("optimized") == 1
    sw = lab.sweep_spec()
    assert [d["name"] for d in sw["axes"]["schedule"]] == ["cosine", "wsd", "optimized"]


def test_a_failed_background_run_is_a_message(lab):
    """A run launched from the page trains in a child process; when it fails, the end of its output (its
    traceback) reaches the message area; a run that diverged is no error."""

    class Handle:
        run_id, status = "bg-1", "failed"

        class proc:  # noqa: N801 - stands for a subprocess.Popen
            returncode = 1

            @staticmethod
            def wait():
                return 1

        @staticmethod
        def error():
            return "Traceback ...\nRuntimeError: out of memory"

    lab.launch._report(Handle())
    assert lab.message.alert_type == "danger" and "Run bg-1 failed" in lab.message.object
    assert "out of memory" in lab.message.object
    lab.clear_message()
    Handle.status = "diverged"
    lab.launch._report(Handle())
    assert not lab.message.visible


def test_export_figure_is_the_overlay_as_drawn(lab):
    """The page draws with Bokeh; the export's Plotly figure has the same lines, less one hidden by a click
    on the legend (Bokeh syncs the renderer's ``visible`` back to the server)."""
    for name in ("cosine", "linear"):
        lab.schedule = name
        lab.set_values(total_steps=100)
        lab.add_current()
    drawn = {r.name: r for r in lab.plot.object.renderers}
    assert set(drawn) == {"1. cosine (total_steps=100, min_ratio=0.0, warmup_steps=0)",
                          "2. linear (total_steps=100, min_ratio=0.0, warmup_steps=0)", "wb-preview"}
    src = drawn["1. cosine (total_steps=100, min_ratio=0.0, warmup_steps=0)"].data_source.data
    tr = trace(lab.figure(), "1.")
    assert np.allclose(src["x"], tr.x) and np.allclose(src["y"], tr.y)
    drawn["1. cosine (total_steps=100, min_ratio=0.0, warmup_steps=0)"].visible = False
    assert [t.name[:2] for t in lab.figure().data] == ["2.", "pr"]  # the preview is tagged, dropped by export


def test_extrapolated_from_step_is_a_clear_value_never_nan(lab):
    """The predictions table's "extrapolated from step": the step where a prediction leaves the fitted
    domain, "inside" for one that stays in it, "not checked" for a law without a domain; never NaN."""
    law = fitmod.get_law("lr_annealing")
    theta = np.array([2.628, 0.429, 0.55, 0.411])
    if len(law.params) != len(theta):
        pytest.skip("lr_annealing parameters changed")
    lab.set_law(fitmod.fit(law, fitmod.FitData.from_curves(annealing_curves(law, theta))))  # 600 steps fitted
    lab.schedule = "cosine"
    for total in (600, 1500):  # the fitted length, and 2.5x longer than any fitted curve
        lab.set_values(total_steps=total, min_ratio=0.1)
        lab.add_current()
    for table in (lab.predictions(), lab.law.table.value):
        ext = table["extrapolated from step"]
        assert not ext.isna().any() and ext.map(type).eq(str).all(), ext.tolist()
        assert ext.iloc[0] == sp.INSIDE and table["why"].iloc[0] == ""
        assert ext.iloc[1].isdigit() and 600 < int(ext.iloc[1]) <= 1500 and table["why"].iloc[1]
    lab.set_law(AnnealingLaw())  # a law object without a fitted domain: nothing to check against
    p = lab.predictions()
    assert (p["extrapolated from step"] == sp.NOT_CHECKED).all() and p["why"].str.contains("no fitted domain").all()
    # a domain flag without a step still reads as outside, and an empty table keeps its columns
    curves = {"a": (np.arange(1, 4), np.array([3.0, 2.5, 2.4]))}
    t = sp.predictions_table(curves, {"a": (None, "anneal deeper than any fitted")})
    assert t["extrapolated from step"].tolist() == [sp.OUTSIDE] and t["why"].tolist() == ["anneal deeper than any fitted"]
    assert "extrapolated from step" in sp.predictions_table({}, {}).columns
