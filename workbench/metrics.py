"""On-device training metrics, computed per member of a stack of N runs.

Every function takes tensors whose leading dim is the member dim N (a single run passes N = 1) and
returns [N]-shaped tensors on the device; the training loop collects them and copies them to the
host in one transfer every few log steps (no per-step ``.item()``).

* loss / accuracy; Softmax-Collapse fraction and fraction of exactly-zero per-sample losses
  (Prieto et al. 2025, "Grokking at the edge of numerical stability", §3).
* weight norm (total and per tensor), gradient norm, cosine between gradient and weights (the
  naive-loss-minimisation direction of Prieto et al.: cos → −1 when the gradient only scales the
  weights).
* effective LR of scale-invariant tensors: η / ‖w‖² (van Laarhoven 2017; Li & Arora 2020).
* sharpness: top Hessian eigenvalue by power iteration on Hessian-vector products (Cohen et al.
  2021, edge of stability; Noci et al., why learning rates transfer). The Hessian of the sum of the
  members' losses is block-diagonal by member, so one HVP serves all members, with each member's
  vector normalised separately.
* Nanda et al. 2023 progress measures for a + b mod p: logits over all p² pairs projected on the 2-D
  Fourier directions cos(w(a+b)), sin(w(a+b)) of the key frequencies w; restricted loss = loss of
  (mean + key-frequency part) on all pairs; excluded loss = loss of (logits − key-frequency part) on
  the train pairs; key frequencies = the ``k`` frequencies with the largest (a+b)-direction energy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

# the names as plain data live in a torch-free module, so dashboards can read them without torch
from workbench.metric_names import METRIC_DOCS, METRIC_NAMES, METRIC_PREFIXES  # noqa: E402, F401


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[N, ..., C] logits, [N, ...] labels -> [N] accuracy."""
    return _flat((logits.argmax(-1) == y).float()).mean(1)


def mean_loss(per_sample: torch.Tensor) -> torch.Tensor:
    return _flat(per_sample).mean(1)


def zero_loss_fraction(per_sample: torch.Tensor) -> torch.Tensor:
    """Fraction of per-sample losses that are exactly 0 -> [N]."""
    return _flat((per_sample == 0).float()).mean(1)


def sc_fraction(logits: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Softmax-Collapse fraction: samples with sum_j exp(x_j - max x) == 1 exactly in ``dtype``."""
    z = logits.to(dtype)
    z = z - z.max(-1, keepdim=True).values
    return _flat((z.exp().sum(-1) == 1).float()).mean(1)


def sq_norms(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """[T, N]: squared norm of each tensor, per member."""
    return torch.stack([_flat(t).pow(2).sum(1) for t in tensors])


def weight_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return sq_norms(params).sum(0).sqrt()


def grad_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    return sq_norms(grads).sum(0).sqrt()


def grad_weight_cos(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Cosine between the concatenated gradient and the concatenated weights, per member."""
    dot = torch.stack([(_flat(p) * _flat(g)).sum(1) for p, g in zip(params, grads)]).sum(0)
    return dot / (weight_norm(params) * grad_norm(grads)).clamp_min(1e-30)


def effective_lr(lr: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """η / ‖w‖² averaged over the given (scale-invariant) tensors -> [N]."""
    return (lr.unsqueeze(0) / sq_norms(params).clamp_min(1e-30)).mean(0)


def sharpness(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], iters: int = 20,
              seed: int = 0, member_dim: bool = True) -> torch.Tensor:
    """Top Hessian eigenvalue per member by power iteration on HVPs.

    ``loss_fn()`` returns the per-member losses [N] at ``params`` (stacked [N, ...] leaves with
    ``requires_grad``); members must not interact (the Hessian of the sum is block-diagonal).
    ``member_dim=False``: ``params`` are the plain tensors of one run (N = 1)."""
    params = list(params)
    if not member_dim:
        params_v = params

        def loss1() -> torch.Tensor:
            return loss_fn().reshape(1)
        return _power(loss1, params_v, iters, seed, lambda t: t.reshape(1, -1))
    return _power(loss_fn, params, iters, seed, _flat)


def _power(loss_fn, params, iters, seed, flat) -> torch.Tensor:
    with torch.enable_grad():
        loss = loss_fn().sum()
        grads = torch.autograd.grad(loss, params, create_graph=True)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
    lam = torch.zeros(flat(params[0]).shape[0], device=params[0].device, dtype=params[0].dtype)
    for it in range(iters):
        n = torch.stack([flat(x).pow(2).sum(1) for x in v]).sum(0).sqrt().clamp_min(1e-30)
        v = [(flat(x) / n[:, None]).reshape(x.shape) for x in v]
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=it < iters - 1)
        lam = torch.stack([(flat(a) * flat(b)).sum(1) for a, b in zip(v, hv)]).sum(0)
        v = [h.detach() for h in hv]
    return lam.detach()


