"""Learning-curve extrapolation: forecast the rest of a training curve from its start, with a predictive band,
and Domhan's predictive early-stopping rule.

Method (Domhan, Springenberg & Hutter 2015, "Speeding up automatic hyperparameter optimization of deep neural
networks by extrapolation of learning curves", Sec. 3; family list as in LC-PFN, Adriaensen et al. 2023):
each parametric family f_k(x; θ) of :data:`FAMILIES` is fitted by least squares, the families are combined
with weights, and the predictive distribution of the value y at a future step is the mixture
Σ_k w_k · N(f_k(x; θ_k*), σ_k²) over bootstrap parameter sets θ_k*.

Choices, and why:

* **Frame.** Steps are divided by the last observed step (x ∈ (0, 1] on the data; every family but ilog2 is
  invariant to that scaling) and values are mapped affinely to z = ±(y − y_start) / |y_end − y_start|, so that
  z rises from ≈ 0 to ≈ 1 whether the curve is a loss (``maximize=False``, sign −) or an accuracy (sign +).
  The families are written, as in Domhan's Table 1, for rising, saturating curves; their bounds keep them so.
* **Fit.** Every family is minimised from a scrambled Sobol set of starts inside its bounds
  (``scipy.stats.qmc``) with the batched multi-start L-BFGS of :mod:`workbench.fit.core`; dense curves are
  first averaged into at most ``max_points`` bins of equal width in step.
* **Weights.** BIC weights w_k ∝ exp(−BIC_k / 2), the usual large-sample approximation of posterior model
  probabilities (Burnham & Anderson 2002, Sec. 6.4), in place of Domhan's MCMC over the combination weights
  (emcee is not a dependency, and a hand-written sampler would be slower and harder to check). Dense logged
  curves have strongly autocorrelated residuals, which would make iid BIC weights collapse onto one family
  and the bands far too narrow; the likelihood is therefore counted with the AR(1) effective sample size
  n_eff = n (1 − ρ) / (1 + ρ), ρ the lag-1 autocorrelation of the best family's residuals.
* **Predictive distribution.** Parametric moving-block residual bootstrap (Künsch 1989; block length
  ≈ n^(1/3), blocks keep the residuals' autocorrelation): ``bootstrap`` resampled curves f_k(x; θ̂) + r* are
  refitted from θ̂ in one batched L-BFGS call per family; σ_k is the residual standard deviation on the raw
  (unbinned) points, so the band covers future *observed* values (``noise=False`` gives the band of the
  noise-free curve). Quantiles and probabilities are computed from the Gaussian mixture exactly (bisection
  on its CDF), so they are deterministic.
* Hand-written: the block bootstrap (a dozen lines; ``arch`` has one but is not a dependency) and the family
  formulas. ilog2 and loglog_linear use log(1 + x) instead of Domhan's log x, which is singular at x = 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.special import ndtr
from scipy.stats import qmc

from workbench._compat import deprecated_alias
from workbench.fit.core import DTYPE, batched_lbfgs, multistart
from workbench.fit.errors import FitDataError
from workbench.fit.threads import threaded_for_small_problems

Curve = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CurveFamily:
    """A parametric learning-curve family: ``fn(x [m], theta [S, P]) -> [S, m]``, with bounds (``log``:
    positive parameter whose starts are drawn log-uniformly) and a few typical starts in the fitting frame."""

    name: str
    formula: str
    params: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    log: tuple[bool, ...]
    fn: Curve
    typical: tuple[tuple[float, ...], ...] = ()

    @property
    def n_params(self) -> int:
        return len(self.params)

    def __call__(self, x: np.ndarray | torch.Tensor, theta: np.ndarray | torch.Tensor) -> np.ndarray:
        """Vectorised prediction: ``theta`` [P] or [S, P] → values [m] or [S, m] (numpy, float64)."""
        th = torch.as_tensor(np.asarray(theta, dtype=np.float64), dtype=DTYPE)
        one = th.ndim == 1
        with torch.no_grad():
            out = self.fn(torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=DTYPE), th.reshape(-1, self.n_params))
        out = out.numpy()
        return out[0] if one else out

    def starts(self, n: int = 128, seed: int = 0) -> np.ndarray:
        """``n`` scrambled-Sobol starts inside the bounds (log-uniform for ``log`` parameters) plus the
        typical starts."""
        lo, hi, lg = np.array(self.lower, float), np.array(self.upper, float), np.array(self.log)
        u = qmc.Sobol(self.n_params, scramble=True, seed=seed).random_base2(max(1, int(np.ceil(np.log2(n)))))[:n]
        a, b = lo.copy(), hi.copy()
        a[lg], b[lg] = np.log(np.maximum(lo[lg], 1e-12)), np.log(hi[lg])
        s = a + u * (b - a)
        s[:, lg] = np.exp(s[:, lg])
        if self.typical:
            s = np.vstack([np.array(self.typical, float), s])
        return np.clip(s, lo, hi)


def _c(th: torch.Tensor, i: int) -> torch.Tensor:
    return th[:, i:i + 1]


def _pow3(x, th):
    return _c(th, 0) - _c(th, 1) * x ** (-_c(th, 2))


def _ilog2(x, th):
    return _c(th, 0) - _c(th, 1) / torch.log1p(x)


def _janoschek(x, th):
    a, b, k, d = (_c(th, i) for i in range(4))
    return a - (a - b) * torch.exp(-k * x ** d)


def _weibull(x, th):
    a, b, k, d = (_c(th, i) for i in range(4))
    return a - (a - b) * torch.exp(-(k * x) ** d)


def _mmf(x, th):
    a, b, k, d = (_c(th, i) for i in range(4))
    return a - (a - b) / (1.0 + (k * x) ** d)


def _log_power(x, th):
    return _c(th, 0) / (1.0 + (x / torch.exp(_c(th, 1))) ** _c(th, 2))


def _vap(x, th):
    return torch.exp(_c(th, 0) + _c(th, 1) / x + _c(th, 2) * torch.log(x))


def _exp4(x, th):
    return _c(th, 0) - torch.exp(-_c(th, 1) * x ** _c(th, 2) + _c(th, 3))


def _pow4(x, th):
    return _c(th, 0) - (_c(th, 1) * x + _c(th, 2)) ** (-_c(th, 3))


def _loglog_linear(x, th):
    return torch.log(_c(th, 0) * torch.log1p(x) + _c(th, 1))


def _dr_hill(x, th):
    a, k, e = _c(th, 0), _c(th, 1), _c(th, 2)
    return a * x ** e / (k ** e + x ** e)


_INF = 1e6
FAMILIES: dict[str, CurveFamily] = {f.name: f for f in [
    CurveFamily("pow3", "c − a·x^(−α)", ("c", "a", "alpha"), (-5, 0, 1e-3), (20, 20, 4), (False, False, True),
                _pow3, ((1.2, 0.2, 0.5),)),
    CurveFamily("ilog2", "c − a / log(1 + x)", ("c", "a"), (-5, 0), (20, 20), (False, False), _ilog2,
                ((1.5, 0.3),)),
    CurveFamily("janoschek", "α − (α − β)·exp(−κ·x^δ)", ("alpha", "beta", "kappa", "delta"),
                (-5, -20, 1e-3, 1e-2), (20, 5, 1e3, 5), (False, False, True, True), _janoschek,
                ((1.2, -0.5, 3.0, 0.5),)),
    CurveFamily("weibull", "α − (α − β)·exp(−(κ·x)^δ)", ("alpha", "beta", "kappa", "delta"),
                (-5, -20, 1e-3, 1e-2), (20, 5, 1e3, 5), (False, False, True, True), _weibull,
                ((1.2, -0.5, 5.0, 0.5),)),
    CurveFamily("mmf", "α − (α − β) / (1 + (κ·x)^δ)", ("alpha", "beta", "kappa", "delta"),
                (-5, -20, 1e-3, 1e-2), (20, 5, 1e3, 5), (False, False, True, True), _mmf,
                ((1.2, -0.5, 5.0, 1.0),)),
    CurveFamily("log_power", "a / (1 + (x / e^b)^c)", ("a", "b", "c"), (0, -10, -5), (20, 10, 0),
                (False, False, False), _log_power, ((1.2, -2.0, -1.0),)),
    CurveFamily("vap", "exp(a + b/x + c·log x)", ("a", "b", "c"), (-10, -20, -2), (5, 0, 2),
                (False, False, False), _vap, ((0.0, -0.05, 0.1),)),
    CurveFamily("exp4", "c − exp(−a·x^α + b)", ("c", "a", "alpha", "b"), (-5, 1e-3, 1e-2, -10),
                (20, 1e3, 4, 10), (False, True, True, False), _exp4, ((1.1, 3.0, 0.5, 0.5),)),
    CurveFamily("pow4", "c − (a·x + b)^(−α)", ("c", "a", "b", "alpha"), (-5, 1e-6, 1e-6, 1e-3),
                (20, 1e4, 1e2, 5), (False, True, True, True), _pow4, ((1.2, 10.0, 0.1, 0.5),)),
    CurveFamily("loglog_linear", "log(a·log(1 + x) + b)", ("a", "b"), (0, 1e-6), (1e3, 1e3),
                (False, True), _loglog_linear, ((2.0, 1.0),)),
    CurveFamily("dr_hill", "α·x^η / (κ^η + x^η)", ("alpha", "kappa", "eta"), (0, 1e-4, 1e-2),
                (20, 1e3, 8), (False, True, True), _dr_hill, ((1.2, 0.1, 1.0),)),
]}
DEFAULT_FAMILIES = ("pow3", "ilog2", "janoschek", "log_power", "weibull", "mmf", "vap", "exp4", "pow4",
                    "loglog_linear", "dr_hill")


def _family(name: str) -> CurveFamily:
    if name not in FAMILIES:
        raise FitDataError(f"families: unknown learning-curve family {name!r}; allowed: {sorted(FAMILIES)}")
    return FAMILIES[name]


def _as_1d(name: str, v: Any) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim != 1:
        raise FitDataError(f"{name}: expected a 1-D sequence, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise FitDataError(f"{name}: contains NaN or inf (at index {int(np.flatnonzero(~np.isfinite(a))[0])})")
    return a


def _check_xy(x: Any, y: Any, families: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_1d("steps", x), _as_1d("values", y)
    if len(x) != len(y):
        raise FitDataError(f"steps and values must have the same length, got {len(x)} and {len(y)}")
    if len(x) and x[0] <= 0:
        raise FitDataError(f"steps: must be > 0 (the families take logs and negative powers of the step), "
                           f"got {x[0]:g}")
    if np.any(np.diff(x) <= 0):
        i = int(np.flatnonzero(np.diff(x) <= 0)[0])
        raise FitDataError(f"steps: must be strictly increasing, but steps[{i + 1}] = {x[i + 1]:g} <= "
                           f"steps[{i}] = {x[i]:g}")
    for name in families:
        fam = _family(name)
        if len(x) < fam.n_params + 1:
            raise FitDataError(f"values: family {name!r} has {fam.n_params} parameters and needs at least "
                               f"{fam.n_params + 1} points, got {len(x)}")
    return x, y


def _sse(fam: CurveFamily, x: torch.Tensor, Z: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def fun(th: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return ((fam.fn(x, th) - Z[rows]) ** 2).sum(-1)
    return fun


@dataclass
class FamilyFit:
    """Least-squares fit of one family in its own frame: parameters, residual sum of squares, points."""

    name: str
    params: np.ndarray
    rss: float
    n: int

    def predict(self, x: np.ndarray) -> np.ndarray:
        return FAMILIES[self.name](x, self.params)


def fit_family(name: str, x: Sequence[float] | np.ndarray, z: Sequence[float] | np.ndarray, *,
               n_starts: int = 32, n_polish: int = 1, seed: int = 0) -> FamilyFit:
    """Least-squares fit of one family to (x, z) as given (no rescaling), from ``n_starts`` Sobol starts
    inside the family's bounds plus its typical start (batched multi-start L-BFGS, :func:`core.multistart`)."""
    fam = _family(name)
    xa, za = _check_xy(x, z, [name])
    xt, Z = torch.as_tensor(xa, dtype=DTYPE), torch.as_tensor(za[None, :], dtype=DTYPE)
    best, fbest, _ = multistart(_sse(fam, xt, Z), fam.starts(n_starts, seed), lower=np.array(fam.lower, float),
                                upper=np.array(fam.upper, float), n_polish=n_polish)
    return FamilyFit(name, np.asarray(best, float), float(fbest), len(xa))


