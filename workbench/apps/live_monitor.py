"""Live monitor: watch runs train, curves of every metric updating as the store is written.

How it stays live at 64-256 runs x 10^5-10^6 points (the design is in ``docs/monitor.md``):

- **First paint from summaries.** The store keeps a min/max summary per block of 128 steps of every
  series (``metric_blocks``, updated in the transaction that writes the rows); the page reads
  :meth:`RunStore.overview` (one snapshot for every series and the cursor), so page load depends on the
  number of buckets on screen, not on the rows in the store.
- **Per-tick cost from what changed.** One periodic callback per browser session (``period_ms``) tails the
  store from the cursor (``RunStore.tail``) and streams each series' *new* rows to its Bokeh source
  (``ColumnDataSource.stream``): nothing else is sent. Each series keeps a
  :class:`workbench.curves.MinMaxBuckets` summary on the server; when a source has received ``slack`` new
  points, they are folded into the summary (O(new points)) and the source is replaced by the summary's
  points (O(buckets)), so the browser holds at most ``max_points + slack`` points per line and no series
  is ever re-decimated from its history. The series' folds are staggered so they do not all land on one tick.
- **Zoom reveals detail.** A change of a panel's x range (debounced, ``ZOOM_DEBOUNCE_S``) re-reads the
  visible step range of each of its series from the store at full resolution
  (``RunStore.series(..., steps=...)``, an index range) and decimates it to ``max_points``; going back to
  the full range (reset) restores the summary.
- **New runs join without a rebuild.** Rows of a run the page has not seen make it re-read the runs
  table; a new run that matches the filters gets its sources and glyphs added to the existing figures.
- **Groups for big sweeps.** ``bands``: one mean line and a band (min-max or quartiles) across the runs of
  each value of ``color_by`` per panel, recomputed from the series' points every tick (O(runs x
  max_points)); individual runs are drawn on demand (``show_runs``).

Smoothing is the debiased EMA of :func:`workbench.curves.ema` on streamed rows; over a summarised history
it runs on bucket means (a bucket of k rows counts as k rows at its mean, exact where buckets hold one
row). The raw curve is drawn faint behind when at most ``FAINT_RAW_MAX_RUNS`` runs are shown.

Figures draw on a 2-D canvas by default (``backend``): WebGL on a machine without a GPU (software
rendering, as in headless Chromium) delayed each new point by about a second (8 runs: p50 1.10 s with
webgl, 0.19 s canvas, bench/dashboard_bench.py). Export goes through the plotly builder
:func:`workbench.figures.curves.curves_figure` and :class:`workbench.apps.export.ExportPanel` (full
resolution, read from the store). Each metric's source is named ``wb-ml|<metric>`` (a row per run, column
``run``) and each group's ``wb-grp|<group>|<metric>``, so tests and the dashboard bench can find the points
drawn in the page (:data:`PROBE_JS`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool, LabelSet
from bokeh.plotting import figure

from workbench.apps.base import AppBase, escape, guarded, options
from workbench.apps.export import ExportPanel
from workbench.curves import EmaState, MinMaxBuckets, band_on_grid, ema, minmax_indices
from workbench.figures.curves import (
    GROKKING_METRICS,
    colour_map,
    curves_figure,
    is_test_metric,
    metric_panels,
)
from workbench.metric_names import (
    METRIC_NAMES,  # the engine's order (torch-free: a page need not import torch)
)

ALL = "(all)"
ZOOM_DEBOUNCE_S = 0.25
"""A panel's x range must rest this long before its visible range is re-read from the store."""
FAINT_RAW_MAX_RUNS = 16
"""With smoothing, the raw curve is drawn faint behind the smoothed one for at most this many runs."""
END_LABELS_MAX = 16
"""A panel labels the ends of its lines when it has at most this many."""
LINE_WIDTH, HIGHLIGHT_WIDTH, HIGHLIGHT_S = 1.6, 4.0, 5.0
"""A run that appears while the page is open is drawn thicker for its first few seconds."""
NOT_SMOOTHED = frozenset({"lr", "eff_lr"})
"""Metrics drawn as logged whatever the smoothing: a learning-rate schedule smoothed would show a
warm-up or a decay that did not happen."""
BAND_GRID = 400
"""Points of a group's mean line and band."""


