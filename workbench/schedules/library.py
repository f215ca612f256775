"""Every schedule of the literature, as vectorised pure functions of the step.

All return the multiplier ``m(t)`` of the peak LR at optimizer update ``t`` (from 0). All share
one warmup (``warmup_steps``, ``warmup_shape`` linear/exponential/none, ``warmup_init``,
``warmup_from_zero``; see :func:`workbench.schedules.base.warmup_factor`): for ``t < W`` the
multiplier is ``ramp(t) * body(W)``, after that ``body(t)``. By default the first update never has
LR 0 (ramp ``(t+1)/W``); ``warmup_from_zero=True`` gives the papers' ``t/W``. ``total_steps`` includes
the warmup (the one warmup rule, stated in :mod:`workbench.schedules.base`): decaying bodies see the
progress ``p = (t - W) / (T - W)`` after warmup (Hugging Face convention); milestones are absolute
steps. ``min_ratio`` is the multiplier the decay ends at (min LR / peak).

Checked in ``tests/test_schedules*.py`` against ``torch.optim.lr_scheduler`` (step, multistep,
exponential, cosine, cosine_restarts, onecycle, linear, cyclic), Hugging Face formulas (wsd,
inverse_sqrt) and the reference values in ``shared/papers.md``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import Schedule, ScheduleParamError, floor, rewarm, scale, sequence, warmup_factor, with_warmup
from .registry import ParamSpec, register

__all__ = [
    "constant", "step", "multistep", "exponential", "linear", "cosine", "cosine_restarts", "inverse_sqrt",
    "onecycle", "wsd", "rex", "power", "infinite", "cyclic", "piecewise_constant", "two_stage", "table",
    "DECAY_SHAPES", "decay_curve",
]

Body = Callable[[np.ndarray], np.ndarray]

TOTAL = ParamSpec("total_steps", int, None, 1, None, "run length in optimizer updates (warmup included)", required=True)
WARMUP = (
    ParamSpec("warmup_steps", int, 0, 0, None, "warmup length in optimizer updates"),
    ParamSpec("warmup_shape", str, "linear", doc="warmup ramp", choices=("linear", "exponential", "none")),
    ParamSpec("warmup_init", float, 0.0, 0.0, 1.0, "multiplier at the start of the warmup ramp"),
    ParamSpec("warmup_from_zero", bool, False, doc="papers' convention: ramp t/W (LR warmup_init at the first update) "
              "instead of (t+1)/W"),
)
MIN_RATIO = ParamSpec("min_ratio", float, 0.0, 0.0, 1.0, "final multiplier (min LR / peak LR)")
DECAY_SHAPES = ("linear", "cosine", "1-sqrt", "exponential")


def _schedule(body: Body, total_steps: int, warmup_steps: int, warmup_shape: str, warmup_init: float,
              warmup_from_zero: bool, boundaries: tuple[float, ...] = ()) -> Schedule:
    """Attach the shared warmup to ``body`` (a function of the absolute step)."""
    W = float(warmup_steps)
    if W <= 0:
        fn = body
    else:
        bW = float(np.asarray(body(np.array([W])))[0])

        def fn(t: np.ndarray) -> np.ndarray:
            # the body on every step, the ramp only where t < W (a small slice of a long run)
            out = np.array(body(np.maximum(t, W)), dtype=np.float64)
            m = t < W
            if m.any():
                out[m] = warmup_factor(t[m], W, warmup_shape, warmup_init, warmup_from_zero) * bW
            return out

    bounds = tuple(sorted({b for b in ((W,) if W > 0 else ()) + tuple(boundaries) if 0 < b < total_steps}))
    return Schedule("?", {}, fn, int(total_steps), bounds)


def _progress(t: np.ndarray, W: float, T: float) -> np.ndarray:
    p = np.subtract(t, W)
    p *= 1.0 / max(T - W, 1e-300)
    return np.clip(p, 0.0, 1.0, out=p)


def decay_curve(p: np.ndarray, shape: str, min_ratio: float) -> np.ndarray:
    """Decay from 1 (p = 0) to ``min_ratio`` (p = 1): ``r + (1 - r) f(p)`` with f = 1 - p (linear),
    (1 + cos(pi p))/2 (cosine), 1 - sqrt(p) (1-sqrt, Hägele et al. 2024); exponential: ``r ** p``."""
    r = min_ratio
    if shape == "linear":
        out = np.multiply(p, -(1.0 - r))
        out += 1.0
        return out
    if shape == "cosine":  # in-place: this is the hot path of long runs
        a = 0.5 * (1.0 - r)
        out = np.multiply(p, np.pi)
        np.cos(out, out=out)
        out += 1.0
        out *= a
        out += r
        return out
    if shape == "1-sqrt":
        return r + (1.0 - r) * (1.0 - np.sqrt(p))
    if shape == "exponential":
        return np.power(r, p)
    raise ScheduleParamError("decay", "decay_shape", shape, f"one of {DECAY_SHAPES}")


def _decay_len(name: str, total_steps: int, warmup_steps: int, decay_steps: float | None,
               decay_fraction: float | None) -> float:
    if decay_steps is None and decay_fraction is None:
        raise ScheduleParamError(name, "decay_fraction", None, "[0, 1] (or give decay_steps)")
    D = float(decay_steps) if decay_steps is not None else float(decay_fraction or 0.0) * total_steps
    if D > total_steps - warmup_steps + 1e-9:
        raise ScheduleParamError(name, "decay_steps", D, f"[0, total_steps - warmup_steps = {total_steps - warmup_steps}]")
    return D


def _fixed(s: Schedule, decay_steps: float | None) -> Schedule:
    """decay_steps, when given, wins over decay_fraction (stored as None so the round trip is exact)."""
    if decay_steps is None:
        return s
    return Schedule(s.name, {"decay_fraction": None}, s.fn, s.total_steps, s.boundaries)


def _check_exp_floor(name: str, shape: str, min_ratio: float) -> None:
    if shape == "exponential" and min_ratio <= 0:
        raise ScheduleParamError(name, "min_ratio", min_ratio, "(0, 1] for an exponential (geometric) decay")


# --------------------------------------------------------------------------------------------
@register("constant", [TOTAL, *WARMUP])
def constant(total_steps, **w) -> Schedule:
    """Constant multiplier 1 after the warmup."""
    return _schedule(lambda t: np.ones_like(t), total_steps, **w)


@register("step", [TOTAL, ParamSpec("step_size", int, None, 1, None, "decay every step_size updates", required=True),
                   ParamSpec("gamma", float, 0.1, 0.0, 1.0, "factor per decay"), *WARMUP])
def step(total_steps, step_size, gamma, **w) -> Schedule:
    """Step decay: ``gamma ** floor((t - W) / step_size)`` (``torch.optim.lr_scheduler.StepLR``)."""
    W = w["warmup_steps"]
    bounds = tuple(float(b) for b in range(W + step_size, total_steps, step_size))[:1000]
    return _schedule(lambda t: np.power(gamma, np.floor((t - W) / step_size)), total_steps, boundaries=bounds, **w)


@register("multistep", [TOTAL, ParamSpec("milestones", list, [30, 60, 90], 0, None, "absolute steps where the LR is "
                        "multiplied by gamma (increasing)", item=float),
                        ParamSpec("gamma", float, 0.1, 0.0, 1.0, "factor per milestone"), *WARMUP])
def multistep(total_steps, milestones, gamma, **w) -> Schedule:
    """Multi-step decay (e.g. 30-60-90): ``gamma ** #{milestones <= t}`` (``MultiStepLR``)."""
    ms = np.asarray(milestones, dtype=np.float64)
    if np.any(np.diff(ms) <= 0):
        raise ScheduleParamError("multistep", "milestones", milestones, "strictly increasing steps")
    return _schedule(lambda t: np.power(gamma, np.searchsorted(ms, t, side="right").astype(np.float64)),
                     total_steps, boundaries=tuple(ms), **w)


