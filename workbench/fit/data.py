"""Inputs of a fit from anywhere: arrays, a pandas DataFrame, a CSV with a column mapping, loss curves
with their per-step LR (``FitData.from_frame(df, step=, loss=, lr=)``, ``FitData.from_csv(paths, step=...)``,
``FitData.from_curves``), or the run store (final metrics of the runs of a sweep).

Step convention (the one place it is stated; every schedule-aware law, ``predict_schedule``, the CLI and
the pages follow it)
------------------------------------------------------------------------------------------------------
**The loss logged at step s was measured after s optimizer updates, so it depends on the learning rates of
updates 0, 1, ..., s−1.** A per-update LR array ``lr`` (``lr[i]`` = the LR of update i, as
``Schedule(i)·peak`` gives it) therefore needs at least s values for a loss at step s, and a run of a
``T``-step schedule can be predicted up to step T (its final loss). Step 0 is the loss before training: no
schedule-aware law models it (the LR area S1 is 0), so curves start at step >= 1 (``from_frame`` drops
step-0 rows). Logged LR columns are read as "the LR of update s" at row s and interpolated linearly between
logged steps (:func:`per_step_lr`). :func:`check_steps` rejects data that breaks the convention and says
which convention the data seems to follow instead.

Holdout (one meaning everywhere): the points kept out of a fit and predicted afterwards. With groups
(curves or runs) whole groups are held out, else single points (:func:`holdout_mask`, used by
``fit(holdout_fraction=...)``, ``workbench fit --holdout`` and the law fitter).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.fit.errors import FitDataError

LR_HEAD = ("ramp from 0", "hold first value")
LOSS_METRICS = ("train_loss", "loss", "val_loss", "test_loss")
"""Loss metrics of the run store that loss curves are read from."""

# Bounds on what a file (a page visitor's upload above all) can make a process hold (issue 12): a CSV is read
# whole, and a loss curve becomes one LR value per step 0..last step, so one row with step 1e12 must be refused,
# not allocated. The limits are module attributes, read at each call.
MAX_CSV_BYTES = 20_000_000
"""Largest CSV read (an upload, or a file of the data folders), in bytes."""
MAX_CSV_ROWS = 1_000_000
"""Most data rows in one CSV."""
MAX_CURVE_STEPS = 10_000_000
"""Largest step of a loss curve (its per-step LR array has this many float64 values: 80 MB)."""
MAX_TOTAL_STEPS = 40_000_000
"""Most per-step LR values over all curves of one table or load together (320 MB)."""


class CSVError(FitDataError):
    """A CSV that cannot be read, a derived column that cannot be computed, or curves over the limits."""


def check_step_limit(steps: np.ndarray, name: str | None = None) -> None:
    """Refuse a curve whose last step exceeds :data:`MAX_CURVE_STEPS` (before its per-step LR is allocated)."""
    steps = np.asarray(steps, float)
    last = float(np.max(steps)) if len(steps) else 0.0
    if last > MAX_CURVE_STEPS:
        raise CSVError(f"step: {'curve ' + repr(name) + ' has' if name else 'a curve has'} step {last:.6g}, more "
                       f"than the limit of {MAX_CURVE_STEPS:,} steps per curve (MAX_CURVE_STEPS: the laws need "
                       "the LR of every step)")


def lr_array(schedule: object, peak_lr: float = 1.0, total_steps: int | None = None) -> np.ndarray:
    """Per-update absolute LR: a numpy array / list (returned as float64), a ``Schedule`` or a schedule spec
    (dict or name, built with ``workbench.schedules.build``): ``peak_lr · s(arange(T))``."""
    if isinstance(schedule, np.ndarray | list | tuple):
        return np.asarray(schedule, dtype=np.float64)
    if isinstance(schedule, Mapping | str):
        from workbench.schedules import build

        schedule = build(dict(schedule) if isinstance(schedule, Mapping) else schedule)
    if not callable(schedule):
        raise FitDataError(f"schedule: need an LR array, a Schedule or a schedule spec, got {type(schedule).__name__}")
    T = total_steps if total_steps is not None else getattr(schedule, "total_steps", None)
    if T is None:
        raise FitDataError("total_steps: needed for a schedule without total_steps")
    if not peak_lr > 0:
        raise FitDataError(f"peak_lr: must be > 0, got {peak_lr}")
    return peak_lr * np.asarray(schedule(np.arange(int(T))), dtype=np.float64)


def check_steps(name: str, steps: np.ndarray, n_lr: int, *, n_rows_lr: int | None = None,
                allow_zero: bool = False) -> None:
    """Validate the observed ``steps`` of curve ``name`` against a per-update LR array of ``n_lr`` values under
    the step convention (module docstring); the error says which convention the data seems to follow.
    ``allow_zero``: accept step 0 (a law evaluated there gives the untrained limit, infinite for a power law)."""
    steps = np.asarray(steps)
    if not len(steps):
        raise FitDataError(f"step: curve {name!r} has no points")
    if np.any(steps < 0):
        raise FitDataError(f"step: curve {name!r} has negative steps (min {int(steps.min())}); steps count "
                           f"optimizer updates from 0")
    if np.any(steps == 0) and not allow_zero:
        raise FitDataError(f"step: curve {name!r} has a loss at step 0, measured before any update (LR area 0), "
                           f"which no schedule-aware law models; drop it. Convention: the loss at step s is "
                           f"measured after s updates and depends on the LRs of updates 0..s-1")
    last = int(steps.max())
    if last <= n_lr:
        return
    hint = ""
    if n_rows_lr is not None and n_lr == n_rows_lr:
        hint = (f" The LR array has one value per logged point ({n_lr}), not one per update: expand it with "
                f"workbench.fit.data.per_step_lr(steps, lr) or use FitData.from_frame(df, step=, loss=, lr=).")
    elif last == n_lr + 1:
        hint = (f" The last step is one past the schedule's {n_lr} updates: the data seems to count steps from 1 "
                f"(loss after update s logged as step s+1); subtract 1 from the steps.")
    elif n_lr > 0 and last > 1.5 * n_lr:
        hint = (f" The curve runs {last / n_lr:.2f}x longer than the schedule: is the LR array the schedule of "
                f"this curve (same total_steps)?")
    raise FitDataError(f"lrs: curve {name!r} has a loss at step {last}, measured after {last} updates, which needs "
                       f"the LRs of updates 0..{last - 1} ({last} values); the schedule has {n_lr}, shorter than the curve."
                       f"{hint}")


def per_step_lr(steps: np.ndarray, lr: np.ndarray, *, head: str = "ramp from 0") -> np.ndarray:
    """The LR of every update 0..max(steps) from LRs logged at ``steps`` (row s: the LR of update s): linear
    interpolation between logged steps (exact when every step is logged). Before the first logged step the
    LR either rises linearly from 0 (``head="ramp from 0"``: the usual warmup, e.g. the multi-power-law
    CSVs start logging after a 2160-step warmup) or holds the first logged value."""
    if head not in LR_HEAD:
        raise FitDataError(f"lr_head: must be one of {LR_HEAD}, got {head!r}")
    check_step_limit(steps)
    steps = np.asarray(steps, np.int64)
    lr = np.asarray(lr, float)
    grid = np.arange(int(steps.max()) + 1)
    out = np.interp(grid, steps, lr)
    first = int(steps.min())
    if head == "ramp from 0" and first > 0:
        out[:first] = lr[np.argmin(steps)] * grid[:first] / first
    return out


def check_curve(name: str, steps: np.ndarray, loss: np.ndarray, lr: np.ndarray) -> None:
    """Clear errors for a loss curve: too few points, negative steps, non-positive loss or LR."""
    if len(steps) < 2:
        raise FitDataError(f"curve {name!r}: needs at least 2 logged steps with both lr and loss, has {len(steps)}")
    if np.any(steps < 0):
        raise FitDataError(f"step: curve {name!r} has negative steps (min {int(steps.min())}); steps must be >= 0")
    if not np.all(np.isfinite(loss)) or np.any(loss <= 0):
        raise FitDataError(f"loss: curve {name!r} has values that are not finite and > 0 (min {np.nanmin(loss):g})")
    if not np.all(np.isfinite(lr)) or np.any(lr[1:] <= 0) or lr[0] < 0:
        raise FitDataError(f"lr: curve {name!r} must have a finite LR > 0 at every step after step 0 (the laws "
                           f"take powers of the LR); min is {np.nanmin(lr):g}")


Curve = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One loss curve: observed steps, observed losses, and the absolute LR of every update 0..last step."""


