"""Sweep bench: a grokking sweep with the ``batched`` executor against the same sweep with the
``local`` executor (a pool of worker processes), and the time until every member has grokked.

    python bench/sweep_bench.py            # full size: 64 members (on CUDA when present)
    python bench/sweep_bench.py --small    # a CPU size that runs in a few minutes on 2 cores

Prints one table with the wall times measured in this run and their ratio. "Grokked" = test
accuracy >= 0.99 (Power et al. 2022); the time until all members grokked is the wall time of the
batched sweep with ``stop_at_test_acc: 0.99`` (the batched loop stops when every live member is
there), together with the largest number of steps any member needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def spec(n_lr: int, n_wd: int, n_seeds: int, steps: int, device: str, p: int, hidden: int) -> dict:
    import numpy as np

    return {"name": "bench-grokking",
            "base": {"task": "modular", "task_params": {"p": p, "frac": 0.5}, "model": "mlp",
                     "model_params": {"hidden": [hidden]}, "optimizer": "adamw", "steps": steps,
                     "log_every": 50, "eval_every": 50, "device": device, "schedule": {"name": "constant"}},
            "axes": {"lr": np.geomspace(5e-3, 1e-2, n_lr).round(6).tolist(),
                     "weight_decay": np.linspace(0.5, 1.5, n_wd).round(3).tolist()},
            "seeds": list(range(n_seeds)),
            "target": {"metric": "test_acc", "value": 0.99, "mode": "max"}}


SCHEDULES = ["constant", "cosine", "linear", {"name": "wsd", "decay_fraction": 0.2}]


def schedule_spec(n_schedules: int, n_lr: int, n_seeds: int, steps: int, device: str, p: int, hidden: int) -> dict:
    """A schedule sweep on the same task: ``n_schedules`` of :data:`SCHEDULES` x ``n_lr`` peak LRs x seeds,
    weight decay 1 (4 x 4 x 4 = 64 members at full size)."""
    import numpy as np

    s = spec(n_lr, 1, n_seeds, steps, device, p, hidden)
    s["name"] = "bench-schedules"
    s["base"]["weight_decay"] = 1.0
    del s["base"]["schedule"]
    s["axes"] = {"schedule": SCHEDULES[:n_schedules], "lr": np.geomspace(3e-3, 1e-2, n_lr).round(6).tolist()}
    return s


def compare_results(store, a: str, b: str, metrics: tuple[str, ...] = ("train_loss", "test_loss")) -> float:
    """The largest absolute difference of the final ``metrics`` between the same members (by index) of
    sweeps ``a`` and ``b`` (NaN where a member has no value in one of them)."""
    import numpy as np

    from workbench.sweeps import sweep_results

    ra = sweep_results(a, store, metrics=list(metrics)).set_index("index")
    rb = sweep_results(b, store, metrics=list(metrics)).set_index("index").loc[ra.index]
    return float(np.nanmax(np.abs(ra[list(metrics)].to_numpy(float) - rb[list(metrics)].to_numpy(float))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="CPU size (8 members, 600 steps)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    import torch

    from workbench.store import RunStore
    from workbench.sweeps import run_sweep
    from workbench.sweeps.algoperf import run_times

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda and not a.small else "cpu"
    if a.small:
        s = spec(2, 2, 2, 600, device, p=23, hidden=128)
    else:
        s = spec(4, 4, 4, 3000, device, p=23, hidden=128)
    n = len(s["seeds"]) * len(s["axes"]["lr"]) * len(s["axes"]["weight_decay"])
    rows = []
    with tempfile.TemporaryDirectory() as d:
        st = RunStore(Path(d) / "bench.db")
        t0 = time.perf_counter()
        sb = run_sweep(s, "batched", st, progress=False, max_group=n)
        t_batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        sl = run_sweep(s, "local", st, progress=False, workers=a.workers)
        t_local = time.perf_counter() - t0
        stop = {**s, "name": "bench-grokking-stop", "base": {**s["base"], "stop_at_test_acc": 0.99}}
        t0 = time.perf_counter()
        ss = run_sweep(stop, "batched", st, progress=False, max_group=n)
        t_grok = time.perf_counter() - t0
        rt = run_times(st, sweeps=[sb], metric="test_acc", target=0.99, mode="max", submission="lr")
        ok = int(rt["reached"].sum())
        max_steps = rt["steps"].max()
        rows.append(("batched sweep", f"{t_batched:.1f} s", f"{n} members, {s['base']['steps']} steps, one group"))
        rows.append(("local sweep", f"{t_local:.1f} s", f"{a.workers} worker processes"))
        rows.append(("ratio local / batched", f"{t_local / t_batched:.1f}x", "goal >= 20x on a GPU"))
        rows.append(("all grokked (batched, stop at 0.99)", f"{t_grok:.1f} s",
                     f"{ok}/{n} grokked; most steps needed {max_steps:g}"))
        for x in (sb, sl, ss):
            assert st.get_sweep(x)["status"] == "finished"
    print(f"device: {torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu'} ({torch.get_num_threads()} threads)")
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'value':>10}  note")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:>10}  {r[2]}")


if __name__ == "__main__":
    main()