@register("exponential", [TOTAL, ParamSpec("gamma", float, None, 0.0, 1.0, "factor per update", required=True), *WARMUP])
def exponential(total_steps, gamma, **w) -> Schedule:
    """Exponential decay ``gamma ** (t - W)`` (``ExponentialLR``)."""
    W = w["warmup_steps"]
    return _schedule(lambda t: np.power(gamma, t - W), total_steps, **w)


@register("linear", [TOTAL, MIN_RATIO, *WARMUP])
def linear(total_steps, min_ratio, **w) -> Schedule:
    """Linear decay to a floor: ``r + (1 - r)(1 - p)`` (Defazio et al. 2023, "When, why and how much?";
    ``LinearLR(start_factor=1, end_factor=r)``)."""
    W = w["warmup_steps"]
    return _schedule(lambda t: decay_curve(_progress(t, W, total_steps), "linear", min_ratio), total_steps, **w)


@register("cosine", [TOTAL, MIN_RATIO, *WARMUP])
def cosine(total_steps, min_ratio, **w) -> Schedule:
    """Cosine decay ``r + (1 - r)(1 + cos(pi p))/2`` (Loshchilov & Hutter 2017; ``CosineAnnealingLR``)."""
    W = w["warmup_steps"]
    return _schedule(lambda t: decay_curve(_progress(t, W, total_steps), "cosine", min_ratio), total_steps, **w)


