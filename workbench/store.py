"""The persistent run store: runs, their metrics, artifacts and sweeps in one SQLite file.

Why SQLite in WAL mode, written here rather than taken from a tracking library: it is embedded
(no server), readers never block the writer (a dashboard tails a run while it trains), and a
committed transaction survives SIGKILL of the writer. W&B / MLflow / Aim need a server or a
directory of many small files and do not give a cursor-based tail across processes.

Layout
------
``runs``      one row per run: id, name, sweep, task, config (JSON), status, device, timestamps,
              package version, the writing process (host, pid, pid start time) and an error text.
``metrics``   long form: (run, step, tokens, wall, name, value). ``id`` is AUTOINCREMENT, so it is a
              monotone cursor: ``tail(since=cursor)`` returns exactly the rows committed after it.
              SQLite cannot store NaN, so non-finite values keep an explicit ``flag`` ('nan', 'inf',
              '-inf') and read back as the same float: nothing is dropped.
``artifacts`` checkpoint paths, exported figures: (run, kind, path, meta JSON, created).
``sweeps``    id, name, spec (JSON), status, timestamps.
``run_notes`` a researcher's tags (JSON list) and free-text note per run (the runs page edits them).
``sweep_members``   one row per sweep member: (sweep, idx, trial, seed, params JSON, config JSON, run_id);
              the run id is assigned when the member is recorded (``workbench.sweeps``).
``sweep_decisions`` one row per pruned-or-kept trial of a Bayesian sweep: (sweep, trial, pruned, prob,
              best, step, value, reason). Run statuses are :class:`RunStatus`.

Durability: ``journal_mode=WAL`` + ``synchronous=NORMAL`` keeps every committed transaction across
a process kill (only an OS crash or power loss can drop the last ones). Writers batch rows with
:class:`MetricWriter` (every *k* rows or *t* seconds, one transaction). On open, runs still marked
``running`` whose writing process is gone are marked ``interrupted``.

Schema versions and migrations
------------------------------
The schema version is SQLite's ``PRAGMA user_version``. Version 0 is the baseline ``_SCHEMA`` (the
layout of the first releases, which never set ``user_version``); version *k* is the baseline plus
the first *k* entries of :data:`MIGRATIONS`, and :data:`SCHEMA_VERSION` is ``len(MIGRATIONS)``.
Opening a store:

- newer than this code (``user_version > SCHEMA_VERSION``): refused with :class:`StoreVersionError`
  ("written by workbench X (schema N), this is workbench Y (schema M)"), nothing touched;
- older: the file is first copied (SQLite backup API, a consistent snapshot) to ``<db>.bak-v<N>``
  (owner-only, never overwritten: ``.bak-v<N>.1``... if one exists), then the missing steps run in
  order in ONE transaction together with the new ``user_version``, so a failed or killed migration
  leaves the store exactly as it was;
- new (no tables): baseline + every step in one transaction, no backup.

To change the schema, append ONE step to :data:`MIGRATIONS` and never edit or reorder earlier ones.
A step is either a SQL script (a string; statements separated by ``;``) or a function
``step(conn: sqlite3.Connection) -> None`` that issues statements on ``conn`` (for data rewrites or
conditional changes). Steps run inside the migration transaction: do not ``COMMIT``/``BEGIN``, and
use plain statements (``CREATE TABLE``/``INDEX``, ``ALTER TABLE ... ADD COLUMN``, ``UPDATE``). Add a
test that a store at the previous version opens and keeps its rows (see ``tests/test_store_schema.py``).

Read-only stores (``RunStore(path, readonly=True)``, chosen automatically when the file or its
directory is not writable by this user) are opened with SQLite's ``mode=ro`` URI and no switch to WAL:
reading works (the monitor, ``workbench runs``, ``export``), every write raises
:class:`ReadOnlyStoreError`. A read-only store at an older schema cannot be migrated and is refused
with a message saying so.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
import os
import re
import socket
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench import __version__
from workbench.errors import WorkbenchError


# "pruned": stopped early by a sweep because its learning-curve forecast was hopeless (never resumed)
class RunStatus(str, enum.Enum):
    """The status of a run (compares equal to its string: ``RunStatus.FINISHED == "finished"``).
    DONE members of a sweep are never run again: finished, diverged, failed, pruned."""

    RUNNING = "running"
    FINISHED = "finished"
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"

    def __str__(self) -> str:
        return self.value


STATUSES = tuple(s.value for s in RunStatus)
DONE_STATUSES = (RunStatus.FINISHED.value, RunStatus.DIVERGED.value, RunStatus.FAILED.value, RunStatus.PRUNED.value)
DEFAULT_PATH = Path("runs") / "workbench.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sweep TEXT,
    task TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    device TEXT NOT NULL DEFAULT 'cpu',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    finished REAL,
    version TEXT NOT NULL,
    host TEXT,
    pid INTEGER,
    pid_start TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs(sweep);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL,
    step INTEGER NOT NULL,
    tokens INTEGER,
    wall REAL,
    name TEXT NOT NULL,
    value REAL,
    flag TEXT
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run, name, step);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_run ON artifacts(run);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spec TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'running',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
"""

_BLOCKS_DDL = """CREATE TABLE IF NOT EXISTS metric_blocks (
    run TEXT NOT NULL,
    name TEXT NOT NULL,
    block INTEGER NOT NULL,
    n INTEGER NOT NULL DEFAULT 0,
    k INTEGER NOT NULL DEFAULT 0,
    sum REAL NOT NULL DEFAULT 0,
    lo REAL, lo_step INTEGER, lo_tokens INTEGER, lo_wall REAL,
    hi REAL, hi_step INTEGER, hi_tokens INTEGER, hi_wall REAL,
    nf_step INTEGER,
    PRIMARY KEY (run, name, block)
) WITHOUT ROWID"""

BLOCK_BITS = 7
"""``metric_blocks`` summarises each run's metric per block of ``2**BLOCK_BITS`` (128) steps."""

# How a block's summary absorbs new rows of it (ON CONFLICT), one rule set for the writer's one-row-per-block
# upsert (_BLOCK_UPSERT_TAIL) and the rebuild's three SQL passes (_BLOCKS_UPSERT). SQLite evaluates every SET
# expression against the row as it was before the update; a strict < / > keeps the earlier row on ties.
_MERGE_COUNTS = ("n = n + excluded.n, k = k + excluded.k, sum = sum + excluded.sum, "
                 "nf_step = COALESCE(MIN(nf_step, excluded.nf_step), nf_step, excluded.nf_step)")


def _merge_extreme(side: str, op: str) -> str:
    return ", ".join(f"{side}{c} = CASE WHEN {side} IS NULL OR excluded.{side} {op} {side} THEN excluded.{side}{c} "
                     f"ELSE {side}{c} END" for c in ("_step", "_tokens", "_wall", ""))


_MERGE_LO, _MERGE_HI = _merge_extreme("lo", "<"), _merge_extreme("hi", ">")

# The rebuild (migration, import, deletes) and the reference for the writer's fold: three passes over the
# rows with ids > ?1, each a GROUP BY. SQLite returns the bare columns step/tokens/wall of the row holding
# the MIN() or MAX() of a group.
_BLOCKS_UPSERT = (
    f"""INSERT INTO metric_blocks (run, name, block, n, k, sum, nf_step)
    SELECT run, name, step >> {BLOCK_BITS}, COUNT(*), COUNT(value), TOTAL(value), MIN(CASE WHEN value IS NULL
    THEN step END) FROM metrics NOT INDEXED WHERE id > ?1 GROUP BY run, name, step >> {BLOCK_BITS} ORDER BY NULL
    ON CONFLICT (run, name, block) DO UPDATE SET {_MERGE_COUNTS}""",
    f"""INSERT INTO metric_blocks (run, name, block, lo, lo_step, lo_tokens, lo_wall)
    SELECT run, name, step >> {BLOCK_BITS}, MIN(value), step, tokens, wall FROM metrics NOT INDEXED
    WHERE id > ?1 AND value IS NOT NULL GROUP BY run, name, step >> {BLOCK_BITS} ORDER BY NULL
    ON CONFLICT (run, name, block) DO UPDATE SET {_MERGE_LO}""",
    f"""INSERT INTO metric_blocks (run, name, block, hi, hi_step, hi_tokens, hi_wall)
    SELECT run, name, step >> {BLOCK_BITS}, MAX(value), step, tokens, wall FROM metrics NOT INDEXED
    WHERE id > ?1 AND value IS NOT NULL GROUP BY run, name, step >> {BLOCK_BITS} ORDER BY NULL
    ON CONFLICT (run, name, block) DO UPDATE SET {_MERGE_HI}""",
)

# The writer's upsert: one row per (run, name, block) of a window, folded by _block_rows, in the transaction
# that inserts the rows (so a reader sees rows and summary together).
_BLOCK_COLUMNS = ("run, name, block, n, k, sum, nf_step, lo, lo_step, lo_tokens, lo_wall, "
                  "hi, hi_step, hi_tokens, hi_wall")
_BLOCK_UPSERT_TAIL = f" ON CONFLICT (run, name, block) DO UPDATE SET {_MERGE_COUNTS}, {_MERGE_LO}, {_MERGE_HI}"
_METRIC_COLUMNS = "run, step, tokens, wall, name, value, flag"

MULTI_ROWS = 64
"""Rows per multi-row ``INSERT ... VALUES (...), (...)`` statement of the writer (:func:`_insert_matrix`)."""


