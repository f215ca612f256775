"""Models, each a plain ``nn.Module`` with a dataclass config, written with ops that batch under
``torch.func.vmap`` (so N copies train as one stacked model, see :mod:`workbench.batched`).

* :class:`NandaTransformer` — Nanda et al. 2023 ("Progress measures for grokking via mechanistic
  interpretability"): one layer, d_model 128, 4 heads x 32, d_mlp 512, ReLU, learned positional
  embeddings, no LayerNorm, untied embed / unembed, logits read at the last ("=") position. Initial
  weights as in their code (normal / sqrt(fan-in)).
* :class:`MLP` — plain MLP; ``embed="twohot"`` gives Prieto et al. 2025's input (one-hot of a and of b
  concatenated: 2p inputs), ``bias=False`` and ``init_scale`` (Omnigrok, Liu et al. 2023: x8).
  ``layernorm=True`` puts a LayerNorm without affine after each hidden linear, which makes those
  weights scale-invariant (reported by the effective-LR metric).
* :class:`GPT` — a small pre-LayerNorm decoder (nanoGPT layout) for the character LM task; a family
  of sizes by ``width`` x ``depth`` (:func:`gpt_family`).

Random initialisation: every model here takes ``generator`` (a ``torch.Generator``) and draws its initial
weights from it alone, never from torch's global RNG, so a run owns its randomness (the training engine
gives each member a generator seeded with its ``seed``). The torch layers (Linear, Embedding, LayerNorm) are
created on the ``meta`` device and initialised by :func:`_init_layers` with torch's default rules, in
creation order: the weights equal those of ``torch.manual_seed(seed)`` followed by the plain constructor.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import WorkbenchError


class ModelError(WorkbenchError):
    """A bad model configuration: names the field and the allowed range."""


def _layers(generator: torch.Generator | None) -> contextlib.AbstractContextManager:
    """Where torch layers are created: on ``meta`` (no random draw) when a generator will initialise them."""
    return torch.device("meta") if generator is not None else contextlib.nullcontext()


def _init_layers(module: nn.Module, generator: torch.Generator | None) -> None:
    """Materialise layers created under :func:`_layers` on the CPU and give them torch's default initial
    values (``reset_parameters`` of Linear, Embedding, LayerNorm), drawn from ``generator`` in creation order."""
    if generator is None:
        return
    module.to_empty(device="cpu")
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    fan_in = m.weight.shape[1]
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, generator=generator)
            elif isinstance(m, nn.LayerNorm):
                m.reset_parameters()
            elif type(m) not in (nn.ModuleList, type(module)) and any(True for _ in m.parameters(recurse=False)):
                raise ModelError(f"model: layer {type(m).__name__} has no generator-driven initialisation")


def _positive(name: str, v: int) -> None:
    if not isinstance(v, int) or v < 1:
        raise ModelError(f"{name}: must be an integer >= 1, got {v!r}")


@dataclass
class NandaConfig:
    vocab: int = 114
    n_out: int = 113
    n_ctx: int = 3
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512


class NandaTransformer(nn.Module):
    def __init__(self, cfg: NandaConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        for f in fields(cfg):
            _positive(f.name, getattr(cfg, f.name))
        self.cfg = cfg
        d, h, dh = cfg.d_model, cfg.n_heads, cfg.d_head
        def r(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator)

        self.W_E = nn.Parameter(r(cfg.vocab, d) / math.sqrt(d))
        self.W_pos = nn.Parameter(r(cfg.n_ctx, d) / math.sqrt(d))
        self.W_Q = nn.Parameter(r(h, d, dh) / math.sqrt(d))
        self.W_K = nn.Parameter(r(h, d, dh) / math.sqrt(d))
        self.W_V = nn.Parameter(r(h, d, dh) / math.sqrt(d))
        self.W_O = nn.Parameter(r(h, dh, d) / math.sqrt(d))
        self.W_in = nn.Parameter(r(d, cfg.d_mlp) / math.sqrt(d))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(r(cfg.d_mlp, d) / math.sqrt(cfg.d_mlp))
        self.b_out = nn.Parameter(torch.zeros(d))
        self.W_U = nn.Parameter(r(d, cfg.n_out) / math.sqrt(cfg.n_out))
        self.scale_invariant: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[-1]
        h = F.embedding(x, self.W_E) + self.W_pos[:T]                     # [B, T, d]
        q = torch.einsum("btd,hde->bhte", h, self.W_Q)
        k = torch.einsum("btd,hde->bhte", h, self.W_K)
        v = torch.einsum("btd,hde->bhte", h, self.W_V)
        att = torch.einsum("bhqe,bhke->bhqk", q, k) / math.sqrt(self.cfg.d_head)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        z = torch.einsum("bhqk,bhke->bhqe", att, v)
        h = h + torch.einsum("bhte,hed->btd", z, self.W_O)
        h = h + F.relu(h @ self.W_in + self.b_in) @ self.W_out + self.b_out
        return h[..., -1, :] @ self.W_U                                   # logits at "="


@dataclass
class MLPConfig:
    d_in: int = 64
    hidden: list[int] = field(default_factory=lambda: [200, 200])
    d_out: int = 10
    bias: bool = True
    init_scale: float = 1.0
    embed: str = "dense"          # "dense" (float input) or "twohot" (integer tokens a, b)
    vocab: int = 0                # tokens per position for "twohot"
    layernorm: bool = False


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if cfg.embed not in ("dense", "twohot"):
            raise ModelError(f"embed: must be 'dense' or 'twohot', got {cfg.embed!r}")
        if cfg.embed == "twohot":
            _positive("vocab", cfg.vocab)
        _positive("d_in", cfg.d_in)
        _positive("d_out", cfg.d_out)
        for w in cfg.hidden:
            _positive("hidden", w)
        if not cfg.init_scale > 0:
            raise ModelError(f"init_scale: must be > 0, got {cfg.init_scale!r}")
        self.cfg = cfg
        dims = [cfg.d_in, *cfg.hidden, cfg.d_out]
        with _layers(generator):
            self.layers = nn.ModuleList(nn.Linear(a, b, bias=cfg.bias) for a, b in zip(dims[:-1], dims[1:]))
        _init_layers(self, generator)
        with torch.no_grad():
            for lin in self.layers:
                lin.weight.mul_(cfg.init_scale)
                if lin.bias is not None:
                    lin.bias.mul_(cfg.init_scale)
        n_hidden = len(cfg.hidden)
        self.scale_invariant = [f"layers.{i}.weight" for i in range(n_hidden)] if cfg.layernorm and not cfg.bias else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.embed == "twohot":
            x = F.one_hot(x[..., :2], self.cfg.vocab).flatten(-2).float()
        for i, lin in enumerate(self.layers):
            x = lin(x)
            if i < len(self.layers) - 1:
                if self.cfg.layernorm:
                    x = F.layer_norm(x, x.shape[-1:])
                x = F.relu(x)
        return x


@dataclass
class GPTConfig:
    vocab: int = 96
    n_ctx: int = 64
    width: int = 128
    depth: int = 2
    n_heads: int = 4


class _Block(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.out = nn.Linear(4 * d, d)
        self.h = h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape[-3:]
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        shape = (*x.shape[:-1], self.h, d // self.h)
        q, k, v = (t.reshape(shape).transpose(-2, -3) for t in (q, k, v))   # [B, h, T, dh]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.h)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(-2, -3).reshape(x.shape)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        for f in fields(cfg):
            _positive(f.name, getattr(cfg, f.name))
        if cfg.width % cfg.n_heads:
            raise ModelError(f"width: must be a multiple of n_heads={cfg.n_heads}, got {cfg.width}")
        self.cfg = cfg
        with _layers(generator):
            self.tok = nn.Embedding(cfg.vocab, cfg.width)
            self.pos = nn.Embedding(cfg.n_ctx, cfg.width)
            self.blocks = nn.ModuleList(_Block(cfg.width, cfg.n_heads) for _ in range(cfg.depth))
            self.ln_f = nn.LayerNorm(cfg.width)
            self.head = nn.Linear(cfg.width, cfg.vocab, bias=False)
        _init_layers(self, generator)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * cfg.depth) if name.endswith(("proj.weight", "out.weight")) else 0.02
                with torch.no_grad():
                    nn.init.normal_(p, 0.0, std, generator=generator)
        self.scale_invariant: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[-1]
        h = self.tok(x) + self.pos.weight[:T]
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln_f(h))

    def n_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - (self.tok.weight.numel() + self.pos.weight.numel() if non_embedding else 0)


def gpt_family(widths: list[int], depths: list[int], n_heads: int = 4) -> list[dict]:
    """Model-parameter dicts for a width x depth grid of GPTs (for Chinchilla-style grids)."""
    return [{"width": w, "depth": d, "n_heads": n_heads} for w in widths for d in depths]


MODELS = {"nanda": (NandaTransformer, NandaConfig), "mlp": (MLP, MLPConfig), "gpt": (GPT, GPTConfig)}
# models whose constructor takes ``generator=`` and draws only from it (a model class registered in MODELS
# by a user may not: it is built with torch's global RNG seeded from the generator, then restored)
TAKES_GENERATOR = {NandaTransformer, MLP, GPT}
DEFAULT_MODEL = {"modular": "nanda", "parity": "mlp", "digits": "mlp", "lm": "gpt"}


def build_model(name: str, params: dict | None, ds, *, generator: torch.Generator | None = None) -> nn.Module:
    """A model by name (``nanda``, ``mlp``, ``gpt``; ``auto`` = the task's default) with sizes that
    the task fixes (vocabulary, inputs, classes) filled in from the dataset. ``generator``: draw the initial
    weights from it (the same weights as ``torch.manual_seed(seed)`` before a build without one), leaving
    torch's global RNG untouched; without it the global RNG is used."""
    if name == "auto":
        name = DEFAULT_MODEL[ds.name]
    if name not in MODELS:
        raise ModelError(f"model: must be one of {sorted(MODELS) + ['auto']}, got {name!r}")
    cls, cfg_cls = MODELS[name]
    params = dict(params or {})
    allowed = {f.name for f in fields(cfg_cls)}
    bad = sorted(set(params) - allowed)
    if bad:
        raise ModelError(f"model_params: unknown parameter {bad[0]!r} for model {name!r}; allowed: {sorted(allowed)}")
    if name == "nanda":
        if ds.kind != "classification" or ds.vocab_size is None:
            raise ModelError(f"model: 'nanda' needs a token task such as modular, got task {ds.name!r}")
        params.setdefault("vocab", ds.vocab_size)
        params.setdefault("n_out", ds.n_classes)
        params.setdefault("n_ctx", ds.input_shape[0])
    elif name == "mlp":
        if ds.kind == "lm":
            raise ModelError("model: 'mlp' cannot model the lm task; use 'gpt'")
        if ds.vocab_size is not None:   # token input: two-hot of (a, b)
            params.setdefault("embed", "twohot")
            params.setdefault("vocab", ds.vocab_size - 1)
            params.setdefault("d_in", 2 * (ds.vocab_size - 1))
        else:
            params.setdefault("d_in", ds.input_shape[0])
        params.setdefault("d_out", ds.n_classes)
    elif name == "gpt":
        if ds.kind != "lm":
            raise ModelError(f"model: 'gpt' needs the lm task, got task {ds.name!r}")
        params.setdefault("vocab", ds.vocab_size)
        params.setdefault("n_ctx", ds.seq_len)
    cfg = cfg_cls(**params)
    if generator is None:
        return cls(cfg)
    if cls in TAKES_GENERATOR:
        return cls(cfg, generator=generator)
    # a user's model class draws from the global RNG in its constructor: seed it from the generator for the
    # construction only and give the caller's state back
    state = torch.get_rng_state()
    try:
        torch.manual_seed(generator.initial_seed())
        return cls(cfg)
    finally:
        torch.set_rng_state(state)


def model_config(model: nn.Module) -> dict:
    return asdict(model.cfg)
