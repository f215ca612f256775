"""Adaptive schedules: refined schedules, AutoLRS-style search, schedule-free optimizers.

**Refined schedule** (Defazio, Cutkosky, Mehta & Mishchenko 2023, "When, why and how much?
Adaptive learning rate scheduling by refinement", arXiv:2310.07831, SGD form): from the per-step
gradient norms G_t of a logged run, median-filter them (width ``tau * T``), set
``w_t = Ĝ_t ** -2`` and ``eta_t ∝ w_t * sum_{p > t} w_p``, normalised to a maximum of 1. With
constant gradient norms (the worst case of the analysis) this is linear decay to 0. Written here
(the authors' code is CC-BY-NC); ``scipy.ndimage.median_filter`` does the filtering.

**AutoLRS** (Jin et al. 2021, "AutoLRS: automatic learning-rate schedule by Bayesian optimization on
the fly", ICLR 2021): per stage, checkpoint model + optimizer (+ torch RNG); Bayesian optimisation
(``optuna``'s ``GPSampler``; no hand-written GP) proposes k LRs on a log-uniform range; each is
trained ``trial_steps`` (τ') from the checkpoint; ``L(t) = a e^{bt} + c`` (b < 0, ``scipy``
``curve_fit``) is fitted to the short loss curve and forecast at ``stage_steps`` (τ); the state is
restored exactly; τ steps are trained at the best LR; τ' and τ double.

**Schedule-free** (Defazio et al. 2024, "The road less scheduled"; PyPI ``schedulefree``): the
registered schedule ``"schedule_free"`` (params ``total_steps``, ``warmup_steps``, ``optimizer``)
marks a run whose optimizer replaces the schedule. :func:`schedule_free_pair` builds the
``(optimizer, scheduler)`` pair for it (``schedulefree.AdamWScheduleFree`` / ``SGDScheduleFree`` /
``RAdamScheduleFree`` with the package's own warmup, and a constant :class:`ScheduleLR`), so it
fits wherever a schedule + optimizer pair is accepted. Call ``optimizer.train()`` before training
steps and ``optimizer.eval()`` before evaluating or saving. The multiplier of ``"schedule_free"``
is the package's warmup ``(k + 1) / W`` then 1 (for plots).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .base import Schedule, ScheduleParamError
from .library import TOTAL, _schedule, table
from .registry import ParamSpec, build, register
from .torch import ScheduleLR

__all__ = [
    "refine", "refined_schedule", "AutoLRSConfig", "AutoLRSStage", "AutoLRSResult", "autolrs",
    "forecast_exponential", "schedule_free", "is_schedule_free", "schedule_free_optimizer", "schedule_free_pair",
    "TrainState",
]


# --- refined schedules --------------------------------------------------------------------
def refine(grad_norms: Iterable[float], tau: float = 0.0) -> np.ndarray:
    """Refined multipliers (Defazio et al. 2023, SGD form) from per-step gradient norms.

    ``tau``: median-filter width as a fraction of the run length (0: no filtering).
    """
    g = np.asarray(list(grad_norms), dtype=np.float64)
    if g.ndim != 1 or g.size < 2:
        raise ScheduleParamError("refined", "grad_norms", f"shape {g.shape}", "a 1-D sequence of >= 2 norms")
    if not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ScheduleParamError("refined", "grad_norms", "array", "finite values > 0")
    if not 0.0 <= tau <= 1.0:
        raise ScheduleParamError("refined", "tau", tau, "[0, 1] (fraction of the run)")
    width = int(round(tau * g.size))
    if width > 1:
        from scipy.ndimage import median_filter

        g = median_filter(g, size=width, mode="nearest")
    w = g ** -2.0
    tail = np.concatenate([np.cumsum(w[::-1])[::-1][1:], [0.0]])  # sum_{p > t} w_p
    eta = w * tail
    return eta / eta.max()


def refined_schedule(grad_norms: Iterable[float], tau: float = 0.0, total_steps: int | None = None) -> Schedule:
    """The refined schedule for the next run, as a ``"table"`` schedule (plain-data round trip).

    ``total_steps`` defaults to the logged run's length; otherwise the curve is stretched.
    """
    eta = refine(grad_norms, tau)
    return table(total_steps=int(total_steps or eta.size), values=eta.tolist())


# --- AutoLRS -------------------------------------------------------------------------------
@dataclass
class AutoLRSConfig:
    """AutoLRS settings (Jin et al. 2021: τ = ``stage_steps``, τ' = ``trial_steps``, k = ``trials``;
    LRs searched log-uniformly in ``[lr_min, lr_max]``; the first ``startup_trials`` of a stage are
    random, then the GP proposes; ``loss_floor`` bounds the forecast asymptote, None for none)."""

    lr_min: float = 1e-5
    lr_max: float = 1e-1
    trials: int = 10
    stage_steps: int = 1000
    trial_steps: int = 100
    double: bool = True
    startup_trials: int = 3
    loss_floor: float | None = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.lr_min < self.lr_max:
            raise ScheduleParamError("autolrs", "lr_min", self.lr_min, f"(0, lr_max = {self.lr_max})")
        for name in ("trials", "stage_steps", "trial_steps"):
            if int(getattr(self, name)) < 1:
                raise ScheduleParamError("autolrs", name, getattr(self, name), ">= 1")
        if self.trial_steps < 3:
            raise ScheduleParamError("autolrs", "trial_steps", self.trial_steps, ">= 3 (three parameters are fitted)")


@dataclass
class AutoLRSStage:
    start: int
    stage_steps: int
    trial_steps: int
    lr: float
    trial_lrs: list[float]
    forecasts: list[float]


@dataclass
class AutoLRSResult:
    """Committed LR and loss per step (``lrs[t]`` drove update t), stages, and trial steps spent."""

    lrs: np.ndarray
    losses: np.ndarray
    stages: list[AutoLRSStage] = field(default_factory=list)
    trial_steps_spent: int = 0

    def schedule(self, peak: float | None = None) -> Schedule:
        """The committed LRs as a ``"table"`` schedule of multipliers of ``peak`` (default: max LR)."""
        p = float(peak if peak is not None else self.lrs.max())
        return table(total_steps=len(self.lrs), values=(self.lrs / p).tolist())


@dataclass
class TrainState:
    """An exact in-memory snapshot of model, optimizer and torch RNG state."""

    model: dict[str, Any]
    optimizer: dict[str, Any]
    rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None

    @classmethod
    def capture(cls, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> TrainState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        return cls(copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()), torch.get_rng_state(), cuda)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        model.load_state_dict(self.model)
        optimizer.load_state_dict(copy.deepcopy(self.optimizer))
        torch.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)


def forecast_exponential(losses: Iterable[float], horizon: float, floor: float | None = None) -> float:
    """Fit ``L(t) = a e^{b t} + c`` with b <= 0 to ``losses`` at t = 1..n and return L(horizon)
    (AutoLRS's forecast). ``floor``: lower bound on the asymptote c (0 for non-negative losses such
    as cross-entropy or MSE, so a short curve is never extrapolated below 0). Non-finite losses
    give ``inf``."""
    y = np.asarray(list(losses), dtype=np.float64)
    if y.size == 0 or not np.all(np.isfinite(y)):
        return math.inf
    n = y.size
    x = np.arange(1, n + 1, dtype=np.float64) / n  # time in units of the trial length
    h = float(horizon) / n
    from scipy.optimize import curve_fit

    def f(x, a, b, c):
        return a * np.exp(b * x) + c

    span = max(float(np.ptp(y)), 1e-12)
    try:
        c0 = y[-1] if floor is None else max(float(y[-1]), floor + 1e-12)
        (a, b, c), _ = curve_fit(f, x, y, p0=(y[0] - y[-1], -1.0, c0), bounds=([-10 * span - abs(y).max(), -50.0, -np.inf if floor is None else floor],
                                 [10 * span + abs(y).max(), 0.0, np.inf]), maxfev=2000)
        pred = float(f(h, a, b, c))
    except (RuntimeError, ValueError):
        pred = float(y[-max(1, n // 5):].mean())
    return pred if math.isfinite(pred) else math.inf


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr


def autolrs(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_step: Callable[[int], float],
    total_steps: int,
    config: AutoLRSConfig | None = None,
) -> AutoLRSResult:
    """Train ``total_steps`` updates choosing the LR per stage by Bayesian optimisation.

    ``train_step(step)`` performs one update at global step ``step`` with the optimizer's current
    LR (all groups get the same LR) and returns the loss; it must get its batch from ``step`` (the
    trials of a stage replay the batches of that stage). Model, optimizer and RNG are restored
    exactly before each trial and before the committed stage, so the committed run equals an
    uninterrupted run at ``result.lrs``.
    """
    import optuna

    cfg = config or AutoLRSConfig()
    if total_steps < 1:
        raise ScheduleParamError("autolrs", "total_steps", total_steps, ">= 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dist = optuna.distributions.FloatDistribution(cfg.lr_min, cfg.lr_max, log=True)
    lrs = np.zeros(total_steps)
    losses = np.zeros(total_steps)
    stages: list[AutoLRSStage] = []
    spent = 0
    t, tau, tau_p = 0, int(cfg.stage_steps), int(cfg.trial_steps)
    k = 0
    while t < total_steps:
        stage = min(tau, total_steps - t)
        trial_len = max(1, min(tau_p, stage))
        snap = TrainState.capture(model, optimizer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna's ExperimentalWarning for GPSampler
            sampler = optuna.samplers.GPSampler(seed=cfg.seed + k, n_startup_trials=min(cfg.startup_trials, cfg.trials))
        study = optuna.create_study(direction="minimize", sampler=sampler)
        tried, fc = [], []
        for _ in range(cfg.trials):
            trial = study.ask({"lr": dist})
            lr = float(trial.params["lr"])
            snap.restore(model, optimizer)
            _set_lr(optimizer, lr)
            ys = []
            for j in range(trial_len):
                ys.append(float(train_step(t + j)))
                if not math.isfinite(ys[-1]):
                    break
            spent += len(ys)
            pred = forecast_exponential(ys, stage, cfg.loss_floor) if trial_len >= 3 else (ys[-1] if ys else math.inf)
            tried.append(lr)
            fc.append(pred)
            study.tell(trial, pred if math.isfinite(pred) else 1e30)
        best = tried[int(np.argmin(fc))]
        snap.restore(model, optimizer)
        _set_lr(optimizer, best)
        for j in range(stage):
            lrs[t + j] = best
            losses[t + j] = float(train_step(t + j))
        stages.append(AutoLRSStage(t, stage, trial_len, best, tried, fc))
        t += stage
        k += 1
        if cfg.double:
            tau, tau_p = 2 * tau, 2 * tau_p
    return AutoLRSResult(lrs, losses, stages, spent)


# --- schedule-free -------------------------------------------------------------------------
SCHEDULE_FREE_OPTIMIZERS = {"adamw": "AdamWScheduleFree", "sgd": "SGDScheduleFree", "radam": "RAdamScheduleFree"}


@register("schedule_free", [TOTAL, ParamSpec("warmup_steps", int, 0, 0, None, "the optimizer's own linear warmup"),
                            ParamSpec("optimizer", str, "adamw", doc="schedule-free optimizer",
                                      choices=tuple(SCHEDULE_FREE_OPTIMIZERS))])
def schedule_free(total_steps, warmup_steps, optimizer) -> Schedule:
    """Schedule-free training (Defazio et al. 2024): no decay; the ``schedulefree`` optimizer's
    warmup ``(k + 1) / W``. Build the optimizer with :func:`schedule_free_pair`."""
    if warmup_steps > total_steps:
        raise ScheduleParamError("schedule_free", "warmup_steps", warmup_steps, f"<= total_steps ({total_steps})")
    return _schedule(lambda t: np.ones_like(t), total_steps, warmup_steps, "linear" if warmup_steps else "none", 0.0, False)


def is_schedule_free(spec: Schedule | dict | str) -> bool:
    """True when ``spec`` names the ``"schedule_free"`` schedule."""
    if isinstance(spec, Schedule):
        return spec.name == "schedule_free"
    if isinstance(spec, dict):
        return spec.get("name") == "schedule_free"
    return spec == "schedule_free"


def schedule_free_optimizer(params: Iterable[Any], lr: float, spec: Schedule | dict | str = "schedule_free",
                            **optimizer_kwargs: Any) -> torch.optim.Optimizer:
    """A ``schedulefree`` optimizer for the ``"schedule_free"`` schedule ``spec`` (its
    ``warmup_steps`` and ``optimizer`` name), in train mode."""
    import schedulefree

    s = build(spec) if not isinstance(spec, str) else None
    p = dict(s.params) if s is not None else {"warmup_steps": 0, "optimizer": "adamw"}
    if s is not None and s.name != "schedule_free":
        raise ScheduleParamError("schedule_free_optimizer", "spec", s.name, "a 'schedule_free' schedule")
    cls = getattr(schedulefree, SCHEDULE_FREE_OPTIMIZERS[p["optimizer"]])
    opt = cls(params, lr=lr, warmup_steps=int(p["warmup_steps"]), **optimizer_kwargs)
    opt.train()
    return opt


def schedule_free_pair(params: Iterable[Any], lr: float, spec: Schedule | dict, **optimizer_kwargs: Any
                       ) -> tuple[torch.optim.Optimizer, ScheduleLR]:
    """``(optimizer, scheduler)`` for a schedule-free run: the package optimizer (which does the
    warmup) and a constant :class:`ScheduleLR` (so ``scheduler.step()`` can be called as usual)."""
    s = build(spec)
    opt = schedule_free_optimizer(params, lr, s, **optimizer_kwargs)
    return opt, ScheduleLR(opt, build("constant", total_steps=s.total_steps))