@dataclass(frozen=True)
class MetricColumns:
    """Encoded metric rows as columns, the form the training sink hands the writer a window in.

    ``run``, ``name``: object arrays of str; ``step``: int64; ``tokens``, ``wall``: int64 / float64, or
    object arrays holding None where a row has none; ``value``: float64, NaN where the row's value is
    NULL (non-finite); ``flag``: object array, the flag of a non-finite value (:func:`non_finite_flag`)
    or None. Iterating gives the rows as tuples ``(run, step, tokens, wall, name, value, flag)``.

    Why columns rather than a tuple per row: the writer merges windows, orders them and folds the block
    summaries with numpy, and builds each statement's parameters as one list from an object matrix. A
    64-member run logging 19 metrics every step made 1 223 row tuples a step, and the young objects
    of these and the writer's intermediate tuples triggered about four garbage collections a step and,
    every hundred steps or so, a full one (about 150 ms with torch loaded, holding the GIL while the
    training thread waited): 1.8 ms a step in all, with ``gc.callbacks`` timing them (scratch profile)."""

    run: np.ndarray
    step: np.ndarray
    tokens: np.ndarray
    wall: np.ndarray
    name: np.ndarray
    value: np.ndarray
    flag: np.ndarray

    FIELDS = ("run", "step", "tokens", "wall", "name", "value", "flag")

    def __len__(self) -> int:
        return len(self.step)

    def __iter__(self) -> Iterator[tuple]:
        return iter(map(tuple, self.matrix().tolist()))

    @classmethod
    def from_rows(cls, rows: Sequence[tuple]) -> MetricColumns:
        """Columns of encoded row tuples ``(run, step, tokens, wall, name, value, flag)``."""
        run, step, tokens, wall, name, value, flag = zip(*rows) if rows else ((),) * 7
        obj = lambda x: np.array(x, dtype=object)  # noqa: E731 - None kept as None
        return cls(obj(run), np.array(step, dtype=np.int64), obj(tokens), obj(wall), obj(name),
                   np.array(value, dtype=np.float64), obj(flag))   # NULL (None) -> NaN

    @classmethod
    def of(cls, rows: Sequence[tuple] | MetricColumns) -> MetricColumns:
        """``rows`` as columns: itself if it already is, else :meth:`from_rows`."""
        return rows if isinstance(rows, MetricColumns) else cls.from_rows(rows)

    @classmethod
    def concat(cls, parts: Sequence[MetricColumns]) -> MetricColumns:
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.FIELDS))

    def take(self, idx: np.ndarray) -> MetricColumns:
        return MetricColumns(*(getattr(self, f)[idx] for f in self.FIELDS))

    def series(self) -> np.ndarray:
        """One int code per (run, name) (hashed in C: no Python work per row)."""
        r, runs = pd.factorize(self.run)
        n, names = pd.factorize(self.name)
        return r.astype(np.int64) * max(len(names), 1) + n

    def in_index_order(self) -> MetricColumns:
        """The rows grouped by (run, name), each group in step order; rows of the same (run, name,
        step) keep their order (a stable sort), so a value logged again still gets the larger id."""
        return self.take(np.lexsort((self.step, self.series())))

    def matrix(self) -> np.ndarray:
        """The rows as an object matrix [n, 7] of Python values (NULL as None)."""
        m = np.empty((len(self), 7), dtype=object)
        for j, f in enumerate(self.FIELDS):
            m[:, j] = getattr(self, f)
        m[np.isnan(self.value), 5] = None
        return m


def _insert_matrix(conn: sqlite3.Connection, head: str, m: np.ndarray, tail: str = "") -> None:
    """``head VALUES (?..), (?..), ... tail`` for the rows of the object matrix ``m``, :data:`MULTI_ROWS`
    rows a statement (the rest one by one), in the rows' order.

    The same rows as ``executemany`` with one row a statement, at about four fifths of the writer's CPU:
    a statement run once per row pays SQLite's per-statement work (the reset, the AUTOINCREMENT counter's
    read and write back) per row; here once per 64 rows. Measured with a scratch script on the metric table
    of a 64-member run (1 216 series, 7 steps a transaction): 4.1 -> 3.4 us a row, commit included."""
    rows, width = m.shape
    k = MULTI_ROWS
    n = rows // k * k
    if n:
        sql = f"{head} VALUES {','.join(['(' + ','.join('?' * width) + ')'] * k)}{tail}"
        flat = m[:n].ravel().tolist()
        step = width * k
        for i in range(0, len(flat), step):
            conn.execute(sql, flat[i:i + step])
    if n < rows:
        conn.executemany(f"{head} VALUES ({','.join('?' * width)}){tail}", m[n:].tolist())


def _block_rows(c: MetricColumns) -> np.ndarray:
    """The ``metric_blocks`` rows [g, 15] (object matrix, ``_BLOCK_COLUMNS`` order) summarising the
    encoded metric rows ``c``, one per (run, name, block), for the writer's upsert
    (``_BLOCK_UPSERT_TAIL``): its one pass.

    Computed here with numpy rather than by re-reading the new rows in SQL (the three passes of
    :data:`_BLOCKS_UPSERT`, which stay as the rebuild and the reference): the GROUP BY passes were a third
    of what a window of a 64-member run cost the writer thread. The same rules: ``n`` rows, ``k`` non-NULL
    values and their ``sum``, ``nf_step`` the first step of a NULL (non-finite) value, ``lo``/``hi`` the
    extreme values with the step, tokens and wall time of the earliest row (in ``c``'s order) holding them."""
    series, st, v = c.series(), c.step, c.value
    null = np.isnan(v)                          # SQLite stores no NaN, so NaN <=> NULL
    block = st >> BLOCK_BITS
    pos = np.arange(len(c))
    o = np.lexsort((pos, block, series))        # stable: within a group, the rows' own order
    g_series, g_block = series[o], block[o]
    start = np.flatnonzero(np.concatenate([[True], (g_series[1:] != g_series[:-1]) | (g_block[1:] != g_block[:-1])]))
    k = np.add.reduceat((~null[o]).astype(np.int64), start)
    none = np.iinfo(np.int64).max              # nf_step of a block without a non-finite row
    nf = np.minimum.reduceat(np.where(null, st, none)[o], start)
    first = o[start]
    # the earliest row holding each group's minimum (maximum): sort by value within the group, ties by position
    lo = np.lexsort((pos, np.where(null, np.inf, v), block, series))[start]
    hi = np.lexsort((pos, np.where(null, np.inf, -v), block, series))[start]
    cols = (c.run[first], c.name[first], g_block[start], np.diff(np.append(start, len(c))), k,
            np.add.reduceat(np.where(null, 0.0, v)[o], start), nf,
            v[lo], st[lo], c.tokens[lo], c.wall[lo], v[hi], st[hi], c.tokens[hi], c.wall[hi])
    out = np.empty((len(start), 15), dtype=object)
    for j, col in enumerate(cols):
        out[:, j] = col
    out[nf == none, 6] = None
    out[k == 0, 7:] = None                      # no finite value in the block: no extremes
    return out


def _update_blocks(conn: sqlite3.Connection, after_id: int) -> None:
    """Fold the metric rows with ``id > after_id`` into ``metric_blocks`` (inside the caller's transaction)."""
    for sql in _BLOCKS_UPSERT:
        conn.execute(sql, (int(after_id),))


_BUMP_GENERATION = ("INSERT INTO store_meta (key, value) VALUES ('blocks_generation', '1') ON CONFLICT (key) "
                    "DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)")
"""Summaries rewritten (not appended to): cached overview buckets (:mod:`workbench.summary_cache`) are stale."""

_CACHED_PART = ("SELECT COALESCE(SUM(n), 0), TOTAL(sum) FROM metric_blocks "
                "WHERE run = ? AND name = ? AND block < ?")
"""What validates a cached overview entry: the row count and finite total of the blocks it was made of."""


def _rebuild_blocks(conn: sqlite3.Connection, runs: Sequence[str] | None = None) -> None:
    """Recompute ``metric_blocks`` from the metric rows (of some runs, or all): the migration that adds
    the table to an existing store, and the repair after rows are deleted. Inside the caller's transaction."""
    conn.execute(_BUMP_GENERATION)
    if runs is None:
        conn.execute("DELETE FROM metric_blocks")
        _update_blocks(conn, 0)
        return
    for r in runs:
        conn.execute("DELETE FROM metric_blocks WHERE run = ?", (r,))
        for sql in _BLOCKS_UPSERT:  # the same three passes over this run's rows
            conn.execute(re.sub(r"NOT INDEXED\s+WHERE id > \?1", "WHERE run = ?2 AND id > ?1", sql), (0, r))


def _migrate_blocks(conn: sqlite3.Connection) -> None:
    """Migration 2: the ``metric_blocks`` table, filled from the stored rows (one pass in SQLite)."""
    conn.execute(_BLOCKS_DDL)
    if conn.execute("SELECT 1 FROM metrics LIMIT 1").fetchone():
        _rebuild_blocks(conn)


# Schema migrations: append one step per schema change, never edit or reorder (see the module docstring).
MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    # 1: the store records the workbench release that created or last migrated it (for the
    #    "written by workbench X" message of an older release opening a newer store)
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # 2: per-block min/max summaries of every series (the live monitor's first paint), computed from the
    #    stored rows once; kept up to date by every insert afterwards
    _migrate_blocks,
    # 3: tags (JSON list) and a free-text note per run, edited on the runs page
    "CREATE TABLE IF NOT EXISTS run_notes (run TEXT PRIMARY KEY, tags TEXT NOT NULL DEFAULT '[]', "
    "note TEXT NOT NULL DEFAULT '', updated REAL NOT NULL)",
    # 4: sweep members and pruning decisions in their own tables (they were artifacts with path = sweep id)
    lambda conn: _sweep_tables(conn),
    # 5: cooldown forks (workbench.train.fork): each fork run's parent_run and the parent's step it branched at
    "CREATE TABLE IF NOT EXISTS run_forks (run TEXT PRIMARY KEY, parent_run TEXT NOT NULL, "
    "fork_step INTEGER NOT NULL)",
]
SCHEMA_VERSION = len(MIGRATIONS)
MAX_INT = 2**63 - 1  # SQLite's INTEGER range: steps and token counts beyond it cannot be stored
MAX_TAG_LEN = 64
MAX_NOTE_LEN = 20_000

_METRIC_COLS = ["id", "run", "step", "tokens", "wall", "name", "value"]
_RUN_COLS = ["id", "name", "sweep", "task", "config", "status", "device", "created", "updated",
             "finished", "version", "host", "pid", "error"]


class StoreError(WorkbenchError):
    """Bad input to the run store: names the field and what is allowed."""


class StoreVersionError(StoreError):
    """A store written by a newer workbench (a schema this code does not know)."""


class ReadOnlyStoreError(StoreError):
    """A write to a store opened read-only."""


