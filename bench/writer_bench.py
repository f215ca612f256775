"""Does writing to the run store slow training? A batched run of 64 members logging every step,
with and without a store.

Model: the Nanda transformer at the CPU size of the benches (``bench.common.nanda_config(small=True)``,
p = 23, d_model 32), 64 members in one batched model, ``log_every = eval_every = 1`` so every member
logs its metrics (train/test loss and accuracy, lr, weight and gradient norms, ...) every step: the
"64 members x 10 metrics every step" of issue 14, at a CPU step rate comparable to a GPU batch's.
Seconds per step come from the difference of two run lengths (set-up cancels; each run's length
includes closing the store, so rows still queued for the sink's writer thread count); the run with a
store file and the run without one are measured alternately ``--reps`` times, and the slowdown is
the median (min-max) of the per-pair ratios, with a distribution-free confidence interval for that
median (``bench.common.median_ci``: on this noise a single median is not a verdict). Rows written per
second are printed.

Environment: the product's default. ``workbench run`` and ``train_batched`` leave torch's thread
count alone, so the bench does too (it prints the count); set ``OMP_NUM_THREADS`` outside to study
another setting. The load average before and after is printed: on a shared machine it decides how
far the range can be trusted.

    python bench/writer_bench.py              # 64 members, 21 interleaved pairs of 30- and 60-step runs (~10 min)
    python bench/writer_bench.py --members 8 --steps 20 --reps 3    # smoke
    python bench/writer_bench.py --device cuda --full --reps 11     # on a GPU, at Nanda's size

Why 21 pairs of short runs: on the 2-core VM this was written on, one pair's ratio ranged 0.9-1.35
(the same no-store step took 111-184 ms from one measurement to the next), so a median of 5 pairs could
not tell 1.03 from 1.10; shorter runs keep a pair's two sides closer in time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    Capped,
    Ratio,
    interleave,
    md_table,
    median_ci,
    nanda_config,
    spread,
    step_time_by_difference,
    time_cap,
)
from workbench.store import RunStore  # noqa: E402
from workbench.train import train_batched  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the members train")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop the measurements after this long and report the complete pairs (a device lease is short)")
    ap.add_argument("--full", action="store_true",
                    help="Nanda et al.'s full size (p = 113, d_model 128) instead of the CPU size; for --device cuda")
    a = ap.parse_args(argv)
    if a.members < 1 or a.steps < 2 or a.reps < 1:
        ap.error("--members >= 1, --steps >= 2, --reps >= 1")
    if a.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device here")
    cfg = nanda_config(not a.full, device=a.device, log_every=1, eval_every=1, tf32=a.device == "cuda")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads (torch's default; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), {os.cpu_count()} CPUs; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
          + (f"; {torch.cuda.get_device_name()}" if a.device == "cuda" else ""))
    with tempfile.TemporaryDirectory() as d:
        store = RunStore(Path(d) / "bench.db")

        def run(with_store: bool):
            def go(steps: int) -> None:
                c0 = time.process_time()
                train_batched([cfg.replace(seed=i, steps=steps) for i in range(a.members)],
                              store if with_store else None)
                cpu[with_store].append((steps, time.process_time() - c0))
            return go

        cpu: dict[bool, list[tuple[int, float]]] = {True: [], False: []}

        run(True)(2)
        run(False)(2)
        rows0 = store.cursor()
        m: dict[str, list[float]] = {}
        pair_rows: list[int] = []

        def side(with_store: bool) -> float:
            t = step_time_by_difference(run(with_store), a.steps, a.device)
            if with_store:                            # a pair is complete: say so (a killed run keeps these lines)
                pair_rows.append(store.cursor() - rows0)
                print(f"pair {len(m['store']) + 1}: no store {m['no store'][-1] * 1e3:.2f} ms/step, store "
                      f"{t * 1e3:.2f} ms/step, ratio {t / m['no store'][-1]:.3f}", flush=True)
            return t

        try:
            with time_cap(a.max_seconds) if a.max_seconds else contextlib.nullcontext():
                interleave({"no store": lambda: side(False), "store": lambda: side(True)}, a.reps, m)
        except Capped as e:
            print(f"({e}: the complete pairs are reported)", flush=True)
        n = min(len(m["store"]), len(m["no store"]))
        if n == 0:
            print("no complete pair was measured")
            return 1
        m = {k: v[:n] for k, v in m.items()}
        a.reps, rows = n, pair_rows[n - 1]
        # CPU seconds (all threads) per step, by the same difference of lengths: what the store costs in
        # work, which a busy or noisy host does not change much (wall-time ratios it does)
        # (each list: the warm-up call, then the measurements' calls of 2 * steps and of steps, in pairs)
        cpu_step = {k: [(big - small) / a.steps for big, small in
                        zip([c for n, c in v[1:] if n == 2 * a.steps], [c for n, c in v[1:] if n == a.steps])]
                    for k, v in cpu.items()}
        store.close()
    per_step = rows / (a.reps * 3 * a.steps)  # each measurement trains steps + 2 * steps
    r = Ratio.of(m["store"], m["no store"])
    print(f"\n{a.members} members, Nanda transformer {cfg.task_params} {cfg.model_params}, log_every = eval_every = 1, "
          f"{per_step:.0f} rows per step; load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(md_table(["", "ms / step", "steps / s", "rows / s written", "CPU ms / step (all threads)"],
                   [["no store", spread(m["no store"], 1e3), f"{1 / min(m['no store']):.3g} (best)", "0",
                     spread(cpu_step[False], 1e3)],
                    ["store", spread(m["store"], 1e3), f"{1 / min(m['store']):.3g} (best)",
                     f"{per_step / min(m['store']):.0f}", spread(cpu_step[True], 1e3)]]))
    print(f"\nslowdown with the store (median (min-max) of {a.reps} interleaved pairs): {r}  (goal <= 1.05)")
    lo, hi, cover = median_ci([x / y for x, y in zip(m["store"], m["no store"])])
    print(f"confidence interval of that median: {lo:.3g}-{hi:.3g} (distribution-free, {cover:.1%}; nan below 6 pairs)")
    print(f"CPU with the store / without (same pairs): {Ratio.of(cpu_step[True], cpu_step[False])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
