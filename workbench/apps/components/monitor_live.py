"""The live monitor's periodic path: one poll of the store per tick (:meth:`MonitorFeed.tick`) streams
each shown series' new rows to its row in the browser; zoom re-reads the visible range of a panel's
series from the store at full resolution (debounced, ``ZOOM_DEBOUNCE_S``; the panels share one x range, so
every panel is re-read); runs that appear join the
open figures (their rows and glyphs added, nothing rebuilt) and are drawn thicker for a few seconds."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from workbench.apps.components.monitor_figures import HIGHLIGHT_S, MonitorFigures
from workbench.apps.components.monitor_series import SeriesBook

ZOOM_DEBOUNCE_S = 0.25
"""A panel's x range must rest this long before its visible range is re-read from the store."""


class MonitorFeed:
    """Tails the store into the figures. ``view`` is the monitor app (read: ``live``, ``runs``,
    ``metrics``, ``x_axis``, ``store``, ``run_table``; called: ``discover_runs()`` -> the runs added to
    ``runs``, ``rebuild()``, ``update_info()``)."""

    def __init__(self, view: Any, book: SeriesBook, figs: MonitorFigures) -> None:
        self.view, self.book, self.figs = view, book, figs
        self.zoom_req: dict[str, tuple[float, float, float, bool]] = {}  # panel -> (start, end, when, full)

    # ------------------------------------------------------------------ zoom
    def on_range(self, full: bool = False) -> None:
        """The shared x range changed in the browser: re-read every panel once it has rested (``full``: the
        range is one the server set, e.g. the reset tool's: the overview, never a zoomed window)."""
        xr = self.figs.x_range
        if xr.start is None or xr.end is None:
            return
        self.zoom_req["x"] = (float(xr.start), float(xr.end), time.monotonic(), full)

    def apply_zoom(self, force: bool = False) -> None:
        now = time.monotonic()
        for key, (start, end, when, full) in list(self.zoom_req.items()):
            if not force and now - when < ZOOM_DEBOUNCE_S:
                continue
            del self.zoom_req[key]
            for panel in list(self.figs.figs):
                self.zoom(panel, start, end, full)
            self.figs.update_bands()
            self.figs.y.follow(self.figs)  # a panel the user did not zoom shows the window's y extent
            self.figs.update_end_labels()  # after the ranges: labels are spread in screen space

    def zoom(self, panel: str, start: float, end: float, full: bool = False) -> None:
        """Show the x range [start, end] of a panel's series: re-read from the store at full resolution
        when it is narrower than the data (decimated to max_points), the summaries when it covers it (or
        with ``full``)."""
        members = self.figs.figs[panel][1]
        series = [s for r in self.view.runs for n in members
                  if (s := self.book.get(r, n)) is not None and s.layer is not None]
        shown = [s for s in series if s.shown.get("x") is not None and s.shown["x"].n]
        if not shown:
            return
        lo = min(float(np.nanmin(s.shown["x"].a)) for s in shown)
        hi = max(float(np.nanmax(s.shown["x"].a)) for s in shown)
        full = full or hi <= lo or (end - start) >= 0.75 * (hi - lo)
        for s in shown:
            if full:
                if s.zoom is not None:
                    s.zoom = None
                    self.book.set_data(s, self.book.overview_data(s))
                continue
            st, x = s.shown["step"].a, s.shown["x"].a
            if self.view.x_axis == "step":
                a, b = start, end
            else:  # the step range that covers the x window (x is monotone in step within a run)
                ok = np.isfinite(x)
                a, b = np.interp([start, end], x[ok], st[ok]) if ok.sum() > 1 else (st[0], st[-1])
            pad = 0.02 * (b - a)
            s.zoom = (max(0.0, a - pad), b + pad)
            s.fold()
            self.book.set_data(s, self.book.zoom_data(s, *s.zoom))
        self.figs.flush()

    # ------------------------------------------------------------------ live
    def tick(self) -> int:
        """One poll of the store: stream the rows committed since the cursor; returns rows applied."""
        self.book.begin()
        self.apply_zoom()
        if not self.view.live:
            return 0
        df, cursor = self.view.store.tail(since=self.book.cursor, limit=500_000)
        self.book.cursor = cursor
        if df.empty:
            if self.figs.highlight:
                self.figs.unhighlight(time.monotonic())
                self.figs.flush()
            return 0
        table = self.view.run_table
        known = set(table["id"]) if not table.empty else set()
        if not set(df["run"].unique()) <= known:
            added = self.view.discover_runs()
            if added:
                self.figs.highlight.update({r: time.monotonic() + HIGHLIGHT_S for r in added})
                self.add_runs(added)
        # one grouping of the tick's rows by series in numpy (pandas' per-group overhead, ~1 ms a group,
        # was most of a tick at 64-256 runs)
        key = df["run"].to_numpy(object) + "\x1f" + df["name"].to_numpy(object)
        codes, uniq = pd.factorize(key)
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(uniq)))])
        cols = {c: df[c].to_numpy(float)[order] for c in ("id", "step", "tokens", "wall", "value")}
        shown = set(self.view.runs)
        applied = 0
        for j, k in enumerate(uniq):
            r, n = k.split("\x1f", 1)
            s = self.book.get(r, n) if r in shown else None
            if s is None:
                continue
            sl = slice(bounds[j], bounds[j + 1])
            ids = cols["id"][sl]
            if ids[-1] <= s.last_id:
                continue
            keep = ids > s.last_id
            applied += self.book.append(s, {c: a[sl][keep] for c, a in cols.items()})
        self.figs.unhighlight(time.monotonic())
        self.figs.flush()
        if self.figs.group_sources and applied:
            self.figs.update_bands()
        if applied:
            self.figs.follow_x()
            self.figs.update_end_labels()
            for ov in self.figs.overlays:
                ov.update(self.figs)
        return applied

    def add_runs(self, run_ids: list[str]) -> None:
        """Add new runs to the open figures: their sources and glyphs only, nothing is rebuilt."""
        if not run_ids:
            return
        names: set[str] = set()
        for r in run_ids:
            names.update(self.view.store.metric_names(r))
        if not self.figs.figs or not names & set(self.view.metrics):
            self.view.rebuild()  # first runs of the page, or only metrics not shown yet
            return
        self.book.load([(r, n) for r in run_ids for n in self.view.metrics], keep=True)
        self.figs.add_runs(run_ids)
        self.view.update_info()
