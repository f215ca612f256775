"""Tasks with data the project generates itself (seeded, deterministic, no download).

* ``modular`` (alias ``grokking``): binary operations mod p of Power et al. 2022 ("Grokking:
  generalization beyond overfitting on small algorithmic datasets"), input "a b =" as three tokens
  with token ``p`` as "=" (Nanda et al. 2023), label ``a ∘ b mod p``; a seeded train fraction of all
  pairs.
* ``parity``: sparse parity (Barak et al. 2022): n bits in {-1, +1}, label = parity of k fixed bits.
* ``lm``: character-level language modelling on ``pydoc_data.topics.topics`` (the help text that
  ships with CPython, ~0.5M characters), next-character prediction over windows of ``seq_len``.
* ``digits``: scikit-learn's 8x8 digits (ships with the package); the Omnigrok setting (Liu et al.
  2023: 1 000 training points, large initialisation, MSE) is ``n_train=1000`` with the ``mse`` loss
  and ``init_scale=8`` on the model.

Every task returns a :class:`Dataset` whose ``batch(split, idx)`` gives (x, y) on the device, so the
training loop handles all of them alike.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError


class TaskError(WorkbenchError):
    """A bad task configuration: names the field and the allowed values."""


# Power et al. 2022, Table/Appendix A.1 operations (mod p). Division is x * y^(p-2) (Fermat), p prime.
OPERATIONS: dict[str, Any] = {
    "+": lambda a, b, p: (a + b) % p,
    "-": lambda a, b, p: (a - b) % p,
    "*": lambda a, b, p: (a * b) % p,
    "/": lambda a, b, p: (a * pow_mod(b, p - 2, p)) % p,
    "x2+y2": lambda a, b, p: (a * a + b * b) % p,
    "x2+xy+y2": lambda a, b, p: (a * a + a * b + b * b) % p,
    "x2+xy+y2+x": lambda a, b, p: (a * a + a * b + b * b + a) % p,
    "x3+xy": lambda a, b, p: (a ** 3 + a * b) % p,
    "x3+xy2+y": lambda a, b, p: (a ** 3 + a * b * b + b) % p,
}


def pow_mod(b: np.ndarray, e: int, p: int) -> np.ndarray:
    out = np.ones_like(b)
    base = b % p
    while e:
        if e & 1:
            out = out * base % p
        base = base * base % p
        e >>= 1
    return out


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(math.isqrt(n)) + 1))


@dataclass
class Dataset:
    """Train / test data of one task, on one device.

    ``kind``: ``classification`` (x -> class), ``lm`` (x tokens -> next tokens) .
    ``x_train`` etc. hold all examples, except for ``lm`` where ``stream_train`` / ``stream_test``
    hold the token streams and an example ``i`` is the window starting at ``i``.
    """

    name: str
    kind: str
    n_classes: int
    input_shape: tuple[int, ...]
    vocab_size: int | None = None
    x_train: torch.Tensor | None = None
    y_train: torch.Tensor | None = None
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    stream_train: torch.Tensor | None = None
    stream_test: torch.Tensor | None = None
    seq_len: int = 0
    eval_windows: int = 512
    meta: dict = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        if self.kind == "lm":
            return int(self.stream_train.numel() - self.seq_len - 1)
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        if self.kind == "lm":
            return min(self.eval_windows, int(self.stream_test.numel() - self.seq_len - 1))
        return int(self.x_test.shape[0])

    def batch(self, split: str, idx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples ``idx`` (any shape, e.g. [B] or [N, B]) of ``split``; ``None`` = all of them."""
        if self.kind == "lm":
            stream = self.stream_train if split == "train" else self.stream_test
            if idx is None:
                n = self.n_train if split == "train" else self.n_test
                if split == "test":  # a fixed, evenly spaced set of evaluation windows
                    span = stream.numel() - self.seq_len - 1
                    idx = torch.linspace(0, span - 1, n, device=stream.device).long()
                else:
                    idx = torch.arange(n, device=stream.device)
            pos = idx.unsqueeze(-1) + torch.arange(self.seq_len + 1, device=stream.device)
            w = stream[pos]
            return w[..., :-1], w[..., 1:]
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        if idx is None:
            return x, y
        return x[idx], y[idx]

    def to(self, device: torch.device) -> Dataset:
        """A copy on ``device`` (this dataset is left as it is)."""
        moved = {k: getattr(self, k).to(device) for k in TENSOR_FIELDS if getattr(self, k) is not None}
        return dataclasses.replace(self, **moved)


