"""The runs table's per-run metric columns (``final.*``, ``best.*``, ``last_step``) on a sweep-sized store:
:func:`workbench.runs_table.final_and_best`, which reads ``RunStore.series_ends`` (block summaries plus one
index lookup per series end), against the two ``GROUP BY`` queries over every metric row it replaced (kept
here, verbatim, as the "before" side and as the check that both give the same values).

The store is the live-monitor bench's (``bench.dashboard_bench.fill``: ``--runs`` runs of ``--points``
train_loss rows, with their block summaries). The two sides are measured alternately ``--reps`` times and
the speed-up is the median (min-max) of the per-pair ratios. Threads are left as the product leaves them.

    python bench/runs_table_bench.py                          # 256 runs x 10^5 points (~2.5 min: fill ~80 s)
    python bench/runs_table_bench.py --runs 16 --points 20000 # smoke
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Ratio, interleave, md_table, spread  # noqa: E402
from bench.dashboard_bench import fill  # noqa: E402
from workbench.runs_table import final_and_best  # noqa: E402
from workbench.store import FLAG_VALUES, RunStore  # noqa: E402


def by_rows(store: RunStore, ids: list[str]) -> dict[str, tuple[float, float, int]]:
    """The replaced queries: ``run -> (final, best (min), last step)`` of train_loss over every row."""
    q = ",".join("?" * len(ids))
    last = store._query(f"SELECT run, name, value, flag, MAX(id) FROM metrics WHERE run IN ({q}) GROUP BY run, name",
                        ids)
    ext = store._query(f"SELECT run, name, MIN(value), MAX(value), MAX(step) FROM metrics WHERE run IN ({q}) "
                       "GROUP BY run, name", ids)
    fin = {r: FLAG_VALUES[f] if f else v for r, n, v, f, _ in last if n == "train_loss"}
    return {r: (fin[r], lo, st) for r, n, lo, _, st in ext if n == "train_loss"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=256)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args(argv)
    if a.runs < 1 or a.points < 1 or a.reps < 1:
        ap.error("--runs, --points and --reps must be >= 1")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as d:
        t = time.time()
        ids = fill(Path(d) / "runs.db", a.runs, a.points)
        print(f"filled {a.runs} runs x {a.points:,} points in {time.time() - t:.1f} s")
        store = RunStore(Path(d) / "runs.db", readonly=True)
        got: dict[str, object] = {}

        def timed(key: str, fn) -> float:
            t0 = time.perf_counter()
            got[key] = fn()
            return time.perf_counter() - t0

        m = interleave({"GROUP BY over every row (before)": lambda: timed("rows", lambda: by_rows(store, ids)),
                        "final_and_best (series_ends)": lambda: timed("ends", lambda: final_and_best(store, ids))},
                       a.reps)
        ref, fb = got["rows"], got["ends"]
        same = all(math.isclose(ref[r][0], fb.at[r, "final.train_loss"]) and math.isclose(ref[r][1], fb.at[r, "best.train_loss"])
                   and ref[r][2] == fb.at[r, "last_step"] for r in ids)
        store.close()
    (before, b), (after, f) = m.items()
    print(f"\nruns table metric columns, {a.runs} runs x {a.points:,} rows; same values on both sides: {same}; "
          f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(md_table(["", "seconds, median (min-max)"], [[before, spread(b)], [after, spread(f)]]))
    print(f"\nspeed-up (median (min-max) of {a.reps} interleaved pairs): {Ratio.of(b, f)}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
