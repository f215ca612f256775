"""The live monitor's figures: one Bokeh figure per panel (:func:`workbench.figures.curves.metric_panels`),
each metric of a panel one ``multi_line`` source with a row per run (``wb-ml|<metric>``), each group's
mean line and band (``wb-grp|<group>|<metric>``), end-of-line labels, and the per-run overlays other
pieces add (:class:`Overlay`). Built once; new runs add rows, nothing is rebuilt."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool, LabelSet, Range1d
from bokeh.plotting import figure

from workbench.apps.components.monitor_legend import end_labels
from workbench.apps.components.monitor_ranges import XRange, YRanges
from workbench.apps.components.monitor_series import ROW_COLS, Layer, SeriesBook
from workbench.curves import band_on_grid
from workbench.figures.curves import colour_map, is_test_metric, metric_panels

FAINT_RAW_MAX_RUNS = 16
"""With smoothing, the raw curve is drawn faint behind the smoothed one for at most this many runs."""
LINE_WIDTH, HIGHLIGHT_WIDTH, HIGHLIGHT_S = 1.6, 4.0, 5.0
"""A run that appears while the page is open is drawn thicker for its first few seconds."""
BAND_GRID = 400
"""Points of a group's mean line and band."""
ROW_EXTRA = ("run", "label", "color", "width")


class Overlay(Protocol):
    """Something drawn over a panel per run (e.g. a forecast band ahead of a running run's curve).
    ``attach`` is called for every panel when the figures are built (add sources and glyphs to ``fig``);
    ``update`` on the session's thread after each tick that applied rows, and after a build (push new
    data into the sources attached; a slow computation belongs in a background thread whose results
    ``update`` picks up)."""

    def attach(self, fig: Any, panel: str, members: list[str], figures: MonitorFigures) -> None: ...

    def update(self, figures: MonitorFigures) -> None: ...


