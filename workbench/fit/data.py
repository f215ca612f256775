"""Inputs of a fit from anywhere: arrays, a pandas DataFrame, a CSV with a column mapping, loss curves
with their per-step LR, or the run store (final metrics of the runs of a sweep)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.fit.errors import FitDataError


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
                   group: str | None = None) -> FitData:
        """``mapping`` maps law names to columns, e.g. ``{"N": "params", "D": "tokens", "L": "loss"}``;
        the entry for ``target`` is the fitted quantity. Unmapped names default to same-named columns."""
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
    def from_csv(cls, path: str | os.PathLike, mapping: Mapping[str, str] | str | None = None, *,
                 target: str = "L") -> FitData:
        """A CSV with a column mapping (dict or ``"N=params,D=tokens,L=loss"``)."""
        if isinstance(mapping, str):
            mapping = parse_mapping(mapping)
        return cls.from_frame(pd.read_csv(path), mapping, target=target)

    @classmethod
    def from_curves(cls, curves: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> FitData:
        """Loss curves ``(name, steps, losses, per_step_lr)`` for the schedule-aware laws."""
        steps, ys, cid, lrs, names = [], [], [], [], []
        for c, (name, st, loss, lr) in enumerate(curves):
            st = np.asarray(st, np.int64)
            lr = np.asarray(lr, np.float64)
            if len(st) and st.max() >= len(lr):
                raise FitDataError(f"lrs: schedule of curve {name!r} has {len(lr)} steps, shorter than the "
                                   f"curve (last observed step {int(st.max())})")
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
