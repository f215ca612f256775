"""Live monitor: watch runs train, curves of every metric updating as the store is written.

How the live path works (see /work/shared/dashboard-notes.md): one periodic callback per browser
session (``period_ms``, 300 ms) tails the run store with a cursor (``RunStore.tail``: the rows
committed after the last one seen, from any process), appends them to per-(run, metric) buffers
kept on the server, and sends only the new points to the browser with Bokeh
``ColumnDataSource.stream(..., rollover=...)`` — figures are not re-sent. Each displayed series is
decimated with :func:`workbench.curves.minmax_indices` (spikes kept) to ``max_points``; when
streaming has grown it by a quarter (``REDECIMATE``), that one series is re-decimated, so the points
held by the browser, and its memory, stay bounded: BokehJS keeps a few hundred bytes per drawn point
(data, screen coordinates, hit-test index; a bare Bokeh page streaming 64 lines grew ~5 MiB/min), and
with re-decimation at 2x the heap still climbed over a 5-minute bench (bench/dashboard_bench.py).
Smoothing is the debiased EMA of :func:`workbench.curves.ema`, continued incrementally on new points;
the raw curve is drawn faint behind. Grouping colours runs by a hyperparameter; with bands, each group is one mean line and a
min/max band across its runs (:func:`workbench.curves.band_on_grid`, recomputed at most once a
second). Widget changes rebuild the figures from the server-side buffers.

Figures draw on a 2-D canvas by default (``backend``): with every line decimated to ``max_points``, canvas
keeps up, while WebGL on a machine without a GPU (software rendering, as in headless Chromium) delayed
each new point by about a second (bench/dashboard_bench.py, 8 runs: p50 1.10 s with webgl, 0.19 s canvas).

Live plotting uses Bokeh (append-only streaming); export goes through the plotly builder
:func:`workbench.figures.curves.curves_figure` and :class:`workbench.apps.export.ExportPanel`.
Each ColumnDataSource is named ``wb-src|<run>|<metric>`` so tests and the dashboard bench can
find the points drawn in the page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

from workbench.apps.base import AppBase, escape, guarded, options
from workbench.apps.export import ExportPanel
from workbench.curves import EmaState, band_on_grid, ema, minmax_indices
from workbench.figures.curves import (
    GROKKING_METRICS,
    colour_map,
    curves_figure,
    is_test_metric,
    metric_panels,
)

try:  # the engine's list of metric names, for ordering; the store's names are used either way
    from workbench.metrics import METRIC_NAMES
except Exception:  # pragma: no cover - engine not there yet
    METRIC_NAMES = ()

ALL = "(all)"


class _Grow:
    """A float64 array with amortised O(1) append."""

    def __init__(self, data: np.ndarray) -> None:
        self._a = np.asarray(data, dtype=float).copy()
        self.n = self._a.size

    def extend(self, v: np.ndarray) -> None:
        v = np.asarray(v, dtype=float)
        if self.n + v.size > self._a.size:
            new = np.empty(max(2 * self._a.size, self.n + v.size, 16))
            new[: self.n] = self._a[: self.n]
            self._a = new
        self._a[self.n: self.n + v.size] = v
        self.n += v.size

    @property
    def a(self) -> np.ndarray:
        return self._a[: self.n]


@dataclass
class Series:
    """One run's metric on the server: all its points, its smoothing state and its browser source."""

    run: str
    name: str
    step: _Grow
    tokens: _Grow
    wall: _Grow
    value: _Grow
    last_id: int
    smooth: _Grow = field(default_factory=lambda: _Grow(np.array([])))
    state: EmaState = field(default_factory=EmaState)
    source: ColumnDataSource | None = None
    shown: int = 0
    smoothed_with: float | None = None  # the smoothing weight ``smooth`` was computed with


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
    follow = param.Boolean(default=True, doc="Add new runs that match the filters as they start")
    view_mode = param.Selector(default="all metrics", objects=["all metrics", "grokking"])
    metrics = param.ListSelector(default=[], objects=[], doc="Metrics shown")
    x_axis = param.Selector(default="step", objects=["step", "tokens", "wall"])
    log_x = param.Boolean(default=False)
    log_y = param.Boolean(default=False)
    smoothing = param.Number(default=0.6, bounds=(0.0, 0.999), doc="Debiased EMA weight (0: raw)")
    overlay = param.Boolean(default=True, doc="Train and test of a metric in one panel")
    color_by = param.Selector(default="run", objects=["run"], doc="Colour (and group) by this config key")
    bands = param.Boolean(default=False, doc="Mean line and min/max band across each group's runs")
    live = param.Boolean(default=True, doc="Tail the store")
    max_points = param.Integer(default=1500, bounds=(50, 20000), doc="Points per displayed line")
    max_runs = param.Integer(default=64, bounds=(1, 512), doc="Runs selected by default")
    period_ms = param.Integer(default=300, bounds=(100, 5000))
    backend = param.Selector(default="canvas", objects=["canvas", "webgl"],
                             doc="Bokeh output backend. Lines are decimated to max_points, so canvas is fast; "
                                 "webgl without a GPU (software rendering) made a 8-run live page 5x slower")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._series: dict[tuple[str, str], Series] = {}
        self._cursor = 0
        self._runs_df = pd.DataFrame()
        self._labels: dict[str, str] = {}
        self._group_sources: dict[tuple[str, Any], ColumnDataSource] = {}
        self._bands_dirty = False
        self._bands_at = 0.0
        self._info_at = 0.0
        self._rollover = 4 * self.max_points
        self.plots = pn.FlexBox(sizing_mode="stretch_width")
        self.info = pn.pane.Markdown("", margin=(0, 10), css_classes=["wb-monitor-info"])
        self.export = ExportPanel(figure=self.plotly_figure, data=self.current_data, basename="monitor")
        self._started = False
        self._building = False
        try:
            self._building = True  # choosing the initial runs must not trigger a rebuild of its own
            try:
                self.refresh_runs(initial=True)
            finally:
                self._building = False
            self.rebuild()
        except Exception as e:
            self.show_error(f"**{type(e).__name__}**: {e}")

    # ------------------------------------------------------------------ runs and metric names
    def _matching(self) -> pd.DataFrame:
        df = self._runs_df
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
        """Re-read the runs table, update the filter widgets' options; returns newly matching runs."""
        df = self.store.runs(expand_config=True)
        self._runs_df = df
        if df.empty:
            return []
        self._labels = {r: f"{n} [{r[:6]}]" if n != r else r for r, n in zip(df["id"], df["name"])}
        cfg_keys = [c for c in df.columns if c.startswith("cfg.")]
        self.param.sweep.objects = [ALL, *sorted(s for s in df["sweep"].dropna().unique())]
        self.param.task.objects = [ALL, *sorted(t for t in df["task"].dropna().unique() if t)]
        self.param.hp_key.objects = [ALL, *cfg_keys]
        self.param.color_by.objects = ["run", *cfg_keys]
        match = self._matching()
        ids = df["id"].tolist()
        self.param.runs.objects = {escape(self._labels[r]): r for r in ids}
        new = [r for r in match["id"] if r not in self.runs]
        if initial:
            self.runs = match["id"].tolist()[-self.max_runs:]
            return self.runs
        if self.follow and new:
            self.runs = [*self.runs, *new]
        return new

    def _names_of(self, run_ids: list[str]) -> list[str]:
        names: set[str] = set()
        for r in run_ids:
            names.update(self.store.metric_names(r))
        order = {n: i for i, n in enumerate(METRIC_NAMES)}
        return sorted(names, key=lambda n: (order.get(n, len(order)), n))

    def _default_metrics(self, names: list[str]) -> list[str]:
        if self.view_mode == "grokking":
            return [n for n in GROKKING_METRICS if n in names] or names[:8]
        plain = [n for n in names if "/" not in n]
        return plain[:8]

    # ------------------------------------------------------------------ data
    def _load(self, run_ids: list[str], names: list[str]) -> None:
        need = [(r, n) for r in run_ids for n in names if (r, n) not in self._series]
        if not need:
            return
        if not self._cursor:  # rows committed after this are streamed by the tail (none lost: last_id)
            self._cursor = self.store.cursor()
        for r, n in need:  # numeric arrays per series (RunStore.series), not one big DataFrame
            self._series[(r, n)] = self._new_series(r, n, self.store.series(r, n))

    def _new_series(self, r: str, n: str, d: dict[str, np.ndarray]) -> Series:
        s = Series(r, n, _Grow(d["step"]), _Grow(d["tokens"]), _Grow(d["wall"]), _Grow(d["value"]),
                   int(d["id"].max()) if len(d["id"]) else 0)
        self._smooth(s)
        return s

    def _smooth(self, s: Series) -> None:
        """(Re)compute the series' EMA when the smoothing weight changed since it was last computed."""
        if s.smoothed_with == self.smoothing:
            return
        if self.smoothing:
            sm, s.state = ema(s.value.a, self.smoothing, return_state=True)
        else:
            sm, s.state = s.value.a, EmaState()
        s.smooth = _Grow(sm)
        s.smoothed_with = self.smoothing

    def _x(self, s: Series, sl: slice | np.ndarray = slice(None)) -> np.ndarray:
        if self.x_axis == "step":
            return s.step.a[sl]
        if self.x_axis == "tokens":
            return s.tokens.a[sl]
        t0 = s.wall.a[0] if s.wall.n else 0.0
        return s.wall.a[sl] - t0

    def _display(self, s: Series) -> dict[str, np.ndarray]:
        idx = minmax_indices(s.value.a, self.max_points) if s.value.n > self.max_points else slice(None)
        y = s.value.a[idx]
        ys = s.smooth.a[idx] if self.smoothing else y
        return {"x": self._x(s, idx), "y": y, "ys": ys, "step": s.step.a[idx]}

    # ------------------------------------------------------------------ figures
    @param.depends("runs", "metrics", "x_axis", "log_x", "log_y", "smoothing", "overlay", "color_by", "bands",
                   "max_points", "backend", watch=True)
    def _on_change(self) -> None:
        if not self._building:
            self.rebuild()

    @param.depends("sweep", "task", "status", "hp_key", "hp_values", watch=True)
    def _on_filter(self) -> None:
        if self.hp_key != ALL and self.hp_key in self._runs_df:
            self.param.hp_values.objects = options(sorted(self._runs_df[self.hp_key].astype(str).unique()))
        match = self._matching()["id"].tolist()
        self.runs = match[-self.max_runs:]

    @param.depends("view_mode", watch=True)
    def _on_view(self) -> None:
        self.metrics = self._default_metrics(list(self.param.metrics.objects))

    @guarded
    def rebuild(self) -> None:
        """Rebuild every figure from the server-side buffers (loading what is missing from the store)."""
        self.clear_message()
        self._building = True
        try:
            names = self._names_of(self.runs) if self.runs else []
            self.param.metrics.objects = options(names)
            if not self.metrics or not set(self.metrics) <= set(names):
                self.metrics = [n for n in self.metrics if n in names] or self._default_metrics(names)
            self._rollover = 4 * self.max_points
            self._load(self.runs, self.metrics)
            if not self._cursor:
                self._cursor = self.store.cursor()
        finally:
            self._building = False
        self._group_sources = {}
        for s in self._series.values():
            s.source = None
            s.shown = 0
        for s in self._series.values():
            self._smooth(s)
        if not self.runs:
            self.plots.objects = [pn.pane.Markdown("No runs match the filters yet. Runs appear here as they "
                                                   "start (`workbench run ...`, or a sweep).")]
            self._update_info()
            return
        keys = self._colour_keys()
        cmap = colour_map(list(dict.fromkeys(keys.values())))
        figs = []
        for panel, members in metric_panels(self.metrics, overlay=self.overlay):
            figs.append(self._figure(panel, members, keys, cmap))
        self.plots.objects = [pn.pane.Bokeh(f, sizing_mode="fixed", width=560, height=300) for f in figs]
        self._update_info()

    def _colour_keys(self) -> dict[str, Any]:
        if self.color_by == "run" or self._runs_df.empty or self.color_by not in self._runs_df:
            return {r: r for r in self.runs}
        m = dict(zip(self._runs_df["id"], self._runs_df[self.color_by]))
        return {r: m.get(r) for r in self.runs}

    def _figure(self, panel: str, members: list[str], keys: dict, cmap: dict) -> Any:
        f = figure(title=panel, height=300, width=560, output_backend=self.backend,
                   x_axis_type="log" if self.log_x else "linear", y_axis_type="log" if self.log_y else "linear",
                   tools="pan,wheel_zoom,box_zoom,reset,save", x_axis_label={"wall": "wall time (s)"}.get(
                       self.x_axis, self.x_axis))
        f.add_tools(HoverTool(tooltips=[("", "$name"), ("x", "$x{0.[000]}"), ("y", "$y{0.[0000]}")]))
        grouped = self.bands and self.color_by != "run"
        for name in members:
            dash = "dashed" if is_test_metric(name) and len(members) > 1 else "solid"
            if grouped:
                for g in dict.fromkeys(keys.values()):
                    src = ColumnDataSource({"x": [], "mean": [], "lo": [], "hi": []},
                                           name=f"wb-grp|{g}|{name}")
                    self._group_sources[(name, g)] = src
                    c = cmap.get(g, "#888888")
                    f.varea(x="x", y1="lo", y2="hi", source=src, fill_color=c, fill_alpha=0.18)
                    f.line(x="x", y="mean", source=src, color=c, line_dash=dash, line_width=2,
                           name=f"{self.color_by.removeprefix('cfg.')}={g} {name}")
                self._bands_dirty = True
                continue
            for r in self.runs:
                s = self._series.get((r, name))
                if s is None:
                    continue
                s.source = ColumnDataSource(self._display(s), name=f"wb-src|{r}|{name}")
                s.shown = len(s.source.data["x"])
                c = cmap.get(keys.get(r), "#888888")
                label = self._labels.get(r, r)
                if self.smoothing:
                    f.line(x="x", y="y", source=s.source, color=c, alpha=0.2, line_width=1, line_dash=dash)
                f.line(x="x", y="ys", source=s.source, color=c, line_width=1.6, line_dash=dash,
                       name=f"{label} {name}")
        if grouped:
            self._update_bands(force=True)
        return f

    def _update_bands(self, force: bool = False) -> None:
        if not self._group_sources or not (self._bands_dirty or force):
            return
        if not force and time.monotonic() - self._bands_at < 1.0:
            return
        keys = self._colour_keys()
        for (name, g), src in self._group_sources.items():
            members = [self._series[(r, name)] for r in self.runs if keys.get(r) == g and (r, name) in self._series]
            xs = [self._x(s) for s in members]
            ys = [s.smooth.a if self.smoothing else s.value.a for s in members]
            grid, mean, lo, hi, _ = band_on_grid(xs, ys, n=min(self.max_points, 1000), log_x=self.log_x)
            src.data = {"x": grid, "mean": mean, "lo": lo, "hi": hi}
        self._bands_dirty = False
        self._bands_at = time.monotonic()

    # ------------------------------------------------------------------ live
    def tick(self) -> int:
        """One poll of the store: stream the rows committed since the cursor; returns rows applied."""
        if not self.live:
            return 0
        df, cursor = self.store.tail(since=self._cursor, limit=500_000)
        self._cursor = cursor
        if df.empty:
            return 0
        known = set(self._runs_df["id"]) if not self._runs_df.empty else set()
        if not set(df["run"].unique()) <= known:
            new = self.refresh_runs()
            if new and self.follow:
                return len(df)  # the runs change triggers a rebuild that loads their history
        shown = set(self.runs)
        wanted = set(self.metrics)
        df = df[df["run"].isin(shown) & df["name"].isin(wanted)]
        applied = 0
        for (r, n), g in df.groupby(["run", "name"], sort=False):
            s = self._series.get((r, n))
            if s is None:
                continue
            g = g[g["id"] > s.last_id]
            if g.empty:
                continue
            s.last_id = int(g["id"].max())
            start = s.value.n
            s.step.extend(g["step"].to_numpy(float))
            s.tokens.extend(g["tokens"].to_numpy(float))
            s.wall.extend(g["wall"].to_numpy(float))
            s.value.extend(g["value"].to_numpy(float))
            if self.smoothing:
                sm, s.state = ema(g["value"].to_numpy(float), self.smoothing, state=s.state, return_state=True)
                s.smooth.extend(sm)
            applied += len(g)
            self._bands_dirty = True
            if s.source is None:
                continue
            if s.shown + len(g) > REDECIMATE * self.max_points:
                s.source.data = self._display(s)
                s.shown = len(s.source.data["x"])
            else:
                sl = slice(start, s.value.n)
                new = {"x": self._x(s, sl), "y": s.value.a[sl], "ys": s.smooth.a[sl] if self.smoothing
                       else s.value.a[sl], "step": s.step.a[sl]}
                s.source.stream(new, rollover=self._rollover)
                s.shown = min(s.shown + len(g), self._rollover)
        self._update_bands()
        if applied and time.monotonic() - self._info_at > 2.0:  # the text re-renders: not every tick
            self._update_info()
        return applied

    @guarded
    def _tick_guarded(self) -> None:
        with pn.io.hold():  # one websocket message for all the streams of this tick
            self.tick()

    def _update_info(self) -> None:
        self._info_at = time.monotonic()
        n_pts = sum(s.value.n for s in self._series.values() if s.run in set(self.runs))
        running = 0
        if not self._runs_df.empty:
            running = int(self._runs_df[self._runs_df["id"].isin(self.runs)]["status"].eq("running").sum())
        self.info.object = (f"{len(self.runs)} runs ({running} running) · {len(self.metrics)} metrics · "
                            f"{n_pts:,} points · cursor {self._cursor}")

    # ------------------------------------------------------------------ export
    def current_data(self) -> pd.DataFrame | None:
        """The shown runs' shown metrics, long form (what CSV / Parquet export writes)."""
        parts = [pd.DataFrame({"run": s.run, "name": s.name, "step": s.step.a.astype(np.int64), "tokens": s.tokens.a,
                               "wall": s.wall.a, "value": s.value.a})
                 for s in self._series.values() if s.run in set(self.runs) and s.name in set(self.metrics)]
        parts = [p for p in parts if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else None

    def plotly_figure(self) -> Any:
        """The current view as a plotly figure (for PNG / SVG / PDF / HTML export)."""
        df = self.current_data()
        if df is None:
            return None
        runs = self._runs_df[self._runs_df["id"].isin(self.runs)] if not self._runs_df.empty else None
        return curves_figure(df, runs, names=self.metrics, x=self.x_axis, log_x=self.log_x, log_y=self.log_y,
                             smoothing=self.smoothing, color_by=None if self.color_by == "run" else self.color_by,
                             bands=self.bands and self.color_by != "run", overlay=self.overlay,
                             max_points=self.max_points, title="workbench · live monitor")

    # ------------------------------------------------------------------ view
    def view(self) -> pn.viewable.Viewable:
        if not self._started:
            self._started = True
            self.add_periodic(self._tick_guarded, self.period_ms)
        w = pn.widgets
        controls = pn.Column(
            "### Runs",
            w.Select.from_param(self.param.sweep, label="sweep"),
            w.Select.from_param(self.param.task, label="task"),
            w.MultiChoice.from_param(self.param.status, label="status"),
            w.Select.from_param(self.param.hp_key, label="hyperparameter filter"),
            w.MultiChoice.from_param(self.param.hp_values, label="values"),
            w.MultiChoice.from_param(self.param.runs, label="runs", max_items=512, css_classes=["wb-runs"]),
            w.Checkbox.from_param(self.param.follow, label="follow new runs"),
            "### Curves",
            w.RadioButtonGroup.from_param(self.param.view_mode, css_classes=["wb-view"]),
            w.MultiChoice.from_param(self.param.metrics, label="metrics", css_classes=["wb-metrics"]),
            w.RadioButtonGroup.from_param(self.param.x_axis, css_classes=["wb-xaxis"]),
            pn.Row(w.Checkbox.from_param(self.param.log_x, label="log x", css_classes=["wb-logx"]),
                   w.Checkbox.from_param(self.param.log_y, label="log y", css_classes=["wb-logy"])),
            w.FloatSlider.from_param(self.param.smoothing, label="smoothing (EMA)", step=0.01,
                                     css_classes=["wb-smoothing"]),
            w.Checkbox.from_param(self.param.overlay, label="train / test in one panel"),
            w.Select.from_param(self.param.color_by, label="colour / group by"),
            w.Checkbox.from_param(self.param.bands, label="mean + min/max band per group"),
            w.Toggle.from_param(self.param.live, label="live", color="success"),
            width=300, sizing_mode="fixed",
        )
        return pn.Row(controls, pn.Column(self.info, self.plots, self.export, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")


REDECIMATE = 1.25
"""A displayed series is re-decimated to ``max_points`` once streaming has grown it past this factor."""

PROBE_JS = """
() => {
  if (window.__wb) return true;
  const CAP = 5000;  // records kept per source, in a preallocated ring: the probe itself does not grow
  window.__wb = {log: {}};
  const record = () => {
    const rec = {max: -1, n: 0, buf: new Float64Array(3 * CAP)};
    Object.defineProperty(rec, 'seen', {enumerable: false, get() {
      const out = [], k0 = Math.max(0, this.n - CAP);
      for (let k = k0; k < this.n; k++) {
        const i = 3 * (k % CAP);
        out.push([this.buf[i], this.buf[i + 1], this.buf[i + 2]]);
      }
      return out;
    }});
    return rec;
  };
  window.__wb.dump = () => {
    const out = {};
    for (const [n, rec] of Object.entries(window.__wb.log)) out[n] = {max: rec.max, seen: rec.seen};
    return out;
  };
  const scan = () => {
    for (const doc of (window.Bokeh && window.Bokeh.documents) || []) {
      for (const m of doc.all_models) {
        const n = m.name;
        if (!n || !n.startsWith('wb-src|') || !m.data || !m.data.step) continue;
        const st = m.data.step, len = st.length, last = len ? st[len - 1] : -1;
        const rec = window.__wb.log[n] || (window.__wb.log[n] = record());
        if (last > rec.max) {
          rec.max = last;
          const i = 3 * (rec.n % CAP);
          rec.buf[i] = Date.now() / 1000; rec.buf[i + 1] = last; rec.buf[i + 2] = len;
          rec.n += 1;
        }
      }
    }
    requestAnimationFrame(scan);
  };
  requestAnimationFrame(scan);
  return true;
}
"""
"""JavaScript for tests and ``bench/dashboard_bench.py``: installs a per-frame scan of the page's Bokeh
sources ``wb-src|<run>|<metric>`` that records ``[time (s), last step, points]`` each time a new step is
drawn (just before the frame is painted): ``window.__wb.log[name].seen`` (the last 5 000, kept in a
preallocated ring so the probe does not grow the heap it helps measure), ``window.__wb.dump()`` for all."""
