"""The form of a registry schedule (``workbench.schedules``): one widget per ``ParamSpec`` row (type, range,
choices), read back to parameter values, and set by name as typing would. Used by the schedule lab and the
curve-law fitter (a schedule nobody trained, typed in to be predicted); a new schedule in the registry
appears in both without app code. Nested-schedule parameters (``warmup``, ``sequence``, ...) have no
widget: the schedule lab's spec editor handles them."""

from __future__ import annotations

import importlib
from typing import Any

import panel as pn

# starting values for required parameters that have no default in the registry
FORM_DEFAULTS = {"total_steps": 10000, "cycle_steps": 2000, "step_size": 3000, "gamma": 0.9995,
                 "cooldown_steps": 2000, "const_ratio": 0.5, "switch_step": 5000, "stage2_ratio": 0.3,
                 "batch_size": 512, "tokens_per_step": 524288}


def schedules_module() -> Any:
    """``workbench.schedules``, imported on first use (it imports torch; a page shows before it is needed)."""
    return importlib.import_module("workbench.schedules")  # the package's own module: an import error shows


# ----------------------------------------------------------------------------- widgets from specs
def form_schedules() -> list[str]:
    """Registry names that the form can edit: those without nested-schedule parameters
    (``warmup``, ``sequence``, ``rewarm``, ... go through the spec editor)."""
    mod = schedules_module()
    return [n for n in mod.available()
            if not any(p.type is mod.Schedule or p.name == "schedules" for p in mod.param_specs(n))]


def _parse_list(text: str, item: type | None) -> list:
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    conv = item if item in (int, float, str) else float
    out = []
    for p in parts:
        try:
            out.append(conv(float(p)) if conv is int else conv(p))
        except ValueError as e:
            raise ValueError(f"could not read {p!r} as {conv.__name__}") from e
    return out


def widget_for(spec: Any) -> pn.widgets.Widget | None:
    """A Panel widget for one ``ParamSpec`` (None for nested-schedule parameters, which the JSON
    editor handles). Numeric ranges come from ``spec.low`` / ``spec.high``."""
    sched_mod = schedules_module()
    t, default, label = spec.type, spec.default, spec.name
    kw: dict[str, Any] = {"label": label}
    if t is sched_mod.Schedule:
        return None
    if spec.choices is not None:
        opts = list(spec.choices)
        return pn.widgets.Select(options=opts, value=default if default in opts else opts[0], **kw)
    if t is bool:
        return pn.widgets.Checkbox(value=bool(default), **kw)
    if spec.doc:
        kw["description"] = spec.doc
    if t is list:
        text = ", ".join(str(x) for x in (default or []))
        return pn.widgets.TextInput(value=text, placeholder="comma-separated", **kw)
    if spec.optional:
        return pn.widgets.TextInput(value="" if default is None else str(default),
                                    placeholder="empty = None", **kw)
    if default is None and t in (int, float):  # required: start from a usable value inside the range
        default = FORM_DEFAULTS.get(spec.name, spec.low if spec.low is not None and spec.low > 0 else 1)
    if t is int:
        return pn.widgets.IntInput(value=int(default), start=None if spec.low is None else int(spec.low),
                                   end=None if spec.high is None else int(spec.high), **kw)
    if t is float:
        lo, hi = spec.low, spec.high
        step = 0.01 if (lo is not None and hi is not None and hi - lo <= 1) else 0.1
        return pn.widgets.FloatInput(value=float(default), start=lo, end=hi, step=step, **kw)
    return pn.widgets.TextInput(value="" if default is None else str(default), **kw)


def widget_value(spec: Any, widget: pn.widgets.Widget) -> Any:
    """The parameter value a widget holds (text parsed to the spec's type)."""
    v = widget.value
    if spec.type is list:
        return _parse_list(v, spec.item)
    if isinstance(widget, pn.widgets.TextInput) and spec.type is not str:
        if str(v).strip() in ("", "None", "none"):
            return None
        try:
            return spec.type(float(v)) if spec.type is int else spec.type(v)
        except (TypeError, ValueError):
            return v  # the schedule library names the parameter and its range
    return v


def schedule_form(name: str) -> tuple[dict[str, pn.widgets.Widget], dict[str, Any]]:
    """The form of registry schedule ``name``: widgets and their ``ParamSpec`` by parameter name (nested
    schedule parameters left out). Raises the schedule library's error for an unknown name."""
    widgets, specs = {}, {}
    for spec in schedules_module().param_specs(name):
        w = widget_for(spec)
        if w is not None:
            widgets[spec.name], specs[spec.name] = w, spec
    return widgets, specs


def set_form_values(widgets: dict[str, pn.widgets.Widget], values: dict[str, Any], schedule: str) -> None:
    """Set form widgets by parameter name, the same path as typing in the page (lists as comma-separated
    text, numbers as text in optional fields)."""
    for k, v in values.items():
        if k not in widgets:
            raise ValueError(f"{k}: not a parameter of schedule {schedule!r}; choose from {sorted(widgets)}")
        w = widgets[k]
        w.value = ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else (
            str(v) if isinstance(w, pn.widgets.TextInput) and not isinstance(v, str) else v)
