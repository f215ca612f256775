"""The schedule lab's launch box: train one chosen schedule or all of them as one batched sweep
(``workbench.sweeps.run_sweep``), writing to the lab's run store, with links to the live monitor and the
sweep board. Several runs may train at once.

A single run trains in a child process (``workbench.background.start_run``, which stops with the server):
a training loop in a thread of the server would hold the interpreter lock the pages' callbacks need, and a
live monitor on the same server drew a newly launched run 0.6-1.1 s after its first row instead of ~0.3 s
(issue 13). Its failure (the child's traceback) is shown in the page. A sweep runs in a thread."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import panel as pn
import param

from workbench.apps.base import guarded
from workbench.errors import WorkbenchError

DEFAULT_BASE = "task: modular\ntask_params: {p: 23, frac: 0.5}\nmodel: mlp\nseed: 0\n"


class Launcher(param.Parameterized):
    """Launches for the app ``owner`` (an ``AppBase``: store, messages); ``chosen()`` gives the chosen
    schedule specs and ``peak_lr()`` the lab's peak LR at the time of a launch."""

    base_config = param.String(default=DEFAULT_BASE, doc="TrainConfig fields (YAML) shared by launched runs")
    last_run = param.String(default=None, allow_None=True)
    last_sweep = param.String(default=None, allow_None=True)

    def __init__(self, owner: Any, chosen: Callable[[], Sequence[dict]], peak_lr: Callable[[], float],
                 **params: Any) -> None:
        super().__init__(**params)
        self.owner, self.chosen, self.peak_lr = owner, chosen, peak_lr
        self.status = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["wb-launch-status"])
        self.threads: list[threading.Thread] = []

    def show_error(self, msg: str) -> None:  # for @guarded
        self.owner.show_error(msg)

    def base(self) -> dict:
        """The base training config (YAML text of ``TrainConfig`` fields) as a dict."""
        from workbench import yamlio

        try:
            d = yamlio.load(self.base_config or "") or {}
        except yamlio.YAMLError as e:
            raise WorkbenchError(f"base_config: not valid YAML ({e})") from None
        if not isinstance(d, dict):
            raise WorkbenchError("base_config: must be a YAML mapping of TrainConfig fields")
        return d

    def train_config(self, spec: dict) -> Any:
        """The ``TrainConfig`` of one chosen schedule: the base config, this schedule, its length, the peak LR."""
        from workbench.train import TrainConfig

        cfg = self.base()
        cfg.update({"schedule": spec, "steps": int(spec.get("total_steps") or 0) or cfg.get("steps"),
                    "lr": float(self.peak_lr())})
        return TrainConfig.from_dict(cfg)

    @guarded
    def launch_run(self, *_: Any, index: int = -1, background: bool = True) -> str | None:
        """Train one chosen schedule (default: the last) with ``workbench.train.train`` in a thread
        writing to the store; returns the run id."""
        chosen = list(self.chosen())
        if not chosen:
            raise WorkbenchError("chosen: add a schedule first (the Add button)")
        spec = chosen[index]
        cfg = self.train_config(spec)
        name = f"lab-{spec.get('name')}"
        if background:
            from workbench.background import start_run

            handle = start_run(cfg, self.owner.store.path, name=name)
            run_id = handle.run_id
            threading.Thread(target=self._report, args=(handle,), daemon=True, name=f"lab-{run_id}").start()
        else:
            run_id = uuid.uuid4().hex[:12]

            def work(st: Any) -> None:
                from workbench.train import train

                train(cfg, st, name=name, run_id=run_id)

            self._start(work, f"Run {run_id}", background=False)
        self.last_run = run_id
        self.status.object = f"Run `{run_id}` started. [Watch it in the live monitor](./monitor?run={run_id})"
        return run_id

    def sweep_spec(self, name: str = "schedule-lab") -> dict:
        """A grid sweep over the chosen schedules (one member per schedule) as ``SweepSpec`` plain
        data; the base config's ``steps`` is the schedules' common ``total_steps``."""
        chosen = list(self.chosen())
        if not chosen:
            raise WorkbenchError("chosen: add at least one schedule first")
        from workbench.schedules import build

        totals = {int(d.get("total_steps") or build(d).total_steps) for d in chosen}
        if len(totals) != 1:
            raise WorkbenchError(f"chosen: schedules in one sweep must have the same length (total_steps), "
                                 f"got {sorted(totals)}; train them one by one instead")
        base = self.base()
        base.update(lr=float(self.peak_lr()), steps=totals.pop())
        return {"name": name, "strategy": "grid", "base": base,
                "axes": {"schedule": [dict(d) for d in chosen]}, "seeds": [int(base.pop("seed", 0))]}

    @guarded
    def launch_sweep(self, *_: Any, background: bool = True) -> str | None:
        """Run the chosen schedules as one batched sweep (``workbench.sweeps.run_sweep``) in a thread
        writing to the store; returns the sweep id."""
        from workbench.sweeps import run_sweep
        from workbench.sweeps.spec import SweepSpec

        spec = SweepSpec.from_dict(self.sweep_spec()).validate()
        sid = "sw-" + uuid.uuid4().hex[:10]

        def work(st: Any) -> None:
            run_sweep(spec, executor="batched", store=st, sweep_id=sid, progress=False)

        self._start(work, f"Sweep {sid}", background)
        self.last_sweep = sid
        self.status.object = (f"Sweep `{sid}` of {len(self.chosen())} schedule(s) started. "
                              "[Live monitor](./monitor) · [Sweep board](./sweeps)")
        return sid

    def _report(self, handle: Any) -> None:
        """Wait for a child-process run; its failure (the end of its output) goes to the page."""
        handle.proc.wait()
        if handle.status == "failed":  # not for a run that diverged or was interrupted: the store says so
            self.owner.show_error(f"**Run {handle.run_id} failed** (exit {handle.proc.returncode}): "
                                  f"{handle.error()[-600:]}")

    def _start(self, work: Callable[[Any], None], what: str, background: bool) -> None:
        """``work(store)`` on a store of its own (a thread's SQLite connection), in a thread or here; a
        failure is a message in the page."""
        store_path = str(self.owner.store.path)

        def run() -> None:
            from workbench.store import RunStore

            st = RunStore(store_path)
            try:
                work(st)
            except Exception as e:  # noqa: BLE001 - reported in the page
                self.owner.show_error(f"**{what} failed**: {type(e).__name__}: {e}")
            finally:
                st.close()

        if not background:
            run()
            return
        t = threading.Thread(target=run, daemon=True, name=f"schedule-lab-{what.split()[-1]}")
        self.threads.append(t)
        t.start()

    def card(self) -> pn.viewable.Viewable:
        base_cfg = pn.widgets.TextAreaInput.from_param(
            self.param.base_config, label="Base training config (YAML; schedule, steps and lr come from here)",
            height=100)
        run_btn = pn.widgets.Button(label="Train last chosen", color="success", css_classes=["wb-train-last"])
        run_btn.on_click(self.launch_run)
        sweep_btn = pn.widgets.Button(label="Sweep all chosen (batched)", color="success")
        sweep_btn.on_click(self.launch_sweep)
        return pn.Card(base_cfg, pn.Row(run_btn, sweep_btn), self.status, title="Launch", collapsed=False)
