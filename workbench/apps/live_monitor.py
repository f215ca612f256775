"""Live monitor: watch runs train, curves of every metric updating as the store is written.

It stays live at 64-256 runs x 10^5-10^6 points (the design and its measurements: ``docs/monitor.md``):
the first paint reads the store's per-block min/max summaries (``RunStore.overview``), so page load does
not scale with history; one periodic callback per session tails the store and streams each series' new
rows only, folding them into a server-side min/max summary now and then (O(new rows) per tick); a zoom
re-reads the visible step range from the store at full resolution; new runs get rows added to the open
figures, never a rebuild; with many runs, ``bands`` draws a mean line and band per group of ``color_by``.
Smoothing (a debiased EMA) is never applied to the learning rate.

:class:`LiveMonitor` holds the filters and the choice of runs and metrics; the pieces are components:
``monitor_series.SeriesBook`` (the series on the server), ``monitor_figures.MonitorFigures`` (figures,
sources, bands, labels, per-run overlays), ``monitor_live.MonitorFeed`` (tick, zoom, new runs) and
``monitor_controls.MonitorSettings`` (rarely changed options: ``LiveMonitor(max_points=...)`` passes them
on); the code map is in ``docs/monitor.md``. :func:`live_run_view` shows a background run in a notebook:
a progress bar over this monitor.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param

from workbench.apps.base import AppBase, escape, guarded, held, options
from workbench.apps.components.monitor_controls import REDRAW, MonitorSettings, RunProgress, monitor_controls
from workbench.apps.components.monitor_export import current_data, plotly_figure
from workbench.apps.components.monitor_figures import MonitorFigures
from workbench.apps.components.monitor_forecast import ForecastOverlay
from workbench.apps.components.monitor_forks import group_forks
from workbench.apps.components.monitor_legend import legend_html
from workbench.apps.components.monitor_live import MonitorFeed
from workbench.apps.components.monitor_series import ROW_COLS, SeriesBook
from workbench.apps.export import ExportPanel
from workbench.figures.curves import GROKKING_METRICS
from workbench.metric_names import (
    METRIC_NAMES,  # the engine's order (torch-free: a page need not import torch)
)

ALL = "(all)"
FIRST_PANELS = 2
"""A served page is sent with its first row of panels (~44 Bokeh models each: 2 drew the reference monitor in
1.35-1.47 s warm, 4 in 1.58-1.70 s) and the sidebar's run controls; the rest follow once it has loaded (issue 13)."""


