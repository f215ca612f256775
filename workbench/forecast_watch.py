"""Every running run against its forecast: the forecast ahead of the curve with its 95 % band, and a
flag when the observed loss leaves the band for ``k`` consecutive logs ("above forecast since step 1 200").

Where a forecast comes from (in this order):

1. **The task's schedule-aware law** -- a :class:`~workbench.fit.result.FitResult` of a law that takes the
   LR schedule (multi-power law, Luo et al. 2025; LR-annealing law, Tissue et al. 2024) saved for the run's
   task with :func:`save_task_law`. It predicts the whole curve from the run's schedule and peak LR
   (:func:`workbench.fit.predict.predict_schedule`), so every logged point is out of sample.
2. **Else the run's own learning curve** -- :func:`workbench.fit.learning_curves.fit_curve` (Domhan et al.
   2015: a BIC-weighted family ensemble with a block-bootstrap predictive band) fitted on a *prefix* of the
   run: the first ``p`` logged points, ``p`` the largest of a geometric grid (ratio sqrt 2, from
   :data:`MIN_POINTS`) not above 3/4 of the points logged. The points after the prefix are out of sample
   and are the ones the flag checks; the fit is redone only when ``p`` moves up the grid (a few times per
   run), so a refresh costs a store read and a band lookup.

Cheap to refresh every few seconds: :class:`ForecastWatch` caches the fitted forecast per run and prefix.
No Panel here (science; the runs page, ``workbench runs list`` and the live monitor show it).
"""

from __future__ import annotations

import math
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

LEVEL = 0.95
K_CONSECUTIVE = 3
MIN_POINTS = 12
FAMILIES = ("pow3", "log_power", "pow4")
"""The learning-curve families of a watch forecast: three of Domhan et al.'s that follow loss curves (a
power law with an offset, log-power, a 4-parameter power law), for a fit in seconds instead of the eleven
of the default ensemble (5 s against 27 s on this 2-core machine at load 9)."""
LAW_KIND = "task_law"


@dataclass(frozen=True)
class Flag:
    """The observed loss left the band: ``direction`` ``above`` / ``below`` since ``step`` (``n`` logs)."""

    direction: str
    step: int
    n: int

    @property
    def text(self) -> str:
        return f"{self.direction} forecast since step {self.step:,}".replace(",", " ")


@dataclass
class RunForecast:
    """A run's forecast: ``steps``/``mean``/``lo``/``hi`` from the anchor to the run's last step (the band
    at ``level``), the ``source`` (``law:<name>`` or ``learning curve``), the prefix it was fitted on
    (``anchor``: last step of the prefix, 0 for a law), the ``flag`` (or None) and a ``note`` saying why
    there is no forecast when ``steps`` is empty."""

    run: str
    metric: str
    source: str = ""
    anchor: int = 0
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    level: float = LEVEL
    flag: Flag | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return len(self.steps) > 0


def off_band(steps: np.ndarray, values: np.ndarray, lo: np.ndarray, hi: np.ndarray,
             k: int = K_CONSECUTIVE) -> Flag | None:
    """The flag of the *last* streak of points outside [lo, hi] on one side, when it is ``k`` or more
    points long and reaches the last point (a run back inside the band is not flagged)."""
    v, lo, hi = (np.asarray(a, float) for a in (values, lo, hi))
    side = np.where(v > hi, 1, np.where(v < lo, -1, 0))
    if not len(side) or side[-1] == 0:
        return None
    same = side == side[-1]
    n = len(same) - (int(np.flatnonzero(~same)[-1]) + 1 if (~same).any() else 0)
    if n < k:
        return None
    return Flag("above" if side[-1] > 0 else "below", int(steps[len(steps) - n]), n)


def prefix_length(n: int) -> int:
    """Points of the prefix a learning-curve forecast is fitted on (0: too few logged yet)."""
    if n < MIN_POINTS / 0.75:
        return 0
    p = MIN_POINTS * 2 ** (math.floor(2 * math.log2(0.75 * n / MIN_POINTS)) / 2)
    return int(p)


