"""Shared pieces of the bench scripts: interleaved repeated measurements, ratio statistics, time caps,
Markdown tables, the Nanda et al. 2023 grokking configuration and a bare PyTorch training loop.

Every ratio a bench prints comes from :func:`interleave`: the sides are measured alternately
(A, B, A, B, ...) ``reps`` times, so a drift of the machine (clocks, another process) hits both sides,
and :class:`Ratio` prints the median of the per-pair ratios with their min-max range. A single
back-to-back pair can swing by 3x on a busy 2-core machine (issue 19); the range says how far to trust
a median.

:func:`time_cap` bounds a block in wall-clock time: a timer thread raises ``KeyboardInterrupt`` in the
main thread (``_thread.interrupt_main``) after ``seconds``, which the training loop handles like Ctrl-C
(everything logged so far stays in the run store, runs are marked ``interrupted``), and the block
raises :class:`Capped` instead.
"""

from __future__ import annotations

import _thread
import contextlib
import math
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # `python bench/x.py` puts bench/ first; the package lives in ROOT
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from workbench.train import TrainConfig  # noqa: E402


# ---------------------------------------------------------------------------------------------- timing
def interleave(sides: dict[str, Callable[[], float]], reps: int,
               out: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Call each side in turn, ``reps`` rounds (A, B, A, B, ...); -> the measurements of each side.
    ``out``: a dict filled as the rounds go (what was measured survives an interrupted call)."""
    out = {} if out is None else out
    for k in sides:
        out.setdefault(k, [])
    for _ in range(reps):
        for k, f in sides.items():
            out[k].append(float(f()))
    return out


@dataclass
class Ratio:
    """Median and range of paired ratios ``num[i] / den[i]`` (pairs measured back to back)."""

    median: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, num: Sequence[float], den: Sequence[float], scale: float = 1.0) -> Ratio:
        r = [scale * a / b for a, b in zip(num, den)]
        if not r:
            raise ValueError("Ratio.of: no pairs")
        return cls(statistics.median(r), min(r), max(r), len(r))

    def __str__(self) -> str:
        return f"{self.median:.3g}x ({self.lo:.3g}-{self.hi:.3g}, n={self.n})"


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free confidence interval for the median of ``values``: the order statistics
    ``x_(j)`` and ``x_(n+1-j)`` with the largest ``j`` for which ``P(j <= B <= n - j) >= level``,
    ``B ~ Binomial(n, 1/2)`` (the sign-test interval; no assumption on the noise's shape, which on a
    shared VM is skewed). Returns ``(lo, hi, coverage)``; ``(nan, nan, nan)`` below 6 values (no
    interval reaches 95 % there)."""
    from scipy.stats import binom

    x = sorted(values)
    n = len(x)
    best = None
    for j in range(1, n // 2 + 1):  # j: 1-based rank of the lower end
        cover = float(binom.cdf(n - j, n, 0.5) - binom.cdf(j - 1, n, 0.5))
        if cover >= level:
            best = (x[j - 1], x[n - j], cover)
    return best if best is not None else (math.nan, math.nan, math.nan)


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> str:
    """``median (min-max)`` of ``values * scale``."""
    v = [scale * x for x in values]
    return f"{statistics.median(v):.{digits}g} ({min(v):.{digits}g}-{max(v):.{digits}g})"


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device | str | None = None) -> float:
    """Wall seconds of one call of ``fn`` (the benches' one timing helper): the device's queued work is
    synchronised before and after (CUDA), so the time covers what ``fn`` launched."""
    if device is not None:
        sync(device)
    t = time.perf_counter()
    fn()
    if device is not None:
        sync(device)
    return time.perf_counter() - t


def step_time_by_difference(run: Callable[[int], object], steps: int, device: torch.device | str) -> float:
    """Seconds per step of ``run(n)`` (a whole training call of n steps, set-up included) from the
    difference of two lengths, ``(t(2 steps) - t(steps)) / steps``: the set-up cancels."""
    return (timed(lambda: run(2 * steps), device) - timed(lambda: run(steps), device)) / steps


class Capped(Exception):
    """A block ran past its time cap and was interrupted."""


@contextlib.contextmanager
def time_cap(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of wall time (raises :class:`Capped`). Main thread only.

    ``_thread.interrupt_main`` does nothing while SIGINT is ignored, which is how a shell starts a
    background job (``cmd &`` in a script, ``nohup``): Python's own Ctrl-C handler is installed for the
    block and the caller's handler restored after it."""
    lock, state = threading.Lock(), {"done": False, "fired": False}
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def fire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                _thread.interrupt_main()

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except KeyboardInterrupt:
        if state["fired"]:
            raise Capped(f"stopped at its time cap of {seconds:.0f} s") from None
        raise
    finally:
        with lock:
            state["done"] = True
        timer.cancel()
        if state["fired"] and sys.exc_info()[0] is None:  # fired after the block's last line: take it here
            try:
                for _ in range(100):
                    time.sleep(0.002)
            except KeyboardInterrupt:
                pass
        if previous is not None:        # None: a handler not set from Python, which can't be put back
            signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------------------------- tables
def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table (cells converted with str; '|' escaped)."""
    def cell(x: object) -> str:
        return str(x).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- Nanda
NANDA_SMALL_TASK = {"p": 23, "frac": 0.3}
NANDA_SMALL_MODEL = {"d_model": 32, "n_heads": 4, "d_head": 8, "d_mlp": 128}


def nanda_config(small: bool = False, **changes: object) -> TrainConfig:
    """Nanda et al. 2023's grokking setting: a + b mod 113, train fraction 0.3, their one-layer
    transformer, full-batch AdamW lr 1e-3, wd 1, betas (0.9, 0.98). ``small``: p = 23 and a narrow
    model (d_model 32), the CPU size of the benches."""
    base = TrainConfig(task="modular", task_params=dict(NANDA_SMALL_TASK if small else {"p": 113, "frac": 0.3}),
                       model="nanda", model_params=dict(NANDA_SMALL_MODEL if small else {}), optimizer="adamw",
                       lr=1e-3, weight_decay=1.0, optimizer_params={"betas": [0.9, 0.98]})
    return base.replace(**changes) if changes else base


class BareLoop:
    """The bare PyTorch loop the engine is compared with: the same model, ``torch.optim.AdamW``,
    forward, cross-entropy, backward, step, zero_grad; no metrics, no store. ``mode``: ``fp32`` (TF32
    matmuls on CUDA when the config asks), ``bf16`` (bf16 autocast) or ``compile`` (``torch.compile``
    of the model)."""

    def __init__(self, cfg: TrainConfig, mode: str = "fp32") -> None:
        from workbench.device import configure_precision, pick_device
        from workbench.models import build_model
        from workbench.tasks import make_task

        self.device = pick_device(cfg.device)
        if self.device.type == "cuda":
            configure_precision(cfg.tf32)
        ds = make_task(cfg.task, cfg.task_params, seed=cfg.data_seed).to(self.device)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.model, cfg.model_params, ds).to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                     betas=tuple(cfg.optimizer_params.get("betas", (0.9, 0.999))))
        self.x, self.y = ds.x_train, ds.y_train
        self.mode = mode
        self.fwd = torch.compile(self.model) if mode == "compile" else self.model

    def steps(self, n: int) -> None:
        ctx = (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.mode == "bf16"
               else contextlib.nullcontext())
        for _ in range(n):
            with ctx:
                logits = self.fwd(self.x)
            loss = torch.nn.functional.cross_entropy(logits.float(), self.y)
            loss.backward()
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)

    def step_time(self, n: int) -> float:
        """Seconds per step over ``n`` steps (after the first call's warm-up)."""
        return timed(lambda: self.steps(n), self.device) / n

    def flops_per_step(self) -> float:
        """FLOPs of one forward + backward of the full batch, counted by ``torch.utils.flop_counter``
        (matrix products and attention; the optimizer's elementwise work is not counted)."""
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            loss = torch.nn.functional.cross_entropy(self.model(self.x).float(), self.y)
            loss.backward()
        self.opt.zero_grad(set_to_none=True)
        return float(counter.get_total_flops())
