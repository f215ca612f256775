"""Where the papers' measurements are: one resolver used by notebooks, apps and benches.

The openly licensed sets ship with the repository in ``data/<name>`` (each with its ``SOURCE.md`` and
licence): ``mpl-loss-curves`` (Luo et al. 2025, MIT), ``gadre-overtraining`` (Gadre et al. 2024, MIT) and
``chinchilla-epoch`` (Hoffmann et al. 2022's Figure 4 as read by Besiroglu et al. 2024; facts only).
Sets that state no licence (``steplaw``, ``gpt100m-3sched``) are not shipped; they are found only in a
project data folder beside the clone (``$WORKBENCH_SHARED_DATA`` or ``../shared/data``), which tests use.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.errors import WorkbenchError

REPO_DATA = Path(__file__).resolve().parents[1] / "data"
SHIPPED: tuple[str, ...] = ("chinchilla-epoch", "gadre-overtraining", "mpl-loss-curves")
"""Data sets that ship in the repository's ``data/`` folder."""


class DatasetNotFound(WorkbenchError):
    """A data set that is neither in the repository's ``data/`` nor in a project data folder."""


def shared_data_root() -> Path | None:
    """The project data folder beside the clone: ``$WORKBENCH_SHARED_DATA``, else ``../shared/data``."""
    env = os.environ.get("WORKBENCH_SHARED_DATA")
    path = Path(env) if env else REPO_DATA.parents[1] / "shared" / "data"
    return path if path.is_dir() else None


def data_dir(name: str) -> Path:
    """The folder of data set ``name``: the repository's ``data/<name>``, else (for sets that are not
    shipped) ``<shared data>/<name>``; raises :class:`DatasetNotFound` naming where it looked."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DatasetNotFound(f"data set: expected a folder name such as {SHIPPED[0]!r}, got {name!r}")
    local = REPO_DATA / name
    if local.is_dir():
        return local
    shared = shared_data_root()
    if name not in SHIPPED and shared is not None and (shared / name).is_dir():
        return shared / name
    where = [str(local)] + ([] if name in SHIPPED else [str((shared or Path("../shared/data")) / name)])
    hint = ("it ships with the repository; restore it with git" if name in SHIPPED else
            f"only {', '.join(SHIPPED)} ship with the repository; others need $WORKBENCH_SHARED_DATA")
    raise DatasetNotFound(f"data set {name!r} not found (looked in {', '.join(where)}): {hint}")


def data_dirs() -> list[Path]:
    """Folders that hold data sets: the repository's ``data/`` and, when present, the shared data folder."""
    return [p for p in (REPO_DATA, shared_data_root()) if p is not None and p.is_dir()]
