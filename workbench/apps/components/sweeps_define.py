"""The sweep board's definition panel: a sweep spec in a YAML editor or a simple form (schedules x
learning rates x seeds), validated by ``workbench.sweeps.SweepSpec`` (whose error names the field) and
launched with ``workbench.sweeps.run_sweep`` in a thread that writes to the run store.

The panel belongs to a page (``owner``, an :class:`~workbench.apps.base.AppBase`): messages go to the
page's message area, the store is the page's, and ``on_launched(sweep_id)`` tells the page which sweep to
show once the runner has registered it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn
import param

from workbench.apps.base import AppBase, guarded, show_table
from workbench.schedules import available as available_schedules
from workbench.sweeps import SweepSpec, run_sweep
from workbench.sweeps.results import label

EXAMPLE_SPEC = """\
name: schedules-on-modular
strategy: grid
base:
  task: modular
  task_params: {p: 23, frac: 0.5}
  model: mlp
  steps: 300
axes:
  schedule: [cosine, linear, {name: wsd, decay_fraction: 0.2}]
  lr: [0.001, 0.003, 0.01]
seeds: [0]
objective: {metric: test_loss, mode: min}
target: {metric: test_acc, value: 0.9, mode: max}
"""


class SweepDefinition(pn.viewable.Viewer):
    """Define, validate and launch a sweep (YAML or the form)."""

    yaml_text = param.String(default=EXAMPLE_SPEC, doc="Sweep spec (YAML)")
    executor = param.Selector(default="batched", objects=["batched", "local", "ray"])
    form_name = param.String(default="my-sweep")
    form_task = param.String(default="modular")
    form_schedules = param.List(default=["cosine", "linear"])
    form_lrs = param.String(default="1e-3, 3e-3, 1e-2")
    form_seeds = param.String(default="0")
    form_steps = param.Integer(default=300, bounds=(1, None))

    def __init__(self, owner: AppBase, on_launched: Callable[[str], None] | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.owner = owner
        self.on_launched = on_launched
        self.spec: Any = None
        self.launched: str | None = None
        self.threads: list[threading.Thread] = []
        self.message = owner.message
        self.members_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=180,
                                                  sizing_mode="stretch_width")
        # the members table joins the page at the first validation (an empty Tabulator is one more
        # table for the browser to build at page load, issue 13)
        self.members_box = pn.Column(sizing_mode="stretch_width")

    def show_error(self, msg: str) -> None:  # for @guarded
        self.owner.show_error(msg)

    def running(self) -> bool:
        """Whether a sweep launched here still runs."""
        return any(t.is_alive() for t in self.threads)

    @guarded
    def validate(self, *_: Any) -> Any:
        """Parse and validate the YAML; shows the member count, or the spec library's error."""
        spec = SweepSpec.from_yaml(self.yaml_text if "\n" in self.yaml_text else self.yaml_text + "\n")
        spec.validate()
        self.spec = spec
        try:
            members = spec.members()
            show_table(self.members_table, pd.DataFrame(
                [{"member": m.index, "seed": m.seed, **{k: label(v) for k, v in m.params.items()}} for m in members]))
            n = len(members)
            if not self.members_box.objects:
                self.members_box.objects = [self.members_table]
        except ValueError:  # bayes: members come while it runs
            n = spec.n_members()
            self.members_table.value = pd.DataFrame()
        self.owner.show_info(f"Spec **{spec.name}** is valid: {n} member(s), strategy {spec.strategy}.")
        return spec

    def form_spec(self) -> dict:
        """The simple form as SweepSpec plain data (schedules x learning rates x seeds)."""
        def numbers(field: str, text: str, conv: type) -> list:
            try:
                vals = [conv(float(x)) if conv is int else conv(x) for x in text.replace(";", ",").split(",") if x.strip()]
            except ValueError:
                raise ValueError(f"{field}: give comma-separated numbers, got {text!r}") from None
            if not vals:
                raise ValueError(f"{field}: give at least one value")
            return vals

        lrs = numbers("form_lrs", self.form_lrs, float)
        if any(v <= 0 for v in lrs):
            raise ValueError(f"form_lrs: learning rates must be > 0, got {lrs}")
        seeds = numbers("form_seeds", self.form_seeds, int)
        if not self.form_schedules:
            raise ValueError("form_schedules: choose at least one schedule")
        return {"name": self.form_name, "strategy": "grid",
                "base": {"task": self.form_task, "steps": int(self.form_steps)},
                "axes": {"schedule": list(self.form_schedules), "lr": lrs}, "seeds": seeds}

    @guarded
    def apply_form(self, *_: Any) -> None:
        """Write the form's spec into the YAML editor (then validate it)."""
        import yaml

        self.yaml_text = yaml.safe_dump(self.form_spec(), sort_keys=False)
        self.validate()

    @guarded
    def launch(self, *_: Any, background: bool = True) -> str | None:
        """Validate and run the sweep with ``workbench.sweeps.run_sweep`` (a thread writing to the store)."""
        spec = self.validate()
        if spec is None:
            return None
        store = self.owner.store
        store_path, executor = str(store.path), self.executor
        sid = "sw-" + uuid.uuid4().hex[:10]

        def work() -> None:
            from workbench.store import RunStore

            st = RunStore(store_path)
            try:
                run_sweep(spec, executor=executor, store=st, sweep_id=sid, progress=False)
            except Exception as e:  # noqa: BLE001 - shown in the page
                self.owner.show_error(f"**Sweep {spec.name} failed**: {type(e).__name__}: {e}")
            finally:
                st.close()

        if background:
            t = threading.Thread(target=work, daemon=True, name=f"sweep-board-{sid}")
            self.threads.append(t)
            t.start()
            deadline = time.time() + 5.0  # the runner registers the sweep first: wait for it briefly
            while time.time() < deadline and t.is_alive() and sid not in set(store.sweeps()["id"]):
                time.sleep(0.1)
        else:
            work()
        self.launched = sid
        if self.on_launched is not None:
            self.on_launched(sid)
        if self.message.alert_type != "danger" or not self.message.visible:
            self.owner.show_info(f"Sweep **{spec.name}** (`{sid}`) launched with the {executor} executor. "
                                 "[Live monitor](./monitor)")
        return sid

    def __panel__(self) -> pn.viewable.Viewable:
        editor = pn.widgets.CodeEditor.from_param(self.param.yaml_text, language="yaml", height=330,
                                                  sizing_mode="stretch_width")
        validate = pn.widgets.Button(label="Validate", color="primary")
        validate.on_click(self.validate)
        launch = pn.widgets.Button(label="Launch sweep", color="success")
        launch.on_click(self.launch)
        form = pn.Column(
            pn.widgets.TextInput.from_param(self.param.form_name, label="Name"),
            pn.widgets.TextInput.from_param(self.param.form_task, label="Task"),
            pn.widgets.MultiChoice.from_param(self.param.form_schedules, label="Schedules",
                                              options=available_schedules()),
            pn.widgets.TextInput.from_param(self.param.form_lrs, label="Learning rates"),
            pn.widgets.TextInput.from_param(self.param.form_seeds, label="Seeds"),
            pn.widgets.IntInput.from_param(self.param.form_steps, label="Steps"),
        )
        to_yaml = pn.widgets.Button(label="Form → YAML")
        to_yaml.on_click(self.apply_form)
        return pn.Column(
            pn.Tabs(("YAML", editor), ("Form", pn.Column(form, to_yaml)), dynamic=True),  # form sent when opened
            pn.Row(validate, launch, pn.widgets.Select.from_param(self.param.executor, label="Executor", width=110)),
            self.members_box, width=420, sizing_mode="fixed")