class MonitorFigures:
    """The page's figures and their sources. ``view`` is the monitor app (read: ``runs``, ``smoothing``,
    ``color_by``, ``bands``, ``x_axis``, ``settings``, ``run_table``, ``run_labels``, ``run_names``);
    ``on_range(full=...)`` is called when the x range changes in the browser (``full``: to a range the server
    set: the whole range, not a zoom). Every panel shares ONE x range (zoom one, zoom all; the feed then
    re-reads every panel's visible range from the store): :class:`~monitor_ranges.XRange`."""

    def __init__(self, view: Any, book: SeriesBook, on_range: Any) -> None:
        self.view, self.book, self.on_range = view, book, on_range
        self.figs: dict[str, tuple[Any, list[str]]] = {}  # panel -> (figure, metric names)
        self.layers: dict[str, Layer] = {}  # metric -> its multi-line source
        self.group_sources: dict[tuple[str, Any], ColumnDataSource] = {}
        self.labels_src: dict[str, ColumnDataSource] = {}  # panel -> end-of-line labels
        self.cmap: dict[Any, str] = {}
        self.highlight: dict[str, float] = {}  # new run -> when its highlight ends (monotonic s)
        self.overlays: list[Overlay] = []
        self.rest: list[tuple[str, list[str]]] = []  # panels not built yet (see build)
        self.xr = XRange(lambda full: self.on_range(full=full))  # the panels' shared x range
        self.y = YRanges()  # per panel: a y range that follows what it draws until the user zooms it

    @property
    def x_range(self) -> Range1d:
        return self.xr.range

    @property
    def grouped(self) -> bool:
        return self.view.bands and self.view.color_by != "run"

    def colour_keys(self) -> dict[str, Any]:
        v, df = self.view, self.view.run_table
        if v.color_by == "run" or df.empty or v.color_by not in df:
            return {r: r for r in v.runs}
        m = dict(zip(df["id"], df[v.color_by]))
        return {r: m.get(r) for r in v.runs}

    def colour(self, run: str) -> str:
        return self.cmap.get(self.colour_keys().get(run), "#888888")

    def flush(self) -> None:
        for lay in self.layers.values():
            lay.flush()

    def build(self, metrics: list[str], first: int | None = None) -> list[Any]:
        """The panels' figures afresh (the series' rows from their summaries); returns the figures. With
        ``first``, only the first ``first`` panels: :meth:`build_rest` builds the others (a page shows the
        panels in view first and adds the rest once it has loaded)."""
        self.group_sources, self.figs, self.layers, self.labels_src = {}, {}, {}, {}
        for s in self.book.series.values():
            s.layer, s.zoom = None, None
        self.cmap = colour_map(list(dict.fromkeys(self.colour_keys().values())))
        self.xr = XRange(lambda full: self.on_range(full=full))
        self.y.clear()
        self.rest = metric_panels(metrics, overlay=self.view.settings.overlay)
        return self.build_rest(first)

    def build_rest(self, n: int | None = None) -> list[Any]:
        """The next ``n`` (default: all) panels not built yet; returns their figures."""
        todo, self.rest = (self.rest, []) if n is None else (self.rest[:n], self.rest[n:])
        keys = self.colour_keys()
        out = []
        for panel, members in todo:
            f = self._figure(panel, members)
            self.figs[panel] = (f, members)
            self._add_layers(f, members, self.view.runs, keys)
            if self.grouped:
                self.add_group_glyphs(f, members, keys)
            lbl = ColumnDataSource({"x": [], "y": [], "text": [], "color": [], "align": [], "dx": [], "dy": []},
                                   name=f"wb-lbl|{panel}")
            # just above the line's end, written towards the inside of the frame (monitor_legend.end_labels)
            f.add_layout(LabelSet(x="x", y="y", text="text", text_color="color", source=lbl, x_offset="dx",
                                  y_offset="dy", text_align="align", text_baseline="bottom", text_font_size="8pt",
                                  background_fill_color="white", background_fill_alpha=0.6))
            self.labels_src[panel] = lbl
            for ov in self.overlays:
                ov.attach(f, panel, members, self)
            out.append(f)
        self.update_bands()
        self.follow_x()
        self.update_end_labels()  # after the ranges: labels are spread in screen space
        for ov in self.overlays:
            ov.update(self)
        return out

    # ------------------------------------------------------------------ the shared x range
    def _extent(self) -> tuple[float, float] | None:
        """The x extent of what is drawn."""
        lo, hi = np.inf, -np.inf
        log = self.view.settings.log_x
        runs = set(self.view.runs)
        for s in self.book.series.values():
            x = s.shown.get("x")
            if x is None or not x.n or s.run not in runs:
                continue
            if s.zoom is not None and s.buckets.n:  # a zoomed series shows a window: its summary has the extent
                a = s.buckets.points(self.view.x_axis)["x"]
                a = a[np.isfinite(a) & (a > 0)] if log else a[np.isfinite(a)]
                e = (float(a.min()), float(a.max())) if a.size else None
            else:
                e = x.extent(positive=log)  # kept up to date as points are appended: O(new points)
            if e is not None:
                lo, hi = min(lo, e[0]), max(hi, e[1])
        for ov in self.overlays:  # what an overlay draws ahead of the data (a forecast) is in the range too
            e = getattr(ov, "x_extent", lambda: None)()
            if e is not None and hi >= lo:
                hi = max(hi, e)
        return (lo, hi) if hi >= lo else None

    def follow_x(self) -> None:
        """Keep the shared x range on the data as it grows (with headroom, so it moves now and then, not
        every tick) unless the user zoomed; the reset tool always goes back to the data's extent. Each
        panel's y range follows what it draws by the same rule (:class:`YRanges`)."""
        self._follow_x()
        self.y.follow(self)

    def _follow_x(self) -> None:
        ext = self._extent()
        if ext is not None:
            self.xr.follow(ext, self.view.settings.log_x)

    def _figure(self, panel: str, members: list[str]) -> Any:
        st = self.view.settings
        x_axis = self.view.x_axis
        f = figure(title=panel, height=300, width=560, output_backend=st.backend, x_range=self.x_range,
                   y_range=self.y.new(panel),
                   x_axis_type="log" if st.log_x else "linear", y_axis_type="log" if st.log_y else "linear",
                   tools="pan,wheel_zoom,box_zoom,reset,save",
                   x_axis_label={"wall": "wall time (s)"}.get(x_axis, x_axis), name=f"wb-fig|{panel}")
        f.add_tools(HoverTool(tooltips=[("", "@label $name"), ("x", "$x{0.[000]}"), ("y", "$y{0.[0000]}")]))
        return f

    def _row(self, s: Any, keys: dict) -> dict[str, Any]:
        return {**self.book.row(s), "run": s.run, "label": self.view.run_labels.get(s.run, s.run),
                "color": self.cmap.get(keys.get(s.run), "#888888"),
                "width": HIGHLIGHT_WIDTH if s.run in self.highlight else LINE_WIDTH}

    def _add_layers(self, f: Any, members: list[str], run_ids: list[str], keys: dict) -> None:
        """Each metric of a panel: one multi-line source with a row per run (only the series' summary points
        and NaN room are sent), and its glyphs: one renderer for all runs, however many."""
        draw = not self.grouped or self.view.settings.show_runs
        faint = self.view.smoothing and len(self.view.runs) <= FAINT_RAW_MAX_RUNS and not self.grouped
        for name in members:
            series = [s for r in run_ids if (s := self.book.get(r, name)) is not None]
            if not draw:
                for s in series:
                    self.book.set_data(s, self.book.overview_data(s))
                continue
            rows = [self._row(s, keys) for s in series]
            src = ColumnDataSource({c: [r[c] for r in rows] for c in (*ROW_COLS, *ROW_EXTRA)}, name=f"wb-ml|{name}")
            lay = Layer(name, src, [s.run for s in series])
            self.layers[name] = lay
            for i, s in enumerate(series):
                s.layer, s.row = lay, i
            dash = "dashed" if is_test_metric(name) and len(members) > 1 else "solid"
            if faint:
                f.multi_line(xs="xs", ys="yr", source=src, line_color="color", line_alpha=0.2, line_width=1,
                             line_dash=dash)
            f.multi_line(xs="xs", ys="ys", source=src, line_color="color", line_width="width", line_dash=dash,
                         line_alpha=0.35 if self.grouped else 1.0, name=name)

    def add_runs(self, run_ids: list[str]) -> None:
        """New runs join the open figures: a row appended to each metric's source (``stream``), and
        glyphs for groups not seen before."""
        keys = self.colour_keys()
        fresh = [k for k in dict.fromkeys(keys.values()) if k not in self.cmap]
        if fresh:
            full = colour_map(list(dict.fromkeys(keys.values())))
            self.cmap.update({k: full[k] for k in fresh})
        for name, lay in self.layers.items():
            series = [s for r in run_ids if (s := self.book.get(r, name)) is not None and s.layer is None]
            if not series:
                continue
            lay.flush()
            rows = [self._row(s, keys) for s in series]
            for s in series:
                s.layer, s.row = lay, len(lay.runs)
                lay.runs.append(s.run)
            lay.source.stream({c: [r[c] for r in rows] for c in (*ROW_COLS, *ROW_EXTRA)})
        for s in self.book.series.values():  # metrics not drawn as lines (bands only): keep their mirrors
            if s.run in run_ids and s.layer is None and not s.shown:
                self.book.set_data(s, self.book.overview_data(s))
        if self.grouped and fresh:
            for f, members in self.figs.values():
                self.add_group_glyphs(f, members, {r: keys[r] for r in self.view.runs if keys[r] in fresh})
        self.update_bands()
        self.follow_x()
        self.update_end_labels()  # after the ranges: labels are spread in screen space
        for ov in self.overlays:  # a running run joined: the forecast glyphs, if only promised so far
            ov.update(self)

    def add_group_glyphs(self, f: Any, members: list[str], keys: dict) -> None:
        for name in members:
            dash = "dashed" if is_test_metric(name) and len(members) > 1 else "solid"
            for g in dict.fromkeys(keys.values()):
                src = ColumnDataSource({"x": [], "mean": [], "lo": [], "hi": [], "step": []},
                                       name=f"wb-grp|{g}|{name}")
                self.group_sources[(name, g)] = src
                c = self.cmap.get(g, "#888888")
                f.varea(x="x", y1="lo", y2="hi", source=src, fill_color=c, fill_alpha=0.18)
                f.line(x="x", y="mean", source=src, color=c, line_dash=dash, line_width=2,
                       name=f"{self.view.color_by.removeprefix('cfg.')}={g} {name}")

    def update_bands(self) -> None:
        if not self.group_sources:
            return
        keys = self.colour_keys()
        q = (0.25, 0.75) if self.view.settings.band == "quartiles" else None
        for (name, g), src in self.group_sources.items():
            members = [s for r in self.view.runs if keys.get(r) == g and (s := self.book.get(r, name)) is not None]
            members = [s for s in members if s.shown.get("x") is not None and s.shown["x"].n]
            if not members:
                continue
            xs = [s.shown["x"].a for s in members]
            ys = [s.shown["ys"].a for s in members]
            grid, mean, lo, hi, _ = band_on_grid(xs, ys, n=BAND_GRID, log_x=self.view.settings.log_x, quantiles=q)
            if self.view.x_axis == "step":
                step = grid
            else:  # the step each grid x stands for (x is monotone in step within a run)
                step = np.interp(grid, xs[0], members[0].shown["step"].a)
            src.data = {"x": grid, "mean": mean, "lo": lo, "hi": hi, "step": step}

    def unhighlight(self, now: float) -> None:
        for r in [r for r, t in self.highlight.items() if t <= now]:
            del self.highlight[r]
            for lay in self.layers.values():
                if r in lay.runs:
                    lay.queue("width", lay.runs.index(r), LINE_WIDTH)

    def update_end_labels(self) -> None:
        end_labels(self)
