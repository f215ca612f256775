"""Loss-curve laws that take the whole per-step LR schedule as input.

- LR-annealing law (Tissue et al. 2024, "Scaling law with learning rate annealing", eq. 1):
  L(s) = L0 + A·S1^(−α) − C·S2, S1 = Σ_{i≤s} η_i, S2 = Σ_{i≤s} m_i, m_i = λ·m_(i−1) + (η_(i−1) − η_i),
  λ = 0.999. Summed over every step (never thinned).
- Multi-power law (Luo et al., ICLR 2025, eq. 7): L(t) = L0 + A·S1(t)^(−α) − LD(t),
  LD(t) = B·Σ_{k≤t} (η_(k−1) − η_k)·G(η_k^(−γ)·S_k(t)), G(x) = 1 − (C·x + 1)^(−β), S_k(t) = Σ_{τ=k..t} η_τ.
  S1 includes the warmup (the paper's S_W), as the authors' code does.

Inputs: a plain numpy per-update LR array per curve (``lrs``; absolute LR, ``lrs[c][i]`` = the LR of update
i) or a ``Schedule`` object with its peak LR (see :func:`workbench.fit.data.lr_array`), plus the observed
``step`` and the curve index of every point. Step convention (:mod:`workbench.fit.data`): the loss at step s
is measured after s updates, so the formulas above are evaluated at t = s − 1, the last applied update
(S1(s) = Σ_{i<s} η_i).

Why the LD sum is hand-written: it is O(points × LR changes) per evaluation (170 × 24 000 for a cosine
run). The parameter-free parts (partial areas S1(t) − S1(k−1), log η_k, the gaps) are prepared once; the
sum runs over row chunks that keep only the columns k ≤ t (it is triangular), and its gradient in
(C, β, γ) comes out of the same elementwise pass (a custom ``torch.autograd.Function``) instead of autograd
through the matrix: ~25× faster than the plain autograd form. :func:`fit_multi_power` runs the authors'
two-stage fit (grid + L-BFGS on a 4-parameter form, then ``torch.optim.AdamW``) and a route from starts
spread over the whole (C, β, γ) range, and keeps the better.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy.signal import lfilter

from workbench.fit.core import huber, multistart
from workbench.fit.data import FitData, check_steps, lr_array
from workbench.fit.errors import FitDataError
from workbench.fit.laws import Law, Param, register_law
from workbench.fit.metrics import curve_metrics
from workbench.fit.objective import objective
from workbench.fit.result import FitResult
from workbench.fit.threads import small_problem_threads

__all__ = ["LR_ANNEALING", "MULTI_POWER", "curve_metrics", "fit_multi_power", "lr_array", "schedule_law_starts"]

_CHUNK = 4_000_000  # matrix entries per chunk of the LD sum


def _curves(X: Mapping) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per-curve LR arrays, the index t = s − 1 of the last update applied before each observed step s (step
    convention, :mod:`workbench.fit.data`) and the curve index of every point."""
    if "lrs" not in X:
        raise FitDataError("lrs: schedule-aware laws need the per-update LR of every curve (FitData.from_curves)")
    lrs = [np.asarray(a, np.float64) for a in X["lrs"]]
    step = np.asarray(X["step"]).astype(np.int64)
    curve = np.asarray(X["curve"]).astype(np.int64) if "curve" in X else np.zeros(len(step), np.int64)
    for c, a in enumerate(lrs):
        st = step[curve == c]
        if len(st):
            check_steps(str(c), st, len(a), allow_zero=True)
        if not np.all(np.isfinite(a)) or np.any(a[1:] <= 0):
            raise FitDataError(f"lrs: schedule of curve {c} must be finite and > 0 after update 0")
    return lrs, step - 1, curve


