"""Reference runs shipped with the repository, so that the first open of a dashboard is never empty.

``data/reference/*.parquet`` are real runs made by the project's own engine and sweeps
(:func:`regenerate`), exported with ``RunStore.export``:

* ``grokking.parquet`` — a small grokking sweep: modular addition (p = 23, train fraction 0.5), a
  two-hot MLP, AdamW, weight decay in {1, 3} x 2 seeds (Power et al. 2022; Nanda et al. 2023);
* ``lm_schedules.parquet`` — a tiny character-level GPT under cosine, linear, WSD and REX schedules;
* ``lm_sizes.parquet`` — the same tiny GPT at three widths (a small model-size grid).

``ensure_reference_runs(store)`` imports the files into a store that lacks them (the runs keep
their ids, so this is idempotent). ``python -m workbench.reference --regenerate`` rebuilds them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import workbench

REFERENCE_DIR = Path(workbench.__file__).resolve().parents[1] / "data" / "reference"


def reference_files(folder: Path | None = None) -> list[Path]:
    """The shipped reference exports (``data/reference/*.parquet``), sorted."""
    return sorted((folder or REFERENCE_DIR).glob("*.parquet"))


def ensure_reference_runs(store: Any, folder: Path | None = None) -> int:
    """Import the reference runs that ``store`` does not hold yet; returns how many were imported."""
    n = 0
    for f in reference_files(folder):
        n += len(store.import_file(f, on_conflict="skip"))
    return n


SPECS: dict[str, dict] = {
    "grokking": {
        "name": "reference-grokking",
        "base": {"task": "modular", "task_params": {"p": 23, "frac": 0.5}, "model": "mlp",
                 "model_params": {"hidden": [128]}, "optimizer": "adamw", "lr": 1e-2, "steps": 1500,
                 "log_every": 25, "eval_every": 50, "device": "cpu",
                 "schedule": {"name": "constant"}},
        "axes": {"weight_decay": [1.0, 3.0]}, "seeds": [0, 1],
        "target": {"metric": "test_acc", "value": 0.99, "mode": "max"},
    },
    "lm_schedules": {
        "name": "reference-lm-schedules",
        "base": {"task": "lm", "task_params": {"seq_len": 32, "max_chars": 200000}, "model": "gpt",
                 "model_params": {"width": 64, "depth": 2, "n_heads": 4}, "optimizer": "adamw", "lr": 3e-3,
                 "steps": 200, "batch_size": 32, "log_every": 10, "eval_every": 25, "device": "cpu"},
        "axes": {"schedule": ["cosine", "linear", {"name": "wsd"}, "rex"]}, "seeds": [0],
    },
    "lm_sizes": {
        "name": "reference-lm-sizes",
        "base": {"task": "lm", "task_params": {"seq_len": 32, "max_chars": 200000}, "model": "gpt",
                 "model_params": {"depth": 2, "n_heads": 4}, "optimizer": "adamw", "lr": 3e-3,
                 "steps": 200, "batch_size": 32, "log_every": 10, "eval_every": 25, "device": "cpu",
                 "schedule": {"name": "cosine"}},
        "axes": {"model_params.width": [32, 64, 96]}, "seeds": [0],
    },
}


def regenerate(folder: Path | None = None, only: list[str] | None = None, progress: bool = True) -> list[Path]:
    """Run the reference sweeps on this machine's CPU and export them to ``folder``."""
    from workbench.store import RunStore
    from workbench.sweeps.runner import run_sweep

    folder = folder or REFERENCE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    with tempfile.TemporaryDirectory() as d:
        store = RunStore(Path(d) / "reference.db")
        for key, spec in SPECS.items():
            if only and key not in only:
                continue
            sid = run_sweep(spec, "batched", store, progress=progress, sweep_id=spec["name"])
            out.append(store.export(folder / f"{key}.parquet", sweep=sid))
        store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workbench.reference", description=__doc__.split("\n")[0])
    p.add_argument("--regenerate", action="store_true", help="rerun the reference sweeps and rewrite the files")
    p.add_argument("--only", nargs="+", choices=sorted(SPECS))
    p.add_argument("--out", type=Path, help=f"folder (default {REFERENCE_DIR})")
    a = p.parse_args(argv)
    if not a.regenerate:
        for f in reference_files(a.out):
            print(f"{f}  {f.stat().st_size / 1e3:.0f} kB")
        return 0
    for f in regenerate(a.out, a.only):
        print(f"wrote {f} ({f.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
