"""Calibrated prediction bands: the law's own misspecification measured by backtesting on the fitted data.

Bootstrap bands only carry sampling noise: far from the data a wrong law is confidently wrong (issue 15:
the multi-power law's 95 % band at the end of a 2x longer cosine was [0.965, 0.974] against a real 1.068).
Here the fit is repeated, with the same procedure as the point estimate, on parts of its own data and
asked to predict the rest:

- **prefix fits**: every curve (or, for point laws, the points sorted by their first input) cut at
  ``prefixes`` of its length; the rest is predicted, at distance ratios r > 1 from the prefix fit's domain;
- **leave one curve out** (with >= 2 curves or groups): the fit on the others predicts the left-out one (a
  different schedule; with two curves a fit on one, which is pessimistic: the bands err wide).

Each backtest point gives a log error e = log y − log ŷ and the distance d = log r of the query from the
refit's :class:`~workbench.fit.domain.Domain`. The band's log-space standard deviation is

    sd(d)² = σ_noise² + base² + (slope · d)² (+ the bootstrap variance when resampled),

σ_noise the in-sample residual spread, ``base`` the 95th percentile of |e| near the data (d <= 0.05)
over 1.96, ``slope`` the 95th percentile of the remaining excess |e| / 1.96 per unit d. The band is
ŷ · exp(± z_level · sd(d)). Hand-written (a few dozen lines): no library calibrates a parametric law's
extrapolation error; the idea is the backtesting of forecast intervals (Hyndman & Athanasopoulos,
"Forecasting: Principles and Practice", Sec. 5.8, time-series cross-validation) applied to the fitted
curves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from workbench.fit.domain import Domain

Z95 = 1.959963984540054
NEAR = 0.05  # |log r| at or below this counts as "near the data" for the base term


@dataclass
class Calibration:
    """Error model of a fit from its backtests (module docstring): log-space sd(d) for d = log r."""

    noise: float
    base: float
    slope: float
    n_points: int = 0
    sources: list[str] = field(default_factory=list)
    errors: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def sd(self, ratio: np.ndarray, boot_var: np.ndarray | None = None) -> np.ndarray:
        d = np.log(np.maximum(np.asarray(ratio, float), 1.0))
        v = self.noise ** 2 + self.base ** 2 + (self.slope * d) ** 2
        if boot_var is not None:
            v = v + boot_var
        return np.sqrt(v)

    def band(self, pred: np.ndarray, ratio: np.ndarray, level: float,
             boot_var: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        z = float(norm.ppf((1 + level) / 2))
        s = self.sd(ratio, boot_var)
        return pred * np.exp(-z * s), pred * np.exp(z * s)

    def describe(self) -> str:
        return (f"calibrated on {self.n_points} backtest points ({', '.join(self.sources)}): relative sd "
                f"{100 * self.noise:.3g} % noise, {100 * self.base:.3g} % near the data, +{100 * self.slope:.3g} % "
                f"per unit log distance")

    def to_dict(self) -> dict:
        return {"noise": self.noise, "base": self.base, "slope": self.slope, "n_points": self.n_points,
                "sources": list(self.sources), "errors": {k: list(map(float, v)) for k, v in self.errors.items()}}

    @classmethod
    def from_dict(cls, d: Mapping | None) -> Calibration | None:
        if not d:
            return None
        return cls(float(d["noise"]), float(d["base"]), float(d["slope"]), int(d.get("n_points", 0)),
                   list(d.get("sources", [])), {k: list(v) for k, v in d.get("errors", {}).items()})


def error_model(noise: float, e: np.ndarray, d: np.ndarray, sources: Sequence[str]) -> Calibration:
    """``base`` and ``slope`` from backtest log errors ``e`` at log distances ``d`` (module docstring)."""
    e, d = np.abs(np.asarray(e, float)), np.maximum(np.asarray(d, float), 0.0)
    ok = np.isfinite(e) & np.isfinite(d)
    e, d = e[ok], d[ok]
    near = d <= NEAR
    base = float(np.quantile(e[near], 0.95) / Z95) if near.sum() >= 3 else 0.0
    base = max(base, 0.0)
    slope = 0.0
    far = ~near
    if far.sum() >= 3:
        excess = np.sqrt(np.maximum((e[far] / Z95) ** 2 - base ** 2 - noise ** 2, 0.0)) / d[far]
        slope = float(np.quantile(excess, 0.95))
    return Calibration(float(noise), base, slope, int(len(e)), list(sources),
                       {"abs_log_error": e.tolist(), "log_distance": d.tolist()})


def _thin_per_group(group: np.ndarray, max_points: int) -> np.ndarray:
    keep = []
    for g in np.unique(group):
        idx = np.nonzero(group == g)[0]
        if len(idx) > max_points:
            idx = idx[np.unique(np.linspace(0, len(idx) - 1, max_points).round().astype(int))]
        keep.append(idx)
    return np.sort(np.concatenate(keep))


def backtest(law: object, data: object, refit: Callable[[object], np.ndarray], *, noise: float,
             prefixes: Sequence[float] = (0.5, 0.7), loco: bool = True, max_points: int = 60,
             max_groups: int = 4) -> Calibration:
    """Refit ``law`` with ``refit(subset) -> theta`` (the point estimate's procedure) on prefixes and on
    all-but-one curve of ``data``, predict the rest, and build the :class:`Calibration`."""
    curves = "lrs" in law.inputs
    n = len(data.y)
    group = np.asarray(data.group) if data.group is not None else (
        np.asarray(data.x["curve"]) if curves else np.zeros(n, int))
    if curves:
        sub = data.subset(_thin_per_group(group, max_points))
        group = np.asarray(sub.x["curve"])
    else:
        sub = data
    es, ds, sources = [], [], []

    def run(train_idx: np.ndarray, test_idx: np.ndarray) -> None:
        if len(train_idx) < law.n_params + 1 or not len(test_idx):
            return
        tr, te = sub.subset(train_idx), sub.subset(test_idx)
        try:
            th = refit(tr)
            pred = law.predict(th, te.inputs)
        except Exception:  # noqa: BLE001 - a failed refit gives no backtest points (not a failed fit)
            return
        ok = np.isfinite(pred) & (pred > 0)
        if not ok.any():
            return
        ratio, _ = Domain.of(law, tr.inputs).distance(te.inputs)
        es.append((np.log(te.y) - np.log(np.where(ok, pred, 1.0)))[ok])
        ds.append(np.log(np.maximum(ratio, 1.0))[ok])

    # prefixes: cut every curve (points: the first input) at a share of its length
    for f in prefixes:
        if curves:
            st = np.asarray(sub.x["step"], float)
            cut = np.zeros(len(st), bool)
            for g in np.unique(group):
                m = group == g
                cut[m] = st[m] <= f * st[m].max()
        else:
            key = np.asarray(sub.x[law.inputs[0]], float)
            cut = key <= np.quantile(key, f)
        before = len(es)
        run(np.nonzero(cut)[0], np.nonzero(~cut)[0])
        if len(es) > before:
            sources.append(f"prefix {f:g}")
    labels = np.unique(group)
    if loco and len(labels) >= 2:
        done = 0
        for g in labels[:max_groups]:
            before = len(es)
            run(np.nonzero(group != g)[0], np.nonzero(group == g)[0])
            done += len(es) > before
        if done:
            sources.append(f"leave one {'curve' if curves else 'group'} out x{done}")
    if not es:
        return Calibration(float(noise), 0.0, 0.0, 0, ["no backtest succeeded"])
    return error_model(noise, np.concatenate(es), np.concatenate(ds), sources)
