"""The live monitor's y ranges: one ``Range1d`` per panel, set on the server from the min/max of what the
panel draws (+ ``PAD`` of the span on each side, in log10 on a log y axis) until the user zooms that panel;
its reset goes back to the data's extent (and following resumes).

Bokeh's default ``DataRange1d`` is computed in the browser from the glyph bounds; the panels' multi-line
rows are NaN-padded arrays patched in place, which does not make BokehJS recompute those bounds, so the
y range stayed at the first one or two points of a run (notebook 02's live view, the monitor page)."""

from __future__ import annotations

from typing import Any

import numpy as np
from bokeh.models import Range1d

PAD = 0.05
"""Padding on each side, as a share of the drawn span (of its log10 on a log axis)."""
SHRINK = 0.6
"""The range is narrowed again when what is drawn spans less than this share of it (e.g. after a zoom
re-read shows a window of the runs in the other panels)."""


class YRanges:
    """Per panel: its ``Range1d`` and the range the server last set (``None``: none yet)."""

    def __init__(self) -> None:
        self.ranges: dict[str, Range1d] = {}
        self.auto: dict[str, tuple[float, float] | None] = {}

    def new(self, panel: str) -> Range1d:
        self.ranges[panel], self.auto[panel] = Range1d(0, 1), None
        return self.ranges[panel]

    def clear(self) -> None:
        self.ranges, self.auto = {}, {}

    def follow(self, figs: Any) -> None:
        """Every built panel's y range onto what it draws, unless the user zoomed it."""
        log = figs.view.settings.log_y
        for panel, (_, members) in figs.figs.items():
            yr = self.ranges.get(panel)
            ext = extent(figs, panel, members, log)
            if yr is None or ext is None:
                continue
            t = np.log10 if log else float
            lo, hi = t(ext[0]), t(ext[1])
            span = hi - lo
            pad = PAD * span if span > 0 else (PAD if log else max(PAD * abs(lo), 1e-3))
            auto = self.auto[panel]
            if auto is not None:
                a, b = t(yr.reset_start), t(yr.reset_end)
                if a <= lo and hi <= b and span >= SHRINK * (b - a):
                    continue  # drawn inside the range, filling it: nothing to send
            start, end = lo - pad, hi + pad
            start, end = (10 ** start, 10 ** end) if log else (start, end)
            following = auto is None or (yr.start, yr.end) in (auto, (yr.reset_start, yr.reset_end))
            yr.reset_start, yr.reset_end = start, end
            if following:
                yr.start, yr.end = start, end
                self.auto[panel] = (start, end)


def extent(figs: Any, panel: str, members: list[str], log: bool) -> tuple[float, float] | None:
    """min/max of the y values a panel draws: its runs' lines as shown (smoothed, and the faint raw line
    behind it when drawn; the zoomed window)
    and the forecast lines of an overlay (``y_extent(panel)``); on a log axis, positive values only."""
    from workbench.apps.components.monitor_figures import FAINT_RAW_MAX_RUNS

    v = figs.view  # the raw curve is drawn faint behind the smoothed one for a few runs: in the range too
    cols = ("ys", "y") if v.smoothing and len(v.runs) <= FAINT_RAW_MAX_RUNS and not figs.grouped else ("ys",)
    lo, hi = np.inf, -np.inf
    for r in v.runs:
        for name in members:
            s = figs.book.get(r, name)
            for col in cols:
                y = s.shown.get(col) if s is not None else None
                e = y.extent(positive=log) if y is not None else None  # O(points appended since last time)
                if e is not None:
                    lo, hi = min(lo, e[0]), max(hi, e[1])
    for ov in figs.overlays:
        e = getattr(ov, "y_extent", lambda p: None)(panel)
        if e is not None and hi >= lo and (not log or e[0] > 0):
            lo, hi = min(lo, e[0]), max(hi, e[1])
    return (lo, hi) if hi >= lo else None
