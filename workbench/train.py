"""The training loop: one run, or a stack of N runs trained as one batched model.

``train(cfg)`` trains one run with a plain ``nn.Module`` and a library optimizer
(:func:`workbench.optim.build_optimizer`). ``train_batched(cfgs)`` trains N members at once: their
parameters are stacked [N, ...] (``torch.func.stack_module_state``), the forward pass is
``torch.func.vmap`` over ``functional_call`` (so members never interact: the loss is the sum of the
members' losses and each member's gradient is its own), and the update is
:class:`workbench.optim.BatchedOptimizer` with per-member hyperparameters as [N] tensors and the LR of
each member from its schedule (``workbench.schedules.lr_table``, [N, steps]). A member trained in a
stack equals the same config trained alone (fp32, same seed) to 1e-5 relative over 100 steps
(tests/test_train_batched.py).

Data order is a pure function of (seed, step): each epoch's permutation comes from a generator
seeded with (seed, epoch), so a resumed run sees exactly the batches it would have seen.

Metrics (:data:`workbench.metrics.METRIC_NAMES`) are computed on the device every ``log_every``
steps and copied to the host together every ``sync_every`` log points or 0.25 s, then streamed to
the run store (one :class:`~workbench.store.MetricWriter` per member, flushed at least every 0.25 s).
A member whose loss becomes NaN / inf is frozen on the device at once (gradient zeroed, LR 0) and
marked ``diverged`` in the store at the next sync; the others go on. Checkpoints are written every
``checkpoint_every`` steps (tmp file + ``os.replace``), recorded as store artifacts, and
:func:`resume` continues from the last one at the exact step.

``until=k`` (``train`` / ``train_batched`` / ``resume``) pauses a run at step k *without* changing its
``steps``: it writes a checkpoint at k and leaves the run ``interrupted``, so :func:`resume` finishes it
exactly as if it had never stopped (the schedule still sees the full horizon; training a shorter run
would change cosine and the like). The sweep runner uses it to prune trials from their learning curves.
A stack member marked ``pruned`` is left out when its stack resumes.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench import losses as L
from workbench import metrics as M
from workbench import tasks as T
from workbench.device import autocast, configure_precision, pick_device
from workbench.errors import WorkbenchError
from workbench.models import build_model, model_config
from workbench.optim import (
    BATCHED_OPTIMIZERS,
    BatchedOptimizer,
    BatchedUnsupportedError,
    GradFilter,
    batched_hparams,
    build_optimizer,
    clip_grad_norm_per_member_,
    orthogonalize_,
    set_lr,
)


class ConfigError(WorkbenchError):
    """A bad training configuration: names the field and the allowed range."""


@dataclass
class TrainConfig:
    """Everything that defines one run (plain data: ``to_dict`` / ``from_dict`` round-trip)."""

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
    sharpness_every: int = 0
    sharpness_iters: int = 20
    progress_every: int = 0                # Nanda progress measures (modular "+" only)
    stop_at_test_acc: float | None = None  # stop when every live member reaches it
    compile: bool = False

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        try:
            self.task = T.canonical_task(self.task)
        except T.TaskError as e:
            raise ConfigError(str(e)) from None
        for name in ("task_params", "model_params", "optimizer_params"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name}: must be a dict, got {type(getattr(self, name)).__name__}")
        _check_task_params(self.task, self.task_params)

        def num(name: str, lo: float, hi: float = math.inf, lo_open: bool = False, integer: bool = False,
                optional: bool = False) -> None:
            v = getattr(self, name)
            if v is None and optional:
                return
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if ok and integer:
                ok = float(v).is_integer()
            if ok:
                ok = (v > lo if lo_open else v >= lo) and v <= hi
            if not ok:
                rng = f"{'(' if lo_open else '['}{lo}, {hi}]"
                kind = "an integer" if integer else "a number"
                raise ConfigError(f"{name}: must be {kind} in {rng}{' or None' if optional else ''}, got {v!r}")
            if integer:
                setattr(self, name, int(v))

        num("lr", 0.0, lo_open=True)
        num("weight_decay", 0.0)
        num("steps", 1, integer=True)
        num("batch_size", 1, integer=True, optional=True)
        num("seed", 0, integer=True)
        num("data_seed", 0, integer=True)
        num("log_every", 1, integer=True)
        num("eval_every", 1, integer=True)
        num("sync_every", 1, integer=True)
        num("checkpoint_every", 0, integer=True)
        num("keep_checkpoints", 1, integer=True)
        num("sharpness_every", 0, integer=True)
        num("sharpness_iters", 1, integer=True)
        num("progress_every", 0, integer=True)
        num("grad_clip", 0.0, lo_open=True, optional=True)
        num("stop_at_test_acc", 0.0, 1.0, optional=True)
        if self.loss not in L.LOSSES:
            raise ConfigError(f"loss: must be one of {L.LOSSES}, got {self.loss!r}")
        if self.loss_dtype not in L.LOSS_DTYPES:
            raise ConfigError(f"loss_dtype: must be one of {sorted(L.LOSS_DTYPES)}, got {self.loss_dtype!r}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"dtype: must be 'float32' or 'bfloat16', got {self.dtype!r}")
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


def _check_task_params(task: str, params: dict) -> None:
    """Validate task parameters without building big data (raises ConfigError naming the field)."""
    import inspect

    fn = T.TASKS[task]
    allowed = [k for k in inspect.signature(fn).parameters if k != "seed"]
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


@dataclass
class RunResult:
    """The outcome of one run: id in the store (None without a store), final status, last metrics."""

    run_id: str | None
    status: str
    final: dict[str, float]
    step: int = 0
    config: dict = field(default_factory=dict)
    wall: float = 0.0
    params: dict[str, torch.Tensor] | None = None   # final parameters (CPU), with return_params=True


# ---------------------------------------------------------------------------------------------- helpers
def batch_indices(seed: int, step: int, n: int, batch_size: int) -> torch.Tensor:
    """Indices of the examples of ``step`` for a run with ``seed``: epoch e uses the permutation of a
    generator seeded with (seed, e); batches are consecutive slices (the last partial one dropped)."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + epoch) % (2 ** 63))
    if batch_size >= n:
        return torch.randint(0, n, (batch_size,), generator=g)
    return torch.randperm(n, generator=g)[k * batch_size:(k + 1) * batch_size]


