"""Where the loop's measurements go: one device -> host copy per log window, the run store (written
by a background thread), the divergence monitor, early stopping and the progress bar.

The loop hands :meth:`Sink.log` a dict of [N] device tensors per log point; they wait on the device
until ``sync_every`` log points (or 0.25 s) have gathered, then everything pending, with the alive
mask, is copied to the host in one ``torch.stack(...).cpu()``. The window's rows of every member are
built from that host array with numpy (no per-value ``float()`` or dict per member and step) and
handed to a :class:`WindowCommitter`, which commits each window in ONE transaction on its own thread
(a large window may wait there for the next ones and share their transaction, see "Large windows").

Why a thread: writing a window (the INSERT, the block summaries the monitor reads, the COMMIT) costs
the training thread nothing but the hand-over. SQLite releases the GIL while it works, so the
commit runs beside the next steps' device work instead of between them (on a GPU the training
thread mostly waits on the device; a 64-member run logging 10 metrics every step writes tens of
thousands of rows a second). The rules the synchronous writer kept still hold:

- **Order.** One FIFO queue and one thread: windows commit in the order the loop produced them, and a
  member's status change (``diverged`` in a window; ``finished`` / ``failed`` / ``interrupted`` from
  the loop) is written only after every row queued before it is committed.
- **Forced syncs wait.** ``sync(force=True)`` (before a checkpoint, a member's final metrics, Ctrl-C,
  the end of the run) returns only when everything queued is committed: a checkpoint never gets ahead
  of the rows before it, so a resume from it finds no gap.
- **Kill.** What a window committed survives a kill of the process. What is lost is only what was not
  yet committed, as before: the window being gathered, and now also the windows waiting in the queue
  (at most ``QUEUE_WINDOWS``), held back (at most ``HOLD_SECONDS`` of them) or being committed; SQLite
  rolls an unfinished transaction back, so the store holds whole windows.
- **Errors.** An exception in the writer thread (disk full, a locked store past its timeout) is
  raised in the training thread at its next ``log`` / ``sync`` / ``finish`` / ``close``; the loop then
  marks the run ``failed`` as before (and :meth:`Sink.close` marks it ``failed`` itself when the error
  first shows there). Windows after the error are dropped, not written out of order.
- **Back-pressure.** The queue holds at most ``QUEUE_WINDOWS`` windows; when the disk is slower than
  the run, ``log`` blocks until the writer catches up, so memory cannot grow without limit.
- **Large windows.** A window of ``HOLD_ROWS`` (1 024) rows or more is held back until the next one
  comes and committed with it, for at most ``HOLD_SECONDS`` (1 s) after it was handed over; a window
  with a status change, a forced sync, the end of the run, or that time running out commits what is
  held at once. Why: a commit costs in proportion to the series it touches (one page of the store's
  ``(run, name, step)`` index and one block summary each), not to its rows. A 64-member run logging 19
  metrics every step touches 1 216 series a window; committing 0.25 s windows cost the writer 9.7 ms of
  CPU a training step, 1 s windows 5.0 ms (thread CPU time, scratch profile of the Nanda run of
  ``bench/writer_bench.py``). What a reader sees is then at most about 1 s older; a run with small
  windows (a few members, or logging every 10 steps) is committed every window, as before.
- **Columns.** A window goes to the writer as :class:`~workbench.store.MetricColumns` (numpy arrays),
  not a tuple per row: with 1 223 row tuples a step, Python's garbage collector ran about four
  collections a step and a full one (about 150 ms with torch loaded, the GIL held) every hundred steps
  or so; with columns the run collects as often as one without a store. The writer thread's CPU for
  that run, all of the above together: 4.7-5.0 ms a step (it was 10.5-12.2).

A member whose loss is not finite (or whose alive flag dropped) is marked ``diverged`` in the store,
with a ``diverged`` = 1 row at its last logged step; the sink asks the loop to stop when every member
is dead or when every live member reached ``stop_at_test_acc``. ``bench/writer_bench.py`` measures
what the store costs a 64-member run logging every step.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.store import MetricColumns, non_finite_flag
from workbench.train.config import TrainConfig

SYNC_SECONDS = 0.25
QUEUE_WINDOWS = 4
"""Windows that may wait for the writer thread before ``log`` blocks (the back-pressure bound)."""
HOLD_ROWS = 1024
"""A window of at least this many rows may be held back and committed with the next (see :data:`HOLD_SECONDS`)."""
HOLD_SECONDS = 1.0
"""How long the writer may hold large windows back to commit them in one transaction."""
_FLUSH = "flush"

def default_progress() -> bool:
    """Progress bars default to on in a terminal and off under CI (``CI`` set) or when not a TTY."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and not os.environ.get("CI")


