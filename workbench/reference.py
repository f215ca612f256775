"""Reference runs shipped with the repository, so that the first open of a dashboard is never empty.

``data/reference/*.parquet`` are real runs made by the project's own engine and sweeps
(:func:`regenerate`, ``make reference``), exported with ``RunStore.export``; next to each, ``<key>.sweep.json``
holds its sweep's record (id, name, spec, status, member records), so the sweep board and the law fitter
open on the sweeps, not only on their runs:

* ``grokking`` — grokking that groks: modular addition (p = 97, train fraction 0.5), a two-hot MLP, AdamW
  lr 3e-3, weight decay 1 (the CPU settings of ``workbench run grokking``), and the weight-decay-0
  control that memorises but does not generalise in the same steps (Power et al. 2022;
  Nanda et al. 2023: weight decay drives the generalising circuit);
* ``lm_schedules`` — a tiny character-level GPT under cosine, linear, WSD and REX schedules;
* ``lm_sizes`` — the same tiny GPT at three widths (a small model-size grid).

``ensure_reference_runs(store)`` imports the files into a store that lacks them (the runs and sweeps keep
their ids, so this is idempotent). ``python -m workbench.reference --regenerate`` rebuilds them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import workbench

REFERENCE_DIR = Path(workbench.__file__).resolve().parents[1] / "data" / "reference"
SWEEP_SUFFIX = ".sweep.json"


def reference_files(folder: Path | None = None) -> list[Path]:
    """The shipped reference exports (``data/reference/*.parquet``), sorted."""
    return sorted((folder or REFERENCE_DIR).glob("*.parquet"))


def _sweep_file(parquet: Path) -> Path:
    return parquet.with_name(parquet.stem + SWEEP_SUFFIX)


def export_sweep_record(store: Any, sweep_id: str, path: Path) -> Path:
    """Write a sweep's record with its member table and pruning decisions as JSON."""
    rec = store.get_sweep(sweep_id)
    rec["members"] = store.sweep_member_table(sweep_id).to_dict("records")
    rec["decisions"] = store.sweep_decisions(sweep_id).to_dict("records")
    path.write_text(json.dumps(rec, indent=1, sort_keys=True, default=str) + "\n")
    return path


def _record_members(store: Any, rec: dict) -> tuple[list[dict], list[dict]]:
    """The members and decisions of a record; records written before the sweep tables kept them as
    ``sweep_member`` / ``sweep_prune_decision`` artifacts. A member's run is the imported run of the sweep
    named ``<sweep name>/m<index>`` (the id in an old record may be one the batched executor never used)."""
    members = list(rec.get("members", []))
    decisions = list(rec.get("decisions", []))
    for a in rec.get("artifacts", []):
        if a["kind"] == "sweep_member":
            members.append(dict(a["meta"]))
        elif a["kind"] == "sweep_prune_decision":
            decisions.append(dict(a["meta"]))
    runs = store.runs(sweep=rec["id"])
    by_name = dict(zip(runs["name"], runs["id"])) if len(runs) else {}
    for m in members:
        found = by_name.get(f"{rec['name']}/m{int(m['index']):04d}")
        if found is not None:
            m["run_id"] = found
    return members, decisions


def import_sweep_record(store: Any, path: Path) -> bool:
    """Create the sweep of a record written by :func:`export_sweep_record` unless the store has it (call it
    after importing the sweep's runs, so its members point at them)."""
    rec = json.loads(path.read_text())
    if rec["id"] in set(store.sweeps()["id"]):
        return False
    store.create_sweep(rec["name"], rec["spec"], sweep_id=rec["id"])
    members, decisions = _record_members(store, rec)
    if members:
        store.add_sweep_members(rec["id"], members)
    for d in decisions:
        store.add_sweep_decision(rec["id"], d)
    store.set_sweep_status(rec["id"], rec.get("status", "finished"))
    return True


def ensure_reference_runs(store: Any, folder: Path | None = None) -> int:
    """Import the reference runs (and their sweeps) that ``store`` does not hold yet; returns how many runs
    were imported."""
    n = 0
    for f in reference_files(folder):
        n += len(store.import_file(f, on_conflict="skip"))
        if _sweep_file(f).is_file():
            import_sweep_record(store, _sweep_file(f))
    return n


SPECS: dict[str, dict] = {
    "grokking": {
        "name": "reference-grokking",
        # workbench.train.GROKKING_PRESETS["cpu"] without its stop (the wd-0 control never reaches it, so every
        # member runs all steps); a literal so that importing this module does not import torch
        "base": {"task": "modular", "task_params": {"p": 97, "frac": 0.5}, "model": "mlp",
                 "model_params": {"hidden": [256]}, "optimizer": "adamw", "lr": 3e-3,
                 "optimizer_params": {"betas": [0.9, 0.98]}, "weight_decay": 1.0, "steps": 3000,
                 "log_every": 50, "eval_every": 50, "device": "cpu", "schedule": {"name": "constant"}},
        "axes": {"weight_decay": [0.0, 1.0]}, "seeds": [0],
        "target": {"metric": "test_acc", "value": 0.95, "mode": "max"},
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


def regenerate(folder: Path | None = None, only: list[str] | None = None, progress: bool = True,
               store_path: Path | None = None) -> list[Path]:
    """Run the reference sweeps on this machine's CPU and export them to ``folder`` (the runs are made in a
    temporary store, or in ``store_path`` to watch them train)."""
    from workbench.store import RunStore
    from workbench.sweeps.runner import run_sweep

    folder = folder or REFERENCE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    with tempfile.TemporaryDirectory() as d:
        store = RunStore(store_path or Path(d) / "reference.db")
        for key, spec in SPECS.items():
            if only and key not in only:
                continue
            sid = run_sweep(spec, "batched", store, progress=progress, sweep_id=spec["name"])
            out.append(store.export(folder / f"{key}.parquet", sweep=sid))
            export_sweep_record(store, sid, _sweep_file(out[-1]))
        store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workbench.reference", description=__doc__.split("\n")[0])
    p.add_argument("--regenerate", action="store_true", help="rerun the reference sweeps and rewrite the files")
    p.add_argument("--only", nargs="+", choices=sorted(SPECS))
    p.add_argument("--out", type=Path, help=f"folder (default {REFERENCE_DIR})")
    p.add_argument("--store", type=Path, help="make the runs in this store (default: a temporary one)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: these models are tiny, and one thread is fastest on a busy machine)")
    a = p.parse_args(argv)
    if not a.regenerate:
        for f in reference_files(a.out):
            print(f"{f}  {f.stat().st_size / 1e3:.0f} kB")
        return 0
    import torch

    torch.set_num_threads(max(1, a.threads))
    for f in regenerate(a.out, a.only, store_path=a.store):
        print(f"wrote {f} ({f.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