def _schedule_spec(cfg: TrainConfig) -> dict | None:
    if cfg.schedule is None:
        return None
    from workbench.schedules import param_specs

    spec = dict(cfg.schedule)
    names = {p.name for p in param_specs(spec.get("name", ""))}
    if "total_steps" in names and "total_steps" not in spec:
        spec["total_steps"] = cfg.steps
    return spec


def multipliers(cfgs: Sequence[TrainConfig], device: torch.device) -> torch.Tensor:
    """[N, steps] LR multipliers of each member's schedule (ones for no schedule)."""
    steps = cfgs[0].steps
    if all(c.schedule is None for c in cfgs):
        return torch.ones(len(cfgs), steps, device=device)
    from workbench.schedules import lr_table

    specs = [_schedule_spec(c) or _schedule_spec(c.replace(schedule={"name": "constant"})) for c in cfgs]
    return lr_table(specs, steps, device=device)


_SHARED_KEYS = ("task", "task_params", "model", "model_params", "optimizer", "steps", "batch_size", "device",
                "dtype", "tf32", "loss", "loss_dtype", "orthograd", "grokfast", "log_every", "eval_every",
                "sync_every", "checkpoint_every", "sharpness_every", "sharpness_iters", "progress_every",
                "compile", "stop_at_test_acc")


def _check_batchable(cfgs: Sequence[TrainConfig]) -> None:
    if not cfgs:
        raise ConfigError("cfgs: need at least one member")
    c0 = cfgs[0].to_dict()
    for i, c in enumerate(cfgs[1:], 1):
        d = c.to_dict()
        for k in _SHARED_KEYS:
            if d[k] != c0[k]:
                raise ConfigError(f"{k}: must be the same for every member of a batch (member {i} has {d[k]!r}, "
                                  f"member 0 has {c0[k]!r}); members may differ in lr, weight_decay, schedule, "
                                  "optimizer_params, grad_clip, seed and data_seed")
    if cfgs[0].optimizer.lower() not in BATCHED_OPTIMIZERS:
        raise BatchedUnsupportedError(
            f"optimizer: {cfgs[0].optimizer!r} has no per-member batched implementation; batched mode supports "
            f"{BATCHED_OPTIMIZERS}. Train {cfgs[0].optimizer!r} runs one at a time with train().")


def _atomic_save(obj: Any, path: Path, shared: bool | None = None) -> None:
    from workbench.safeio import save_checkpoint  # owner-only file and folders, tmp + os.replace

    save_checkpoint(obj, path, shared=shared)


