"""A process-wide cache of the complete min/max buckets that ``RunStore.overview`` reads, so that a
second page on the same store (another tab, another user of a shared server, the page after the
server's warm-up) reads only each series' newest blocks instead of all of them.

Why: the monitor's first paint at 256 runs x 10^5 steps reads 256 x 782 block summaries, about half a
second of the server's build of the page (issue 14's 3 s page-load goal; ``docs/monitor.md``). A bucket
whose blocks are all older than the series' newest block no longer changes while a run appends, so it
can be kept; what may still change it is checked before it is used (``RunStore._overview_one``):

- a rewrite of summaries (rows deleted, a run deleted or imported, a migration) bumps the store's
  ``blocks_generation`` (``store_meta``), which is part of the entry;
- a row logged late into an old block changes that part's row count and finite sum, which are
  compared with SQL's own aggregate over the cached blocks before each use.

An entry is keyed by the store (its ``store_uid`` in ``store_meta`` and its file's path), the series, the
bucket width and the read path, so it is only ever combined with buckets computed the same way: the cached result equals an
uncached read exactly (``tests/test_store.py``). Entries are evicted least recently used beyond
:data:`MAX_BYTES`. Hand-written: ``functools.lru_cache`` bounds entries, not bytes, and cannot be
validated against the store.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

MAX_BYTES = 64 * 2**20
"""The cache's budget: about 1 700 series at the monitor's 400 buckets a line."""


@dataclass(frozen=True)
class Entry:
    """The complete buckets of one series: those made of blocks below ``split`` (a bucket boundary),
    with what validates them (``generation``, ``b0``, and the row count ``n`` and finite ``total`` of the
    blocks below ``split`` as SQL computes them)."""

    generation: str
    b0: int
    split: int
    n: float
    total: float
    b: np.ndarray
    cols: dict[str, np.ndarray]

    @property
    def nbytes(self) -> int:
        return int(self.b.nbytes + sum(v.nbytes for v in self.cols.values())) + 256


class SummaryCache:
    """Least-recently-used entries up to ``max_bytes``; thread-safe."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._d: OrderedDict[tuple, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> Entry | None:
        with self._lock:
            e = self._d.get(key)
            if e is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return e

    def put(self, key: tuple, entry: Entry) -> None:
        with self._lock:
            old = self._d.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            if entry.nbytes > self.max_bytes:
                return
            self._d[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.max_bytes:
                _, e = self._d.popitem(last=False)
                self._bytes -= e.nbytes

    def drop(self, key: tuple) -> None:
        with self._lock:
            e = self._d.pop(key, None)
            if e is not None:
                self._bytes -= e.nbytes

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._d)


CACHE = SummaryCache()
"""The one cache of this process (every ``RunStore`` shares it; entries name their store)."""