# ----------------------------------------------------------------------------- the task's law
def save_task_law(store: Any, fit_result: Any, task: str, metric: str = "train_loss",
                  folder: str | Path | None = None) -> Path:
    """Save ``fit_result`` (a schedule-aware law's FitResult) as the forecast law of ``task`` for ``metric``:
    an owner-only JSON file (``<store dir>/laws``) and a ``task_law`` artifact; the newest one wins."""
    from workbench.safeio import make_dirs, open_new

    if "lrs" not in getattr(getattr(fit_result, "law", None), "inputs", ()):
        raise WorkbenchError("fit_result: the forecast law of a task must take the LR schedule (multi_power, "
                             "lr_annealing, ...)")
    root = Path(folder) if folder else (Path(store.path).parent if str(store.path) != ":memory:" else Path("runs"))
    d = make_dirs(root / "laws", shared=getattr(store, "shared", None))
    path = d / f"{task}-{fit_result.law.name}-{uuid.uuid4().hex[:8]}.json"
    with open_new(path, shared=getattr(store, "shared", None)) as f:
        f.write(fit_result.to_json().encode())
    store.add_artifact(None, LAW_KIND, path, {"task": task, "metric": metric, "law": fit_result.law.name})
    return path


_LAWS: dict[tuple[str, float], Any] = {}


def task_law(store: Any, task: str) -> tuple[Any, str] | None:
    """``(FitResult, metric)`` of the newest law saved for ``task`` whose file is still there, or None."""
    arts = store.artifacts(None, kind=LAW_KIND)
    for _, row in arts.iloc[::-1].iterrows():
        meta = row["meta"] or {}
        p = Path(row["path"])
        if meta.get("task") != task or not p.exists():
            continue
        key = (str(p), p.stat().st_mtime)
        if key not in _LAWS:
            from workbench.fit.result import FitResult

            _LAWS[key] = FitResult.from_json(p.read_text())
        return _LAWS[key], str(meta.get("metric", "train_loss"))
    return None