class WindowCommitter:
    """Commits windows of encoded metric rows ``(run, step, tokens, wall, name, value, flag)`` and the
    status changes that follow them, in order, one transaction per window, on a background thread.

    :meth:`put` blocks while ``max_windows`` windows wait (back-pressure); :meth:`drain` waits until
    everything put is committed; :meth:`close` drains and joins the thread. The first exception in the
    thread is raised once in the caller, by the next :meth:`put`, :meth:`drain` or :meth:`close`;
    windows put after it are dropped (never committed out of order). The thread starts with the first window."""

    def __init__(self, store: Any, max_windows: int = QUEUE_WINDOWS, hold_rows: int = HOLD_ROWS,
                 hold_seconds: float = HOLD_SECONDS) -> None:
        if max_windows < 1:
            raise WorkbenchError(f"max_windows: must be >= 1, got {max_windows}")
        if hold_rows < 1:
            raise WorkbenchError(f"hold_rows: must be >= 1, got {hold_rows}")
        if not 0 <= hold_seconds <= 60:
            raise WorkbenchError(f"hold_seconds: must be in [0, 60], got {hold_seconds}")
        self.store = store
        self.hold_rows, self.hold_seconds = hold_rows, hold_seconds
        self.rows_written = 0
        self.error: BaseException | None = None
        self._reported = False
        self._closed = False
        self._q: queue.Queue = queue.Queue(maxsize=max_windows)
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        held: list[Any] = []             # windows taken from the queue and not committed yet
        since = 0.0                      # when the first of them was put

        def commit(statuses: Sequence[tuple[str, str, str | None]] = (), items: int = 0) -> None:
            try:
                self._commit(held, statuses)
            finally:
                for _ in range(len(held) + items):
                    self._q.task_done()
                held.clear()

        while True:
            wait = None if not held else max(0.0, since + self.hold_seconds - time.monotonic())
            try:
                item = self._q.get(timeout=wait)
            except queue.Empty:          # the held windows' time is up
                commit()
                continue
            if not isinstance(item, tuple):  # a flush (drain) or the end (close)
                commit(items=1)
                if item is None:
                    return
                continue
            if self.error is not None:   # windows after an error are dropped
                self._q.task_done()
                continue
            rows, statuses, put_at = item
            since = since if held else put_at
            held.append(rows)
            if not statuses and len(rows) >= self.hold_rows and time.monotonic() - since < self.hold_seconds:
                continue                 # a large window: commit it together with the next one(s)
            commit(statuses)

    def _commit(self, windows: list[Any], statuses: Sequence[tuple[str, str, str | None]]) -> None:
        """Windows (columns or row tuples) in one transaction, then the status changes."""
        if self.error is not None:
            return
        try:
            rows = MetricColumns.concat([MetricColumns.of(w) for w in windows]) if windows else []
            if len(windows) > 1:         # the windows' rows in the index's order again (stable: a series keeps its order)
                rows = rows.in_index_order()
            if len(rows):
                self.store._insert(rows)
                self.rows_written += len(rows)
            for rid, status, error in statuses:
                self.store.set_status(rid, status, error=error)
        except BaseException as e:  # noqa: BLE001 - handed to the training thread
            self.error = e

    def check(self) -> None:
        """Raise the writer thread's exception (once)."""
        if self.error is not None and not self._reported:
            self._reported = True
            raise self.error

    def put(self, rows: MetricColumns | list[tuple], statuses: Sequence[tuple[str, str, str | None]] = ()) -> None:
        """Queue one window: ``rows`` (columns, or encoded row tuples) in one transaction, then ``statuses``
        ``(run, status, error)``."""
        self.check()
        if self._closed:
            raise RuntimeError("WindowCommitter: closed")
        if len(rows) or statuses:
            if self._thread is None:  # a daemon: a loop that dies without close() leaves no thread behind
                self._thread = threading.Thread(target=self._run, name="workbench-sink-writer", daemon=True)
                self._thread.start()
            self._q.put((rows, list(statuses), time.monotonic()))

    def drain(self, check: bool = True) -> None:
        """Wait until everything put is committed (or dropped after an error); then :meth:`check`."""
        if self._thread is not None and not self._closed:
            self._q.put(_FLUSH)         # commit the windows held back, now
            self._q.join()
        if check:
            self.check()

    def close(self) -> None:
        """Commit what is queued, stop the thread, and raise its exception if it was not raised yet."""
        if not self._closed:
            self._closed = True
            if self._thread is not None:
                self._q.put(None)
                self._thread.join()
        self.check()


