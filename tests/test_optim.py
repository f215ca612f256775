"""Optimizers by name, and the batched optimizer against the library optimizer run alone."""

import pytest
import torch
from pytorch_optimizer import Lion
from pytorch_optimizer.base.optimizer import BaseOptimizer

from workbench import optim as O

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny ops: 1 thread is fastest


def _problem(seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(3, 6, 5, generator=g)
    t = torch.randn(3, 6, 4, generator=g)
    W0 = torch.randn(3, 5, 4, generator=g)
    return A, t, W0


def _loss(A, W, t):
    return ((A @ W - t) ** 2).mean()


@pytest.mark.parametrize("name,hp,lib", [
    # eps 1e-25: Prieto et al.'s AdamW setting (bench/grokking_repro.py b) must survive the [N] float32 tensor
    ("adamw", {"betas": [(0.9, 0.98), (0.8, 0.99), (0.95, 0.999)], "eps": [1e-8, 1e-25, 1e-8]}, torch.optim.AdamW),
    ("adam", {"betas": [(0.9, 0.999)] * 3, "eps": [1e-8, 1e-6, 1e-7]}, torch.optim.Adam),
    ("sgd", {"momentum": [0.0, 0.9, 0.5], "dampening": [0.0] * 3}, torch.optim.SGD),
    ("lion", {"betas": [(0.9, 0.99), (0.95, 0.98), (0.9, 0.9)]}, Lion),
])
def test_batched_optimizer_equals_library_100_steps(name, hp, lib):
    A, t, W0 = _problem(0)
    lrs, wds = [1e-2, 3e-3, 2e-2], [0.0, 0.1, 1.0]
    members = []
    for i in range(3):
        m = {k: v[i] for k, v in hp.items()}
        m["weight_decay"] = wds[i]
        members.append(m)
    hpt, nest = O.batched_hparams(name, members, torch.device("cpu"))
    W = W0.clone().requires_grad_(True)
    bo = O.BatchedOptimizer(name, [W], hpt, nest)
    alone = []
    for i in range(3):
        w = W0[i].clone().requires_grad_(True)
        kw = {k: v for k, v in members[i].items()}
        alone.append((w, lib([w], lr=lrs[i], **kw)))
    lr = torch.tensor(lrs)
    for _ in range(100):
        sum(_loss(A[i], W[i], t[i]) for i in range(3)).backward()
        bo.step(lr)
        W.grad = None
        for i, (w, opt) in enumerate(alone):
            _loss(A[i], w, t[i]).backward()
            opt.step()
            opt.zero_grad()
    for i, (w, _) in enumerate(alone):
        assert ((W[i] - w).abs().max() / w.abs().max()).item() < 1e-5


def test_orthograd_and_clipping_act_per_member():
    A, t, W0 = _problem(1)
    W = W0.clone().requires_grad_(True)
    sum(_loss(A[i], W[i], t[i]) for i in range(3)).backward()
    O.orthogonalize_([W])
    norms = O.clip_grad_norm_per_member_([W], torch.tensor([0.01, 1e9, 0.1]))
    for i in range(3):
        w = W0[i].clone().requires_grad_(True)
        _loss(A[i], w, t[i]).backward()
        BaseOptimizer.apply_orthogonal_gradients([w], eps=1e-30)   # what OrthoGrad runs on CPU
        n = torch.nn.utils.clip_grad_norm_([w], [0.01, 1e9, 0.1][i])
        torch.testing.assert_close(W.grad[i], w.grad, rtol=1e-5, atol=1e-8)
        assert norms[i].item() == pytest.approx(n.item(), rel=1e-5)
        assert abs((w.grad * w).sum().item()) < 1e-5 * w.grad.norm().item() * w.norm().item()


def test_grokfast_filter_on_stack_equals_per_member():
    A, t, W0 = _problem(2)
    W = W0.clone().requires_grad_(True)
    fb = O.GradFilter("ema", alpha=0.9, lamb=2.0)
    singles = [(W0[i].clone().requires_grad_(True), O.GradFilter("ema", alpha=0.9, lamb=2.0)) for i in range(3)]
    for _ in range(5):
        sum(_loss(A[i], W[i], t[i]) for i in range(3)).backward()
        fb([("W", W)])
        for i, (w, f) in enumerate(singles):
            _loss(A[i], w, t[i]).backward()
            f([("W", w)])
            torch.testing.assert_close(W.grad[i], w.grad)
            w.grad = None
        W.grad = None


@pytest.mark.parametrize("name", ["sgd", "adamw", "muon", "lion", "adamp", "lamb", "diffgrad", "sgdsai", "apollo"])
def test_build_optimizer_by_name_steps(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = O.build_optimizer(name, model, lr=1e-2, orthograd=name == "adamw")
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(16, 4)).pow(2).mean().backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    O.set_lr(opt, 1e-3)


def test_unknown_excluded_and_refused_optimizers():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(O.OptimizerError, match="unknown name 'adamzz'"):
        O.build_optimizer("adamzz", p)
    with pytest.raises(O.OptimizerError, match="non-commercial"):
        O.build_optimizer("nero", p)
    for name in ("lamb", "muon", "adamp"):
        with pytest.raises(O.BatchedUnsupportedError, match=f"'{name}' has no per-member batched"):
            O.batched_hparams(name, [{}], torch.device("cpu"))


def test_orthograd_step_is_orthogonal_and_norm_preserving():
    # ⊥Grad (Prieto et al. 2025): with plain SGD the update of each tensor is -lr * g_perp, where
    # g_perp = g - (w.g / w.w) w rescaled to |g|; reference computed here in float64 per tensor.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7, bias=False), torch.nn.ReLU(), torch.nn.Linear(7, 3, bias=False))
    w0 = [p.detach().double().clone() for p in model.parameters()]
    torch.nn.functional.cross_entropy(model(torch.randn(16, 5)), torch.randint(0, 3, (16,))).backward()
    g = [p.grad.detach().double().clone() for p in model.parameters()]
    opt = O.build_optimizer("sgd", model, lr=0.1, orthograd=True)
    opt.step()
    for p, w, gr in zip(model.parameters(), w0, g):
        gp = gr - (w * gr).sum() / (w * w).sum() * w
        gp = gp * gr.norm() / gp.norm()
        step = (p.detach().double() - w) / -0.1
        torch.testing.assert_close(step, gp, rtol=1e-4, atol=1e-7)
        assert abs((step * w).sum().item()) < 1e-4 * step.norm().item() * w.norm().item()


@pytest.mark.parametrize("kind", ["ema", "ma"])
def test_grokfast_filter_matches_the_paper_recursion(kind):
    # Lee et al. 2024: EMA mu_0 = g_0, mu_t = a mu_{t-1} + (1 - a) g_t, g_hat = g + lamb mu_t;
    # MA (warmup): g unchanged until the window holds w gradients, then g + lamb * mean(window).
    a, lamb, w = 0.9, 2.0, 3
    f = O.GradFilter(kind, alpha=a, lamb=lamb, window_size=w)
    gen = torch.Generator().manual_seed(3)
    p = torch.nn.Parameter(torch.zeros(4))
    mu, hist = None, []
    for _ in range(6):
        g = torch.randn(4, generator=gen)
        p.grad = g.clone()
        f([("p", p)])
        if kind == "ema":
            mu = g if mu is None else a * mu + (1 - a) * g
            expect = g + lamb * mu
        else:
            hist = (hist + [g])[-w:]
            expect = g + lamb * torch.stack(hist).mean(0) if len(hist) == w else g
        torch.testing.assert_close(p.grad, expect)