class LiveMonitor(AppBase):
    """Curves of the selected runs' metrics, updated live from the run store."""

    title = "Live monitor"

    sweep = param.Selector(default=ALL, objects=[ALL], doc="Only runs of this sweep")
    task = param.Selector(default=ALL, objects=[ALL], doc="Only runs of this task")
    status = param.ListSelector(default=["running", "finished"],
                                objects=["running", "finished", "diverged", "failed", "interrupted", "pruned"])
    hp_key = param.Selector(default=ALL, objects=[ALL], doc="Filter by this hyperparameter (config key)")
    hp_values = param.ListSelector(default=[], objects=[], doc="... keeping these values")
    runs = param.ListSelector(default=[], objects=[], doc="Runs shown")
    view_mode = param.Selector(default="all metrics", objects=["all metrics", "grokking"])
    metrics = param.ListSelector(default=[], objects=[], doc="Metrics shown")
    x_axis = param.Selector(default="step", objects=["step", "tokens", "wall"])
    smoothing = param.Number(default=0.6, bounds=(0.0, 0.999), doc="Debiased EMA weight (0: raw)")
    color_by = param.Selector(default="run", objects=["run"], doc="Colour (and group) by this config key")
    bands = param.Boolean(default=False, doc="One mean line and band per group instead of every run")
    live = param.Boolean(default=True, doc="Tail the store")
    settings = param.ClassSelector(class_=MonitorSettings, doc="Display and performance options")

    def __init__(self, **params: Any) -> None:
        opts = {k: params.pop(k) for k in list(params) if k in MonitorSettings.param and k != "name"}
        params.setdefault("settings", MonitorSettings(**opts))
        super().__init__(**params)
        self.run_table = pd.DataFrame()
        self.run_labels: dict[str, str] = {}  # run id -> "name [id]" (selection, hover)
        self.run_names: dict[str, str] = {}
        self.book = SeriesBook(self)
        self.feed = MonitorFeed(self, self.book, MonitorFigures(self, self.book, lambda **kw: self.feed.on_range(**kw)))
        self.figs = self.feed.figs
        self.figs.overlays.append(ForecastOverlay(self))  # each running run's forecast band and flag
        self._info_at = 0.0
        self.plots = pn.FlexBox(sizing_mode="stretch_width")
        self.info = pn.pane.Markdown("", margin=(0, 10), css_classes=["wb-monitor-info"])
        self.legend = pn.pane.HTML("", margin=(0, 10), sizing_mode="stretch_width", css_classes=["wb-monitor-legend"])
        self.export = ExportPanel(figure=self.plotly_figure, data=self.current_data, basename="monitor")
        self._tail = pn.Column(sizing_mode="stretch_width")  # the export controls, once the page has loaded
        self._later: list = []  # what else is added then (monitor_controls)
        self._started = False
        self._building = False
        self._loaded = not (pn.state.curdoc is not None and pn.state.curdoc.session_context is not None)
        if self._loaded:
            self._tail.objects = [self.export]
        else:
            pn.state.onload(self._on_load)
        self.settings.param.watch(self._on_change, list(REDRAW))
        try:
            self._building = True  # choosing the initial runs must not trigger a rebuild of its own
            try:
                self.refresh_runs(initial=True)
                self._apply_url_args()
            finally:
                self._building = False
            self.rebuild()
        except Exception as e:
            self.show_error(f"**{type(e).__name__}**: {e}")

    def _apply_url_args(self) -> None:
        """``?color_by=cfg.lr&bands=1&band=quartiles`` open the page grouped (only known keys are taken)."""
        args = {k: v[0].decode("utf-8", "replace") for k, v in (getattr(pn.state, "session_args", None) or {}).items()
                if v}
        arg = args.get
        if arg("color_by") in self.param.color_by.objects:
            self.color_by = arg("color_by")
        if arg("bands") in ("1", "true"):
            self.bands = True
        if arg("band") in self.settings.param.band.objects:
            self.settings.band = arg("band")

    # ------------------------------------------------------------------ runs and metric names
    def _matching(self) -> pd.DataFrame:
        df = self.run_table
        if df.empty:
            return df
        m = df["status"].isin(self.status)
        if self.sweep != ALL:
            m &= df["sweep"] == self.sweep
        if self.task != ALL:
            m &= df["task"] == self.task
        if self.hp_key != ALL and self.hp_values and self.hp_key in df:
            m &= df[self.hp_key].astype(str).isin(self.hp_values)
        return df[m]

    def refresh_runs(self, initial: bool = False) -> list[str]:
        """Re-read the runs table, update the filter widgets' options; returns newly matching runs
        (when ``follow`` is on, they are added to ``runs``)."""
        df, forks = group_forks(self.store, self.store.runs(expand_config=True))  # forks under their parent
        self.run_table = df
        if df.empty:
            return []
        self.run_labels = {r: ("↳ " if r in forks else "") + (f"{n} [{r[:6]}]" if n != r else r)
                           for r, n in zip(df["id"], df["name"])}
        self.run_names = dict(zip(df["id"], df["name"]))
        # only config keys that differ between runs: grouping or filtering by a constant says nothing
        cfg_keys = [c for c in df.columns if c.startswith("cfg.") and df[c].astype(str).nunique(dropna=False) > 1]
        self.param.sweep.objects = [ALL, *sorted(s for s in df["sweep"].dropna().unique())]
        self.param.task.objects = [ALL, *sorted(t for t in df["task"].dropna().unique() if t)]
        self.param.hp_key.objects = [ALL, *cfg_keys]
        self.param.color_by.objects = ["run", *cfg_keys]
        match = self._matching()
        self.param.runs.objects = {escape(self.run_labels[r]): r for r in df["id"]}
        new = [r for r in match["id"] if r not in self.runs]
        if initial:
            self.runs = match["id"].tolist()[-self.settings.max_runs:]
            return self.runs
        if self.settings.follow and new:
            self.runs = [*self.runs, *new]
        return new

    def discover_runs(self) -> list[str]:
        """Re-read the runs table after rows of an unknown run arrived; returns the runs added to ``runs``
        (the feed adds them to the open figures: no rebuild)."""
        before = list(self.runs)
        self._building = True
        try:
            new = self.refresh_runs()
        finally:
            self._building = False
        return [r for r in self.runs if r not in before] if new and self.settings.follow else []

    def _names_of(self, run_ids: list[str]) -> list[str]:
        names: set[str] = set()
        for r in run_ids:
            names.update(self.store.metric_names(r))
        order = {n: i for i, n in enumerate(METRIC_NAMES)}
        return sorted(names, key=lambda n: (order.get(n, len(order)), n))

    def _default_metrics(self, names: list[str]) -> list[str]:
        if self.view_mode == "grokking":
            return [n for n in GROKKING_METRICS if n in names] or names[:8]
        return [n for n in names if "/" not in n][:8]

    # ------------------------------------------------------------------ figures
    @param.depends("runs", "metrics", "x_axis", "smoothing", "color_by", "bands", watch=True)
    def _on_change(self, *_: Any) -> None:
        if not self._building:
            self.rebuild()

    @param.depends("sweep", "task", "status", "hp_key", "hp_values", watch=True)
    def _on_filter(self) -> None:
        if self.hp_key != ALL and self.hp_key in self.run_table:
            self.param.hp_values.objects = options(sorted(self.run_table[self.hp_key].astype(str).unique()))
        self.runs = self._matching()["id"].tolist()[-self.settings.max_runs:]

    @param.depends("view_mode", watch=True)
    def _on_view(self) -> None:
        self.metrics = self._default_metrics(list(self.param.metrics.objects))

    @guarded(serial=True)
    def rebuild(self) -> None:
        """Rebuild every figure from the server-side summaries (loading what is missing from the store)."""
        self.clear_message()
        self._building = True
        try:
            names = self._names_of(self.runs) if self.runs else []
            self.param.metrics.objects = options(names)
            if not self.metrics or not set(self.metrics) <= set(names):
                self.metrics = [n for n in self.metrics if n in names] or self._default_metrics(names)
            self.book.load([(r, n) for r in self.runs for n in self.metrics])
            if not self.book.cursor:
                self.book.cursor = self.store.cursor()
        finally:
            self._building = False
        self.feed.zoom_req = {}
        if not self.runs:
            self.figs.build([])
            self.plots.objects = [pn.pane.Markdown("No runs match the filters yet. Runs appear here as they "
                                                   "start (`workbench run ...`, or a sweep).")]
        else:
            figs = self.figs.build(self.metrics, None if self._loaded else FIRST_PANELS)
            self.plots.objects = [pn.pane.Bokeh(f, sizing_mode="fixed", width=560, height=300) for f in figs]
        self.update_info()

    @guarded(serial=True)
    def _on_load(self) -> None:
        """The page has loaded: add the panels not sent with it, and the export controls."""
        self._loaded = True
        with pn.io.hold():
            self.plots.extend([pn.pane.Bokeh(f, sizing_mode="fixed", width=560, height=300)
                               for f in self.figs.build_rest()])
            self._tail.objects = [self.export]
            for add in self._later:
                add()

    def drawn(self, run: str, name: str) -> dict[str, np.ndarray]:
        """What the browser holds of one run's metric (``x, y, ys, step``; the NaN room cut off): the
        server's copy of its row, which the sent patches keep equal to the browser's."""
        s = self.book.series[(run, name)]
        if s.layer is None:
            raise KeyError(f"{run} {name}: not drawn")
        self.figs.flush()
        n = s.shown["x"].n
        d = s.layer.source.data
        return {k: np.asarray(d[col][s.row][:n]) for col, k in zip(ROW_COLS, ("x", "ys", "y", "step"))}

    # ------------------------------------------------------------------ live
    def tick(self) -> int:
        """One poll of the store: stream the rows committed since the cursor; returns rows applied."""
        applied = self.feed.tick()
        if applied and time.monotonic() - self._info_at > 2.0:  # the text re-renders: not every tick
            self.update_info(legend=False)  # rows change the counts, not the runs the legend names
        return applied

    @guarded(serial=True)
    def _tick_guarded(self) -> None:
        with held(self.plots):  # one message for all the streams of this tick (in a notebook too)
            self.tick()

    def update_info(self, legend: bool = True) -> None:
        self._info_at = time.monotonic()
        shown = set(self.runs)
        n_pts = sum(s.n for s in self.book.series.values() if s.run in shown)
        running = 0
        if not self.run_table.empty:
            running = int(self.run_table[self.run_table["id"].isin(self.runs)]["status"].eq("running").sum())
        hint = ""
        if len(self.runs) > 48 and not self.figs.grouped:
            hint = " · many runs: try *colour / group by* a config key with bands"
        html = legend_html(self.figs) if legend and self.figs.figs else None
        if html is not None and html != self.legend.object:  # the runs shown or their groups changed
            self.legend.object = html
        self.info.object = (f"{len(self.runs)} runs ({running} running) · {len(self.metrics)} metrics · "
                            f"{n_pts:,} points · cursor {self.book.cursor}{hint}")

    # ------------------------------------------------------------------ export
    def current_data(self) -> pd.DataFrame | None:
        """The shown runs' shown metrics at full resolution, long form (what CSV / Parquet export writes)."""
        return current_data(self)

    def plotly_figure(self) -> Any:
        """The current view as a plotly figure (for PNG / SVG / PDF / HTML export)."""
        return plotly_figure(self)

    # ------------------------------------------------------------------ view
    def view(self) -> pn.viewable.Viewable:
        if not self._started:
            self._started = True
            self.add_periodic(self._tick_guarded, self.settings.period_ms)
        main = pn.Column(self.info, self.legend, self.plots, self._tail, sizing_mode="stretch_width")
        return pn.Row(monitor_controls(self, None if self._loaded else self._later), main, sizing_mode="stretch_width")


def live_run_view(handle: Any, **monitor_params: Any) -> pn.viewable.Viewable:
    """A background run (:func:`workbench.background.start_run`'s handle) live in a notebook: a progress
    bar with its status and step over a :class:`LiveMonitor` on its store (``monitor_params`` go to the
    monitor; by default the grokking view, updated every second). The cell returns at once; Jupyter runs
    the periodic updates whenever the kernel is idle."""
    params = {"view_mode": "grokking", "period_ms": 1000, **monitor_params}
    monitor = LiveMonitor(store_path=str(handle.store_path), **params)
    return pn.Column(RunProgress(handle, period_ms=params["period_ms"]), monitor, sizing_mode="stretch_width")
