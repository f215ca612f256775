"""Each metric against a direct computation (numpy / full Hessian / 2-D FFT)."""

import numpy as np
import pytest
import torch

from workbench import metrics as M

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny ops: 1 thread is fastest


def test_norms_and_cosine_against_numpy():
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(3, 4, 5, generator=g), torch.randn(3, 7, generator=g)]
    gs = [torch.randn(3, 4, 5, generator=g), torch.randn(3, 7, generator=g)]
    for i in range(3):
        w = np.concatenate([p[i].numpy().ravel() for p in ps])
        d = np.concatenate([q[i].numpy().ravel() for q in gs])
        assert M.weight_norm(ps)[i].item() == pytest.approx(np.linalg.norm(w), rel=1e-6)
        assert M.grad_norm(gs)[i].item() == pytest.approx(np.linalg.norm(d), rel=1e-6)
        cos = w @ d / np.linalg.norm(w) / np.linalg.norm(d)
        assert M.grad_weight_cos(ps, gs)[i].item() == pytest.approx(cos, rel=1e-5, abs=1e-7)
    lr = torch.tensor([0.1, 0.2, 0.3])
    eff = M.effective_lr(lr, ps)
    for i in range(3):
        expect = np.mean([lr[i].item() / (p[i].numpy() ** 2).sum() for p in ps])
        assert eff[i].item() == pytest.approx(expect, rel=1e-6)


def test_accuracy_collapse_and_zero_loss():
    logits = torch.tensor([[[30.0, 0.0], [0.0, 1.0], [0.5, 0.0], [0.0, 20.0]]])  # [N=1, B=4, C=2]
    y = torch.tensor([[0, 1, 1, 1]])
    assert M.accuracy(logits, y).item() == 0.75
    # exp(-30), exp(-20) vanish next to 1 in float32 (eps 1.2e-7): two collapsed samples
    assert M.sc_fraction(logits).item() == 0.5
    assert M.sc_fraction(logits, torch.float64).item() == 0.0
    ps = torch.nn.functional.cross_entropy(logits[0], y[0], reduction="none").unsqueeze(0)
    assert M.zero_loss_fraction(ps).item() == float((ps == 0).float().mean())
    assert M.zero_loss_fraction(ps).item() == 0.5


def _mlp_loss(params, x, y):
    W1, W2 = params
    return torch.nn.functional.cross_entropy(torch.tanh(x @ W1) @ W2, y)


def test_sharpness_equals_top_hessian_eigenvalue():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(20, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (20,), generator=g)
    W1 = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)   # N = 2 members
    W2 = torch.randn(2, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)

    def losses():
        return torch.stack([_mlp_loss((W1[i], W2[i]), x, y) for i in range(2)])

    lam = M.sharpness(losses, [W1, W2], iters=300)
    for i in range(2):
        def f(flat, i=i):
            return _mlp_loss((flat[:12].reshape(3, 4), flat[12:].reshape(4, 2)), x, y)
        flat = torch.cat([W1[i].detach().ravel(), W2[i].detach().ravel()])
        H = torch.autograd.functional.hessian(f, flat)
        ev = torch.linalg.eigvalsh(H)
        top = ev[ev.abs().argmax()].item()
        assert lam[i].item() == pytest.approx(top, rel=1e-3)
    # the single-run form (no member dim) gives the same value
    w1, w2 = W1[0].detach().clone().requires_grad_(True), W2[0].detach().clone().requires_grad_(True)
    one = M.sharpness(lambda: _mlp_loss((w1, w2), x, y), [w1, w2], iters=300, member_dim=False)
    assert one.item() == pytest.approx(lam[0].item(), rel=1e-6)


def _fft_projection(L, p, freqs):
    """Independent: keep the (a+b) Fourier modes (w, w), (-w, -w) and the mean of each output."""
    F = np.fft.fft2(L.reshape(p, p, -1), axes=(0, 1))
    keep = np.zeros((p, p), dtype=bool)
    keep[0, 0] = True
    for w in freqs:
        keep[w % p, w % p] = keep[-w % p, -w % p] = True
    return np.real(np.fft.ifft2(F * keep[..., None], axes=(0, 1))).reshape(p * p, -1)


def test_nanda_progress_measures_against_fft():
    p = 13
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    s = (a + b).ravel()
    c = np.arange(p)
    rng = np.random.default_rng(0)
    # logits built from frequencies 2 and 5 of (a + b - c), plus noise in every other mode
    L = sum(3.0 * np.cos(2 * np.pi * w * (s[:, None] - c[None, :]) / p) for w in (2, 5))
    L = L + 0.3 * rng.standard_normal(L.shape)
    labels = torch.tensor(s % p)
    train_idx = torch.tensor(rng.permutation(p * p)[:80])
    out = M.progress_measures(torch.tensor(L)[None], labels, train_idx, k=2)
    assert sorted([out["key_freq_0"].item(), out["key_freq_1"].item()]) == [2, 5]
    R = _fft_projection(L, p, [2, 5])
    Rt = torch.tensor(R)
    restricted = torch.nn.functional.cross_entropy(Rt, labels).item()
    assert out["restricted_loss"].item() == pytest.approx(restricted, rel=1e-9)
    # excluded: the logits minus the key-frequency modes (the mean mode kept), on the train pairs
    excl_direct = torch.tensor(L - (R - _fft_projection(L, p, [])))
    assert out["excluded_loss"].item() == pytest.approx(
        torch.nn.functional.cross_entropy(excl_direct[train_idx], labels[train_idx]).item(), rel=1e-9)
    assert out["restricted_loss"].item() < out["excluded_loss"].item()
