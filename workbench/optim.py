"""Optimizers by name, gradient tricks, and the batched optimizer for stacks of N runs.

Single runs use kept libraries directly: :func:`build_optimizer` maps a name to ``torch.optim``
(``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``, ``adamax``, ``nadam``, ``radam``, and ``muon``:
``torch.optim.Muon`` on 2-D hidden weights with AdamW on the rest, as Muon is meant to be used) or to
the PyPI ``pytorch-optimizer`` package (``lion``, ``adamp``, ``sgdp``, ``lamb``, ``diffgrad``,
``sgdsai``, ``apollo`` and any other name it knows, except the non-commercial ``fromage`` and
``nero``). ``orthograd=True`` wraps any of them in ``pytorch_optimizer.OrthoGrad`` (⊥Grad, Prieto et
al. 2025: g⊥ = g − (w·g / w·w) w per tensor, rescaled to ‖g‖). The Grokfast filters (Lee et al. 2024,
EMA: μ ← αμ + (1 − α)g, ĝ = g + λμ; MA over a window, λ = 5) are ``pytorch_optimizer.gradfilter_ema``
/ ``gradfilter_ma`` (:class:`GradFilter`).

Why :class:`BatchedOptimizer` is written here: a stack of N runs holds each parameter as one tensor
[N, ...] and every member has its own LR, weight decay and betas. ``torch.optim`` takes one scalar
hyperparameter per parameter group, so N members would need N groups over N views, i.e. N× the
kernel launches: the overhead that batching exists to remove. The elementwise optimizers (AdamW,
Adam, SGD with momentum / Nesterov, Lion) are therefore re-stated as tensor ops whose
hyperparameters are [N]-shaped tensors broadcast over the member dim, following the update rules
of ``torch.optim.AdamW/Adam/SGD`` (single-tensor path) and ``pytorch_optimizer.Lion`` line by line.
The non-elementwise parts offered in batched mode (⊥Grad projection, gradient-norm clipping) reduce
over every dim but the member dim. tests/test_optim.py proves each batched optimizer equals the
library optimizer run alone to 1e-5 relative over 100 steps. Optimizers whose update is not
elementwise (LAMB, Muon, AdamP, APOLLO, SGD-SaI, diffGrad...) are refused in batched mode with
:class:`BatchedUnsupportedError`: train them with ``train`` one run at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from workbench.errors import WorkbenchError

TORCH_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad",
                    "adamax": "Adamax", "nadam": "NAdam", "radam": "RAdam"}
PYTORCH_OPTIMIZER = {"lion": "Lion", "adamp": "AdamP", "sgdp": "SGDP", "lamb": "Lamb", "diffgrad": "DiffGrad",
                     "sgdsai": "SGDSaI", "apollo": "APOLLO"}
EXCLUDED = {"fromage", "nero"}   # non-commercial licences
BATCHED_OPTIMIZERS = ("adamw", "adam", "sgd", "lion")


class OptimizerError(WorkbenchError):
    """A bad optimizer name or setting."""


class BatchedUnsupportedError(OptimizerError):
    """An optimizer (or option) that has no per-member batched implementation."""


def available_optimizers() -> list[str]:
    return sorted({*TORCH_OPTIMIZERS, *PYTORCH_OPTIMIZER, "muon"})


def _is_embedding(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf in ("W_E", "W_U", "W_pos") or name.startswith(("tok.", "pos.", "head."))


class MuonWithAdamW(torch.optim.Optimizer):
    """``torch.optim.Muon`` for 2-D hidden weights and ``torch.optim.AdamW`` for everything else
    (embeddings, unembedding, biases, norms, >2-D tensors), stepped together."""

    def __init__(self, named_params: Sequence[tuple[str, torch.Tensor]], lr: float = 1e-3, weight_decay: float = 0.0,
                 momentum: float = 0.95, adamw_lr: float | None = None, betas: tuple[float, float] = (0.9, 0.95),
                 **muon_kw: Any) -> None:
        muon = [p for n, p in named_params if p.dim() == 2 and not _is_embedding(n)]
        rest = [p for n, p in named_params if not (p.dim() == 2 and not _is_embedding(n))]
        self.optimizers: list[torch.optim.Optimizer] = []
        if muon:
            self.optimizers.append(torch.optim.Muon(muon, lr=lr, weight_decay=weight_decay, momentum=momentum, **muon_kw))
        if rest:
            self.optimizers.append(torch.optim.AdamW(rest, lr=lr if adamw_lr is None else adamw_lr, betas=betas,
                                                     weight_decay=weight_decay))
        self._adamw_ratio = 1.0 if adamw_lr is None else adamw_lr / lr
        super().__init__([p for _, p in named_params], {"lr": lr})
        self.param_groups = [g for o in self.optimizers for g in o.param_groups]

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for o in self.optimizers:
            o.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state_dict: dict) -> None:
        for o, s in zip(self.optimizers, state_dict["optimizers"]):
            o.load_state_dict(s)


def build_optimizer(name: str, params: nn.Module | Iterable, *, lr: float = 1e-3, weight_decay: float = 0.0,
                    orthograd: bool = False, **kw: Any) -> torch.optim.Optimizer:
    """An optimizer by name over ``params`` (a module, or tensors / (name, tensor) pairs)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key in EXCLUDED:
        raise OptimizerError(f"optimizer: {name!r} is left out (non-commercial licence)")
    if isinstance(params, nn.Module):
        named = list(params.named_parameters())
    else:
        params = list(params)
        named = params if params and isinstance(params[0], tuple) else [(str(i), p) for i, p in enumerate(params)]
    tensors = [p for _, p in named]
    if "betas" in kw:
        kw["betas"] = tuple(kw["betas"])
    if key == "muon":
        opt: torch.optim.Optimizer = MuonWithAdamW(named, lr=lr, weight_decay=weight_decay, **kw)
    elif key in TORCH_OPTIMIZERS:
        opt = getattr(torch.optim, TORCH_OPTIMIZERS[key])(tensors, lr=lr, weight_decay=weight_decay, **kw)
    else:
        import pytorch_optimizer

        if key in PYTORCH_OPTIMIZER:
            cls = getattr(pytorch_optimizer, PYTORCH_OPTIMIZER[key])
        else:
            try:
                cls = pytorch_optimizer.load_optimizer(key)
            except Exception:
                raise OptimizerError(f"optimizer: unknown name {name!r}; known: {available_optimizers()} "
                                     "and the other names of pytorch_optimizer.get_supported_optimizers()") from None
        opt = cls(tensors, lr=lr, weight_decay=weight_decay, **kw)
    if orthograd:
        from pytorch_optimizer import OrthoGrad

        opt = OrthoGrad(opt)
    return opt


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set the LR of every parameter group (for Muon+AdamW, AdamW keeps its LR ratio)."""
    if isinstance(opt, MuonWithAdamW):
        for o in opt.optimizers:
            ratio = opt._adamw_ratio if isinstance(o, torch.optim.AdamW) else 1.0
            for g in o.param_groups:
                g["lr"] = lr * ratio
        return
    for g in opt.param_groups:
        g["lr"] = lr


class _Named:
    """Duck-typed stand-in for a module, so the Grokfast filters run over stacked parameters."""

    def __init__(self, named: Sequence[tuple[str, torch.Tensor]]) -> None:
        self._named = list(named)

    def named_parameters(self):
        return iter(self._named)


class GradFilter:
    """Grokfast gradient filter (Lee et al. 2024) over a model's gradients, via
    ``pytorch_optimizer.gradfilter_ema`` / ``gradfilter_ma``. Both are elementwise in the
    gradient history, so over stacked [N, ...] parameters they act per member unchanged."""

    KINDS = ("ema", "ma")

    def __init__(self, kind: str = "ema", alpha: float = 0.98, lamb: float = 2.0, window_size: int = 100,
                 warmup: bool = True) -> None:
        if kind not in self.KINDS:
            raise OptimizerError(f"grokfast.kind: must be one of {self.KINDS}, got {kind!r}")
        if not 0.0 <= alpha < 1.0:
            raise OptimizerError(f"grokfast.alpha: must be in [0, 1), got {alpha!r}")
        if kind == "ma" and (not isinstance(window_size, int) or window_size < 1):
            raise OptimizerError(f"grokfast.window_size: must be an integer >= 1, got {window_size!r}")
        self.kind, self.alpha, self.lamb, self.window_size, self.warmup = kind, alpha, lamb, window_size, warmup
        self.grads: dict | None = None

    @classmethod
    def from_spec(cls, spec: dict | None) -> GradFilter | None:
        if not spec:
            return None
        spec = dict(spec)
        if "lambda" in spec:
            spec["lamb"] = spec.pop("lambda")
        allowed = {"kind", "alpha", "lamb", "window_size", "warmup"}
        bad = sorted(set(spec) - allowed)
        if bad:
            raise OptimizerError(f"grokfast: unknown key {bad[0]!r}; allowed: {sorted(allowed)}")
        return cls(**spec)

    def __call__(self, model: nn.Module | Sequence[tuple[str, torch.Tensor]]) -> None:
        from pytorch_optimizer.optimizer.grokfast import gradfilter_ema, gradfilter_ma

        m = model if isinstance(model, nn.Module) else _Named(model)
        if self.kind == "ema":
            self.grads = gradfilter_ema(m, self.grads, alpha=self.alpha, lamb=self.lamb)
        else:
            self.grads = gradfilter_ma(m, self.grads, window_size=self.window_size, lamb=self.lamb,
                                       warmup=self.warmup)

    def state_dict(self) -> dict:
        if self.grads is None:
            return {}
        if self.kind == "ema":
            return {"grads": dict(self.grads)}
        return {"grads": {k: list(v) for k, v in self.grads.items()}}

    def load_state_dict(self, state: dict) -> None:
        from collections import deque

        g = state.get("grads")
        if not g:
            self.grads = None
        elif self.kind == "ema":
            self.grads = dict(g)
        else:
            self.grads = {k: deque(v, maxlen=self.window_size) for k, v in g.items()}


# ---------------------------------------------------------------------------------------------- batched
def _b(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[N] -> [N, 1, 1, ...] broadcastable against ``like``."""
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def member_sq_norm(t: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm of each member of a stacked tensor [N, ...] -> [N]."""
    return t.reshape(t.shape[0], -1).pow(2).sum(1)


def orthogonalize_(params: Sequence[torch.Tensor], eps: float = 1e-30) -> None:
    """⊥Grad per member and per tensor on stacked parameters (same arithmetic as
    ``pytorch_optimizer``'s ``apply_orthogonal_gradients``, reduced over all dims but dim 0)."""
    for p in params:
        if p.grad is None:
            continue
        w = p.reshape(p.shape[0], -1)
        g = p.grad.reshape(p.shape[0], -1)
        proj = (w * g).sum(1, keepdim=True) / ((w * w).sum(1, keepdim=True) + eps)
        go = g - w * proj
        gn = g.norm(dim=1, keepdim=True)
        gon = go.norm(dim=1, keepdim=True)
        tiny = gon <= 4.0 * torch.finfo(g.dtype).eps * gn
        go = torch.where(tiny, torch.zeros_like(go), go * (gn / (gon + eps)))
        p.grad.copy_(go.view_as(p.grad))


def clip_grad_norm_per_member_(params: Sequence[torch.Tensor], max_norm: torch.Tensor) -> torch.Tensor:
    """Clip each member's total gradient norm to ``max_norm`` [N] (as ``clip_grad_norm_``); returns
    the norms before clipping [N]."""
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.stack([member_sq_norm(g) for g in grads]).sum(0).sqrt()
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(_b(coef, g))
    return total


class BatchedOptimizer:
    """AdamW / Adam / SGD / Lion over stacked parameters [N, ...] with per-member hyperparameters.

    ``hp`` maps a hyperparameter name to a per-member tensor [N] (``weight_decay``, ``beta1``,
    ``beta2``, ``eps``, ``momentum``, ``dampening``); ``step(lr, alive)`` takes the per-member LR [N]
    of this step and the alive mask [N] (frozen members: gradient zeroed and LR 0, so they keep
    their parameters exactly).
    """

    def __init__(self, name: str, params: Sequence[torch.Tensor], hp: dict[str, torch.Tensor],
                 nesterov: bool = False) -> None:
        if name not in BATCHED_OPTIMIZERS:
            raise BatchedUnsupportedError(
                f"optimizer: {name!r} has no per-member batched implementation; batched mode supports "
                f"{BATCHED_OPTIMIZERS}. Train {name!r} runs one at a time with train().")
        self.name, self.params, self.hp, self.nesterov = name, list(params), hp, nesterov
        self.step_count = 0
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]

    @torch.no_grad()
    def step(self, lr: torch.Tensor, alive: torch.Tensor | None = None) -> None:
        self.step_count += 1
        t = self.step_count
        if alive is not None:
            lr = torch.where(alive, lr, torch.zeros_like(lr))
        for p, st in zip(self.params, self.state):
            g = p.grad
            if g is None:
                continue
            if alive is not None:
                g = torch.where(_b(alive, g), g, torch.zeros_like(g))
            getattr(self, "_" + self.name)(p, g, st, lr, t)

    def _adamw(self, p, g, st, lr, t, decoupled: bool = True) -> None:
        hp = self.hp
        wd, b1, b2, eps = (_b(hp[k], p) for k in ("weight_decay", "beta1", "beta2", "eps"))
        lr_b = _b(lr, p)
        if decoupled:
            p.mul_(1 - lr_b * wd)
        else:
            g = g + wd * p
        if not st:
            st["exp_avg"] = torch.zeros_like(p)
            st["exp_avg_sq"] = torch.zeros_like(p)
        m, v = st["exp_avg"], st["exp_avg_sq"]
        m.lerp_(g, (1 - b1).expand_as(m))
        v.mul_(b2).addcmul_(g, g * (1 - b2))
        bc1 = (1 - b1.double() ** t).to(p.dtype)      # bias corrections in float64, as torch does
        bc2_sqrt = (1 - b2.double() ** t).sqrt().to(p.dtype)
        denom = (v.sqrt() / bc2_sqrt).add_(eps)
        p.sub_((lr_b / bc1) * (m / denom))

    def _adam(self, p, g, st, lr, t) -> None:
        self._adamw(p, g, st, lr, t, decoupled=False)

    def _sgd(self, p, g, st, lr, t) -> None:
        hp = self.hp
        wd, mom, damp = (_b(hp[k], p) for k in ("weight_decay", "momentum", "dampening"))
        g = g + wd * p
        if "momentum_buffer" not in st:
            buf = st["momentum_buffer"] = g.clone()
        else:
            buf = st["momentum_buffer"]
            buf.mul_(mom).add_(g * (1 - damp))
        d = g + mom * buf if self.nesterov else buf
        # members with momentum 0 use the plain gradient (as torch.optim.SGD with momentum=0)
        d = torch.where(mom == 0, g, d)
        p.sub_(_b(lr, p) * d)

    def _lion(self, p, g, st, lr, t) -> None:
        hp = self.hp
        wd, b1, b2 = (_b(hp[k], p) for k in ("weight_decay", "beta1", "beta2"))
        lr_b = _b(lr, p)
        p.mul_(1 - wd * lr_b)
        if not st:
            st["exp_avg"] = torch.zeros_like(p)
        m = st["exp_avg"]
        update = m.lerp(g, (1 - b1).expand_as(m)).sign_()
        m.lerp_(g, (1 - b2).expand_as(m))
        p.sub_(lr_b * update)

    def state_dict(self) -> dict:
        return {"name": self.name, "step": self.step_count, "state": [dict(s) for s in self.state]}

    def load_state_dict(self, sd: dict) -> None:
        if sd["name"] != self.name:
            raise OptimizerError(f"optimizer: checkpoint holds {sd['name']!r}, not {self.name!r}")
        self.step_count = int(sd["step"])
        self.state = [{k: v.to(p.device) for k, v in s.items()} for s, p in zip(sd["state"], self.params)]


def batched_hparams(name: str, members: Sequence[dict], device: torch.device) -> tuple[dict[str, torch.Tensor], bool]:
    """Per-member hyperparameter tensors [N] from each member's (weight_decay + optimizer_params),
    with the defaults of the library optimizer of that name. Returns (hp, nesterov)."""
    if name not in BATCHED_OPTIMIZERS:
        raise BatchedUnsupportedError(
            f"optimizer: {name!r} has no per-member batched implementation; batched mode supports "
            f"{BATCHED_OPTIMIZERS}. Train {name!r} runs one at a time with train().")
    defaults = {"adamw": {"betas": (0.9, 0.999), "eps": 1e-8}, "adam": {"betas": (0.9, 0.999), "eps": 1e-8},
                "sgd": {"momentum": 0.0, "dampening": 0.0, "nesterov": False},
                "lion": {"betas": (0.9, 0.99)}}[name]
    allowed = set(defaults) | {"weight_decay"}
    rows: dict[str, list[float]] = {}
    nest = set()
    for m in members:
        bad = sorted(set(m) - allowed)
        if bad:
            raise BatchedUnsupportedError(f"optimizer_params: {bad[0]!r} is not supported for {name!r} in batched "
                                          f"mode; allowed: {sorted(allowed)}")
        cfg = {**defaults, **m}
        if "betas" in cfg:
            b1, b2 = cfg["betas"]
            rows.setdefault("beta1", []).append(float(b1))
            rows.setdefault("beta2", []).append(float(b2))
        for k in ("eps", "momentum", "dampening", "weight_decay"):
            if k in cfg:
                rows.setdefault(k, []).append(float(cfg[k]))
        if "nesterov" in cfg:
            nest.add(bool(cfg["nesterov"]))
    if len(nest) > 1:
        raise BatchedUnsupportedError("optimizer_params.nesterov: must be the same for every member of a batch")
    hp = {k: torch.tensor(v, dtype=torch.float32, device=device) for k, v in rows.items()}
    return hp, bool(nest and nest.pop())