class _Grow:
    """A float64 array with amortised O(1) append."""

    def __init__(self, data: np.ndarray | None = None) -> None:
        self._a = np.asarray([] if data is None else data, dtype=float).copy()
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
class _Layer:
    """One metric's lines in a panel: one ``multi_line`` source, a row per run. A row's arrays hold the
    points and NaN room after them; new points are patched into the room (``patch`` with a slice), a
    fold replaces the row (``patch`` with the row index), a new run appends a row (``stream``)."""

    name: str
    source: ColumnDataSource
    runs: list[str] = field(default_factory=list)
    patches: dict[str, list] = field(default_factory=dict)

    def queue(self, col: str, index: Any, values: Any) -> None:
        self.patches.setdefault(col, []).append((index, values))

    def flush(self) -> None:
        if self.patches:
            self.source.patch(self.patches)
            self.patches = {}


ROW_COLS = ("xs", "ys", "yr", "step")
"""Per-point columns of a metric's multi-line source (x, smoothed y, raw y, step), one array per run."""


def _padded(a: np.ndarray, cap: int) -> np.ndarray:
    out = np.full(cap, np.nan)
    out[: a.size] = a
    return out


@dataclass
class Series:
    """One run's metric on the server: its summary, the rows streamed since the last fold, the
    smoothing state, and a mirror of what its browser source holds."""

    run: str
    name: str
    buckets: MinMaxBuckets
    last_id: int
    slack: int
    pending: dict[str, _Grow] = field(default_factory=lambda: {k: _Grow() for k in ("step", "tokens", "wall", "value")})
    state: EmaState = field(default_factory=EmaState)
    layer: _Layer | None = None  # the metric's multi-line source this series is a row of (None: not drawn)
    row: int = -1
    cap: int = 0  # length of the row's arrays in the browser (points + NaN room for streaming)
    shown: dict[str, _Grow] = field(default_factory=dict)  # x, ys, step as the browser has them
    zoom: tuple[float, float] | None = None  # the step range shown at full resolution, if zoomed

    @property
    def n(self) -> int:
        return self.buckets.n + self.pending["step"].n

    def fold(self) -> None:
        p = self.pending
        if p["step"].n:
            self.buckets.append(p["step"].a, p["value"].a, p["tokens"].a, p["wall"].a)
            self.pending = {k: _Grow() for k in p}


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
    bands = param.Boolean(default=False, doc="One mean line and band per group instead of every run")
    band = param.Selector(default="min-max", objects=["min-max", "quartiles"], doc="What a group's band spans")
    show_runs = param.Boolean(default=False, doc="With bands, also draw every run")
    live = param.Boolean(default=True, doc="Tail the store")
    max_points = param.Integer(default=1600, bounds=(50, 20000), doc="Points per line (2 per min/max bucket)")
    max_runs = param.Integer(default=256, bounds=(1, 1024), doc="Runs selected by default")
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
        self._runs_name: dict[str, str] = {}
        self._group_sources: dict[tuple[str, Any], ColumnDataSource] = {}
        self._figs: dict[str, tuple[Any, list[str]]] = {}  # panel -> (figure, metric names)
        self._layers: dict[str, _Layer] = {}  # metric -> its multi-line source
        self._labels_src: dict[str, ColumnDataSource] = {}  # panel -> end-of-line labels
        self._cmap: dict[Any, str] = {}
        self._zoom_req: dict[str, tuple[float, float, float]] = {}  # panel -> (start, end, when)
        self._info_at = 0.0
        self._n_added = 0
        self._highlight: dict[str, float] = {}  # new run -> when its highlight ends (monotonic s)
        self.plots = pn.FlexBox(sizing_mode="stretch_width")
        self.info = pn.pane.Markdown("", margin=(0, 10), css_classes=["wb-monitor-info"])
        self.export = ExportPanel(figure=self.plotly_figure, data=self.current_data, basename="monitor")
        self._started = False
        self._building = False
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
        args = getattr(pn.state, "session_args", None) or {}

        def arg(k: str) -> str | None:
            v = args.get(k)
            return v[0].decode("utf-8", "replace") if v else None

        if arg("color_by") in self.param.color_by.objects:
            self.color_by = arg("color_by")
        if arg("bands") in ("1", "true"):
            self.bands = True
        if arg("band") in self.param.band.objects:
            self.band = arg("band")

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
        """Re-read the runs table, update the filter widgets' options; returns newly matching runs
        (when ``follow`` is on, they are added to ``runs``)."""
        df = self.store.runs(expand_config=True)
        self._runs_df = df
        if df.empty:
            return []
        self._labels = {r: f"{n} [{r[:6]}]" if n != r else r for r, n in zip(df["id"], df["name"])}
        self._runs_name = dict(zip(df["id"], df["name"]))
        # only config keys that differ between runs: grouping or filtering by a constant says nothing
        cfg_keys = [c for c in df.columns if c.startswith("cfg.") and df[c].astype(str).nunique(dropna=False) > 1]
        self.param.sweep.objects = [ALL, *sorted(s for s in df["sweep"].dropna().unique())]
        self.param.task.objects = [ALL, *sorted(t for t in df["task"].dropna().unique() if t)]
        self.param.hp_key.objects = [ALL, *cfg_keys]
        self.param.color_by.objects = ["run", *cfg_keys]
        match = self._matching()
        self.param.runs.objects = {escape(self._labels[r]): r for r in df["id"]}
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
    @property
    def _buckets(self) -> int:
        return max(2, self.max_points // 2)

    @property
    def _slack(self) -> int:
        return max(32, self.max_points // 8)

    def _load(self, pairs: list[tuple[str, str]]) -> None:
        """Summaries of the series not held yet, from the store's block summaries (one snapshot)."""
        need = [p for p in pairs if p not in self._series]
        if not need:
            return
        ov, cursor = self.store.overview(need, max_buckets=self._buckets)
        if not self._cursor:  # rows after the snapshot come by the tail (each series skips ids <= its last_id)
            self._cursor = cursor
        for (r, n), o in ov.items():
            if "rows" in o:
                rows = o["rows"]
                b = MinMaxBuckets.from_points(rows["step"], rows["value"], rows["tokens"], rows["wall"],
                                              max_buckets=self._buckets)
            else:
                b = MinMaxBuckets.from_buckets(o["width"], o["b"], o["cols"], max_buckets=self._buckets,
                                               last=o["last"], first_wall=o["first_wall"])
            self._n_added += 1
            slack = self._slack + (self._n_added * 37) % self._slack  # staggered: folds spread over ticks
            s = Series(r, n, b, cursor, slack)
            self._series[(r, n)] = s

    def _ema_state(self, s: Series, ys: np.ndarray) -> None:
        """Continue smoothing new rows from the last smoothed point shown (or start afresh)."""
        fin = ys[np.isfinite(ys)] if ys.size else ys
        if not self._weight(s.name) or not fin.size:
            s.state = EmaState()
            return
        count = s.buckets.n  # the debias factor 1 - w**count is 1 for all practical counts
        s.state = EmaState(m=float(fin[-1]) * -np.expm1(count * np.log(self._weight(s.name))), count=count)

    def _weight(self, name: str) -> float:
        """The smoothing weight of a metric: none for the schedule's own values (``NOT_SMOOTHED``)."""
        return 0.0 if name in NOT_SMOOTHED or name.startswith("lr/") else self.smoothing

    def _overview_data(self, s: Series) -> dict[str, np.ndarray]:
        s.fold()
        d = s.buckets.points(self.x_axis, self._weight(s.name))
        self._ema_state(s, d["ys"])
        return d

    def _zoom_data(self, s: Series, lo: float, hi: float) -> dict[str, np.ndarray]:
        """The series' rows with ``lo <= step <= hi`` at full resolution, min/max decimated to max_points."""
        d = self.store.series(s.run, s.name, steps=(lo, hi))
        idx = minmax_indices(d["value"], self.max_points) if d["value"].size > self.max_points else slice(None)
        y = d["value"][idx]
        if self._weight(s.name):
            prev = s.shown.get("ys")
            st = s.shown.get("step")
            seed = EmaState()
            if prev is not None and st is not None and st.n:
                k = int(np.searchsorted(st.a, lo)) - 1
                if k >= 0 and np.isfinite(prev.a[k]):
                    seed = EmaState(m=float(prev.a[k]) * -np.expm1(s.n * np.log(self._weight(s.name))), count=s.n)
            ys = ema(d["value"], self._weight(s.name), state=seed)[idx]
        else:
            ys = y
        step = d["step"][idx]
        x = step if self.x_axis == "step" else d["tokens"][idx] if self.x_axis == "tokens" else \
            d["wall"][idx] - s.buckets.first_wall
        return {"x": x, "y": y, "ys": ys, "step": step}

    def _set_data(self, s: Series, data: dict[str, np.ndarray]) -> None:
        """Replace what the browser shows of a series (its row, with fresh NaN room after the points)."""
        s.shown = {k: _Grow(data[k]) for k in ("x", "ys", "step")}
        if s.layer is not None:
            s.cap = data["x"].size + s.slack + 8
            for col, k in zip(ROW_COLS, ("x", "ys", "y", "step")):
                s.layer.queue(col, s.row, _padded(data[k], s.cap))

    def drawn(self, run: str, name: str) -> dict[str, np.ndarray]:
        """What the browser holds of one run's metric (``x, y, ys, step``; the NaN room cut off): the
        server's copy of its row, which the sent patches keep equal to the browser's."""
        s = self._series[(run, name)]
        if s.layer is None:
            raise KeyError(f"{run} {name}: not drawn")
        for lay in {id(x.layer): x.layer for x in self._series.values() if x.layer is not None}.values():
            lay.flush()
        n = s.shown["x"].n
        d = s.layer.source.data
        return {k: np.asarray(d[col][s.row][:n]) for col, k in zip(ROW_COLS, ("x", "ys", "y", "step"))}

    # ------------------------------------------------------------------ figures
    @param.depends("runs", "metrics", "x_axis", "log_x", "log_y", "smoothing", "overlay", "color_by", "bands",
                   "band", "show_runs", "max_points", "backend", watch=True)
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
        """Rebuild every figure from the server-side summaries (loading what is missing from the store)."""
        self.clear_message()
        self._building = True
        try:
            names = self._names_of(self.runs) if self.runs else []
            self.param.metrics.objects = options(names)
            if not self.metrics or not set(self.metrics) <= set(names):
                self.metrics = [n for n in self.metrics if n in names] or self._default_metrics(names)
            if self._series and next(iter(self._series.values())).buckets.max_buckets != self._buckets:
                self._series = {}  # max_points changed: summaries at the new resolution
            self._load([(r, n) for r in self.runs for n in self.metrics])
            if not self._cursor:
                self._cursor = self.store.cursor()
        finally:
            self._building = False
        self._group_sources, self._figs, self._zoom_req, self._layers = {}, {}, {}, {}
        self._labels_src = {}
        for s in self._series.values():
            s.layer, s.zoom = None, None
        if not self.runs:
            self.plots.objects = [pn.pane.Markdown("No runs match the filters yet. Runs appear here as they "
                                                   "start (`workbench run ...`, or a sweep).")]
            self._update_info()
            return
        keys = self._colour_keys()
        self._cmap = colour_map(list(dict.fromkeys(keys.values())))
        panes = []
        for panel, members in metric_panels(self.metrics, overlay=self.overlay):
            f = self._figure(panel, members)
            self._figs[panel] = (f, members)
            self._add_layers(f, members, self.runs, keys)
            if self._grouped:
                self._add_group_glyphs(f, members, keys)
            lbl = ColumnDataSource({"x": [], "y": [], "text": [], "color": []}, name=f"wb-lbl|{panel}")
            f.add_layout(LabelSet(x="x", y="y", text="text", text_color="color", source=lbl, x_offset=4,
                                  y_offset=-5, text_font_size="8pt"))
            self._labels_src[panel] = lbl
            panes.append(pn.pane.Bokeh(f, sizing_mode="fixed", width=560, height=300))
        self._update_bands()
        self._update_end_labels()
        self.plots.objects = panes
        self._update_info()

    @property
    def _grouped(self) -> bool:
        return self.bands and self.color_by != "run"

    def _colour_keys(self) -> dict[str, Any]:
        if self.color_by == "run" or self._runs_df.empty or self.color_by not in self._runs_df:
            return {r: r for r in self.runs}
        m = dict(zip(self._runs_df["id"], self._runs_df[self.color_by]))
        return {r: m.get(r) for r in self.runs}

    def _figure(self, panel: str, members: list[str]) -> Any:
        f = figure(title=panel, height=300, width=560, output_backend=self.backend,
                   x_axis_type="log" if self.log_x else "linear", y_axis_type="log" if self.log_y else "linear",
                   tools="pan,wheel_zoom,box_zoom,reset,save", x_axis_label={"wall": "wall time (s)"}.get(
                       self.x_axis, self.x_axis), name=f"wb-fig|{panel}")
        f.add_tools(HoverTool(tooltips=[("", "@label $name"), ("x", "$x{0.[000]}"), ("y", "$y{0.[0000]}")]))
        f.x_range.on_change("start", lambda attr, old, new, p=panel: self._on_range(p))
        f.x_range.on_change("end", lambda attr, old, new, p=panel: self._on_range(p))
        return f

    def _row_of(self, s: Series, keys: dict) -> dict[str, Any]:
        data = self._overview_data(s)
        s.shown = {k: _Grow(data[k]) for k in ("x", "ys", "step")}
        s.cap = data["x"].size + s.slack + 8
        row = {col: _padded(data[k], s.cap) for col, k in zip(ROW_COLS, ("x", "ys", "y", "step"))}
        return {**row, "run": s.run, "label": self._labels.get(s.run, s.run),
                "color": self._cmap.get(keys.get(s.run), "#888888"),
                "width": HIGHLIGHT_WIDTH if s.run in self._highlight else LINE_WIDTH}

    def _add_layers(self, f: Any, members: list[str], run_ids: list[str], keys: dict) -> None:
        """Each metric of a panel: one multi-line source with a row per run (only the series' summary points
        and NaN room are sent), and its glyphs: one renderer for all runs, however many."""
        draw = not self._grouped or self.show_runs
        faint = self.smoothing and len(self.runs) <= FAINT_RAW_MAX_RUNS and not self._grouped
        for name in members:
            series = [self._series[(r, name)] for r in run_ids if (r, name) in self._series]
            if not draw:
                for s in series:
                    self._set_data(s, self._overview_data(s))
                continue
            rows = [self._row_of(s, keys) for s in series]
            cols = (*ROW_COLS, "run", "label", "color", "width")
            src = ColumnDataSource({c: [r[c] for r in rows] for c in cols}, name=f"wb-ml|{name}")
            lay = _Layer(name, src, [s.run for s in series])
            self._layers[name] = lay
            for i, s in enumerate(series):
                s.layer, s.row = lay, i
            dash = "dashed" if is_test_metric(name) and len(members) > 1 else "solid"
            if faint:
                f.multi_line(xs="xs", ys="yr", source=src, line_color="color", line_alpha=0.2, line_width=1,
                             line_dash=dash)
            f.multi_line(xs="xs", ys="ys", source=src, line_color="color", line_width="width", line_dash=dash,
                         line_alpha=0.35 if self._grouped else 1.0, name=name)

    def _add_run_rows(self, run_ids: list[str], keys: dict) -> None:
        """New runs join the open figures: a row appended to each metric's source (``stream``)."""
        for name, lay in self._layers.items():
            series = [self._series[(r, name)] for r in run_ids if (r, name) in self._series]
            series = [s for s in series if s.layer is None]
            if not series:
                continue
            lay.flush()
            rows = [self._row_of(s, keys) for s in series]
            for s in series:
                s.layer, s.row = lay, len(lay.runs)
                lay.runs.append(s.run)
            lay.source.stream({c: [r[c] for r in rows] for c in (*ROW_COLS, "run", "label", "color", "width")})
        for s in self._series.values():  # metrics not drawn as lines (bands only): keep their mirrors
            if s.run in run_ids and s.layer is None and not s.shown:
                self._set_data(s, self._overview_data(s))

    def _add_group_glyphs(self, f: Any, members: list[str], keys: dict) -> None:
        for name in members:
            dash = "dashed" if is_test_metric(name) and len(members) > 1 else "solid"
            for g in dict.fromkeys(keys.values()):
                src = ColumnDataSource({"x": [], "mean": [], "lo": [], "hi": [], "step": []},
                                       name=f"wb-grp|{g}|{name}")
                self._group_sources[(name, g)] = src
                c = self._cmap.get(g, "#888888")
                f.varea(x="x", y1="lo", y2="hi", source=src, fill_color=c, fill_alpha=0.18)
                f.line(x="x", y="mean", source=src, color=c, line_dash=dash, line_width=2,
                       name=f"{self.color_by.removeprefix('cfg.')}={g} {name}")

    def _update_bands(self) -> None:
        if not self._group_sources:
            return
        keys = self._colour_keys()
        q = (0.25, 0.75) if self.band == "quartiles" else None
        for (name, g), src in self._group_sources.items():
            members = [self._series[(r, name)] for r in self.runs if keys.get(r) == g and (r, name) in self._series]
            members = [s for s in members if s.shown.get("x") is not None and s.shown["x"].n]
            if not members:
                continue
            xs = [s.shown["x"].a for s in members]
            ys = [s.shown["ys"].a for s in members]
            grid, mean, lo, hi, _ = band_on_grid(xs, ys, n=BAND_GRID, log_x=self.log_x, quantiles=q)
            if self.x_axis == "step":
                step = grid
            else:  # the step each grid x stands for (x is monotone in step within a run)
                step = np.interp(grid, xs[0], members[0].shown["step"].a)
            src.data = {"x": grid, "mean": mean, "lo": lo, "hi": hi, "step": step}

    def _update_end_labels(self) -> None:
        """A label at the end of every line of a panel (each group's mean line with bands), when a panel
        has at most ``END_LABELS_MAX`` of them; more would cover the curves (the hover names them)."""
        for panel, src in self._labels_src.items():
            members = self._figs[panel][1]
            pts: list[tuple[float, float, str, str]] = []
            if self._grouped:
                key = self.color_by.removeprefix("cfg.")
                for (name, g), gs in self._group_sources.items():
                    d = gs.data
                    if name in members and len(d["x"]) and np.isfinite(d["mean"][-1]):
                        pts.append((d["x"][-1], d["mean"][-1], f"{key}={g}", self._cmap.get(g, "#888888")))
            elif sum(len(self._layers[n].runs) for n in members if n in self._layers) <= END_LABELS_MAX:
                keys = self._colour_keys()
                for name in members:
                    lay = self._layers.get(name)
                    for r in lay.runs if lay is not None else []:
                        s = self._series.get((r, name))
                        if s is None or not s.shown or not s.shown["x"].n:
                            continue
                        x, y = s.shown["x"].a[-1], s.shown["ys"].a[-1]
                        if np.isfinite(x) and np.isfinite(y):
                            text = str(self._runs_name.get(r, r))[:24] + (f" {name}" if len(members) > 1 else "")
                            pts.append((x, y, text, self._cmap.get(keys.get(r), "#888888")))
            if len(pts) > END_LABELS_MAX:
                pts = []
            new = {"x": [p[0] for p in pts], "y": [p[1] for p in pts], "text": [p[2] for p in pts],
                   "color": [p[3] for p in pts]}
            if new != dict(src.data):
                src.data = new

    # ------------------------------------------------------------------ zoom
    def _on_range(self, panel: str) -> None:
        fr = self._figs.get(panel)
        if fr is None:
            return
        xr = fr[0].x_range
        if xr.start is None or xr.end is None:
            return
        self._zoom_req[panel] = (float(xr.start), float(xr.end), time.monotonic())

    def _apply_zoom(self, force: bool = False) -> None:
        now = time.monotonic()
        for panel, (start, end, when) in list(self._zoom_req.items()):
            if not force and now - when < ZOOM_DEBOUNCE_S:
                continue
            del self._zoom_req[panel]
            self.zoom(panel, start, end)

    def zoom(self, panel: str, start: float, end: float) -> None:
        """Show the x range [start, end] of a panel's series: re-read from the store at full resolution
        when it is narrower than the data (decimated to max_points), the summaries when it covers it."""
        f, members = self._figs[panel]
        series = [self._series[(r, n)] for r in self.runs for n in members
                  if (r, n) in self._series and self._series[(r, n)].layer is not None]
        shown = [s for s in series if s.shown.get("x") is not None and s.shown["x"].n]
        if not shown:
            return
        lo = min(float(np.nanmin(s.shown["x"].a)) for s in shown)
        hi = max(float(np.nanmax(s.shown["x"].a)) for s in shown)
        full = hi <= lo or (end - start) >= 0.75 * (hi - lo)
        for s in shown:
            if full:
                if s.zoom is not None:
                    s.zoom = None
                    self._set_data(s, self._overview_data(s))
                continue
            st, x = s.shown["step"].a, s.shown["x"].a
            if self.x_axis == "step":
                a, b = start, end
            else:  # the step range that covers the x window (x is monotone in step within a run)
                ok = np.isfinite(x)
                a, b = np.interp([start, end], x[ok], st[ok]) if ok.sum() > 1 else (st[0], st[-1])
            pad = 0.02 * (b - a)
            s.zoom = (max(0.0, a - pad), b + pad)
            s.fold()
            self._set_data(s, self._zoom_data(s, *s.zoom))
        for lay in self._layers.values():
            lay.flush()

    # ------------------------------------------------------------------ live
    def tick(self) -> int:
        """One poll of the store: stream the rows committed since the cursor; returns rows applied."""
        self._apply_zoom()
        if not self.live:
            return 0
        df, cursor = self.store.tail(since=self._cursor, limit=500_000)
        self._cursor = cursor
        if df.empty:
            if self._highlight:
                self._unhighlight()
                for lay in self._layers.values():
                    lay.flush()
            return 0
        known = set(self._runs_df["id"]) if not self._runs_df.empty else set()
        if not set(df["run"].unique()) <= known:
            before = list(self.runs)
            self._building = True  # new runs are added to the figures below, not by a rebuild
            try:
                new = self.refresh_runs()
            finally:
                self._building = False
            if new and self.follow:
                added = [r for r in self.runs if r not in before]
                self._highlight.update({r: time.monotonic() + HIGHLIGHT_S for r in added})
                self._add_runs(added)
        # one grouping of the tick's rows by series in numpy (pandas' per-group overhead, ~1 ms a group,
        # was most of a tick at 64-256 runs)
        key = df["run"].to_numpy(object) + "\x1f" + df["name"].to_numpy(object)
        codes, uniq = pd.factorize(key)
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(uniq)))])
        cols = {c: df[c].to_numpy(float)[order] for c in ("id", "step", "tokens", "wall", "value")}
        shown = set(self.runs)
        applied = 0
        for j, k in enumerate(uniq):
            r, n = k.split("\x1f", 1)
            s = self._series.get((r, n)) if r in shown else None
            if s is None:
                continue
            sl = slice(bounds[j], bounds[j + 1])
            ids = cols["id"][sl]
            if ids[-1] <= s.last_id:
                continue
            keep = ids > s.last_id
            g = {c: a[sl][keep] for c, a in cols.items()}
            applied += self._append(s, g)
        self._unhighlight()
        for lay in self._layers.values():
            lay.flush()
        if self._group_sources and applied:
            self._update_bands()
        if applied:
            self._update_end_labels()
        if applied and time.monotonic() - self._info_at > 2.0:  # the text re-renders: not every tick
            self._update_info()
        return applied

    def _append(self, s: Series, g: dict[str, np.ndarray]) -> int:
        """Take a series' new rows (``id, step, tokens, wall, value`` arrays, commit order) and send what
        the browser needs: new points into its row's room, or the row afresh after a fold."""
        s.last_id = int(g["id"][-1])
        step, val, tok, wall = g["step"], g["value"], g["tokens"], g["wall"]
        for k, v in (("step", step), ("tokens", tok), ("wall", wall), ("value", val)):
            s.pending[k].extend(v)
        if np.isnan(s.buckets.first_wall) and wall.size:
            s.buckets.first_wall = float(wall[0])
        if s.zoom is not None:
            if step[0] > s.zoom[1]:  # outside the zoomed window: folded into the summary, not sent
                if s.pending["step"].n > 4 * s.slack:
                    s.fold()
                return step.size
            if s.shown["step"].n > self.max_points + s.slack:
                self._set_data(s, self._zoom_data(s, *s.zoom))
                return step.size
        elif s.pending["step"].n > s.slack:
            self._set_data(s, self._overview_data(s))
            return step.size
        w = self._weight(s.name)
        if w:
            ys, s.state = ema(val, w, state=s.state, return_state=True)
        else:
            ys = val
        x = step if self.x_axis == "step" else tok if self.x_axis == "tokens" else wall - s.buckets.first_wall
        new = {"x": x, "y": val, "ys": ys, "step": step}
        at = s.shown["x"].n
        for k in ("x", "ys", "step"):
            s.shown[k].extend(new[k])
        if s.layer is not None:
            if at + step.size > s.cap:  # no room left in the browser's row: fold and resend it
                self._set_data(s, self._zoom_data(s, *s.zoom) if s.zoom is not None else self._overview_data(s))
            else:
                sl = slice(at, at + step.size)
                for col, k in zip(ROW_COLS, ("x", "ys", "y", "step")):
                    s.layer.queue(col, (s.row, sl), new[k])
        return step.size

    def _unhighlight(self) -> None:
        now = time.monotonic()
        for r in [r for r, t in self._highlight.items() if t <= now]:
            del self._highlight[r]
            for lay in self._layers.values():
                if r in lay.runs:
                    lay.queue("width", lay.runs.index(r), LINE_WIDTH)

    def _add_runs(self, run_ids: list[str]) -> None:
        """Add new runs to the open figures: their sources and glyphs only, nothing is rebuilt."""
        if not run_ids:
            return
        names = set(self._names_of(run_ids))
        if not self._figs or not names & set(self.metrics):
            self.rebuild()  # first runs of the page, or only metrics not shown yet
            return
        self._load([(r, n) for r in run_ids for n in self.metrics])
        keys = self._colour_keys()
        fresh = [k for k in dict.fromkeys(keys.values()) if k not in self._cmap]
        if fresh:
            full = colour_map(list(dict.fromkeys(keys.values())))
            self._cmap.update({k: full[k] for k in fresh})
        self._add_run_rows(run_ids, keys)
        for f, members in self._figs.values():
            if self._grouped and fresh:
                self._add_group_glyphs(f, members, {r: keys[r] for r in self.runs if keys[r] in fresh})
        self._update_bands()
        self._update_end_labels()
        self._update_info()

    @guarded
    def _tick_guarded(self) -> None:
        with pn.io.hold():  # one websocket message for all the streams of this tick
            self.tick()

    def _update_info(self) -> None:
        self._info_at = time.monotonic()
        shown = set(self.runs)
        n_pts = sum(s.n for s in self._series.values() if s.run in shown)
        running = 0
        if not self._runs_df.empty:
            running = int(self._runs_df[self._runs_df["id"].isin(self.runs)]["status"].eq("running").sum())
        hint = ""
        if len(self.runs) > 48 and not self._grouped:
            hint = " · many runs: try *colour / group by* a config key with bands"
        self.info.object = (f"{len(self.runs)} runs ({running} running) · {len(self.metrics)} metrics · "
                            f"{n_pts:,} points · cursor {self._cursor}{hint}")

    # ------------------------------------------------------------------ export
    def current_data(self) -> pd.DataFrame | None:
        """The shown runs' shown metrics at full resolution, long form (what CSV / Parquet export writes)."""
        if not self.runs or not self.metrics:
            return None
        df = self.store.metrics(self.runs, self.metrics)
        if df.empty:
            return None
        df = df[df["id"] <= self._cursor] if self._cursor else df
        out = df[["run", "name", "step", "tokens", "wall", "value"]].reset_index(drop=True)
        out["step"] = out["step"].astype(np.int64)
        out["tokens"] = out["tokens"].astype(float)
        return out

    def plotly_figure(self) -> Any:
        """The current view as a plotly figure (for PNG / SVG / PDF / HTML export)."""
        df = self.current_data()
        if df is None:
            return None
        runs = self._runs_df[self._runs_df["id"].isin(self.runs)] if not self._runs_df.empty else None
        return curves_figure(df, runs, names=self.metrics, x=self.x_axis, log_x=self.log_x, log_y=self.log_y,
                             smoothing=self.smoothing, color_by=None if self.color_by == "run" else self.color_by,
                             bands=self._grouped, overlay=self.overlay,
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
            w.MultiChoice.from_param(self.param.runs, label="runs", max_items=1024, css_classes=["wb-runs"]),
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
            w.Checkbox.from_param(self.param.bands, label="one mean line + band per group", css_classes=["wb-bands"]),
            w.RadioButtonGroup.from_param(self.param.band, css_classes=["wb-band"]),
            w.Checkbox.from_param(self.param.show_runs, label="with bands, also every run"),
            w.Toggle.from_param(self.param.live, label="live", color="success"),
            width=300, sizing_mode="fixed",
        )
        return pn.Row(controls, pn.Column(self.info, self.plots, self.export, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width")


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
  const seen = (key, last, len) => {
    const rec = window.__wb.log[key] || (window.__wb.log[key] = record());
    if (last > rec.max) {
      rec.max = last;
      const i = 3 * (rec.n % CAP);
      rec.buf[i] = Date.now() / 1000; rec.buf[i + 1] = last; rec.buf[i + 2] = len;
      rec.n += 1;
    }
  };
  // the points of one run's row in a metric's multi-line source, NaN room cut off
  // (the newest such source: after a rebuild the replaced one may linger in the document's model list)
  window.__wb.row = (run, metric) => {
    let out = null;
    for (const doc of (window.Bokeh && window.Bokeh.documents) || []) {
      for (const m of doc.all_models) {
        if (m.name !== 'wb-ml|' + metric || !m.data || !m.data.run) continue;
        const i = Array.from(m.data.run).indexOf(run);
        if (i < 0) continue;
        const st = m.data.step[i];
        let n = st.length;
        while (n > 0 && Number.isNaN(st[n - 1])) n--;
        out = {x: Array.from(m.data.xs[i].slice(0, n)), y: Array.from(m.data.yr[i].slice(0, n)),
               step: Array.from(st.slice(0, n))};
      }
    }
    return out;
  };
  const scan = () => {
    for (const doc of (window.Bokeh && window.Bokeh.documents) || []) {
      for (const m of doc.all_models) {
        const n = m.name;
        if (!n || !m.data || !m.data.step) continue;
        if (n.startsWith('wb-ml|')) {
          const metric = n.slice(6), runs = m.data.run, steps = m.data.step;
          for (let r = 0; r < runs.length; r++) {
            const st = steps[r];
            let k = st.length;
            while (k > 0 && Number.isNaN(st[k - 1])) k--;
            seen('wb-src|' + runs[r] + '|' + metric, k ? st[k - 1] : -1, k);
          }
        } else if (n.startsWith('wb-grp|')) {
          const st = m.data.step, len = st.length;
          seen(n, len ? st[len - 1] : -1, len);
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
sources (each metric's multi-line source ``wb-ml|<metric>``, a row per run, logged as
``wb-src|<run>|<metric>``; each group's ``wb-grp|<group>|<metric>``) that records ``[time (s), last step, points]`` each time a new step is
drawn (just before the frame is painted): ``window.__wb.log[name].seen`` (the last 5 000, kept in a
preallocated ring so the probe does not grow the heap it helps measure), ``window.__wb.dump()`` for all,
``window.__wb.row(run, metric)`` the points of one run as drawn."""
