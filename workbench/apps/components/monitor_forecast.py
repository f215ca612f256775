"""The live monitor's forecast overlay: each running run's forecast (:mod:`workbench.forecast_watch`: the
task's schedule-aware law, else a learning-curve forecast from the run's own prefix) drawn ahead of its
curve as a dotted line in a 95 % band, and the flag of a run whose loss left the band for several logs
("above forecast since step 1 200") written at the end of its curve.

The forecasts are computed off the page's thread every :data:`REFRESH_S` seconds: one background thread
per page hands each pass to ONE worker process shared by the server's pages (spawned on first use, with its
own store handle and its own cached fits), so a fit (seconds of Python-heavy L-BFGS) never holds the
server's GIL; :meth:`ForecastOverlay.update` (the session's thread) only copies a finished result into the
sources, so the stream of new points never waits for a fit. Per loss metric a
panel gets one band source ``wb-fc|<metric>`` (a row per running run: ``xs``/``ys`` forecast line,
``bxs``/``bys`` band polygon, ``run``, ``color``, ``flag``) drawn by one ``patches`` and one ``multi_line``,
and one label source ``wb-fcflag|<metric>`` -- a constant number of glyphs however many runs.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from bokeh.models import ColumnDataSource

from workbench.forecast_watch import ForecastWatch, RunForecast

_POOL: Any = None
_POOL_LOCK = threading.Lock()
_WATCHES: dict[str, tuple[Any, ForecastWatch]] = {}  # in the worker process: store path -> (store, cached fits)

MAX_RUNS = 16
"""Forecasts are computed and drawn while at most this many runs are shown: a pass fits every shown running
run (at 256 runs one pass took minutes of a core, which a 2-core machine's live page could not spare), and
hundreds of bands over each other hide the curves (group bands summarise such a sweep)."""
REFRESH_S = 3.0
"""Seconds between two passes of the background thread over the running runs."""
AHEAD = 0.5
"""The forecast is drawn this fraction of a run's logged steps ahead of its last point (at most to its end),
so a young run's curve is not squeezed into the left of the panel; the x range follows (``x_extent``)."""
EMPTY = {"xs": [], "ys": [], "bxs": [], "bys": [], "run": [], "color": [], "flag": []}


def is_loss(metric: str) -> bool:
    return "loss" in metric


class ForecastOverlay:
    """An :class:`~workbench.apps.components.monitor_figures.Overlay` of the monitor ``view`` (read:
    ``store``, ``runs``, ``x_axis``, ``settings.forecast``, ``run_names``). The background thread starts
    with the first panel attached in a served session (``start``); :meth:`refresh` computes one pass on the
    caller's thread (notebooks, tests)."""

    def __init__(self, view: Any, watch: ForecastWatch | None = None) -> None:
        self.view = view
        self.watch = watch or ForecastWatch()
        self.sources: dict[tuple[str, str], tuple[ColumnDataSource, ColumnDataSource]] = {}
        self.results: dict[tuple[str, str], RunForecast] = {}
        self.pending: list[tuple[Any, str, list[str]]] = []  # (figure, panel, members) awaiting a running run
        self.version, self.applied = 0, -1
        self.error = ""
        self.x_end: float | None = None
        self.y_ext: dict[str, tuple[float, float]] = {}  # panel -> min/max of its forecast lines
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """On in the settings, and at most :data:`MAX_RUNS` runs shown."""
        return bool(getattr(self.view.settings, "forecast", True)) and len(self.view.runs) <= MAX_RUNS

    # ------------------------------------------------------------------ Overlay protocol
    def attach(self, fig: Any, panel: str, members: list[str], figures: Any) -> None:
        """Forecast glyphs on a new panel; while no shown run is running they are only promised (a page of
        finished runs gets none of their ~45 Bokeh models, nor the forecast thread and worker process) and
        added by :meth:`update` once one is (a new run's first rows)."""
        if not self.enabled:
            return
        self.pending = [p for p in self.pending if figures.figs.get(p[1], (None,))[0] is p[0]]  # this build's
        if not self._any_running():
            self.pending.append((fig, panel, members))
            return
        self._attach(fig, panel, members)

    def _any_running(self) -> bool:
        df = self.view.run_table
        return not df.empty and bool(df.loc[df["id"].isin(self.view.runs), "status"].eq("running").any())

    def _attach(self, fig: Any, panel: str, members: list[str]) -> None:
        for metric in (m for m in members if is_loss(m)):
            src = ColumnDataSource(dict(EMPTY), name=f"wb-fc|{metric}")
            lbl = ColumnDataSource({"x": [], "y": [], "text": [], "color": [], "align": []}, name=f"wb-fcflag|{metric}")
            fig.patches(xs="bxs", ys="bys", source=src, fill_color="color", fill_alpha=0.14, line_alpha=0)
            fig.multi_line(xs="xs", ys="ys", source=src, line_color="color", line_dash="dotted", line_width=1.6,
                           name=f"forecast {metric}")
            fig.text(x="x", y="y", text="text", text_color="color", source=lbl, text_align="align",
                     text_baseline="bottom", y_offset=-6, text_font_size="9pt", text_font_style="bold")
            self.sources[(panel, metric)] = (src, lbl)
        self.applied = -1
        self.start()

    def update(self, figures: Any) -> None:
        """Copy the newest finished forecasts into the sources (cheap when nothing changed)."""
        if self.pending and self.enabled and self._any_running():
            pending, self.pending = self.pending, []
            for fig, panel, members in pending:
                self._attach(fig, panel, members)
        if not self.sources:
            return
        if not self.enabled:  # more runs than forecasts are drawn for joined the page: take the bands off
            if self.x_end is not None or self.y_ext:
                for src, lbl in self.sources.values():
                    src.data, lbl.data = dict(EMPTY), {"x": [], "y": [], "text": [], "color": [], "align": []}
                self.x_end, self.y_ext, self.applied = None, {}, -1
            return
        if self.applied == self.version:
            return
        with self._lock:
            results, self.applied = dict(self.results), self.version
        runs = list(self.view.runs)
        ends, self.y_ext = [], {}
        for (panel, metric), (src, lbl) in self.sources.items():
            rows = {k: [] for k in EMPTY}
            flags = {"x": [], "y": [], "text": [], "color": [], "align": []}
            for r in runs:
                fc = results.get((r, metric))
                if fc is None or not fc.ok:
                    continue
                x = self._x(figures, r, metric, fc.steps)
                last = self._last(figures, r, metric)
                if x is None or last is None:
                    continue
                ok = np.isfinite(x) & np.isfinite(fc.lo) & np.isfinite(fc.hi) & (fc.steps <= (1 + AHEAD) * last[2])
                if ok.sum() < 2:
                    continue
                x, mean, lo, hi = x[ok], fc.mean[ok], fc.lo[ok], fc.hi[ok]
                ends.append(float(x[-1]))
                e = self.y_ext.get(panel, (np.inf, -np.inf))
                self.y_ext[panel] = (min(e[0], float(mean.min())), max(e[1], float(mean.max())))
                color = figures.colour(r)
                text = fc.flag.text if fc.flag is not None else ""
                for k, v in (("xs", x), ("ys", mean), ("bxs", np.r_[x, x[::-1]]), ("bys", np.r_[hi, lo[::-1]]),
                             ("run", r), ("color", color), ("flag", text)):
                    rows[k].append(v)
                if text:  # into the forecast's room ahead, or back from the end of the x range
                    align = "left" if last[0] < x[0] + 0.5 * (x[-1] - x[0]) else "right"
                    for k, v in zip(("x", "y", "text", "color", "align"), (*last[:2], text, color, align)):
                        flags[k].append(v)
            src.data = rows
            lbl.data = flags
        self.x_end = max(ends) if ends else None
        getattr(figures, "follow_x", lambda: None)()  # the shared x range takes the forecasts in

    def x_extent(self) -> float | None:
        """The right end of the forecasts drawn (the monitor's x range includes it)."""
        return self.x_end

    def y_extent(self, panel: str) -> tuple[float, float] | None:
        """min/max of the forecast lines drawn in ``panel`` (the panel's y range includes them)."""
        return self.y_ext.get(panel)

    # ------------------------------------------------------------------ x positions
    def _x(self, figures: Any, run: str, metric: str, steps: np.ndarray) -> np.ndarray | None:
        """x of ``steps`` on the page's axis: the step itself, else through the run's drawn step -> x (linear
        beyond its last point: tokens are proportional to steps; wall time roughly so)."""
        if self.view.x_axis == "step":
            return np.asarray(steps, float)
        s = figures.book.get(run, metric)
        if s is None or not s.shown or not s.shown["x"].n:
            return None
        st, x = s.shown["step"].a, s.shown["x"].a
        ok = np.isfinite(st) & np.isfinite(x) & (st > 0)
        if ok.sum() < 2:
            return None
        st, x = st[ok], x[ok]
        rate = x[-1] / st[-1]
        return np.where(steps <= st[-1], np.interp(steps, st, x), x[-1] + (steps - st[-1]) * rate)

    def _last(self, figures: Any, run: str, metric: str) -> tuple[float, float, float] | None:
        """x, y and step of the run's last drawn point."""
        s = figures.book.get(run, metric)
        if s is None or not s.shown or not s.shown["x"].n:
            return None
        x, y, st = s.shown["x"].a, s.shown["ys"].a, s.shown["step"].a
        ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(st)
        return (float(x[ok][-1]), float(y[ok][-1]), float(st[ok][-1])) if ok.any() else None

    # ------------------------------------------------------------------ background
    def refresh(self, out: dict | None = None) -> int:
        """One pass on the caller's thread (notebooks, tests; the page's thread uses the worker process):
        the forecast of every shown running run for every attached loss metric, or the given results."""
        if out is None:
            out = forecasts(self.view.store, list(self.view.runs), sorted({m for _, m in self.sources}), self.watch)
        with self._lock:
            self.results = out
            self.version += 1
        return len(out)

    def start(self) -> None:
        """Start the background thread (once, and only in a served session: a notebook calls refresh)."""
        import panel as pn

        doc = pn.state.curdoc
        if self._thread is not None or doc is None or doc.session_context is None:
            return
        self._thread = threading.Thread(target=self._loop, name="wb-monitor-forecast", daemon=True)
        self._thread.start()
        pn.state.on_session_destroyed(lambda ctx: self.stop())
        # a finished forecast is shown within a second even when no new rows arrive (update returns at once
        # when there is nothing new); the monitor's tick also calls update after applying rows
        self.view.add_periodic(lambda: self.update(self.view.figs), 1000)

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        path = str(self.view.store.path)
        while not self._stop.is_set():
            t0 = time.monotonic()
            if self.enabled and self.sources:
                try:
                    job = worker_pool().submit(_worker_pass, path, list(self.view.runs),
                                               sorted({m for _, m in self.sources}))
                    self.refresh(job.result())
                    self.error = ""
                except Exception as e:  # noqa: BLE001 - a failed pass is retried; the page keeps streaming
                    self.error = f"{type(e).__name__}: {e}"
                    if type(e).__name__ == "BrokenProcessPool":  # the worker died: spawn a new one next pass
                        reset_pool()
            self._stop.wait(max(0.5, REFRESH_S - (time.monotonic() - t0)))


def forecasts(store: Any, runs: list[str], metrics: list[str], watch: ForecastWatch) -> dict:
    """``(run, metric) -> RunForecast`` of the *running* ones of ``runs`` for each of ``metrics`` they log."""
    running = set(store.runs(status="running")["id"]) if metrics else set()
    out = {}
    for r in (r for r in runs if r in running):
        names = set(store.metric_names(r))
        for m in metrics:
            if m in names:
                out[(r, m)] = watch.watch(store, r, m)
    return out


def _worker_pass(path: str, runs: list[str], metrics: list[str]) -> dict:
    """One pass in the worker process (its store handle and fits cached there across passes and pages)."""
    from workbench.store import RunStore

    if path not in _WATCHES:
        _WATCHES[path] = (RunStore(path, mark_interrupted=False), ForecastWatch())
    store, watch = _WATCHES[path]
    return forecasts(store, runs, metrics, watch)


def worker_pool() -> Any:
    """The one forecast worker process of this server (spawned: no fork of a threaded server)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            _POOL = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
        return _POOL


def reset_pool() -> None:
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
