"""``TrainConfig``: everything that defines one run, as plain data, validated from one table.

Every numeric field's allowed range is declared once in :data:`RANGES`; the fields that members of a
batched stack may set differently are declared once in :data:`BATCHABLE_FIELDS` (every other field must
be equal across the stack; the sweep executors group members by the same rule). Presets
(:data:`PRESETS`, ``TrainConfig.preset("nanda", ...)``) are explicit: a config never gains values
that are not written in it or in its class defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from workbench import losses as L
from workbench import tasks as T
from workbench.configcheck import check_nested
from workbench.errors import WorkbenchError
from workbench.optim import BATCHED_OPTIMIZERS, BatchedUnsupportedError, GradFilter


class ConfigError(WorkbenchError):
    """A bad training configuration: names the field and the allowed range."""


class Range(NamedTuple):
    """The allowed values of a numeric field: ``lo`` .. ``hi`` (``lo`` excluded when ``lo_open``)."""

    lo: float
    hi: float = math.inf
    lo_open: bool = False
    integer: bool = False
    optional: bool = False


RANGES: dict[str, Range] = {
    "lr": Range(0.0, lo_open=True),
    "weight_decay": Range(0.0),
    "steps": Range(1, integer=True),
    "batch_size": Range(1, integer=True, optional=True),
    "seed": Range(0, integer=True),
    "data_seed": Range(0, integer=True),
    "log_every": Range(1, integer=True),
    "eval_every": Range(1, integer=True),
    "sync_every": Range(1, integer=True),
    "checkpoint_every": Range(0, integer=True),
    "keep_checkpoints": Range(1, integer=True),
    "sharpness_every": Range(0, integer=True),
    "sharpness_iters": Range(1, integer=True),
    "progress_every": Range(0, integer=True),
    "grad_clip": Range(0.0, lo_open=True, optional=True),
    "stop_at_test_acc": Range(0.0, 1.0, optional=True),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "loss": tuple(L.LOSSES),
    "loss_dtype": tuple(sorted(L.LOSS_DTYPES)),
    "dtype": ("float32", "bfloat16"),
}
# Fields the members of one batched stack may set differently (everything else must be equal).
BATCHABLE_FIELDS: frozenset[str] = frozenset(
    {"lr", "weight_decay", "schedule", "optimizer_params", "grad_clip", "seed", "data_seed"})


@dataclass
class TrainConfig:
    """Everything that defines one run (plain data: ``to_dict`` / ``from_dict`` round-trip).

    Defaults (the class defaults are the only defaults; ``TrainConfig.preset(name)`` adds a named set)::

        task="modular" task_params={} (task defaults: modular p=113 op="+" frac=0.3)
        model="auto" (the task's default model) model_params={}
        optimizer="adamw" optimizer_params={} (the library's defaults) lr=1e-3 weight_decay=0.0
        schedule=None (constant LR) steps=1000 batch_size=None (full batch) seed=0 data_seed=0
        device="auto" (CUDA when present, else CPU) dtype="float32" tf32=False loss="ce" loss_dtype="float32"
        orthograd=False grokfast=None grad_clip=None log_every=10 eval_every=100 sync_every=50
        checkpoint_every=0 (none) checkpoint_dir=None (<store dir>/checkpoints, or ./runs/checkpoints without a
        store file) keep_checkpoints=2 fork_points=[] sharpness_every=0 sharpness_iters=20 progress_every=0
        stop_at_test_acc=None compile=False

    ``seed`` fixes the model init and the batch order, ``data_seed`` the train / test split.

    ``schedule`` (a ``workbench.schedules`` spec; the LR at update t is ``lr`` x its multiplier) lasts the
    run's ``steps`` updates, warmup included: a schedule's own ``warmup_steps`` and the ``warmup``
    combinator's both count inside ``steps`` (the one warmup rule of :mod:`workbench.schedules.base`).
    ``{"name": "schedule_free"}`` runs the ``schedulefree`` optimizer instead (its own warmup).

    ``fork_points``: steps (0 < step < ``steps``) where a checkpoint is written and kept (``keep_checkpoints``
    does not drop it), so :func:`workbench.train.fork.fork` can branch cooldowns from them later.
    """

    task: str = "modular"
    task_params: dict = field(default_factory=dict)
    model: str = "auto"
    model_params: dict = field(default_factory=dict)
    optimizer: str = "adamw"
    optimizer_params: dict = field(default_factory=dict)
    lr: float = 1e-3
    schedule: dict | None = None
    weight_decay: float = 0.0
    steps: int = 1000
    batch_size: int | None = None          # None: full batch
    seed: int = 0                          # model init and batch order
    data_seed: int = 0                     # train / test split
    device: str = "auto"
    dtype: str = "float32"                 # "bfloat16": autocast on CUDA
    tf32: bool = False
    loss: str = "ce"
    loss_dtype: str = "float32"
    orthograd: bool = False
    grokfast: dict | None = None           # {"kind": "ema", "alpha": 0.98, "lamb": 2.0}
    grad_clip: float | None = None
    log_every: int = 10
    eval_every: int = 100
    sync_every: int = 50                   # log points between host syncs (also every 0.25 s)
    checkpoint_every: int = 0              # 0: no checkpoints
    checkpoint_dir: str | None = None
    keep_checkpoints: int = 2
    fork_points: list = field(default_factory=list)  # steps whose checkpoints are kept for cooldown forks
    sharpness_every: int = 0
    sharpness_iters: int = 20
    progress_every: int = 0                # Nanda progress measures (modular "+" only)
    stop_at_test_acc: float | None = None  # stop when every live member reaches it
    compile: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field against its declared range / choices; raise ConfigError naming it."""
        try:
            self.task = T.canonical_task(self.task)
        except T.TaskError as e:
            raise ConfigError(str(e)) from None
        for name in ("task_params", "model_params", "optimizer_params"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name}: must be a dict, got {type(getattr(self, name)).__name__}")
        _check_task_params(self.task, self.task_params)
        for name, r in RANGES.items():
            setattr(self, name, _check_range(name, getattr(self, name), r))
        self.fork_points = _check_fork_points(self.fork_points, self.steps)
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}: must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if not isinstance(self.device, str):
            raise ConfigError(f"device: must be a string ('auto', 'cpu', 'cuda'), got {self.device!r}")
        if not isinstance(self.optimizer, str) or not self.optimizer:
            raise ConfigError(f"optimizer: must be an optimizer name, got {self.optimizer!r}")
        if self.schedule is not None and not isinstance(self.schedule, dict):
            raise ConfigError(f"schedule: must be a schedule spec dict with 'name' or None, got {self.schedule!r}")
        if self.grokfast is not None:
            try:
                GradFilter.from_spec(self.grokfast)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"grokfast: {e}") from None
        if self.schedule_free:
            self._check_schedule_free()
        check_nested(self, ConfigError)  # schedule, optimizer, model, device: built, so a config that constructs can start

    @property
    def schedule_free(self) -> bool:
        """True for a schedule-free run (``schedule={"name": "schedule_free", ...}``, Defazio et al. 2024):
        the ``schedulefree`` package's optimizer replaces the schedule (and does its own warmup)."""
        return isinstance(self.schedule, dict) and self.schedule.get("name") == "schedule_free"

    def _check_schedule_free(self) -> None:
        from workbench.schedules.adaptive import SCHEDULE_FREE_OPTIMIZERS

        allowed = sorted(SCHEDULE_FREE_OPTIMIZERS)
        if self.optimizer.lower() not in SCHEDULE_FREE_OPTIMIZERS:
            raise ConfigError(f"optimizer: a schedule_free run needs one of {allowed} (the schedulefree "
                              f"package's optimizers), got {self.optimizer!r}")
        named = self.schedule.get("optimizer", self.optimizer.lower())
        if named != self.optimizer.lower():
            raise ConfigError(f"schedule.optimizer: {named!r} differs from optimizer {self.optimizer!r}; "
                              "leave it out (the run's optimizer is used)")
        if self.orthograd:
            raise ConfigError("orthograd: not available with a schedule_free run (the OrthoGrad wrapper hides "
                              "the optimizer's train()/eval() switch)")

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict:
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"config: must be a dict, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ConfigError(f"{bad[0]}: unknown config field; allowed: {sorted(known)}")
        return cls(**copy.deepcopy(d))

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @classmethod
    def preset(cls, name: str, **changes: Any) -> TrainConfig:
        """A named preset (:data:`PRESETS`) with ``changes`` on top (nested dicts merged one level)."""
        if name not in PRESETS:
            raise ConfigError(f"preset: must be one of {sorted(PRESETS)}, got {name!r}")
        return cls.from_dict(merge(PRESETS[name], changes))