@register("cosine_restarts", [TOTAL, ParamSpec("cycle_steps", int, None, 1, None, "length of the first cycle (T_0)",
                              required=True),
                              ParamSpec("cycle_mult", int, 1, 1, None, "each cycle is cycle_mult times longer (T_mult)"),
                              ParamSpec("cycle_decay", float, 1.0, 0.0, 1.0, "peak of cycle k is cycle_decay**k"),
                              MIN_RATIO, *WARMUP])
def cosine_restarts(total_steps, cycle_steps, cycle_mult, cycle_decay, min_ratio, **w) -> Schedule:
    """SGDR (Loshchilov & Hutter 2017): cosine from ``cycle_decay**k`` to ``r`` within cycle k, cycle
    k of length ``cycle_steps * cycle_mult**k`` (``CosineAnnealingWarmRestarts``)."""
    W = w["warmup_steps"]
    starts = [0.0]
    length = float(cycle_steps)
    while starts[-1] <= total_steps and len(starts) < 100000:
        starts.append(starts[-1] + length)
        length *= cycle_mult
    st = np.asarray(starts)

    def body(t: np.ndarray) -> np.ndarray:
        u = t - W
        k = np.searchsorted(st, u, side="right") - 1
        t_cur, t_i = u - st[k], st[k + 1] - st[k]
        peak = np.power(cycle_decay, k.astype(np.float64))
        return min_ratio + (peak - min_ratio) * 0.5 * (1.0 + np.cos(np.pi * t_cur / t_i))

    return _schedule(body, total_steps, boundaries=tuple(st[1:] + W), **w)


@register("inverse_sqrt", [TOTAL, ParamSpec("timescale", float, None, 1e-12, None, "tau (default: warmup_steps, "
                           "or 1 without warmup)", optional=True), *WARMUP])
def inverse_sqrt(total_steps, timescale, **w) -> Schedule:
    """Inverse square root (Vaswani et al. 2017; Hugging Face form): ``1 / sqrt((t - W + tau) / tau)``."""
    W = w["warmup_steps"]
    tau = float(timescale) if timescale is not None else float(max(W, 1))
    return _schedule(lambda t: 1.0 / np.sqrt((t - W + tau) / tau), total_steps, **w)


@register("onecycle", [TOTAL, ParamSpec("pct_start", float, 0.3, 0.0, 1.0, "fraction of the run spent increasing"),
                       ParamSpec("div_factor", float, 25.0, 1.0, None, "initial LR = peak / div_factor"),
                       ParamSpec("final_div_factor", float, 1e4, 1.0, None, "final LR = initial / final_div_factor"),
                       ParamSpec("anneal_shape", str, "cosine", choices=("cosine", "linear")),
                       ParamSpec("three_phase", bool, False, doc="symmetric up/down, then annihilate")])
