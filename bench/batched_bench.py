"""Batched training throughput: N members of one batched model vs N sequential bare PyTorch runs.

Model: Nanda et al. 2023's grokking transformer on a + b mod p, full batch, AdamW (the issue-4
setting). Full size (p = 113, d_model 128) on CUDA; ``--small`` (p = 23, d_model 32) for CPU.

Our loop runs with live metrics on: ``log_every`` 10, ``eval_every`` 100, streaming into a run store
file. Its seconds per step come from the difference of two run lengths (the set-up cancels); the bare
loop (:class:`bench.common.BareLoop`) is timed directly. The two are measured alternately ``--reps``
times (:func:`bench.common.interleave`) and every ratio is printed as the median of the per-pair
ratios with its min-max range. N sequential bare runs take N times one bare run's step time, so the
speed-up at N is ``N * t_bare / t_batched``. Precision modes (columns): ``fp32`` (TF32 matmuls on
CUDA), ``bf16`` (autocast) and ``compile`` (``torch.compile``); the last two only on CUDA.

Achieved TFLOP/s count the forward + backward FLOPs of one member-step with
``torch.utils.flop_counter`` (the optimizer's elementwise work is left out), and the fraction of peak
is against the chip's dense bf16 tensor-core peak (:data:`PEAK_BF16_TFLOPS`).

    python bench/batched_bench.py --small          # CPU
    python bench/batched_bench.py                  # CUDA, N in {1, 8, 64, 256}
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:              # `python bench/x.py` puts bench/ first
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    BareLoop,
    Ratio,
    interleave,
    md_table,
    nanda_config,
    spread,
    step_time_by_difference,
)
from workbench.device import describe, pick_device  # noqa: E402
from workbench.store import RunStore  # noqa: E402
from workbench.train import TrainConfig, train, train_batched  # noqa: E402

MODES = {"fp32": {}, "bf16": {"dtype": "bfloat16"}, "compile": {"compile": True}}
MODE_LABELS = {"fp32": "fp32 (TF32 on CUDA)", "bf16": "bf16 autocast", "compile": "torch.compile"}

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from NVIDIA's datasheets: "NVIDIA H100 Tensor
# Core GPU" (BF16 1,979 / 1,513 / 1,671 TFLOPS for SXM / PCIe / NVL, quoted with 2:4 sparsity, so half
# dense), "NVIDIA H200 Tensor Core GPU" (1,979 SXM, 1,671 NVL, with sparsity), "NVIDIA A100" (312
# dense), "NVIDIA L40S" (362 dense), "NVIDIA L4" (121 dense). Matched against torch's device name, the
# more specific names first.
PEAK_BF16_TFLOPS = [("H200 NVL", 835.5), ("H200", 989.5), ("H100 PCIe", 756.5), ("H100 NVL", 835.5),
                    ("H100", 989.5), ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0)]
PEAK_SOURCE = "NVIDIA datasheets (H100, H200, A100, L40S, L4), dense = half the quoted sparse figure"


def peak_bf16_tflops(device_name: str) -> float | None:
    """The dense bf16 peak (TFLOP/s) of a device by its name, or None when the table lacks it."""
    for key, v in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return v
    return None


def ours_run(cfg: TrainConfig, n: int, store: RunStore | None):
    """``run(steps)``: one call of our loop (``train`` at n = 1, else ``train_batched`` of seeds 0..n-1)."""
    def run(steps: int):
        cfgs = [cfg.replace(seed=i, steps=steps) for i in range(n)]
        return train(cfgs[0], store) if n == 1 else train_batched(cfgs, store)

    return run


def measure(cfg: TrainConfig, mode: str, n: int, *, steps: int, bare_steps: int, reps: int,
            store: RunStore | None, bare: BareLoop) -> dict[str, list[float]]:
    """Interleaved seconds per step: ``bare`` (one bare run) and ``ours`` (N members in our loop)."""
    run = ours_run(cfg.replace(**MODES[mode]), n, store)
    run(2)                                                   # warm-up: CUDA kernels, compile
    bare.step_time(2)
    return interleave({"bare": lambda: bare.step_time(bare_steps),
                       "ours": lambda: step_time_by_difference(run, steps, bare.device)}, reps)


def cells(n: int, m: dict[str, list[float]], flops: float, peak: float | None) -> dict[str, str]:
    """The table cells of one (N, mode) measurement."""
    tb = statistics.median(m["ours"])
    out = {"ours ms/step": spread(m["ours"], 1e3),
           "bare ms/step": spread(m["bare"], 1e3),
           "speed-up": str(Ratio.of(m["bare"], m["ours"], scale=n)),
           "TFLOP/s": f"{flops * n / tb / 1e12:.3g}"}
    if peak:
        out["TFLOP/s"] += f" ({100 * flops * n / tb / 1e12 / peak:.2g} % of bf16 peak)"
    if n == 1:
        out["overhead"] = str(Ratio.of(m["ours"], m["bare"]))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="CPU size: p = 23, d_model 32")
    ap.add_argument("--ns", default=None, help="member counts (default 1,8,64,256; --small 1,8)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--reps", type=int, default=5, help="alternating measurements of each side (>= 5)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (1 avoids oversubscription)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = pick_device("auto")
    cuda = dev.type == "cuda"
    ns = [int(v) for v in (a.ns or ("1,8" if a.small else "1,8,64,256")).split(",")]
    steps = a.steps or (10 if a.small else 40)
    cfg = nanda_config(a.small, device=str(dev), tf32=cuda)
    peak = peak_bf16_tflops(describe(dev)) if cuda else None
    modes = list(MODES) if cuda else ["fp32"]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        store = RunStore(Path(d) / "bench.db")
        for mode in modes:
            bare = BareLoop(cfg, mode)
            flops = bare.flops_per_step()
            for n in ns:
                c = cells(n, measure(cfg, mode, n, steps=steps, bare_steps=2 * steps, reps=a.reps, store=store,
                                     bare=bare), flops, peak)
                rows.append([MODE_LABELS[mode], n, c["ours ms/step"], f"{n} x {c['bare ms/step']}", c["speed-up"],
                             c["TFLOP/s"], c.get("overhead", "")])
                print(md_table(["mode", "N", "ours ms/step", "N x bare ms/step", "speed-up", "TFLOP/s",
                                "overhead at N=1"], rows[-1:]).splitlines()[-1], flush=True)
        store.close()
    print(f"\ndevice: {describe(dev)}; Nanda transformer {cfg.task_params} {cfg.model_params or '(full size)'}; "
          f"medians (min-max) of {a.reps} interleaved measurements")
    print(md_table(["mode", "N", "ours ms/step", "N x bare ms/step", "speed-up vs N sequential bare", "TFLOP/s",
                    "our loop / bare at N=1"], rows))


if __name__ == "__main__":
    main()
