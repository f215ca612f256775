"""Batched training throughput: N members of one batched model vs N sequential bare PyTorch runs.

Model: the Nanda grokking transformer on a + b mod p, full batch, AdamW (the issue-4 setting).
Full size (p = 113, d_model 128) on CUDA; ``--small`` (p = 23, d_model 32) for CPU.
Per-step times come from the difference of two run lengths (setup cancels). Prints one table of
step time, throughput (member-steps / s) and ratios, all measured in this one run.

    python bench/batched_bench.py --small          # CPU
    python bench/batched_bench.py                  # CUDA, N in {1, 8, 64, 256}
"""

from __future__ import annotations

import argparse
import time

import torch

from workbench.device import describe, pick_device
from workbench.models import build_model
from workbench.tasks import modular
from workbench.train import TrainConfig, train, train_batched


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bare_step_time(cfg: TrainConfig, steps: int) -> float:
    """A bare loop: model, AdamW, forward, CE, backward, step, zero_grad. Seconds per step."""
    dev = pick_device(cfg.device)
    ds = modular(**cfg.task_params).to(dev)
    torch.manual_seed(0)
    model = build_model("nanda", cfg.model_params, ds).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
    x, y = ds.x_train, ds.y_train

    def run(n):
        _sync(dev)
        t = time.perf_counter()
        for _ in range(n):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        _sync(dev)
        return time.perf_counter() - t

    run(5)
    return min((run(2 * steps) - run(steps)) / steps for _ in range(2))


def ours_step_time(cfg: TrainConfig, n: int, steps: int) -> float:
    def run(s):
        cfgs = [cfg.replace(seed=i, steps=s) for i in range(n)]
        t = time.perf_counter()
        (train(cfgs[0]) if n == 1 and not batched else train_batched(cfgs))
        _sync(pick_device(cfg.device))
        return time.perf_counter() - t

    batched = n > 1
    run(5)
    return min((run(2 * steps) - run(steps)) / steps for _ in range(2))


def flops_per_step(cfg: TrainConfig, n_examples: int) -> float:
    ds = modular(**cfg.task_params)
    m = build_model("nanda", cfg.model_params, ds)
    n_params = sum(p.numel() for p in m.parameters()) - m.W_E.numel()
    return 6.0 * n_params * n_examples * 3      # 6 N D with D = tokens (3 per example)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="CPU size: p = 23, d_model 32")
    ap.add_argument("--ns", default="1,8,64,256")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (1 avoids oversubscription)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="chip peak (H100 SXM bf16 dense: 989)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = pick_device("auto")
    if a.small:
        tp = {"p": 23, "frac": 0.3}
        mp = {"d_model": 32, "n_heads": 4, "d_head": 8, "d_mlp": 128}
    else:
        tp, mp = {"p": 113, "frac": 0.3}, {}
    steps = a.steps or (20 if a.small else 100)
    cfg = TrainConfig(task="modular", task_params=tp, model_params=mp, optimizer_params={"betas": [0.9, 0.98]},
                      weight_decay=1.0, steps=steps, log_every=100, eval_every=10_000, device=str(dev),
                      tf32=dev.type == "cuda")
    n_ex = modular(**tp).n_train
    bare = bare_step_time(cfg, steps)
    ours1 = ours_step_time(cfg, 1, steps)
    print(f"device: {describe(dev)}; model: Nanda transformer {tp} {mp or 'full size'}; full batch {n_ex}")
    print(f"overhead of our loop for one run (train() vs bare loop): {ours1 / bare:.3f}x "
          f"({ours1 * 1e3:.2f} ms vs {bare * 1e3:.2f} ms per step)")
    print(f"{'N':>5} {'batched ms/step':>16} {'seq. bare ms/step':>18} {'batched member-steps/s':>23} "
          f"{'seq. member-steps/s':>20} {'speed-up':>9}" + ("  peak-FLOP frac" if dev.type == "cuda" else ""))
    for n in [int(v) for v in a.ns.split(",")]:
        tb = ours1 if n == 1 else ours_step_time(cfg, n, steps)
        ts = n * bare
        line = f"{n:>5} {tb * 1e3:>16.2f} {ts * 1e3:>18.2f} {n / tb:>23.1f} {n / ts:>20.1f} {ts / tb:>8.1f}x"
        if dev.type == "cuda":
            line += f"  {flops_per_step(cfg, n_ex) * n / tb / (a.peak_tflops * 1e12):>14.4f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
