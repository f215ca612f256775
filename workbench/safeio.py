"""Files the package creates on a (shared) machine: owner-only by default, checkpoints loaded safely.

- Run stores (the SQLite file; SQLite gives its ``-wal``/``-shm`` files the database file's mode),
  the folders the package creates for them, and checkpoints are created ``0600`` (files) / ``0700``
  (folders), whatever the umask: other users of the machine cannot read a run's configs, metrics
  or weights. A *shared store* (``RunStore(..., shared=True)``, ``workbench --shared-store`` or
  ``$WORKBENCH_SHARED_STORE=1``) is group-readable instead: ``0640`` / ``0750``, so colleagues in
  the file's group can open it read-only. Existing files and folders keep their modes, except that
  asking for a shared store opens up a store file you own.
- Checkpoints are read with ``torch.load(weights_only=True)``: a checkpoint path comes out of the
  store, so a planted file must not run code. The package's checkpoints hold tensors and plain
  data only (configs are stored as dicts), which the weights-only unpickler accepts.
"""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path
from typing import IO, Any

from workbench.errors import WorkbenchError

SHARED_ENV = "WORKBENCH_SHARED_STORE"
PRIVATE = (0o600, 0o700)
SHARED = (0o640, 0o750)


class CheckpointError(WorkbenchError):
    """A checkpoint that cannot be loaded safely (not tensors and plain data) or at all."""


def shared_default() -> bool:
    """Whether ``$WORKBENCH_SHARED_STORE`` asks for group-readable stores (``1``, ``true``, ``yes``)."""
    return os.environ.get(SHARED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def modes(shared: bool | None = None) -> tuple[int, int]:
    """(file mode, folder mode) for new files: owner-only, or group-readable for a shared store;
    ``shared=None`` follows ``$WORKBENCH_SHARED_STORE``."""
    return SHARED if (shared_default() if shared is None else shared) else PRIVATE


def make_dirs(path: str | os.PathLike, *, shared: bool | None = None) -> Path:
    """Create ``path`` and its missing parents with the folder mode (``0700``, or ``0750`` shared);
    folders that already exist are left as they are."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    mode = modes(shared)[1]
    for d in reversed(missing):
        try:
            d.mkdir(mode=mode)
        except FileExistsError:  # made meanwhile by another process
            continue
        os.chmod(d, mode)  # mkdir's mode is masked by the umask; chmod is not
    return path


def create_file(path: str | os.PathLike, *, shared: bool | None = None) -> bool:
    """Create an empty ``path`` with the file mode (``0600``, or ``0640`` shared) unless it exists;
    returns whether it was created. With ``shared=True`` an existing file of ours is opened up to
    the group as well."""
    path = Path(path)
    fmode = modes(shared)[0]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, fmode)
    except FileExistsError:
        if shared and path.stat().st_uid == os.geteuid():
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                if p.exists():
                    os.chmod(p, stat.S_IMODE(p.stat().st_mode) | 0o040)
        return False
    try:
        os.fchmod(fd, fmode)
    finally:
        os.close(fd)
    return True


def open_new(path: str | os.PathLike, *, shared: bool | None = None) -> IO[bytes]:
    """Open ``path`` for writing (truncated) with the file mode, whatever the umask."""
    fmode = modes(shared)[0]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, fmode)
    try:
        os.fchmod(fd, fmode)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def save_checkpoint(obj: Any, path: str | os.PathLike, *, shared: bool | None = None) -> Path:
    """``torch.save`` to ``path`` atomically (a temp file, then ``os.replace``), owner-only (or
    group-readable for a shared store), in folders created with the folder mode."""
    import torch

    path = Path(path)
    make_dirs(path.parent, shared=shared)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with open_new(tmp, shared=shared) as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:  # disk full, killed: leave no partial file behind
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data (dicts, lists, numbers,
    strings) only. A file carrying anything else, such as a pickled object whose ``__reduce__``
    would run code, is refused with :class:`CheckpointError` before anything in it runs."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        why = next((ln.strip() for ln in first if "Unsupported" in ln or "global" in ln.lower()), "")
        raise CheckpointError(f"checkpoint {path}: refused, it holds more than tensors and plain data and "
                              f"loading it could run code ({why or 'weights-only load failed'}); only load "
                              "checkpoints written by workbench") from None
    except (OSError, RuntimeError, EOFError) as e:
        raise CheckpointError(f"checkpoint {path}: could not be read ({type(e).__name__}: {e})") from None