def curves_from_frame(df: pd.DataFrame, *, step: str | None = None, loss: str | None = None, lr: str | None = None,
                      curve: str | None = None, name: str = "curve", head: str = "ramp from 0") -> dict[str, Curve]:
    """Loss curves from a long table: columns ``step``, ``lr``, ``loss`` (defaults: ``step``, ``lr``, ``loss``
    or ``train_loss``, case-insensitive) and, for several curves in one table, ``curve`` (default ``curve``
    or ``run``; one curve called ``name`` without). Losses come from the rows that have one, the per-update
    LR (:func:`per_step_lr`) from every row that logged an LR (held after the last one); a step logged twice
    keeps its last row."""
    cols = {str(c).strip().lower(): c for c in df.columns}

    def col(given: str | None, defaults: tuple[str, ...], what: str) -> object:
        if given is not None:
            if given not in df.columns:
                raise FitDataError(f"{what}: column {given!r} not in {list(df.columns)[:12]}")
            return given
        return next((cols[c] for c in defaults if c in cols), None)

    scol, lcol, rcol = col(step, ("step",), "step"), col(loss, ("loss", "train_loss"), "loss"), col(lr, ("lr",), "lr")
    missing = [c for c, v in (("step", scol), ("lr", rcol), ("loss", lcol)) if v is None]
    if missing:
        raise FitDataError(f"curves: a loss-curve table needs columns step, lr, loss (and curve or run for several "
                           f"curves); missing {missing}, found {list(df.columns)[:12]}")
    gcol = col(curve, ("curve", "run"), "curve")
    d = pd.DataFrame({"step": pd.to_numeric(df[scol], errors="coerce"), "lr": pd.to_numeric(df[rcol], errors="coerce"),
                      "loss": pd.to_numeric(df[lcol], errors="coerce"),
                      "curve": df[gcol].astype(str) if gcol is not None else name})
    d = d.dropna(subset=["step"])
    check_step_limit(d["step"].to_numpy(float))  # before anything is allocated per step
    total = float(d.groupby("curve", sort=False)["step"].max().clip(lower=0).sum())
    if total > MAX_TOTAL_STEPS:
        raise CSVError(f"step: the curves span {total:,.0f} steps together, more than the limit of "
                       f"{MAX_TOTAL_STEPS:,} (MAX_TOTAL_STEPS); load fewer curves")
    if d["lr"].isna().all() or d["loss"].isna().all():
        raise FitDataError("curves: no row has a numeric lr" if d["lr"].isna().all() else "curves: no row has a numeric loss")
    if not np.allclose(d["step"], d["step"].round()):
        raise FitDataError("step: must be whole optimizer steps")
    out: dict[str, Curve] = {}
    for cname, g in d.groupby("curve", sort=False):
        g = g.assign(step=g["step"].astype(np.int64))
        gl = g.dropna(subset=["loss"]).drop_duplicates("step", keep="last").sort_values("step")
        gr = g.dropna(subset=["lr"]).drop_duplicates("step", keep="last").sort_values("step")
        steps, values = gl["step"].to_numpy(np.int64), gl["loss"].to_numpy(float)
        if len(steps) < 2 or not len(gr):
            raise FitDataError(f"curve {cname!r}: needs at least 2 logged steps with a loss and a logged lr, has "
                               f"{len(steps)} and {len(gr)}")
        # the LR of every update from every row that logged one (rows without a loss too)
        lrs = per_step_lr(gr["step"].to_numpy(np.int64), gr["lr"].to_numpy(float), head=head)
        if len(lrs) < steps.max():
            lrs = np.r_[lrs, np.full(int(steps.max()) - len(lrs), lrs[-1])]  # hold the last logged LR
        check_curve(str(cname), steps, values, lrs)
        out[str(cname)] = (steps, values, lrs)
    return out


