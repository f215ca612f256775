"""Tasks: labels against the definitions, split sizes from Nanda et al. 2023, bad configs."""

import numpy as np
import pytest
import torch

from workbench import tasks as T
from workbench.train import ConfigError, TrainConfig


def test_modular_addition_matches_definition_and_nanda_split():
    ds = T.modular(p=113, op="+", frac=0.3, seed=0)
    # Nanda et al. 2023: p = 113, train fraction 0.3 -> 3 830 train / 8 939 test pairs
    assert ds.n_train == 3830 and ds.n_test == 8939
    x = torch.cat([ds.x_train, ds.x_test])
    y = torch.cat([ds.y_train, ds.y_test])
    assert torch.equal(y, (x[:, 0] + x[:, 1]) % 113)
    assert torch.all(x[:, 2] == 113)                     # "=" is token p
    pairs = {(int(a), int(b)) for a, b, _ in x.tolist()}
    assert len(pairs) == 113 * 113                       # every pair exactly once
    assert ds.vocab_size == 114 and ds.n_classes == 113


@pytest.mark.parametrize("op,fn", [
    ("-", lambda a, b, p: (a - b) % p),
    ("*", lambda a, b, p: (a * b) % p),
    ("x2+y2", lambda a, b, p: (a * a + b * b) % p),
    ("x3+xy", lambda a, b, p: (a ** 3 + a * b) % p),
])
def test_modular_operations(op, fn):
    ds = T.modular(p=7, op=op, frac=0.5, seed=1)
    a, b = ds.x_train[:, 0].numpy(), ds.x_train[:, 1].numpy()
    np.testing.assert_array_equal(ds.y_train.numpy(), fn(a, b, 7))


def test_division_is_inverse_of_multiplication():
    ds = T.modular(p=11, op="/", frac=0.5, seed=0)
    x = torch.cat([ds.x_train, ds.x_test])
    y = torch.cat([ds.y_train, ds.y_test])
    assert torch.all(x[:, 1] != 0)
    assert torch.equal((y * x[:, 1]) % 11, x[:, 0])


def test_split_is_seeded():
    a, b, c = T.modular(p=13, seed=3), T.modular(p=13, seed=3), T.modular(p=13, seed=4)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)


def test_sparse_parity_labels():
    ds = T.parity(n_bits=10, k=3, n_train=200, n_test=50, seed=0)
    x = ds.x_train
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    expect = ((x[:, :3] < 0).sum(1) % 2).long()
    assert torch.equal(ds.y_train, expect)


def test_lm_windows_are_shifted_stream():
    ds = T.lm(seq_len=16, max_chars=20_000)
    x, y = ds.batch("train", torch.tensor([0, 5, 100]))
    assert x.shape == (3, 16) and torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(x[1], ds.stream_train[5:21])
    assert ds.vocab_size == 96
    tx, ty = ds.batch("test")
    assert tx.shape == (min(512, ds.stream_test.numel() - 17), 16)


def test_lm_corpus_ships_with_python():
    text = T.corpus_text()
    assert len(text) > 100_000 and "lambda" in text


def test_digits_omnigrok_split():
    ds = T.digits(n_train=1000, seed=0)
    assert ds.n_train == 1000 and ds.n_test == 797 and ds.x_train.shape[1] == 64
    assert 0 <= float(ds.x_train.min()) and float(ds.x_train.max()) <= 1


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 1.5])
def test_frac_outside_open_interval(frac):
    with pytest.raises(T.TaskError, match=r"frac.*\(0, 1\)"):
        T.modular(p=7, frac=frac)
    with pytest.raises(ConfigError, match=r"frac.*\(0, 1\)"):
        TrainConfig(task="modular", task_params={"p": 7, "frac": frac})


def test_division_needs_prime():
    with pytest.raises(T.TaskError, match="p: must be prime"):
        T.modular(p=12, op="/")
    with pytest.raises(ConfigError, match="p: must be prime"):
        TrainConfig(task="modular", task_params={"p": 12, "op": "/"})
    T.modular(p=12, op="+")                     # addition does not need a prime


def test_unknown_task_and_params():
    with pytest.raises(ConfigError, match="task: must be one of"):
        TrainConfig(task="imagenet")
    with pytest.raises(T.TaskError, match="task: must be one of"):
        T.make_task("imagenet")
    with pytest.raises(ConfigError, match="task_params.q"):
        TrainConfig(task="modular", task_params={"q": 3})
    with pytest.raises(T.TaskError, match="op: must be one of"):
        T.modular(p=7, op="^")
