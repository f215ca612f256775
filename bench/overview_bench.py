"""The monitor's first-paint read on a sweep-sized store: ``RunStore.overview`` with its summary cache
(:mod:`workbench.summary_cache`: the complete buckets an earlier read left, checked, plus the newest
blocks) against the same read without it (every block of every series), interleaved, while the runs
grow between measurements as they do under a live writer; both sides' results are checked equal.

The store is the live-monitor bench's (``bench.dashboard_bench.fill``: ``--runs`` runs of ``--points``
train_loss rows). ``max_buckets`` is the monitor's at that many runs (``monitor_series``: 2 points a
bucket, ``PANEL_POINTS`` a panel, at least ``LINE_POINTS_MIN`` a line: 400 buckets at 256 runs). Before
each pair, ``--append`` steps are logged to every run in one transaction. The first cached read (which
fills the cache: the server's warm-up or the first page does it) is timed on its own. Threads are left
as the product leaves them.

    python bench/overview_bench.py                           # 256 runs x 10^5 points (~2 min: fill ~80 s)
    python bench/overview_bench.py --runs 16 --points 20000  # smoke
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Ratio, interleave, md_table, spread  # noqa: E402
from bench.dashboard_bench import fill  # noqa: E402
from workbench.apps.components.monitor_controls import MonitorSettings  # noqa: E402
from workbench.apps.components.monitor_series import LINE_POINTS_MIN, PANEL_POINTS  # noqa: E402
from workbench.store import RunStore  # noqa: E402


def equal(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k]["b"], b[k]["b"]) and a[k]["width"] == b[k]["width"]
               and all(np.array_equal(a[k]["cols"][c], b[k]["cols"][c], equal_nan=True) for c in b[k]["cols"])
               for k in b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=256)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--append", type=int, default=20, help="steps logged to every run before each pair")
    a = ap.parse_args(argv)
    if a.runs < 1 or a.points < 1 or a.reps < 1 or a.append < 0:
        ap.error("--runs, --points and --reps must be >= 1, --append >= 0")
    # the monitor's buckets a line at this many runs (monitor_series.Book._target and .buckets, default settings)
    buckets = min(MonitorSettings.param.max_points.default, max(LINE_POINTS_MIN, PANEL_POINTS // a.runs)) // 2
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as d:
        t = time.time()
        ids = fill(Path(d) / "runs.db", a.runs, a.points)
        print(f"filled {a.runs} runs x {a.points:,} points in {time.time() - t:.1f} s")
        store = RunStore(Path(d) / "runs.db")
        pairs = [(r, "train_loss") for r in ids]
        t0 = time.perf_counter()
        store.overview(pairs, buckets)
        first = time.perf_counter() - t0
        step, got, same = a.points, {}, []

        def grow() -> None:
            nonlocal step
            rows = [(r, s, None, time.time(), "train_loss", 3.0 / (1 + s * 1e-3)) for s in range(step, step + a.append)
                    for r in ids]
            if rows:
                store.log_many(rows)
            step += a.append

        def side(cache: bool) -> float:
            if not cache:
                grow()          # the runs grow before each pair; both sides then read the same store
            t0 = time.perf_counter()
            got[cache] = store.overview(pairs, buckets, cache=cache)[0]
            dt = time.perf_counter() - t0
            if cache:
                same.append(equal(got[True], got[False]))
            return dt

        m = interleave({"every block (no cache)": lambda: side(False), "cached buckets + newest blocks": lambda: side(True)},
                       a.reps)
        store.close()
    (before, b), (after, c) = m.items()
    ok = all(same)
    print(f"\noverview of {a.runs} series x {a.points:,}+ rows at {buckets} buckets, {a.append} steps appended to "
          f"every run before each pair; same result on both sides in every pair: {ok}; "
          f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(md_table(["", "seconds, median (min-max)"],
                   [["first read (fills the cache)", f"{first:.3g}"], [before, spread(b)], [after, spread(c)]]))
    print(f"\nspeed-up (median (min-max) of {a.reps} interleaved pairs): {Ratio.of(b, c)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