def _bin(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of x and y over at most ``max_points`` bins of equal width in x (empty bins dropped)."""
    if len(x) <= max_points:
        return x, y
    edges = np.linspace(x[0], x[-1], max_points + 1)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max_points - 1)
    cnt = np.bincount(idx, minlength=max_points)
    keep = cnt > 0
    return (np.bincount(idx, x, max_points)[keep] / cnt[keep], np.bincount(idx, y, max_points)[keep] / cnt[keep])


def _block_resample(r: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Moving-block bootstrap of a residual series (Künsch 1989): [n_boot, n], block length ≈ n^(1/3)."""
    n = len(r)
    L = max(1, int(round(n ** (1 / 3))))
    nb = -(-n // L)
    starts = rng.integers(0, n - L + 1, size=(n_boot, nb))
    idx = (starts[:, :, None] + np.arange(L)[None, None, :]).reshape(n_boot, -1)[:, :n]
    out = r[idx]
    return out - out.mean(axis=1, keepdims=True) + r.mean()


def _lag1(r: np.ndarray) -> float:
    r = r - r.mean()
    d = float(r @ r)
    return 0.0 if d <= 0 or len(r) < 3 else float(np.clip((r[:-1] @ r[1:]) / d, 0.0, 0.99))


def _backtest_kappa(name: str, x: np.ndarray, z: np.ndarray, resid: np.ndarray, n_starts: int, seed: int) -> float:
    """Extrapolation-error scale κ of one family from a backtest: refit on the points with x ≤ 1/2, predict
    the rest, and match the excess squared error to (κ·log(x / x_h))², x_h the last backtest point."""
    fam = FAMILIES[name]
    h = x <= 0.5
    if h.sum() < fam.n_params + 2 or (~h).sum() < 2:
        return 0.0
    ff = fit_family(name, x[h], z[h], n_starts=n_starts, seed=seed)
    if not np.isfinite(ff.rss):
        return 0.0
    e = z[~h] - ff.predict(x[~h])
    hz = np.log(x[~h] / x[h][-1])
    if not np.all(np.isfinite(e)):
        return float("inf")
    return float(np.sqrt(max(0.0, float(np.mean(e ** 2)) - float(np.mean(resid ** 2))) / float(np.mean(hz ** 2))))


@dataclass
class CurveForecast:
    """Weighted ensemble of fitted learning-curve families with its bootstrap predictive distribution.

    Values are in the user's units; ``maximize`` says whether larger is better (accuracy) or smaller
    (loss). ``fits`` holds, per family, ``params`` (fitting frame), ``boot`` (bootstrap parameter sets),
    ``sigma`` (residual sd of the raw points, fitting frame), ``rss``, ``bic`` and ``weight``.
    """

    maximize: bool
    x_scale: float
    y_ref: float
    y_scale: float
    fits: dict[str, dict[str, Any]]
    steps: np.ndarray
    values: np.ndarray
    n_eff: float
    meta: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- frames
    @property
    def _sign(self) -> float:
        return 1.0 if self.maximize else -1.0

    def _x(self, steps: Any) -> np.ndarray:
        s = np.atleast_1d(np.asarray(steps, dtype=np.float64))
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise FitDataError("steps: must be finite and > 0")
        return s / self.x_scale

    def _y(self, z: np.ndarray) -> np.ndarray:
        return self.y_ref + self._sign * self.y_scale * z

    @property
    def bound(self) -> float | None:
        """The best value the metric can reach (0 for a loss, 1 for an accuracy), if given to fit_curve."""
        b = self.meta.get("bound")
        return None if b is None else float(b)

    def _clip(self, y: np.ndarray) -> np.ndarray:
        """Censor at ``bound``: predictive mass beyond the best reachable value sits on it."""
        b = self.bound
        if b is None:
            return y
        return np.minimum(y, b) if self.maximize else np.maximum(y, b)

    @property
    def weights(self) -> dict[str, float]:
        return {k: float(v["weight"]) for k, v in self.fits.items()}

    def predict_family(self, name: str, steps: Any) -> np.ndarray:
        """Point prediction of one family (its least-squares fit) at ``steps``."""
        if name not in self.fits:
            raise FitDataError(f"family: {name!r} is not in this forecast; fitted: {sorted(self.fits)}")
        return self._clip(self._y(FAMILIES[name](self._x(steps), self.fits[name]["params"])))

    @property
    def params(self) -> dict[str, float]:
        """Every family's fitted parameters (fitting frame) and weight, as ``family.param`` -> value."""
        out: dict[str, float] = {}
        for k, v in self.fits.items():
            out[f"{k}.weight"] = float(v["weight"])
            for name, val in zip(FAMILIES[k].params, np.asarray(v["params"], float)):
                out[f"{k}.{name}"] = float(val)
        return out

    def predict(self, steps: Any, level: float | None = None) -> Any:
        """Ensemble mean Σ_k w_k f_k(step; θ̂_k) at ``steps``; with ``level`` a
        :class:`workbench.fit.result.Prediction` with the predictive band and flags (distance ratio:
        step / last observed step; ``far`` beyond 1.5x)."""
        mean = self._clip(sum(v["weight"] * self.predict_family(k, steps) for k, v in self.fits.items()
                              if v["weight"] > 0))
        if level is None:
            return mean
        from workbench.fit.domain import flags_of
        from workbench.fit.result import Prediction

        st = np.atleast_1d(np.asarray(steps, float))
        lo, hi = self.band(st, level)
        ratio = np.maximum(st / float(self.steps[-1]), 1.0)
        why = [f"step {s:g} is {r:.2f}x the last observed step ({self.steps[-1]:g})" if r > 1 else ""
               for s, r in zip(st, ratio)]
        return Prediction(mean, lo, hi, level, flags_of(ratio), ratio, why,
                          "predictive mixture (bootstrap families + noise)", {"step": st})

    def figure(self, **kw: Any) -> Any:
        from workbench.figures.learning_curves import forecast_figure

        return forecast_figure(self, **kw)

    def _components(self, steps: Any, noise: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mixture components at ``steps``: means [C, m], sds [C, m] and weights [C] (raw units)."""
        x = self._x(steps)
        mus, sds, ws = [], [], []
        for k, v in self.fits.items():
            if v["weight"] <= 1e-6:
                continue
            boot = np.asarray(v["boot"], float)
            mu = self._y(FAMILIES[k](x, boot if len(boot) else np.asarray(v["params"], float)[None]))
            mu = mu[np.all(np.isfinite(mu), axis=1)]
            if not len(mu):
                mu = self._y(FAMILIES[k](x, np.asarray(v["params"], float)))[None]
            mus.append(mu)
            sd = np.hypot(v["sigma"] if noise else 1e-9, v.get("kappa", 0.0) * np.log(np.maximum(x, 1.0)))
            sds.append(np.broadcast_to(sd * self.y_scale, mu.shape))
            ws.append(np.full(len(mu), v["weight"] / len(mu)))
        w = np.concatenate(ws)
        return np.vstack(mus), np.vstack(sds), w / w.sum()

    def cdf(self, value: float | np.ndarray, at_step: Any, *, noise: bool = True) -> np.ndarray:
        """P(y(at_step) ≤ value) under the predictive mixture."""
        mu, sd, w = self._components(at_step, noise)
        v = np.broadcast_to(np.asarray(value, float), mu.shape[1:])
        c = (w[:, None] * ndtr((v[None, :] - mu) / sd)).sum(0)
        b = self.bound
        if b is not None:  # censored at the bound
            c = np.where(v >= b, 1.0, c) if self.maximize else np.where(v < b, 0.0, c)
        return c

    def quantile(self, q: float, steps: Any, *, noise: bool = True) -> np.ndarray:
        """Predictive ``q``-quantile at each of ``steps`` (bisection on the mixture CDF)."""
        if not 0 < q < 1:
            raise FitDataError(f"q: must lie in (0, 1), got {q}")
        mu, sd, w = self._components(steps, noise)
        lo = (mu - 10 * sd).min(0)
        hi = (mu + 10 * sd).max(0)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            c = (w[:, None] * ndtr((mid[None, :] - mu) / sd)).sum(0)
            lo, hi = np.where(c < q, mid, lo), np.where(c < q, hi, mid)
        return self._clip(0.5 * (lo + hi))

    def band(self, steps: Any, level: float = 0.9, *, noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Central ``level`` predictive interval (lower, upper) at ``steps``."""
        if not 0 < level < 1:
            raise FitDataError(f"level: must lie in (0, 1), got {level}")
        return (self.quantile((1 - level) / 2, steps, noise=noise),
                self.quantile((1 + level) / 2, steps, noise=noise))

    def sample(self, steps: Any, n: int = 100, *, seed: int | None = 0, noise: bool = True) -> np.ndarray:
        """``n`` draws [n, m] from the predictive distribution at ``steps``: a bootstrap curve of a family
        drawn by weight, plus (``noise``) iid Gaussian observation noise."""
        if n < 1:
            raise FitDataError(f"n: must be >= 1, got {n}")
        mu, sd, w = self._components(steps, noise)
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(w), size=n, p=w)
        return self._clip(mu[pick] + rng.standard_normal((n, mu.shape[1])) * sd[pick])

    def prob_better(self, target: float, at_step: float, *, noise: bool = True) -> float:
        """P(value at ``at_step`` is better than ``target``): P(y < target) for a loss, P(y > target) when
        ``maximize`` (Domhan et al. 2015, eq. 6)."""
        c = float(self.cdf(float(target), [at_step], noise=noise)[0])
        return 1.0 - c if self.maximize else c

    # ---------------------------------------------------------------- report and I/O
    def report(self, at_step: float | None = None, level: float = 0.9) -> str:
        """Plain-text table: per family its weight, BIC, residual sd and prediction at ``at_step`` (default:
        4× the last observed step), then the ensemble mean and band."""
        at = float(at_step if at_step is not None else 4 * self.steps[-1])
        lo, hi = self.band([at], level)
        lines = [f"learning-curve forecast ({'maximize' if self.maximize else 'minimize'}) from "
                 f"{len(self.steps)} points up to step {self.steps[-1]:g}; n_eff {self.n_eff:.1f}",
                 f"{'family':<14}{'weight':>9}{'BIC':>12}{'sigma':>11}{'pred@' + format(at, 'g'):>16}"]
        for k, v in sorted(self.fits.items(), key=lambda kv: -kv[1]["weight"]):
            lines.append(f"{k:<14}{v['weight']:>9.4f}{v['bic']:>12.2f}{v['sigma'] * self.y_scale:>11.3g}"
                         f"{float(self.predict_family(k, [at])[0]):>16.5g}")
        lines.append(f"ensemble mean {float(self.predict([at])[0]):.5g}, {level:.0%} band "
                     f"[{lo[0]:.5g}, {hi[0]:.5g}]")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists and floats only); :meth:`from_dict` restores an equal forecast."""
        return {"maximize": self.maximize, "x_scale": self.x_scale, "y_ref": self.y_ref, "y_scale": self.y_scale,
                "n_eff": self.n_eff, "steps": self.steps.tolist(), "values": self.values.tolist(),
                "meta": dict(self.meta),
                "fits": {k: {"params": np.asarray(v["params"], float).tolist(),
                             "boot": np.asarray(v["boot"], float).tolist(),
                             **{f: float(v[f]) for f in ("sigma", "rss", "bic", "weight", "kappa")}}
                         for k, v in self.fits.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CurveForecast:
        fits = {k: {"params": np.asarray(v["params"], float),
                    "boot": np.asarray(v["boot"], float).reshape(-1, FAMILIES[k].n_params),
                    **{f: float(v.get(f, 0.0)) for f in ("sigma", "rss", "bic", "weight", "kappa")}} for k, v in d["fits"].items()}
        return cls(bool(d["maximize"]), float(d["x_scale"]), float(d["y_ref"]), float(d["y_scale"]), fits,
                   np.asarray(d["steps"], float), np.asarray(d["values"], float), float(d["n_eff"]),
                   dict(d.get("meta", {})))


@threaded_for_small_problems
def fit_curve(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, *,
              families: Iterable[str] = DEFAULT_FAMILIES, maximize: bool = False, bootstrap: int = 64,
              n_starts: int = 32, max_points: int = 300, backtest: bool = True, seed: int = 0,
              bound: float | None = None, n_boot: int | None = None) -> CurveForecast:
    """Fit every family in ``families`` to the start of a learning curve and combine them into a
    :class:`CurveForecast` (BIC weights with an effective sample size, block-bootstrap predictive
    distribution; see the module docstring). ``maximize``: larger values are better (accuracy).
    ``bound``: the best value the metric can reach (0 for a loss, 1 for an accuracy); the parametric
    families know no such limit, so predictions, bands and samples are censored at it. ``bootstrap``: number of
    block-bootstrap resamples (the package's one name for it, as in ``fit``; ``n_boot`` is its deprecated alias)."""
    bootstrap = deprecated_alias("n_boot", n_boot, "bootstrap", bootstrap, stacklevel=4)  # via the decorator
    fams = list(dict.fromkeys(families))
    if not fams:
        raise FitDataError("families: give at least one family")
    s, y = _check_xy(steps, values, fams)
    if bound is not None:
        bad = np.any(y > bound) if maximize else np.any(y < bound)
        if not np.isfinite(bound) or bad:
            raise FitDataError(f"bound: must be finite and no observed value may be beyond it "
                               f"({'max' if maximize else 'min'} observed {y.max() if maximize else y.min():g}, "
                               f"bound {bound:g})")
    if bootstrap < 0 or n_starts < 1 or max_points < 8:
        raise FitDataError(f"need bootstrap >= 0, n_starts >= 1, max_points >= 8; got {bootstrap}, {n_starts}, "
                           f"{max_points}")
    k = max(1, len(y) // 20)
    y0, y1 = float(np.median(y[:k])), float(np.median(y[-k:]))
    scale = abs(y1 - y0)
    if not scale > 0:
        scale = float(np.std(y)) or 1.0
    sign = 1.0 if maximize else -1.0
    x_scale = float(s[-1])
    xr, zr = s / x_scale, sign * (y - y0) / scale
    xb, zb = _bin(xr, zr, max_points)
    n = len(xb)
    xt = torch.as_tensor(xb, dtype=DTYPE)
    rng = np.random.default_rng(seed)
    fits: dict[str, dict[str, Any]] = {}
    resid: dict[str, np.ndarray] = {}
    for name in fams:
        fam = FAMILIES[name]
        if n < fam.n_params + 1:
            raise FitDataError(f"max_points: binning left {n} points, fewer than family {name!r} needs")
        ff = fit_family(name, xb, zb, n_starts=n_starts, seed=seed)
        if not np.isfinite(ff.rss):
            continue
        fitted = ff.predict(xb)
        resid[name] = zb - fitted
        sigma = float(np.sqrt(np.mean((zr - ff.predict(xr)) ** 2) * len(zr) / max(len(zr) - fam.n_params, 1)))
        boot = np.empty((0, fam.n_params))
        if bootstrap:
            Zb = torch.as_tensor(fitted[None, :] + _block_resample(resid[name], bootstrap, rng), dtype=DTYPE)
            res = batched_lbfgs(_sse(fam, xt, Zb), np.tile(ff.params, (bootstrap, 1)),
                                lower=np.array(fam.lower, float), upper=np.array(fam.upper, float), max_iter=100)
            boot = res.x[np.isfinite(res.fun)]
        fits[name] = {"params": ff.params, "boot": boot, "sigma": max(sigma, 1e-12), "rss": ff.rss, "kappa": 0.0}
    if not fits:
        raise FitDataError("values: no family could be fitted (all objectives non-finite)")
    best = min(fits, key=lambda f: fits[f]["rss"])
    rho = _lag1(resid[best])
    n_eff = max(n * (1 - rho) / (1 + rho), max(FAMILIES[f].n_params for f in fits) + 1.0)
    for name, v in fits.items():
        v["bic"] = float(n_eff * np.log(max(v["rss"], 1e-300) / n) + FAMILIES[name].n_params * np.log(n_eff))
    bmin = min(v["bic"] for v in fits.values())
    w = {f: np.exp(-0.5 * (v["bic"] - bmin)) for f, v in fits.items()}
    tot = sum(w.values())
    for f, v in fits.items():
        v["weight"] = float(w[f] / tot)
        if backtest and v["weight"] >= 1e-3:  # families below that weight hardly move the mixture
            v["kappa"] = _backtest_kappa(f, xb, zb, resid[f], n_starts, seed)
    keep = np.unique(np.linspace(0, len(s) - 1, min(len(s), 2000)).round().astype(int))
    return CurveForecast(bool(maximize), x_scale, y0, scale, fits, s[keep], y[keep], float(n_eff),
                         {"n_points": int(len(s)), "n_binned": int(n), "rho": rho, "bootstrap": int(bootstrap),
                          "bound": None if bound is None else float(bound)})


def should_stop(forecast: CurveForecast, best_so_far: float, at_step: float, threshold: float = 0.05) -> bool:
    """Domhan et al. 2015's predictive termination rule: stop when P(value at ``at_step`` better than
    ``best_so_far``) < ``threshold``."""
    if not 0 < threshold < 1:
        raise FitDataError(f"threshold: must lie in (0, 1), got {threshold}")
    return forecast.prob_better(best_so_far, at_step) < threshold