# ---------------------------------------------------------------------------------------------- engine
class _Engine:
    """State and step of N members (N = 1 with ``batched=False`` is a plain single run)."""

    def __init__(self, cfgs: Sequence[TrainConfig], batched: bool) -> None:
        self.cfgs = list(cfgs)
        self.cfg = c = self.cfgs[0]
        self.N = len(self.cfgs)
        self.batched = batched
        self.device = pick_device(c.device)
        if self.device.type == "cuda":
            configure_precision(c.tf32)
        # data: shared when every member has the same split, else stacked per member
        seeds = {m.data_seed for m in self.cfgs}
        self.ds = T.make_task(c.task, c.task_params, seed=c.data_seed).to(self.device)
        self.member_ds: list[T.Dataset] | None = None
        if len(seeds) > 1 and c.task != "lm":
            self.member_ds = [T.make_task(c.task, c.task_params, seed=m.data_seed).to(self.device) for m in self.cfgs]
            self._stack_data()
        self.n_train = self.ds.n_train
        self.B = c.batch_size if c.batch_size is not None and c.batch_size < self.n_train else None
        # models: member i initialised under torch.manual_seed(seed_i), exactly as a run alone
        models = []
        for m in self.cfgs:
            torch.manual_seed(m.seed)
            models.append(build_model(c.model, c.model_params, self.ds).to(self.device))
        self.model = models[0]
        self.scale_invariant = list(getattr(self.model, "scale_invariant", []))
        self.names = [n for n, _ in self.model.named_parameters()]
        if batched:
            params, _ = torch.func.stack_module_state(models)
            self.params = {n: params[n].detach().clone().requires_grad_(True) for n in self.names}
            self.base = copy.deepcopy(self.model).to("meta")
            hp, nesterov = batched_hparams(c.optimizer.lower(), [{**m.optimizer_params, "weight_decay": m.weight_decay}
                                                                 for m in self.cfgs], self.device)
            self.opt: Any = BatchedOptimizer(c.optimizer.lower(), list(self.params.values()), hp, nesterov)
            self.clip = (torch.tensor([m.grad_clip or math.inf for m in self.cfgs], device=self.device)
                         if any(m.grad_clip for m in self.cfgs) else None)
        else:
            self.params = dict(self.model.named_parameters())
            kw = dict(c.optimizer_params)
            self.opt = build_optimizer(c.optimizer, self.model, lr=c.lr, weight_decay=c.weight_decay,
                                       orthograd=c.orthograd, **kw)
            self.clip = c.grad_clip
        self.filter = GradFilter.from_spec(c.grokfast)
        self.peak = torch.tensor([m.lr for m in self.cfgs], device=self.device)
        self.table = multipliers(self.cfgs, self.device)
        self.lr_host = (self.table[0].double().cpu().numpy() * c.lr) if not batched else None
        self.alive = torch.ones(self.N, dtype=torch.bool, device=self.device)
        self.step = 0
        self._forward_fn = self._forward
        if c.compile and self.device.type == "cuda":
            self._forward_fn = torch.compile(self._forward)
        self._perm_cache: dict[tuple[int, int], torch.Tensor] = {}
        self._grid = None

    # ---------------------------------------------------------------- data
    @property
    def _xdim(self) -> int | None:
        return 0 if (self.member_ds is not None or self.B is not None) else None

    def _stack_data(self) -> None:
        mds = self.member_ds
        self.ds.x_train = torch.stack([d.x_train for d in mds])
        self.ds.y_train = torch.stack([d.y_train for d in mds])
        self.ds.x_test = torch.stack([d.x_test for d in mds])
        self.ds.y_test = torch.stack([d.y_test for d in mds])

    def train_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.B is None:
            return self.ds.x_train, self.ds.y_train
        idx = [batch_indices(m.seed, step, self.n_train, self.B) for m in self.cfgs]
        if not self.batched:
            return self.ds.batch("train", idx[0].to(self.device, non_blocking=True))
        I = torch.stack(idx).to(self.device, non_blocking=True)                  # [N, B]
        if self.member_ds is not None:
            ar = torch.arange(self.N, device=self.device).unsqueeze(1)
            return self.ds.x_train[ar, I], self.ds.y_train[ar, I]
        return self.ds.batch("train", I)

    def test_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ds.batch("test")

    # ---------------------------------------------------------------- forward
    def _member_forward(self, params: dict, x: torch.Tensor, y: torch.Tensor):
        logits = torch.func.functional_call(self.base, params, (x,))
        ps = L.per_sample_loss(self.cfg.loss, logits, y, self.cfg.loss_dtype)
        return logits, ps

    def _forward(self, x: torch.Tensor, y: torch.Tensor, xdim: int | None = None):
        """-> logits [N, ...], per-sample loss [N, ...], mean loss [N]. ``xdim`` = 0 when x, y carry
        the member dim (per-member batches or splits), None when all members see the same x."""
        with autocast(self.device, self.cfg.dtype):
            if self.batched:
                logits, ps = torch.func.vmap(self._member_forward, in_dims=(0, xdim, xdim))(self.params, x, y)
            else:
                logits = self.model(x)
                ps = L.per_sample_loss(self.cfg.loss, logits, y, self.cfg.loss_dtype)
                logits, ps = logits.unsqueeze(0), ps.unsqueeze(0)
        return logits, ps, ps.reshape(ps.shape[0], -1).mean(1)

    def _expand_y(self, y: torch.Tensor, ps: torch.Tensor) -> torch.Tensor:
        return y if y.shape == ps.shape else y.unsqueeze(0).expand(ps.shape)

    def param_list(self) -> list[torch.Tensor]:
        ps = [self.params[n] for n in self.names]
        return ps if self.batched else [p.unsqueeze(0) for p in ps]

    def grad_list(self) -> list[torch.Tensor]:
        gs = [self.params[n].grad if self.params[n].grad is not None else torch.zeros_like(self.params[n])
              for n in self.names]
        return gs if self.batched else [g.unsqueeze(0) for g in gs]

    # ---------------------------------------------------------------- one update
    def train_step(self, log: bool) -> dict[str, torch.Tensor] | None:
        s = self.step
        x, y = self.train_batch(s)
        logits, ps, loss = self._forward_fn(x, y, self._xdim)
        (loss.sum() if self.batched else loss[0]).backward()
        out = None
        if log:
            out = self.step_metrics(logits, ps, loss, y)
        if self.batched:
            self.alive &= torch.isfinite(loss.detach())
            if self.filter is not None:
                self.filter([(n, self.params[n]) for n in self.names])
            if self.clip is not None:
                clip_grad_norm_per_member_(list(self.params.values()), self.clip)
            if self.cfg.orthograd:
                orthogonalize_(list(self.params.values()))
            lr = self.peak * self.table[:, s]
            self.opt.step(lr, self.alive)
            for p in self.params.values():
                p.grad = None
        else:
            if self.filter is not None:
                self.filter(self.model)
            if self.clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            set_lr(self.opt, float(self.lr_host[s]))
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
        self.step += 1
        return out

    # ---------------------------------------------------------------- metrics
    @torch.no_grad()
    def step_metrics(self, logits, ps, loss, y) -> dict[str, torch.Tensor]:
        yy = self._expand_y(y, ps)
        params, grads = self.param_list(), self.grad_list()
        lr = self.peak * self.table[:, self.step]
        out = {
            "train_loss": loss.detach().float(),
            "train_acc": M.accuracy(logits, yy),
            "lr": lr,
            "weight_norm": M.weight_norm(params),
            "grad_norm": M.grad_norm(grads),
            "grad_weight_cos": M.grad_weight_cos(params, grads),
            "zero_loss_fraction": M.zero_loss_fraction(ps),
        }
        if self.cfg.loss == "ce":
            out["sc_fraction"] = M.sc_fraction(logits, torch.float32)
        per = M.sq_norms(params).sqrt()
        for i, n in enumerate(self.names):
            if params[i].dim() >= 3:            # matrices (member dim + 2 or more)
                out[f"weight_norm/{n}"] = per[i]
        if self.scale_invariant:
            sel = [params[self.names.index(n)] for n in self.scale_invariant]
            out["eff_lr"] = M.effective_lr(lr, sel)
        return out

    @torch.no_grad()
    def eval_metrics(self) -> dict[str, torch.Tensor]:
        x, y = self.test_batch()
        logits, ps, loss = self._forward(x, y, 0 if self.member_ds is not None else None)
        yy = self._expand_y(y, ps)
        return {"test_loss": loss.float(), "test_acc": M.accuracy(logits, yy)}

    @torch.no_grad()
    def final_train_metrics(self) -> dict[str, torch.Tensor]:
        if self.ds.kind == "lm" or self.B is not None:
            x, y = self.train_batch(self.step)
            xdim = self._xdim
        else:
            x, y = self.ds.x_train, self.ds.y_train
            xdim = 0 if self.member_ds is not None else None
        logits, ps, loss = self._forward(x, y, xdim)
        yy = self._expand_y(y, ps)
        return {"train_loss": loss.float(), "train_acc": M.accuracy(logits, yy),
                "weight_norm": M.weight_norm(self.param_list())}

    def sharpness(self) -> torch.Tensor:
        x, y = self.train_batch(self.step)
        leaves = [self.params[n] for n in self.names]
        return M.sharpness(lambda: self._forward(x, y, self._xdim)[2], leaves, iters=self.cfg.sharpness_iters,
                           member_dim=self.batched)

    def progress(self) -> dict[str, torch.Tensor]:
        meta = self.ds.meta
        if self.cfg.task != "modular" or meta.get("op") != "+":
            return {}
        p = meta["p"]
        if self._grid is None:
            a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
            x = torch.stack([a.reshape(-1), b.reshape(-1), torch.full((p * p,), p)], 1).to(self.device)
            self._grid = (x, ((a + b) % p).reshape(-1).to(self.device))
        x, y = self._grid
        with torch.no_grad():
            if self.batched:
                logits = torch.func.vmap(lambda prm, xx: torch.func.functional_call(self.base, prm, (xx,)),
                                         in_dims=(0, None))(self.params, x)
            else:
                logits = self.model(x).unsqueeze(0)
        mds = self.member_ds or [self.ds]
        outs = []
        for i in range(self.N):
            tr = torch.as_tensor(mds[min(i, len(mds) - 1)].meta["train_index"], device=self.device)
            outs.append(M.progress_measures(logits[i:i + 1], y, tr))
        res = {k: torch.cat([o[k] for o in outs]).float() for k in outs[0]}
        res["sum_sq_weights"] = M.sq_norms(self.param_list()).sum(0)
        return res

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "params": {n: p.detach().clone() for n, p in self.params.items()},
            "opt": self.opt.state_dict(),
            "filter": self.filter.state_dict() if self.filter is not None else None,
            "alive": self.alive.clone(),
            "rng": torch.get_rng_state(),
            "configs": [m.to_dict() for m in self.cfgs],
            "batched": self.batched,
        }

    def load_state_dict(self, sd: dict) -> None:
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(sd["params"][n].to(self.device))
        self.opt.load_state_dict(sd["opt"])
        if self.filter is not None and sd.get("filter"):
            self.filter.load_state_dict({"grads": {k: (v.to(self.device) if torch.is_tensor(v) else
                                                       [t.to(self.device) for t in v])
                                                   for k, v in sd["filter"]["grads"].items()}})
        self.alive = sd["alive"].to(self.device)
        torch.set_rng_state(sd["rng"])
        self.step = int(sd["step"])


