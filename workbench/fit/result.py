"""``FitResult`` (lmfit-like fitted object): parameters, bootstrap intervals, standard errors (± for every
reported parameter), residuals, R², AIC/BIC, held-out error, the fitted domain, ``predict`` with flags and
calibrated bands, diagnostics, a text report, a plotly figure and a dict/JSON round trip. AIC/BIC use the
Gaussian likelihood of the log residuals: n·log(RSS/n) + 2k / k·log n.

The shared result protocol (:class:`ResultProtocol`: ``params``, ``predict(x, level=None)``, ``report()``,
``figure()``, ``to_dict()`` / ``from_dict()``) is met by :class:`FitResult`, the learning-curve
``CurveForecast`` and the Step Law's ``StepLawFit``. ``predict(x)`` returns an array; ``predict(x, level=p)``
returns a :class:`Prediction` (mean, band, per-point flags and reasons).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from workbench.fit.calibration import Calibration
from workbench.fit.domain import Domain, flags_of, warn_outside
from workbench.fit.errors import FitDataError
from workbench.fit.laws import Law, get_law
from workbench.fit.metrics import curve_metrics


@runtime_checkable
class ResultProtocol(Protocol):
    """What every fitted object of ``workbench.fit`` offers."""

    @property
    def params(self) -> dict[str, float]: ...

    def predict(self, x: Any, level: float | None = None) -> Any: ...

    def report(self) -> str: ...

    def figure(self, **kw: Any) -> Any: ...

    def to_dict(self) -> dict: ...

    @classmethod
    def from_dict(cls, d: Mapping) -> Any: ...


@dataclass
class Prediction:
    """Predictions with their band and extrapolation flags. Unpacks as ``mean, lo, hi``; ``np.asarray(p)``
    is the mean. ``flags``: ``inside`` / ``mild`` / ``far`` per point (:mod:`workbench.fit.domain`),
    ``why``: the reason per flagged point, ``band_kind``: how the band was made."""

    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    level: float | None
    flags: np.ndarray
    distance: np.ndarray
    why: list[str]
    band_kind: str = "none"
    at: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.mean, self.lo, self.hi))

    def __len__(self) -> int:
        return len(self.mean)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.mean, dtype=dtype)

    @property
    def n_flagged(self) -> int:
        return int(np.sum(np.asarray(self.flags) != "inside"))

    def to_frame(self, **columns: Any) -> pd.DataFrame:
        """One row per point: the given columns, ``pred``, ``lo``, ``hi``, ``flag``, ``distance``, ``why``."""
        cols = {**self.at, **columns}
        df = pd.DataFrame({**{k: np.asarray(v) for k, v in cols.items()}, "pred": self.mean, "lo": self.lo,
                           "hi": self.hi, "flag": np.asarray(self.flags, dtype=object), "distance": self.distance,
                           "why": self.why})
        return df


@dataclass
class FitResult:
    law: Law
    theta: np.ndarray
    objective: float
    loss: str
    delta: float
    x: dict[str, np.ndarray]
    y: np.ndarray
    fitted: np.ndarray
    boot: np.ndarray | None = None
    level: float = 0.95
    n_starts: int = 1
    seconds: float = 0.0
    heldout: dict | None = None
    group: np.ndarray | None = None
    lrs: list | None = field(default=None, repr=False)
    domain: Domain | None = None
    calibration: Calibration | None = None
    fixed: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    gap: list[dict] = field(default_factory=list)
    _warned: bool = field(default=False, repr=False)

    @classmethod
    def build(cls, law: Law, theta: np.ndarray, data: object, *, objective: float, loss: str, delta: float,
              boot: np.ndarray | None, level: float, n_starts: int, seconds: float) -> FitResult:
        fitted = law.predict(theta, data.inputs)
        return cls(law, np.asarray(theta, float), float(objective), loss, delta, dict(data.x), data.y, fitted,
                   boot, level, n_starts, seconds, None, data.group, data.lrs, Domain.of(law, data.inputs),
                   names=list(getattr(data, "names", []) or []))

    # ------------------------------------------------------------- parameters
    @property
    def params(self) -> dict[str, float]:
        return self.law.report(self.theta)

    def _boot_reported(self) -> dict[str, np.ndarray] | None:
        if self.boot is None or len(self.boot) == 0:
            return None
        rows = [self.law.report(b) for b in self.boot]
        return {k: np.array([r[k] for r in rows]) for k in rows[0]}

    @property
    def ci(self) -> dict[str, tuple[float, float]]:
        """Percentile bootstrap intervals at ``level`` for the reported parameters (empty without bootstrap)."""
        b = self._boot_reported()
        if b is None:
            return {}
        q = [(1 - self.level) / 2 * 100, (1 + self.level) / 2 * 100]
        return {k: tuple(float(v) for v in np.percentile(a, q)) for k, a in b.items()}

    def covariance(self) -> np.ndarray:
        """Gauss–Newton covariance s²(JᵀJ)⁻¹ of the fitted vector on the log residuals (fixed parameters:
        zero rows and columns)."""
        import torch

        T = self.law.tensors(self._inputs())
        th = torch.as_tensor(self.theta[None, :]).requires_grad_(True)
        J = torch.autograd.functional.jacobian(lambda t: self.law.log_predict_t(t, T)[0], th)[:, 0, :].numpy()
        free = [i for i, n in enumerate(self.law.param_names) if n not in self.fixed]
        Jf = J[:, free]
        n, k = Jf.shape
        s2 = np.sum(self.residuals ** 2) / max(n - k, 1)
        cov = np.zeros((J.shape[1], J.shape[1]))
        try:
            cf = s2 * np.linalg.pinv(Jf.T @ Jf)
        except np.linalg.LinAlgError:
            cf = np.full((k, k), np.nan)
        cov[np.ix_(free, free)] = cf
        return cov

    @property
    def stderr(self) -> dict[str, float]:
        """Bootstrap standard deviations if resampled, else the Gauss–Newton estimate mapped to every reported
        parameter by the delta method (numerical Jacobian of the reported values in the fitted vector)."""
        b = self._boot_reported()
        if b is not None:
            return {k: float(np.std(a, ddof=1)) for k, a in b.items()}
        cov = self.covariance()
        names = list(self.params)
        base = np.array([self.params[k] for k in names])
        G = np.zeros((len(names), len(self.theta)))
        for j in range(len(self.theta)):
            h = 1e-6 * max(abs(self.theta[j]), 1e-3)
            tp, tm = self.theta.copy(), self.theta.copy()
            tp[j] += h
            tm[j] -= h
            rp, rm = self.law.report(tp), self.law.report(tm)
            G[:, j] = [(rp[k] - rm[k]) / (2 * h) for k in names]
        var = np.einsum("ij,jk,ik->i", G, cov, G)
        se = np.sqrt(np.clip(var, 0, None))
        _ = base
        return dict(zip(names, map(float, se)))

    # ------------------------------------------------------------- statistics
    def _inputs(self) -> dict:
        d: dict = dict(self.x)
        if self.lrs is not None:
            d["lrs"] = self.lrs
        return d

    @property
    def residuals(self) -> np.ndarray:
        """log y − log prediction (the fitted residuals; linear residuals for ``loss='ls'``)."""
        if self.loss == "ls":
            return self.y - self.fitted
        return np.log(self.y) - np.log(self.fitted)

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def r2(self) -> float:
        return float(1 - np.sum((self.y - self.fitted) ** 2) / np.sum((self.y - self.y.mean()) ** 2))

    @property
    def aic(self) -> float:
        rss = float(np.sum(self.residuals ** 2))
        return float(self.n * np.log(rss / self.n) + 2 * self.law.n_params)

    @property
    def bic(self) -> float:
        rss = float(np.sum(self.residuals ** 2))
        return float(self.n * np.log(rss / self.n) + self.law.n_params * np.log(self.n))

    def evaluate(self, data: object, *, per_group: bool = True) -> dict[str, float]:
        """R², MAE, RMSE, mean and worst relative error of the predictions on ``data`` (per group, then
        averaged, when the data has groups and ``per_group``)."""
        pred = self.law.predict(self.theta, data.inputs)
        return curve_metrics(data.y, pred, data.group if per_group else None)

    def diagnostics(self) -> list[dict]:
        """Residual-trend check of every fitted curve or group (:func:`workbench.fit.diagnostics.residual_trend`)
        and, when the fit was given the training loss (``fit(..., train_loss=...)``), the train/validation gap
        check of every curve (:func:`workbench.fit.diagnostics.gap_trends`); each dict's ``check`` says which."""
        from workbench.fit.diagnostics import residual_trend

        return residual_trend(self) + [dict(d) for d in self.gap]

    # ------------------------------------------------------------- prediction
    def flags(self, X: object) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(flags, distance ratio, reasons) of the query points ``X`` against the fitted domain."""
        inputs = X.inputs if hasattr(X, "inputs") else dict(X)
        dom = self.domain or Domain.of(self.law, self._inputs())
        ratio, why = dom.distance(inputs)
        n = len(self.law.predict(self.theta, inputs)) if not len(ratio) else len(ratio)
        if not len(ratio):
            ratio, why = np.ones(n), [""] * n
        return flags_of(ratio), ratio, why

    def predict(self, X: object, level: float | None = None, *, band: float | None = None, warn: bool = True):
        """Predictions at ``X`` (dict of arrays or FitData). Without ``level``: an array. With ``level`` (e.g.
        0.95): a :class:`Prediction` with the band (calibrated by backtests when the fit was calibrated,
        else bootstrap percentiles, else none) and per-point flags. A prediction outside the fitted domain
        warns once per result (``ExtrapolationWarning``). ``band=`` (older form): ``(pred, lo, hi)`` from
        the bootstrap percentiles."""
        inputs = X.inputs if hasattr(X, "inputs") else dict(X)
        pred = self.law.predict(self.theta, inputs)
        if band is not None:
            if not 0 < band < 1:
                raise FitDataError(f"band: must be in (0, 1), got {band}")
            if self.boot is None or len(self.boot) == 0:
                raise FitDataError("band: needs bootstrap samples (fit with bootstrap=...)")
            P = np.stack([self.law.predict(b, inputs) for b in self.boot])
            lo, hi = np.nanpercentile(P, [(1 - band) / 2 * 100, (1 + band) / 2 * 100], axis=0)
            return pred, lo, hi
        flags, ratio, why = self.flags(inputs)
        if warn and not self._warned and np.any(flags != "inside"):
            self._warned = True
            warn_outside(flags, why, f"{self.law.name} prediction")
        if level is None:
            return pred
        if not 0 < level < 1:
            raise FitDataError(f"level: must be in (0, 1), got {level}")
        lo = hi = np.full_like(pred, np.nan)
        kind = "none (fit with calibrate=True or bootstrap=B for a band)"
        boot_var = None
        if self.boot is not None and len(self.boot):
            P = np.stack([self.law.predict(b, inputs) for b in self.boot])
            ok = np.all(P > 0, axis=0)
            if self.calibration is not None:
                boot_var = np.where(ok, np.nanvar(np.log(np.where(P > 0, P, 1.0)), axis=0), 0.0)
            else:
                lo, hi = np.nanpercentile(P, [(1 - level) / 2 * 100, (1 + level) / 2 * 100], axis=0)
                kind = f"bootstrap percentiles ({len(self.boot)} refits; sampling noise only, not calibrated)"
        if self.calibration is not None:
            lo, hi = self.calibration.band(pred, ratio, level, boot_var)
            kind = "calibrated: " + self.calibration.describe()
        return Prediction(pred, lo, hi, level, flags, ratio, why, kind)

    # ------------------------------------------------------------- output
    def report(self) -> str:
        ci, se = self.ci, self.stderr
        lines = [f"[[fit]] {self.law.name}: {self.law.formula}",
                 f"    points {self.n}, starts {self.n_starts}, loss {self.loss} (delta {self.delta:g}),"
                 f" objective {self.objective:.7g}, {self.seconds:.2f} s",
                 f"    R2 {self.r2:.5f}   AIC {self.aic:.2f}   BIC {self.bic:.2f}", "[[parameters]]"]
        fixed_rep = set(self.fixed)
        for k, v in self.params.items():
            s = f"    {k:>10} = {v:.6g}"
            if k in fixed_rep:
                s += " (fixed)"
            else:
                s += f" +/- {se.get(k, float('nan')):.3g}"
            if k in ci and k not in fixed_rep:
                s += f"   [{ci[k][0]:.6g}, {ci[k][1]:.6g}] ({self.level:.0%})"
            lines.append(s)
        if self.domain is not None:
            lines.append(f"[[fitted domain]] {self.domain.describe()}")
        if self.calibration is not None:
            lines.append(f"[[band]] {self.calibration.describe()}")
        if self.heldout:
            lines.append("[[held out]] " + ", ".join(f"{k} {v:.5g}" for k, v in self.heldout.items()))
        from workbench.fit.guardrails import fit_warnings

        warn = fit_warnings(self, trends=False)  # low R², mixed tasks (trends: [[diagnostics]] below)
        if warn:
            lines.append("[[warnings]]")
            lines += [f"    {m}" for m in warn]
        try:
            diag = [d["message"] for d in self.diagnostics() if d["flag"]]
        except Exception:  # noqa: BLE001 - the report never fails on a diagnostic
            diag = []
        # the gap check was asked for (training loss given): its result is shown also when nothing opens
        diag += [d["message"] for d in self.gap if not d["flag"]]
        if diag:
            lines.append("[[diagnostics]]")
            lines += [f"    {m}" for m in diag]
        notes = [m for m in self.notes if m not in warn]
        if notes:
            lines.append("[[notes]]")
            lines += [f"    {m}" for m in notes]
        return "\n".join(lines)

    def figure(self, **kw: Any):
        from workbench.figures.fits import fit_figure

        return fit_figure(self, **kw)

    def to_dict(self) -> dict:
        return {"law": self.law.name, "theta": self.theta.tolist(), "params": self.params,
                "objective": self.objective, "loss": self.loss, "delta": self.delta,
                "x": {k: np.asarray(v).tolist() for k, v in self.x.items()}, "y": self.y.tolist(),
                "fitted": self.fitted.tolist(), "boot": None if self.boot is None else self.boot.tolist(),
                "level": self.level, "n_starts": self.n_starts, "seconds": self.seconds, "heldout": self.heldout,
                "group": None if self.group is None else np.asarray(self.group).tolist(),
                "lrs": None if self.lrs is None else [np.asarray(a).tolist() for a in self.lrs],
                "domain": None if self.domain is None else self.domain.to_dict(),
                "calibration": None if self.calibration is None else self.calibration.to_dict(),
                "fixed": dict(self.fixed), "notes": list(self.notes), "names": list(self.names),
                "gap": [dict(d) for d in self.gap]}

    def to_json(self, path: str | None = None) -> str:
        s = json.dumps(self.to_dict())
        if path is not None:
            with open(path, "w") as f:
                f.write(s)
        return s

    @classmethod
    def from_dict(cls, d: Mapping, law: Law | None = None) -> FitResult:
        d = dict(d)
        law = law or get_law(d["law"])
        boot = None if d["boot"] is None else np.asarray(d["boot"], float)
        group = d.get("group")
        out = cls(law, np.asarray(d["theta"], float), d["objective"], d["loss"], d["delta"],
                  {k: np.asarray(v) for k, v in d["x"].items()}, np.asarray(d["y"], float),
                  np.asarray(d["fitted"], float), boot, d["level"], d["n_starts"], d["seconds"], d["heldout"],
                  None if group is None else np.asarray(group),
                  None if d.get("lrs") is None else [np.asarray(a, float) for a in d["lrs"]],
                  Domain.from_dict(d.get("domain")), Calibration.from_dict(d.get("calibration")),
                  dict(d.get("fixed") or {}), list(d.get("notes") or []), list(d.get("names") or []),
                  [dict(g) for g in d.get("gap") or []])
        if out.domain is None:
            out.domain = Domain.of(law, out._inputs())
        return out

    @classmethod
    def from_json(cls, s: str | Mapping, law: Law | None = None) -> FitResult:
        d = json.loads(s) if isinstance(s, str) else dict(s)
        return cls.from_dict(d, law)