def holdout_mask(data: object, fraction: float, *, key: str | None = None, seed: int = 0) -> np.ndarray:
    """Boolean mask of the held-out points (the one meaning of "holdout" in the package, the CLI and the
    pages): with several groups (curves, runs) a ``fraction`` of whole groups drawn with ``seed``; else the
    ``fraction`` of points with the largest ``key`` input (the extrapolation a law is fitted for; random
    points when ``key`` is None). Leaves at least one in and one out."""
    if not 0 < fraction < 1:
        raise FitDataError(f"holdout: must be a fraction in (0, 1), got {fraction}")
    n = len(data.y)
    rng = np.random.default_rng(seed)
    group = getattr(data, "group", None)
    labels = None if group is None else np.unique(group)
    if labels is not None and len(labels) >= 2:
        k = min(max(int(round(fraction * len(labels))), 1), len(labels) - 1)
        return np.isin(group, rng.choice(labels, k, replace=False))
    k = int(round(fraction * n))
    if not 0 < k < n:
        raise FitDataError(f"holdout: {fraction} of {n} points leaves none in or none out")
    out = np.zeros(n, bool)
    if key is not None:
        if key not in data.x:
            raise FitDataError(f"holdout: key {key!r} is not an input of the data ({sorted(data.x)})")
        out[np.argsort(np.asarray(data.x[key], float), kind="stable")[n - k:]] = True
    else:
        out[rng.choice(n, k, replace=False)] = True
    return out


