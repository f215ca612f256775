"""Sweep board: define a sweep (YAML editor or a simple form), launch it in the background, watch
per-member progress, and compare the results.

A thin composition (issue 17 item 6): the definition panel is ``components/sweeps_define.py``; progress
and the stored spec come from ``workbench.sweeps.progress``, the results table from
``workbench.sweeps.results``, the figures from ``workbench.figures.sweeps`` (final metric against a
hyperparameter per group as in Wortsman et al. 2023, parallel coordinates, fANOVA importance) and the
AlgoPerf performance profile (Dahl et al. 2023) from ``workbench.sweeps.algoperf`` when the spec has a
target. Progress is read from the store, so it also shows sweeps started elsewhere (CLI, notebook).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import panel as pn
import param
import plotly.graph_objects as go
from bokeh.models.widgets.tables import NumberFormatter

from workbench.apps.base import AppBase, escape, guarded, show_table
from workbench.apps.components.sweeps_define import SweepDefinition
from workbench.apps.components.sweeps_insights import importance_view, profile_view
from workbench.apps.components.sweeps_plotly import load_plotly_after_first_paint
from workbench.apps.export import ExportPanel
from workbench.figures.sweeps import (
    is_log_axis,
    metric_vs_param_figure,
    parallel_coordinates_figure,
)
from workbench.figures.sweeps_bokeh import metric_vs_param_bokeh
from workbench.sweeps.progress import progress_table, stored_spec
from workbench.sweeps.results import RESULT_METRICS, results_table

PARCOORDS_TAB, IMPORTANCE_TAB, PROFILE_TAB = 1, 3, 4  # indices of the result tabs drawn with Plotly
SIZE_HINTS = ("width", "d_model", "n_embd", "params", "size", "n_layer", "depth", "hidden")


class SweepBoard(AppBase):
    """Define, launch, watch and compare sweeps."""

    title = "Sweep board"

    sweep = param.Selector(default=None, objects=[], allow_None=True, doc="Sweep (id) to show")
    metric = param.Selector(default=None, objects=[], allow_None=True, doc="Result column on the y axis")
    x_param = param.Selector(default=None, objects=[], allow_None=True, doc="Hyperparameter on the x axis")
    group_by = param.Selector(default=None, objects=[], allow_None=True, doc="Hyperparameter for the lines")
    log_x = param.Boolean(default=True)
    log_y = param.Boolean(default=False)
    auto_refresh = param.Boolean(default=True, doc="Refresh progress every 2 s while served")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.define = SweepDefinition(self, on_launched=self._on_launched)
        self._table = pd.DataFrame()
        self._callback: Any = None
        self.progress = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=200,
                                             sizing_mode="stretch_width",
                                             formatters={"progress": {"type": "progress", "max": 1},
                                                         "steps/s": NumberFormatter(format="0,0.0"),
                                                         "eta_s": NumberFormatter(format="0,0")})
        self.progress_md = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.results = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=260,
                                            sizing_mode="stretch_width", pagination="local", page_size=50)
        # the first view is drawn with Bokeh (no plotly.js before first paint, issue 13); exports get Plotly
        self.plot = pn.pane.Bokeh(None, sizing_mode="stretch_width", height=400)
        # the Plotly tabs' figures are built when there is something to draw (and, served, when opened)
        self.parcoords = pn.pane.Plotly(None, sizing_mode="stretch_width", height=400)
        self.profile = pn.pane.Plotly(None, sizing_mode="stretch_width", height=360, visible=False)
        self.score = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, height=140, sizing_mode="stretch_width",
                                          visible=False)
        self.profile_md = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.importance = pn.pane.Plotly(None, sizing_mode="stretch_width", height=300, visible=False)
        self.importance_md = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._objective: tuple[str, str] | None = None
        self._metric_sweep: str | None = None
        self._statuses: tuple = ()
        self._importance_key: tuple | None = None
        self._figures_key: tuple | None = None
        self._table_version = 0
        self.tabs: pn.Tabs | None = None
        # served (a browser session): the Plotly tabs (parallel coordinates, fANOVA importance, about a
        # second, the AlgoPerf profile) are computed when their tab is opened, not at page load
        self.lazy = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
        self.refresh_sweeps()
        if self.plot.object is None:  # nothing to draw yet: an empty figure that says so
            self.plot.object = metric_vs_param_bokeh(pd.DataFrame(), "x", "y")

    def launch(self, *_: Any, background: bool = True) -> str | None:
        """Validate and launch the definition panel's sweep (``self.define``: spec, form, validate)."""
        return self.define.launch(background=background)

    def _on_launched(self, sid: str) -> None:
        self.refresh_sweeps()
        if sid in self.param.sweep.objects:
            self.sweep = sid

    # -------------------------------------------------------------- store views
    def refresh_sweeps(self) -> None:
        try:
            sw = self.store.sweeps()
        except Exception as e:  # noqa: BLE001
            self.show_error(f"**Store unavailable**: {e}")
            return
        ids = sw["id"].tolist()
        self._sweep_names = dict(zip(sw["id"], sw["name"]))
        self.param.sweep.objects = ids
        if ids and self.sweep not in ids:  # the newest of the user's own sweeps, else the newest reference one
            own = [i for i in ids if not str(self._sweep_names.get(i, "")).startswith("reference-")]
            self.sweep = (own or ids)[-1]
        elif not ids:
            self.progress_md.object = "No sweeps in the store yet: define one on the left and launch it."

    @param.depends("sweep", watch=True)
    def _on_sweep(self) -> None:
        self.refresh_progress()
        self.refresh_results()

    @guarded
    def refresh_progress(self) -> None:
        if not self.sweep:
            return
        df, summ = progress_table(self.store, self.sweep)
        show_table(self.progress, df)
        counts = ", ".join(f"{k}: {v}" for k, v in summ["counts"].items() if v)
        exp = summ.get("expected")
        eta = summ.get("eta_s")
        eta_txt = "done" if eta == 0 else ("unknown" if eta is None or math.isnan(eta) else f"{eta:.0f} s")
        self.progress_md.object = (f"**{escape(self._sweep_names.get(self.sweep, self.sweep))}** (`{self.sweep}`): "
                                   f"{summ['members']} run(s)" + (f" of {exp} members" if exp else "")
                                   + (f" ({counts})" if counts else "") + f" · ETA {eta_txt}")

    @guarded
    def refresh_results(self) -> None:
        if not self.sweep:
            return
        spec = stored_spec(self.store, self.sweep)
        extra = [d.get("metric") for d in (spec.get("objective"), spec.get("target")) if isinstance(d, dict)]
        table = results_table(self.store, self.sweep, [*RESULT_METRICS, *[m for m in extra if m]])
        self._table = table
        self._table_version += 1
        show_table(self.results, table)
        cfg_cols = [c for c in table.columns if c.startswith("cfg.") and c != "cfg.seed"]
        metrics = [c for c in table.columns if c.startswith(("final.", "best."))]
        self.param.x_param.objects = cfg_cols
        self.param.group_by.objects = [None, *cfg_cols]
        self.param.metric.objects = metrics
        obj = spec.get("objective") if isinstance(spec.get("objective"), dict) else {}
        self._objective = (f"final.{obj['metric']}", obj.get("mode", "min")) if obj.get("metric") else None
        with param.parameterized.batch_call_watchers(self):
            if self._objective and self._objective[0] in metrics and self._metric_sweep != self.sweep:
                self.metric = self._objective[0]  # the spec's objective, until the user picks another metric
            self._metric_sweep = self.sweep
            # defaults among the columns the sweep varies (a size family at one LR: loss against width)
            varied = [c for c in cfg_cols if table[c].astype(str).nunique() > 1] or cfg_cols
            if self.x_param not in cfg_cols:
                self.x_param = "cfg.lr" if "cfg.lr" in varied else (varied[0] if varied else None)
            if self.group_by is None or self.group_by not in self.param.group_by.objects:
                sizes = [c for c in varied if c != self.x_param and any(h in c for h in SIZE_HINTS)]
                self.group_by = (sizes or [c for c in varied if c != self.x_param] or [None])[0]
            if self.metric not in metrics:
                self.metric = next((m for m in ("final.test_loss", "final.val_loss", "final.train_loss")
                                    if m in metrics), metrics[0] if metrics else None)
        self._statuses = tuple(table["status"]) if "status" in table else ()
        self._update_figures()
        self._update_profile()
        self._update_importance()

    def _update_importance(self) -> None:
        """fANOVA importance of the varied hyperparameters for the objective (the spec's, else the
        chosen metric), or why it is unavailable. Under ``panel serve`` only while its tab is open, and
        only when the members or their statuses changed since the last one."""
        if self._tab_hidden(IMPORTANCE_TAB):
            return
        t = self._table
        objective, mode = self._objective or (self.metric, None)
        key = (self.sweep, objective, self._statuses, len(t))
        if key == self._importance_key:
            return
        self._importance_key = key
        fig, self.importance_md.object = importance_view(t, objective, mode, self._objective is not None)
        if fig is not None:
            self.importance.object = fig
        self.importance.visible = fig is not None

    @param.depends("metric", watch=True)
    def _on_metric(self) -> None:
        if self._objective is None:  # without a spec objective the importance follows the chosen metric
            self._update_importance()

    def _tab_hidden(self, tab: int) -> bool:
        """Served, a result tab's view is computed only while the tab is open (its models are sent then)."""
        return self.lazy and (self.tabs is None or self.tabs.active != tab)

    def _on_tab(self, event: Any) -> None:
        update = {PARCOORDS_TAB: self._update_parcoords, IMPORTANCE_TAB: self._update_importance,
                  PROFILE_TAB: self._update_profile}.get(event.new)
        if update is not None:
            update()

    @param.depends("x_param", "group_by", "metric", "log_x", "log_y", watch=True)
    def _update_figures(self) -> None:
        t = self._table
        if t.empty or not self.x_param or not self.metric:
            return
        key = (self._table_version, self.x_param, self.metric, self.group_by, self.log_x, self.log_y)
        if key == self._figures_key:  # refresh_results sets the selectors, then asks once more
            return
        self._figures_key = key
        self.plot.object = metric_vs_param_bokeh(t, self.x_param, self.metric, self.group_by, log_x=self._log_x(),
                                                 log_y=self.log_y)
        self._update_parcoords()

    def _update_parcoords(self) -> None:
        t = self._table
        if self._tab_hidden(PARCOORDS_TAB) or t.empty:
            return
        self.parcoords.object = parallel_coordinates_figure(t, color=self.metric, uirevision=self.sweep)

    def _update_profile(self) -> None:
        if self._tab_hidden(PROFILE_TAB) or not self.sweep:
            return
        fig, score, self.profile_md.object = profile_view(self.store, self.sweep)
        if fig is not None:
            self.profile.object = fig
            show_table(self.score, score)
        self.profile.visible = self.score.visible = fig is not None

    def _log_x(self) -> bool:
        t = self._table
        return bool(self.log_x and self.x_param in t and is_log_axis(self.x_param, t[self.x_param]))

    def figure(self) -> go.Figure:
        """The metric-vs-hyperparameter view as a Plotly figure (exports, notebooks): the page's Bokeh
        figure's points, built when asked for."""
        if self._table.empty or not self.x_param or not self.metric:
            return metric_vs_param_figure(pd.DataFrame(), "x", "y")
        return metric_vs_param_figure(self._table, self.x_param, self.metric, self.group_by, log_x=self._log_x(),
                                      log_y=self.log_y)

    def data(self) -> pd.DataFrame | None:
        return None if self._table.empty else self._table

    # -------------------------------------------------------------- periodic refresh
    def _tick(self) -> None:
        if not self.auto_refresh:
            return
        self.refresh_sweeps()
        if self.sweep:
            self.refresh_progress()
            prog = self.progress.value
            running = (prog["status"] == "running").any() if len(prog) else False
            # also once more when a member's status changed (the last ones finishing): the results table
            # then shows them finished, not running
            changed = len(prog) and tuple(prog["status"]) != self._statuses
            if running or changed or self.define.running():
                self.refresh_results()

    def _start_periodic(self) -> None:
        if self._callback is None and pn.state.curdoc is not None:
            self._callback = pn.state.add_periodic_callback(self._tick, period=2000)
            pn.state.on_session_destroyed(lambda *_: self._callback.stop() if self._callback else None)

    # -------------------------------------------------------------- view
    def view(self) -> pn.viewable.Viewable:
        self._start_periodic()
        refresh = pn.widgets.Button(label="Refresh", width=90, align="end")
        refresh.on_click(lambda *_: (self.refresh_sweeps(), self.refresh_progress(), self.refresh_results()))
        # a wrapping flex row of fixed-width widgets: the four selects at Panel's default width (300 px)
        # in a plain Row made the page ~1900 px wide (issue 6); here they wrap below ~1300 px of room
        sel = {"width": 180, "sizing_mode": "fixed"}
        controls = pn.FlexBox(
            pn.widgets.Select.from_param(self.param.sweep, label="Sweep", **sel),
            pn.widgets.Select.from_param(self.param.metric, label="Metric", **sel),
            pn.widgets.Select.from_param(self.param.x_param, label="x", **sel),
            pn.widgets.Select.from_param(self.param.group_by, label="Lines by", **sel),
            pn.widgets.Checkbox.from_param(self.param.log_x, label="log x", width=60, align="end"),
            pn.widgets.Checkbox.from_param(self.param.log_y, label="log y", width=60, align="end"),
            refresh, flex_wrap="wrap", align_items="flex-end", sizing_mode="stretch_width")
        # dynamic: a tab's figures and tables are sent to the browser when it is opened (page load, issue 13)
        self.tabs = pn.Tabs(
            ("Metric vs hyperparameter", self.plot), ("Parallel coordinates", self.parcoords), ("Table", self.results),
            ("Importance", pn.Column(self.importance_md, self.importance)),
            ("Performance profile", pn.Column(self.profile_md, self.profile, self.score)), dynamic=True)
        self.tabs.param.watch(self._on_tab, "active")
        load_plotly_after_first_paint()  # for the other tabs' figures
        export = pn.Column(sizing_mode="stretch_width")

        def add_export() -> None:
            export.objects = [ExportPanel(figure=self.figure, data=self.data, basename="sweep")]

        if self.lazy:
            pn.state.onload(add_export)  # ~40 models below the figure: the visible part first (issue 13)
        else:
            add_export()
        results = pn.Column(controls, self.progress_md, self.progress, self.tabs, export, sizing_mode="stretch_width")
        return pn.Row(self.define, results, sizing_mode="stretch_width")

