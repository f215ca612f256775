"""The live monitor's ranges, set on the server. x: one ``Range1d`` shared by every panel (zoom one, zoom
all) that follows the data as it grows, with headroom (sent now and then, not every tick), until the user
zooms; its reset always goes to the data's current extent (:class:`XRange`). y: one ``Range1d`` per panel,
set from the min/max of what the panel draws (+ ``PAD`` of the span on each side, in log10 on a log y
axis) until the user zooms that panel; its reset goes back to the data's extent (and following resumes).

Bokeh's default ``DataRange1d`` is computed in the browser from the glyph bounds; the panels' multi-line
rows are NaN-padded arrays patched in place, which does not make BokehJS recompute those bounds, so the
y range stayed at the first one or two points of a run (notebook 02's live view, the monitor page).

A range the server set can come back from the browser later, as if the user had moved it (seen in
JupyterLab, notebook 02's live view). Come back late, when the data had grown, it read as a zoom into the
first points: the view re-read that window and drew no new point (a CI run saw it fall from 3 points to 2
while the run trained on). :class:`ServerSet` keeps the values the server set, so such an echo is told
from a zoom: the user's tools compute new values, never exactly one the server sent."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from bokeh.models import Range1d

PAD = 0.05
"""Padding on each side, as a share of the drawn span (of its log10 on a log axis)."""
SHRINK = 0.6
"""The range is narrowed again when what is drawn spans less than this share of it (e.g. after a zoom
re-read shows a window of the runs in the other panels)."""


ECHO_MEMORY = 512
"""How many of the starts and ends the server set a range to are remembered (:class:`ServerSet`)."""


class ServerSet:
    """The starts and ends the server set a range to (the last ``ECHO_MEMORY`` of each). A range whose
    start and end are both among them is the server's own, back from the browser (or the reset tool,
    whose range the server sets too), not a zoom of the user's. Start and end are checked apart, as the
    browser sends them as two changes."""

    def __init__(self) -> None:
        self.starts: deque[float] = deque(maxlen=ECHO_MEMORY)
        self.ends: deque[float] = deque(maxlen=ECHO_MEMORY)

    def add(self, start: float, end: float) -> None:
        self.starts.append(float(start))
        self.ends.append(float(end))

    def ours(self, start: float | None, end: float | None) -> bool:
        return start is not None and end is not None and float(start) in self.starts and float(end) in self.ends


class Followed:
    """A ``Range1d`` the server keeps on what is drawn until the user moves it; its reset range always goes
    there. ``auto``: the range the server last showed (None: none yet); ``sent``: every value it set."""

    def __init__(self) -> None:
        self.range, self.auto, self.sent, self.setting = Range1d(0, 1), None, ServerSet(), False

    @property
    def following(self) -> bool:
        """Not moved by the user: nothing shown yet, or a range the server set (its reset range is one)."""
        return self.auto is None or self.sent.ours(self.range.start, self.range.end)

    @property
    def stale(self) -> bool:
        """Following, but showing an older range of the server's than the current one (one come back)."""
        r = self.range
        return self.auto is not None and self.following and (r.start, r.end) != (r.reset_start, r.reset_end)

    def set(self, reset: tuple[float, float] | None, shown: tuple[float, float] | None) -> None:
        """Set the reset range (remembered in ``sent``) and/or the shown one, as the server."""
        self.setting, r = True, self.range
        try:
            if reset is not None:
                (r.reset_start, r.reset_end) = reset
                self.sent.add(*reset)
            if shown is not None:
                (r.start, r.end), self.auto = shown, shown
        finally:
            self.setting = False


class XRange(Followed):
    """The panels' shared x range. ``on_browser(full)`` is called when it changes in the browser: the user's
    zoom (``full`` False), or a range the server set come back (``full`` True: the whole range)."""

    def __init__(self, on_browser: Callable[[bool], None]) -> None:
        super().__init__()
        self.on_browser = on_browser
        self.range.on_change("start", lambda attr, old, new: self._changed())
        self.range.on_change("end", lambda attr, old, new: self._changed())

    def follow(self, ext: tuple[float, float], log: bool) -> None:
        """Onto the data's extent ``ext``: always the reset range; the shown range too unless the user zoomed."""
        t = np.log10 if log else float
        lo, hi = t(ext[0]), t(ext[1])
        pad = max(0.02 * (hi - lo), 0.01 if log else 0.5)
        xr = self.range
        if self.auto is not None and t(xr.reset_start) <= lo and hi <= t(xr.reset_end) - pad:
            return  # the data is inside the range, with room: nothing to send
        start, end = lo - pad, hi + 3 * pad
        start, end = (10 ** start, 10 ** end) if log else (start, end)
        self.set((start, end), (start, end) if self.following else None)

    def _changed(self) -> None:
        if self.setting:
            return
        ours = self.sent.ours(self.range.start, self.range.end)
        if self.stale:  # an old range of the server's: the current one again
            self.set(None, (self.range.reset_start, self.range.reset_end))
        self.on_browser(ours)


class YRanges:
    """Per panel: its y range (:class:`Followed`)."""

    def __init__(self) -> None:
        self.followed: dict[str, Followed] = {}

    @property
    def ranges(self) -> dict[str, Range1d]:
        return {panel: f.range for panel, f in self.followed.items()}

    def new(self, panel: str) -> Range1d:
        self.followed[panel] = Followed()
        return self.followed[panel].range

    def clear(self) -> None:
        self.followed = {}

    def follow(self, figs: Any) -> None:
        """Every built panel's y range onto what it draws, unless the user zoomed it."""
        log = figs.view.settings.log_y
        for panel, (_, members) in figs.figs.items():
            f = self.followed.get(panel)
            ext = extent(figs, panel, members, log)
            if f is None or ext is None:
                continue
            t = np.log10 if log else float
            lo, hi = t(ext[0]), t(ext[1])
            span = hi - lo
            pad = PAD * span if span > 0 else (PAD if log else max(PAD * abs(lo), 1e-3))
            if f.auto is not None and not f.stale:  # (an old range come back is sent anew)
                a, b = t(f.range.reset_start), t(f.range.reset_end)
                if a <= lo and hi <= b and span >= SHRINK * (b - a):
                    continue  # drawn inside the range, filling it: nothing to send
            start, end = lo - pad, hi + pad
            start, end = (10 ** start, 10 ** end) if log else (start, end)
            f.set((start, end), (start, end) if f.following else None)


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