TENSOR_FIELDS = ("x_train", "y_train", "x_test", "y_test", "stream_train", "stream_test")


def _check_frac(frac: float) -> float:
    if not isinstance(frac, (int, float)) or not 0.0 < float(frac) < 1.0:
        raise TaskError(f"frac: the train fraction must be in the open interval (0, 1), got {frac!r}")
    return float(frac)


def modular(p: int = 113, op: str = "+", frac: float = 0.3, seed: int = 0) -> Dataset:
    """All pairs (a, b) of the operation mod p, split with a seeded permutation (train first)."""
    if not isinstance(p, (int, np.integer)) or p < 2:
        raise TaskError(f"p: must be an integer >= 2, got {p!r}")
    if op not in OPERATIONS:
        raise TaskError(f"op: must be one of {sorted(OPERATIONS)}, got {op!r}")
    if op == "/" and not is_prime(int(p)):
        raise TaskError(f"p: must be prime for division (op '/'), got {p}")
    frac = _check_frac(frac)
    p = int(p)
    a, b = np.meshgrid(np.arange(p), np.arange(1 if op == "/" else 0, p), indexing="ij")
    a, b = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
    y = OPERATIONS[op](a, b, p).astype(np.int64)
    x = np.stack([a, b, np.full_like(a, p)], axis=1)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_train = int(frac * len(y))          # Nanda et al.: p = 113, frac 0.3 -> 3 830 / 8 939
    if not 0 < n_train < len(y):
        raise TaskError(f"frac: {frac} leaves an empty train or test set for p = {p}")
    tr, te = perm[:n_train], perm[n_train:]
    t = torch.from_numpy
    return Dataset(name="modular", kind="classification", n_classes=p, input_shape=(3,), vocab_size=p + 1,
                   x_train=t(x[tr]), y_train=t(y[tr]), x_test=t(x[te]), y_test=t(y[te]),
                   meta={"p": p, "op": op, "frac": frac, "train_index": tr, "all_pairs": op != "/"})


def parity(n_bits: int = 40, k: int = 3, n_train: int = 1000, n_test: int = 1000, seed: int = 0) -> Dataset:
    """Sparse parity: x uniform in {-1, +1}^n, y = parity of the first k bits (class 0/1)."""
    if not isinstance(n_bits, int) or n_bits < 1:
        raise TaskError(f"n_bits: must be an integer >= 1, got {n_bits!r}")
    if not isinstance(k, int) or not 1 <= k <= n_bits:
        raise TaskError(f"k: must be an integer in [1, n_bits={n_bits}], got {k!r}")
    for name, v in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(v, int) or v < 1:
            raise TaskError(f"{name}: must be an integer >= 1, got {v!r}")
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(n_train + n_test, n_bits))
    y = (np.prod(x[:, :k], axis=1) < 0).astype(np.int64)
    t = torch.from_numpy
    return Dataset(name="parity", kind="classification", n_classes=2, input_shape=(n_bits,),
                   x_train=t(x[:n_train]), y_train=t(y[:n_train]), x_test=t(x[n_train:]), y_test=t(y[n_train:]),
                   meta={"n_bits": n_bits, "k": k})


_CORPUS_CACHE: dict[str, str] = {}