# ---------------------------------------------------------------------------------------------- the loop
class _Runner:
    """Drives an engine: logging, host syncs, store writes, checkpoints, divergence, progress bar."""

    def __init__(self, engine: _Engine, store, run_ids: list[str | None], progress: bool = False,
                 return_params: bool = False, until: int | None = None) -> None:
        self.e, self.store, self.run_ids = engine, store, run_ids
        self.until = _check_until(until)
        self.return_params = return_params
        self.writers = [store.writer(r, every_seconds=0.25) if store is not None else None for r in run_ids]
        self.pending: list[tuple[int, dict[str, torch.Tensor]]] = []
        self.last_sync = time.monotonic()
        self.final: list[dict[str, float]] = [{} for _ in run_ids]
        self.dead = [False] * len(run_ids)
        self.stop = False
        self.resumed_at = -1
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=engine.cfg.steps, initial=engine.step, desc=engine.cfg.task, dynamic_ncols=True)

    def _tokens(self, step: int) -> int:
        c = self.e.cfg
        per = (self.e.B or self.e.n_train) * (c.task_params.get("seq_len", 64) if c.task == "lm" else 1)
        return int(step * per)

    def sync(self, force: bool = False) -> None:
        if not self.pending:
            return
        if not force and len(self.pending) < self.e.cfg.sync_every and time.monotonic() - self.last_sync < 0.25:
            return
        flat, keys = [], []
        for step, d in self.pending:
            for k, v in d.items():
                flat.append(v.detach().float().reshape(-1))
                keys.append((step, k))
        flat.append(self.e.alive.float())
        host = torch.stack(flat).cpu().numpy()                      # the one device -> host copy
        alive = host[-1] > 0.5
        rows: list[dict[int, dict[str, float]]] = [{} for _ in self.run_ids]
        for (step, k), vals in zip(keys, host[:-1]):
            for i in range(len(self.run_ids)):
                rows[i].setdefault(step, {})[k] = float(vals[i])
        for i, rid in enumerate(self.run_ids):
            if self.dead[i]:
                continue
            for step, d in sorted(rows[i].items()):
                self.final[i].update(d)
                self.final[i]["step"] = step
                if self.writers[i] is not None:
                    self.writers[i].log(step, d, tokens=self._tokens(step))
            lost = not alive[i] or any(k.endswith("loss") and not math.isfinite(v)
                                       for d in rows[i].values() for k, v in d.items())
            if lost:
                self.dead[i] = True
                last = max(rows[i]) if rows[i] else self.e.step
                self.final[i]["diverged"] = 1.0
                if self.writers[i] is not None:
                    self.writers[i].log(last, {"diverged": 1.0}, tokens=self._tokens(last))
                    self.writers[i].flush()
                    self.store.set_status(rid, "diverged", error=f"loss not finite at step <= {last}")
        for w in self.writers:
            if w is not None:
                w.flush()
        if not self.e.batched and self.dead[0]:
            self.stop = True
        if all(self.dead):
            self.stop = True
        thr = self.e.cfg.stop_at_test_acc
        if thr is not None:
            live = [f for f, d in zip(self.final, self.dead) if not d]
            if live and all(f.get("test_acc", -1) >= thr for f in live):
                self.stop = True
        if self.bar is not None:
            f = self.final[0]
            self.bar.n = self.e.step
            self.bar.set_postfix({k: f"{f[k]:.4g}" for k in ("train_loss", "test_loss", "train_acc", "test_acc")
                                  if k in f}, refresh=True)
        self.pending = []
        self.last_sync = time.monotonic()

    def checkpoint(self) -> None:
        e = self.e
        self.sync(force=True)
        root = Path(e.cfg.checkpoint_dir) if e.cfg.checkpoint_dir else (
            Path(self.store.path).parent / "checkpoints" if self.store is not None and self.store.path != ":memory:"
            else Path("runs") / "checkpoints")
        folder = root / (self.run_ids[0] or "run")
        path = folder / f"step_{e.step:08d}.pt"
        _atomic_save({**e.state_dict(), "run_ids": self.run_ids}, path, shared=getattr(self.store, "shared", None))
        if self.store is not None:
            for i, rid in enumerate(self.run_ids):
                self.store.add_artifact(rid, "checkpoint", path, {"step": e.step, "member": i,
                                                                  "members": self.run_ids})
        old = sorted(folder.glob("step_*.pt"))[:-e.cfg.keep_checkpoints]
        for f in old:
            f.unlink(missing_ok=True)

    def run(self) -> list[RunResult]:
        e, c = self.e, self.e.cfg
        t0 = time.time()
        status = "finished"
        end = c.steps if self.until is None else min(c.steps, self.until)
        paused = False
        try:
            while e.step < end and not self.stop:
                s = e.step
                if c.checkpoint_every and s > 0 and s % c.checkpoint_every == 0 and s != self.resumed_at:
                    self.checkpoint()
                log = s % c.log_every == 0
                extra: dict[str, torch.Tensor] = {}
                if s % c.eval_every == 0:
                    extra.update(e.eval_metrics())
                if c.sharpness_every and s % c.sharpness_every == 0:
                    extra["sharpness"] = e.sharpness()
                if c.progress_every and s % c.progress_every == 0:
                    extra.update(e.progress())
                out = e.train_step(log)
                if out is not None or extra:
                    self.pending.append((s, {**(out or {}), **extra}))
                    self.sync()
            paused = e.step < c.steps and not self.stop
            if paused:                    # until=k: checkpoint at k, no final metrics, stay resumable
                self.checkpoint()
            else:
                fin = {**e.final_train_metrics(), **e.eval_metrics()}       # metrics of the final parameters
                if c.progress_every:
                    fin.update(e.progress())
                self.pending.append((e.step, fin))
                self.sync(force=True)
                if c.checkpoint_every and e.step % c.checkpoint_every == 0 and e.step > 0:
                    self.checkpoint()
        except KeyboardInterrupt:
            status = "interrupted"
            self.sync(force=True)
            raise
        except Exception as ex:
            status = "failed"
            if self.store is not None:
                for rid in self.run_ids:
                    self.store.set_status(rid, "failed", error=f"{type(ex).__name__}: {ex}")
            raise
        finally:
            for w in self.writers:
                if w is not None:
                    w.close()
            if self.bar is not None:
                self.bar.close()
            if self.store is not None and status == "interrupted":
                for rid in self.run_ids:
                    self.store.set_status(rid, "interrupted")
        results = []
        for i, rid in enumerate(self.run_ids):
            st = "diverged" if self.dead[i] else ("interrupted" if paused else "finished")
            if self.store is not None and st != "diverged":
                self.store.set_status(rid, st)
            prm = None
            if self.return_params:
                prm = {n: (p[i] if e.batched else p).detach().cpu().clone() for n, p in e.params.items()}
            results.append(RunResult(rid, st, dict(self.final[i]), e.step, e.cfgs[i].to_dict(), time.time() - t0, prm))
        return results