class Sink:
    def __init__(self, cfg: TrainConfig, store: Any, run_ids: list[str | None], tokens_per_step: int,
                 start: int = 0, progress: bool = False) -> None:
        self.cfg, self.store, self.run_ids, self.tokens_per_step = cfg, store, run_ids, tokens_per_step
        if store is not None:
            for r in dict.fromkeys(r for r in run_ids if r is not None):
                store._require(r)
        self.writer = WindowCommitter(store) if store is not None else None
        self._rids = np.array(run_ids, dtype=object)
        # (step, wall time of the log call, metrics, members or None for all)
        self.pending: list[tuple[int, float, dict[str, torch.Tensor], list[int] | None]] = []
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
            self.pending.append((step, time.time(), metrics, members))
        self.sync(alive, now, force)

    def sync(self, alive: torch.Tensor, now: int, force: bool = False) -> None:
        """Copy the pending window to the host and queue its rows; ``force``: now, and return only once
        everything queued is committed. Raises the writer thread's error, if any."""
        if self.writer is not None:
            self.writer.check()
        if self.pending and (force or len(self.pending) >= self.cfg.sync_every
                             or time.monotonic() - self.last_sync >= SYNC_SECONDS):
            self._window(alive, now)
        if force and self.writer is not None:
            self.writer.drain()

    def _window(self, alive: torch.Tensor, now: int) -> None:
        pending, self.pending = self.pending, []
        flat, steps, walls, names, members = [], [], [], [], []
        for step, wall, d, mem in pending:
            for k, v in d.items():
                flat.append(v.detach().float().reshape(-1))
                steps.append(step)
                walls.append(wall)
                names.append(k)
                members.append(mem)
        flat.append(alive.float())
        host = torch.stack(flat).cpu().numpy()                      # the one device -> host copy
        vals, live = host[:-1], host[-1] > 0.5
        n = len(self.run_ids)
        writable = ~(np.array(self.dead) | np.array(self.done))
        # which entry (a metric at a step) belongs to which member; a later entry of the same (step, name)
        # replaces an earlier one for the members it covers
        cover = np.ones((len(names), n), dtype=bool)
        for j, mem in enumerate(members):
            if mem is not None:
                cover[j] = False
                cover[j, mem] = True
        if len(set(zip(steps, names))) < len(names):
            seen: dict[tuple[int, str], np.ndarray] = {}
            for j in range(len(names) - 1, -1, -1):
                key = (steps[j], names[j])
                if key in seen:
                    later = seen[key]
                    seen[key] = later | cover[j]
                    cover[j] &= ~later
                else:
                    seen[key] = cover[j].copy()
        order = np.argsort(np.asarray(steps, dtype=np.int64), kind="stable")
        cover &= writable[None, :]
        step_a = np.asarray(steps, dtype=np.int64)[order]
        cov = cover[order]
        val = vals[order]
        name_a = np.array(names, dtype=object)[order]
        # the divergence monitor: alive flag dropped, or a non-finite loss in this window
        loss = np.array([k.endswith("loss") for k in name_a], dtype=bool)
        bad_loss = (~np.isfinite(val[loss]) & cov[loss]).any(axis=0) if loss.any() else np.zeros(n, dtype=bool)
        lost = writable & (~live | bad_loss)
        has = cov.any(axis=0)
        last_j = len(name_a) - 1 - np.argmax(cov[::-1], axis=0)      # each member's last entry
        last_step = np.where(has, step_a[last_j], now)
        self._update_final(cov, val, name_a, step_a, has, last_step)
        statuses = []
        extra: list[tuple] = []                                     # the diverged rows
        wall = time.time()
        for i in np.flatnonzero(lost).tolist():
            self.dead[i] = True
            last = int(last_step[i])
            self.final[i]["diverged"] = 1.0
            if self.writer is not None:
                rid = self.run_ids[i]
                extra.append((rid, last, last * self.tokens_per_step, wall, "diverged", 1.0, None))
                statuses.append((rid, "diverged", f"loss not finite at step <= {last}"))
        if self.writer is not None:
            rows = self._rows(cov, val, name_a, step_a, np.asarray(walls, dtype=np.float64)[order])
            if extra:
                rows = MetricColumns.concat([rows, MetricColumns.from_rows(extra)])
            self.writer.put(rows, statuses)                         # the window: one transaction, then statuses
        self._check_stop()
        if self.bar is not None:
            f = self.final[0]
            self.bar.n = now
            self.bar.set_postfix({k: f"{f[k]:.4g}" for k in ("train_loss", "test_loss", "train_acc", "test_acc")
                                  if k in f}, refresh=True)
        self.last_sync = time.monotonic()

    def _rows(self, cov: np.ndarray, val: np.ndarray, name_a: np.ndarray, step_a: np.ndarray,
              wall_a: np.ndarray) -> MetricColumns:
        """The window's encoded rows as columns, member by member, metric by metric, in step order (a
        non-finite value is stored as NULL with its flag). That order is the store index's (run, name,
        step): each series' rows go into the index one after another."""
        _, name_code = np.unique(name_a, return_inverse=True)
        by_series = np.lexsort((step_a, name_code))
        mi, e = np.nonzero(cov.T[:, by_series])
        ej = by_series[e]
        v = val[ej, mi].astype(np.float64)
        flag = np.full(len(v), None, dtype=object)
        for r in np.flatnonzero(~np.isfinite(v)).tolist():
            flag[r] = non_finite_flag(float(v[r]))
            v[r] = np.nan
        st = step_a[ej]
        return MetricColumns(self._rids[mi], st, st * self.tokens_per_step, wall_a[ej], name_a[ej], v, flag)

    def _update_final(self, cov: np.ndarray, val: np.ndarray, name_a: np.ndarray, step_a: np.ndarray,
                      has: np.ndarray, last_step: np.ndarray) -> None:
        """Each member's latest value of each metric (``final``), and the step of its last row."""
        idx = np.arange(cov.shape[1])
        for k in dict.fromkeys(name_a.tolist()):
            rows = np.flatnonzero(name_a == k)
            c = cov[rows]
            got = c.any(axis=0)
            if not got.any():
                continue
            last = rows[len(rows) - 1 - np.argmax(c[::-1], axis=0)]
            latest = val[last, idx].astype(np.float64).tolist()
            for i in np.flatnonzero(got).tolist():
                self.final[i][k] = latest[i]
        for i in np.flatnonzero(has).tolist():
            self.final[i]["step"] = int(last_step[i])

    def finish(self, members: list[int]) -> None:
        """``members`` reached their own ``steps`` (a ragged stack): finished now, no rows after this."""
        if self.writer is not None:
            self.writer.drain()  # their rows before their status
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
        """Commit what is queued and stop the writer thread. An error of the writer thread not raised
        before is raised here, after marking the run ``failed`` (the loop's own handler had no chance)."""
        try:
            if self.writer is not None:
                try:
                    self.writer.close()
                except Exception as ex:
                    try:
                        self.set_status("failed", error=f"{type(ex).__name__}: {ex}")
                    except Exception:  # noqa: BLE001 - the store itself cannot be written: the original error matters more
                        pass
                    raise
        finally:
            if self.bar is not None:
                self.bar.close()

    def set_status(self, status: str, error: str | None = None) -> None:
        """Record ``status`` for every member (a diverged member keeps ``diverged`` unless the run failed),
        after every queued row is committed."""
        if self.store is None:
            return
        if self.writer is not None:
            self.writer.drain(check=False)
        for i, rid in enumerate(self.run_ids):
            if status == "failed" or not (self.dead[i] or self.done[i]):
                self.store.set_status(rid, status, error=error)