def _prepare_mpl(X: Mapping) -> dict:
    """Everything of the LD sum that does not depend on the parameters, once per data set: per curve the
    LR-change columns k (gap_k = η_k − η_(k−1) ≠ 0, log η_k), S1 at the observed steps and S1(k−1), and the
    observed points cut into row chunks, each with the prefix of columns k ≤ its last step (the sum is
    triangular: about half the [points × changes] matrix is skipped)."""
    lrs, step, curve = _curves(X)
    blocks = []
    for c, lr in enumerate(lrs):
        sel = np.nonzero(curve == c)[0]
        if not len(sel):
            continue
        sel = sel[np.argsort(step[sel], kind="stable")]
        s = step[sel]
        S = np.cumsum(lr)
        gap = np.zeros_like(lr)
        gap[1:] = np.diff(lr)
        k = np.nonzero(gap)[0]
        k = k[k <= s.max()]
        rows = max(1, min(_CHUNK // max(len(k), 1), -(-len(s) // 16)))
        chunks = []
        for r0 in range(0, len(s), rows):
            ss = s[r0:r0 + rows]
            K = int(np.searchsorted(k, ss[-1], side="right"))
            chunks.append((r0, r0 + len(ss), K))
        blocks.append({"sel": torch.as_tensor(sel), "S1": torch.as_tensor(S[s]), "Sk": torch.as_tensor(S[k - 1]),
                       "gap": torch.as_tensor(gap[k]), "log_eta": torch.as_tensor(np.log(lr[k])),
                       "chunks": chunks})
    return {"blocks": blocks, "n": len(step)}


def _ld_and_jacobian(b: Mapping, C: float, beta: float, gamma: float, need_jac: bool) -> tuple[torch.Tensor, ...]:
    """LD(t)/B = Σ_k gap_k·(1 − (1 + y_tk)^(−β)), y_tk = C·η_k^(−γ)·(S1(t) − S1(k−1)) ≥ 0, at the rows of one
    curve, and (if asked) its derivatives in C, β, γ from the same elementwise pass:
    ∂/∂β = Σ gap·log1p(y)·e, ∂/∂C = β·Σ gap·e·(y/C)/(1+y), ∂/∂γ = −β·C·Σ gap·log η·e·(y/C)/(1+y),
    e = (1+y)^(−β)."""
    n = len(b["S1"])
    ld = torch.zeros(n, dtype=torch.float64)
    jac = torch.zeros(3, n, dtype=torch.float64) if need_jac else None
    w = torch.exp(-gamma * b["log_eta"])  # η_k^(−γ)
    for r0, r1, K in b["chunks"]:
        if K == 0:
            continue
        xw = (b["S1"][r0:r1, None] - b["Sk"][None, :K]).clamp_min_(0.0).mul_(w[None, :K])  # 0 for k > t
        y = xw * C
        lv = torch.log1p(y)
        e = torch.exp(lv * (-beta))
        gap = b["gap"][:K]
        ld[r0:r1] = gap.sum() - e @ gap
        if need_jac:
            jac[1, r0:r1] = (lv * e) @ gap
            q = (e * xw).div_(y.add_(1.0))  # ∂y/∂C · e/(1+y)
            jac[0, r0:r1] = beta * (q @ gap)
            jac[2, r0:r1] = -beta * C * (q @ (gap * b["log_eta"][:K]))
    return ld, jac


class _LD(torch.autograd.Function):
    """Batched LD sum [S, n] for parameter rows (C, β, γ) [S, 3] with a hand-derived backward: autograd
    through the [points × changes] elementwise graph would keep several float64 copies of the matrix and
    costs ~20× more time; the three Jacobian rows come out of the forward pass for little extra work."""

    @staticmethod
    def forward(ctx, cbg: torch.Tensor, P: Mapping) -> torch.Tensor:  # type: ignore[override]
        need = cbg.requires_grad
        out = torch.zeros(cbg.shape[0], P["n"], dtype=torch.float64)
        jac = torch.zeros(cbg.shape[0], 3, P["n"], dtype=torch.float64) if need else None
        for i, (C, be, ga) in enumerate(cbg.detach().tolist()):
            for b in P["blocks"]:
                ld, j = _ld_and_jacobian(b, C, be, ga, need)
                out[i, b["sel"]] = ld
                if need:
                    jac[i][:, b["sel"]] = j
        ctx.save_for_backward(jac if need else torch.empty(0))
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (jac,) = ctx.saved_tensors
        return torch.einsum("sn,sjn->sj", grad, jac), None


def _mpl(th: torch.Tensor, P: Mapping) -> torch.Tensor:
    L0, A, al, B = (th[:, i:i + 1] for i in range(4))
    S1 = torch.zeros(P["n"], dtype=torch.float64)
    for b in P["blocks"]:
        S1[b["sel"]] = b["S1"]
    return L0 + A * S1[None, :] ** (-al) + B * _LD.apply(th[:, 4:7], P)


MULTI_POWER = register_law(Law(
    name="multi_power",
    formula="L(t) = L0 + A*(S1(t))^(-alpha) - B*sum_k (eta_(k-1)-eta_k)*(1-(C*eta_k^(-gamma)*S_k(t)+1)^(-beta))",
    latex=r"L(t) = L_0 + A\,S_1(t)^{-\alpha} - B\sum_{k\le t}(\eta_{k-1}-\eta_k)\,"
          r"\left[1-\left(C\eta_k^{-\gamma}S_k(t)+1\right)^{-\beta}\right]",
    params=(Param("L0", 0.0, 20.0), Param("A", 0.0, np.inf), Param("alpha", 0.0, 3.0), Param("B", 0.0, np.inf),
            Param("C", 0.0, np.inf), Param("beta", 0.0, 5.0), Param("gamma", 0.0, 5.0)),
    inputs=("step", "curve", "lrs"), fn=_mpl, prepare=_prepare_mpl,
    reference="Luo et al., ICLR 2025, 'A Multi-Power Law for Loss Curve Prediction Across LR Schedules', eq. (7)",
))


def _prepare_lra(X: Mapping, lam: float = 0.999) -> dict:
    lrs, step, curve = _curves(X)
    S1 = np.empty(len(step))
    S2 = np.empty(len(step))
    for c, lr in enumerate(lrs):
        sel = curve == c
        d = np.zeros_like(lr)
        d[1:] = lr[:-1] - lr[1:]
        m = lfilter([1.0], [1.0, -lam], d)
        S1[sel] = np.cumsum(lr)[step[sel]]
        S2[sel] = np.cumsum(m)[step[sel]]
    return {"S1": torch.as_tensor(S1), "S2": torch.as_tensor(S2)}


LR_ANNEALING = register_law(Law(
    name="lr_annealing",
    formula="L(s) = L0 + A*S1^(-alpha) - C*S2,  S2 = sum_i m_i,  m_i = 0.999*m_(i-1) + (eta_(i-1) - eta_i)",
    latex=r"L(s) = L_0 + A\,S_1^{-\alpha} - C\,S_2",
    params=(Param("L0", 0.0, 20.0), Param("A", 0.0, np.inf), Param("alpha", 0.0, 3.0), Param("C", 0.0, np.inf)),
    inputs=("step", "curve", "lrs"),
    fn=lambda th, P: th[:, 0:1] + th[:, 1:2] * P["S1"][None] ** (-th[:, 2:3]) - th[:, 3:4] * P["S2"][None],
    prepare=_prepare_lra,
    reference="Tissue et al. 2024, 'Scaling law with learning rate annealing', eq. (1), lambda = 0.999",
))


def schedule_law_starts(law: Law, losses: np.ndarray, peak_lr: float) -> np.ndarray:
    """Data-driven starting points for the schedule-aware laws (L0 near the lowest observed loss)."""
    lo = float(np.min(losses))
    L0s = [lo - 0.6, lo - 0.3, lo - 0.1]
    if law.name == "lr_annealing":
        return np.array([[L0, A, al, C] for L0 in L0s for A in (0.3, 1.0) for al in (0.3, 0.6)
                         for C in (0.1 / peak_lr / 1000, 1.0 / peak_lr / 1000)], float)
    return np.array([[L0, A, al, B, C, 0.5, 0.5] for L0 in L0s for A in (0.3, 0.8) for al in (0.5,)
                     for B in (0.3 / peak_lr / 3, 1.0 / peak_lr / 3) for C in (1.0, 3.0)], float)


# ---------------------------------------------------------------- two-stage multi-power fit (Luo et al. 2025)
def _simple_mpl_starts(S1: np.ndarray, y: np.ndarray, peak: float) -> np.ndarray:
    """Grid for stage 1: L0 around the lowest loss, (A, α) around a straight-line fit of
    log(L − min L + 0.01) against log S1 (the constant-LR power law), B·peak from a 3 % to a 30 % drop."""
    lo = float(np.min(y))
    slope, icpt = np.polyfit(np.log(S1), np.log(y - lo + 0.01), 1)
    A0, a0 = float(np.exp(icpt)), float(max(-slope, 0.05))
    return np.array([[L0, A, al, B] for L0 in lo + np.array([-0.4, -0.2, -0.1, 0.0, 0.1])
                     for A in (0.5 * A0, A0, 2 * A0) for al in (max(a0 - 0.1, 0.02), a0, a0 + 0.1)
                     for B in np.array([0.03, 0.1, 0.3]) / peak], float)


def fit_multi_power(data: FitData, *, delta: float = 1e-3, steps: int = 200, lrs: tuple[float, float] = (5e-2, 5e-3),
                    weight_decay: float = 0.01, patience: int = 20, init: Sequence[float] | None = None,
                    spread: bool = True) -> FitResult:
    """Fit the multi-power law by two routes and keep the better (Huber(δ = 1e-3) on log L − log L̂, summed
    over all points of the training curves):

    - **the paper's route**: its authors' two-stage procedure (Luo et al. 2025, repo ``src/fitting.py``;
      learnt from it, not copied), steps 1-2 below;
    - **the spread route** (``spread=True``): (L0, A, α, B) of the paper's route with (C, β, γ) from a grid
      spread over the whole range (β, γ log-spaced over (0.05, 4.5), C over (0.1, 10)), all evaluated in one
      batched pass, then step 2 from the best of them; on curves unlike the paper's the paper's fixed
      start (C = 1, β = γ = 0.5) can leave β and γ where they started.

    The lower objective wins when the difference is significant for autocorrelated residuals (a
    likelihood-ratio test with the effective number of points, :func:`_better`); else the paper's route.

    1. Batched L-BFGS (:func:`workbench.fit.core.multistart`) from a grid on the simplified 4-parameter form
       L = L0 + A·S1^(−α) − B·(η_max − η_t) (a fully relaxed loss drop, G ≡ 1): cheap, no LD sum.
    2. From (L0, A, α, B, C = 1, β = 0.5, γ = 0.5) all seven parameters refined with ``torch.optim.AdamW``,
       step size ``lrs[0]`` for (L0, A, B, C) and ``lrs[1]`` for (α, β, γ), torch's default weight decay
       0.01 as in the authors' code, at most ``steps`` steps, stopping after ``patience`` steps without a
       new best; the best iterate is returned.

    With the defaults this reproduces the published fitted parameters of all three model sizes to about
    1 % (tests/test_fit_schedule_laws.py) (the paper's route wins there). It is a regularised, early-stopped
    fit, not the optimum: running
    scipy L-BFGS-B to convergence from the result lowers the training objective ~2× by sliding along a flat
    valley (β → 0.1, B → 750 at 25M) and predicts the unseen schedules worse. ``init``: skip stage 1 and the
    spread route and start stage 2 from these seven values. ``data``: ``FitData.from_curves``. Returns a
    :class:`FitResult`.
    """
    t0 = time.perf_counter()
    best, best_f, n_starts = _two_stage_mpl(data, delta=delta, steps=steps, lrs=lrs, weight_decay=weight_decay,
                                            patience=patience, init=init, spread=spread)
    return FitResult.build(MULTI_POWER, best, data, objective=best_f, loss="huber", delta=delta, boot=None,
                           level=0.95, n_starts=n_starts, seconds=time.perf_counter() - t0)


def _two_stage_mpl(data: FitData, *, delta: float = 1e-3, steps: int = 200, lrs: tuple[float, float] = (5e-2, 5e-3),
                   weight_decay: float = 0.01, patience: int = 20, init: Sequence[float] | None = None,
                   weights: np.ndarray | None = None, spread: bool = True) -> tuple[np.ndarray, float, int]:
    """:func:`fit_multi_power` without the FitResult: (best θ, its objective, number of starts tried).
    ``weights``: per-point weights (a bootstrap resample; every route uses them). ``spread``: also run the
    route from starts spread over the whole (C, β, γ) range (:func:`_spread_route`)."""
    kw = dict(delta=delta, steps=steps, lrs=lrs, weight_decay=weight_decay, patience=patience, weights=weights)
    with small_problem_threads():
        paper = _two_stage_mpl_impl(data, init=init, **kw)
        if init is not None or not spread:
            return paper
        other = _spread_route(data, paper[0], **kw)
        return _better(data, paper, other, weights)


# (β, γ) and C starts of the spread route: log-spaced over the whole bounded range of β and γ (0, 5] and two
# decades of C around 1 (C multiplies η^(−γ)·S, whose scale the data set; the grid is not tied to any curves)
SPREAD_BETA = np.geomspace(0.05, 4.5, 6)
SPREAD_GAMMA = np.geomspace(0.05, 4.5, 6)
SPREAD_C = np.geomspace(0.1, 10.0, 3)
CHI2_95_1DOF = 3.841  # the 95 % point of chi-square with 1 degree of freedom


def _spread_route(data: FitData, paper_theta: np.ndarray, *, delta: float, weights: np.ndarray | None,
                  **stage2: object) -> tuple[np.ndarray, float, int]:
    """The route that does not depend on the paper's starting values: (L0, A, α, B) of the paper route's
    result with every (C, β, γ) of the spread grid, all evaluated in one batched pass; stage 2 (the same
    AdamW refinement) from the best of them."""
    law = MULTI_POWER
    wt = None if weights is None else np.asarray(weights, float).ravel()[None, :]
    fun = objective(law, data, loss="huber", delta=delta, weights=wt)
    grid = np.array([[*paper_theta[:4], C, b, g] for b in SPREAD_BETA for g in SPREAD_GAMMA for C in SPREAD_C])
    with torch.no_grad():
        v = fun(torch.as_tensor(grid), torch.zeros(len(grid), dtype=torch.long)).numpy()
    v = np.where(np.isfinite(v), v, np.inf)
    start = grid[int(np.argmin(v))]
    theta, f, _ = _two_stage_mpl_impl(data, init=start, delta=delta, weights=weights, **stage2)
    return theta, f, len(grid)


def _better(data: FitData, paper: tuple[np.ndarray, float, int], other: tuple[np.ndarray, float, int],
            weights: np.ndarray | None) -> tuple[np.ndarray, float, int]:
    """The route with the lower objective, where the difference is beyond what the noise explains: a
    likelihood-ratio test, n_eff·log(f_paper / f_other) > χ²(1 dof, 95 %), with the effective number of
    points of autocorrelated residuals, n_eff = n(1 − ρ)/(1 + ρ) (ρ: lag-1 autocorrelation of the paper
    route's log residuals within each curve). Along the flat valley of the multi-power law, fits whose
    objectives differ by less predict unseen schedules no better (on the paper's own curves they predict them
    worse), so the paper's route, the published procedure, is kept unless the data clearly prefer the other."""
    n_tried = paper[2] + other[2]
    if not np.isfinite(other[1]) or other[1] >= paper[1]:
        return paper[0], paper[1], n_tried
    r = np.log(np.asarray(data.y, float)) - np.log(np.maximum(MULTI_POWER.predict(paper[0], data.inputs), 1e-300))
    curve = np.asarray(data.x["curve"]) if "curve" in data.x else np.zeros(len(r), int)
    order = np.lexsort((np.asarray(data.x["step"], float), curve))
    r, curve = r[order], curve[order]
    same = curve[1:] == curve[:-1]
    a = r - r.mean()
    den = float(np.sum(a * a))
    rho = float(np.clip(np.sum(a[1:][same] * a[:-1][same]) / den, -0.99, 0.99)) if den > 0 else 0.0
    n = len(r) if weights is None else float(np.sum(weights))
    n_eff = max(n * (1 - rho) / (1 + rho), 1.0)
    if n_eff * np.log(paper[1] / other[1]) > CHI2_95_1DOF:
        return other[0], other[1], n_tried
    return paper[0], paper[1], n_tried


def _two_stage_mpl_impl(data: FitData, *, delta: float, steps: int, lrs: tuple[float, float], weight_decay: float,
                        patience: int, init: Sequence[float] | None,
                        weights: np.ndarray | None) -> tuple[np.ndarray, float, int]:
    law = MULTI_POWER
    if not delta > 0:
        raise FitDataError(f"delta: must be > 0, got {delta}")
    if steps < 0 or patience < 1:
        raise FitDataError(f"steps, patience: need steps >= 0 and patience >= 1, got {steps}, {patience}")
    if len(lrs) != 2 or not all(v > 0 for v in lrs):
        raise FitDataError(f"lrs: two step sizes > 0 (for L0, A, B, C and for alpha, beta, gamma), got {lrs}")
    data.validate(law, log_target=True)
    lr_list, step, curve = _curves(data.inputs)
    cums = [np.cumsum(lr) for lr in lr_list]
    S1 = np.array([cums[c][s] for c, s in zip(curve, step)])
    eta = np.array([lr_list[c][s] for c, s in zip(curve, step)])
    peak = _peak(data)
    logy = torch.as_tensor(np.log(np.asarray(data.y, float)))
    wt = None if weights is None else torch.as_tensor(np.asarray(weights, float).ravel())
    n_starts = 1
    if init is None:
        S1t, drop = torch.as_tensor(S1), torch.as_tensor(peak - eta)

        def simple(th: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            pred = th[:, 0:1] + th[:, 1:2] * S1t[None] ** (-th[:, 2:3]) - th[:, 3:4] * drop[None]
            h = huber(logy[None] - torch.log(pred), delta)
            return (h if wt is None else h * wt[None]).sum(-1)

        starts = _simple_mpl_starts(S1, np.asarray(data.y, float), peak)
        n_starts = len(starts)
        x4, _, _ = multistart(simple, starts, lower=np.zeros(4), upper=np.array([20.0, np.inf, 3.0, np.inf]),
                              n_polish=1)
        theta0 = np.array([*x4, 1.0, 0.5, 0.5])
    else:
        theta0 = law.theta(init)
    fun = objective(law, data, loss="huber", delta=delta, weights=None if wt is None else wt[None].numpy())
    fast = torch.tensor(theta0[[0, 1, 3, 4]], dtype=torch.float64, requires_grad=True)  # L0, A, B, C
    slow = torch.tensor(theta0[[2, 5, 6]], dtype=torch.float64, requires_grad=True)  # alpha, beta, gamma
    opt = torch.optim.AdamW([{"params": [fast], "lr": lrs[0]}, {"params": [slow], "lr": lrs[1]}],
                            weight_decay=weight_decay)
    row = torch.zeros(1, dtype=torch.long)

    def theta_of() -> torch.Tensor:
        return torch.stack([fast[0], fast[1], slow[0], fast[2], fast[3], slow[1], slow[2]])

    best_f, best = float(fun(theta_of().detach()[None], row)[0]), theta0
    since = 0
    for _ in range(steps):
        opt.zero_grad()
        th = theta_of()
        f = fun(th[None], row)[0]
        fv = float(f.detach())
        if not np.isfinite(fv):
            break
        if fv < best_f:
            best_f, best, since = fv, th.detach().numpy().copy(), 0
        else:
            since += 1
            if since >= patience:
                break
        f.backward()
        opt.step()
    return np.asarray(best, float), best_f, n_starts


def _peak(data: object) -> float:
    return float(max(np.max(np.asarray(a, float)) for a in data.inputs["lrs"]))


MULTI_POWER.procedure = _two_stage_mpl
LR_ANNEALING.data_starts = lambda data: schedule_law_starts(LR_ANNEALING, data.y, _peak(data))
