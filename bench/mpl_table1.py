"""Paper Table 1 (Luo et al., ICLR 2025, "A Multi-Power Law for Loss Curve Prediction Across Learning Rate
Schedules"): fit the multi-power law (two-stage procedure, :func:`workbench.fit.schedule_laws.fit_multi_power`)
and the LR-annealing law of Tissue et al. 2024 (batched L-BFGS, ``fit``) on cosine_24000, constant_24000 and
wsdcon_9, predict the six unseen schedules, and print R² / mean / worst relative error (per test curve,
averaged over the six, as the paper) next to the paper's, per model size.

The curves ship in ``data/mpl-loss-curves`` (MIT; ``workbench.datasets.data_dir``); ``--data`` points at another
folder holding ``mpl-loss-curves/``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/mpl_table1.py [--data DIR] [--sizes 25 100 400]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from workbench.datasets import data_dir
from workbench.fit import FitData, fit, get_law
from workbench.fit.schedule_laws import fit_multi_power, schedule_law_starts
from workbench.schedules.paper import mpl_schedule

TRAIN = ["cosine_24000", "constant_24000", "wsdcon_9"]
TEST = ["constant_72000", "cosine_72000", "wsd_20000_24000", "wsdld_20000_24000", "wsdcon_3", "wsdcon_18"]
TABLE1 = {  # R2, PredE, WorstE (test set)
    "25": {"lr_annealing": (0.9904, 0.0014, 0.0047), "multi_power": (0.9975, 0.0012, 0.0040)},
    "100": {"lr_annealing": (0.9959, 0.0022, 0.0094), "multi_power": (0.9982, 0.0013, 0.0058)},
    "400": {"lr_annealing": (0.9962, 0.0025, 0.0100), "multi_power": (0.9971, 0.0019, 0.0070)},
}


def curves(root: Path, size: str, stems: list[str]) -> FitData:
    out = []
    for stem in stems:
        df = pd.read_csv(root / "mpl-loss-curves" / f"csv_{size}" / f"{stem}.csv")
        df = df[df["step"] != 24000]  # as the authors' data_loader.py
        s, peak = mpl_schedule(stem)
        T = int(df["step"].max()) + 1
        out.append((stem, df["step"].to_numpy(), df["loss"].to_numpy(), peak * np.asarray(s(np.arange(T)), float)))
    # the repository's step s is the index of the last update applied (its code sums the LRs of updates
    # 0..s): step_offset=1 maps it to the workbench convention (loss after s updates, workbench.fit.data)
    return FitData.from_curves(out, step_offset=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", "--shared", dest="data", type=Path, default=None,
                    help="folder holding mpl-loss-curves/ (default: the repository's data/)")
    ap.add_argument("--sizes", nargs="+", default=["25", "100", "400"])
    a = ap.parse_args()
    root = a.data if a.data is not None else data_dir("mpl-loss-curves").parent
    torch.set_num_threads(1)
    lra = get_law("lr_annealing")
    print(f"{'size':>5} {'law':>13} | {'R2':>14} {'PredE':>16} {'WorstE':>16} | {'fit s':>6}  (ours / paper, rel. diff)")
    for size in a.sizes:
        train, test = curves(root, size, TRAIN), curves(root, size, TEST)
        t0 = time.perf_counter()
        r_mpl = fit_multi_power(train)
        t_mpl = time.perf_counter() - t0
        t0 = time.perf_counter()
        r_lra = fit(lra, train, starts=schedule_law_starts(lra, train.y, 3e-4), n_polish=1)
        t_lra = time.perf_counter() - t0
        for name, r, secs in (("lr_annealing", r_lra, t_lra), ("multi_power", r_mpl, t_mpl)):
            m = r.evaluate(test)
            cells = []
            for key, ref in zip(("r2", "mean_rel", "worst_rel"), TABLE1[size][name]):
                cells.append(f"{m[key]:.4f}/{ref:.4f} {100 * (m[key] - ref) / ref:+5.1f}%")
            print(f"{size:>5} {name:>13} | {'  '.join(cells)} | {secs:6.1f}")
        print(f"{'':>5} {'MPL params':>13} | " + ", ".join(f"{k}={v:.4g}" for k, v in r_mpl.params.items()))


if __name__ == "__main__":
    main()
