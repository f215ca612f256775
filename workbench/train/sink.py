"""Where the loop's measurements go: one device -> host copy per log window, the run store, the
divergence monitor, early stopping and the progress bar.

The loop hands :meth:`Sink.log` a dict of [N] device tensors per log point; they wait on the device
until ``sync_every`` log points (or 0.25 s) have gathered, then everything pending, with the alive
mask, is copied to the host in one ``torch.stack(...).cpu()``. The rows of every member go to one
:class:`~workbench.store.MetricWriter` that commits once per window: one transaction for all members
(a transaction per member per window slowed a 64-member run logging every step by 1.11x,
``bench/writer_bench.py``); what a window committed survives a kill of the process. A member whose loss is not
finite (or whose alive flag dropped) is marked ``diverged`` in the store, with a ``diverged`` = 1 row
at its last logged step; the sink asks the loop to stop when every member is dead or when every live
member reached ``stop_at_test_acc``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

import torch

from workbench.train.config import TrainConfig

SYNC_SECONDS = 0.25


def default_progress() -> bool:
    """Progress bars default to on in a terminal and off under CI (``CI`` set) or when not a TTY."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and not os.environ.get("CI")


class Sink:
    def __init__(self, cfg: TrainConfig, store: Any, run_ids: list[str | None], tokens_per_step: int,
                 start: int = 0, progress: bool = False) -> None:
        self.cfg, self.store, self.run_ids, self.tokens_per_step = cfg, store, run_ids, tokens_per_step
        # one writer for all members, committed by sync() once per window (never in between)
        self.writer = (store.writer([r for r in run_ids if r is not None], every_rows=2**62,
                                    every_seconds=math.inf) if store is not None else None)
        self.pending: list[tuple[int, dict[str, torch.Tensor], list[int] | None]] = []
        self.last_sync = time.monotonic()
        self.final: list[dict[str, float]] = [{} for _ in run_ids]
        self.dead = [False] * len(run_ids)
        self.done = [False] * len(run_ids)   # reached its own steps in a ragged stack: no more rows
        self.stop = False
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=cfg.steps, initial=start, desc=cfg.task, dynamic_ncols=True)

    def log(self, step: int, metrics: dict[str, torch.Tensor], alive: torch.Tensor, now: int,
            force: bool = False, members: list[int] | None = None) -> None:
        """Queue ``metrics`` measured at ``step``; copy to the host when the window is full (or ``force``).
        ``now`` is the loop's current step (for the progress bar); ``members``: only their rows (default all)."""
        if metrics:
            self.pending.append((step, metrics, members))
        self.sync(alive, now, force)

    def sync(self, alive: torch.Tensor, now: int, force: bool = False) -> None:
        if not self.pending:
            return
        if not force and len(self.pending) < self.cfg.sync_every and time.monotonic() - self.last_sync < SYNC_SECONDS:
            return
        flat, keys = [], []
        for step, d, members in self.pending:
            for k, v in d.items():
                flat.append(v.detach().float().reshape(-1))
                keys.append((step, k, members))
        flat.append(alive.float())
        host = torch.stack(flat).cpu().numpy()                      # the one device -> host copy
        rows: list[dict[int, dict[str, float]]] = [{} for _ in self.run_ids]
        for (step, k, members), vals in zip(keys, host[:-1]):
            for i in range(len(self.run_ids)) if members is None else members:
                rows[i].setdefault(step, {})[k] = float(vals[i])
        for i in range(len(self.run_ids)):
            if not self.dead[i] and not self.done[i]:
                self._write(i, rows[i], host[-1][i] > 0.5, now)
        if self.writer is not None:
            self.writer.flush()                                     # the window: one transaction
        self._check_stop()
        if self.bar is not None:
            f = self.final[0]
            self.bar.n = now
            self.bar.set_postfix({k: f"{f[k]:.4g}" for k in ("train_loss", "test_loss", "train_acc", "test_acc")
                                  if k in f}, refresh=True)
        self.pending = []
        self.last_sync = time.monotonic()

    def _write(self, i: int, rows: dict[int, dict[str, float]], alive: bool, now: int) -> None:
        w, rid = self.writer, self.run_ids[i]
        for step, d in sorted(rows.items()):
            self.final[i].update(d)
            self.final[i]["step"] = step
            if w is not None:
                w.log(step, d, tokens=step * self.tokens_per_step, run=rid)
        lost = not alive or any(k.endswith("loss") and not math.isfinite(v) for d in rows.values() for k, v in d.items())
        if lost:                                          # the divergence monitor
            self.dead[i] = True
            last = max(rows) if rows else now
            self.final[i]["diverged"] = 1.0
            if w is not None:
                w.log(last, {"diverged": 1.0}, tokens=last * self.tokens_per_step, run=rid)
                w.flush()  # the rows before the status
                self.store.set_status(self.run_ids[i], "diverged", error=f"loss not finite at step <= {last}")

    def finish(self, members: list[int]) -> None:
        """``members`` reached their own ``steps`` (a ragged stack): finished now, no rows after this."""
        if self.writer is not None:
            self.writer.flush()  # their rows before their status
        for i in members:
            if not self.dead[i]:
                self.done[i] = True
                if self.store is not None:
                    self.store.set_status(self.run_ids[i], "finished")

    def _check_stop(self) -> None:
        if all(d or f for d, f in zip(self.dead, self.done)):
            self.stop = True
        thr = self.cfg.stop_at_test_acc
        if thr is not None:
            live = [f for f, d, e in zip(self.final, self.dead, self.done) if not d and not e]
            if live and all(f.get("test_acc", -1) >= thr for f in live):
                self.stop = True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.bar is not None:
            self.bar.close()

    def set_status(self, status: str, error: str | None = None) -> None:
        """Record ``status`` for every member (a diverged member keeps ``diverged`` unless the run failed)."""
        if self.store is None:
            return
        for i, rid in enumerate(self.run_ids):
            if status == "failed" or not (self.dead[i] or self.done[i]):
                self.store.set_status(rid, status, error=error)
