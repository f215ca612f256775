"""The live monitor's series on the server (see ``docs/monitor.md``): one :class:`Series` per (run,
metric) with its min/max summary (:class:`workbench.curves.MinMaxBuckets`), the rows streamed since its
last fold, its smoothing state and a mirror of what its row in the browser holds; :class:`SeriesBook`
loads them from the store's block summaries, decimates a zoomed range from the store, and turns a
tick's new rows into the patches the browser needs (O(new rows) per tick, O(buckets) per fold)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bokeh.models import ColumnDataSource

from workbench.curves import EmaState, MinMaxBuckets, ema, minmax_indices, smoothing_for

LINE_POINTS_MIN = 800
"""Points a line keeps however many runs share its panel: 400 min/max buckets, about one per pixel column
of a 560 px panel's frame (Jugel et al. 2014: min and max per column draw the line as all its rows would)."""
PANEL_POINTS = 256 * LINE_POINTS_MIN
"""Points a panel holds at most (above ``LINE_POINTS_MIN`` a line): the browser redraws every line of a panel
on each tick, so its cost follows this, not the number of runs: 256 runs x 1 600 points each made
every frame ~0.5 M points."""
ROW_COLS = ("xs", "ys", "yr", "step")
"""Per-point columns of a metric's multi-line source (x, smoothed y, raw y, step), one array per run."""


class Grow:
    """A float64 array with amortised O(1) append, and the min/max of its finite values (and the smallest
    positive one, for log axes) kept up to date lazily: :meth:`extent` looks only at values appended since
    its last call, so a tick's extent of what is drawn costs O(new points), not O(points shown)."""

    def __init__(self, data: np.ndarray | None = None) -> None:
        self._a = np.asarray([] if data is None else data, dtype=float).copy()
        self.n = self._a.size
        self._seen, self._lo, self._hi, self._plo = 0, np.inf, -np.inf, np.inf

    def extent(self, positive: bool = False) -> tuple[float, float] | None:
        """(min, max) of the finite values (of the positive ones with ``positive``); None when none."""
        if self._seen < self.n:
            v = self._a[self._seen: self.n]
            v = v[np.isfinite(v)]
            if v.size:
                self._lo, self._hi = min(self._lo, float(v.min())), max(self._hi, float(v.max()))
                p = v[v > 0]
                if p.size:
                    self._plo = min(self._plo, float(p.min()))
            self._seen = self.n
        lo = self._plo if positive else self._lo
        return (lo, self._hi) if lo <= self._hi else None

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
class Layer:
    """One metric's lines in a panel: one ``multi_line`` source, a row per run. A row's arrays hold the
    points and NaN room after them; new points are patched into the room (``patch`` with a slice), a
    fold replaces the row (``patch`` with the row index), a new run appends a row (``stream``)."""

    name: str
    source: ColumnDataSource
    runs: list[str] = field(default_factory=list)
    patches: dict[str, list] = field(default_factory=dict)

    def queue(self, col: str, index: Any, values: Any) -> None:
        """A patch of ``col``: a row replaced (``index`` the row, ``values`` an array: one binary buffer), or
        new points into a row's room (``index`` ``(row, slice)``: the few values go as a list, inline in
        the message's JSON; as arrays, each would be a separate binary buffer: 1 024 websocket frames
        a tick at 256 runs)."""
        if isinstance(index, tuple):
            values = np.asarray(values, dtype=float).tolist()
        self.patches.setdefault(col, []).append((index, values))

    def flush(self) -> None:
        if self.patches:
            self.source.patch(self.patches)
            self.patches = {}