# ----------------------------------------------------------------------------- forecasts
def _curve(store: Any, run_id: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    m = store.metrics(run_id, [metric])
    m = m[(m["step"] > 0) & np.isfinite(m["value"].astype(float))]
    return m["step"].to_numpy(np.int64), m["value"].to_numpy(float)


def _pick_metric(store: Any, run_id: str) -> str:
    names = store.metric_names(run_id)
    for n in ("train_loss", "test_loss", "loss"):
        if n in names:
            return n
    return next((n for n in names if "loss" in n), "train_loss")


def _ahead(anchor: int, total: int, last: int) -> np.ndarray:
    end = max(total, last, anchor + 1)
    return np.unique(np.linspace(max(anchor, 1), end, 80).round().astype(np.int64))


class ForecastWatch:
    """Forecasts and flags of runs, cached: ``watch(store, run_id)`` refits only when the prefix grows (or
    the task's law changes); the band at new points is read off the cached forecast."""

    def __init__(self, level: float = LEVEL, k: int = K_CONSECUTIVE, n_boot: int = 16, n_starts: int = 8,
                 families: tuple[str, ...] = FAMILIES) -> None:
        if not 0 < level < 1:
            raise WorkbenchError(f"level: must lie in (0, 1), got {level!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise WorkbenchError(f"k: must be an integer >= 1 (consecutive logs outside the band), got {k!r}")
        self.level, self.k, self.n_boot, self.n_starts, self.families = level, k, n_boot, n_starts, families
        self._fits: dict[tuple, Any] = {}
        self.fit_seconds = 0.0

    def watch(self, store: Any, run_id: str, metric: str | None = None) -> RunForecast:
        """The forecast of ``run_id`` with its flag (never raises for a curve it cannot forecast: ``note``)."""
        rec = store.get_run(run_id)
        cfg = rec["config"] or {}
        law = task_law(store, rec["task"]) if rec["task"] else None
        if law is not None and metric in (None, law[1]):
            out = self._law_forecast(store, run_id, cfg, *law)
            if out.ok:
                return out
        return self._curve_forecast(store, run_id, cfg, metric or _pick_metric(store, run_id))

    def _law_forecast(self, store: Any, run_id: str, cfg: dict, result: Any, metric: str) -> RunForecast:
        from workbench.configcheck import fill_horizon
        from workbench.fit.data import lr_array
        from workbench.fit.predict import predict_schedule
        from workbench.schedule_predict import positive_lr

        out = RunForecast(run_id, metric, f"law:{result.law.name}", level=self.level)
        steps, values = _curve(store, run_id, metric)
        total = int(cfg.get("steps") or (steps[-1] if len(steps) else 0))
        if total < 2 or cfg.get("lr") is None:
            out.note = "no step count or peak LR in the run's config"
            return out
        key = ("law", run_id, id(result), total)
        try:
            if key not in self._fits:
                spec = fill_horizon(dict(cfg.get("schedule") or {"name": "constant"}), total)
                t0 = time.perf_counter()
                grid = np.unique(np.concatenate([np.arange(1, total + 1, max(1, total // 400)), [total]]))
                lrs = positive_lr(lr_array(spec, float(cfg["lr"]), total))  # a decay to 0: the law's limit
                with warnings.catch_warnings():  # out-of-domain points are flagged in the Prediction, not warned
                    warnings.simplefilter("ignore")
                    self._fits[key] = (grid, predict_schedule(result, lrs, grid, self.level))
                self.fit_seconds += time.perf_counter() - t0
            grid, p = self._fits[key]
        except WorkbenchError as e:
            out.note = f"the task's law cannot predict this run: {e}"
            return out
        lo, hi = np.asarray(p.lo, float), np.asarray(p.hi, float)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.any(hi > lo)):
            out.note = f"the task's law has no band ({p.band_kind}); fit it with bootstrap= or calibrate=True"
            return out
        out.steps, out.mean, out.lo, out.hi = grid, np.asarray(p.mean, float), lo, hi
        if len(steps):
            lo, hi = np.interp(steps, grid, out.lo), np.interp(steps, grid, out.hi)
            out.flag = off_band(steps, values, lo, hi, self.k)
        return out

    def _curve_forecast(self, store: Any, run_id: str, cfg: dict, metric: str) -> RunForecast:
        from workbench.fit.learning_curves import fit_curve

        out = RunForecast(run_id, metric, "learning curve", level=self.level)
        steps, values = _curve(store, run_id, metric)
        p = prefix_length(len(steps))
        if not p:
            out.note = f"{len(steps)} logged point(s) of {metric}; a forecast needs {math.ceil(MIN_POINTS / 0.75)}"
            return out
        key = ("curve", run_id, metric, p, int(steps[p - 1]))
        if key not in self._fits:
            t0 = time.perf_counter()
            try:
                self._fits[key] = fit_curve(steps[:p], values[:p], families=self.families, n_boot=self.n_boot,
                                            n_starts=self.n_starts,
                                            max_points=120, backtest=False,
                                            bound=0.0 if values.min() >= 0 else None)
            except WorkbenchError as e:
                self._fits[key] = e
            self.fit_seconds += time.perf_counter() - t0
        fc = self._fits[key]
        if isinstance(fc, Exception):
            out.note = f"no learning-curve forecast: {fc}"
            return out
        out.anchor = int(steps[p - 1])
        out.steps = _ahead(out.anchor, int(cfg.get("steps") or 0), int(steps[-1]))
        out.mean = np.asarray(fc.predict(out.steps), float)
        out.lo, out.hi = fc.band(out.steps, self.level)
        later = steps[p:]
        if len(later):
            lo, hi = fc.band(later, self.level)
            out.flag = off_band(later, values[p:], lo, hi, self.k)
        return out

    def flags(self, store: Any, run_ids: list[str]) -> dict[str, str]:
        """``run -> flag text`` ("" when inside its band or without a forecast) for ``run_ids``."""
        out = {}
        for r in run_ids:
            fc = self.watch(store, r)
            out[r] = fc.flag.text if fc.flag is not None else ""
        return out


def running_flags(store: Any, run_ids: list[str] | None = None, watch: ForecastWatch | None = None,
                  budget_s: float | None = None) -> dict[str, str]:
    """Flags of the store's *running* runs (of ``run_ids`` when given): ``run -> text``. With ``budget_s``,
    runs are checked (newest first) until that many seconds have passed; the ones left out are missing
    from the result (a command line listing many running runs stays quick)."""
    runs = store.runs(status="running")
    ids = [r for r in runs["id"] if run_ids is None or r in set(run_ids)]
    w, t0, out = watch or ForecastWatch(), time.monotonic(), {}
    for r in reversed(ids):
        if budget_s is not None and out and time.monotonic() - t0 > budget_s:
            break
        out.update(w.flags(store, [r]))
    return out
