"""Design a learning-rate schedule with a fitted schedule-aware law: ``optimize_schedule``.

Luo et al. (ICLR 2025), "A Multi-Power Law for Loss Curve Prediction Across Learning Rate Schedules"
(arXiv:2503.12811, Sec. 5): once the multi-power law is fitted on a few runs, its predicted final loss is a
differentiable function of the per-step LR, so the schedule that minimises it can be found by gradient
descent; they report that the result looks like warmup-stable-decay (WSD) and beats cosine. The same works
for the LR-annealing law of Tissue et al. (2024), "Scaling law with learning rate annealing".

:func:`optimize_schedule` takes a :class:`workbench.fit.FitResult` of either law, a run length and the bounds
the user states (peak LR, min LR >= 0, warmup length, monotone non-increasing after the warmup or not) and
returns an ordinary :class:`workbench.schedules.Schedule` (registry name ``optimized`` with its knots, so
``build(s.to_dict())`` rebuilds it and the training engine runs it) with a :class:`Design` attached as
``schedule.design``: the predicted curve, its band (from the fit's bootstrap samples, when it has them),
the predicted final loss of the baselines the caller names, and notes on where the prediction leaves what
was fitted.

Parametrisation (``family="piecewise"``): ``knots + 1`` multipliers at evenly spaced steps from the end of
the warmup to the last step, linear in between. ``monotone=True``: the knot values are
``r + (1 - r)·(1 − cumsum(w)[:-1])`` with ``w = softmax(u)`` over ``knots + 1`` entries (the decrements plus
one slack), so every point of the unconstrained ``u`` is a non-increasing schedule between the min ratio
``r`` and the peak, with no clamping that would zero the gradient (the authors' code clamps cumulative
decrements instead). ``monotone=False``: ``r + (1 - r)·sigmoid(u)`` per knot. The objective is the law's
prediction at the final step (or a weighted set of ``checkpoints``), minimised with ``torch.optim.Adam``
from a few starts (linear decay, WSD with a 20 % decay, cosine), best kept.

Why hand-written: the law's prediction as a function of the LR (not of the law's parameters) is not what
:mod:`workbench.fit` computes (its multi-power sum has a hand-derived gradient in the parameters only), and
no library optimises an LR schedule under a loss-curve law. The final-loss prediction is O(T) per
evaluation (one row of the multi-power sum; the annealing law's momentum sum in closed form), so plain
torch autograd through it is cheap (24 000 steps: ~10 ms per gradient on one CPU thread).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.schedules import Schedule, build

__all__ = ["Design", "DesignError", "optimize_schedule", "predict_final", "law_loss", "schedule_shape"]

LAWS = ("multi_power", "lr_annealing")
FAMILIES = ("piecewise",)
LAMBDA = 0.999  # momentum of the LR-annealing law (Tissue et al. 2024), as workbench.fit.schedule_laws


class DesignError(WorkbenchError):
    """Bad input to the schedule designer: names the field and the allowed range."""


@dataclass
class Design:
    """What :func:`optimize_schedule` found, attached to the returned schedule as ``schedule.design``.

    ``steps`` / ``curve`` / ``lo`` / ``hi``: the predicted loss curve (``curve[i]``: the loss after ``steps[i]`` updates;
    ``lo`` / ``hi`` the band at ``level``, ``None`` when the fit has no bootstrap samples).
    ``final``: predicted final loss (and ``final_band``); ``baselines``: name -> predicted final loss (and
    band) of the schedules given as ``baselines``; ``notes``: where the prediction extrapolates beyond the
    fitted runs; ``objective``: the optimised objective per Adam step of the best start."""

    law: str
    peak_lr: float
    total_steps: int
    final: float
    final_band: tuple[float, float] | None
    steps: np.ndarray
    curve: np.ndarray
    lo: np.ndarray | None
    hi: np.ndarray | None
    level: float
    baselines: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    objective: list[float] = field(default_factory=list, repr=False)
    shape: dict[str, float] = field(default_factory=dict)

    def margins(self) -> dict[str, float]:
        """Predicted final loss of each baseline minus the optimised schedule's (> 0: optimised is better)."""
        return {k: v["final"] - self.final for k, v in self.baselines.items()}

    def report(self) -> str:
        band = "" if self.final_band is None else f" [{self.final_band[0]:.4f}, {self.final_band[1]:.4f}]"
        lines = [f"optimised schedule under {self.law}: predicted final loss {self.final:.4f}{band}",
                 "shape: " + ", ".join(f"{k} {v:.3g}" for k, v in self.shape.items())]
        for k, v in self.baselines.items():
            lines.append(f"  {k:>12}: {v['final']:.4f}   (optimised better by {v['final'] - self.final:+.4f})")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ the laws in the LR
