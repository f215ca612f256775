"""Laws as objects: name, formula (text and LaTeX), named parameters with bounds and a grid of starts,
the inputs they need, and a vectorised ``predict``. All prediction functions are written in torch so
one implementation serves fitting (autograd, batched over starts: ``theta`` is ``[S, P]``) and
prediction (``predict`` wraps it for numpy).

References (formulas as in ``shared/papers.md``):
- power law + constant: Hestness et al. 2017; Henighan et al. 2020, L(x) = E + A·x^(−α).
- Kaplan et al. 2020 eq. (1.5): L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D.
- Chinchilla (Hoffmann et al. 2022 eq. 2; Besiroglu et al. 2024): log L = LSE(a − α log N, b − β log D, e).
- Gadre et al. 2024 eq. (4)/(5): L(C, M) = E + (a·M^η + b·M^(−η))·C^(−η); Err(L) = ε − k·exp(−γL).
- Step Law (Li et al. 2025): η_opt = a·N^α·D^β, B_opt = c·D^γ (least squares in log space).
- time to grok (Power et al. 2022; Nanda et al. 2023): t = A·x^(−α) and t = A·(x − x_c)^(−α).
- LR-annealing and multi-power laws live in :mod:`workbench.fit.schedule_laws`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from workbench.fit.errors import FitDataError, UnknownLawError


@dataclass(frozen=True)
class Param:
    """One parameter: ``name``, bounds ``low``/``high`` and the grid of starting values."""

    name: str
    low: float = -np.inf
    high: float = np.inf
    grid: tuple[float, ...] = (1.0,)


@dataclass
class Law:
    """A law: ``fn(theta[S, P], X) -> Tensor[S, n]`` (``X``: dict of float64 tensors of the inputs).

    ``log_fn`` (optional) returns log predictions directly (numerically stabler, e.g. Chinchilla's
    log-sum-exp form). ``reported`` maps the fitted vector to the reported parameters (e.g. A = e^a);
    ``unreport`` is its inverse. ``positive`` lists inputs whose logarithm is taken.

    Optional typed hooks (``None`` when the law has none):

    - ``log_vjp(theta, X) -> (log L, v -> Jᵀv)``: closed-form gradient of the log prediction (fit speed).
    - ``procedure(data, *, delta, weights) -> (theta, objective, n_starts)``: the law's own published fitting
      procedure (the multi-power law's two-stage fit), used by :func:`workbench.fit.fit` when no starts
      are given, and for every bootstrap refit (``weights``: per-point weights of one resample or None).
    - ``data_starts(data) -> starts [S, P]``: starting points computed from the data instead of the grid.
    """

    name: str
    formula: str
    latex: str
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    fn: Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor]
    target: str = "L"
    log_fn: Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor] | None = None
    loss: str = "huber"
    reported: Callable[[np.ndarray], dict[str, float]] | None = None
    unreport: Callable[[Mapping[str, float]], np.ndarray] | None = None
    positive: tuple[str, ...] = ()
    reference: str = ""
    prepare: Callable[..., dict[str, torch.Tensor]] | None = None
    log_vjp: Callable[[torch.Tensor, Mapping[str, torch.Tensor]], tuple] | None = None
    procedure: Callable[..., tuple[np.ndarray, float, int]] | None = None
    data_starts: Callable[[object], np.ndarray] | None = None

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def lower(self) -> np.ndarray:
        return np.array([p.low for p in self.params], float)

    @property
    def upper(self) -> np.ndarray:
        return np.array([p.high for p in self.params], float)

    def starts(self, limit: int | None = None, seed: int = 0) -> np.ndarray:
        """The full grid of starting points (product of the parameters' grids), or ``limit`` of them."""
        g = np.array(list(itertools.product(*[p.grid for p in self.params])), float)
        if limit is not None and len(g) > limit:
            g = g[np.random.default_rng(seed).choice(len(g), limit, replace=False)]
        return g

    def report(self, theta: np.ndarray) -> dict[str, float]:
        theta = np.asarray(theta, float)
        if self.reported is not None:
            return {k: float(v) for k, v in self.reported(theta).items()}
        return {n: float(v) for n, v in zip(self.param_names, theta)}

    def theta(self, params: Mapping[str, float] | Sequence[float] | np.ndarray) -> np.ndarray:
        """The fitted vector from reported parameters (a mapping) or a raw sequence."""
        if isinstance(params, Mapping):
            if self.unreport is not None and not set(self.param_names) <= set(params):
                return np.asarray(self.unreport(params), float)
            missing = [n for n in self.param_names if n not in params]
            if missing:
                raise FitDataError(f"params: missing {missing} for law {self.name!r}")
            return np.array([params[n] for n in self.param_names], float)
        th = np.asarray(params, float).ravel()
        if th.size != self.n_params:
            raise FitDataError(f"params: law {self.name!r} takes {self.n_params} values, got {th.size}")
        return th

    def tensors(self, X: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
        if self.prepare is not None:
            return self.prepare(X)
        out = {}
        for k in self.inputs:
            if k not in X:
                raise FitDataError(f"inputs: law {self.name!r} needs {k!r}, got {sorted(X)}")
            out[k] = torch.as_tensor(np.array(X[k], dtype=np.float64))
        return out

    def log_predict_t(self, theta: torch.Tensor, T: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.log_fn is not None:
            return self.log_fn(theta, T)
        return torch.log(self.fn(theta, T))

    def predict(self, params: Mapping[str, float] | Sequence[float] | np.ndarray,
                X: Mapping[str, np.ndarray]) -> np.ndarray:
        """Vectorised prediction at the inputs ``X`` (dict of arrays, or FitData) for one parameter set."""
        X = getattr(X, "x", X)
        th = torch.as_tensor(self.theta(params)[None, :])
        with torch.no_grad():
            if self.log_fn is not None and self.fn is None:
                out = torch.exp(self.log_fn(th, self.tensors(X)))
            else:
                out = self.fn(th, self.tensors(X))
        return out[0].numpy()

    def describe(self) -> str:
        ps = ", ".join(f"{p.name} in [{p.low:g}, {p.high:g}]" for p in self.params)
        return f"{self.name}: {self.formula}\n  inputs: {', '.join(self.inputs)}\n  params: {ps}"


_REGISTRY: dict[str, Law] = {}


def register_law(law: Law, *, overwrite: bool = False) -> Law:
    if law.name in _REGISTRY and not overwrite:
        raise ValueError(f"law name {law.name!r} is already registered (pass overwrite=True)")
    _REGISTRY[law.name] = law
    return law


def get_law(name: str | Law) -> Law:
    """A registered law by name (``available_laws()`` lists them)."""
    if isinstance(name, Law):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownLawError(f"law: unknown name {name!r}; available: {available_laws()}") from None


def available_laws() -> list[str]:
    return sorted(_REGISTRY)


def _c(th: torch.Tensor, i: int) -> torch.Tensor:
    return th[:, i:i + 1]


# ---------------------------------------------------------------- scaling laws
register_law(Law(
    name="power_law",
    formula="L = E + A * x^(-alpha)",
    latex=r"L = E + A\,x^{-\alpha}",
    params=(Param("E", 0.0, np.inf, (0.0, 1.0, 2.0)), Param("A", 0.0, np.inf, (0.1, 1.0, 10.0, 100.0)),
            Param("alpha", 0.0, 5.0, (0.1, 0.3, 0.6, 1.0))),
    inputs=("x",), positive=("x",),
    fn=lambda th, X: _c(th, 0) + _c(th, 1) * X["x"] ** (-_c(th, 2)),
    reference="Hestness et al. 2017; Henighan et al. 2020",
))


def _chin_log(th: torch.Tensor, X: Mapping[str, torch.Tensor]) -> torch.Tensor:
    a, b, e, al, be = (_c(th, i) for i in range(5))
    u1 = a - al * torch.log(X["N"])
    u2 = b - be * torch.log(X["D"])
    u3 = e.expand_as(u1)
    m = torch.maximum(torch.maximum(u1, u2), u3).detach()
    return m + torch.log(torch.exp(u1 - m) + torch.exp(u2 - m) + torch.exp(u3 - m))


def _chin_log_vjp(th: torch.Tensor, X: Mapping[str, torch.Tensor]):
    """log L and v -> Jᵀv in closed form: d LSE/du_k is the softmax weight w_k, so the gradient w.r.t.
    (a, b, e, alpha, beta) is (w1, w2, w3, -w1 log N, -w2 log D); no autograd graph (fit speed)."""
    lN, lD = torch.log(X["N"]), torch.log(X["D"])
    u1 = th[:, 0:1] - th[:, 3:4] * lN
    u2 = th[:, 1:2] - th[:, 4:5] * lD
    u3 = th[:, 2:3]
    m = torch.maximum(torch.maximum(u1, u2), u3)
    e1, e2, e3 = torch.exp(u1 - m), torch.exp(u2 - m), torch.exp(u3 - m)
    s = e1 + e2 + e3

    def vjp(v: torch.Tensor) -> torch.Tensor:
        v = v / s
        v1, v2 = v * e1, v * e2
        return torch.stack([v1.sum(-1), v2.sum(-1), (v * e3).sum(-1), -(v1 @ lN), -(v2 @ lD)], -1)

    return m + torch.log(s), vjp


register_law(Law(
    name="chinchilla",
    formula="L = E + A / N^alpha + B / D^beta  (fitted as log L = LSE(a - alpha log N, b - beta log D, e))",
    latex=r"L = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}}",
    params=(Param("a", -np.inf, np.inf, tuple(np.arange(0, 30, 5.0))),
            Param("b", -np.inf, np.inf, tuple(np.arange(0, 30, 5.0))),
            Param("e", -np.inf, np.inf, (-1.0, -0.5, 0.0, 0.5, 1.0)),
            Param("alpha", -np.inf, np.inf, (0.0, 0.5, 1.0, 1.5, 2.0)),
            Param("beta", -np.inf, np.inf, (0.0, 0.5, 1.0, 1.5, 2.0))),
    inputs=("N", "D"), positive=("N", "D"),
    fn=lambda th, X: torch.exp(_chin_log(th, X)), log_fn=_chin_log, log_vjp=_chin_log_vjp,
    reported=lambda t: {"A": np.exp(t[0]), "B": np.exp(t[1]), "E": np.exp(t[2]), "alpha": t[3], "beta": t[4]},
    unreport=lambda p: np.array([np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"]]),
    reference="Hoffmann et al. 2022 eq. (2), Sec. D.2; Besiroglu et al. 2024 (replication)",
))


def chinchilla_allocation(params: Mapping[str, float], C: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute-optimal (N_opt, D_opt) for budgets C = 6ND (Hoffmann et al. 2022, eq. 4 / App. D.2):
    N_opt = G·(C/6)^(β/(α+β)), D_opt = G^(−1)·(C/6)^(α/(α+β)), G = (αA/(βB))^(1/(α+β))."""
    A, B, al, be = params["A"], params["B"], params["alpha"], params["beta"]
    C = np.asarray(C, float)
    if np.any(C <= 0):
        raise FitDataError("C: compute budgets must be > 0")
    G = (al * A / (be * B)) ** (1.0 / (al + be))
    return G * (C / 6.0) ** (be / (al + be)), (C / 6.0) ** (al / (al + be)) / G


def _kaplan(th: torch.Tensor, X: Mapping[str, torch.Tensor]) -> torch.Tensor:
    lnc, ldc, an, ad = (_c(th, i) for i in range(4))
    t1 = torch.exp((an / ad) * (lnc - torch.log(X["N"])))
    t2 = torch.exp(ldc - torch.log(X["D"]))
    return (t1 + t2) ** ad


register_law(Law(
    name="kaplan",
    formula="L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
    latex=r"L = \left[\left(\frac{N_c}{N}\right)^{\alpha_N/\alpha_D} + \frac{D_c}{D}\right]^{\alpha_D}",
    params=(Param("log_Nc", 0.0, 80.0, (20.0, 30.0, 40.0)), Param("log_Dc", 0.0, 80.0, (20.0, 30.0, 40.0)),
            Param("alpha_N", 1e-4, 3.0, (0.05, 0.1, 0.3)), Param("alpha_D", 1e-4, 3.0, (0.05, 0.1, 0.3))),
    inputs=("N", "D"), positive=("N", "D"), fn=_kaplan,
    reported=lambda t: {"N_c": np.exp(t[0]), "D_c": np.exp(t[1]), "alpha_N": t[2], "alpha_D": t[3]},
    unreport=lambda p: np.array([np.log(p["N_c"]), np.log(p["D_c"]), p["alpha_N"], p["alpha_D"]]),
    reference="Kaplan et al. 2020 eq. (1.5)",
))

register_law(Law(
    name="gadre",
    formula="L = E + (a * M^eta + b * M^(-eta)) * C^(-eta),  M = D/N, C = 6ND",
    latex=r"L = E + \left(a M^{\eta} + b M^{-\eta}\right) C^{-\eta}",
    params=(Param("E", 0.0, 10.0, (0.5, 1.5, 2.5)), Param("a", 0.0, np.inf, (1e1, 1e2, 1e3, 1e4)),
            Param("b", 0.0, np.inf, (1e1, 1e2, 1e3, 1e4)), Param("eta", 0.0, 1.0, (0.05, 0.1, 0.15))),
    inputs=("C", "M"), positive=("C", "M"),
    fn=lambda th, X: _c(th, 0) + (_c(th, 1) * X["M"] ** _c(th, 3) + _c(th, 2) * X["M"] ** (-_c(th, 3)))
    * X["C"] ** (-_c(th, 3)),
    loss="ls",
    reference="Gadre et al. 2024 eq. (4)",
))

register_law(Law(
    name="gadre_downstream",
    formula="Err = epsilon - k * exp(-gamma * L)",
    latex=r"\mathrm{Err} = \epsilon - k\,e^{-\gamma L}",
    params=(Param("epsilon", 0.0, 1.5, (0.5, 0.8, 1.0)), Param("k", 0.0, np.inf, (1.0, 10.0, 100.0)),
            Param("gamma", 0.0, 10.0, (0.5, 1.0, 2.0))),
    inputs=("L",), target="Err",
    fn=lambda th, X: _c(th, 0) - _c(th, 1) * torch.exp(-_c(th, 2) * X["L"]),
    loss="ls",
    reference="Gadre et al. 2024 eq. (5)",
))

register_law(Law(
    name="step_law_lr",
    formula="eta_opt = a * N^alpha * D^beta  (least squares in log space)",
    latex=r"\eta_{\mathrm{opt}} = a\,N^{\alpha} D^{\beta}",
    params=(Param("log_a", -np.inf, np.inf, (0.0,)), Param("alpha", -np.inf, np.inf, (-0.5,)),
            Param("beta", -np.inf, np.inf, (0.3,))),
    inputs=("N", "D"), positive=("N", "D"), target="lr",
    fn=lambda th, X: torch.exp(_c(th, 0) + _c(th, 1) * torch.log(X["N"]) + _c(th, 2) * torch.log(X["D"])),
    log_fn=lambda th, X: _c(th, 0) + _c(th, 1) * torch.log(X["N"]) + _c(th, 2) * torch.log(X["D"]),
    loss="ls_log",
    reported=lambda t: {"a": np.exp(t[0]), "alpha": t[1], "beta": t[2]},
    unreport=lambda p: np.array([np.log(p["a"]), p["alpha"], p["beta"]]),
    reference="Li et al. 2025, Predictable Scale Part I (Step Law)",
))

register_law(Law(
    name="step_law_bs",
    formula="B_opt = c * D^gamma  (tokens; least squares in log space)",
    latex=r"B_{\mathrm{opt}} = c\,D^{\gamma}",
    params=(Param("log_c", -np.inf, np.inf, (0.0,)), Param("gamma", -np.inf, np.inf, (0.5,))),
    inputs=("D",), positive=("D",), target="bs",
    fn=lambda th, X: torch.exp(_c(th, 0) + _c(th, 1) * torch.log(X["D"])),
    log_fn=lambda th, X: _c(th, 0) + _c(th, 1) * torch.log(X["D"]),
    loss="ls_log",
    reported=lambda t: {"c": np.exp(t[0]), "gamma": t[1]},
    unreport=lambda p: np.array([np.log(p["c"]), p["gamma"]]),
    reference="Li et al. 2025, Predictable Scale Part I (Step Law)",
))

register_law(Law(
    name="grok_power",
    formula="t_grok = A * x^(-alpha)  (x: weight decay or train fraction)",
    latex=r"t_{\mathrm{grok}} = A\,x^{-\alpha}",
    params=(Param("log_A", -np.inf, np.inf, (0.0, 5.0, 10.0)), Param("alpha", -10.0, 10.0, (0.5, 1.0, 2.0))),
    inputs=("x",), positive=("x",), target="t",
    fn=lambda th, X: torch.exp(_c(th, 0) - _c(th, 1) * torch.log(X["x"])),
    log_fn=lambda th, X: _c(th, 0) - _c(th, 1) * torch.log(X["x"]),
    loss="ls_log",
    reported=lambda t: {"A": np.exp(t[0]), "alpha": t[1]},
    unreport=lambda p: np.array([np.log(p["A"]), p["alpha"]]),
    reference="Power et al. 2022 (Fig. 1); Nanda et al. 2023",
))

register_law(Law(
    name="grok_critical",
    formula="t_grok = A * (x - x_c)^(-alpha)  (diverges at a critical train fraction x_c)",
    latex=r"t_{\mathrm{grok}} = A\,(x - x_c)^{-\alpha}",
    params=(Param("log_A", -np.inf, np.inf, (0.0, 5.0)), Param("x_c", 0.0, np.inf, (0.0, 0.1, 0.2)),
            Param("alpha", 0.0, 10.0, (0.5, 1.0, 2.0))),
    inputs=("x",), positive=("x",), target="t",
    fn=lambda th, X: torch.exp(_c(th, 0) - _c(th, 2) * torch.log(X["x"] - _c(th, 1))),
    log_fn=lambda th, X: _c(th, 0) - _c(th, 2) * torch.log(X["x"] - _c(th, 1)),
    loss="ls_log",
    reported=lambda t: {"A": np.exp(t[0]), "x_c": t[1], "alpha": t[2]},
    unreport=lambda p: np.array([np.log(p["A"]), p["x_c"], p["alpha"]]),
    reference="Power et al. 2022 (steps to generalise vs train fraction)",
))


def user_law(fn: Callable[..., object], *, params: Sequence[str], name: str | None = None,
             inputs: Sequence[str] = ("x",), bounds: Mapping[str, tuple[float, float]] | None = None,
             grid: Mapping[str, Sequence[float]] | None = None, target: str = "L", loss: str = "huber",
             formula: str | None = None, register: bool = True) -> Law:
    """A law from a Python callable ``fn(x..., p1, p2, ...)`` called positionally with the inputs (in the order
    of ``inputs``) followed by the parameters (in the order of ``params``, the explicit declaration of their
    names: ``user_law(lambda x, A, alpha: A * x ** -alpha, params=("A", "alpha"))``). ``fn`` must use operations
    that work on torch tensors (``+ - * / **``, ``torch.exp`` ...) so the fit can differentiate it."""
    pnames = [str(p) for p in ([params] if isinstance(params, str) else params)]
    if not pnames:
        raise FitDataError("params: declare at least one parameter name, e.g. params=('A', 'alpha')")
    bad = [p for p in pnames if not p.isidentifier()]
    if bad or len(set(pnames)) != len(pnames) or set(pnames) & set(inputs):
        raise FitDataError(f"params: need distinct identifiers that are not inputs ({list(inputs)}), got {pnames}")
    sig = [*inputs, *pnames]
    bounds = dict(bounds or {})
    grid = dict(grid or {})
    for k in list(bounds) + list(grid):
        if k not in pnames:
            raise FitDataError(f"bounds/grid: {k!r} is not a parameter of fn (parameters: {pnames})")
    params_ = tuple(Param(n, *bounds.get(n, (-np.inf, np.inf)), tuple(grid.get(n, (1.0,)))) for n in pnames)

    def f(th: torch.Tensor, X: Mapping[str, torch.Tensor]) -> torch.Tensor:
        args = [X[i] for i in inputs] + [th[:, j:j + 1] for j in range(th.shape[1])]
        out = fn(*args)
        return torch.as_tensor(out).expand(th.shape[0], X[inputs[0]].shape[0])

    law = Law(name=name or fn.__name__, formula=formula or f"{target} = {fn.__name__}({', '.join(sig)})",
              latex=formula or fn.__name__, params=params_, inputs=tuple(inputs), fn=f, target=target,
              loss=loss, reference="user-defined")
    if register:
        register_law(law, overwrite=True)
    return law