# ------------------------------------------------------------------------------- Nanda progress measures
def fourier_directions(p: int, freqs: Sequence[int] | torch.Tensor, device=None) -> torch.Tensor:
    """Unit vectors over the p x p grid of (a, b): cos(2πw(a+b)/p) and sin(2πw(a+b)/p) for each w,
    shape [2 * len(freqs), p * p]."""
    a = torch.arange(p, device=device, dtype=torch.float64)
    s = (a[:, None] + a[None, :]).reshape(-1)
    w = torch.as_tensor(freqs, device=device, dtype=torch.float64).reshape(-1, 1)
    ang = 2 * math.pi * w * s / p
    d = torch.cat([torch.cos(ang), torch.sin(ang)])
    return d / d.norm(dim=1, keepdim=True)


def key_frequencies(logits_grid: torch.Tensor, k: int = 5) -> torch.Tensor:
    """The k frequencies (1..p//2) whose (a+b) directions carry most energy of the logits.
    ``logits_grid``: [N, p*p, C] logits over all pairs in (a, b) row-major order -> [N, k]."""
    p = int(round(math.sqrt(logits_grid.shape[1])))
    dirs = fourier_directions(p, range(1, p // 2 + 1), logits_grid.device).to(logits_grid.dtype)
    coef = torch.einsum("fx,nxc->nfc", dirs, logits_grid)                 # [N, 2F, C]
    nf = p // 2
    energy = coef[:, :nf].pow(2).sum(-1) + coef[:, nf:].pow(2).sum(-1)   # [N, F]
    return energy.topk(min(k, nf), dim=1).indices + 1


def _ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -logits.double().log_softmax(-1).gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(-1)


def progress_measures(logits_grid: torch.Tensor, labels: torch.Tensor, train_index: torch.Tensor,
                      k: int = 5) -> dict[str, torch.Tensor]:
    """Nanda et al. 2023 restricted / excluded loss and key frequencies, per member.

    ``logits_grid`` [N, p*p, C]: logits for every pair (a, b) in row-major order; ``labels`` [p*p];
    ``train_index`` [n_train] indices into the grid of the training pairs."""
    N, P2, C = logits_grid.shape
    p = int(round(math.sqrt(P2)))
    L = logits_grid.double()
    freqs = key_frequencies(L, k)                                          # [N, k]
    restricted, excluded = [], []
    for n in range(N):
        dirs = fourier_directions(p, freqs[n], L.device)                   # [2k, p*p]
        part = dirs.T @ (dirs @ L[n])                                      # key-frequency component
        mean = L[n].mean(0, keepdim=True)
        restricted.append(_ce(mean + part, labels))
        excluded.append(_ce((L[n] - part)[train_index], labels[train_index]))
    out = {"restricted_loss": torch.stack(restricted), "excluded_loss": torch.stack(excluded)}
    for i in range(freqs.shape[1]):
        out[f"key_freq_{i}"] = freqs[:, i].double()
    return out