def onecycle(total_steps, pct_start, div_factor, final_div_factor, anneal_shape, three_phase) -> Schedule:
    """1cycle (Smith & Topin 2019), exactly as ``torch.optim.lr_scheduler.OneCycleLR`` (which ends
    at step ``total_steps - 1``)."""
    init = 1.0 / div_factor
    final = init / final_div_factor
    up = float(pct_start * total_steps) - 1
    if three_phase:
        phases = [(up, init, 1.0), (2 * up, 1.0, init), (total_steps - 1.0, init, final)]
    else:
        phases = [(up, init, 1.0), (total_steps - 1.0, 1.0, final)]
    if any(b <= a for a, b in zip([0.0] + [p[0] for p in phases], [p[0] for p in phases])):
        raise ScheduleParamError("onecycle", "pct_start", pct_start, f"so that every phase has >= 1 step (total_steps={total_steps})")

    def ann(start, end, pct):
        if anneal_shape == "cosine":
            return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)
        return (end - start) * pct + start

    def fn(t: np.ndarray) -> np.ndarray:
        t = np.minimum(t, total_steps - 1.0)
        out = np.empty_like(t)
        start = 0.0
        for i, (end_step, a, b) in enumerate(phases):
            last = i == len(phases) - 1
            m = (t <= end_step) & (t >= start) if i == 0 else (t <= end_step) & (t > start) if not last else t > start
            out[m] = ann(a, b, (t[m] - start) / (end_step - start))
            start = end_step
        return out

    bounds = tuple(p[0] for p in phases[:-1])
    return Schedule("onecycle", {}, fn, int(total_steps), bounds)


def _wsd_params(default_shape="linear"):
    return (ParamSpec("decay_steps", float, None, 0, None, "decay length in updates (wins over decay_fraction)", optional=True),
            ParamSpec("decay_fraction", float, 0.2, 0.0, 1.0, "decay length as a fraction of total_steps", optional=True),
            ParamSpec("decay_shape", str, default_shape, choices=DECAY_SHAPES), MIN_RATIO)


@register("wsd", [TOTAL, *_wsd_params(), *WARMUP])
def wsd(total_steps, decay_steps, decay_fraction, decay_shape, min_ratio, **w) -> Schedule:
    """Warmup-stable-decay (Hu et al. 2024, MiniCPM; Hägele et al. 2024): 1 until ``T - D``, then
    :func:`decay_curve` over D updates (Hugging Face ``get_wsd_schedule``; exponential decay as in
    the multi-power-law data)."""
    _check_exp_floor("wsd", decay_shape, min_ratio)
    D = _decay_len("wsd", total_steps, w["warmup_steps"], decay_steps, decay_fraction)
    S = total_steps - D

    def body(t):
        return decay_curve(np.clip((t - S) / max(D, 1e-300), 0.0, 1.0), decay_shape, min_ratio)

    return _fixed(_schedule(body, total_steps, boundaries=(S,), **w), decay_steps)


@register("rex", [TOTAL, MIN_RATIO, *WARMUP])
def rex(total_steps, min_ratio, **w) -> Schedule:
    """REX (Chen et al. 2022, "REX: Revisiting budgeted training with an improved schedule"):
    ``r + (1 - r)(1 - z)/(1 - z/2)``, z = progress."""
    W = w["warmup_steps"]

    def body(t):
        z = _progress(t, W, total_steps)
        return min_ratio + (1.0 - min_ratio) * (1.0 - z) / (1.0 - z / 2.0)

    return _schedule(body, total_steps, **w)


@register("power", [TOTAL, ParamSpec("a", float, 4.6, 1e-12, None, "amplitude a of beta*a*n**b"),
                    ParamSpec("b", float, -0.51, -5.0, 0.0, "exponent b"),
                    ParamSpec("batch_size", float, None, 1e-12, None, "beta, the batch size in the paper's formula",
                              required=True),
                    ParamSpec("tokens_per_step", float, None, 1e-12, None, "tokens per optimizer update (n = t x this)",
                              required=True),
                    ParamSpec("max_lr", float, 0.02, 1e-12, None, "eta_max: the peak LR this multiplier is relative to"),
                    *_wsd_params(), *WARMUP])
