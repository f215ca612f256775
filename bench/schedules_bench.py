"""Benchmark of workbench.schedules (issue 3). Prints one table of timings and ratios from one run.

1. Evaluate 64 schedules (every family, varied parameters) over 10**6 steps as numpy arrays
   (goal: < 1 s in total), against a scalar Python loop (measured on 10**4 steps, per step).
2. Per-step LR of 64 batched runs: ``lr_at(table, step_tensor, peak)`` with the step kept as a device
   tensor, against the naive host path (64 Python calls + ``torch.tensor(...).to(device)`` per step).
3. On CUDA only: the lookup loop under ``torch.cuda.set_sync_debug_mode("error")`` must not sync
   (skipped with a note on CPU).

Usage: ``python bench/schedules_bench.py [--steps 1000000] [--device cuda]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import workbench.schedules as S


def sixty_four_schedules(T: int) -> list[S.Schedule]:
    rng = np.random.default_rng(0)
    out: list[S.Schedule] = []
    makers = [
        lambda w, r: S.cosine(total_steps=T, warmup_steps=w, min_ratio=r),
        lambda w, r: S.linear(total_steps=T, warmup_steps=w, min_ratio=r),
        lambda w, r: S.wsd(total_steps=T, warmup_steps=w, decay_shape="1-sqrt", min_ratio=r),
        lambda w, r: S.wsd(total_steps=T, warmup_steps=w, decay_shape="exponential", min_ratio=max(r, 0.01)),
        lambda w, r: S.rex(total_steps=T, warmup_steps=w, min_ratio=r),
        lambda w, r: S.inverse_sqrt(total_steps=T, warmup_steps=max(w, 1)),
        lambda w, r: S.cosine_restarts(total_steps=T, cycle_steps=T // 15, cycle_mult=2, min_ratio=r, warmup_steps=w),
        lambda w, r: S.onecycle(total_steps=T),
        lambda w, r: S.multistep(total_steps=T, milestones=[T * 0.3, T * 0.6, T * 0.9]),
        lambda w, r: S.exponential(total_steps=T, gamma=1 - 3e-6, warmup_steps=w),
        lambda w, r: S.infinite(total_steps=T, warmup_steps=w, cooldown_steps=T // 5, const_ratio=0.3,
                                anneal_steps=T // 10, min_ratio=max(r, 0.01)),
        lambda w, r: S.cyclic(total_steps=T, cycle_steps=T // 20, warmup_steps=w),
        lambda w, r: S.power(total_steps=T, warmup_steps=max(w, 1), batch_size=8, tokens_per_step=16384),
        lambda w, r: S.two_stage(total_steps=T, switch_step=T / 2, stage2_ratio=0.3, warmup_steps=w),
        lambda w, r: S.rewarm(S.cosine(total_steps=T // 2, min_ratio=0.1), S.cosine(total_steps=T // 2), w),
        lambda w, r: S.sequence([S.constant(total_steps=T // 2, warmup_steps=w), S.linear(total_steps=T // 2)]),
    ]
    for i in range(64):
        w = int(rng.integers(0, T // 20))
        r = float(rng.choice([0.0, 0.1]))
        out.append(makers[i % len(makers)](w, r))
    return out


def timeit(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--table-steps", type=int, default=100_000)
    ap.add_argument("--lookup-steps", type=int, default=2000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    dev = torch.device(a.device)
    rows: list[tuple[str, str, str, str]] = []

    # 1. arrays
    T = a.steps
    scheds = sixty_four_schedules(T)
    steps = np.arange(T, dtype=np.float64)
    t_arr = timeit(lambda: [s(steps) for s in scheds], repeat=2)
    c0 = time.process_time()
    [s(steps) for s in scheds]
    cpu_arr = time.process_time() - c0  # CPU time: less sensitive to other processes on a shared machine
    n_loop = 10_000
    s0 = scheds[0]
    t_loop = timeit(lambda: [s0(t) for t in range(n_loop)], repeat=1)
    per_step_arr = t_arr / (64 * T)
    per_step_loop = t_loop / n_loop
    rows.append(("64 schedules x 1e6 steps, numpy arrays", f"{t_arr:.3f} s", f"{per_step_arr * 1e9:.2f} ns/value",
                 "goal < 1 s: " + ("met" if t_arr < 1.0 else "NOT met")))
    rows.append(("  same, CPU time of this process", f"{cpu_arr:.3f} s", "", "goal < 1 s: " + ("met" if cpu_arr < 1.0 else "NOT met")))
    rows.append(("  same, scalar Python loop (per value)", f"{per_step_loop * 64 * T:.0f} s (extrapolated)",
                 f"{per_step_loop * 1e9:.0f} ns/value", f"arrays {per_step_loop / per_step_arr:.0f}x faster"))

    # 2. per-step tensor LR for 64 batched runs
    TT = a.table_steps
    t_tab = timeit(lambda: S.lr_table(scheds, TT, device=dev), repeat=1)
    rows.append((f"lr_table 64 x {TT} to {dev.type}", f"{t_tab:.3f} s", "once per run", ""))
    table = S.lr_table(scheds, TT, device=dev)
    peak = torch.full((64,), 1e-3, device=dev)
    n = a.lookup_steps

    def device_loop():
        step = torch.zeros((), dtype=torch.long, device=dev)
        for _ in range(n):
            lr = S.lr_at(table, step, peak)
            step += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return lr

    def host_loop():
        for t in range(n):
            lr = torch.tensor([s(t) for s in scheds], dtype=torch.float32).to(dev) * peak
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return lr

    t_dev = timeit(device_loop)
    t_host = timeit(host_loop, repeat=1)
    rows.append(("per-step LR, 64 runs: lr_at(table, step tensor)", f"{t_dev / n * 1e6:.1f} us/step", f"{n} steps",
                 f"{t_host / t_dev:.0f}x faster than host"))
    rows.append(("  naive host path (64 calls + copy)", f"{t_host / n * 1e6:.1f} us/step", f"{n} steps", "1x"))
    ok = torch.equal(device_loop(), host_loop())
    rows.append(("  same values as host path", "yes" if ok else "NO", "", ""))

    # 3. no host sync (CUDA only)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            device_loop_nosync = True
            step = torch.zeros((), dtype=torch.long, device=dev)
            for _ in range(n):
                S.lr_at(table, step, peak)
                step += 1
        except RuntimeError as e:  # raised on a synchronizing call
            device_loop_nosync = False
            print("sync detected:", e)
        finally:
            torch.cuda.set_sync_debug_mode(0)
        rows.append(("set_sync_debug_mode('error') over the lookup loop", "no sync" if device_loop_nosync else "SYNC",
                     torch.cuda.get_device_name(), ""))
    else:
        rows.append(("set_sync_debug_mode('error') check", "skipped", "needs CUDA (run on the device machine)", ""))

    w = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("case", "time", "per", "ratio / note")
    w = [max(wi, len(h)) for wi, h in zip(w, head)]
    print(" | ".join(h.ljust(wi) for h, wi in zip(head, w)))
    print("-+-".join("-" * wi for wi in w))
    for r in rows:
        print(" | ".join(c.ljust(wi) for c, wi in zip(r, w)))


if __name__ == "__main__":
    main()
