"""Checkpoints of a run or a stack of runs, shared by the loop, :func:`resume` and the sweeps.

A checkpoint is one file ``<root>/<first run id>/step_<step>.pt`` (written to a temporary name, then
``os.replace``: a kill never leaves half a file; owner-only unless the store is shared, see
:mod:`workbench.safeio`) holding the step, the backend state (parameters,
buffers, optimizer, gradient filter), the alive mask, the run's RNG state, the member configs and run
ids (a step of ``fork_points`` is written as ``fork_<step>.pt`` and kept). Each member's run gets a ``checkpoint`` artifact in the store pointing at it, with ``step``,
``member`` and ``members`` (every run id of the stack) in its meta. Only the last ``keep_checkpoints``
files are kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from workbench.safeio import load_checkpoint, save_checkpoint
from workbench.train.config import TrainConfig


def folder(cfg: TrainConfig, store: Any, run_id: str | None) -> Path:
    """Where a run's checkpoints go: ``cfg.checkpoint_dir``, else ``<store dir>/checkpoints``, else
    ``./runs/checkpoints`` (no store file)."""
    if cfg.checkpoint_dir:
        root = Path(cfg.checkpoint_dir)
    elif store is not None and str(store.path) != ":memory:":
        root = Path(store.path).parent / "checkpoints"
    else:
        root = Path("runs") / "checkpoints"
    return root / (run_id or "run")




def save(state: dict, cfg: TrainConfig, store: Any, run_ids: list[str | None], fork_point: bool = False) -> Path:
    """Write ``state`` (with ``step``) for the members ``run_ids``; record it; drop old files. A
    ``fork_point`` checkpoint (a step of ``cfg.fork_points``) is ``fork_<step>.pt``, never dropped."""
    step = int(state["step"])
    d = folder(cfg, store, run_ids[0])
    path = d / (f"fork_{step:08d}.pt" if fork_point else f"step_{step:08d}.pt")
    save_checkpoint({**state, "run_ids": run_ids}, path, shared=getattr(store, "shared", None))
    if store is not None:
        for i, rid in enumerate(run_ids):
            store.add_artifact(rid, "checkpoint", path, {"step": step, "member": i, "members": run_ids,
                                                         **({"fork_point": True} if fork_point else {})})
    for f in sorted(d.glob("step_*.pt"))[:-cfg.keep_checkpoints]:
        f.unlink(missing_ok=True)
    return path


def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> dict:
    """A checkpoint read with ``torch.load(weights_only=True)`` (a planted file never runs code)."""
    return load_checkpoint(path, device)


def last_checkpoint(store: Any, run_id: str) -> tuple[int, Path | None, list[str]]:
    """``(step, path, stack)`` of ``run_id``'s last checkpoint still on disk, ``(0, None, [run_id])`` if none.
    ``stack`` lists the run ids trained with it (a resume continues the whole stack)."""
    cks = store.artifacts(run_id, kind="checkpoint")
    for _, row in cks.iloc[::-1].iterrows():
        if Path(row["path"]).exists():
            meta = row["meta"] or {}
            return int(meta.get("step", 0)), Path(row["path"]), list(meta.get("members", [run_id]))
    return 0, None, [run_id]


def at_step(store: Any, run_id: str, step: int) -> tuple[Path, int, list[str]] | None:
    """``(path, member index, stack)`` of ``run_id``'s checkpoint of ``step`` still on disk, or None."""
    cks = store.artifacts(run_id, kind="checkpoint")
    for _, row in cks.iloc[::-1].iterrows():
        meta = row["meta"] or {}
        if int(meta.get("step", -1)) == step and Path(row["path"]).exists():
            return Path(row["path"]), int(meta.get("member", 0)), list(meta.get("members", [run_id]))
    return None


def select_members(sd: dict, keep: list[int]) -> dict:
    """The state of a stacked checkpoint restricted to members ``keep`` (every per-member tensor has the
    member dim first: parameters, buffers, optimizer moments, gradient-filter state, the alive mask)."""
    n = len(sd["configs"])
    idx = torch.as_tensor(keep, dtype=torch.long)

    def sel(v: Any) -> Any:
        if torch.is_tensor(v):
            return v[idx] if v.dim() >= 1 and v.shape[0] == n else v
        if isinstance(v, dict):
            return {k: sel(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(sel(x) for x in v)
        return v

    out = {**sd, "configs": [sd["configs"][i] for i in keep], "alive": sd["alive"][idx]}
    for k in ("params", "buffers", "opt", "filter", "rng"):
        if k in sd:
            out[k] = sel(sd[k])
    return out
