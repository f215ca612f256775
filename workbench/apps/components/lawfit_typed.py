"""Schedules nobody trained, typed in from the schedule registry to be predicted by the curve-law fitter: a
registry schedule's form (``components/schedule_form.py``), its total length and a peak LR give the LR of
every update, which the fitted law turns into a predicted loss curve without a measurement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import panel as pn
import param

from workbench.apps.components.schedule_form import (
    form_schedules,
    schedule_form,
    schedules_module,
    set_form_values,
    widget_value,
)


class TypedSchedules(param.Parameterized):
    """Typed schedules (label -> per-update LR in ``curves``). ``host``: the app whose message area is used;
    ``on_change``: called after a schedule is added or the list cleared."""

    schedule = param.Selector(default=None, objects=[], allow_None=True, doc="Registry schedule to predict")
    peak_lr = param.Number(default=3e-4, bounds=(0, None), inclusive_bounds=(False, True),
                           doc="Peak LR of the typed schedule (absolute LR = peak x multiplier)")

    def __init__(self, host: Any, on_change: Callable[[], Any], **params: Any) -> None:
        super().__init__(**params)
        self.host, self.on_change = host, on_change
        self.curves: dict[str, np.ndarray] = {}
        self.widgets: dict[str, pn.widgets.Widget] = {}
        self._specs: dict[str, Any] = {}
        self.form = pn.Column(sizing_mode="stretch_width")
        self._ready = False

    def build(self) -> None:
        """Fill the schedule list and the form (on first use: it imports the schedule registry)."""
        if self._ready:
            return
        self._ready = True
        names = form_schedules()
        chosen = self.schedule if self.schedule in names else ("wsd" if "wsd" in names else (names or [None])[0])
        self.param.schedule.objects = names  # a Select showing the list may pick its first entry: set ours after
        if self.schedule != chosen:
            self.schedule = chosen
        else:
            self._build_form()

    @param.depends("schedule", watch=True)
    def _build_form(self) -> None:
        self.widgets, self._specs = {}, {}
        if not self.schedule:
            self.form.objects = []
            return
        try:
            self.widgets, self._specs = schedule_form(self.schedule)
        except Exception as e:  # noqa: BLE001 - shown in the page
            self.host.show_error(f"**{type(e).__name__}**: {e}")
            return
        self.form.objects = list(self.widgets.values())

    def set_values(self, **values: Any) -> None:
        """Set the form's widgets by parameter name (as typing them in the page)."""
        self.build()
        set_form_values(self.widgets, values, self.schedule)

    def add(self, *_: Any) -> str | None:
        """Add the form's schedule as a curve to predict; returns its label (None and a message on bad input)."""
        try:
            label = self._add()
        except Exception as e:  # noqa: BLE001 - bad input: a message in the page
            self.host.show_error(f"**{type(e).__name__}**: {e}")
            return None
        self.on_change()
        return label

    def _add(self) -> str:
        from workbench.fit.data import MAX_CURVE_STEPS, lr_array

        self.build()
        values = {k: widget_value(self._specs[k], w) for k, w in self.widgets.items()}
        sched = schedules_module().build(self.schedule, **values)
        T = int(sched.total_steps)
        if T < 10:
            raise ValueError(f"total_steps: a predicted curve needs at least 10 steps, got {T}")
        if T > MAX_CURVE_STEPS:
            raise ValueError(f"total_steps: {T:,} is more than the limit of {MAX_CURVE_STEPS:,} steps per curve "
                             "(MAX_CURVE_STEPS)")
        lr = lr_array(sched, float(self.peak_lr), T)
        if not np.all(np.isfinite(lr)) or np.any(lr[1:] <= 0):
            raise ValueError(f"{self.schedule}: the LR must stay > 0 after step 0 (the laws take powers of "
                             f"the LR; min is {lr[1:].min():g}); raise min_ratio / the final LR above 0")
        keys = [k for k in ("decay_fraction", "decay_shape", "min_ratio", "warmup_steps") if k in values]
        label = f"{self.schedule} {T} ({', '.join(f'{k}={values[k]}' for k in keys[:3])})" if keys \
            else f"{self.schedule} {T}"
        self.curves[label] = lr
        self.host.show_info(f"Added {label}, peak LR {self.peak_lr:g}: predicted with the fitted law.")
        return label

    def clear(self, *_: Any) -> None:
        self.curves = {}
        self.on_change()

    def view(self) -> pn.viewable.Viewable:
        """A button that opens the form; the form's widgets are built when it is first opened (page load)."""
        toggle = pn.widgets.Toggle(name="Predict an untrained schedule ▸", button_type="light",
                                   css_classes=["wb-typed-toggle"])
        body = pn.Column(sizing_mode="stretch_width", visible=False)

        def opened(e: Any) -> None:
            if e.new and not body.objects:
                self.build()
                add = pn.widgets.Button(label="Add schedule to predict")
                add.on_click(self.add)
                clear = pn.widgets.Button(label="Clear")
                clear.on_click(self.clear)
                body.objects = [pn.widgets.Select.from_param(self.param.schedule, label="Schedule"), self.form,
                                pn.widgets.FloatInput.from_param(self.param.peak_lr, label="Peak LR", step=1e-4),
                                pn.Row(add, clear)]
            body.visible = bool(e.new)
            toggle.name = f"Predict an untrained schedule {'▾' if e.new else '▸'}"

        toggle.param.watch(opened, "value")
        return pn.Column(toggle, body, sizing_mode="stretch_width")
