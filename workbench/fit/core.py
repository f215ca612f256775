"""Vectorised multi-start minimisation: every start of a grid (or every bootstrap resample) is one
row of a single batched problem in torch float64.

Why hand-written: the papers fit scaling laws with L-BFGS(-B) from every point of a grid of starts
(Hoffmann et al. 2022, Sec. D.2; Besiroglu et al. 2024 run 4 500 starts). A Python loop of
``scipy.optimize.minimize`` calls spends almost all its time in per-call overhead; ``torch.optim.LBFGS``
optimises one parameter set, not a batch. Here the two-loop L-BFGS recursion (Nocedal & Wright,
Alg. 7.4) and a backtracking Armijo line search run on all rows at once, gradients come from torch
autograd or, when the objective carries a ``value_and_grad`` attribute (closed-form gradient, e.g.
Chinchilla), from one fused pass whose trial values are reused, rows are evaluated in cache-sized chunks,
converged rows drop out of the batch, and the best few rows are polished with
``scipy.optimize.minimize(method="L-BFGS-B")`` (bounds honoured exactly) so the optimum is the one
scipy finds.

The objective is ``fun(theta, rows) -> Tensor[len(rows)]``: ``theta`` is ``[len(rows), P]`` and
``rows`` indexes the original batch (so each row may carry its own data weights, e.g. a bootstrap
resample). Non-finite objective values count as +inf (rejected by the line search).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DTYPE = torch.float64


def huber(r: torch.Tensor, delta: float) -> torch.Tensor:
    """Huber loss elementwise: r²/2 for |r| ≤ δ, δ(|r| − δ/2) beyond (as ``scipy.special.huber``)."""
    a = r.abs()
    return torch.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


@dataclass
class MinimizeResult:
    """Rows of ``x`` are the end points of the batch rows; ``fun`` their objective values."""

    x: np.ndarray
    fun: np.ndarray
    n_iter: int
    converged: np.ndarray


CHUNK = 256  # rows per evaluation: keeps the [rows, points] temporaries in cache (~2x on 4 500 starts)


def _value(fun: Objective, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if len(x) <= CHUNK:
            return fun(x, rows)
        return torch.cat([fun(x[i:i + CHUNK], rows[i:i + CHUNK]) for i in range(0, len(x), CHUNK)])


def _value_and_grad(fun: Objective, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if len(x) > CHUNK:
        parts = [_value_and_grad(fun, x[i:i + CHUNK], rows[i:i + CHUNK]) for i in range(0, len(x), CHUNK)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    vg = getattr(fun, "value_and_grad", None)
    if vg is not None:  # analytic gradient supplied with the objective: no autograd graph
        with torch.no_grad():
            f, g = vg(x.detach(), rows)
        bad = ~torch.isfinite(f)
    else:
        x = x.detach().requires_grad_(True)
        f = fun(x, rows)
        bad = ~torch.isfinite(f)
        fs = torch.where(bad, torch.zeros_like(f), f)
        (g,) = torch.autograd.grad(fs.sum(), x)
    g = torch.where(torch.isfinite(g), g, torch.zeros_like(g))
    f = torch.where(bad, torch.full_like(f, float("inf")), f.detach())
    g = torch.where(bad[:, None], torch.zeros_like(g), g)
    return f.detach(), g.detach()


def _clamp(x: torch.Tensor, lo: torch.Tensor | None, hi: torch.Tensor | None) -> torch.Tensor:
    if lo is not None:
        x = torch.maximum(x, lo)
    if hi is not None:
        x = torch.minimum(x, hi)
    return x


def batched_lbfgs(fun: Objective, x0: np.ndarray | torch.Tensor, *, lower: np.ndarray | None = None,
                  upper: np.ndarray | None = None, max_iter: int = 200, history: int = 10,
                  ftol: float = 1e-10, gtol: float = 1e-10, max_ls: int = 30) -> MinimizeResult:
    """Minimise ``fun`` from every row of ``x0`` ([S, P]) at once with a batched projected L-BFGS.

    A row stops when its relative decrease falls below ``ftol``, its gradient max-norm below ``gtol``,
    or the line search finds no decrease. Bounds are enforced by projection (clamping); polish the
    result with :func:`polish` for an exact L-BFGS-B optimum.
    """
    x = torch.as_tensor(np.asarray(x0, dtype=np.float64), dtype=DTYPE).clone()
    S, P = x.shape
    lo = None if lower is None else torch.as_tensor(np.asarray(lower, dtype=np.float64), dtype=DTYPE)
    hi = None if upper is None else torch.as_tensor(np.asarray(upper, dtype=np.float64), dtype=DTYPE)
    if lo is not None and not torch.isfinite(lo).any():
        lo = None
    if hi is not None and not torch.isfinite(hi).any():
        hi = None
    x = _clamp(x, lo, hi)
    all_rows = torch.arange(S)
    fused = getattr(fun, "value_and_grad", None) is not None
    f, g = _value_and_grad(fun, x, all_rows)
    sh = torch.zeros(history, S, P, dtype=DTYPE)
    yh = torch.zeros(history, S, P, dtype=DTYPE)
    rho = torch.zeros(history, S, dtype=DTYPE)
    k_hist = torch.zeros(S, dtype=torch.long)  # number of pairs stored per row
    active = torch.isfinite(f)
    converged = torch.zeros(S, dtype=torch.bool)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        idx = torch.nonzero(active).flatten()
        if idx.numel() == 0:
            break

        xa, fa, ga = x[idx], f[idx], g[idx]
        # two-loop recursion on the active rows (pairs with rho = 0 are inert)
        q = -ga.clone()
        m = history
        alphas = torch.zeros(m, idx.numel(), dtype=DTYPE)
        s_a, y_a, r_a = sh[:, idx], yh[:, idx], rho[:, idx]
        for j in range(m - 1, -1, -1):
            alphas[j] = r_a[j] * (s_a[j] * q).sum(-1)
            q = q - alphas[j][:, None] * y_a[j]
        last = (k_hist[idx] - 1) % m
        s_l = s_a[last, torch.arange(idx.numel())]
        y_l = y_a[last, torch.arange(idx.numel())]
        yy = (y_l * y_l).sum(-1)
        sy = (s_l * y_l).sum(-1)
        gnorm = ga.abs().sum(-1).clamp_min(1e-300)
        gamma = torch.where((k_hist[idx] > 0) & (yy > 0) & (sy > 0), sy / yy.clamp_min(1e-300),
                            1.0 / gnorm)
        d = q * gamma[:, None]
        for j in range(m):
            beta = r_a[j] * (y_a[j] * d).sum(-1)
            d = d + (alphas[j] - beta)[:, None] * s_a[j]
        gd = (ga * d).sum(-1)
        bad = ~(gd < 0) | ~torch.isfinite(gd)
        if bad.any():
            d = torch.where(bad[:, None], -ga / gnorm[:, None], d)
            gd = (ga * d).sum(-1)
        # backtracking Armijo line search, all rows at once
        t = torch.ones(idx.numel(), dtype=DTYPE)
        ok = torch.zeros(idx.numel(), dtype=torch.bool)
        if fused:  # value and gradient of every trial: the accepted point needs no second evaluation
            fn = fa.clone()
            gn = ga.clone()
        with torch.no_grad():
            for _ in range(max_ls):
                cand = _clamp(xa + t[:, None] * d, lo, hi)
                todo = torch.nonzero(~ok).flatten()
                if fused:
                    fc, gc = _value_and_grad(fun, cand[todo], idx[todo])
                else:
                    fc = _value(fun, cand[todo], idx[todo])
                    fc = torch.where(torch.isfinite(fc), fc, torch.full_like(fc, float("inf")))
                acc = fc <= fa[todo] + 1e-4 * t[todo] * gd[todo]
                newly = todo[acc]
                ok[newly] = True
                if fused:
                    fn[newly] = fc[acc]
                    gn[newly] = gc[acc]
                if ok.all():
                    break
                # safeguarded quadratic interpolation of the step (Nocedal & Wright, Sec. 3.5)
                rej = todo[~acc]
                tr, fr = t[rej], fc[~acc]
                denom = 2.0 * (fr - fa[rej] - gd[rej] * tr)
                tq = torch.where(torch.isfinite(fr) & (denom > 0), -gd[rej] * tr * tr / denom, 0.1 * tr)
                t[rej] = torch.minimum(torch.maximum(tq, 0.1 * tr), 0.5 * tr)
        cand = _clamp(xa + t[:, None] * d, lo, hi)
        xn = torch.where(ok[:, None], cand, xa)
        if not fused:
            fn, gn = _value_and_grad(fun, xn, idx)
        s = xn - xa
        yv = gn - ga
        syn = (s * yv).sum(-1)
        slot = k_hist[idx] % m
        keep = ok & (syn > 1e-12 * (yv * yv).sum(-1).clamp_min(1e-300).sqrt() * s.norm(dim=-1))
        sh[slot[keep], idx[keep]] = s[keep]
        yh[slot[keep], idx[keep]] = yv[keep]
        rho[slot[keep], idx[keep]] = 1.0 / syn[keep]
        k_hist[idx[keep]] += 1
        x[idx] = xn
        f[idx] = torch.where(ok, fn, fa)
        g[idx] = torch.where(ok[:, None], gn, ga)
        dec = (fa - f[idx]).abs() <= ftol * torch.maximum(fa.abs(), f[idx].abs()).clamp_min(1.0)
        small_g = g[idx].abs().amax(-1) < gtol
        stop = ~ok | (dec & ok) | small_g
        converged[idx[stop & ok]] = True
        converged[idx[small_g]] = True
        active[idx[stop]] = False
    return MinimizeResult(x.numpy(), f.numpy(), it, converged.numpy())


def polish(fun: Objective, x0: np.ndarray, row: int, *, bounds: list[tuple[float, float]] | None = None,
           maxiter: int = 2000) -> tuple[np.ndarray, float]:
    """Refine one start with ``scipy.optimize.minimize(method="L-BFGS-B")``, gradients from torch."""
    rows = torch.tensor([row])

    def fg(v: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = _value_and_grad(fun, torch.as_tensor(v[None, :], dtype=DTYPE), rows)
        fv = float(f[0])
        if not np.isfinite(fv):
            return 1e300, np.zeros_like(v)
        return fv, g[0].numpy().copy()

    # L-BFGS-B calls BLAS on vectors of a few entries: a multi-threaded BLAS spends more time waking
    # threads than computing (measured ~3x slower on 2 cores), so it runs single-threaded here
    with threadpool_limits(limits=1, user_api="blas"):
        res = minimize(fg, np.asarray(x0, dtype=np.float64), jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20})
    return np.asarray(res.x), float(res.fun)


def _on_rows(fun: Objective, rows: np.ndarray | None) -> Objective:
    """``fun`` seen by a batch whose row i uses data row ``rows[i]`` (row 0 for all if ``rows`` is None),
    keeping its fused ``value_and_grad`` if it has one."""
    rmap = None if rows is None else torch.as_tensor(np.asarray(rows))

    def _map(r: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(r) if rmap is None else rmap[r]

    def f_rows(th: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return fun(th, _map(r))

    vg = getattr(fun, "value_and_grad", None)
    if vg is not None:
        f_rows.value_and_grad = lambda th, r: vg(th, _map(r))  # type: ignore[attr-defined]
    return f_rows


def multistart(fun: Objective, starts: np.ndarray, *, lower: np.ndarray | None = None,
               upper: np.ndarray | None = None, n_polish: int = 3, max_iter: int = 200,
               rows: np.ndarray | None = None, screen_iter: int = 20, keep: float = 0.1,
               screen_min: int = 500) -> tuple[np.ndarray, float, MinimizeResult]:
    """Batched L-BFGS from all ``starts`` (every row uses data row 0 unless ``rows`` is given), then
    polish the ``n_polish`` best distinct end points with scipy L-BFGS-B; return (best x, best f, raw).

    Large grids (more than ``screen_min`` starts) are screened first, a successive-halving step: every
    start runs ``screen_iter`` L-BFGS iterations, and the best ``keep`` share (at least ``screen_min // 10``
    rows) continues to convergence. On the 4 500-start Chinchilla grid this finds the optimum of running
    every start to convergence (to 1e-12 in the objective; ``bench/fit_bench.py``, tests/test_fit_core.py)
    at a fifth of the cost. ``keep=1`` runs every start to convergence, as the papers describe."""
    starts = np.asarray(starts, dtype=np.float64)
    if not 0 < keep <= 1:
        raise ValueError(f"keep: must be in (0, 1], got {keep}")
    if keep < 1 and len(starts) > screen_min and screen_iter < max_iter:
        scr = batched_lbfgs(_on_rows(fun, rows), starts, lower=lower, upper=upper, max_iter=screen_iter)
        n_keep = max(int(np.ceil(keep * len(starts))), screen_min // 10)
        sel = np.argsort(np.where(np.isfinite(scr.fun), scr.fun, np.inf))[:n_keep]
        return multistart(fun, scr.x[sel], lower=lower, upper=upper, n_polish=n_polish, max_iter=max_iter,
                          rows=None if rows is None else np.asarray(rows)[sel], keep=1.0)
    res = batched_lbfgs(_on_rows(fun, rows), starts, lower=lower, upper=upper, max_iter=max_iter)
    order = np.argsort(np.where(np.isfinite(res.fun), res.fun, np.inf))
    bounds = None
    if lower is not None or upper is not None:
        lo = np.full(starts.shape[1], -np.inf) if lower is None else np.asarray(lower, float)
        hi = np.full(starts.shape[1], np.inf) if upper is None else np.asarray(upper, float)
        bounds = [(None if not np.isfinite(a) else float(a), None if not np.isfinite(b) else float(b))
                  for a, b in zip(lo, hi)]
    best_x, best_f = res.x[order[0]].copy(), float(res.fun[order[0]])
    chosen: list[np.ndarray] = []
    for i in order:
        if len(chosen) >= n_polish or not np.isfinite(res.fun[i]):
            break
        if any(np.allclose(res.x[i], c, rtol=1e-4, atol=1e-6) for c in chosen):
            continue
        chosen.append(res.x[i])
        data_row = 0 if rows is None else int(np.asarray(rows)[i])
        xp, fp = polish(fun, res.x[i], data_row, bounds=bounds)
        if fp < best_f:
            best_x, best_f = xp, fp
    return best_x, best_f, res