class UnknownRunError(WorkbenchError, KeyError):
    """A run id that the store does not hold."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def default_path() -> Path:
    """The store used when none is given: ``$WORKBENCH_STORE`` or ``./runs/workbench.db``."""
    return Path(os.environ.get("WORKBENCH_STORE", DEFAULT_PATH))


def _pid_start(pid: int) -> str | None:
    """Start time of a process (Linux /proc), so a recycled pid is not taken for the writer."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start is not None and _pid_start(pid) not in (None, start):
        return False
    try:  # a zombie (killed, not yet reaped) is not a live writer
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except OSError:
        pass
    return True


def _statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (``executescript`` would COMMIT a pending transaction)."""
    out, buf = [], ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n\t;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \n\t;"):
        out.append(buf.strip())
    return out


def _sweep_tables(conn: sqlite3.Connection) -> None:
    """Migration 4: the tables ``sweep_members`` and ``sweep_decisions``, filled from the ``sweep_member`` /
    ``sweep_prune_decision`` artifacts of earlier releases (which are then removed: the rows moved, and the
    pre-migration backup keeps the old layout). A member's ``run_id`` becomes the run the sweep really
    trained: earlier batched sweeps gave their runs fresh ids and found them by the run name
    ``<spec name>/m<index>``."""
    conn.execute(_SWEEP_MEMBERS)
    conn.execute(_SWEEP_DECISIONS)
    names = {}
    for sid, spec in conn.execute("SELECT id, spec FROM sweeps").fetchall():
        d = json.loads(spec or "{}")
        inner = d["spec"] if isinstance(d.get("spec"), dict) else d
        names[sid] = inner.get("name", "")
    rows = conn.execute("SELECT id, path, meta FROM artifacts WHERE run IS NULL AND kind='sweep_member' "
                        "ORDER BY id").fetchall()
    for aid, sweep, meta in rows:
        m = json.loads(meta)
        idx = int(m["index"])
        found = conn.execute("SELECT id FROM runs WHERE sweep=? AND name=? ORDER BY created DESC",
                             (sweep, f"{names.get(sweep, '')}/m{idx:04d}")).fetchone()
        conn.execute("INSERT OR IGNORE INTO sweep_members (sweep, idx, trial, seed, params, config, run_id) "
                     "VALUES (?,?,?,?,?,?,?)",
                     (sweep, idx, m.get("trial"), int(m.get("seed", 0)), json.dumps(m.get("params", {})),
                      json.dumps(m.get("config", {})), found[0] if found else m.get("run_id")))
        conn.execute("DELETE FROM artifacts WHERE id=?", (aid,))
    rows = conn.execute("SELECT id, path, meta FROM artifacts WHERE run IS NULL AND kind='sweep_prune_decision' "
                        "ORDER BY id").fetchall()
    for aid, sweep, meta in rows:
        d = json.loads(meta)
        conn.execute(_INSERT_DECISION, (sweep, *_decision_row(d)))
        conn.execute("DELETE FROM artifacts WHERE id=?", (aid,))


_SWEEP_MEMBERS = """CREATE TABLE IF NOT EXISTS sweep_members (
    sweep TEXT NOT NULL, idx INTEGER NOT NULL, trial INTEGER, seed INTEGER NOT NULL,
    params TEXT NOT NULL DEFAULT '{}', config TEXT NOT NULL DEFAULT '{}', run_id TEXT NOT NULL,
    PRIMARY KEY (sweep, idx))"""
_SWEEP_DECISIONS = """CREATE TABLE IF NOT EXISTS sweep_decisions (
    sweep TEXT NOT NULL, trial INTEGER NOT NULL, pruned INTEGER NOT NULL, prob REAL, best REAL, step INTEGER,
    value REAL, reason TEXT NOT NULL DEFAULT '', PRIMARY KEY (sweep, trial))"""
_INSERT_DECISION = ("INSERT OR REPLACE INTO sweep_decisions (sweep, trial, pruned, prob, best, step, value, reason) "
                    "VALUES (?,?,?,?,?,?,?,?)")
DECISION_COLUMNS = ["trial", "pruned", "prob", "best", "step", "value", "reason"]


def _decision_row(d: Mapping) -> tuple:
    def num(k: str) -> float | None:
        v = d.get(k)
        return None if v is None else float(v)

    step = d.get("step")
    return (int(d["trial"]), int(bool(d.get("pruned"))), num("prob"), num("best"),
            None if step is None else int(step), num("value"), str(d.get("reason") or ""))


def _apply_step(conn: sqlite3.Connection, step: str | Callable[[sqlite3.Connection], None]) -> None:
    if callable(step):
        step(conn)
    else:
        for stmt in _statements(step):
            conn.execute(stmt)


def _writable(path: Path) -> bool:
    """Whether this user can write the store file and the directory its WAL/SHM files live in."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _backup_path(path: Path, version: int) -> Path:
    bak = path.with_name(f"{path.name}.bak-v{version}")
    i = 0
    while bak.exists():
        i += 1
        bak = path.with_name(f"{path.name}.bak-v{version}.{i}")
    return bak


def non_finite_flag(v: float) -> str | None:
    """The flag a metric row stores for a non-finite value (whose ``value`` column is NULL):
    ``"nan"``, ``"inf"`` or ``"-inf"``; ``None`` for a finite value."""
    if math.isfinite(v):
        return None
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _encode(name: str, value: Any) -> tuple[float | None, str | None]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"metric {name!r}: value must be a real number, got {value!r}") from None
    flag = non_finite_flag(v)
    return (v if flag is None else None), flag


FLAG_VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
"""The value of each flag :func:`non_finite_flag` writes (the decoding of a NULL value with its flag)."""


