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