def corpus_text() -> str:
    """The character corpus: CPython's ``pydoc_data.topics.topics`` help texts, sorted by key."""
    if "pydoc" not in _CORPUS_CACHE:
        from pydoc_data.topics import topics
        text = "\n\n".join(topics[k] for k in sorted(topics))
        _CORPUS_CACHE["pydoc"] = "".join(c if 32 <= ord(c) < 127 or c == "\n" else "?" for c in text)
    return _CORPUS_CACHE["pydoc"]


def lm(seq_len: int = 64, test_frac: float = 0.1, max_chars: int | None = None, eval_windows: int = 512,
       seed: int = 0) -> Dataset:
    """Character-level LM on the pydoc corpus: vocabulary = printable ASCII + newline (96 tokens);
    the last ``test_frac`` of the text is the test stream."""
    if not isinstance(seq_len, int) or seq_len < 1:
        raise TaskError(f"seq_len: must be an integer >= 1, got {seq_len!r}")
    if not 0.0 < float(test_frac) < 1.0:
        raise TaskError(f"test_frac: must be in the open interval (0, 1), got {test_frac!r}")
    text = corpus_text()
    if max_chars is not None:
        text = text[: int(max_chars)]
    vocab = ["\n"] + [chr(i) for i in range(32, 127)]
    lut = np.zeros(128, dtype=np.int64)
    for i, c in enumerate(vocab):
        lut[ord(c)] = i
    ids = lut[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    cut = int(len(ids) * (1 - float(test_frac)))
    if cut <= seq_len + 1 or len(ids) - cut <= seq_len + 1:
        raise TaskError(f"seq_len: {seq_len} is too long for a corpus of {len(ids)} characters")
    return Dataset(name="lm", kind="lm", n_classes=len(vocab), input_shape=(seq_len,), vocab_size=len(vocab),
                   stream_train=torch.from_numpy(ids[:cut].copy()), stream_test=torch.from_numpy(ids[cut:].copy()),
                   seq_len=seq_len, eval_windows=eval_windows, meta={"chars": len(ids), "vocab": "".join(vocab)})


def digits(n_train: int = 1000, seed: int = 0) -> Dataset:
    """scikit-learn's digits (1 797 images 8x8), pixels scaled to [0, 1]; ``n_train`` seeded train
    points, the rest test. With the ``mse`` loss the targets are one-hot (Omnigrok)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    n = len(d.target)
    if not isinstance(n_train, int) or not 0 < n_train < n:
        raise TaskError(f"n_train: must be an integer in [1, {n - 1}], got {n_train!r}")
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(n)
    tr, te = perm[:n_train], perm[n_train:]
    t = torch.from_numpy
    return Dataset(name="digits", kind="classification", n_classes=10, input_shape=(64,),
                   x_train=t(x[tr]), y_train=t(y[tr]), x_test=t(x[te]), y_test=t(y[te]), meta={"n_train": n_train})


TASKS = {"modular": modular, "parity": parity, "lm": lm, "digits": digits}
# each task's parameters (besides ``seed``), declared once
TASK_PARAMS = {"modular": ("p", "op", "frac"), "parity": ("n_bits", "k", "n_train", "n_test"),
               "lm": ("seq_len", "test_frac", "max_chars", "eval_windows"), "digits": ("n_train",)}
ALIASES = {"grokking": "modular", "modular_arithmetic": "modular", "sparse_parity": "parity", "mnist": "digits"}


def canonical_task(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in TASKS:
        raise TaskError(f"task: must be one of {sorted(TASKS) + sorted(ALIASES)}, got {name!r}")
    return name


def make_task(name: str, params: dict | None = None, seed: int = 0) -> Dataset:
    """Build a task by name with its parameters (unknown parameters raise a TaskError)."""
    fn = TASKS[canonical_task(name)]
    params = dict(params or {})
    allowed = list(TASK_PARAMS[canonical_task(name)])
    bad = sorted(set(params) - set(allowed))
    if bad:
        raise TaskError(f"task_params: unknown parameter {bad[0]!r} for task {name!r}; allowed: {allowed}")
    return fn(**params, seed=seed)
