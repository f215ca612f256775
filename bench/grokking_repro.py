"""Grokking reproductions (issue 4, "Done when" a-d). Each prints what it measured.

a  Nanda et al. 2023: p = 113, frac 0.3, one-layer transformer, AdamW 1e-3, wd 1, betas (0.9, 0.98),
   full batch, 15 000 steps, 5 seeds batched; and wd 0 (no grokking). Needs a GPU (~15k steps x 10
   members); runnable on CPU with --steps for a smoke test.
b  Prieto et al. 2025: MLP on two-hot input (p = 113, frac 0.4, [200, 200], no bias, AdamW betas
   (0.9, 0.99), wd 0, fp32): softmax CE collapses (SC fraction > 0.5, test acc stuck), StableMax and
   ⊥Grad generalise.
c  Grokfast (Lee et al. 2024): EMA filter (alpha 0.98, lambda 2) vs baseline, steps to 95 % test acc.
d  CPU quick start: MLP on a + b mod 97 reaching >= 95 % test accuracy in under 2 minutes.

    python bench/grokking_repro.py d
"""

from __future__ import annotations

import argparse
import time

import torch

from workbench.store import RunStore
from workbench.train import TrainConfig, train, train_batched


def _first(store, rid, name, thr):
    m = store.metrics(rid, name)
    hit = m[m["value"] >= thr]
    return int(hit["step"].iloc[0]) if len(hit) else None


def repro_a(steps: int, seeds: int) -> None:
    store = RunStore(":memory:")
    base = TrainConfig(task="modular", task_params={"p": 113, "frac": 0.3}, model="nanda", optimizer="adamw",
                       lr=1e-3, weight_decay=1.0, optimizer_params={"betas": [0.9, 0.98]}, steps=steps,
                       log_every=100, eval_every=100, tf32=True)
    t = time.time()
    res = train_batched([base.replace(seed=s) for s in range(seeds)] +
                        [base.replace(seed=s, weight_decay=0.0) for s in range(seeds)], store)
    for r in res:
        print(f"wd={r.config['weight_decay']} seed={r.config['seed']}: test_acc={r.final['test_acc']:.4f} "
              f"train_acc={r.final['train_acc']:.4f} first step test_acc>=0.99: {_first(store, r.run_id, 'test_acc', 0.99)}")
    print(f"wall {time.time() - t:.1f}s")


def repro_b(steps: int) -> None:
    store = RunStore(":memory:")
    base = TrainConfig(task="modular", task_params={"p": 113, "frac": 0.4}, model="mlp",
                       model_params={"hidden": [200, 200], "bias": False}, optimizer="adamw", lr=1e-3,
                       optimizer_params={"betas": [0.9, 0.99]}, weight_decay=0.0, steps=steps, log_every=50,
                       eval_every=50)
    for label, cfg in [("softmax CE fp32", base), ("StableMax CE", base.replace(loss="stablemax")),
                       ("softmax CE + ⊥Grad", base.replace(orthograd=True))]:
        t = time.time()
        r = train(cfg, store, name=label)
        sc = store.metrics(r.run_id, "sc_fraction")["value"]
        print(f"{label:>20}: test_acc={r.final['test_acc']:.4f} train_acc={r.final['train_acc']:.4f} "
              f"max SC fraction={sc.max() if len(sc) else float('nan'):.3f} "
              f"first step test_acc>=0.9: {_first(store, r.run_id, 'test_acc', 0.9)} ({time.time() - t:.0f}s)")


def repro_c(steps: int) -> None:
    store = RunStore(":memory:")
    base = TrainConfig(task="modular", task_params={"p": 97, "op": "*", "frac": 0.5}, model="mlp",
                       model_params={"hidden": [256, 256]}, optimizer="adamw", lr=1e-3, weight_decay=1.0,
                       optimizer_params={"betas": [0.9, 0.98]}, steps=steps, log_every=50, eval_every=50,
                       stop_at_test_acc=0.95)
    out = {}
    for label, cfg in [("baseline", base), ("grokfast EMA", base.replace(grokfast={"kind": "ema", "alpha": 0.98,
                                                                                      "lamb": 2.0}))]:
        r = train(cfg, store, name=label)
        out[label] = _first(store, r.run_id, "test_acc", 0.95)
        print(f"{label:>14}: steps to 95% test acc: {out[label]} (final test_acc {r.final['test_acc']:.4f})")
    if all(out.values()):
        print(f"ratio grokfast / baseline = {out['grokfast EMA'] / out['baseline']:.3f} (goal < 0.25)")


def repro_d(steps: int) -> None:
    store = RunStore(":memory:")
    cfg = TrainConfig(task="modular", task_params={"p": 97, "frac": 0.5}, model="mlp",
                      model_params={"hidden": [256]}, optimizer="adamw", lr=3e-3, weight_decay=1.0,
                      optimizer_params={"betas": [0.9, 0.98]}, steps=steps, log_every=50, eval_every=50,
                      stop_at_test_acc=0.95, device="cpu")
    t = time.time()
    r = train(cfg, store, progress=False)
    wall = time.time() - t
    print(f"CPU MLP grokking (a + b mod 97, frac 0.5): test_acc={r.final['test_acc']:.4f} "
          f"train_acc={r.final['train_acc']:.4f} at step {r.step} in {wall:.1f}s "
          f"(first step >= 95%: {_first(store, r.run_id, 'test_acc', 0.95)}) -> "
          f"{'PASS' if r.final['test_acc'] >= 0.95 and wall < 120 else 'FAIL'}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="grokking reproductions a-d")
    ap.add_argument("which", choices=list("abcd"))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.which == "a":
        repro_a(a.steps or 15_000, a.seeds)
    elif a.which == "b":
        repro_b(a.steps or 1000)
    elif a.which == "c":
        repro_c(a.steps or 20_000)
    else:
        repro_d(a.steps or 5000)


if __name__ == "__main__":
    main()
