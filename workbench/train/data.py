"""The batches of N members: one shared split, or one split per member (``data_seed`` differs).

Data order is a pure function of (seed, step): each epoch's permutation comes from a generator seeded
with (seed, epoch), so a resumed run sees exactly the batches it would have seen. Datasets are never
changed in place: per-member splits are stacked into new tensors held here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from workbench import tasks as T


def batch_indices(seed: int, step: int, n: int, batch_size: int) -> torch.Tensor:
    """Indices of the examples of ``step`` for a run with ``seed``: epoch e uses the permutation of a
    generator seeded with (seed, e); batches are consecutive slices (the last partial one dropped)."""
    per_epoch = max(1, n // batch_size)
    epoch, k = divmod(step, per_epoch)
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + epoch) % (2 ** 63))
    if batch_size >= n:
        return torch.randint(0, n, (batch_size,), generator=g)
    return torch.randperm(n, generator=g)[k * batch_size:(k + 1) * batch_size]


class MemberData:
    """Train / test batches of N members on ``device``. ``xdim`` is 0 when a batch carries the member
    dim ([N, B, ...]: per-member batches or splits) and None when every member sees the same x."""

    def __init__(self, task: str, task_params: dict, seeds: Sequence[int], data_seeds: Sequence[int],
                 batch_size: int | None, device: torch.device) -> None:
        self.seeds, self.device = list(seeds), device
        self.ds = T.make_task(task, task_params, seed=data_seeds[0]).to(device)
        self.splits: list[T.Dataset] = [self.ds]
        self.stacked: dict[str, torch.Tensor] | None = None
        if len(set(data_seeds)) > 1 and self.ds.kind != "lm":
            self.splits = [T.make_task(task, task_params, seed=s).to(device) for s in data_seeds]
            self.stacked = {k: torch.stack([getattr(d, k) for d in self.splits])
                            for k in ("x_train", "y_train", "x_test", "y_test")}
        self.n_train = self.ds.n_train
        self.B = batch_size if batch_size is not None and batch_size < self.n_train else None
        self.xdim = 0 if (self.stacked is not None or self.B is not None) else None
        self.examples_per_step = self.B or self.n_train

    def train_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.B is None:
            return self.full_train()
        idx = torch.stack([batch_indices(s, step, self.n_train, self.B) for s in self.seeds])
        idx = idx.to(self.device, non_blocking=True)                                   # [N, B]
        if self.stacked is not None:
            ar = torch.arange(len(self.seeds), device=self.device).unsqueeze(1)
            return self.stacked["x_train"][ar, idx], self.stacked["y_train"][ar, idx]
        return self.ds.batch("train", idx)

    def full_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.stacked is not None:
            return self.stacked["x_train"], self.stacked["y_train"]
        return self.ds.batch("train")

    def test_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.stacked is not None:
            return self.stacked["x_test"], self.stacked["y_test"]
        return self.ds.batch("test")

    @property
    def test_xdim(self) -> int | None:
        return 0 if self.stacked is not None else None

    def final_train_batch(self, step: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int | None]:
        """The batch the final train metrics are measured on (and its xdim): the next minibatch for an
        LM or a minibatched run, else the whole train split."""
        if self.ds.kind == "lm" or self.B is not None:
            return self.train_batch(step), self.xdim
        return self.full_train(), self.test_xdim

    def train_index(self, member: int) -> torch.Tensor:
        split = self.splits[min(member, len(self.splits) - 1)]
        return torch.as_tensor(split.meta["train_index"], device=self.device)