def padded(a: np.ndarray, cap: int) -> np.ndarray:
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
    pending: dict[str, Grow] = field(default_factory=lambda: {k: Grow() for k in ("step", "tokens", "wall", "value")})
    state: EmaState = field(default_factory=EmaState)
    layer: Layer | None = None  # the metric's multi-line source this series is a row of (None: not drawn)
    row: int = -1
    cap: int = 0  # length of the row's arrays in the browser (points + NaN room for streaming)
    shown: dict[str, Grow] = field(default_factory=dict)  # x, ys, y (raw), step as the browser has them
    zoom: tuple[float, float] | None = None  # the step range shown at full resolution, if zoomed

    @property
    def n(self) -> int:
        return self.buckets.n + self.pending["step"].n

    def fold(self) -> None:
        p = self.pending
        if p["step"].n:
            self.buckets.append(p["step"].a, p["value"].a, p["tokens"].a, p["wall"].a)
            self.pending = {k: Grow() for k in p}


class SeriesBook:
    """Every series the page holds, and the store cursor its rows have been read to. ``view`` is the
    monitor app (read: ``store``, ``x_axis``, ``smoothing``, ``settings.max_points``)."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.series: dict[tuple[str, str], Series] = {}
        self.cursor = 0
        self._n_added = 0
        self._weights: tuple[float | None, dict[str, float]] = (None, {})  # (smoothing, metric -> weight)
        self._x_axis = "step"
        self._mp = 0  # points per line, set by load (0: not yet)

    @property
    def max_points(self) -> int:
        """Points per line: ``settings.max_points``, fewer when many runs share a panel (at most
        ``PANEL_POINTS`` a panel, never under ``LINE_POINTS_MIN`` a line); fixed when the series are
        (re)loaded, so runs that join later get the same resolution."""
        return self._mp or self._target()

    def _target(self) -> int:
        mp = self.view.settings.max_points
        return min(mp, max(LINE_POINTS_MIN, PANEL_POINTS // max(1, len(self.view.runs))))

    @property
    def buckets(self) -> int:
        return max(2, self.max_points // 2)

    @property
    def slack(self) -> int:
        return max(32, self.max_points // 8)

    def get(self, run: str, name: str) -> Series | None:
        return self.series.get((run, name))

    def load(self, pairs: list[tuple[str, str]], keep: bool = False) -> None:
        """Summaries of the series not held yet, from the store's block summaries (one snapshot). Unless
        ``keep`` (runs joining an open page), the points per line are set afresh (:attr:`max_points`)."""
        if not keep or not self._mp:
            self._mp = self._target()
        if self.series and next(iter(self.series.values())).buckets.max_buckets != self.buckets:
            self.series = {}  # max_points changed: summaries at the new resolution
        self.begin()
        need = [p for p in pairs if p not in self.series]
        if not need:
            return
        ov, cursor = self.view.store.overview(need, max_buckets=self.buckets)
        if not self.cursor:  # rows after the snapshot come by the tail (each series skips ids <= its last_id)
            self.cursor = cursor
        for (r, n), o in ov.items():
            if "rows" in o:
                rows = o["rows"]
                b = MinMaxBuckets.from_points(rows["step"], rows["value"], rows["tokens"], rows["wall"],
                                              max_buckets=self.buckets)
            else:
                b = MinMaxBuckets.from_buckets(o["width"], o["b"], o["cols"], max_buckets=self.buckets,
                                               last=o["last"], first_wall=o["first_wall"])
            self._n_added += 1
            slack = self.slack + (self._n_added * 37) % self.slack  # staggered: folds spread over ticks
            self.series[(r, n)] = Series(r, n, b, cursor, slack)

    def begin(self) -> None:
        """Take the view's smoothing and x axis for the series' work that follows (a tick, a load): read
        once, not per series (a param read costs ~40 us: 256 series made it 10 ms a tick)."""
        self._x_axis = self.view.x_axis
        sm = self.view.smoothing
        if self._weights[0] != sm:
            self._weights = (sm, {})

    def weight(self, name: str) -> float:
        """The smoothing weight of a metric: none for the schedule's own values (``NOT_SMOOTHED``)."""
        if self._weights[0] is None:
            self.begin()
        sm, ws = self._weights
        w = ws.get(name)
        if w is None:
            w = ws[name] = smoothing_for(name, sm)
        return w

    def _ema_state(self, s: Series, ys: np.ndarray) -> None:
        """Continue smoothing new rows from the last smoothed point shown (or start afresh)."""
        fin = ys[np.isfinite(ys)] if ys.size else ys
        w = self.weight(s.name)
        if not w or not fin.size:
            s.state = EmaState()
            return
        count = s.buckets.n  # the debias factor 1 - w**count is 1 for all practical counts
        s.state = EmaState(m=float(fin[-1]) * -np.expm1(count * np.log(w)), count=count)

    def overview_data(self, s: Series) -> dict[str, np.ndarray]:
        s.fold()
        d = s.buckets.points(self.view.x_axis, self.weight(s.name))
        self._ema_state(s, d["ys"])
        return d

    def zoom_data(self, s: Series, lo: float, hi: float) -> dict[str, np.ndarray]:
        """The series' rows with ``lo <= step <= hi`` at full resolution, min/max decimated to max_points."""
        mp = self.max_points
        d = self.view.store.series(s.run, s.name, steps=(lo, hi))
        idx = minmax_indices(d["value"], mp) if d["value"].size > mp else slice(None)
        y = d["value"][idx]
        w = self.weight(s.name)
        if w:
            prev, st = s.shown.get("ys"), s.shown.get("step")
            seed = EmaState()
            if prev is not None and st is not None and st.n:
                k = int(np.searchsorted(st.a, lo)) - 1
                if k >= 0 and np.isfinite(prev.a[k]):
                    seed = EmaState(m=float(prev.a[k]) * -np.expm1(s.n * np.log(w)), count=s.n)
            ys = ema(d["value"], w, state=seed)[idx]
        else:
            ys = y
        step = d["step"][idx]
        x_axis = self.view.x_axis
        x = step if x_axis == "step" else d["tokens"][idx] if x_axis == "tokens" else \
            d["wall"][idx] - s.buckets.first_wall
        return {"x": x, "y": y, "ys": ys, "step": step}

    def set_data(self, s: Series, data: dict[str, np.ndarray]) -> None:
        """Replace what the browser shows of a series (its row, with fresh NaN room after the points)."""
        s.shown = {k: Grow(data[k]) for k in ("x", "ys", "y", "step")}
        if s.layer is not None:
            s.cap = data["x"].size + s.slack + 8
            for col, k in zip(ROW_COLS, ("x", "ys", "y", "step")):
                s.layer.queue(col, s.row, padded(data[k], s.cap))

    def row(self, s: Series) -> dict[str, np.ndarray]:
        """A new browser row for ``s`` (its summary and NaN room), and the mirror of it."""
        data = self.overview_data(s)
        s.shown = {k: Grow(data[k]) for k in ("x", "ys", "y", "step")}
        s.cap = data["x"].size + s.slack + 8
        return {col: padded(data[k], s.cap) for col, k in zip(ROW_COLS, ("x", "ys", "y", "step"))}

    def append(self, s: Series, g: dict[str, np.ndarray]) -> int:
        """Take a series' new rows (``id, step, tokens, wall, value`` arrays, commit order) and queue what
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
                self.set_data(s, self.zoom_data(s, *s.zoom))
                return step.size
        elif s.pending["step"].n > s.slack:
            self.set_data(s, self.overview_data(s))
            return step.size
        w = self.weight(s.name)
        if w:
            ys, s.state = ema(val, w, state=s.state, return_state=True)
        else:
            ys = val
        x_axis = self._x_axis
        x = step if x_axis == "step" else tok if x_axis == "tokens" else wall - s.buckets.first_wall
        new = {"x": x, "y": val, "ys": ys, "step": step}
        at = s.shown["x"].n
        for k in ("x", "ys", "y", "step"):
            s.shown[k].extend(new[k])
        if s.layer is not None:
            if at + step.size > s.cap:  # no room left in the browser's row: fold and resend it
                self.set_data(s, self.zoom_data(s, *s.zoom) if s.zoom is not None else self.overview_data(s))
            else:
                sl = slice(at, at + step.size)
                for col, k in zip(ROW_COLS, ("x", "ys", "y", "step")):
                    s.layer.queue(col, (s.row, sl), new[k])
        return step.size
