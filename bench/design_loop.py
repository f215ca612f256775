"""Close the loop on the reference LM task (issue 18, sec. 1): fit the multi-power law (Luo et al. 2025) on a
constant and a cosine run, optimise the schedule under it, then train the optimised schedule next to WSD and
cosine in ONE batched launch (``train_batched``, several seeds) and print predicted vs real final losses,
both margins and whether the 95 % band covered the real final loss.

Run: ``OMP_NUM_THREADS=2 .venv/bin/python bench/design_loop.py [--steps 200] [--seeds 0 1 2]``
(``WORKBENCH_SMOKE=1``: a tiny run that only checks the plumbing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from workbench.fit import fit, get_law
from workbench.schedule_design import curves_from_store, optimize_schedule, predict_final
from workbench.store import RunStore
from workbench.train import train_batched

SMOKE = os.environ.get("WORKBENCH_SMOKE") == "1"


def base_config(steps: int) -> dict:
    """The reference LM task at CPU size (workbench.reference SPECS["lm_schedules"]), test loss on 128
    fixed windows every 10 steps."""
    return {"task": "lm", "task_params": {"seq_len": 32, "max_chars": 200000, "eval_windows": 128}, "model": "gpt",
            "model_params": {"width": 64, "depth": 2, "n_heads": 4}, "optimizer": "adamw", "lr": 3e-3,
            "steps": steps, "batch_size": 32, "log_every": 10, "eval_every": 10, "device": "cpu"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60 if SMOKE else 200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1] if SMOKE else [1, 2])
    ap.add_argument("--knots", type=int, default=16 if SMOKE else 32)
    ap.add_argument("--bootstrap", type=int, default=8 if SMOKE else 32)
    ap.add_argument("--store", type=Path, default=None, help="run store (default: a temporary one)")
    a = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    T, base = a.steps, base_config(a.steps)
    peak = base["lr"]
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(a.store or Path(tmp) / "design.db")
        t0 = time.perf_counter()
        fit_runs = train_batched([{**base, "seed": 0, "schedule": {"name": "constant"}},
                                  {**base, "seed": 0, "schedule": {"name": "cosine"}}], store,
                                 names=["fit-constant", "fit-cosine"])
        t_fit_runs = time.perf_counter() - t0
        data = curves_from_store(store, [r.run_id for r in fit_runs])
        t0 = time.perf_counter()
        law = fit(get_law("multi_power"), data, bootstrap=a.bootstrap, bootstrap_by="points")
        t_fit = time.perf_counter() - t0
        baselines = {"cosine": {"name": "cosine", "total_steps": T},
                     "wsd": {"name": "wsd", "total_steps": T, "decay_fraction": 0.2}}
        t0 = time.perf_counter()
        opt = optimize_schedule(law, T, peak_lr=peak, knots=a.knots, iters=150 if SMOKE else 600,
                                baselines=baselines)
        t_opt = time.perf_counter() - t0
        d = opt.design
        scheds = {"optimized": opt.to_dict(), **baselines}
        cfgs, names = [], []
        for seed in a.seeds:
            for k, spec in scheds.items():
                cfgs.append({**base, "seed": seed, "schedule": spec})
                names.append(f"{k}-s{seed}")
        t0 = time.perf_counter()
        res = train_batched(cfgs, store, names=names)  # one batched launch: every schedule x every seed
        t_cmp = time.perf_counter() - t0
        store.close()
    real = {k: np.array([r.final["test_loss"] for r, n in zip(res, names) if n.startswith(k + "-")])
            for k in scheds}
    pred = {"optimized": {"final": d.final, "band": d.final_band}, **d.baselines}
    print(f"reference LM task: GPT width 64 depth 2, {T} steps, peak LR {peak:g}; law fitted on constant + cosine "
          f"(seed 0, test loss every 10 steps, {a.bootstrap} bootstrap resamples); compared on seeds {a.seeds}")
    print(law.report())
    print(d.report())
    print(f"{'schedule':>10} | {'predicted':>9} {'95% band':>19} | {'real mean':>9} {'real sd':>8} {'seeds':>24}"
          f" | covered")
    for k in scheds:
        p = pred[k]
        band = p["band"]
        bs = "n/a" if band is None else f"[{band[0]:.4f}, {band[1]:.4f}]"
        cov = "n/a" if band is None else f"{int(np.sum((real[k] >= band[0]) & (real[k] <= band[1])))}/{len(real[k])}"
        print(f"{k:>10} | {p['final']:9.4f} {bs:>19} | {real[k].mean():9.4f} {real[k].std(ddof=1) if len(real[k]) > 1 else 0:8.4f}"
              f" {' '.join(f'{v:.4f}' for v in real[k]):>24} | {cov}")
    for k in baselines:
        diff = real[k] - real["optimized"]  # paired by seed (same data order and init)
        print(f"margin vs {k:>6}: predicted {pred[k]['final'] - d.final:+.4f}, real {diff.mean():+.4f} "
              f"(per seed {' '.join(f'{v:+.4f}' for v in diff)}; > 0: optimised better)")
    print("optimised schedule shape: " + ", ".join(f"{k} {v:.3g}" for k, v in d.shape.items()))
    print("optimised knots: " + " ".join(f"{v:.3f}" for v in opt.params["knots"]))
    print(f"cost: fit runs {t_fit_runs:.0f} s, law fit {t_fit:.1f} s, optimise {t_opt:.1f} s, "
          f"comparison batch ({len(cfgs)} members, one launch) {t_cmp:.0f} s")
    print(f"predicted final loss of a constant LR (for scale): {predict_final(law, np.full(T, peak))['final']:.4f}")


if __name__ == "__main__":
    main()
