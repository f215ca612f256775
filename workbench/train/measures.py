"""What the loop measures, on the device, for every member at once ([N]-shaped tensors, no host sync).

Names follow :data:`workbench.metrics.METRIC_NAMES`. Each function takes the backend (parameters,
gradients, forward) and the members' data; none changes either.
"""

from __future__ import annotations

import torch

from workbench import metrics as M
from workbench.train.backends import Backend
from workbench.train.config import TrainConfig
from workbench.train.data import MemberData


def _expand(y: torch.Tensor, ps: torch.Tensor) -> torch.Tensor:
    return y if y.shape == ps.shape else y.unsqueeze(0).expand(ps.shape)


@torch.no_grad()
def train_metrics(cfg: TrainConfig, model: Backend, logits: torch.Tensor, ps: torch.Tensor, loss: torch.Tensor,
                  y: torch.Tensor, lr: torch.Tensor) -> dict[str, torch.Tensor]:
    """Metrics of the update just computed (loss, accuracy, norms, gradient / weight cosine...)."""
    params, grads = model.params(), model.grads()
    lr = lr.to(loss.device, torch.float32)
    out = {
        "train_loss": loss.detach().float(),
        "train_acc": M.accuracy(logits, _expand(y, ps)),
        "lr": lr,
        "weight_norm": M.weight_norm(params),
        "grad_norm": M.grad_norm(grads),
        "grad_weight_cos": M.grad_weight_cos(params, grads),
        "zero_loss_fraction": M.zero_loss_fraction(ps),
    }
    if cfg.loss == "ce":
        out["sc_fraction"] = M.sc_fraction(logits, torch.float32)
    per = M.sq_norms(params).sqrt()
    for i, n in enumerate(model.names):
        if params[i].dim() >= 3:            # matrices (member dim + 2 or more)
            out[f"weight_norm/{n}"] = per[i]
    scale_invariant = list(getattr(model.model, "scale_invariant", []))
    if scale_invariant:
        out["eff_lr"] = M.effective_lr(lr, [params[model.names.index(n)] for n in scale_invariant])
    return out


@torch.no_grad()
def eval_metrics(model: Backend, data: MemberData) -> dict[str, torch.Tensor]:
    x, y = data.test_batch()
    logits, ps, loss = model.forward(x, y, data.test_xdim)
    return {"test_loss": loss.float(), "test_acc": M.accuracy(logits, _expand(y, ps))}


@torch.no_grad()
def final_train_metrics(model: Backend, data: MemberData, step: int) -> dict[str, torch.Tensor]:
    (x, y), xdim = data.final_train_batch(step)
    logits, ps, loss = model.forward(x, y, xdim)
    return {"train_loss": loss.float(), "train_acc": M.accuracy(logits, _expand(y, ps)),
            "weight_norm": M.weight_norm(model.params())}


def sharpness(cfg: TrainConfig, model: Backend, data: MemberData, step: int) -> torch.Tensor:
    x, y = data.train_batch(step)
    return M.sharpness(lambda: model.forward(x, y, data.xdim)[2], model.leaves, iters=cfg.sharpness_iters,
                       member_dim=model.member_dim)


def due(cfg: TrainConfig, step: int) -> bool:
    """Whether any measure of the current weights is due at ``step`` (eval, sharpness, progress)."""
    return any(every and step % every == 0 for every in (cfg.eval_every, cfg.sharpness_every, cfg.progress_every))


def measure(cfg: TrainConfig, model: Backend, data: MemberData, step: int,
            progress: Progress | None) -> dict[str, torch.Tensor]:
    """The measures due at ``step``: test loss / accuracy, sharpness, progress measures."""
    out: dict[str, torch.Tensor] = {}
    if step % cfg.eval_every == 0:
        out.update(eval_metrics(model, data))
    if cfg.sharpness_every and step % cfg.sharpness_every == 0:
        out["sharpness"] = sharpness(cfg, model, data, step)
    if progress is not None and step % cfg.progress_every == 0:
        out.update(progress(model, data))
    return out


class Progress:
    """Nanda et al. 2023's progress measures on the full p x p grid (modular ``+`` only; else nothing)."""

    def __init__(self, cfg: TrainConfig, data: MemberData) -> None:
        meta = data.ds.meta
        self.on = cfg.task == "modular" and meta.get("op") == "+"
        if self.on:
            p = meta["p"]
            a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
            self.x = torch.stack([a.reshape(-1), b.reshape(-1), torch.full((p * p,), p)], 1).to(data.device)
            self.y = ((a + b) % p).reshape(-1).to(data.device)

    @torch.no_grad()
    def __call__(self, model: Backend, data: MemberData) -> dict[str, torch.Tensor]:
        if not self.on:
            return {}
        logits = model.logits(self.x)
        outs = [M.progress_measures(logits[i:i + 1], self.y, data.train_index(i)) for i in range(model.N)]
        res = {k: torch.cat([o[k] for o in outs]).float() for k in outs[0]}
        res["sum_sq_weights"] = M.sq_norms(model.params()).sum(0)
        return res