@dataclass
class FitData:
    """Points of a fit: ``x`` (name -> array, one value per point), target ``y``, optional ``group``
    (curve or run id per point, for whole-curve bootstrap and per-curve metrics) and, for schedule-aware
    laws, ``lrs`` (one per-step LR array per curve; ``x['curve']`` indexes it)."""

    x: dict[str, np.ndarray]
    y: np.ndarray
    group: np.ndarray | None = None
    lrs: list[np.ndarray] | None = None
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.float64)
        self.x = {k: np.asarray(v) for k, v in self.x.items()}
        for k, v in self.x.items():
            if v.shape != self.y.shape:
                raise FitDataError(f"{k}: has {v.shape[0] if v.ndim else 0} values, target has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def inputs(self) -> dict:
        d: dict = dict(self.x)
        if self.lrs is not None:
            d["lrs"] = self.lrs
        return d

    def subset(self, idx: np.ndarray) -> FitData:
        idx = np.asarray(idx)
        return FitData({k: v[idx] for k, v in self.x.items()}, self.y[idx],
                       None if self.group is None else self.group[idx], self.lrs, self.names)

    def validate(self, law: object, *, log_target: bool = True) -> None:
        """Clear errors for NaN/inf, non-positive values under a log, missing inputs, too few points."""
        need = [i for i in law.inputs if i != "lrs"]
        for k in need:
            if k not in self.x:
                raise FitDataError(f"{k}: law {law.name!r} needs input {k!r}; data has {sorted(self.x)}")
        for k in need + ["y"]:
            v = self.y if k == "y" else self.x[k]
            if not np.all(np.isfinite(v.astype(float))):
                bad = int(np.sum(~np.isfinite(v.astype(float))))
                raise FitDataError(f"{k}: {bad} value(s) are NaN or inf")
        for k in law.positive:
            if np.any(self.x[k] <= 0):
                raise FitDataError(f"{k}: must be > 0 (its logarithm is taken); min is {self.x[k].min():g}")
        if log_target and np.any(self.y <= 0):
            raise FitDataError(f"{law.target}: must be > 0 to fit on log residuals; min is {self.y.min():g}")
        if len(self.y) < law.n_params:
            raise FitDataError(f"data: {len(self.y)} points, fewer than the {law.n_params} parameters of {law.name!r}")
        if "lrs" in law.inputs and self.lrs is None:
            raise FitDataError("lrs: schedule-aware laws need per-step LR arrays (use FitData.from_curves)")

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_arrays(cls, y: Sequence[float], **x: Sequence[float]) -> FitData:
        return cls({k: np.asarray(v, float) for k, v in x.items()}, np.asarray(y, float))

    @classmethod
    def from_frame(cls, df: pd.DataFrame, mapping: Mapping[str, str] | None = None, *, target: str = "L",
                   group: str | None = None, step: str | None = None, loss: str | None = None,
                   lr: str | None = None, curve: str | None = None, name: str = "curve",
                   lr_head: str = "ramp from 0") -> FitData:
        """Points: ``mapping`` maps law names to columns, e.g. ``{"N": "params", "D": "tokens", "L": "loss"}``;
        the entry for ``target`` is the fitted quantity. Unmapped names default to same-named columns.

        Loss curves (any of ``step``, ``loss``, ``lr`` given): one curve per value of the ``curve`` column
        (``curve`` or ``run`` by default; one curve called ``name`` without), per-update LR interpolated from
        the logged ``lr`` column (:func:`per_step_lr`), step-0 rows dropped (step convention, module
        docstring): ``FitData.from_frame(df, step="step", loss="val_loss", lr="lr")``."""
        if step is not None or loss is not None or lr is not None:
            cs = curves_from_frame(df, step=step, loss=loss, lr=lr, curve=curve, name=name, head=lr_head)
            return cls.from_curves([(n, st[st > 0], y[st > 0], a) for n, (st, y, a) in cs.items()])
        mapping = dict(mapping or {})
        if target not in mapping:
            mapping[target] = target
        for name, col in mapping.items():
            if col not in df.columns:
                raise FitDataError(f"mapping: column {col!r} (for {name!r}) not in {list(df.columns)}")
        x = {k: pd.to_numeric(df[c], errors="coerce").to_numpy(float) for k, c in mapping.items() if k != target}
        y = pd.to_numeric(df[mapping[target]], errors="coerce").to_numpy(float)
        g = None if group is None else df[group].to_numpy()
        return cls(x, y, g)

    @classmethod
    def from_csv(cls, path: str | os.PathLike | Sequence[str | os.PathLike],
                 mapping: Mapping[str, str] | str | None = None, *, target: str = "L", step: str | None = None,
                 loss: str | None = None, lr: str | None = None, curve: str | None = None,
                 lr_head: str = "ramp from 0") -> FitData:
        """A CSV with a column mapping (dict or ``"N=params,D=tokens,L=loss"``), or loss-curve CSVs (one or
        several paths; ``step``/``loss``/``lr`` name the columns, each file one curve named after its stem
        unless it has a ``curve`` column): ``FitData.from_csv(["a.csv", "b.csv"], step="step", loss="val_loss",
        lr="lr")``."""
        paths = [path] if isinstance(path, str | os.PathLike) else list(path)
        for p in paths:
            if not os.path.isfile(p):
                raise FitDataError(f"csv: no such file {str(p)!r}")
        if step is None and loss is None and lr is None:
            if len(paths) != 1:
                raise FitDataError("csv: several files are read as loss curves only (give step=, loss=, lr=)")
            if isinstance(mapping, str):
                mapping = parse_mapping(mapping)
            return cls.from_frame(read_csv(paths[0]), mapping, target=target)  # within the size limits
        rows: list = []
        for p in paths:
            cs = curves_from_frame(read_csv(p), step=step, loss=loss, lr=lr, curve=curve,
                                   name=os.path.splitext(os.path.basename(p))[0], head=lr_head)
            rows += [(n, st[st > 0], y[st > 0], a) for n, (st, y, a) in cs.items()]
        names = [r[0] for r in rows]
        if len(set(names)) != len(names):
            raise FitDataError(f"curve: names must be unique across files, got {names}")
        return cls.from_curves(rows)

    @classmethod
    def from_curves(cls, curves: Sequence[tuple], *, step_offset: int = 0) -> FitData:
        """Loss curves ``(name, steps, losses, lr[, peak_lr])`` for the schedule-aware laws: ``lr`` is the
        per-update absolute LR (array), or a ``Schedule`` / schedule spec whose multipliers are scaled by
        ``peak_lr`` (default 1). Steps follow the step convention (module docstring, :func:`check_steps`);
        data logged by another counter is mapped with ``step_offset`` (added to every step: 1 for a log
        whose step s is the index of the last update applied, as the multi-power-law repository's, whose
        code sums the LRs of updates 0..s)."""
        if step_offset not in (0, 1):
            raise FitDataError(f"step_offset: must be 0 or 1, got {step_offset}")
        steps, ys, cid, lrs, names = [], [], [], [], []
        for c, item in enumerate(curves):
            if len(item) not in (4, 5):
                raise FitDataError(f"curves: item {c} must be (name, steps, losses, lr[, peak_lr]), got {len(item)} fields")
            name, st, loss, lr = item[:4]
            peak = float(item[4]) if len(item) == 5 else 1.0
            st = np.asarray(st)
            if len(st) and not np.allclose(st, np.round(st)):
                raise FitDataError(f"step: curve {name!r} has steps that are not whole optimizer updates")
            st = st.astype(np.int64) + step_offset
            is_array = isinstance(lr, np.ndarray | list | tuple)
            if not is_array:
                T = getattr(lr, "total_steps", None)
                lr = lr_array(lr, peak, T if T is not None else (int(st.max()) if len(st) else 0))
            else:
                lr = np.asarray(lr, np.float64) * (peak if len(item) == 5 else 1.0)
            if len(st) != len(np.asarray(loss)):
                raise FitDataError(f"curve {name!r}: {len(st)} steps but {len(np.asarray(loss))} losses")
            check_steps(str(name), st, len(lr), n_rows_lr=len(st))
            steps.append(st)
            ys.append(np.asarray(loss, float))
            cid.append(np.full(len(st), c))
            lrs.append(lr)
            names.append(str(name))
        cur = np.concatenate(cid)
        return cls({"step": np.concatenate(steps), "curve": cur}, np.concatenate(ys), cur, lrs, names)

    @classmethod
    def from_store(cls, store: object, mapping: Mapping[str, str], *, target: str = "L", sweep: str | None = None,
                   status: str | None = "finished") -> FitData:
        """One point per run of the store: ``mapping`` maps law names to ``cfg.<key>`` (config values) or
        metric names (the run's last value), e.g. ``{"x": "cfg.weight_decay", "t": "steps_to_grok"}``."""
        runs = store.runs(sweep=sweep, status=status, expand_config=True)
        if runs.empty:
            raise FitDataError(f"store: no runs (sweep={sweep!r}, status={status!r})")
        metrics = [c for c in mapping.values() if not c.startswith("cfg.")]
        df = runs.set_index("id")
        if metrics:
            m = store.metrics(list(df.index), metrics)
            last = m.sort_values("step").groupby(["run", "name"])["value"].last().unstack()
            df = df.join(last, how="left")
        return cls.from_frame(df.reset_index(), mapping, target=target, group="id")


def parse_mapping(text: str) -> dict[str, str]:
    """``"N=params,D=tokens,L=loss"`` -> ``{"N": "params", "D": "tokens", "L": "loss"}``."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise FitDataError(f"map: expected NAME=COLUMN pairs separated by commas, got {part!r}")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


# ----------------------------------------------------------------------------- tables and curves from files
# Used by the pages (the scaling-law and curve-law fitters), the ``fit`` CLI and notebooks alike.
def read_csv(data: bytes | str | os.PathLike) -> pd.DataFrame:
    """Read a CSV (the bytes of an upload, or a path) within :data:`MAX_CSV_BYTES` and :data:`MAX_CSV_ROWS`;
    raise :class:`CSVError` with the reason if it is malformed (ragged rows, not UTF-8 text, empty, fewer
    than two columns or no numeric column)."""
    import csv
    import io

    size = len(data) if isinstance(data, bytes) else os.path.getsize(data)
    if size > MAX_CSV_BYTES:
        raise CSVError(f"CSV: the file has {size:,} bytes, more than the limit of {MAX_CSV_BYTES:,} bytes "
                       "(MAX_CSV_BYTES); thin it (e.g. keep every k-th step) or fit it with workbench.fit in Python")
    try:
        raw = data if isinstance(data, bytes) else open(data, "rb").read()
        text = raw.decode("utf-8")
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
        if len(rows) - 1 > MAX_CSV_ROWS:
            raise CSVError(f"CSV: {len(rows) - 1:,} data rows, more than the limit of {MAX_CSV_ROWS:,} rows "
                           "(MAX_CSV_ROWS)")
        bad = next((i for i, r in enumerate(rows[1:], start=2) if len(r) != len(rows[0])), None) if rows else None
        if bad is not None:
            raise CSVError(f"CSV: line {bad} has {len(rows[bad - 1])} fields, the header has {len(rows[0])} "
                           f"({', '.join(rows[0][:8])})")
        df = pd.read_csv(io.StringIO(text))
    except CSVError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise CSVError(f"CSV: could not be read ({type(e).__name__}: {str(e).strip()[:200]})") from None
    if df.shape[1] < 2:
        raise CSVError(f"CSV: needs at least two columns (an input and a target), found {df.shape[1]}")
    if not any(pd.api.types.is_numeric_dtype(df[c]) for c in df.columns):
        raise CSVError("CSV: no numeric column found")
    return df


def derive(df: pd.DataFrame, text: str) -> pd.DataFrame:
    """``df`` with derived columns, one ``name = expression`` per line; an expression is arithmetic over
    columns (``workbench.expr``: numbers, + - * / **, parentheses, log exp sqrt log10 abs; back-quote names
    with spaces). Nothing in the text is executed as Python."""
    from workbench.expr import ExpressionError, evaluate

    df = df.copy()
    for line in filter(None, (ln.strip() for ln in (text or "").splitlines())):
        if "=" not in line:
            raise CSVError(f"derive: expected 'name = expression', got {line!r}")
        name, expr = (s.strip() for s in line.split("=", 1))
        name = name[1:-1].strip() if len(name) > 1 and name[0] == name[-1] == "`" else name
        if not name or "`" in name:
            raise CSVError(f"derive: {line!r} needs a column name before '='")
        try:
            df[name] = evaluate(expr, df, length=len(df))
        except ExpressionError as e:
            raise CSVError(f"derive: {e}") from None
    return df


def is_curve_table(columns: Sequence[object]) -> bool:
    """Whether a table's columns are those of loss curves (step, lr and loss or train_loss)."""
    head = {str(c).strip().lower() for c in columns}
    return {"step", "lr"} <= head and bool(head & {"loss", "train_loss"})


def curve_columns(columns: Sequence[object]) -> str:
    """The columns :func:`curves_from_frame` reads by default, as ``step=..., lr=..., loss=...[, curve=...]``."""
    cols = {str(c).strip().lower(): str(c) for c in columns}
    used = {"step": cols.get("step"), "lr": cols.get("lr"), "loss": cols.get("loss", cols.get("train_loss")),
            "curve": cols.get("curve", cols.get("run"))}
    return ", ".join(f"{k}={v}" for k, v in used.items() if v)


def is_curve_csv(path: str | os.PathLike) -> bool:
    """Whether a CSV's header has the columns of a loss-curve file (reads the first line only)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            return is_curve_table(next(csv.reader(f), []))
    except (OSError, UnicodeDecodeError):
        return False


def data_files() -> dict[str, str]:
    """Label -> path of every CSV in the data folders (``workbench.datasets``): the repository's ``data/``
    first, then the sets of the shared data folder that do not ship with it (files over 20 MB left out)."""
    from workbench.datasets import REPO_DATA, SHIPPED, shared_data_root

    out = {}
    for d, label in ((REPO_DATA, "data"), (shared_data_root(), "shared")):
        if d is None or not d.is_dir():
            continue
        for p in sorted(d.rglob("*.csv")):
            rel = p.relative_to(d)
            if label == "shared" and rel.parts[0] in SHIPPED:
                continue  # the repository's copy is listed
            if p.stat().st_size < 20e6:
                out[f"{label}/{rel.as_posix()}"] = str(p)
    return out


def store_curve_runs(store: object) -> dict[str, str]:
    """Label -> run id of every run of the store that logged ``lr`` (label: the run's name, its id added
    when the name is not unique)."""
    runs = store.runs()
    if runs.empty:
        return {}
    dup = runs["name"].duplicated(keep=False)
    out: dict[str, str] = {}
    for rid, name, d in zip(runs["id"], runs["name"], dup):
        if "lr" in store.metric_names(rid):
            out[f"{name} ({rid[:8]})" if d or not name else str(name)] = rid
    return out


def curves_from_store(store: object, runs: Mapping[str, str], *, loss: str = "train_loss",
                      head: str = "ramp from 0") -> dict[str, Curve]:
    """The ``loss`` curve and per-update LR (interpolated between logged steps, :func:`per_step_lr`) of runs
    of the store (label -> run id)."""
    if not runs:
        raise CSVError("runs: choose at least one run of the store that logged lr")
    if loss not in LOSS_METRICS:
        raise CSVError(f"curve_loss: must be one of {LOSS_METRICS}, got {loss!r}")
    df = store.metrics(list(runs.values()), ["lr", loss], wide=True)
    out: dict[str, Curve] = {}
    for label, rid in runs.items():
        g = df[df["run"] == rid] if len(df) else df
        if g.empty or "lr" not in g or loss not in g:
            raise CSVError(f"runs: run {label!r} has no logged 'lr' and {loss!r} (choose another loss metric)")
        g = g.dropna(subset=["lr", loss]).drop_duplicates("step", keep="last").sort_values("step")
        steps = g["step"].to_numpy(np.int64)
        if len(steps) < 2:
            raise CSVError(f"curve {label!r}: needs at least 2 logged steps with both lr and {loss}, has {len(steps)}")
        check_step_limit(steps, label)
        lr = per_step_lr(steps, g["lr"].to_numpy(float), head=head)
        check_curve(label, steps, g[loss].to_numpy(float), lr)
        out[label] = (steps, g[loss].to_numpy(float), lr)
    return out


def thin_index(n: int, k: int) -> np.ndarray:
    """Indices of at most ``k`` points spread evenly over ``n`` (first and last kept)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))
