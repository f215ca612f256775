"""``FitResult`` (lmfit-like fitted object): parameters, bootstrap intervals, standard errors,
residuals, R², AIC/BIC, held-out error, ``predict`` with bands, a text report, a plotly figure and a
JSON round trip. AIC/BIC use the Gaussian likelihood of the log residuals: n·log(RSS/n) + 2k / k·log n.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from workbench.fit.errors import FitDataError
from workbench.fit.laws import Law, get_law


def _metrics(y: np.ndarray, pred: np.ndarray, group: np.ndarray | None = None) -> dict[str, float]:
    from workbench.fit.schedule_laws import curve_metrics

    return curve_metrics(y, pred, group)


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

    @classmethod
    def build(cls, law: Law, theta: np.ndarray, data: object, *, objective: float, loss: str, delta: float,
              boot: np.ndarray | None, level: float, n_starts: int, seconds: float) -> FitResult:
        fitted = law.predict(theta, data.inputs)
        return cls(law, np.asarray(theta, float), float(objective), loss, delta, dict(data.x), data.y, fitted,
                   boot, level, n_starts, seconds, None, data.group, data.lrs)

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

    @property
    def stderr(self) -> dict[str, float]:
        """Bootstrap standard deviations if resampled, else the Gauss–Newton estimate s²(JᵀJ)⁻¹ on the log
        residuals (for the fitted vector, mapped to reported names when they coincide)."""
        b = self._boot_reported()
        if b is not None:
            return {k: float(np.std(a, ddof=1)) for k, a in b.items()}
        import torch

        T = self.law.tensors(self._inputs())
        th = torch.as_tensor(self.theta[None, :]).requires_grad_(True)
        J = torch.autograd.functional.jacobian(lambda t: self.law.log_predict_t(t, T)[0], th)[:, 0, :].numpy()
        n, k = J.shape
        s2 = np.sum(self.residuals ** 2) / max(n - k, 1)
        try:
            cov = s2 * np.linalg.inv(J.T @ J)
            se = np.sqrt(np.clip(np.diag(cov), 0, None))
        except np.linalg.LinAlgError:
            se = np.full(k, np.nan)
        return dict(zip(self.law.param_names, map(float, se)))

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
        pred = self.predict(data)
        return _metrics(data.y, pred, data.group if per_group else None)

    # ------------------------------------------------------------- prediction
    def predict(self, X: object, *, band: float | None = None):
        """Predictions at ``X`` (dict of arrays or FitData); with ``band`` (e.g. 0.95) and bootstrap samples,
        return ``(pred, lo, hi)`` from the bootstrap predictions' percentiles."""
        inputs = X.inputs if hasattr(X, "inputs") else dict(X)
        pred = self.law.predict(self.theta, inputs)
        if band is None:
            return pred
        if not 0 < band < 1:
            raise FitDataError(f"band: must be in (0, 1), got {band}")
        if self.boot is None or len(self.boot) == 0:
            raise FitDataError("band: needs bootstrap samples (fit with bootstrap=...)")
        P = np.stack([self.law.predict(b, inputs) for b in self.boot])
        lo, hi = np.nanpercentile(P, [(1 - band) / 2 * 100, (1 + band) / 2 * 100], axis=0)
        return pred, lo, hi

    # ------------------------------------------------------------- output
    def report(self) -> str:
        ci, se = self.ci, self.stderr
        lines = [f"[[fit]] {self.law.name}: {self.law.formula}",
                 f"    points {self.n}, starts {self.n_starts}, loss {self.loss} (delta {self.delta:g}),"
                 f" objective {self.objective:.7g}, {self.seconds:.2f} s",
                 f"    R2 {self.r2:.5f}   AIC {self.aic:.2f}   BIC {self.bic:.2f}", "[[parameters]]"]
        for k, v in self.params.items():
            s = f"    {k:>10} = {v:.6g}"
            if k in se:
                s += f" +/- {se[k]:.3g}"
            if k in ci:
                s += f"   [{ci[k][0]:.6g}, {ci[k][1]:.6g}] ({self.level:.0%})"
            lines.append(s)
        if self.heldout:
            lines.append("[[held out]] " + ", ".join(f"{k} {v:.5g}" for k, v in self.heldout.items()))
        return "\n".join(lines)

    def figure(self, **kw):
        from workbench.figures.fits import fit_figure

        return fit_figure(self, **kw)

    def to_dict(self) -> dict:
        return {"law": self.law.name, "theta": self.theta.tolist(), "params": self.params,
                "objective": self.objective, "loss": self.loss, "delta": self.delta,
                "x": {k: np.asarray(v).tolist() for k, v in self.x.items()}, "y": self.y.tolist(),
                "fitted": self.fitted.tolist(), "boot": None if self.boot is None else self.boot.tolist(),
                "level": self.level, "n_starts": self.n_starts, "seconds": self.seconds, "heldout": self.heldout,
                "group": None if self.group is None else np.asarray(self.group).tolist(),
                "lrs": None if self.lrs is None else [np.asarray(a).tolist() for a in self.lrs]}

    def to_json(self, path: str | None = None) -> str:
        s = json.dumps(self.to_dict())
        if path is not None:
            with open(path, "w") as f:
                f.write(s)
        return s

    @classmethod
    def from_json(cls, s: str | Mapping, law: Law | None = None) -> FitResult:
        d = json.loads(s) if isinstance(s, str) else dict(s)
        law = law or get_law(d["law"])
        boot = None if d["boot"] is None else np.asarray(d["boot"], float)
        return cls(law, np.asarray(d["theta"], float), d["objective"], d["loss"], d["delta"],
                   {k: np.asarray(v) for k, v in d["x"].items()}, np.asarray(d["y"], float),
                   np.asarray(d["fitted"], float), boot, d["level"], d["n_starts"], d["seconds"], d["heldout"],
                   None if d["group"] is None else np.asarray(d["group"]),
                   None if d["lrs"] is None else [np.asarray(a, float) for a in d["lrs"]])