def _check_until(until: int | None) -> int | None:
    if until is None:
        return None
    if isinstance(until, bool) or not isinstance(until, int) or until < 1:
        raise ConfigError(f"until: must be an integer >= 1 (the step to pause at) or None, got {until!r}")
    return until


def _select_members(sd: dict, keep: list[int]) -> dict:
    """The state of a batched checkpoint restricted to members ``keep`` (every per-member tensor has the
    member dim first: parameters, optimizer moments, gradient-filter state, the alive mask)."""
    n = len(sd["configs"])
    idx = torch.as_tensor(keep, dtype=torch.long)

    def sel(v: Any) -> Any:
        if torch.is_tensor(v):
            return v[idx] if v.dim() >= 1 and v.shape[0] == n else v
        if isinstance(v, dict):
            return {k: sel(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(sel(x) for x in v)
        return v

    return {**sd, "params": sel(sd["params"]), "opt": sel(sd["opt"]), "filter": sel(sd["filter"]),
            "alive": sd["alive"][idx], "configs": [sd["configs"][i] for i in keep]}


def _store_config(cfg: TrainConfig, engine: _Engine) -> dict:
    d = cfg.to_dict()
    d["model_resolved"] = {"name": type(engine.model).__name__, **model_config(engine.model)}
    return d


def train(cfg: TrainConfig | dict, store=None, *, name: str | None = None, sweep: str | None = None,
          run_id: str | None = None, progress: bool = False, return_params: bool = False,
          until: int | None = None) -> RunResult:
    """Train one run (plain module, library optimizer); stream metrics into ``store`` if given.
    ``until=k``: pause at step k (checkpoint, status ``interrupted``; see the module docstring)."""
    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
    _check_until(until)
    engine = _Engine([cfg], batched=False)
    rid = None
    if store is not None:
        rid = store.create_run(name or f"{cfg.task}-s{cfg.seed}", task=cfg.task, config=cfg.to_dict(), sweep=sweep,
                               device=str(engine.device), run_id=run_id)
    return _Runner(engine, store, [rid], progress=progress, return_params=return_params, until=until).run()[0]


def train_batched(cfgs: Sequence[TrainConfig | dict], store=None, *, sweep: str | None = None,
                  names: Sequence[str] | None = None, progress: bool = False,
                  return_params: bool = False, until: int | None = None) -> list[RunResult]:
    """Train N members as one batched model; one store run per member (``until``: as in :func:`train`)."""
    cfgs = [c if isinstance(c, TrainConfig) else TrainConfig.from_dict(c) for c in cfgs]
    _check_until(until)
    _check_batchable(cfgs)
    engine = _Engine(cfgs, batched=True)
    rids: list[str | None] = [None] * len(cfgs)
    if store is not None:
        rids = [store.create_run((names[i] if names else None) or f"{c.task}-s{c.seed}-m{i}", task=c.task,
                                 config=c.to_dict(), sweep=sweep, device=str(engine.device))
                for i, c in enumerate(cfgs)]
    return _Runner(engine, store, rids, progress=progress, return_params=return_params, until=until).run()


def resume(run_id: str, store, *, progress: bool = False, return_params: bool = False,
           until: int | None = None) -> RunResult:
    """Continue a killed / interrupted run from its last checkpoint at the exact step (with the
    optimizer, filter, schedule position and RNG state). A member of a batched stack resumes the
    whole stack except members marked ``pruned`` (unless ``run_id`` is one); the result of ``run_id``
    is returned. ``until=k`` pauses again at step k."""
    _check_until(until)
    rec = store.get_run(run_id)
    cks = store.artifacts(run_id, kind="checkpoint")
    ck = None
    for _, row in cks.iloc[::-1].iterrows():
        if Path(row["path"]).exists():
            ck = row
            break
    stack = list(ck["meta"].get("members", [run_id])) if ck is not None else [run_id]
    members = [r for r in stack if r == run_id or store.get_run(r)["status"] != "pruned"]
    cfgs = [TrainConfig.from_dict({k: v for k, v in store.get_run(r)["config"].items()
                                   if k in {f.name for f in dataclasses.fields(TrainConfig)}}) for r in members]
    from workbench.safeio import load_checkpoint  # weights_only=True: a checkpoint never runs code

    batched = len(members) > 1 or (ck is not None and bool(load_checkpoint(ck["path"], "cpu").get("batched")))
    engine = _Engine(cfgs, batched=batched)
    if ck is not None:
        sd = load_checkpoint(ck["path"], engine.device)
        if len(members) < len(stack):
            sd = _select_members(sd, [stack.index(r) for r in members])
        engine.load_state_dict(sd)
    for r in members:
        if store.get_run(r)["status"] != "diverged":
            store.claim(r)
    # rows logged after the checkpoint are logged again by the resumed run: drop them, never duplicate
    store.delete_metrics(members, from_step=engine.step)
    del rec
    runner = _Runner(engine, store, members, progress=progress, return_params=return_params, until=until)
    runner.resumed_at = engine.step
    results = runner.run()
    return results[members.index(run_id)]


# ---------------------------------------------------------------------------------------------- CLI
_FLAGS = {  # --flag: (config path, type)
    "p": ("task_params.p", int), "op": ("task_params.op", str), "frac": ("task_params.frac", float),
    "n_bits": ("task_params.n_bits", int), "k": ("task_params.k", int), "n_train": ("task_params.n_train", int),
    "seq_len": ("task_params.seq_len", int),
    "model": ("model", str), "width": ("model_params.width", int), "depth": ("model_params.depth", int),
    "init_scale": ("model_params.init_scale", float),
    "optimizer": ("optimizer", str), "lr": ("lr", float), "wd": ("weight_decay", float),
    "weight_decay": ("weight_decay", float), "beta1": ("optimizer_params.betas.0", float),
    "beta2": ("optimizer_params.betas.1", float), "momentum": ("optimizer_params.momentum", float),
    "steps": ("steps", int), "batch_size": ("batch_size", int), "seed": ("seed", int),
    "data_seed": ("data_seed", int), "device": ("device", str), "dtype": ("dtype", str), "loss": ("loss", str),
    "loss_dtype": ("loss_dtype", str), "grad_clip": ("grad_clip", float), "log_every": ("log_every", int),
    "eval_every": ("eval_every", int), "checkpoint_every": ("checkpoint_every", int),
    "sharpness_every": ("sharpness_every", int), "progress_every": ("progress_every", int),
    "schedule": ("schedule.name", str), "warmup_steps": ("schedule.warmup_steps", int),
    "stop_at_test_acc": ("stop_at_test_acc", float),
}


# Settings of `workbench run grokking` (task modular): the default reaches >= 95 % test accuracy on a
# 2-core CPU in under 2 minutes (bench/grokking_repro.py d); "nanda" is the paper's (Nanda et al. 2023:
# p = 113, 30 % of pairs for training, one-layer transformer, AdamW 1e-3, wd 1, betas (0.9, 0.98), full batch).
GROKKING_PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {"task_params": {"p": 97, "frac": 0.5}, "model": "mlp", "model_params": {"hidden": [256]},
            "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1.0, "optimizer_params": {"betas": [0.9, 0.98]},
            "steps": 5000, "log_every": 50, "eval_every": 50, "stop_at_test_acc": 0.95},
    "nanda": {"task_params": {"p": 113, "frac": 0.3}, "model": "nanda", "optimizer": "adamw", "lr": 1e-3,
              "weight_decay": 1.0, "optimizer_params": {"betas": [0.9, 0.98]}, "steps": 15000,
              "log_every": 100, "eval_every": 100},
}
DEFAULT_GROKKING_PRESET = "cpu"


def _set_path(d: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def config_from_args(task: str | None, ns: argparse.Namespace, base: dict | None = None) -> TrainConfig:
    d = copy.deepcopy(base or {})
    if task:
        d["task"] = task
    d.setdefault("task", "modular")
    preset = getattr(ns, "preset", None)
    if preset is not None and d["task"] not in ("grokking", "modular"):
        raise ConfigError(f"--preset: only for the grokking (modular) task, got task {d['task']!r}")
    if d["task"] in ("grokking", "modular") and (preset or not base):  # flags and --config override it
        d = {**copy.deepcopy(GROKKING_PRESETS[preset or DEFAULT_GROKKING_PRESET]), **d}
    for flag, (path, _) in _FLAGS.items():
        v = getattr(ns, flag, None)
        if v is None:
            continue
        if path.startswith("optimizer_params.betas."):
            betas = list(d.setdefault("optimizer_params", {}).get("betas", (0.9, 0.999)))
            betas[int(path[-1])] = v
            d["optimizer_params"]["betas"] = betas
        else:
            _set_path(d, path, v)
    for flag in ("orthograd", "tf32", "compile"):
        if getattr(ns, flag, False):
            d[flag] = True
    if getattr(ns, "grokfast", None):
        d["grokfast"] = {"kind": ns.grokfast}
    return TrainConfig.from_dict(d)


def cli_main(argv: list[str]) -> int:
    """``workbench run TASK [--flags]``, ``workbench run --config cfg.yaml``, ``workbench run --resume ID``."""
    ap = argparse.ArgumentParser(prog="workbench run", description="Train one run (or N seeds batched).")
    ap.add_argument("task", nargs="?", help=f"task: one of {sorted(T.TASKS) + sorted(T.ALIASES)}")
    ap.add_argument("--config", help="YAML or JSON file with TrainConfig fields (flags override it)")
    ap.add_argument("--resume", metavar="RUN_ID", help="continue a killed run from its last checkpoint")
    ap.add_argument("--store", help="run store path (default: workbench.store.default_path())")
    ap.add_argument("--name", help="run name")
    ap.add_argument("--seeds", type=int, default=1, help="train this many seeds (seed, seed+1, ...) batched")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--preset", choices=sorted(GROKKING_PRESETS), default=None,
                    help=f"grokking settings (default {DEFAULT_GROKKING_PRESET!r}: >= 95 %% test accuracy in "
                         "< 2 min on a CPU; 'nanda': Nanda et al. 2023)")
    for flag, (_, typ) in _FLAGS.items():
        ap.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=typ, default=None)
    ap.add_argument("--orthograd", action="store_true")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--grokfast", choices=["ema", "ma"], default=None)
    ns = ap.parse_args(argv)
    from workbench.store import RunStore, default_path

    store = RunStore(ns.store or default_path())
    try:
        if ns.resume:
            r = resume(ns.resume, store, progress=not ns.no_progress)
            print(f"run {r.run_id}: {r.status} at step {r.step}: {_fmt(r.final)}")
            return 0 if r.status == "finished" else 1
        base = None
        if ns.config:
            text = Path(ns.config).read_text()
            if ns.config.endswith((".yaml", ".yml")):
                from workbench import yamlio

                base = yamlio.load(text) or {}
            else:
                import json

                base = json.loads(text)
        if not ns.task and base is None:
            ap.error("give a task (e.g. `workbench run grokking`) or --config FILE or --resume RUN_ID")
        cfg = config_from_args(ns.task, ns, base)
        if ns.seeds > 1:
            res = train_batched([cfg.replace(seed=cfg.seed + i) for i in range(ns.seeds)], store,
                                progress=not ns.no_progress)
        else:
            res = [train(cfg, store, name=ns.name, progress=not ns.no_progress)]
        for r in res:
            print(f"run {r.run_id}: {r.status} at step {r.step}: {_fmt(r.final)}")
        return 0 if all(r.status == "finished" for r in res) else 1
    except (ValueError, KeyError) as e:
        print(f"error: {e}")
        return 2
    finally:
        store.close()


def _fmt(d: dict) -> str:
    keys = ("train_loss", "train_acc", "test_loss", "test_acc")
    return ", ".join(f"{k}={d[k]:.4g}" for k in keys if k in d)


__all__ = ["TrainConfig", "RunResult", "ConfigError", "train", "train_batched", "resume", "cli_main",
           "batch_indices", "multipliers"]