def power(total_steps, a, b, batch_size, tokens_per_step, max_lr, decay_steps, decay_fraction, decay_shape,
          min_ratio, **w) -> Schedule:
    """Power scheduler (Shen et al. 2024, "Power Scheduler: a batch size and token number agnostic
    learning rate scheduler"): ``eta(n) = min(eta_max, beta * a * n**b)`` for n tokens seen, with a
    linear warmup to ``eta(n_W)`` and a final decay (WSD shapes) from ``eta(n_{T-D})``. Multiplier
    relative to ``max_lr``: use ``peak = max_lr``. The authors' training library (IBM dolomite-engine,
    ``PowerScheduler``) has the same shape: multiplier ``min(1, (a / eta_max) * n**b)`` after a linear
    warmup that ends at the power curve's value, a and b being configuration values. Defaults a = 4.6,
    b = -0.51, eta_max = 0.02 are the values recalled in papers.md (not checked against the paper's
    text, which was not available here); pass the ones your setup was tuned with."""
    _check_exp_floor("power", decay_shape, min_ratio)
    D = _decay_len("power", total_steps, w["warmup_steps"], decay_steps, decay_fraction)
    S = total_steps - D
    c = batch_size * a / max_lr

    def pw(t):
        n = np.maximum(t, 1.0) * tokens_per_step
        return np.minimum(1.0, c * np.power(n, b))

    def body(t):
        return pw(np.minimum(t, S)) * decay_curve(np.clip((t - S) / max(D, 1e-300), 0.0, 1.0), decay_shape, min_ratio)

    return _fixed(_schedule(body, total_steps, boundaries=(S,), **w), decay_steps)


@register("infinite", [TOTAL, ParamSpec("cooldown_steps", int, None, 0, None, "cosine cooldown length T_cd", required=True),
                       ParamSpec("const_ratio", float, None, 0.0, 1.0, "eta_const / eta_max", required=True),
                       ParamSpec("anneal_steps", int, 0, 0, None, "final geometric anneal length T_a"),
                       MIN_RATIO, *WARMUP])
def infinite(total_steps, cooldown_steps, const_ratio, anneal_steps, min_ratio, **w) -> Schedule:
    """Infinite LR schedule (Ibrahim et al. 2024, "Simple and scalable strategies to continually
    pre-train LLMs"): warmup; cosine cooldown ``c + (1 - c)(1 + cos(pi (t - W)/T_cd))/2``; constant c;
    final anneal ``c (r/c)**((t - T_ann)/T_a)``, ``T_ann = T - T_a``."""
    W = w["warmup_steps"]
    c, r = const_ratio, min_ratio
    t_ann = total_steps - anneal_steps
    if W + cooldown_steps > t_ann:
        raise ScheduleParamError("infinite", "cooldown_steps", cooldown_steps,
                                 f"[0, total_steps - warmup_steps - anneal_steps = {t_ann - W}]")
    if anneal_steps > 0 and not 0 < r <= c:
        raise ScheduleParamError("infinite", "min_ratio", r, f"(0, const_ratio = {c}] when anneal_steps > 0")

    def body(t):
        cd = c + 0.5 * (1.0 - c) * (1.0 + np.cos(np.pi * np.clip((t - W) / max(cooldown_steps, 1e-300), 0.0, 1.0)))
        an = c * np.power(r / c if c > 0 else 1.0, np.clip((t - t_ann) / max(anneal_steps, 1e-300), 0.0, 1.0))
        return np.where(t < W + cooldown_steps, cd, np.where(t < t_ann, c, an))

    return _schedule(body, total_steps, boundaries=(W + cooldown_steps, t_ann), **w)


