"""Backends: the model + optimizer of N members behind one small protocol, so the loop has one path.

* ``forward(x, y, xdim)`` -> logits [N, ...], per-sample loss [N, ...], mean loss [N]
* ``step(lr[N], alive[N])``: gradient filter / clipping, the optimizer update, gradients cleared
* ``params()`` / ``grads()``: lists of [N, ...] tensors (in ``names`` order), for the measures
* ``leaves``, ``member_dim``: the tensors to differentiate for sharpness and whether they carry the member dim
* ``evaluating()``: a context for measuring (schedule-free optimizers swap in their averaged weights)
* ``state_dict()`` / ``load_state_dict()``: parameters, buffers, optimizer and filter state

:class:`ModuleBackend` is one plain ``nn.Module`` (N = 1) with any optimizer of
:func:`workbench.optim.build_optimizer`. :class:`StackBackend` follows torch.func's model-ensembling
recipe: N copies of the module, their parameters **and buffers** stacked [N, ...]
(``torch.func.stack_module_state``), the forward ``torch.func.vmap`` over ``functional_call`` (members
never interact: the loss is the sum of the members' losses, each member's gradient its own) and the
update :class:`workbench.optim.BatchedOptimizer` with per-member hyperparameters as [N] tensors.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from workbench import losses as L
from workbench.device import autocast
from workbench.optim import (
    BatchedOptimizer,
    GradFilter,
    batched_hparams,
    build_optimizer,
    clip_grad_norm_per_member_,
    orthogonalize_,
    set_lr,
)
from workbench.train.config import TrainConfig


class Backend(Protocol):
    N: int
    names: list[str]
    model: nn.Module
    member_dim: bool
    lr_device: torch.device
    lr_dtype: torch.dtype

    def forward(self, x: torch.Tensor, y: torch.Tensor, xdim: int | None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
    def logits(self, x: torch.Tensor) -> torch.Tensor: ...
    def step(self, lr: torch.Tensor, alive: torch.Tensor) -> None: ...
    def params(self) -> list[torch.Tensor]: ...
    def grads(self) -> list[torch.Tensor]: ...
    @property
    def leaves(self) -> list[torch.Tensor]: ...
    def evaluating(self) -> contextlib.AbstractContextManager: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, sd: dict) -> None: ...


def _losses(cfg: TrainConfig, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return L.per_sample_loss(cfg.loss, logits, y, cfg.loss_dtype)


def _mean(ps: torch.Tensor) -> torch.Tensor:
    return ps.reshape(ps.shape[0], -1).mean(1)


def _filter_state(f: GradFilter | None, sd: dict | None, device: torch.device) -> None:
    if f is None or not sd:
        return
    f.load_state_dict({"grads": {k: (v.to(device) if torch.is_tensor(v) else [t.to(device) for t in v])
                                 for k, v in sd["grads"].items()}})


class ModuleBackend:
    """One run: a plain module and a library optimizer (any name :func:`build_optimizer` knows)."""

    member_dim = False
    lr_dtype = torch.float64                     # the LR is handed to the optimizer as a host float

    def __init__(self, cfg: TrainConfig, model: nn.Module, device: torch.device) -> None:
        self.cfg, self.model, self.device, self.N = cfg, model, device, 1
        self.names = [n for n, _ in model.named_parameters()]
        self.lr_device = torch.device("cpu")
        if cfg.schedule_free:       # the schedulefree package's optimizer (its own warmup; train / eval modes)
            from workbench.schedules.adaptive import schedule_free_optimizer

            spec = {**cfg.schedule, "optimizer": cfg.optimizer.lower(), "total_steps": cfg.steps}
            self.opt = schedule_free_optimizer(model.parameters(), cfg.lr, spec, weight_decay=cfg.weight_decay,
                                               **cfg.optimizer_params)
        else:
            self.opt = build_optimizer(cfg.optimizer, model, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                       orthograd=cfg.orthograd, **cfg.optimizer_params)
        self.filter = GradFilter.from_spec(cfg.grokfast)
        self._call = torch.compile(model) if cfg.compile and device.type == "cuda" else model

    def forward(self, x, y, xdim=None):
        if xdim == 0:                              # [1, B, ...]: this run's own batch
            x, y = x[0], y[0]
        with autocast(self.device, self.cfg.dtype):
            logits = self._call(x)
            ps = _losses(self.cfg, logits, y)
        logits, ps = logits.unsqueeze(0), ps.unsqueeze(0)
        return logits, ps, _mean(ps)

    def logits(self, x):
        return self.model(x).unsqueeze(0)

    def step(self, lr, alive):
        if self.filter is not None:
            self.filter(self.model)
        if self.cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        set_lr(self.opt, float(lr[0]))
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def params(self):
        return [p.unsqueeze(0) for p in self.model.parameters()]

    def grads(self):
        return [(p.grad if p.grad is not None else torch.zeros_like(p)).unsqueeze(0) for p in self.model.parameters()]

    @property
    def leaves(self):
        return list(self.model.parameters())

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        swap = hasattr(self.opt, "eval") and hasattr(self.opt, "train")    # schedule-free: averaged weights
        if swap:
            self.opt.eval()
        try:
            yield
        finally:
            if swap:
                self.opt.train()

    def state_dict(self):
        return {"params": {n: p.detach().clone() for n, p in self.model.named_parameters()},
                "buffers": {n: b.detach().clone() for n, b in self.model.named_buffers()},
                "opt": self.opt.state_dict(),
                "filter": self.filter.state_dict() if self.filter is not None else None}

    def load_state_dict(self, sd):
        with torch.no_grad():
            for n, p in self.model.named_parameters():
                p.copy_(sd["params"][n].to(self.device))
            for n, b in self.model.named_buffers():
                if n in sd.get("buffers", {}):
                    b.copy_(sd["buffers"][n].to(self.device))
        self.opt.load_state_dict(sd["opt"])
        _filter_state(self.filter, sd.get("filter"), self.device)


class StackBackend:
    """N members as one stacked model under ``torch.func.vmap`` (parameters and buffers [N, ...])."""

    member_dim = True
    lr_dtype = torch.float32

    def __init__(self, cfgs: Sequence[TrainConfig], models: Sequence[nn.Module], device: torch.device) -> None:
        self.cfgs, self.cfg, self.device, self.N = list(cfgs), cfgs[0], device, len(cfgs)
        self.model = models[0]
        self.names = [n for n, _ in self.model.named_parameters()]
        self.lr_device = device
        params, buffers = torch.func.stack_module_state(list(models))
        self.p = {n: params[n].detach().clone().requires_grad_(True) for n in self.names}
        self.b = {n: t.detach().clone() for n, t in buffers.items()}
        self.base = copy.deepcopy(self.model).to("meta")
        c = self.cfg
        hp, nesterov = batched_hparams(c.optimizer.lower(), [{**m.optimizer_params, "weight_decay": m.weight_decay}
                                                             for m in self.cfgs], device)
        self.opt = BatchedOptimizer(c.optimizer.lower(), list(self.p.values()), hp, nesterov)
        self.clip = (torch.tensor([m.grad_clip or math.inf for m in self.cfgs], device=device)
                     if any(m.grad_clip for m in self.cfgs) else None)
        self.filter = GradFilter.from_spec(c.grokfast)
        fwd = self._forward
        self._fwd = torch.compile(fwd) if c.compile and device.type == "cuda" else fwd

    def _member(self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor):
        logits = torch.func.functional_call(self.base, (params, buffers), (x,))
        return logits, _losses(self.cfg, logits, y)

    def _forward(self, x, y, xdim):
        with autocast(self.device, self.cfg.dtype):
            logits, ps = torch.func.vmap(self._member, in_dims=(0, 0, xdim, xdim))(self.p, self.b, x, y)
        return logits, ps, _mean(ps)

    def forward(self, x, y, xdim=None):
        return self._fwd(x, y, xdim)

    def logits(self, x):
        call = lambda p, b, xx: torch.func.functional_call(self.base, (p, b), (xx,))  # noqa: E731
        return torch.func.vmap(call, in_dims=(0, 0, None))(self.p, self.b, x)

    def step(self, lr, alive):
        if self.filter is not None:
            self.filter([(n, self.p[n]) for n in self.names])
        if self.clip is not None:
            clip_grad_norm_per_member_(list(self.p.values()), self.clip)
        if self.cfg.orthograd:
            orthogonalize_(list(self.p.values()))
        self.opt.step(lr, alive)
        for p in self.p.values():
            p.grad = None

    def params(self):
        return [self.p[n] for n in self.names]

    def grads(self):
        return [self.p[n].grad if self.p[n].grad is not None else torch.zeros_like(self.p[n]) for n in self.names]

    @property
    def leaves(self):
        return self.params()

    def evaluating(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def state_dict(self):
        return {"params": {n: p.detach().clone() for n, p in self.p.items()},
                "buffers": {n: b.clone() for n, b in self.b.items()},
                "opt": self.opt.state_dict(),
                "filter": self.filter.state_dict() if self.filter is not None else None}

    def load_state_dict(self, sd):
        with torch.no_grad():
            for n, p in self.p.items():
                p.copy_(sd["params"][n].to(self.device))
            for n, b in self.b.items():
                if n in sd.get("buffers", {}):
                    b.copy_(sd["buffers"][n].to(self.device))
        self.opt.load_state_dict(sd["opt"])
        _filter_state(self.filter, sd.get("filter"), self.device)


def make_backend(cfgs: Sequence[TrainConfig], models: Sequence[nn.Module], device: torch.device,
                 stacked: bool) -> Any:
    return StackBackend(cfgs, models, device) if stacked else ModuleBackend(cfgs[0], models[0], device)
