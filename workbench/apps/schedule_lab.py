"""Schedule lab: compose learning-rate schedules, overlay them, predict their loss curves with a
fitted law before training, and launch a run or a batched sweep of the chosen schedules.

The app composes (issue 17 item 6; each piece is usable alone):

- the schedule form (``components/schedule_form.py``): widgets generated from the registry's ``ParamSpec``
  rows (``workbench.schedules``: type, range, choices), so a new schedule appears here without app code;
- the overlay figure, drawn with Bokeh in the page (``workbench.figures.schedules_bokeh``: no plotly.js to
  load, issue 13) and built with Plotly for exports (``workbench.figures.schedules.lab_figure``);
- the loss prediction (``components/schedlab_law.py``, science in ``workbench.schedule_predict``): a fitted
  schedule-aware law (the multi-power law of Luo et al., ICLR 2025, or the LR-annealing law of Tissue et
  al. 2024), uploaded as ``FitResult.to_json()`` or fitted here on runs of the store that logged ``lr``;
- the launch box (``components/schedlab_launch.py``): one run (``workbench.train.train``) or a batched
  sweep (``workbench.sweeps.run_sweep``) in a background thread writing to the store;
- Optimise (``workbench.schedule_design``): the schedule the law predicts to end lowest.

Invalid widget values (warmup longer than the run, ...) show the schedule library's own error message in
the page, never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
import plotly.graph_objects as go

from workbench.apps.base import AppBase, escape, guarded
from workbench.apps.components.schedlab_launch import Launcher
from workbench.apps.components.schedlab_law import MAX_LAW_BYTES, LawPanel
from workbench.apps.components.schedule_form import (
    form_schedules,
    schedule_form,
    schedules_module,
    set_form_values,
    widget_value,
)
from workbench.schedule_predict import optimise_against, predict_curve

__all__ = ["MAX_LAW_BYTES", "ScheduleLab", "predict_curve"]


class ScheduleLab(AppBase):
    """Compose, overlay and compare LR schedules; predict their loss curves; launch runs."""

    title = "Schedule lab"

    schedule = param.Selector(default=None, objects=[], doc="Schedule from the registry")
    chosen = param.List(default=[], doc="Chosen schedules, as plain spec dicts")
    x_axis = param.Selector(default="steps", objects=["steps", "tokens"])
    tokens_per_step = param.Number(default=524288.0, bounds=(1, None), doc="Tokens per optimizer update")
    log_y = param.Boolean(default=False)
    show_boundaries = param.Boolean(default=True)
    peak_lr = param.Number(default=3e-4, bounds=(0, None), inclusive_bounds=(False, True),
                           doc="Peak learning rate (absolute LR = peak x multiplier)")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.param_widgets: dict[str, pn.widgets.Widget] = {}
        self._specs: dict[str, Any] = {}
        self.law = LawPanel(self, on_change=self._refresh)
        self.launch = Launcher(self, chosen=lambda: self.chosen, peak_lr=lambda: self.peak_lr)
        self.form = pn.Column(sizing_mode="stretch_width")
        self.plot = pn.pane.Bokeh(None, sizing_mode="stretch_width", height=400)
        self._drawn: tuple[list, Any] = ([], None)  # the chosen schedules and the preview last drawn
        self.chosen_table = pn.widgets.Tabulator(pd.DataFrame(columns=["label", "spec"]), disabled=True,
                                                 show_index=False, sizing_mode="stretch_width", height=180)
        try:
            names = form_schedules()
        except Exception as e:  # noqa: BLE001 - shown in the page
            names = []
            self.show_error(f"**Schedules unavailable**: {e}")
        self.param.schedule.objects = names
        if names and self.schedule not in names:
            with param.parameterized.discard_events(self):  # the form is built once, below
                self.schedule = "cosine" if "cosine" in names else names[0]
        self._build_form()  # draws the figure once the form exists
        if not self.param_widgets:
            self._refresh()
        try:
            self.law.refresh_runs()
        except Exception as e:  # noqa: BLE001 - the store is optional here: shown in the page
            self.show_error(f"**Runs unavailable**: {type(e).__name__}: {e}")

    # -------------------------------------------------------------- form
    @param.depends("schedule", watch=True)
    def _build_form(self) -> None:
        self.param_widgets, self._specs = {}, {}
        if not self.schedule:
            self.form.objects = [pn.pane.Markdown("No schedules registered.")]
            return
        try:
            self.param_widgets, self._specs = schedule_form(self.schedule)
        except Exception as e:  # noqa: BLE001
            self.show_error(f"**{type(e).__name__}**: {e}")
            return
        for w in self.param_widgets.values():
            w.param.watch(lambda *_: self._refresh(), "value")
        self.form.objects = list(self.param_widgets.values())
        self._refresh()

    def form_values(self) -> dict[str, Any]:
        """The current form as schedule parameters (all given: the spec is then explicit)."""
        return {k: widget_value(self._specs[k], w) for k, w in self.param_widgets.items()}

    def set_values(self, **values: Any) -> None:
        """Set form widgets by parameter name (the same path as typing in the page)."""
        set_form_values(self.param_widgets, values, self.schedule)

    def current(self) -> Any:
        """The schedule the form describes (raises the schedule library's error if invalid)."""
        return schedules_module().build(self.schedule, **self.form_values())

    def chosen_schedules(self) -> list[tuple[str, Any]]:
        build = schedules_module().build
        return [(self._label(i, d), build(d)) for i, d in enumerate(self.chosen)]

    @staticmethod
    def _label(i: int, d: dict) -> str:
        extras = [f"{k}={v}" for k, v in d.items() if k in ("total_steps", "warmup_steps", "decay_fraction",
                                                             "decay_shape", "min_ratio")]
        return f"{i + 1}. {d.get('name')}" + (f" ({', '.join(extras[:3])})" if extras else "")

    # -------------------------------------------------------------- chosen schedules
    @guarded
    def add_current(self, *_: Any) -> None:
        self.clear_message()  # a new action: the previous message goes
        s = self.current()
        self.chosen = [*self.chosen, s.to_dict()]
        self.show_info(f"Added {s.name} ({s.total_steps} steps).")

    @guarded
    def add_spec(self, text: str) -> None:
        """Add a schedule from a JSON or YAML spec (nested schedules: warmup, sequence, rewarm)."""
        self.clear_message()  # a new action: the previous message goes
        from workbench import yamlio

        try:
            d = yamlio.load(text)
        except yamlio.YAMLError as e:
            raise ValueError(f"spec: not valid JSON/YAML ({e})") from None
        s = schedules_module().build(d)
        self.chosen = [*self.chosen, s.to_dict()]
        self.show_info(f"Added {s.name} ({s.total_steps} steps).")

    def remove(self, index: int) -> None:
        if not 0 <= index < len(self.chosen):
            raise ValueError(f"index: {index} out of range [0, {len(self.chosen) - 1}]")
        self.chosen = [d for i, d in enumerate(self.chosen) if i != index]

    def clear(self, *_: Any) -> None:
        self.chosen = []

    # -------------------------------------------------------------- law, launches (the components' API)
    def load_law(self, text: str | bytes) -> None:
        """Load a fitted law from ``FitResult.to_json()`` text (at most ``MAX_LAW_BYTES``)."""
        self.law.load(text)

    def set_law(self, result: Any) -> None:
        """Use an already fitted law object (notebooks, tests)."""
        self.law.set(result)

    def refresh_fit_runs(self, *_: Any) -> None:
        self.law.refresh_runs()

    def fit_law_on_runs(self, law: str = "multi_power", run_ids: list[str] | None = None,
                        background: bool = False) -> Any:
        """Fit a schedule-aware law on chosen runs of the store (``LawPanel.fit``)."""
        return self.law.fit(law, run_ids, background)

    def predictions(self) -> pd.DataFrame:
        """Predicted final loss of each chosen schedule under the law (empty without a law)."""
        return self.law.predictions(self.chosen_schedules(), self.peak_lr)

    def launch_run(self, *_: Any, index: int = -1, background: bool = True) -> str | None:
        return self.launch.launch_run(index=index, background=background)

    def launch_sweep(self, *_: Any, background: bool = True) -> str | None:
        return self.launch.launch_sweep(background=background)

    def sweep_spec(self, name: str = "schedule-lab") -> dict:
        return self.launch.sweep_spec(name)

    @guarded
    def optimise(self, *_: Any, knots: int = 32, iters: int = 300) -> dict | None:
        """Add the schedule minimising the law's predicted final loss (``schedule_predict.optimise_against``)
        to the chosen schedules; its predicted loss joins the overlay. Returns its spec."""
        base = [d for d in self.chosen if d.get("name") != "optimized"]
        opt = optimise_against(self.law.law, base, self.peak_lr, knots=knots, iters=iters)
        spec = opt.to_dict()
        self.chosen = [*base, spec]
        notes = "".join(f" ({escape(n)})" for n in opt.design.notes)
        self.launch.status.object = f"Optimised schedule added: predicted final loss {opt.design.final:.4f}{notes}."
        return spec

    # -------------------------------------------------------------- refresh
    @param.depends("chosen", "x_axis", "tokens_per_step", "log_y", "show_boundaries", "peak_lr", watch=True)
    def _refresh(self) -> None:
        from workbench.figures.schedules_bokeh import lab_overlay

        preview, err = None, None
        if self.param_widgets:
            try:
                preview = ("preview: " + self.schedule, self.current())
            except Exception as e:  # noqa: BLE001 - the schedule library's message, shown in the page
                err = f"**{type(e).__name__}**: {e}"
        try:
            chosen = self.chosen_schedules()
        except Exception as e:  # noqa: BLE001
            chosen, err = [], f"**{type(e).__name__}**: {e}"
        if err:
            self.show_error(err)
        elif self.message.alert_type == "danger":
            self.clear_message()
        self._drawn = (chosen, preview)
        self.plot.object = lab_overlay(chosen, x_axis=self.x_axis, tokens_per_step=self.tokens_per_step,
                                       log_y=self.log_y, boundaries=self.show_boundaries, preview=preview)
        # object dtype: Bokeh serialises pandas' new string dtype in this table as NaN
        self.chosen_table.value = pd.DataFrame(
            {"label": [lbl for lbl, _ in chosen], "spec": [json.dumps(d) for d in self.chosen]}, dtype=object)
        self.law.update(chosen, self.peak_lr, self.x_axis, self.tokens_per_step)

    def figure(self) -> go.Figure:
        """The overlay as drawn, as a Plotly figure for exports: a line hidden by a click on the legend is left
        out, and so is the preview (tagged)."""
        from workbench.figures.schedules import lab_figure

        chosen, preview = self._drawn
        shown = self.plot.object
        hidden = {r.name for r in getattr(shown, "renderers", []) if not r.visible}  # hidden from the legend
        chosen = [(label, s) for label, s in chosen if label not in hidden]
        return lab_figure(chosen, x_axis=self.x_axis, tokens_per_step=self.tokens_per_step, log_y=self.log_y,
                          boundaries=self.show_boundaries, preview=preview)

    def data(self) -> pd.DataFrame | None:
        """Every chosen schedule's multiplier per step (long form), for export."""
        frames = []
        for label, s in self.chosen_schedules():
            steps = np.arange(int(s.total_steps) + 1)
            frames.append(pd.DataFrame({"schedule": label, "step": steps, "tokens": steps * self.tokens_per_step,
                                        "multiplier": s(steps), "lr": np.asarray(s(steps)) * self.peak_lr}))
        return pd.concat(frames, ignore_index=True) if frames else None

    # -------------------------------------------------------------- view
    def view(self) -> pn.viewable.Viewable:
        add = pn.widgets.Button(label="Add to chosen", color="primary")
        add.on_click(self.add_current)
        clear = pn.widgets.Button(label="Clear chosen")
        clear.on_click(self.clear)
        spec_text = pn.widgets.TextAreaInput(label="Or a spec (JSON / YAML, nested schedules allowed)", height=90,
                                             placeholder='{"name": "cosine", "total_steps": 10000}')
        add_spec = pn.widgets.Button(label="Add spec")
        add_spec.on_click(lambda *_: self.add_spec(spec_text.value))
        controls = pn.Column(
            pn.widgets.Select.from_param(self.param.schedule, label="Schedule"),
            self.form, pn.Row(add, clear), spec_text, add_spec,
            pn.layout.Divider(),
            pn.widgets.RadioButtonGroup.from_param(self.param.x_axis),
            pn.widgets.FloatInput.from_param(self.param.tokens_per_step, label="Tokens per step"),
            pn.widgets.Checkbox.from_param(self.param.log_y, label="log y"),
            pn.widgets.Checkbox.from_param(self.param.show_boundaries, label="phase boundaries"),
            pn.widgets.FloatInput.from_param(self.param.peak_lr, label="Peak LR", step=1e-4),
            width=320, sizing_mode="fixed",
        )
        opt_btn = pn.widgets.Button(label="Optimise", color="primary", css_classes=["wb-optimise"],
                                    description="Add the schedule that minimises the law's predicted final loss")
        opt_btn.on_click(self.optimise)
        train_btn = pn.widgets.Button(label="Train it and the chosen baselines", color="success",
                                      css_classes=["wb-train-optimised"])
        train_btn.on_click(self.launch_sweep)
        export = pn.Column(sizing_mode="stretch_width")  # below the fold: built after the page is drawn

        def add_export() -> None:
            export.objects = [self._export()]

        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.onload(add_export)  # a third of the page's widgets; the visible part first (issue 13)
        else:
            add_export()
        main = pn.Column(self.plot, self.chosen_table, pn.Row(opt_btn, train_btn), self.law.card(), self.law.results,
                         self.launch.card(), export, sizing_mode="stretch_width")
        return pn.Row(controls, main, sizing_mode="stretch_width")

    def _export(self) -> pn.viewable.Viewable:
        from workbench.apps.export import ExportPanel

        return ExportPanel(figure=self.figure, data=self.data, fit_json=lambda: self.law.law_json,
                           basename="schedules")