def merge(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` on top; dict values (task_params, optimizer_params...) merge one level."""
    out = copy.deepcopy(base)
    for k, v in copy.deepcopy(changes).items():
        out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# Named settings (``TrainConfig.preset(name, ...)``, ``workbench run grokking --preset NAME``), each for the
# grokking task (modular a + b). "cpu" reaches >= 95 % test accuracy on a 2-core CPU in under 2 minutes
# (bench/grokking_repro.py d) and is the default of ``workbench run grokking``; "nanda" is the paper's
# (Nanda et al. 2023: p = 113, 30 % of pairs for training, one-layer transformer, AdamW 1e-3, wd 1,
# betas (0.9, 0.98), full batch).
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"task_params": {"p": 97, "frac": 0.5}, "model": "mlp", "model_params": {"hidden": [256]},
            "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1.0, "optimizer_params": {"betas": [0.9, 0.98]},
            "steps": 5000, "log_every": 50, "eval_every": 50, "stop_at_test_acc": 0.95},
    "nanda": {"task_params": {"p": 113, "frac": 0.3}, "model": "nanda", "optimizer": "adamw", "lr": 1e-3,
              "weight_decay": 1.0, "optimizer_params": {"betas": [0.9, 0.98]}, "steps": 15000,
              "log_every": 100, "eval_every": 100},
}


def _check_range(name: str, v: Any, r: Range) -> Any:
    if v is None and r.optional:
        return None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if ok and r.integer:
        ok = float(v).is_integer()
    if ok:
        ok = (v > r.lo if r.lo_open else v >= r.lo) and v <= r.hi
    if not ok:
        rng = f"{'(' if r.lo_open else '['}{r.lo}, {r.hi}]"
        kind = "an integer" if r.integer else "a number"
        raise ConfigError(f"{name}: must be {kind} in {rng}{' or None' if r.optional else ''}, got {v!r}")
    return int(v) if r.integer else v


def _check_fork_points(points: Any, steps: int) -> list[int]:
    if not isinstance(points, (list, tuple)):
        raise ConfigError(f"fork_points: must be a list of steps in [1, steps - 1 = {steps - 1}], got {points!r}")
    out = []
    for p in points:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not float(p).is_integer() or not 0 < p < steps:
            raise ConfigError(f"fork_points: each must be an integer step in [1, steps - 1 = {steps - 1}], got {p!r}")
        out.append(int(p))
    return sorted(set(out))


def _check_task_params(task: str, params: dict) -> None:
    """Validate task parameters without building big data (raises ConfigError naming the field)."""
    allowed = list(T.TASK_PARAMS[task])
    bad = sorted(set(params) - set(allowed))
    if bad:
        raise ConfigError(f"task_params.{bad[0]}: unknown parameter for task {task!r}; allowed: {allowed}")
    if task in ("modular", "parity", "digits"):
        try:
            T.make_task(task, params, 0)
        except T.TaskError as e:
            raise ConfigError(f"task_params.{e}") from None
    elif task == "lm":
        seq = params.get("seq_len", 64)
        if not isinstance(seq, int) or seq < 1:
            raise ConfigError(f"task_params.seq_len: must be an integer >= 1, got {seq!r}")
        tf = params.get("test_frac", 0.1)
        if not isinstance(tf, (int, float)) or not 0 < tf < 1:
            raise ConfigError(f"task_params.test_frac: must be in the open interval (0, 1), got {tf!r}")


def batch_key(cfg: TrainConfig | dict) -> str:
    """Configs with equal keys may train in one batched stack (they differ only in BATCHABLE_FIELDS)."""
    d = cfg.to_dict() if isinstance(cfg, TrainConfig) else cfg
    return json.dumps({k: v for k, v in d.items() if k not in BATCHABLE_FIELDS}, sort_keys=True, default=str)


def check_batchable(cfgs: Sequence[TrainConfig]) -> None:
    """Raise ConfigError naming the first field that differs outside BATCHABLE_FIELDS (``steps`` may differ
    too: each member stops at its own, frozen while the longest go on), and BatchedUnsupportedError when the optimizer has no per-member batched form."""
    if not cfgs:
        raise ConfigError("cfgs: need at least one member")
    c0 = cfgs[0].to_dict()
    for i, c in enumerate(cfgs[1:], 1):
        d = c.to_dict()
        for k in c0:
            if k not in BATCHABLE_FIELDS and k != "steps" and d[k] != c0[k]:
                raise ConfigError(f"{k}: must be the same for every member of a batch (member {i} has {d[k]!r}, "
                                  f"member 0 has {c0[k]!r}); members may differ in {sorted(BATCHABLE_FIELDS)}")
    if any(c.schedule_free for c in cfgs):
        raise BatchedUnsupportedError(
            "schedule: 'schedule_free' has no per-member batched implementation (the schedulefree optimizers "
            "keep their own averaged weights); train schedule-free runs one at a time with train()")
    if cfgs[0].optimizer.lower() not in BATCHED_OPTIMIZERS:
        raise BatchedUnsupportedError(
            f"optimizer: {cfgs[0].optimizer!r} has no per-member batched implementation; batched mode supports "
            f"{BATCHED_OPTIMIZERS}. Train {cfgs[0].optimizer!r} runs one at a time with train().")


def check_until(until: int | None) -> int | None:
    if until is None:
        return None
    if isinstance(until, bool) or not isinstance(until, int) or until < 1:
        raise ConfigError(f"until: must be an integer >= 1 (the step to pause at) or None, got {until!r}")
    return until
