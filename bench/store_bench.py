"""Run-store throughput and reader lag: one writer process logging 64 runs x 10 metrics in batched
transactions while a reader process tails the store with a cursor.

Prints rows written per second (goal >= 50 000) and the reader's lag from a row's commit to the
reader seeing it (goal < 0.5 s), plus the same writer with no reader for the ratio.

    python bench/store_bench.py [--seconds 10] [--runs 64] [--metrics 10]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np


def writer(path: str, runs: int, metrics: int, seconds: float, every_s: float, q: mp.Queue,
           ready: mp.Barrier, done: mp.Event, rate: float | None = None) -> None:
    from workbench.store import RunStore

    store = RunStore(path)
    ids = [store.create_run(f"bench{i}", task="bench") for i in range(runs)]
    names = [f"m{j}" for j in range(metrics)]
    w = store.writer(ids, every_rows=10**9, every_seconds=every_s)
    ready.wait()
    step, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for rid in ids:
            w.log(step, dict(zip(names, np.random.rand(metrics).tolist())), run=rid, tokens=step * 1024)
        step += 1
        if rate is not None:  # pace like a training loop that logs `rate` rows per second
            ahead = step * runs * metrics / rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    w.flush()
    dt = time.perf_counter() - t0
    done.set()
    q.put(("writer", w.rows_written, dt, step))


def reader(path: str, poll_s: float, q: mp.Queue, ready: mp.Barrier, done: mp.Event) -> None:
    from workbench.store import RunStore

    store = RunStore(path, mark_interrupted=False)
    lags, cursor, seen = [], store.cursor(), 0
    ready.wait()
    last = False
    while not last:
        last = done.is_set()
        df, cursor = store.tail(cursor)
        now = time.time()
        if len(df):
            # wall = the time the row was logged (before its batch was committed), so the lag below
            # is batching delay + commit + the reader's poll interval: what a dashboard sees.
            lags.append(now - df["wall"].to_numpy(float).min())
            seen += len(df)
        time.sleep(poll_s)
    q.put(("reader", seen, np.array(lags)))


def run(runs: int, metrics: int, seconds: float, with_reader: bool, every_s: float, poll_s: float,
        rate: float | None = None) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "bench.db")
        from workbench.store import RunStore

        RunStore(path).close()
        q: mp.Queue = mp.Queue()
        ready, done = mp.Barrier(2 if with_reader else 1), mp.Event()
        procs = [mp.Process(target=writer, args=(path, runs, metrics, seconds, every_s, q, ready, done, rate))]
        if with_reader:
            procs.append(mp.Process(target=reader, args=(path, poll_s, q, ready, done)))
        for p in procs:
            p.start()
        out = {}
        for _ in procs:
            msg = q.get()
            out[msg[0]] = msg[1:]
        for p in procs:
            p.join()
    rows, dt, steps = out["writer"]
    res = {"rows": rows, "rows_per_s": rows / dt, "steps": steps}
    if with_reader:
        seen, lags = out["reader"]
        res.update(seen=seen, lag_p50=float(np.percentile(lags, 50)), lag_p95=float(np.percentile(lags, 95)),
                   lag_max=float(lags.max()))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--flush-every", type=float, default=0.1, help="writer commit interval (s)")
    ap.add_argument("--poll", type=float, default=0.05, help="reader poll interval (s)")
    ap.add_argument("--rates", type=float, nargs="+", default=[50_000, 100_000],
                    help="paced writer rates (rows/s) measured with a tailing reader")
    ap.add_argument("--small", action="store_true", help="3 s runs (CI smoke)")
    a = ap.parse_args()
    if a.small:
        a.seconds = 3.0
    alone = run(a.runs, a.metrics, a.seconds, False, a.flush_every, a.poll)
    rows = [("writer alone, unpaced (max)", alone)]
    for rate in a.rates:
        rows.append((f"paced {rate:,.0f}/s + reader", run(a.runs, a.metrics, a.seconds, True, a.flush_every,
                                                            a.poll, rate)))
    print(f"store bench: {a.runs} runs x {a.metrics} metrics, {a.seconds:.0f} s each, commit every "
          f"{a.flush_every} s, reader tails all rows every {a.poll} s")
    print(f"{'case':<32}{'rows/s':>12}{'rows':>12}{'lag p50 s':>11}{'lag p95 s':>11}{'lag max s':>11}")
    for label, r in rows:
        lag = (f"{r['lag_p50']:>11.3f}{r['lag_p95']:>11.3f}{r['lag_max']:>11.3f}" if "lag_p50" in r else "")
        print(f"{label:<32}{r['rows_per_s']:>12,.0f}{r['rows']:>12,}{lag}")
    paced = [r for label, r in rows[1:]]
    ok_rate = alone["rows_per_s"] >= 5e4 and all(r["rows_per_s"] >= 0.9 * rt for r, rt in zip(paced, a.rates))
    ok_lag = all(r["lag_p95"] < 0.5 for r in paced)
    print("lag = reader's clock when a row arrives minus the row's log time (batching + commit + poll)")
    print(f"goals: >= 50,000 rows/s written -> {'met' if ok_rate else 'MISSED'}; "
          f"reader lag p95 < 0.5 s at the paced rates -> {'met' if ok_lag else 'MISSED'}")

if __name__ == "__main__":
    main()
