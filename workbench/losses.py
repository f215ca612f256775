"""Losses, returned per sample (so the collapse metrics can look at each one).

* :func:`cross_entropy` — softmax cross-entropy computed in a chosen precision (float32 / float64).
  In float32 it exhibits Softmax Collapse (Prieto et al. 2025, "Grokking at the edge of numerical
  stability"): once a logit dominates, exp(x - max) of the others underflows, the loss is exactly 0
  and its gradient vanishes.
* :func:`stablemax` / :func:`stablemax_cross_entropy` — Prieto et al. 2025, eq. (StableMax):
  s(x) = x + 1 for x >= 0 and 1 / (1 - x) for x < 0; StableMax_i = s(x_i) / sum_j s(x_j); the loss is
  -log StableMax_y. Logits [1, 0, -1] -> [0.5714, 0.2857, 0.1429].
* :func:`mse` — squared error against one-hot targets (Omnigrok, Liu et al. 2023), mean over classes.

⊥Grad and the Grokfast filters act on gradients, not on the loss: see :mod:`workbench.optim`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.errors import WorkbenchError

LOSSES = ("ce", "stablemax", "mse")
LOSS_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class LossError(WorkbenchError):
    """A bad loss configuration."""


def _dtype(name: str) -> torch.dtype:
    if name not in LOSS_DTYPES:
        raise LossError(f"loss_dtype: must be one of {sorted(LOSS_DTYPES)}, got {name!r}")
    return LOSS_DTYPES[name]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, dtype: str = "float32") -> torch.Tensor:
    """Per-sample softmax cross-entropy over the last dim, computed in ``dtype``."""
    z = logits.to(_dtype(dtype))
    return -z.log_softmax(-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)


def _s(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))


def stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """StableMax probabilities (Prieto et al. 2025)."""
    s = _s(logits)
    return s / s.sum(dim, keepdim=True)


def stablemax_cross_entropy(logits: torch.Tensor, y: torch.Tensor, dtype: str = "float64") -> torch.Tensor:
    """Per-sample -log StableMax_y, computed in ``dtype`` (float64 as in the authors' code)."""
    s = _s(logits.to(_dtype(dtype)))
    return -(s.gather(-1, y.unsqueeze(-1)).squeeze(-1).log() - s.sum(-1).log())


def mse(logits: torch.Tensor, y: torch.Tensor, dtype: str = "float32") -> torch.Tensor:
    """Per-sample mean squared error against one-hot targets."""
    z = logits.to(_dtype(dtype))
    return (z - F.one_hot(y, z.shape[-1]).to(z.dtype)).pow(2).mean(-1)


def per_sample_loss(name: str, logits: torch.Tensor, y: torch.Tensor, dtype: str = "float32") -> torch.Tensor:
    """The per-sample loss ``name`` (``ce``, ``stablemax``, ``mse``); for sequences, per token."""
    if name == "ce":
        return cross_entropy(logits, y, dtype)
    if name == "stablemax":
        return stablemax_cross_entropy(logits, y, dtype)
    if name == "mse":
        return mse(logits, y, dtype)
    raise LossError(f"loss: must be one of {LOSSES}, got {name!r}")


def softmax_collapse(logits: torch.Tensor, dtype: str = "float32") -> torch.Tensor:
    """Per-sample Softmax Collapse indicator (Prieto et al. 2025): sum_j exp(x_j - max x) == 1 exactly
    in the working precision, i.e. every non-maximal term underflowed to nothing."""
    z = logits.to(_dtype(dtype))
    z = z - z.max(-1, keepdim=True).values
    return z.exp().sum(-1) == 1
