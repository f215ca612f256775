"""``workbench run``: train one run (or N seeds as one stack) from flags, a config file or a preset.

What a run gets is what is written: the flags, then ``--config`` fields, then ``--preset`` fields, then
the TrainConfig defaults (shown by ``workbench run --help``). ``workbench run grokking`` and
``workbench run modular`` use ``--preset cpu`` unless a config file is given (shown in ``--help``);
presets are for the grokking task only.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
from typing import Any

from workbench import tasks as T
from workbench.errors import WorkbenchError
from workbench.train.config import PRESETS, ConfigError, TrainConfig, merge
from workbench.train.run import resume, train, train_batched
from workbench.train.sink import default_progress

_FLAGS = {  # --flag: (config path, type)
    "p": ("task_params.p", int), "op": ("task_params.op", str), "frac": ("task_params.frac", float),
    "n_bits": ("task_params.n_bits", int), "k": ("task_params.k", int), "n_train": ("task_params.n_train", int),
    "seq_len": ("task_params.seq_len", int),
    "model": ("model", str), "width": ("model_params.width", int), "depth": ("model_params.depth", int),
    "init_scale": ("model_params.init_scale", float),
    "optimizer": ("optimizer", str), "lr": ("lr", float), "wd": ("weight_decay", float),
    "weight_decay": ("weight_decay", float), "beta1": ("optimizer_params.betas.0", float),
    "beta2": ("optimizer_params.betas.1", float), "momentum": ("optimizer_params.momentum", float),
    "steps": ("steps", int), "batch_size": ("batch_size", int), "seed": ("seed", int),
    "data_seed": ("data_seed", int), "device": ("device", str), "dtype": ("dtype", str), "loss": ("loss", str),
    "loss_dtype": ("loss_dtype", str), "grad_clip": ("grad_clip", float), "log_every": ("log_every", int),
    "eval_every": ("eval_every", int), "checkpoint_every": ("checkpoint_every", int),
    "sharpness_every": ("sharpness_every", int), "progress_every": ("progress_every", int),
    "schedule": ("schedule.name", str), "warmup_steps": ("schedule.warmup_steps", int),
    "stop_at_test_acc": ("stop_at_test_acc", float),
}
GROKKING_PRESETS = PRESETS
DEFAULT_GROKKING_PRESET = "cpu"         # `workbench run grokking` without --config or --preset


def _set_path(d: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def _default_of(path: str) -> Any:
    top = path.split(".")[0]
    f = next((f for f in dataclasses.fields(TrainConfig) if f.name == top), None)
    if f is None or "." in path:
        return "the task's / model's / optimizer's default"
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def config_from_args(task: str | None, ns: argparse.Namespace, base: dict | None = None) -> TrainConfig:
    """The config of ``workbench run``: preset (``ns.preset``, or the task's default preset without a
    config file), then the config file ``base``, then the flags."""
    d = copy.deepcopy(base or {})
    if task:
        d["task"] = task
    d.setdefault("task", "modular")
    preset = getattr(ns, "preset", None)
    grokking = d["task"] in ("grokking", "modular")
    if preset is not None and not grokking:
        raise ConfigError(f"--preset: only for the grokking (modular) task, got task {d['task']!r}")
    if grokking and (preset or not base):   # flags and --config override the preset
        d = merge(PRESETS[preset or DEFAULT_GROKKING_PRESET], d)
    for flag, (path, _) in _FLAGS.items():
        v = getattr(ns, flag, None)
        if v is None:
            continue
        if path.startswith("optimizer_params.betas."):
            betas = list(d.setdefault("optimizer_params", {}).get("betas", (0.9, 0.999)))
            betas[int(path[-1])] = v
            d["optimizer_params"]["betas"] = betas
        else:
            _set_path(d, path, v)
    for flag in ("orthograd", "tf32", "compile"):
        if getattr(ns, flag, False):
            d[flag] = True
    if getattr(ns, "grokfast", None):
        d["grokfast"] = {"kind": ns.grokfast}
    return TrainConfig.from_dict(d)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="workbench run", description="Train one run (or N seeds batched).",
        epilog=f"Grokking presets: {'; '.join(f'{k} = {v}' for k, v in PRESETS.items())}. "
               f"Default for grokking / modular without --config: {DEFAULT_GROKKING_PRESET!r}.")
    ap.add_argument("task", nargs="?", help=f"task: one of {sorted(T.TASKS) + sorted(T.ALIASES)}")
    ap.add_argument("--config", help="YAML or JSON file with TrainConfig fields (flags override it)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None,
                    help=f"grokking settings (default {DEFAULT_GROKKING_PRESET!r}: >= 95 %% test accuracy in "
                         "< 2 min on a CPU; 'nanda': Nanda et al. 2023; listed below)")
    ap.add_argument("--resume", metavar="RUN_ID", help="continue a killed run from its last checkpoint")
    ap.add_argument("--store", help="run store path (default: workbench.store.default_path(): "
                                    "$WORKBENCH_STORE, else ./runs/workbench.db)")
    ap.add_argument("--name", help="run name")
    ap.add_argument("--seeds", type=int, default=1, help="train this many seeds (seed, seed+1, ...) batched")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar (default: on in a terminal, "
                                                               "off under CI)")
    for flag, (path, typ) in _FLAGS.items():
        ap.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=typ, default=None,
                        help=f"{path} (default: {_default_of(path)})")
    ap.add_argument("--orthograd", action="store_true", help="⊥Grad (default: off)")
    ap.add_argument("--tf32", action="store_true", help="TF32 matmuls on CUDA (default: off)")
    ap.add_argument("--compile", action="store_true", help="torch.compile on CUDA (default: off)")
    ap.add_argument("--grokfast", choices=["ema", "ma"], default=None, help="Grokfast filter (default: none)")
    return ap


def cli_main(argv: list[str]) -> int:
    """``workbench run TASK [--flags]``, ``workbench run --config cfg.yaml``, ``workbench run --resume ID``.
    Bad input (flags, config file, store, resume of a run that cannot be resumed) prints
    ``workbench run: error: ...`` on stderr and returns 2, before the store is touched."""
    ap = parser()
    ns = ap.parse_args(argv)
    from workbench import yamlio
    from workbench.store import RunStore, default_path

    progress = False if ns.no_progress else default_progress()
    try:
        if ns.seeds < 1:
            raise ConfigError(f"--seeds: must be an integer >= 1 (the number of seeds to train), got {ns.seeds}")
        if ns.resume and (ns.task or ns.config or ns.preset):
            raise ConfigError("--resume: give only the run id; a resumed run keeps its stored config")
        base = yamlio.load_mapping_file(ns.config, field="--config") if ns.config else None
        if not ns.resume and not ns.task and base is None and ns.preset is None:
            ap.error("give a task (e.g. `workbench run grokking`), --preset NAME, --config FILE or --resume RUN_ID")
        cfg = None if ns.resume else config_from_args(ns.task, ns, base)   # validated before the store opens
        store = RunStore(ns.store or default_path())
        try:
            if ns.resume:
                res = [resume(ns.resume, store, progress=progress)]
            elif ns.seeds > 1:
                res = train_batched([cfg.replace(seed=cfg.seed + i) for i in range(ns.seeds)], store,
                                    progress=progress)
            else:
                res = [train(cfg, store, name=ns.name, progress=progress)]
        finally:
            store.close()
    except WorkbenchError as e:
        print(f"workbench run: error: {e}", file=sys.stderr)
        return 2
    for r in res:
        print(f"run {r.run_id}: {r.status} at step {r.step}: {_fmt(r.final)}")
    return 0 if all(r.status == "finished" for r in res) else 1


def _fmt(d: dict) -> str:
    keys = ("train_loss", "train_acc", "test_loss", "test_acc")
    return ", ".join(f"{k}={d[k]:.4g}" for k in keys if k in d)


__all__ = ["cli_main", "config_from_args", "parser", "ConfigError", "GROKKING_PRESETS", "DEFAULT_GROKKING_PRESET"]