@register("cyclic", [TOTAL, ParamSpec("cycle_steps", int, None, 1, None, "steps of the increasing half-cycle "
                     "(step_size_up)", required=True),
                     ParamSpec("cycle_steps_down", int, None, 1, None, "steps of the decreasing half (default: same)",
                               optional=True),
                     ParamSpec("base_ratio", float, 0.1, 0.0, 1.0, "lowest multiplier (base_lr / max_lr)"),
                     ParamSpec("mode", str, "triangular", choices=("triangular", "triangular2", "exp_range")),
                     ParamSpec("gamma", float, 1.0, 0.0, 1.0, "exp_range: amplitude factor per update"), *WARMUP])
def cyclic(total_steps, cycle_steps, cycle_steps_down, base_ratio, mode, gamma, **w) -> Schedule:
    """Cyclical LR (Smith 2017): triangular waves between ``base_ratio`` and 1 (``CyclicLR``,
    multiplier of ``max_lr``)."""
    W = w["warmup_steps"]
    up = float(cycle_steps)
    down = float(cycle_steps_down if cycle_steps_down is not None else cycle_steps)
    size, ratio = up + down, up / (up + down)

    def body(t):
        u = t - W
        cyc = np.floor(1 + u / size)
        x = 1.0 + u / size - cyc
        sf = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        if mode == "triangular":
            amp = 1.0
        elif mode == "triangular2":
            amp = 1.0 / np.power(2.0, cyc - 1)
        else:
            amp = np.power(gamma, u)
        return base_ratio + (1.0 - base_ratio) * sf * amp

    bounds = tuple(float(W + k * size) for k in range(1, int(total_steps // size) + 1))[:1000]
    return _schedule(body, total_steps, boundaries=bounds, **w)


@register("piecewise_constant", [TOTAL, ParamSpec("boundaries", list, None, 0, None, "absolute steps where the value "
                                 "changes (increasing)", required=True, item=float),
                                 ParamSpec("values", list, None, 0, None, "len(boundaries) + 1 multipliers",
                                           required=True, item=float), *WARMUP])
def piecewise_constant(total_steps, boundaries, values, **w) -> Schedule:
    """``values[k]`` for ``boundaries[k-1] <= t < boundaries[k]`` (e.g. the 8-1-1 step schedule)."""
    bs = np.asarray(boundaries, dtype=np.float64)
    vs = np.asarray(values, dtype=np.float64)
    if len(vs) != len(bs) + 1:
        raise ScheduleParamError("piecewise_constant", "values", values, f"a list of len(boundaries) + 1 = {len(bs) + 1} values")
    if np.any(np.diff(bs) <= 0):
        raise ScheduleParamError("piecewise_constant", "boundaries", boundaries, "strictly increasing steps")
    return _schedule(lambda t: vs[np.searchsorted(bs, t, side="right")], total_steps, boundaries=tuple(bs), **w)


@register("two_stage", [TOTAL, ParamSpec("switch_step", float, None, 0, None, "absolute step of the switch", required=True),
                        ParamSpec("stage2_ratio", float, None, 0.0, 1.0, "multiplier after the switch", required=True),
                        *WARMUP])
def two_stage(total_steps, switch_step, stage2_ratio, **w) -> Schedule:
    """Two-stage constant schedule (Luo et al. 2025, multi-power law: ``wsdcon``): 1 until
    ``switch_step``, then ``stage2_ratio``."""
    if switch_step > total_steps:
        raise ScheduleParamError("two_stage", "switch_step", switch_step, f"[0, total_steps = {total_steps}]")
    return _schedule(lambda t: np.where(t < switch_step, 1.0, stage2_ratio), total_steps, boundaries=(switch_step,), **w)


@register("table", [TOTAL, ParamSpec("values", list, None, 0, None, "multipliers at evenly spaced steps 0 .. total_steps-1 "
                    "(linear interpolation)", required=True, item=float)])
def table(total_steps, values) -> Schedule:
    """A tabulated schedule (e.g. a refined schedule): ``values[i]`` at step ``i (T-1)/(n-1)``,
    linear interpolation in between, last value held."""
    vs = np.asarray(values, dtype=np.float64)
    if len(vs) < 1:
        raise ScheduleParamError("table", "values", values, "a non-empty list")
    xs = np.linspace(0.0, max(total_steps - 1.0, 0.0), len(vs)) if len(vs) > 1 else np.zeros(1)
    return Schedule("table", {}, lambda t: np.interp(t, xs, vs), int(total_steps), ())


@register("optimized", [TOTAL, ParamSpec("knots", list, None, 0.0, 1.0, "multipliers at the knot steps (after the "
                        "warmup; linear interpolation in between)", required=True, item=float),
                        ParamSpec("knot_steps", list, None, 0, None, "absolute steps of the knots, increasing (default: "
                        "evenly spaced from warmup_steps to total_steps - 1)", optional=True, item=float), *WARMUP])
def optimized(total_steps, knots, knot_steps, **w) -> Schedule:
    """A schedule found by :func:`workbench.schedule_design.optimize_schedule` (minimising a fitted
    schedule-aware law's predicted loss, Luo et al. 2025): ``knots[j]`` at ``knot_steps[j]``, linear
    interpolation in between, the first knot held before it and the last after it; the shared warmup
    ramps to ``knots[0]``."""
    vs = np.asarray(knots, dtype=np.float64)
    if len(vs) < 2:
        raise ScheduleParamError("optimized", "knots", knots, "a list of at least 2 multipliers in [0, 1]")
    W = float(w["warmup_steps"])
    if knot_steps is None:
        xs = np.linspace(W, max(total_steps - 1.0, W), len(vs))
    else:
        xs = np.asarray(knot_steps, dtype=np.float64)
        if len(xs) != len(vs):
            raise ScheduleParamError("optimized", "knot_steps", knot_steps, f"a list of len(knots) = {len(vs)} steps")
        if np.any(np.diff(xs) <= 0) or xs[-1] > total_steps:
            raise ScheduleParamError("optimized", "knot_steps", knot_steps,
                                     f"strictly increasing steps in [0, total_steps = {total_steps}]")
    return _schedule(lambda t: np.interp(t, xs, vs), total_steps, **w)


# --- combinators by name (so nested specs round-trip through plain data) -------------------
@register("warmup", [ParamSpec("schedule", Schedule, None, doc="the schedule after the warmup", required=True),
                     *WARMUP])
def _warmup(schedule, warmup_steps, warmup_shape, warmup_init, warmup_from_zero) -> Schedule:
    """A warmup prefix before any schedule (:func:`workbench.schedules.base.with_warmup`)."""
    return with_warmup(schedule, warmup_steps, warmup_shape, warmup_init, warmup_from_zero)


@register("sequence", [ParamSpec("schedules", list, None, doc="phases, each on its own local step", required=True,
                                 item=Schedule)])
def _sequence(schedules) -> Schedule:
    """Phases one after the other (:func:`workbench.schedules.base.sequence`)."""
    return sequence(schedules)


@register("scale", [ParamSpec("schedule", Schedule, None, required=True),
                    ParamSpec("factor", float, None, 1e-300, None, "constant factor", required=True)])
def _scale(schedule, factor) -> Schedule:
    """A schedule times a constant."""
    return scale(schedule, factor)


@register("floor", [ParamSpec("schedule", Schedule, None, required=True), MIN_RATIO])
def _floor(schedule, min_ratio) -> Schedule:
    """A schedule clipped from below at ``min_ratio``."""
    return floor(schedule, min_ratio)


@register("rewarm", [ParamSpec("first", Schedule, None, required=True), ParamSpec("then", Schedule, None, required=True),
                     ParamSpec("warmup_steps", int, 0, 0, None, "re-warming length"),
                     ParamSpec("warmup_shape", str, "linear", choices=("linear", "exponential"))])
def _rewarm(first, then, warmup_steps, warmup_shape) -> Schedule:
    """Continual pre-training: ``first``, re-warm to ``then``'s peak, ``then`` (Gupta et al. 2023)."""
    return rewarm(first, then, warmup_steps, warmup_shape)