def _law_name(fit_result: object) -> str:
    law = getattr(fit_result, "law", None)
    name = getattr(law, "name", None)
    if name not in LAWS:
        raise DesignError(f"fit_result: needs a fit of a schedule-aware law, one of {list(LAWS)}; got {name!r}")
    return name


def law_loss(name: str, theta: np.ndarray | torch.Tensor, lr: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """Predicted loss at step indices ``at`` (the loss after updates ``0 .. at`` with LRs ``lr[0 .. at]``)
    of law ``name`` with parameters ``theta``, differentiable in the per-step LR ``lr`` (float64 tensor).

    Multi-power (Luo et al. 2025, eq. 7): L0 + A·S1(t)^(−α) − B·Σ_{k=1..t} (η_(k−1) − η_k)·G(η_k^(−γ)·(S1(t) −
    S1(k−1))), G(x) = 1 − (Cx + 1)^(−β), S1 the cumulative LR (warmup included). LR-annealing (Tissue et al.
    2024): L0 + A·S1^(−α) − C·S2, S2(t) = Σ_{j≤t} (η_(j−1) − η_j)·(1 − λ^(t−j+1))/(1 − λ)."""
    th = torch.as_tensor(np.asarray(theta, float) if not isinstance(theta, torch.Tensor) else theta,
                         dtype=torch.float64)
    S = torch.cumsum(lr, 0)
    d = lr[:-1] - lr[1:]  # η_(k−1) − η_k for k = 1 .. T−1
    out = []
    for t in at.tolist():
        if name == "multi_power":
            L0, A, al, B, C, be, ga = th
            x = S[t] - S[:t]  # S1(t) − S1(k−1), k = 1 .. t
            g = 1.0 - (C * lr[1:t + 1].clamp_min(1e-300) ** (-ga) * x + 1.0) ** (-be)
            out.append(L0 + A * S[t] ** (-al) - B * (d[:t] * g).sum())
        else:
            L0, A, al, C = th
            j = torch.arange(1, t + 1, dtype=torch.float64)
            s2 = (d[:t] * (1.0 - LAMBDA ** (t - j + 1.0))).sum() / (1.0 - LAMBDA)
            out.append(L0 + A * S[t] ** (-al) - C * s2)
    return torch.stack(out)


def predict_final(fit_result: object, schedule: Schedule | np.ndarray, peak_lr: float | None = None,
                  total_steps: int | None = None, *, level: float = 0.95) -> dict:
    """Predicted final loss (after the last update) of ``schedule`` (a Schedule times ``peak_lr``, or an
    absolute per-step LR array) under the fitted law: ``{"final", "band"}`` (band ``None`` without bootstrap)."""
    name = _law_name(fit_result)
    lr = _abs_lr(schedule, peak_lr, total_steps)
    at = torch.tensor([len(lr) - 1])
    with torch.no_grad():
        f = float(law_loss(name, fit_result.theta, torch.as_tensor(lr), at)[0])
        band = None
        boot = getattr(fit_result, "boot", None)
        if boot is not None and len(boot):
            vals = np.array([float(law_loss(name, b, torch.as_tensor(lr), at)[0]) for b in boot])
            vals = vals[np.isfinite(vals)]
            if len(vals):
                q = np.percentile(vals, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
                band = (float(q[0]), float(q[1]))
    return {"final": f, "band": band}


def _abs_lr(schedule: Schedule | np.ndarray, peak_lr: float | None, total_steps: int | None) -> np.ndarray:
    if isinstance(schedule, Schedule):
        if peak_lr is None or not peak_lr > 0:
            raise DesignError(f"peak_lr: must be > 0 for a Schedule (multiplier of the peak), got {peak_lr!r}")
        T = int(total_steps if total_steps is not None else schedule.total_steps)
        return peak_lr * np.asarray(schedule(np.arange(T)), float)
    lr = np.asarray(schedule, float)
    if lr.ndim != 1 or len(lr) < 2 or not np.all(np.isfinite(lr)) or np.any(lr < 0):
        raise DesignError("schedule: a Schedule or a 1-D array of at least 2 finite per-step LRs >= 0")
    return lr


# ------------------------------------------------------------------------------------ parametrisation
def _knot_values(u: torch.Tensor, r: float, monotone: bool) -> torch.Tensor:
    if monotone:
        w = torch.softmax(u, 0)  # decrements at knots 1 .. K plus the slack (what stays above r at the end)
        dec = torch.cat([torch.zeros(1, dtype=u.dtype), torch.cumsum(w[:-1], 0)])
        return r + (1.0 - r) * (1.0 - dec).clamp(0.0, 1.0)
    return r + (1.0 - r) * torch.sigmoid(u)


def _init_u(v: np.ndarray, r: float, monotone: bool) -> np.ndarray:
    """Unconstrained parameters whose knot values are (about) ``v`` (multipliers in [r, 1])."""
    f = np.clip((np.asarray(v, float) - r) / max(1.0 - r, 1e-12), 1e-4, 1 - 1e-4)
    if not monotone:
        return np.log(f / (1 - f))
    f = np.minimum.accumulate(np.concatenate([[1.0], f[1:]]))
    w = np.concatenate([-np.diff(f), [f[-1]]])  # decrements at knots 1..K, then the slack
    return np.log(np.maximum(w, 1e-6))


def _interp_matrix(knot_steps: np.ndarray, steps: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    i = np.clip(np.searchsorted(knot_steps, steps, side="right") - 1, 0, len(knot_steps) - 2)
    a = np.clip((steps - knot_steps[i]) / (knot_steps[i + 1] - knot_steps[i]), 0.0, 1.0)
    return torch.as_tensor(i), torch.as_tensor(i + 1), torch.as_tensor(a)


def schedule_shape(mult: np.ndarray, warmup: int = 0) -> dict[str, float]:
    """Summary of a (multiplier) schedule after its warmup: fraction of the run at >= 99 % of the peak
    (``stable_fraction``), where the decay starts and how long it takes to fall to 10 % of the peak
    (fractions of the run), the multiplier at the middle of the decay (``mid_decay``: 0.5 is linear,
    < 0.5 a fast-then-slow decay such as 1-sqrt or exponential) and the final multiplier."""
    m = np.asarray(mult, float)
    T = len(m)
    post = m[warmup:]
    peak = float(post.max()) if len(post) else 1.0
    below = np.nonzero(post < 0.99 * peak)[0]
    start = warmup + (int(below[0]) if len(below) else len(post))
    b10 = np.nonzero(post < 0.1 * peak)[0]
    end10 = warmup + (int(b10[0]) if len(b10) else len(post))
    mid = (start + T - 1) // 2
    return {"stable_fraction": (start - warmup) / T, "decay_start": start / T,
            "decay_to_10pct": (end10 - start) / T, "mid_decay": float(m[min(mid, T - 1)]) / peak,
            "final": float(m[-1]) / peak}


# ------------------------------------------------------------------------------------ the optimiser
def optimize_schedule(fit_result: object, total_steps: int, *, peak_lr: float, warmup: int = 0,
                      min_lr: float = 0.0, family: str = "piecewise", knots: int = 48, monotone: bool = True,
                      checkpoints: Mapping[int, float] | None = None, warmup_from_zero: bool = False,
                      iters: int = 500, lr: float = 0.05, baselines: Mapping[str, Schedule | dict] | None = None,
                      level: float = 0.95, curve_points: int = 200) -> Schedule:
    """The schedule minimising ``fit_result``'s predicted final loss (Luo et al. 2025, Sec. 5).

    ``fit_result``: a :class:`workbench.fit.FitResult` of ``multi_power`` or ``lr_annealing`` (fitted on
    absolute per-step LRs). ``total_steps``: optimizer updates of the run; the final loss is the loss after
    all of them. Bounds: the LR never exceeds ``peak_lr``, never falls below ``min_lr`` (>= 0, < peak), a
    linear warmup over ``warmup`` updates to the first knot (``warmup_from_zero``: the papers' t/W ramp) is
    fixed, and ``monotone=True`` keeps it non-increasing after the warmup. ``knots``: number of intervals of
    the piecewise-linear schedule. ``checkpoints``: ``{step: weight}`` to minimise a weighted sum of the
    predicted losses after ``step`` updates instead of only the final one. ``baselines``: schedules (or
    specs) whose predicted final loss is reported next to the optimum. ``iters`` / ``lr``: Adam steps and
    step size per start.

    Returns an ``optimized`` :class:`Schedule` (multipliers of ``peak_lr``) with ``schedule.design`` a
    :class:`Design`.
    """
    name = _law_name(fit_result)
    if family not in FAMILIES:
        raise DesignError(f"family: must be one of {list(FAMILIES)}, got {family!r}")
    if not isinstance(total_steps, (int, np.integer)) or total_steps < 4:
        raise DesignError(f"total_steps: an integer >= 4, got {total_steps!r}")
    if not (isinstance(peak_lr, (int, float)) and np.isfinite(peak_lr) and peak_lr > 0):
        raise DesignError(f"peak_lr: must be a finite number > 0, got {peak_lr!r}")
    if not (isinstance(min_lr, (int, float)) and 0 <= min_lr < peak_lr):
        raise DesignError(f"min_lr: must be in [0, peak_lr = {peak_lr:g}), got {min_lr!r}")
    if not isinstance(warmup, (int, np.integer)) or not 0 <= warmup <= total_steps - 3:
        raise DesignError(f"warmup: an integer in [0, total_steps - 3 = {total_steps - 3}], got {warmup!r}")
    if not isinstance(knots, (int, np.integer)) or not 1 <= knots <= total_steps - warmup - 1:
        raise DesignError(f"knots: an integer in [1, total_steps - warmup - 1 = {total_steps - warmup - 1}], "
                          f"got {knots!r}")
    if not 0 < level < 1:
        raise DesignError(f"level: must be in (0, 1), got {level!r}")
    if iters < 1 or not lr > 0:
        raise DesignError(f"iters, lr: need iters >= 1 and lr > 0, got {iters!r}, {lr!r}")
    cps = {int(total_steps): 1.0} if not checkpoints else {int(k): float(v) for k, v in checkpoints.items()}
    for k, v in cps.items():
        if not 1 <= k <= total_steps or not v >= 0:
            raise DesignError(f"checkpoints: steps in [1, {total_steps}] with weights >= 0, got {k}: {v}")
    if sum(cps.values()) <= 0:
        raise DesignError("checkpoints: at least one weight must be > 0")

    T, W = int(total_steps), int(warmup)
    r = float(min_lr) / float(peak_lr)
    ks = np.linspace(W, T - 1.0, knots + 1)
    steps = np.arange(T, dtype=np.float64)
    i0, i1, a = _interp_matrix(ks, steps)
    ramp = torch.ones(T, dtype=torch.float64)
    if W > 0:
        from workbench.schedules import warmup_factor

        ramp[:W] = torch.as_tensor(warmup_factor(steps[:W], W, "linear", 0.0, warmup_from_zero))
    at = torch.tensor([k - 1 for k in cps], dtype=torch.long)
    wts = torch.tensor(list(cps.values()), dtype=torch.float64)
    wts = wts / wts.sum()
    theta = torch.as_tensor(np.asarray(fit_result.theta, float))

    def mult_of(u: torch.Tensor) -> torch.Tensor:
        v = _knot_values(u, r, monotone)
        m = v[i0] * (1 - a) + v[i1] * a
        if W > 0:
            m = torch.cat([ramp[:W] * v[0], m[W:]])
        return m

    def objective(u: torch.Tensor) -> torch.Tensor:
        return (law_loss(name, theta, peak_lr * mult_of(u), at) * wts).sum()

    p = (ks - W) / max(T - 1 - W, 1)
    starts = {"linear": 1 - p, "wsd": np.clip((1 - p) / 0.2, 0, 1), "cosine": 0.5 * (1 + np.cos(np.pi * p))}
    best_f, best_u, best_hist = np.inf, None, []
    for v0 in starts.values():
        u = torch.tensor(_init_u(r + (1 - r) * v0, r, monotone), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([u], lr=lr)
        hist, fb, ub = [], np.inf, u.detach().clone()
        for _ in range(iters):
            opt.zero_grad()
            f = objective(u)
            fv = float(f.detach())
            hist.append(fv)
            if np.isfinite(fv) and fv < fb:
                fb, ub = fv, u.detach().clone()
            if not np.isfinite(fv):
                break
            f.backward()
            opt.step()
        if fb < best_f:
            best_f, best_u, best_hist = fb, ub, hist
    if best_u is None:
        raise DesignError("fit_result: the law's prediction is not finite for any schedule tried "
                          "(check the fitted parameters)")
    with torch.no_grad():
        v = _knot_values(best_u, r, monotone).numpy()
    v = np.clip(v, r, 1.0)
    if monotone:
        v = np.minimum.accumulate(v)
    spec = {"name": "optimized", "total_steps": T, "knots": [float(x) for x in v], "warmup_steps": W,
            "warmup_from_zero": bool(warmup_from_zero)}
    sched = build(spec)
    design = _design(fit_result, name, sched, peak_lr, T, level, curve_points, baselines or {})
    design.objective = best_hist
    object.__setattr__(sched, "design", design)  # Schedule is frozen; the design is not part of its data
    return sched


def _design(fit_result: object, name: str, sched: Schedule, peak_lr: float, T: int, level: float,
            curve_points: int, baselines: Mapping[str, Schedule | dict]) -> Design:
    lr = peak_lr * np.asarray(sched(np.arange(T)), float)
    at = np.unique(np.linspace(1, T, min(curve_points, T)).astype(int)) - 1
    # workbench.fit's step convention: the loss after updates 0..at is logged at step at + 1
    X = {"step": at + 1, "curve": np.zeros(len(at), int), "lrs": [np.maximum(lr, 1e-300)]}
    lo = hi = None
    boot = getattr(fit_result, "boot", None)
    if boot is not None and len(boot):
        curve, lo, hi = fit_result.predict(X, band=level)
    else:
        curve = fit_result.predict(X)
    pf = predict_final(fit_result, lr, level=level)
    out = Design(name, float(peak_lr), T, pf["final"], pf["band"], at + 1, np.asarray(curve, float),
                 None if lo is None else np.asarray(lo, float), None if hi is None else np.asarray(hi, float),
                 level, notes=_notes(fit_result, lr),
                 shape=schedule_shape(np.asarray(sched(np.arange(T)), float), int(sched.params["warmup_steps"])))
    for key, b in baselines.items():
        s = build(b) if not isinstance(b, Schedule) else b
        out.baselines[key] = predict_final(fit_result, s, peak_lr, T, level=level)
    return out


def _notes(fit_result: object, lr: np.ndarray) -> list[str]:
    """Where the designed schedule leaves what the law was fitted on."""
    notes = []
    lrs = getattr(fit_result, "lrs", None)
    x = getattr(fit_result, "x", {}) or {}
    if lrs:
        longest = max(len(a) for a in lrs)
        if len(lr) > longest:
            notes.append(f"extrapolates in time: {len(lr)} steps, the longest fitted run has {longest}")
        lo = min(float(np.min(np.asarray(a, float)[1:])) for a in lrs)
        hi = max(float(np.max(np.asarray(a, float))) for a in lrs)
        if float(np.max(lr)) > hi * (1 + 1e-9):
            notes.append(f"peak LR {np.max(lr):.3g} above the largest fitted LR {hi:.3g}")
        if float(np.min(lr[1:])) < lo * (1 - 1e-9):
            notes.append(f"final LR {lr[-1]:.3g} below the smallest fitted LR {lo:.3g}: the decay's end "
                         "is outside the fitted range")
    elif "step" in x and len(lr) - 1 > int(np.max(x["step"])):
        notes.append("extrapolates in time beyond the last fitted step")
    return notes


# ------------------------------------------------------------------------------------ the loop on real runs
def per_step_lr(config: Mapping) -> np.ndarray:
    """Absolute LR of every optimizer update of a run from its stored config (``lr`` x its schedule; the
    schedule's ``total_steps`` defaults to the run's ``steps``, as the training engine does)."""
    steps = int(config["steps"])
    spec = dict(config.get("schedule") or {"name": "constant"})
    from workbench.schedules import param_specs

    if "total_steps" in {p.name for p in param_specs(spec.get("name", ""))} and "total_steps" not in spec:
        spec["total_steps"] = steps
    return float(config["lr"]) * np.asarray(build(spec)(np.arange(steps)), float)


def curves_from_store(store: object, run_ids: list[str], metric: str = "test_loss") -> object:
    """``FitData.from_curves`` of finished runs: ``metric`` at every logged step s >= 1 (the loss after s
    updates, the step convention of :mod:`workbench.fit.data`) with the run's per-update LR
    (:func:`per_step_lr`)."""
    from workbench.fit import FitData

    out = []
    for rid in run_ids:
        run = store.get_run(rid)
        s = store.series(rid, metric)
        step, val = np.asarray(s["step"], int), np.asarray(s["value"], float)
        ok = (step >= 1) & np.isfinite(val)
        if not ok.any():
            raise DesignError(f"run_ids: run {rid!r} has no finite {metric!r} after step 0")
        out.append((run.get("name") or rid, step[ok], val[ok], per_step_lr(run["config"])))
    return FitData.from_curves(out)
