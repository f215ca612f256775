"""Chinchilla fits: batched torch L-BFGS (workbench.fit) vs a plain loop of scipy.optimize.minimize (L-BFGS-B,
analytic gradient). Row 1: the 4 500-start full grid (Besiroglu et al. 2024), screened (every start 20 iterations, the best
10 % to convergence; ``core.multistart``), then the same with every start run to convergence; last rows:
1 000 bootstrap refits from the full-data optimum. Usage: python bench/fit_bench.py [--loop-starts K] [--loop-boot K] (each scipy
loop runs K problems and its time is scaled to the full count; objectives are compared on the same problems).

Threads (issue 15; runs first, ``--threads-only`` for just this table): the screened 4 500-start fit in the user's
default environment (no OMP_NUM_THREADS; the fitters pick one thread inside a context that restores the caller's
setting, ``workbench.fit.threads``), against the same fit pinned to one thread by the caller (torch + BLAS) and
against torch's default thread count (``WORKBENCH_FIT_THREADS=0``: what the default environment did before), each
on an idle machine and while a spawned busy-loop process keeps a core busy. Repeats interleaved; medians; the
goal is default / pinned <= 1.25 with the busy core. Run it without OMP_NUM_THREADS set."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:              # `python bench/x.py` puts bench/ first
    sys.path.insert(0, str(ROOT))

from bench.common import Ratio, interleave, spread, timed  # noqa: E402
from workbench.datasets import data_dir  # noqa: E402
from workbench.fit import FitData, fit, get_law  # noqa: E402
from workbench.fit.fitting import _boot_weights  # noqa: E402


def _busy() -> None:  # a process that keeps one core busy (a run training beside the notebook)
    while True:
        pass


def thread_table(data: FitData, repeats: int) -> None:
    import multiprocessing as mp

    import torch
    from threadpoolctl import threadpool_limits

    def default() -> None:
        fit("chinchilla", data)

    def pinned() -> None:
        os.environ["WORKBENCH_FIT_THREADS"] = "0"  # the fitter leaves the caller's (pinned) setting alone
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with threadpool_limits(limits=1):
                fit("chinchilla", data)
        finally:
            torch.set_num_threads(before)
            os.environ.pop("WORKBENCH_FIT_THREADS", None)

    def torch_default() -> None:
        os.environ["WORKBENCH_FIT_THREADS"] = "0"  # torch's own default threads, as before issue 15
        try:
            fit("chinchilla", data)
        finally:
            os.environ.pop("WORKBENCH_FIT_THREADS", None)

    modes = {"default environment": default, "pinned to 1 thread": pinned, "torch default threads": torch_default}
    times: dict[bool, dict[str, list[float]]] = {}
    default()  # warm-up (imports, first allocations)
    for busy in (False, True):
        proc = None
        if busy:
            proc = mp.get_context("spawn").Process(target=_busy, daemon=True)
            proc.start()
            time.sleep(0.5)
        try:  # interleaved: default, pinned, torch default, default, pinned, ... (bench.common.interleave)
            times[busy] = interleave({m: (lambda fn=fn: timed(fn)) for m, fn in modes.items()}, repeats)
        finally:
            if proc is not None:
                proc.terminate()
                proc.join()
    print(f"threads: torch default {torch.get_num_threads()} intra-op threads, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}, {os.cpu_count()} CPUs, {repeats} interleaved repeats; "
          f"seconds as median (min-max), ratios as the median (min-max) of the per-repeat ratios to pinned")
    pin = "pinned to 1 thread"
    print(f"{'4500-start Chinchilla fit':<24}{'idle s':>18}{'busy core s':>18}{'idle / pinned':>24}{'busy / pinned':>24}")
    for m in modes:
        print(f"{m:<24}{spread(times[False][m]):>18}{spread(times[True][m]):>18}"
              f"{str(Ratio.of(times[False][m], times[False][pin])):>24}{str(Ratio.of(times[True][m], times[True][pin])):>24}")
    r = Ratio.of(times[True]["default environment"], times[True][pin])
    print(f"goal default / pinned with a busy core <= 1.25: {r} ({'met' if r.median <= 1.25 else 'NOT met'}); "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop-starts", type=int, default=300)
    ap.add_argument("--loop-boot", type=int, default=100)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved repeats of the thread table")
    ap.add_argument("--threads-only", action="store_true", help="only the thread table")
    a = ap.parse_args()
    df = pd.read_csv(data_dir("chinchilla-epoch") / "svg_extracted_data.csv")
    df = df[df["loss"] < np.sort(df["loss"].to_numpy())[-5]]
    N = df["Model Size"].to_numpy()
    D = df["Training FLOP"].to_numpy() / (6 * N)
    L = df["loss"].to_numpy()
    data = FitData({"N": N, "D": D}, L)
    thread_table(data, a.repeats)
    if a.threads_only:
        return
    t, c = time.perf_counter(), time.process_time()
    r = fit("chinchilla", data)
    t_ours, c_ours = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    r_all = fit("chinchilla", data, keep=1.0)  # every start to convergence, no screening
    t_all, c_all = time.perf_counter() - t, time.process_time() - c
    lN, lD, lL = np.log(N), np.log(D), np.log(L)

    def obj(p, w=None):
        a_, b_, e_, al, be = p
        u = np.stack([a_ - al * lN, b_ - be * lD, np.full_like(lN, e_)])
        pred = logsumexp(u, axis=0)
        wts = np.exp(u - pred)
        rr = lL - pred
        psi = np.clip(rr, -1e-3, 1e-3) * (1.0 if w is None else w)
        g = -np.array([(psi * wts[0]).sum(), (psi * wts[1]).sum(), (psi * wts[2]).sum(),
                       (psi * wts[0] * -lN).sum(), (psi * wts[1] * -lD).sum()])
        h = huber(1e-3, rr)
        return (h if w is None else h * w).sum(), g

    starts = get_law("chinchilla").starts()
    sub = starts[np.random.default_rng(0).choice(len(starts), a.loop_starts, replace=False)]
    t, c = time.perf_counter(), time.process_time()
    best = min(minimize(obj, s, jac=True, method="L-BFGS-B").fun for s in sub)
    t_loop = (time.perf_counter() - t) * len(starts) / len(sub)
    c_loop = (time.process_time() - c) * len(starts) / len(sub)

    # bootstrap: the same resamples fit() draws (seed 0), started from the full-data optimum
    t, c = time.perf_counter(), time.process_time()
    rb = fit("chinchilla", data, starts=r.theta[None, :], n_polish=1, bootstrap=a.boot, seed=0)
    t_boot, c_boot = time.perf_counter() - t, time.process_time() - c
    W = _boot_weights(data, a.boot, "points", np.random.default_rng(0))
    k = min(a.loop_boot, a.boot)
    t, c = time.perf_counter(), time.process_time()
    sp = [minimize(obj, r.theta, args=(W[i],), jac=True, method="L-BFGS-B").fun for i in range(k)]
    t_bloop = (time.perf_counter() - t) * a.boot / k
    c_bloop = (time.process_time() - c) * a.boot / k
    ours_b = [obj(rb.boot[i], W[i])[0] for i in range(k)] if len(rb.boot) == a.boot else [np.nan]
    dmax = float(np.max(np.array(ours_b) - np.array(sp)))

    print(f"{'method':<40}{'wall s':>9}{'CPU s':>9}{'objective':>14}")
    print(f"{'workbench batched (4500 starts)':<40}{t_ours:>9.2f}{c_ours:>9.2f}{r.objective:>14.8f}")
    print(f"{'  same, every start to convergence':<40}{t_all:>9.2f}{c_all:>9.2f}{r_all.objective:>14.8f}")
    print(f"{'scipy loop (scaled to 4500)':<40}{t_loop:>9.2f}{c_loop:>9.2f}{best:>14.8f}")
    print(f"{f'workbench bootstrap ({a.boot} refits)':<40}{t_boot:>9.2f}{c_boot:>9.2f}")
    print(f"{f'scipy loop bootstrap (scaled to {a.boot})':<40}{t_bloop:>9.2f}{c_bloop:>9.2f}")
    print(f"grid: speed-up {t_loop / t_ours:.1f}x wall, {c_loop / c_ours:.1f}x CPU, objective difference "
          f"{abs(r.objective - best):.2e}; every-start run: {t_loop / t_all:.1f}x wall, objective difference "
          f"{abs(r_all.objective - best):.2e}")
    print(f"bootstrap: speed-up {t_bloop / t_boot:.1f}x wall, {c_bloop / c_boot:.1f}x CPU, worst (ours - scipy) objective over the first {k} "
          f"resamples {dmax:.2e}")


if __name__ == "__main__":
    main()
