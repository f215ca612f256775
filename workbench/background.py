"""Train in the background: a run in a child process that writes to the run store, and a handle to it.

``start_run(cfg, store)`` returns at once with a :class:`BackgroundRun`; a notebook cell can then show
the live monitor (or any reader of the store) while the run trains. The handle reads the run's state
from the store (``status``, ``step``, ``progress``), and offers ``wait()`` and ``stop()``.

A child process rather than a thread: training then never holds the notebook kernel's interpreter lock,
so the kernel stays free to serve the live plots' periodic callbacks, and ``stop()`` is a plain
``SIGINT`` (the engine's ``KeyboardInterrupt`` path: the run is recorded ``interrupted`` with every row it
logged). The child also stops when the process that started it exits (it polls its parent), so a
restarted kernel leaves no orphan training on a shared machine. Python's ``subprocess`` is the library
here; nothing else is hand-written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

DONE = ("finished", "diverged", "interrupted", "failed", "pruned")


class BackgroundRunError(WorkbenchError):
    """A background run that could not start, failed, or did not end in time."""


class BackgroundRun:
    """Handle of a run training in a child process (see :func:`start_run`)."""

    def __init__(self, run_id: str, store_path: Path, steps: int, proc: subprocess.Popen, log: Path) -> None:
        self.run_id = run_id
        self.store_path = Path(store_path)
        self.steps = int(steps)
        self.proc = proc
        self.log = log
        self._store: Any = None
        self._cursor, self._step = 0, 0

    def __repr__(self) -> str:
        return f"BackgroundRun({self.run_id!r}, {self.status}, step {self.step}/{self.steps})"

    @property
    def store(self) -> Any:
        if self._store is None:
            from workbench.store import RunStore

            self._store = RunStore(self.store_path, mark_interrupted=False)
        return self._store

    @property
    def running(self) -> bool:
        """Whether the child process is still alive."""
        return self.proc.poll() is None

    @property
    def status(self) -> str:
        """The run's status in the store (``starting`` until the child has registered it)."""
        try:
            st = self.store.get_run(self.run_id)["status"]
        except KeyError:
            st = "starting"
        if st in ("starting", "running") and not self.running:
            return "failed" if self.proc.returncode not in (0, None) else "interrupted"
        return st

    @property
    def step(self) -> int:
        """The last step the run has logged (0 before its first row)."""
        df, self._cursor = self.store.tail(self._cursor, runs=[self.run_id])  # only the rows since the last call
        if len(df):
            self._step = max(self._step, int(df["step"].max()))
        return self._step

    @property
    def progress(self) -> float:
        """Fraction of the configured steps done, in [0, 1] (1 once the run has ended)."""
        if self.status in DONE and self.status != "starting" and not self.running:
            return 1.0
        return min(1.0, self.step / max(1, self.steps))

    def error(self) -> str:
        """The end of the child's output (its traceback when it failed)."""
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def wait(self, timeout: float | None = None) -> dict:
        """Block until the run ends; returns its store record. Raises :class:`BackgroundRunError` when it
        does not end within ``timeout`` seconds (it keeps training) or the child failed."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise BackgroundRunError(f"timeout: run {self.run_id} still training after {timeout} s "
                                     f"(step {self.step} of {self.steps}); call wait() again or stop()") from None
        if self.proc.returncode not in (0, 1):  # 1: the run ended but not 'finished' (diverged, interrupted)
            raise BackgroundRunError(f"run {self.run_id}: the training process failed "
                                     f"(exit {self.proc.returncode}):\n{self.error()}")
        return self.store.get_run(self.run_id)

    def stop(self, timeout: float = 30.0) -> dict | None:
        """Interrupt the run (``SIGINT``: recorded ``interrupted``, nothing logged is lost) and wait for the
        child to exit (killed after ``timeout`` s); returns the run's record (None if it never started)."""
        if self.running:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            return self.store.get_run(self.run_id)
        except KeyError:
            return None


def start_run(cfg: Any, store: Any = None, *, name: str | None = None, threads: int = 1) -> BackgroundRun:
    """Start training ``cfg`` (a ``TrainConfig`` or its dict) in a child process writing to ``store``
    (a ``RunStore`` or a path; default: the default store) and return at once.

    ``threads``: torch CPU threads of the child (default 1: the small models of a notebook gain little
    from more, and a core stays free for the kernel and the browser on a small machine)."""
    from workbench.store import RunStore, default_path
    from workbench.train import TrainConfig

    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(dict(cfg))  # bad input raises here
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise BackgroundRunError(f"threads: must be an integer >= 1, got {threads!r}")
    store_path = Path(store.path) if isinstance(store, RunStore) else Path(store or default_path())
    if str(store_path) == ":memory:":
        raise BackgroundRunError("store: a background run needs a store file (':memory:' is private to one process)")
    run_id = "bg-" + uuid.uuid4().hex[:10]
    job = {"config": cfg.to_dict(), "store": str(store_path), "run_id": run_id, "name": name or f"{cfg.task}-bg",
           "threads": threads, "parent": os.getpid()}
    fd, log = tempfile.mkstemp(prefix="workbench-bg-", suffix=".log")
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])  # the child imports this same workbench
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with os.fdopen(fd, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workbench.background", json.dumps(job)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    return BackgroundRun(run_id, store_path, cfg.steps, proc, Path(log))


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGINT)  # the engine records the run 'interrupted'
            return


def _child(job: dict) -> int:
    import torch

    from workbench.store import RunStore
    from workbench.train import train

    torch.set_num_threads(int(job["threads"]))
    threading.Thread(target=_watch_parent, args=(int(job["parent"]),), daemon=True).start()
    store = RunStore(job["store"])
    try:
        r = train(job["config"], store, name=job["name"], run_id=job["run_id"])
    finally:
        store.close()
    return 0 if r.status == "finished" else 1


if __name__ == "__main__":  # pragma: no cover - the child process
    sys.exit(_child(json.loads(sys.argv[1])))
