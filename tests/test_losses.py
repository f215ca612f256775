"""Losses against reference values and independent computations."""

import math

import pytest
import torch
import torch.nn.functional as F

from workbench import losses as Lo


def test_stablemax_reference_values():
    # Prieto et al. 2025 / papers.md: logits [1, 0, -1] -> [0.5714, 0.2857, 0.1429]
    p = Lo.stablemax(torch.tensor([1.0, 0.0, -1.0]))
    torch.testing.assert_close(p, torch.tensor([4 / 7, 2 / 7, 1 / 7]))
    assert [round(v, 4) for v in p.tolist()] == [0.5714, 0.2857, 0.1429]


def test_stablemax_cross_entropy_is_minus_log_prob():
    z = torch.randn(5, 7, dtype=torch.float64)
    y = torch.randint(0, 7, (5,))
    s = torch.where(z >= 0, z + 1, 1 / (1 - z))
    expect = -torch.log(s[torch.arange(5), y] / s.sum(1))
    torch.testing.assert_close(Lo.stablemax_cross_entropy(z, y), expect)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_matches_torch(dtype):
    z = torch.randn(6, 9)
    y = torch.randint(0, 9, (6,))
    out = Lo.cross_entropy(z, y, dtype)
    assert out.dtype == Lo.LOSS_DTYPES[dtype]
    torch.testing.assert_close(out, F.cross_entropy(z.to(out.dtype), y, reduction="none"))


def test_float32_collapses_where_float64_does_not():
    # logit gap 20: exp(-20) = 2e-9 < float32 eps (1.2e-7) but > float64 eps -> sum exp == 1 and loss exactly 0 in float32
    z = torch.tensor([[20.0, 0.0, 0.0]])
    y = torch.tensor([0])
    assert Lo.softmax_collapse(z, "float32").item() and Lo.cross_entropy(z, y, "float32").item() == 0.0
    assert not Lo.softmax_collapse(z, "float64").item()
    assert Lo.cross_entropy(z, y, "float64").item() == pytest.approx(2 * math.exp(-20), rel=1e-6)
    # StableMax keeps a gradient at the same logits
    zz = z.clone().requires_grad_(True)
    Lo.stablemax_cross_entropy(zz, y).sum().backward()
    assert zz.grad.abs().sum() > 0


def test_mse_one_hot():
    z = torch.tensor([[0.5, 0.2, 0.0]])
    assert Lo.mse(z, torch.tensor([0])).item() == pytest.approx((0.25 + 0.04) / 3)


def test_unknown_loss():
    with pytest.raises(Lo.LossError, match="loss: must be one of"):
        Lo.per_sample_loss("hinge", torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))
    with pytest.raises(Lo.LossError, match="loss_dtype"):
        Lo.cross_entropy(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), "float16")


def _stablemax_grad_reference(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # closed form of d/dz_i [-log s(z_y) + log sum_j s(z_j)] with s'(x) = 1 (x >= 0), 1 / (1 - x)^2 (x < 0)
    s = torch.where(z >= 0, z + 1, 1 / (1 - z))
    ds = torch.where(z >= 0, torch.ones_like(z), 1 / (1 - z) ** 2)
    g = ds / s.sum(-1, keepdim=True)
    rows = torch.arange(z.shape[0])
    g[rows, y] -= ds[rows, y] / s[rows, y]
    return g


def test_stablemax_gradient_matches_closed_form():
    g = torch.Generator().manual_seed(0)
    z = (torch.randn(8, 11, generator=g, dtype=torch.float64) * 5).requires_grad_(True)
    y = torch.randint(0, 11, (8,), generator=g)
    Lo.stablemax_cross_entropy(z, y).sum().backward()
    torch.testing.assert_close(z.grad, _stablemax_grad_reference(z.detach(), y))


def test_softmax_collapse_kills_the_float32_gradient_and_matches_the_metric():
    # Prieto et al. 2025, SC: when sum_j exp(x_j - max) rounds to 1, the sample's loss and the gradient
    # on its correct-class logit are exactly 0 in float32 (only the exp(-gap)-sized terms of the other
    # classes remain); StableMax keeps a gradient on the correct class.
    from workbench import metrics as M

    gaps = torch.tensor([5.0, 10.0, 15.0, 20.0, 30.0, 60.0])
    z = torch.zeros(len(gaps), 113)
    z[:, 7] = gaps
    y = torch.full((len(gaps),), 7)
    sc = Lo.softmax_collapse(z, "float32")
    # exp(-gap) * 112 below half an ulp of 1 in float32 (2^-24) <=> collapsed
    expect = torch.tensor([112 * math.exp(-float(g)) < 2.0 ** -24 for g in gaps])
    assert sc.tolist() == expect.tolist() and sc.any() and not sc.all()
    assert M.sc_fraction(z.unsqueeze(0)).item() == pytest.approx(expect.float().mean().item())
    zz = z.clone().requires_grad_(True)
    loss = Lo.cross_entropy(zz, y, "float32")
    loss.sum().backward()
    rows = torch.arange(len(gaps))
    assert (loss[sc] == 0).all() and (loss[~sc] > 0).all()
    assert (zz.grad[rows, y][sc] == 0).all() and (zz.grad[rows, y][~sc] < 0).all()
    zs = z.clone().requires_grad_(True)
    Lo.stablemax_cross_entropy(zs, y).sum().backward()
    assert (zs.grad[rows, y] < 0).all()
