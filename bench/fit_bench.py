"""Chinchilla full-grid fit: batched torch L-BFGS (workbench.fit) vs a plain loop of scipy.optimize.minimize
(L-BFGS-B, analytic gradient) over the same starts. Usage: python bench/fit_bench.py [--loop-starts K]
(the scipy loop runs K starts and its time is scaled to the full grid)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from workbench.fit import FitData, fit, get_law

SHARED = Path(os.environ.get("WORKBENCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop-starts", type=int, default=300)
    a = ap.parse_args()
    df = pd.read_csv(SHARED / "chinchilla-epoch" / "svg_extracted_data.csv")
    df = df[df["loss"] < np.sort(df["loss"].to_numpy())[-5]]
    N = df["Model Size"].to_numpy()
    D = df["Training FLOP"].to_numpy() / (6 * N)
    L = df["loss"].to_numpy()
    t = time.perf_counter()
    r = fit("chinchilla", FitData({"N": N, "D": D}, L))
    t_ours = time.perf_counter() - t
    lN, lD, lL = np.log(N), np.log(D), np.log(L)

    def obj(p):
        a_, b_, e_, al, be = p
        u = np.stack([a_ - al * lN, b_ - be * lD, np.full_like(lN, e_)])
        pred = logsumexp(u, axis=0)
        w = np.exp(u - pred)
        rr = lL - pred
        psi = np.clip(rr, -1e-3, 1e-3)
        g = -np.array([(psi * w[0]).sum(), (psi * w[1]).sum(), (psi * w[2]).sum(),
                       (psi * w[0] * -lN).sum(), (psi * w[1] * -lD).sum()])
        return huber(1e-3, rr).sum(), g

    starts = get_law("chinchilla").starts()
    sub = starts[np.random.default_rng(0).choice(len(starts), a.loop_starts, replace=False)]
    t = time.perf_counter()
    best = min(minimize(obj, s, jac=True, method="L-BFGS-B").fun for s in sub)
    t_loop = (time.perf_counter() - t) * len(starts) / len(sub)
    print(f"{'method':<34}{'seconds':>10}{'objective':>14}")
    print(f"{'workbench batched (4500 starts)':<34}{t_ours:>10.2f}{r.objective:>14.8f}")
    print(f"{'scipy loop (scaled to 4500)':<34}{t_loop:>10.2f}{best:>14.8f}")
    print(f"speed-up {t_loop / t_ours:.1f}x, objective difference {abs(r.objective - best):.2e}")


if __name__ == "__main__":
    main()