def _check_config(config: Any) -> str:
    if config is None:
        return "{}"
    if not isinstance(config, Mapping):
        raise StoreError(f"config: must be a mapping of plain values (JSON object), got {type(config).__name__}")
    try:
        return json.dumps(config, sort_keys=True, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as e:
        raise StoreError(f"config: not JSON-serialisable ({e})") from None


def _json_default(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "item"):  # numpy / torch scalars
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


class RunStore:
    """A run store on one SQLite file; safe to share between threads, and between processes
    (each opens its own ``RunStore`` on the same path). A new store file (and the folders made for
    it) is owner-only; ``shared=True`` makes it group-readable (see ``workbench.safeio``).

    >>> store = RunStore(":memory:")
    >>> rid = store.create_run(name="demo", task="grokking", config={"lr": 1e-3})
    >>> store.log(rid, step=0, metrics={"loss": 4.7})
    >>> store.metrics(rid)["value"].tolist()
    [4.7]
    """

    def __init__(self, path: str | os.PathLike | None = None, *, mark_interrupted: bool = True,
                 timeout: float = 30.0, readonly: bool | None = None, shared: bool | None = None) -> None:
        memory = str(path) == ":memory:"
        self.path = default_path() if path is None else Path(path) if not memory else path
        if not memory:
            p = Path(self.path)
            if p.is_dir():
                raise StoreError(f"store: {p} is a directory; give a store file such as {p / 'workbench.db'}")
            if readonly is None:  # another user's store or a read-only mount: read it read-only
                readonly = p.exists() and not _writable(p)
            if readonly and not p.is_file():
                raise StoreError(f"store: {p} does not exist (a read-only store must be an existing file)")
            if not readonly:  # owner-only unless shared (workbench.safeio); sqlite's -wal/-shm follow the file
                from workbench.safeio import create_file, make_dirs

                try:
                    make_dirs(p.parent, shared=shared)
                    if not p.exists() and not os.access(p.parent, os.W_OK):
                        raise StoreError(f"store: cannot create {p}: directory {p.parent} is not writable")
                    create_file(p, shared=shared)
                except OSError as e:
                    raise StoreError(f"store: cannot create {p} ({e.strerror or e})") from None
        self.readonly = bool(readonly)
        self.shared = shared
        self._lock = threading.RLock()
        self._uid: str | None = None
        try:
            if self.readonly:
                uri = "file:" + urllib.parse.quote(str(Path(self.path).absolute())) + "?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False,
                                             isolation_level=None)
            else:
                self._conn = sqlite3.connect(str(self.path), timeout=timeout, check_same_thread=False,
                                             isolation_level=None)
        except sqlite3.Error as e:
            raise StoreError(f"store: cannot open {self.path} ({e})") from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            if not memory and not self.readonly:
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreError(f"store at {self.path}: could not enable WAL mode (got {mode})")
            if not self.readonly:
                self._conn.execute("PRAGMA synchronous=NORMAL")
                # A window of a many-member run dirties one index page per series (1 216 for 64 members x 19
                # metrics): a larger page cache keeps them, and checkpointing the WAL every ~32 MB instead
                # of SQLite's ~4 MB copies each hot page back once per several windows instead of every one
                # (bench/writer_bench.py: the commit's cost fell by a third). Both are upper bounds, per connection.
                self._conn.execute("PRAGMA cache_size=-32768")
                self._conn.execute("PRAGMA wal_autocheckpoint=8192")
            self._open_schema()
        except sqlite3.DatabaseError as e:
            self._conn.close()
            raise StoreError(f"store: {self.path} is not a usable workbench store ({e})") from None
        except BaseException:
            self._conn.close()
            raise
        if mark_interrupted and not self.readonly:
            self.mark_interrupted()

    # ------------------------------------------------------------------ schema
    def schema_version(self) -> int:
        """The store's schema version (``PRAGMA user_version``); :data:`SCHEMA_VERSION` once opened for writing."""
        return int(self._query("PRAGMA user_version")[0][0])

    def _writer_version(self) -> str:
        try:
            row = self._conn.execute("SELECT value FROM store_meta WHERE key='workbench_version'").fetchone()
        except sqlite3.Error:
            row = None
        return row[0] if row else "an unknown version"

    def _check_not_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"store {self.path} was written by workbench {self._writer_version()} (schema {version}), "
                f"this is workbench {__version__} (schema {SCHEMA_VERSION}): upgrade workbench to open it")

    def _open_schema(self) -> None:
        conn = self._conn
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        self._check_not_newer(version)
        has_tables = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'").fetchone()
        if self.readonly:
            if not has_tables:
                raise StoreError(f"store: {self.path} is not a workbench store (no runs table)")
            if version < SCHEMA_VERSION:
                raise StoreVersionError(
                    f"store {self.path} is at schema {version}, older than this workbench's schema "
                    f"{SCHEMA_VERSION}, and is read-only here, so it cannot be migrated: open it once with "
                    f"write access (its owner), or read it with workbench {self._writer_version()}")
            return
        if has_tables and version == SCHEMA_VERSION:
            return
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:  # re-read under the write lock: another process may have migrated it meanwhile
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                self._check_not_newer(version)
                has_tables = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'").fetchone()
                if not (has_tables and version == SCHEMA_VERSION):
                    if has_tables and self.path != ":memory:":
                        self.backup_path = self._backup(version)
                    for stmt in _statements(_SCHEMA):
                        conn.execute(stmt)
                    for step in MIGRATIONS[version:]:
                        _apply_step(conn, step)
                    conn.execute("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('workbench_version', ?)",
                                 (__version__,))
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def _backup(self, version: int) -> Path:
        """Copy the store (a consistent snapshot) to an owner-only ``<db>.bak-v<version>`` before migrating."""
        bak = _backup_path(Path(self.path), version)
        fd = os.open(bak, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        # a second connection reads the committed state (ours holds the write lock, and SQLite refuses to
        # back up from a connection inside a write transaction)
        src, dst = sqlite3.connect(str(self.path)), sqlite3.connect(str(bak))
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        for extra in (bak.with_name(bak.name + "-wal"), bak.with_name(bak.name + "-shm")):
            if extra.exists():
                extra.chmod(0o600)
        return bak

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def _rollback(self) -> None:
        """Roll back if a transaction is still open. SQLite rolls back by itself on some errors (disk
        full, I/O error), and a second ROLLBACK would then raise and hide the real error."""
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Callable[..., sqlite3.Cursor]]:
        """One read transaction (``BEGIN`` ... ``COMMIT``) under the connection's lock: every query run with
        the ``execute`` it yields sees the same committed state (rows and block summaries together)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn.execute
            finally:
                self._conn.execute("COMMIT")

    def _ends(self, q: Callable[..., sqlite3.Cursor], run: str, name: str) -> tuple[tuple, tuple] | None:
        """A series' first row ``(step, wall)`` (its lowest step) and last row ``(step, tokens, wall, value)``
        (its highest step, the latest committed there), one index lookup each, inside a :meth:`_snapshot`;
        NULL tokens / wall as NaN, a flagged value decoded. None when the series has no row."""
        first = q("SELECT step, COALESCE(wall, 'nan') FROM metrics WHERE run=? AND name=? ORDER BY step, id LIMIT 1",
                  (run, name)).fetchone()
        last = q("SELECT step, COALESCE(tokens, 'nan'), COALESCE(wall, 'nan'), COALESCE(value, flag) FROM metrics "
                 "WHERE run=? AND name=? ORDER BY step DESC, id DESC LIMIT 1", (run, name)).fetchone()
        if first is None or last is None:
            return None
        return (first[0], float(first[1])), (last[0], *(float(v) for v in last[1:]))  # float() reads the flags

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), rolled back on any error. A
        read-only store raises :class:`ReadOnlyStoreError`; SQLite's own write errors (disk full, I/O)
        come out as :class:`StoreError` carrying SQLite's message."""
        if self.readonly:
            raise ReadOnlyStoreError(f"store {self.path} is open read-only (not writable by this user, or "
                                     "opened with readonly=True): cannot write to it")
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._rollback()
                raise
            except sqlite3.OperationalError as e:
                self._rollback()
                raise StoreError(f"store {self.path}: write failed: {e}") from e
            except BaseException:
                self._rollback()
                raise

    def _tx(self, sql: str, params: Sequence | Iterable[Sequence] = (), many: bool = False) -> sqlite3.Cursor:
        with self._write() as conn:
            return conn.executemany(sql, params) if many else conn.execute(sql, params)

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _df(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        with self._lock:
            cur = self._conn.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=cols)

    # ------------------------------------------------------------------ runs
    def create_run(self, name: str | None = None, *, task: str = "", config: Mapping | None = None,
                   sweep: str | None = None, device: str = "cpu", run_id: str | None = None,
                   status: str = "running") -> str:
        """Register a run written by this process and return its id."""
        if status not in STATUSES:
            raise StoreError(f"status: must be one of {STATUSES}, got {status!r}")
        cfg = _check_config(config)
        rid = uuid.uuid4().hex[:12] if run_id is None else run_id
        if not isinstance(rid, str) or not rid.strip():
            raise StoreError(f"run_id: must be a non-empty string, got {rid!r}")
        now = time.time()
        pid = os.getpid()
        try:
            self._tx("INSERT INTO runs (id, name, sweep, task, config, status, device, created, updated,"
                     " version, host, pid, pid_start) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     (rid, name or rid, sweep, task, cfg, status, device, now, now, __version__,
                      socket.gethostname(), pid, _pid_start(pid)))
        except sqlite3.IntegrityError:
            raise StoreError(f"run_id: {rid!r} already exists") from None
        return rid

    def claim(self, run_id: str, status: str = "running") -> None:
        """Make this process the writer of an existing run (used by ``resume``)."""
        self._require(run_id)
        pid = os.getpid()
        self._tx("UPDATE runs SET status=?, host=?, pid=?, pid_start=?, updated=?, finished=NULL,"
                 " error=NULL WHERE id=?",
                 (status, socket.gethostname(), pid, _pid_start(pid), time.time(), run_id))

    def _require(self, run_id: str) -> None:
        if not self._query("SELECT 1 FROM runs WHERE id=?", (run_id,)):
            raise UnknownRunError(f"run {run_id!r}: no such run in {self.path}")

    def get_run(self, run_id: str) -> dict:
        """One run's record, with ``config`` decoded."""
        df = self._df(f"SELECT {', '.join(_RUN_COLS)} FROM runs WHERE id=?", (run_id,))
        if df.empty:
            raise UnknownRunError(f"run {run_id!r}: no such run in {self.path}")
        rec = df.iloc[0].to_dict()
        rec["config"] = json.loads(rec["config"])
        return rec

    def runs(self, *, sweep: str | None = None, status: str | Sequence[str] | None = None,
             task: str | None = None, expand_config: bool = False) -> pd.DataFrame:
        """All runs (newest last) as a DataFrame; ``expand_config`` adds one ``cfg.<key>`` column per
        top-level config key (nested dicts flattened with dots), for grouping by hyperparameter."""
        where, params = [], []
        if sweep is not None:
            where.append("sweep=?")
            params.append(sweep)
        if task is not None:
            where.append("task=?")
            params.append(task)
        if status is not None:
            st = [status] if isinstance(status, str) else list(status)
            for s in st:
                if s not in STATUSES:
                    raise StoreError(f"status: must be one of {STATUSES}, got {s!r}")
            where.append(f"status IN ({','.join('?' * len(st))})")
            params += st
        sql = f"SELECT {', '.join(_RUN_COLS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        df = self._df(sql + " ORDER BY created, rowid", params)
        df["config"] = [json.loads(c) for c in df["config"]]
        if expand_config and len(df):
            flat = pd.json_normalize(df["config"].tolist()).add_prefix("cfg.")
            df = pd.concat([df.reset_index(drop=True), flat], axis=1)
        return df

    def set_status(self, run_id: str, status: str, *, error: str | None = None) -> None:
        """Set a run's status (``finished``, ``diverged``, ``failed`` also stamp the end time)."""
        if status not in STATUSES:
            raise StoreError(f"status: must be one of {STATUSES}, got {status!r}")
        self._require(run_id)
        now = time.time()
        done = now if status != "running" else None
        self._tx("UPDATE runs SET status=?, updated=?, finished=?, error=COALESCE(?, error) WHERE id=?",
                 (status, now, done, error, run_id))

    def update_config(self, run_id: str, config: Mapping) -> None:
        self._require(run_id)
        self._tx("UPDATE runs SET config=?, updated=? WHERE id=?", (_check_config(config), time.time(), run_id))

    def delete_run(self, run_id: str) -> None:
        """Delete a run with its metrics and artifact records (not the artifact files)."""
        self._require(run_id)
        with self._write() as conn:
            for table, col in (("metrics", "run"), ("metric_blocks", "run"), ("artifacts", "run"), ("run_notes", "run"),
                               ("run_forks", "run"), ("runs", "id")):
                conn.execute(f"DELETE FROM {table} WHERE {col}=?", (run_id,))
            conn.execute(_BUMP_GENERATION)

    def set_fork(self, run_id: str, parent_run: str, fork_step: int) -> None:
        """Record that ``run_id`` branched from ``parent_run``'s state at step ``fork_step`` (a cooldown fork;
        written before the fork's runs start, so ``run_id`` need not exist yet)."""
        if not isinstance(run_id, str) or not run_id.strip():
            raise StoreError(f"run_id: must be a non-empty string, got {run_id!r}")
        self._require(parent_run)
        if isinstance(fork_step, bool) or not isinstance(fork_step, int) or not 0 <= fork_step <= MAX_INT:
            raise StoreError(f"fork_step: must be an integer in [0, {MAX_INT}], got {fork_step!r}")
        self._tx("INSERT OR REPLACE INTO run_forks (run, parent_run, fork_step) VALUES (?,?,?)",
                 (run_id, parent_run, int(fork_step)))

    def forks(self, parent_run: str | None = None) -> pd.DataFrame:
        """Fork links (columns ``run``, ``parent_run``, ``fork_step``), all or those of one parent."""
        sql, params = "SELECT run, parent_run, fork_step FROM run_forks", ()
        if parent_run is not None:
            sql, params = sql + " WHERE parent_run=?", (parent_run,)
        return self._df(sql + " ORDER BY rowid", params)

    def mark_interrupted(self) -> list[str]:
        """Mark ``running`` runs of this host whose writing process is gone as ``interrupted``."""
        host = socket.gethostname()
        rows = self._query("SELECT id, pid, pid_start FROM runs WHERE status='running' AND host=?", (host,))
        dead = [rid for rid, pid, start in rows if pid is None or not _alive(int(pid), start)]
        if dead:
            now = time.time()
            self._tx("UPDATE runs SET status='interrupted', updated=?, finished=? WHERE id=? AND status='running'",
                     [(now, now, rid) for rid in dead], many=True)
        return dead

    # ------------------------------------------------------------------ tags and notes
    def set_tags(self, run_id: str, tags: str | Sequence[str]) -> list[str]:
        """Replace a run's tags (a list, or one comma-separated string); returns them cleaned (stripped,
        duplicates dropped, order kept). A tag is 1-64 characters without a comma."""
        self._require(run_id)
        clean = clean_tags(tags)
        self._tx("INSERT INTO run_notes (run, tags, updated) VALUES (?,?,?) ON CONFLICT(run) DO UPDATE SET "
                 "tags=excluded.tags, updated=excluded.updated", (run_id, json.dumps(clean), time.time()))
        return clean

    def set_note(self, run_id: str, note: str) -> None:
        """Replace a run's free-text note (at most 20,000 characters; empty clears it)."""
        self._require(run_id)
        check_note(note)
        self._tx("INSERT INTO run_notes (run, note, updated) VALUES (?,?,?) ON CONFLICT(run) DO UPDATE SET "
                 "note=excluded.note, updated=excluded.updated", (run_id, note, time.time()))

    def annotations(self, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Tags (list) and note of runs that have any: columns ``run, tags, note``."""
        sql, params = "SELECT run, tags, note FROM run_notes", list(run_ids or [])
        if run_ids is not None:
            sql += f" WHERE run IN ({','.join('?' * len(params))})"
        df = self._df(sql + " ORDER BY run", params)
        df["tags"] = [json.loads(t) for t in df["tags"]]
        return df

    # ------------------------------------------------------------------ metrics
    def log(self, run_id: str, step: int, metrics: Mapping[str, float], *, tokens: int | None = None,
            wall: float | None = None) -> None:
        """Write one step's metrics in one transaction (use :meth:`writer` for many steps)."""
        self.log_rows(run_id, self._rows(step, metrics, tokens, wall))

    @staticmethod
    def _rows(step: int, metrics: Mapping[str, float], tokens: int | None, wall: float | None) -> list[tuple]:
        if isinstance(step, bool) or not isinstance(step, (int,)) and not hasattr(step, "__index__"):
            raise StoreError(f"step: must be an integer >= 0, got {step!r}")
        step = int(step)
        if not 0 <= step <= MAX_INT:
            raise StoreError(f"step: must be an integer in [0, 2**63 - 1], got {step}")
        if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, (int, float, np.number))
                                   or not (math.isfinite(tokens) and tokens == int(tokens) and 0 <= tokens <= MAX_INT)):
            raise StoreError(f"tokens: must be None or an integer in [0, 2**63 - 1], got {tokens!r}")
        if not isinstance(metrics, Mapping) or not metrics:
            raise StoreError("metrics: must be a non-empty mapping of metric name -> value")
        wall = time.time() if wall is None else float(wall)
        tok = None if tokens is None else int(tokens)
        out = []
        for name, value in metrics.items():
            if not isinstance(name, str) or not name:
                raise StoreError(f"metric name: must be a non-empty string, got {name!r}")
            v, flag = _encode(name, value)
            out.append((step, tok, wall, name, v, flag))
        return out

    def log_rows(self, run_id: str, rows: Sequence[tuple]) -> None:
        """Write pre-encoded rows ``(step, tokens, wall, name, value, flag)`` of one run in one transaction."""
        self._require(run_id)
        self._insert([(run_id, *r) for r in rows])

    def _insert(self, rows: Sequence[tuple] | MetricColumns) -> None:
        """One transaction: encoded rows ``(run, step, tokens, wall, name, value, flag)`` of any runs
        (tuples, or :class:`MetricColumns`), and the ``updated`` stamp of those runs."""
        if not len(rows):
            return
        now = time.time()
        c = MetricColumns.of(rows)
        blocks, m = _block_rows(c), c.matrix()   # before taking the write lock
        with self._write() as conn:
            _insert_matrix(conn, f"INSERT INTO metrics ({_METRIC_COLUMNS})", m)
            _insert_matrix(conn, f"INSERT INTO metric_blocks ({_BLOCK_COLUMNS})", blocks, _BLOCK_UPSERT_TAIL)
            conn.executemany("UPDATE runs SET updated=? WHERE id=?", [(now, r) for r in pd.unique(c.run)])

    def log_many(self, rows: Sequence[tuple]) -> None:
        """Write rows ``(run, step, tokens, wall, name, value)`` of any runs in one transaction."""
        enc = []
        runs = set()
        for run, step, tokens, wall, name, value in rows:
            v, flag = _encode(name, value)
            runs.add(run)
            enc.append((run, int(step), None if tokens is None else int(tokens), wall, name, v, flag))
        for r in runs:
            self._require(r)
        self._insert(enc)

    def delete_metrics(self, run_ids: str | Sequence[str], *, from_step: int = 0) -> int:
        """Delete the metric rows of these runs at ``from_step`` or later, in one transaction (a run
        resumed from a checkpoint at that step logs them again). Returns how many rows went."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        for r in ids:
            self._require(r)
        if not ids:
            return 0
        if int(from_step) < 0:
            raise StoreError(f"from_step: must be an integer >= 0, got {from_step}")
        with self._write() as conn:
            cur = conn.execute(f"DELETE FROM metrics WHERE run IN ({','.join('?' * len(ids))}) AND step >= ?",
                               (*ids, int(from_step)))
            _rebuild_blocks(conn, ids)
        return int(cur.rowcount or 0)

    def writer(self, run_id: str | Sequence[str] | None = None, *, every_rows: int = 2000,
               every_seconds: float = 0.25) -> MetricWriter:
        """A buffered writer: one transaction every ``every_rows`` rows or ``every_seconds`` seconds,
        whichever comes first, and on ``flush`` / ``close``. Give one run id (``log(step, metrics)``),
        or several / none and name the run in each call (``log(step, metrics, run=rid)``): a batched
        stack of N members writes all N in one transaction."""
        ids = [] if run_id is None else [run_id] if isinstance(run_id, str) else list(run_id)
        for r in ids:
            self._require(r)
        return MetricWriter(self, run_id if isinstance(run_id, str) else None, every_rows=every_rows,
                            every_seconds=every_seconds)

    def _metric_df(self, where: str, params: Sequence) -> pd.DataFrame:
        df = self._df("SELECT id, run, step, tokens, wall, name, value, flag FROM metrics WHERE "
                      + where + " ORDER BY id", params)
        if len(df) and df["flag"].notna().any():
            m = df["flag"].notna()
            df.loc[m, "value"] = df.loc[m, "flag"].map(FLAG_VALUES)
        df["value"] = df["value"].astype(float)
        return df.drop(columns="flag")

    def metrics(self, runs: str | Sequence[str], names: str | Sequence[str] | None = None, *,
                since: int = 0, wide: bool = False) -> pd.DataFrame:
        """Metrics of one or many runs. Long form: one row per (run, step, name) with columns
        ``id, run, step, tokens, wall, name, value``; ``wide=True`` pivots to one row per (run, step)
        and one column per metric."""
        run_ids = [runs] if isinstance(runs, str) else list(runs)
        for r in run_ids:
            self._require(r)
        where = [f"run IN ({','.join('?' * len(run_ids))})", "id > ?"]
        params: list = [*run_ids, int(since)]
        if names is not None:
            nm = [names] if isinstance(names, str) else list(names)
            where.append(f"name IN ({','.join('?' * len(nm))})")
            params += nm
        df = self._metric_df(" AND ".join(where), params)
        return to_wide(df) if wide else df

    def series(self, run_id: str, name: str, steps: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
        """One metric of one run as float arrays ``id, step, tokens, wall, value`` in commit order (NaN for
        missing tokens; flagged values decoded), optionally only the rows with ``steps[0] <= step <= steps[1]``.
        The fast path for plotting long curves: numeric columns only, read through the (run, name, step)
        index (a step range reads only its rows: O(rows returned), whatever the store holds), no DataFrame
        of repeated strings."""
        self._require(run_id)
        rng, params = "", [run_id, name]
        if steps is not None:
            lo, hi = steps
            rng, params = " AND step >= ? AND step <= ?", [*params, int(math.floor(lo)), int(math.ceil(hi))]
        rows = self._query("SELECT id, step, COALESCE(tokens, 'nan'), wall, COALESCE(value, flag) FROM metrics "
                           "WHERE run = ? AND name = ?" + rng + " ORDER BY id", params)
        cols = ("id", "step", "tokens", "wall", "value")
        if not rows:
            return {c: np.empty(0) for c in cols}
        a = np.array(rows, dtype=np.float64)  # numpy parses the flags 'nan', 'inf', '-inf' (the FLAG_VALUES keys)
        return {c: a[:, i] for i, c in enumerate(cols)}

    def series_ends(self, run_ids: Sequence[str], names: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per metric series of these runs (only ``names``, if given): ``run, name, n`` (rows),
        ``lo, hi`` (the smallest and largest finite value, NaN when it has none), ``first_step, first_wall``
        (its row at the lowest step) and ``last_step, last_wall, last_value`` (its row at the highest step,
        the latest committed of that step; a flagged value decoded, e.g. NaN for a diverged loss).

        The cost depends on the number of series, not of rows: ``n``/``lo``/``hi`` come from the block
        summaries (``metric_blocks``, ~1/128 of the rows), the two ends from one index lookup each. The runs
        table and the sweep board read this: on the monitor bench's store (256 runs x 10^5 steps) the runs
        table's two GROUP BY queries over the metric rows took 19.7 s, this 0.06 s. One snapshot."""
        ids = list(run_ids)
        cols = ["run", "name", "n", "lo", "hi", "first_step", "first_wall", "last_step", "last_wall", "last_value"]
        nm = None if names is None else list(names)
        if not ids or nm == []:
            return pd.DataFrame(columns=cols)
        where, params = f"run IN ({','.join('?' * len(ids))})", list(ids)
        if nm is not None:
            where += f" AND name IN ({','.join('?' * len(nm))})"
            params += nm
        out = []
        with self._snapshot() as q:
            agg = q(f"SELECT run, name, SUM(n), MIN(lo), MAX(hi) FROM metric_blocks WHERE {where} "
                    "GROUP BY run, name ORDER BY run, name", params).fetchall()
            for run, name, n, lo, hi in agg:
                ends = self._ends(q, run, name)
                if ends is None:  # blocks without rows cannot happen; skip, never guess
                    continue
                (first_step, first_wall), (last_step, _, last_wall, value) = ends
                out.append((run, name, int(n), lo, hi, first_step, first_wall, last_step, last_wall, value))
        df = pd.DataFrame(out, columns=cols)
        for c in ("lo", "hi", "first_wall", "last_wall", "last_value"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
        return df

    def overview(self, pairs: Sequence[tuple[str, str]], max_buckets: int = 700, *,
                 cache: bool = True) -> tuple[dict, int]:
        """Min/max summaries of many series for a first paint, and the cursor they are complete up to.

        For each ``(run, name)``: ``{"width", "b", "cols", "last", "first_wall", "n"}`` in the layout of
        :class:`workbench.curves.MinMaxBuckets` (``from_buckets``), at the smallest power-of-two width
        (``>= 128`` steps, from ``metric_blocks``) that gives at most ``max_buckets`` buckets; a series of
        at most ``4 * max_buckets`` rows, or spanning fewer than ``max_buckets / 8`` blocks, comes as its rows. The cost depends on the number of
        buckets, not of rows: one index range per series, no scan of the metric rows. All series and the
        cursor are read in one snapshot, so ``tail(since=cursor)`` continues every summary exactly.

        ``cache``: reuse the complete buckets an earlier read of the same series left in
        :mod:`workbench.summary_cache` (this process, any ``RunStore`` on the same file), after checking that
        nothing rewrote or added to them, and read only the newer blocks; the result is the same as with
        ``cache=False``. ``bench/overview_bench.py``: 256 series of 10^5 rows, 0.39 s -> 0.076 s (5.2x) a read."""
        from workbench.curves import BUCKET_COLS

        if isinstance(max_buckets, bool) or not isinstance(max_buckets, int) or max_buckets < 2:
            raise StoreError(f"max_buckets: must be an integer >= 2, got {max_buckets!r}")
        out: dict[tuple[str, str], dict] = {}
        uid = self._store_uid() if cache else ""
        with self._snapshot() as q:
            cursor = int(q("SELECT COALESCE(MAX(id), 0) FROM metrics").fetchone()[0])
            gen = q("SELECT value FROM store_meta WHERE key = 'blocks_generation'").fetchone()
            gen = gen[0] if gen else "0"
            for run, name in pairs:
                out[(run, name)] = self._overview_one(run, name, max_buckets, BUCKET_COLS, uid, gen)
        return out, cursor

    def _store_uid(self) -> str:
        """This store's identity for :mod:`workbench.summary_cache`: ``store_meta.store_uid`` (written on
        first use) and the file's path; "" (no caching) for an in-memory store or a read-only one without a uid."""
        if self._uid is None and str(self.path) == ":memory:":
            self._uid = ""
        if self._uid is None:
            row = self._query("SELECT value FROM store_meta WHERE key = 'store_uid'")
            if not row and not self.readonly:
                with self._write() as conn:
                    conn.execute("INSERT OR IGNORE INTO store_meta (key, value) VALUES ('store_uid', ?)",
                                 (uuid.uuid4().hex,))
                row = self._query("SELECT value FROM store_meta WHERE key = 'store_uid'")
            # with the file's path: a copy of the store file (the same uid) keeps entries of its own
            self._uid = f"{row[0][0]}:{Path(self.path).resolve()}" if row else ""
        return self._uid

    def _overview_one(self, run: str, name: str, max_buckets: int, cols: Sequence[str], uid: str = "",
                      gen: str = "0") -> dict:
        from workbench.summary_cache import CACHE, Entry

        q = self._conn.execute
        n, b0, b1 = q("SELECT SUM(n), MIN(block), MAX(block) FROM metric_blocks WHERE run=? AND name=?",
                      (run, name)).fetchone()
        if not n and q("SELECT 1 FROM metrics WHERE run=? AND name=? LIMIT 1", (run, name)).fetchone():
            n, b0, b1 = 1, 0, 0  # rows without block summaries (imported before import_file kept them): the rows
        if not n:
            return {"width": 1, "b": np.empty(0, np.int64), "cols": {c: np.empty(0) for c in cols}, "last": None,
                    "first_wall": math.nan, "n": 0}
        (_, first_wall), last = self._ends(q, run, name)
        res = {"last": tuple(float(v) for v in last), "first_wall": first_wall, "n": int(n)}
        if n <= 4 * max_buckets or b1 - b0 + 1 < max_buckets // 8:  # short: blocks would be too coarse
            rows = q("SELECT step, COALESCE(tokens, 'nan'), COALESCE(wall, 'nan'), COALESCE(value, flag) "
                     "FROM metrics WHERE run=? AND name=? ORDER BY id", (run, name)).fetchall()
            a = np.array(rows, dtype=np.float64)
            return {**res, "n": len(a), "rows": {"step": a[:, 0], "tokens": a[:, 1], "wall": a[:, 2], "value": a[:, 3]}}
        k = 0
        while (b1 >> k) - (b0 >> k) + 1 > max_buckets:
            k += 1
        few = b1 - b0 + 1 <= 2 * max_buckets  # few blocks: read them as they are and merge here
        key = (uid, run, name, k, few) if uid else None
        split = (b1 >> k) << k  # the first block of the newest bucket, the one that may still change
        e = CACHE.get(key) if key else None
        if e is not None and (e.generation != gen or e.b0 != b0 or e.split > split
                              or tuple(q(_CACHED_PART, (run, name, e.split)).fetchone()) != (e.n, e.total)):
            CACHE.drop(key)
            e = None
        b, c = self._buckets(run, name, k, few, b0 if e is None else e.split)
        if e is not None:
            b, c = np.concatenate([e.b, b]), {col: np.concatenate([e.cols[col], v]) for col, v in c.items()}
        if key and (e is None or split > e.split):
            done = b < (split >> k)
            n_done, total = q(_CACHED_PART, (run, name, split)).fetchone()
            CACHE.put(key, Entry(gen, int(b0), int(split), n_done, total, b[done], {col: v[done] for col, v in c.items()}))
        return {**res, "width": 2 ** (BLOCK_BITS + k), "b": b, "cols": c}

    def _buckets(self, run: str, name: str, k: int, few: bool, from_block: int) -> tuple[np.ndarray, dict]:
        """The min/max buckets of width ``2**k`` blocks of one series, from its blocks ``>= from_block`` (a
        bucket boundary): merged here from the blocks as they are (``few``), or grouped in SQL."""
        q = self._conn.execute
        if few:
            from workbench.curves import _reduce_buckets

            # NULL comes as None, which numpy reads as NaN (a third cheaper than COALESCE(x, 'nan') strings)
            a = np.array(q("SELECT block, n, k, sum, nf_step, lo, lo_step, lo_tokens, lo_wall, hi, hi_step, hi_tokens, "
                           "hi_wall FROM metric_blocks WHERE run=? AND name=? AND block >= ? ORDER BY block",
                           (run, name, from_block)).fetchall(), dtype=np.float64).reshape(-1, 13)
            names = ("n", "k", "sum", "nf_step", "lo", "lo_step", "lo_tokens", "lo_wall", "hi", "hi_step",
                     "hi_tokens", "hi_wall")
            return _reduce_buckets(a[:, 0].astype(np.int64) >> k, {c: a[:, j] for j, c in enumerate(names, 1)})
        sql_n = ("SELECT block >> ?3, SUM(n), SUM(k), TOTAL(sum), MIN(nf_step) FROM metric_blocks "
                 "WHERE run=?1 AND name=?2 AND block >= ?4 GROUP BY block >> ?3 ORDER BY 1")
        a = np.array(q(sql_n, (run, name, k, from_block)).fetchall(), dtype=np.float64).reshape(-1, 5)
        b = a[:, 0].astype(np.int64)
        c = {"n": a[:, 1], "k": a[:, 2], "sum": a[:, 3], "nf_step": a[:, 4]}
        for side, agg in (("lo", "MIN"), ("hi", "MAX")):
            rows = q(f"SELECT block >> ?3, {agg}({side}), {side}_step, {side}_tokens, "
                     f"{side}_wall FROM metric_blocks WHERE run=?1 AND name=?2 AND block >= ?4 AND {side} IS NOT NULL "
                     "GROUP BY block >> ?3 ORDER BY 1", (run, name, k, from_block)).fetchall()
            s = np.array(rows, dtype=np.float64).reshape(-1, 5)
            pos = np.searchsorted(b, s[:, 0].astype(np.int64))
            for j, col in enumerate(("", "_step", "_tokens", "_wall"), start=1):
                full = np.full(b.size, np.nan)
                full[pos] = s[:, j]
                c[side + col] = full
        return b, c

    def sweep_metrics(self, sweep: str, names: str | Sequence[str] | None = None, *, wide: bool = False) -> pd.DataFrame:
        ids = self.runs(sweep=sweep)["id"].tolist()
        if not ids:
            raise StoreError(f"sweep {sweep!r}: no runs")
        return self.metrics(ids, names, wide=wide)

    def tail(self, since: int = 0, *, runs: Sequence[str] | None = None, names: Sequence[str] | None = None,
             limit: int | None = None) -> tuple[pd.DataFrame, int]:
        """Rows committed after cursor ``since`` (optionally of some runs / metrics), and the new cursor.
        Never blocks a writer (WAL). Start with ``since=0``, or ``since=store.cursor()`` for new rows only."""
        where, params = ["id > ?"], [int(since)]
        if runs is not None:
            runs = list(runs)
            where.append(f"run IN ({','.join('?' * len(runs))})")
            params += runs
        if names is not None:
            names = list(names)
            where.append(f"name IN ({','.join('?' * len(names))})")
            params += names
        sql = " AND ".join(where)
        if limit is not None:
            sql += f" ORDER BY id LIMIT {int(limit)}"
            df = self._df("SELECT id, run, step, tokens, wall, name, value, flag FROM metrics WHERE " + sql, params)
            if len(df) and df["flag"].notna().any():
                m = df["flag"].notna()
                df.loc[m, "value"] = df.loc[m, "flag"].map(FLAG_VALUES)
            df = df.drop(columns="flag")
        else:
            df = self._metric_df(sql, params)
        cursor = int(df["id"].max()) if len(df) else int(since)
        return df, cursor

    def cursor(self) -> int:
        """The id of the newest metric row (0 if none)."""
        return int(self._query("SELECT COALESCE(MAX(id), 0) FROM metrics")[0][0])

    def metric_names(self, run_id: str | None = None) -> list[str]:
        if run_id is None:
            return [r[0] for r in self._query("SELECT DISTINCT name FROM metrics ORDER BY name")]
        self._require(run_id)
        # skip-scan of the (run, name, step) index: one lookup per distinct name, not one per row
        sql = ("WITH RECURSIVE n(name) AS (SELECT MIN(name) FROM metrics WHERE run=?1 UNION ALL "
               "SELECT (SELECT MIN(name) FROM metrics WHERE run=?1 AND name > n.name) FROM n "
               "WHERE n.name IS NOT NULL) SELECT name FROM n WHERE name IS NOT NULL")
        return [r[0] for r in self._query(sql, (run_id,))]

    # ------------------------------------------------------------------ artifacts
    def add_artifact(self, run_id: str | None, kind: str, path: str | os.PathLike, meta: Mapping | None = None) -> int:
        """Record an artifact (checkpoint, figure, fit) of a run (or of no run: ``run_id=None``)."""
        if run_id is not None:
            self._require(run_id)
        if not kind:
            raise StoreError("kind: must be a non-empty string such as 'checkpoint' or 'figure'")
        cur = self._tx("INSERT INTO artifacts (run, kind, path, meta, created) VALUES (?,?,?,?,?)",
                       (run_id, kind, str(path), _check_config(meta), time.time()))
        return int(cur.lastrowid)

    def artifacts(self, run_id: str | None = None, kind: str | None = None) -> pd.DataFrame:
        where, params = [], []
        if run_id is not None:
            self._require(run_id)
            where.append("run=?")
            params.append(run_id)
        if kind is not None:
            where.append("kind=?")
            params.append(kind)
        sql = "SELECT id, run, kind, path, meta, created FROM artifacts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        df = self._df(sql + " ORDER BY id", params)
        df["meta"] = [json.loads(m) for m in df["meta"]]
        return df

    # ------------------------------------------------------------------ sweeps
    def create_sweep(self, name: str, spec: Mapping | None = None, *, sweep_id: str | None = None) -> str:
        sid = sweep_id or "sw-" + uuid.uuid4().hex[:10]
        now = time.time()
        try:
            self._tx("INSERT INTO sweeps (id, name, spec, status, created, updated) VALUES (?,?,?,?,?,?)",
                     (sid, name, _check_config(spec), "running", now, now))
        except sqlite3.IntegrityError:
            raise StoreError(f"sweep_id: {sid!r} already exists") from None
        return sid

    def get_sweep(self, sweep_id: str) -> dict:
        df = self._df("SELECT id, name, spec, status, created, updated FROM sweeps WHERE id=?", (sweep_id,))
        if df.empty:
            raise UnknownRunError(f"sweep {sweep_id!r}: no such sweep in {self.path}")
        rec = df.iloc[0].to_dict()
        rec["spec"] = json.loads(rec["spec"])
        return rec

    def set_sweep_status(self, sweep_id: str, status: str) -> None:
        self.get_sweep(sweep_id)
        self._tx("UPDATE sweeps SET status=?, updated=? WHERE id=?", (status, time.time(), sweep_id))

    def add_sweep_members(self, sweep_id: str, members: Iterable[Mapping]) -> None:
        """Record members of a sweep (``index``, ``trial``, ``seed``, ``params``, ``config``, ``run_id``);
        a member already recorded is kept as it is (a member has one identity for the sweep's life)."""
        self.get_sweep(sweep_id)
        rows = [(sweep_id, int(m["index"]), None if m.get("trial") is None else int(m["trial"]), int(m["seed"]),
                 _check_config(m.get("params") or {}), _check_config(m.get("config") or {}), str(m["run_id"]))
                for m in members]
        self._tx("INSERT OR IGNORE INTO sweep_members (sweep, idx, trial, seed, params, config, run_id) "
                 "VALUES (?,?,?,?,?,?,?)", rows, many=True)

    def sweep_member_table(self, sweep_id: str) -> pd.DataFrame:
        """The recorded members of a sweep, by index: index, trial, seed, params, config, run_id."""
        df = self._df("SELECT idx AS 'index', trial, seed, params, config, run_id FROM sweep_members "
                      "WHERE sweep=? ORDER BY idx", (sweep_id,))
        for c in ("params", "config"):
            df[c] = [json.loads(v) for v in df[c]]
        return df

    def add_sweep_decision(self, sweep_id: str, decision: Mapping) -> None:
        """Record the pruning decision of one trial (:data:`DECISION_COLUMNS`); a later one replaces it."""
        self.get_sweep(sweep_id)
        self._tx(_INSERT_DECISION, (sweep_id, *_decision_row(decision)))

    def sweep_decisions(self, sweep_id: str) -> pd.DataFrame:
        """The pruning decisions of a sweep, by trial (:data:`DECISION_COLUMNS`)."""
        df = self._df("SELECT trial, pruned, prob, best, step, value, reason FROM sweep_decisions "
                      "WHERE sweep=? ORDER BY trial", (sweep_id,))
        df["pruned"] = df["pruned"].astype(bool)
        for k in ("prob", "best", "step", "value"):
            df[k] = pd.to_numeric(df[k], errors="coerce").astype(float)
        return df

    def sweeps(self) -> pd.DataFrame:
        df = self._df("SELECT id, name, spec, status, created, updated FROM sweeps ORDER BY created")
        df["spec"] = [json.loads(s) for s in df["spec"]]
        return df

    # ------------------------------------------------------------------ export / import
    def run_ids(self, sweep: str | None = None) -> list[str]:
        """Ids of all runs, or of one sweep's runs (a sweep without runs is an error naming it)."""
        runs = self.runs(sweep=sweep)["id"].tolist()
        if sweep is not None and not runs:
            known = self.sweeps()["id"].tolist()
            raise StoreError(f"sweep: {sweep!r} has no runs in {self.path}"
                             + (f" (sweeps: {', '.join(known[:10])})" if known else " (the store has no sweeps)"))
        return runs

    def export(self, path: str | os.PathLike, runs: Sequence[str] | None = None, *, sweep: str | None = None,
               names: Sequence[str] | None = None) -> Path:
        """Write runs and their metrics to one CSV or Parquet file (by extension): long form, one row
        per metric value, with the run's record in ``run_*`` columns (its tags as a JSON list in
        ``run_tags`` and its note in ``run_note``) so :meth:`import_file` can rebuild them exactly. A run
        with no metrics still gets one row (with an empty metric)."""
        path = Path(path)
        _format_of(path)  # before any work: a wrong extension fails first
        runs = self.run_ids(sweep) if runs is None else list(runs)
        meta = self.runs()
        meta = meta[meta["id"].isin(runs)]
        missing = set(runs) - set(meta["id"])
        if missing:
            raise UnknownRunError(f"run {sorted(missing)[0]!r}: no such run in {self.path}")
        m = self.metrics(runs, names) if runs else pd.DataFrame(columns=_METRIC_COLS)
        m = m.drop(columns="id")
        rec = meta.drop(columns=["pid"]).rename(columns=lambda c: "run_" + c)
        rec["run_config"] = [json.dumps(c, sort_keys=True) for c in rec["run_config"]]
        ann = self.annotations(runs).set_index("run") if runs else pd.DataFrame(columns=["tags", "note"])
        rec["run_tags"] = [json.dumps(ann["tags"].get(r, [])) for r in rec["run_id"]]
        rec["run_note"] = [ann["note"].get(r, "") for r in rec["run_id"]]
        out = rec.merge(m, left_on="run_id", right_on="run", how="left").drop(columns="run")
        write_table(out, path)
        return path

    def import_file(self, path: str | os.PathLike, *, on_conflict: str = "error") -> list[str]:
        """Read a file written by :meth:`export` (CSV or Parquet) back into this store. ``on_conflict``:
        ``error`` (default), ``skip`` (keep the stored run) or ``replace``. Returns the run ids imported.

        Validated like the API (ids non-empty, status one of :data:`STATUSES`, steps integers in
        [0, 2**63 - 1], tokens empty or such integers, values real numbers, config a JSON object, tags a
        JSON list of tags, note a text) before anything is written, then written in ONE transaction: a bad
        row leaves the store unchanged. A file with ``run_tags`` / ``run_note`` columns sets the runs'
        tags and notes (a replaced run's are replaced); a file without them leaves them as they are."""
        if on_conflict not in ("error", "skip", "replace"):
            raise StoreError(f"on_conflict: must be 'error', 'skip' or 'replace', got {on_conflict!r}")
        path = Path(path)
        fmt = _format_of(path)
        if not path.is_file():
            raise StoreError(f"path: {path} {'is a directory' if path.is_dir() else 'does not exist'}")
        try:
            df = (pd.read_csv(path, keep_default_na=True, dtype={"run_id": str, "run_name": str, "name": str})
                  if fmt == "csv" else pd.read_parquet(path))
        except (OSError, ValueError, ImportError) as e:
            raise StoreError(f"{path}: cannot read it as {fmt} ({e})") from None
        need = {"run_id", "run_name", "run_status", "run_config", "step", "name", "value"}
        if not need <= set(df.columns):
            raise StoreError(f"{path}: not a workbench export (missing columns {sorted(need - set(df.columns))})")
        runs, metrics, notes = _validate_import(df, path)
        self._require_writable()
        imported = []
        with self._write() as conn:
            for rec in runs:
                rid = rec[0]
                exists = conn.execute("SELECT 1 FROM runs WHERE id=?", (rid,)).fetchone() is not None
                if exists and on_conflict == "error":
                    raise StoreError(f"run_id: {rid!r} already exists in {self.path} "
                                     "(use on_conflict='skip' or 'replace')")
                if exists and on_conflict == "skip":
                    continue
                if exists:
                    for table, col in (("metrics", "run"), ("artifacts", "run"), ("runs", "id")):
                        conn.execute(f"DELETE FROM {table} WHERE {col}=?", (rid,))
                conn.execute("INSERT INTO runs (id, name, sweep, task, config, status, device, created, updated,"
                             " finished, version, host, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rec)
                rows = metrics.get(rid, [])
                conn.executemany("INSERT INTO metrics (run, step, tokens, wall, name, value, flag)"
                                 " VALUES (?,?,?,?,?,?,?)", rows)
                if rid in notes:
                    tags, note = notes[rid]
                    conn.execute("DELETE FROM run_notes WHERE run=?", (rid,))
                    if tags or note:
                        conn.execute("INSERT INTO run_notes (run, tags, note, updated) VALUES (?,?,?,?)",
                                     (rid, json.dumps(tags), note, time.time()))
                imported.append(rid)
            _rebuild_blocks(conn, imported)  # the monitor's summaries of the imported (or replaced) runs
        return imported

    def _require_writable(self) -> None:
        if self.readonly:
            with self._write():
                pass


def clean_tags(tags: str | Sequence[str]) -> list[str]:
    """Tags (a list, or one comma-separated string) stripped, duplicates dropped, order kept; a tag is
    1-64 characters without a comma (else a StoreError naming ``tags``)."""
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    clean: list[str] = []
    for t in items:
        if not isinstance(t, str):
            raise StoreError(f"tags: each tag must be a string, got {t!r}")
        t = t.strip()
        if not t:
            continue
        if len(t) > MAX_TAG_LEN or "," in t:
            raise StoreError(f"tags: each tag must be 1-{MAX_TAG_LEN} characters without a comma, got {t[:80]!r}")
        if t not in clean:
            clean.append(t)
    return clean


def check_note(note: object) -> str:
    """A run's note: a string of at most 20,000 characters (else a StoreError naming ``note``)."""
    if not isinstance(note, str):
        raise StoreError(f"note: must be a string, got {type(note).__name__}")
    if len(note) > MAX_NOTE_LEN:
        raise StoreError(f"note: at most {MAX_NOTE_LEN} characters, got {len(note)}")
    return note


def _validate_import(df: pd.DataFrame, path: Path) -> tuple[list[tuple], dict[str, list[tuple]],
                                                            dict[str, tuple[list[str], str]]]:
    """Check every row of an export file and encode it; raise StoreError naming the row and column.
    Returns the runs' records, their metric rows and (where the file has the columns) their tags and note."""
    def bad(i: int, col: str, msg: str, v: Any) -> StoreError:
        return StoreError(f"{path.name} row {i + 2}: {col}: {msg}, got {v!r}")

    def missing(v: Any) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA

    def number(i: int, col: str, v: Any, *, optional: bool = True, whole: bool = False,
               finite: bool = True) -> float | int | None:
        """The one number validator of a cell: ``whole`` an integer in [0, 2**63 - 1] (steps, tokens), else a
        real number, finite unless ``finite=False`` (metric values keep nan/inf); missing (None, NaN, NA) is
        None when ``optional``, else an error."""
        if finite and missing(v):
            if optional:
                return None
            raise bad(i, col, "required", v)
        what = ("an integer in [0, 2**63 - 1]" if whole
                else "a real number" + ("" if finite else " (nan and inf allowed)"))
        try:
            if isinstance(v, bool):
                raise TypeError
            f = float(v)
        except (TypeError, ValueError):
            raise bad(i, col, f"must be {what}", v) from None
        if whole:
            if not (math.isfinite(f) and f.is_integer() and 0 <= f <= MAX_INT):
                raise bad(i, col, f"must be {what}", v)
            return int(v) if isinstance(v, (int, np.integer)) else int(f)
        if finite and not math.isfinite(f):
            raise bad(i, col, "must be a finite number", v)
        return f

    def text(i: int, col: str, v: Any, default: str | None) -> str | None:
        if missing(v):
            return default
        return str(v)

    runs: list[tuple] = []
    metrics: dict[str, list[tuple]] = {}
    notes: dict[str, tuple[list[str], str]] = {}
    seen: set[str] = set()
    cols = list(df.columns)
    annotated = "run_tags" in cols or "run_note" in cols
    for i, row in enumerate(df.itertuples(index=False, name=None)):
        r = dict(zip(cols, row))
        rid = r["run_id"]
        if missing(rid) or not str(rid).strip():
            raise bad(i, "run_id", "must be a non-empty run id", rid)
        rid = str(rid)
        if rid not in seen:
            seen.add(rid)
            status = r["run_status"]
            if status not in STATUSES:
                raise bad(i, "run_status", f"must be one of {STATUSES}", status)
            try:
                cfg = json.loads(r["run_config"]) if not missing(r["run_config"]) else {}
            except (TypeError, ValueError):
                raise bad(i, "run_config", "must be a JSON object", r["run_config"]) from None
            if not isinstance(cfg, dict):
                raise bad(i, "run_config", "must be a JSON object", r["run_config"])
            now = time.time()
            created = number(i, "run_created", r.get("run_created"))
            updated = number(i, "run_updated", r.get("run_updated"))
            runs.append((rid, text(i, "run_name", r["run_name"], rid) or rid, text(i, "run_sweep", r.get("run_sweep"), None),
                         text(i, "run_task", r.get("run_task"), ""), _check_config(cfg), status,
                         text(i, "run_device", r.get("run_device"), "cpu"), now if created is None else created,
                         now if updated is None else updated, number(i, "run_finished", r.get("run_finished")),
                         text(i, "run_version", r.get("run_version"), __version__),
                         text(i, "run_host", r.get("run_host"), None), text(i, "run_error", r.get("run_error"), None)))
            if annotated:
                try:
                    tags = json.loads(r["run_tags"]) if not missing(r.get("run_tags")) else []
                    if not isinstance(tags, list):
                        raise TypeError
                    tags = clean_tags(tags)
                except (TypeError, ValueError):
                    raise bad(i, "run_tags", "must be a JSON list of tags (1-64 characters, no comma)",
                              r.get("run_tags")) from None
                note = text(i, "run_note", r.get("run_note"), "") or ""
                if len(note) > MAX_NOTE_LEN:
                    raise bad(i, "run_note", f"must be at most {MAX_NOTE_LEN} characters", note[:80])
                notes[rid] = (tags, note)
        name = r["name"]
        if missing(name):  # the placeholder row of a run without metrics
            continue
        if not str(name):
            raise bad(i, "name", "must be a non-empty metric name", name)
        step = number(i, "step", r["step"], optional=False, whole=True)
        tokens = number(i, "tokens", r.get("tokens"), whole=True)
        wall = number(i, "wall", r.get("wall"))
        value = number(i, "value", r["value"], optional=False, finite=False)
        enc, flag = _encode(str(name), value)
        metrics.setdefault(rid, []).append((rid, step, tokens, wall, str(name), enc, flag))
    return runs, metrics, notes


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table to ``path`` (.csv or .parquet by extension); a path that cannot be written is a
    StoreError naming it (a directory, no permission, disk full)."""
    path = Path(path)
    fmt = _format_of(path)
    if path.is_dir():
        raise StoreError(f"out: {path} is a directory; give a file name ending in .{fmt}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            df.to_csv(path, index=False)
        else:
            df.to_parquet(path, index=False)
    except OSError as e:
        raise StoreError(f"out: cannot write {path} ({e.strerror or e})") from None
    return path


def _format_of(path: Path) -> str:
    suf = path.suffix.lower()
    if suf == ".csv":
        return "csv"
    if suf in (".parquet", ".pq"):
        return "parquet"
    raise StoreError(f"path: {path.name!r} must end in .csv or .parquet")


def to_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Long metric rows -> one row per (run, step), one column per metric (last value wins)."""
    if long.empty:
        return pd.DataFrame(columns=["run", "step", "tokens", "wall"])
    idx = long.groupby(["run", "step"], sort=True).agg(tokens=("tokens", "max"), wall=("wall", "max"))
    piv = long.pivot_table(index=["run", "step"], columns="name", values="value", aggfunc="last", dropna=False)
    out = idx.join(piv).reset_index()
    out.columns.name = None
    return out


class MetricWriter:
    """Buffers metric rows and commits them in batched transactions.

    Commits when ``every_rows`` rows are buffered or ``every_seconds`` have passed since the last
    commit (checked on each :meth:`log`), on :meth:`flush`, and on :meth:`close` / leaving a ``with``.
    What was committed survives a SIGKILL of the process; what was still buffered does not.
    """

    def __init__(self, store: RunStore, run_id: str | None = None, *, every_rows: int = 2000,
                 every_seconds: float = 0.25) -> None:
        if every_rows < 1:
            raise StoreError(f"every_rows: must be >= 1, got {every_rows}")
        if every_seconds < 0:
            raise StoreError(f"every_seconds: must be >= 0, got {every_seconds}")
        self.store, self.run_id = store, run_id
        self.every_rows, self.every_seconds = every_rows, every_seconds
        self._buf: list[tuple] = []
        self._known: set[str] = {run_id} if run_id else set()
        self._last = time.monotonic()
        self.rows_written = 0

    def log(self, step: int, metrics: Mapping[str, float], *, tokens: int | None = None,
            wall: float | None = None, run: str | None = None) -> None:
        rid = run or self.run_id
        if rid is None:
            raise StoreError("run: this writer serves several runs; name the run in each log call")
        if rid not in self._known:
            self.store._require(rid)
            self._known.add(rid)
        self._buf.extend((rid, *r) for r in RunStore._rows(step, metrics, tokens, wall))
        if len(self._buf) >= self.every_rows or time.monotonic() - self._last >= self.every_seconds:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self.store._insert(self._buf)
            self.rows_written += len(self._buf)
            self._buf = []
        self._last = time.monotonic()

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> MetricWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
