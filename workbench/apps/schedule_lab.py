"""Schedule lab: compose learning-rate schedules, overlay them, predict their loss curves with a
fitted law before training, and launch a run or a batched sweep of the chosen schedules.

Everything scientific is delegated:

- schedules and their typed parameters come from the registry ``workbench.schedules``
  (``available()``, ``param_specs(name)``, ``build(spec)``); the widgets are generated from the
  ``ParamSpec`` rows (type, range, choices), so a new schedule appears here without app code;
- predicted loss curves come from a fitted schedule-aware law (``workbench.fit``: the
  multi-power law of Luo et al., ICLR 2025, or the LR-annealing law of Tissue et al. 2024), loaded
  from a ``FitResult.to_json()`` file or fitted here on runs of the store that logged ``lr``;
- runs go through ``workbench.train.train`` (one run, a background thread writing to the store)
  and sweeps through ``workbench.sweeps.run_sweep`` (batched executor).

Invalid widget values (warmup longer than the run, ...) show the schedule library's own error
message in the page; a missing dependency (a module another part of the project has not shipped)
shows a message, never a traceback.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import traceback
import uuid
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
import plotly.graph_objects as go

from workbench.apps.base import AppBase, escape, guarded
from workbench.apps.components.background import BackgroundTask
from workbench.figures.export import PREVIEW_ROLE

SCHEDULE_AWARE_LAWS = ("multi_power", "mpl", "multi-power", "lr_annealing", "annealing", "momentum")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")


# starting values for required parameters that have no default in the registry
MAX_LAW_BYTES = 5_000_000
"""Largest fitted-law JSON the page accepts as an upload."""
FORM_DEFAULTS = {"total_steps": 10000, "cycle_steps": 2000, "step_size": 3000, "gamma": 0.9995,
                 "cooldown_steps": 2000, "const_ratio": 0.5, "switch_step": 5000, "stage2_ratio": 0.3,
                 "batch_size": 512, "tokens_per_step": 524288}


def _module(name: str) -> Any:
    return importlib.import_module(name)  # the package's own modules: an import error is a bug, never hidden


def schedules_module() -> Any:
    return _module("workbench.schedules")


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


# ----------------------------------------------------------------------------- figures
def schedules_figure(schedules: list[tuple[str, Any]], *, x_axis: str = "steps", tokens_per_step: float = 1.0,
                     log_y: bool = False, boundaries: bool = True, peak_lr: float | None = None,
                     preview: tuple[str, Any] | None = None) -> go.Figure:
    """Overlay of schedules (label, Schedule) with ``workbench.figures.schedules.schedule_figure``
    (multiplier, or absolute LR when ``peak_lr`` is given, against steps or tokens, phase boundaries
    dotted); the ``preview`` (the form's current schedule) is drawn dashed grey on top."""
    items = list(schedules) + ([preview] if preview else [])
    if not items:
        return _empty_figure("Learning-rate schedules", "add a schedule, or fix the form's values")
    from workbench.figures.schedules import schedule_figure

    fig = schedule_figure(dict(items), x=x_axis, tokens_per_step=tokens_per_step, peak_lr=peak_lr, log_y=log_y,
                          mark_boundaries=boundaries, title="Learning-rate schedules")
    if preview:
        fig.data[-1].line.dash = "dash"
        fig.data[-1].line.color = "#444444"
        fig.data[-1].meta = {"wb_role": PREVIEW_ROLE}  # shown while editing, never exported
    fig.update_layout(height=380)
    return fig


def _empty_figure(title: str, note: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template="plotly_white", height=380, title=title,
                      annotations=[{"text": note, "showarrow": False, "xref": "paper", "yref": "paper",
                                    "x": 0.5, "y": 0.5, "font": {"size": 14, "color": "#888"}}])
    return fig


def prediction_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], *, x_axis: str = "steps",
                      tokens_per_step: float = 1.0, log_y: bool = False,
                      beyond: dict[str, tuple[int, str]] | None = None) -> go.Figure:
    """Predicted loss curves per schedule (label -> (steps, loss)). ``beyond``: label -> (first step outside
    the law's fitted domain, why); that part of a curve is dotted and the region shaded."""
    fig = go.Figure()
    beyond = beyond or {}
    scale = tokens_per_step if x_axis == "tokens" else 1.0
    for i, (label, (steps, loss)) in enumerate(curves.items()):
        x = np.asarray(steps) * scale
        color = PALETTE[i % len(PALETTE)]
        if label in beyond:
            cut = np.asarray(steps) >= beyond[label][0]
            fig.add_trace(go.Scatter(x=x[~cut | np.r_[cut[1:], False]], y=np.asarray(loss)[~cut | np.r_[cut[1:], False]],
                                     mode="lines", name=label, line={"color": color}))
            fig.add_trace(go.Scatter(x=x[cut], y=np.asarray(loss)[cut], mode="lines", name=f"{label} (extrapolated)",
                                     line={"color": color, "dash": "dot"}, showlegend=False))
        else:
            fig.add_trace(go.Scatter(x=x, y=loss, mode="lines", name=label, line={"color": color}))
    if beyond:
        x0 = min(v[0] for v in beyond.values()) * scale
        x1 = max(float(np.max(st)) for st, _ in curves.values()) * scale
        fig.add_vrect(x0=x0, x1=max(x1, x0), fillcolor="grey", opacity=0.12, line_width=0,
                      annotation_text="beyond the fitted domain", annotation_position="top left")
    fig.update_layout(template="plotly_white", height=340, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      title="Predicted loss (fitted law, before training)", legend={"orientation": "h", "y": -0.2},
                      xaxis_title="tokens" if x_axis == "tokens" else "step", yaxis_title="predicted loss")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


# ----------------------------------------------------------------------------- law predictions
def predict_curve(result: Any, lr: np.ndarray) -> np.ndarray:
    """Predicted loss at steps 1..T of a per-update absolute LR series ``lr`` (``lr[i]``: the LR of update i,
    T = len(lr)) with a fitted schedule-aware law (``FitResult.predict``; the loss at step s is measured
    after s updates, the step convention of ``workbench.fit.data``)."""
    lr = np.asarray(lr, dtype=np.float64)
    errors: list[Exception] = []
    curve = {"step": np.arange(1, len(lr) + 1), "curve": np.zeros(len(lr), dtype=np.int64), "lrs": [lr]}
    # a workbench FitResult takes the curve dict; other objects with predict(lr) are tried as well
    for call in (lambda: result.predict(curve, warn=False), lambda: result.predict(lr)):
        try:
            out = np.asarray(call(), dtype=np.float64).reshape(-1)
        except (TypeError, KeyError, AttributeError) as e:
            errors.append(e)
            continue
        if out.shape[0] == lr.shape[0]:
            return out
        errors.append(ValueError(f"prediction has {out.shape[0]} points for {lr.shape[0]} steps"))
    raise ValueError(f"law {getattr(result, 'law', '?')!r} cannot predict a loss curve from an LR schedule "
                     f"(a schedule-aware law such as the multi-power law is needed): {errors[-1]}")


LR_FLOOR = 1e-12
"""Relative floor for LRs of 0 in a prediction (``positive_lr``)."""


def positive_lr(lr: np.ndarray) -> np.ndarray:
    """The LR series with values of 0 (a schedule decaying to ``min_ratio = 0``, a zero warmup start) raised
    to ``LR_FLOOR`` x its peak, since the schedule-aware laws take the log of every LR after step 0. Their
    prediction is the limit as the LR goes to 0: no update happens at an LR of 0, and the multi-power law's
    loss drop for a decay to 1e-12 x peak differs from that limit by ~1e-9 of the drop. Negative or
    non-finite LRs are left for the law to refuse."""
    lr = np.asarray(lr, dtype=np.float64)
    peak = float(np.max(lr)) if lr.size and np.all(np.isfinite(lr)) else 0.0
    return np.where(lr == 0, LR_FLOOR * peak, lr) if peak > 0 else lr


def law_name(result: Any) -> str:
    law = getattr(result, "law", None)
    return str(getattr(law, "name", law) or type(result).__name__)


# ----------------------------------------------------------------------------- the app
class ScheduleLab(AppBase):
    """Compose, overlay and compare LR schedules; predict their loss curves; launch runs."""

    title = "Schedule lab"

    schedule = param.Selector(default=None, objects=[], doc="Schedule from the registry")
    chosen = param.List(default=[], doc="Chosen schedules, as plain spec dicts")
    x_axis = param.Selector(default="steps", objects=["steps", "tokens"])
    tokens_per_step = param.Number(default=524288.0, bounds=(1, None), doc="Tokens per optimizer update")
    log_y = param.Boolean(default=False)
    show_boundaries = param.Boolean(default=True)
    peak_lr = param.Number(default=3e-4, bounds=(0, None), inclusive_bounds=(False, True),
                           doc="Peak learning rate (absolute LR = peak x multiplier)")
    law_json = param.String(default=None, allow_None=True, doc="A fitted schedule-aware law (FitResult JSON)")
    base_config = param.String(default="task: modular\ntask_params: {p: 23, frac: 0.5}\nmodel: mlp\nseed: 0\n",
                               doc="TrainConfig fields (YAML) shared by launched runs")
    last_run = param.String(default=None, allow_None=True)
    last_sweep = param.String(default=None, allow_None=True)
    fit_runs = param.ListSelector(default=[], objects=[], doc="Runs of the store to fit the law on (one task)")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.param_widgets: dict[str, pn.widgets.Widget] = {}
        self._specs: dict[str, Any] = {}
        self._law: Any = None
        self._threads: list[threading.Thread] = []
        self._fit_what = ""
        self.fit_btn = pn.widgets.Button(label="Fit multi-power law on the chosen runs", css_classes=["wb-fit-runs"])
        self.fit_btn.on_click(lambda *_: self.fit_law_on_runs(background=True))
        self.fit_status = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["wb-fit-status"])
        self.fit_task = BackgroundTask(self, name="fit", disable=[self.fit_btn], status=self.fit_status)
        self.form = pn.Column(sizing_mode="stretch_width")
        self.plot = pn.pane.Plotly(schedules_figure([]), sizing_mode="stretch_width", height=400)
        self.pred_plot = pn.pane.Plotly(prediction_figure({}), sizing_mode="stretch_width", height=360,
                                        visible=False)
        self.pred_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                               sizing_mode="stretch_width", height=160, visible=False)
        self.chosen_table = pn.widgets.Tabulator(pd.DataFrame(columns=["label", "spec"]), disabled=True,
                                                 show_index=False, sizing_mode="stretch_width", height=180)
        self.status = pn.pane.Markdown("", sizing_mode="stretch_width")
        try:
            names = form_schedules()
        except Exception as e:  # noqa: BLE001 - shown in the page
            names = []
            self.show_error(f"**Schedules unavailable**: {e}")
        self.param.schedule.objects = names
        if names and self.schedule not in names:
            self.schedule = "cosine" if "cosine" in names else names[0]
        self._build_form()
        self._refresh()
        try:
            self.refresh_fit_runs()
        except Exception as e:  # noqa: BLE001 - the store is optional here: shown in the page
            self.show_error(f"**Runs unavailable**: {type(e).__name__}: {e}")

    # -------------------------------------------------------------- form
    @param.depends("schedule", watch=True)
    def _build_form(self) -> None:
        self.param_widgets = {}
        self._specs = {}
        if not self.schedule:
            self.form.objects = [pn.pane.Markdown("No schedules registered.")]
            return
        try:
            self.param_widgets, self._specs = schedule_form(self.schedule)
        except Exception as e:  # noqa: BLE001
            self.show_error(f"**{type(e).__name__}**: {e}")
            return
        for w in self.param_widgets.values():
            w.param.watch(lambda *_: self._refresh(), "value")
        self.form.objects = list(self.param_widgets.values())
        self._refresh()

    def form_values(self) -> dict[str, Any]:
        """The current form as schedule parameters (only those that differ from the defaults are
        needed, but all are given: the spec is then explicit)."""
        return {k: widget_value(self._specs[k], w) for k, w in self.param_widgets.items()}

    def set_values(self, **values: Any) -> None:
        """Set form widgets by parameter name (the same path as typing in the page)."""
        set_form_values(self.param_widgets, values, self.schedule)

    def current(self) -> Any:
        """The schedule the form describes (raises the schedule library's error if invalid)."""
        return schedules_module().build(self.schedule, **self.form_values())

    def chosen_schedules(self) -> list[tuple[str, Any]]:
        build = schedules_module().build
        return [(self._label(i, d), build(d)) for i, d in enumerate(self.chosen)]

    @staticmethod
    def _label(i: int, d: dict) -> str:
        extras = [f"{k}={v}" for k, v in d.items() if k in ("total_steps", "warmup_steps", "decay_fraction",
                                                             "decay_shape", "min_ratio")]
        return f"{i + 1}. {d.get('name')}" + (f" ({', '.join(extras[:3])})" if extras else "")

    # -------------------------------------------------------------- actions
    @guarded
    def add_current(self, *_: Any) -> None:
        self.clear_message()  # a new action: the previous message goes
        s = self.current()
        self.chosen = [*self.chosen, s.to_dict()]
        self.show_info(f"Added {s.name} ({s.total_steps} steps).")

    @guarded
    def add_spec(self, text: str) -> None:
        """Add a schedule from a JSON or YAML spec (nested schedules: warmup, sequence, rewarm)."""
        self.clear_message()  # a new action: the previous message goes
        from workbench import yamlio

        try:
            d = yamlio.load(text)
        except yamlio.YAMLError as e:
            raise ValueError(f"spec: not valid JSON/YAML ({e})") from None
        s = schedules_module().build(d)
        self.chosen = [*self.chosen, s.to_dict()]
        self.show_info(f"Added {s.name} ({s.total_steps} steps).")

    def remove(self, index: int) -> None:
        if not 0 <= index < len(self.chosen):
            raise ValueError(f"index: {index} out of range [0, {len(self.chosen) - 1}]")
        self.chosen = [d for i, d in enumerate(self.chosen) if i != index]

    def clear(self, *_: Any) -> None:
        self.chosen = []

    @guarded
    def load_law(self, text: str | bytes) -> None:
        """Load a fitted law from ``FitResult.to_json()`` text (at most ``MAX_LAW_BYTES``)."""
        self.clear_message()  # a new action: the previous message goes
        if len(text) > MAX_LAW_BYTES:
            raise ValueError(f"law file: {len(text):,} bytes, more than the limit of {MAX_LAW_BYTES:,} bytes "
                             "(MAX_LAW_BYTES); a fitted law's JSON is a few kB")
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"law file: not valid JSON ({e.msg} at line {e.lineno})") from None
        FitResult = _module("workbench.fit").FitResult
        self._law = FitResult.from_json(text)
        self.law_json = text
        self.show_info(f"Loaded law {law_name(self._law)}.")

    def set_law(self, result: Any) -> None:
        """Use an already fitted law object (notebooks, tests)."""
        self._law = result
        self.law_json = result.to_json() if hasattr(result, "to_json") else None
        self._refresh()

    def refresh_fit_runs(self, *_: Any) -> None:
        """Offer the store's runs for fitting (label: name · task · id), newest first."""
        runs = self.store.runs()
        if "created" in runs:
            runs = runs.sort_values("created", ascending=False)
        self.param.fit_runs.objects = {escape(f"{r.name} · {r.task or '?'} · {r.id}"): r.id for r in runs.itertuples()}
        self.fit_runs = [r for r in self.fit_runs if r in set(runs["id"])]

    def _fit_curves(self, ids: list[str]) -> list[tuple]:
        """The chosen runs as loss curves (run id, steps, loss, per-step LR); bad choices raise a message."""
        if not ids:
            raise ValueError("fit_runs: choose the runs to fit the law on (runs of one task that logged 'lr' "
                             "and a loss)")
        runs = self.store.runs().set_index("id")
        unknown = [r for r in ids if r not in runs.index]
        if unknown:
            raise ValueError(f"fit_runs: no run {unknown[0]!r} in the store")
        tasks = runs.loc[ids, "task"].fillna("").replace("", "?").value_counts()
        if len(tasks) > 1:
            mix = ", ".join(f"{t} ({n} run{'s' if n > 1 else ''})" for t, n in tasks.items())
            raise ValueError(f"fit_runs: the chosen runs mix tasks: {mix}. A loss law fitted across tasks "
                             "describes none of them; choose runs of one task")
        df = self.store.metrics(ids, ["lr", "train_loss", "loss"], wide=True)
        ycol = "train_loss" if "train_loss" in df else "loss"
        curves, missing = [], []
        for rid in ids:
            g = df[df["run"] == rid] if "lr" in df and ycol in df else df.iloc[:0]
            g = g.dropna(subset=["lr", ycol]) if len(g) else g
            # the loss at step 0 precedes every update: no schedule-aware law models it (workbench.fit.data)
            g = g[g["step"] > 0] if len(g) else g
            if len(g) < 3:
                missing.append(rid)
                continue
            steps = g["step"].to_numpy(dtype=np.int64)
            lr = np.interp(np.arange(int(steps.max()) + 1), steps, g["lr"].to_numpy(float))  # per-step LR
            curves.append((rid, steps, g[ycol].to_numpy(float), lr))
        if missing:
            names = ", ".join(runs.loc[missing, "name"].astype(str).tolist()[:5])
            raise ValueError(f"fit_runs: {len(missing)} chosen run(s) did not log both 'lr' and a loss "
                             f"('train_loss') at 3 steps or more: {names}")
        return curves

    @guarded
    def fit_law_on_runs(self, law: str = "multi_power", run_ids: list[str] | None = None,
                        background: bool = False) -> Any:
        """Fit a schedule-aware law on chosen runs of the store (``fit_runs``; one task only) that logged
        ``lr`` and a loss. ``background=True`` (the page's button) fits in a thread with a spinner and the
        elapsed time; otherwise returns the FitResult. Bad input shows a message and returns None."""
        if self.fit_task.busy:
            raise ValueError("fit_runs: a fit is already running; wait for it to finish")
        fitmod = _module("workbench.fit")
        curves = self._fit_curves(list(self.fit_runs if run_ids is None else run_ids))
        data = fitmod.FitData.from_curves(curves)
        self.clear_message()
        self._fit_what = f"{law} on {len(curves)} run(s)"
        if not background:
            t0 = time.perf_counter()
            try:
                res = fitmod.fit(law, data)
            except Exception as e:  # noqa: BLE001 - shown in the page (the traceback goes to the log)
                traceback.print_exc()
                self._fit_failed(e)
                return None
            self._fitted(res, time.perf_counter() - t0)
            return res
        self.fit_task.start(fitmod.fit, law, data, label=f"Fitting {self._fit_what}",
                            on_done=lambda res: self._fitted(res, self.fit_task.elapsed), on_error=self._fit_failed)
        return None

    def _fitted(self, res: Any, seconds: float) -> None:
        self._law = res
        self.law_json = res.to_json()
        self.fit_status.object = f"Fitted {self._fit_what} in {seconds:.1f} s (training R² {res.r2:.4f})."
        self.show_info(f"Fitted {self._fit_what}.")

    def _fit_failed(self, e: BaseException) -> None:
        self.show_error(f"**Fit failed**: {type(e).__name__}: {e}")
        self.fit_status.object = f"Fit of {self._fit_what} failed."

    def predictions(self) -> pd.DataFrame:
        """Predicted final loss of each chosen schedule under the loaded law (empty without a law), with the
        step from which the prediction leaves the law's fitted domain and why (``workbench.fit`` flags)."""
        rows = []
        beyond = self.extrapolation()
        for label, (steps, loss) in self._prediction_curves().items():
            b = beyond.get(label)
            rows.append({"schedule": label, "steps": int(steps[-1]), "final loss": float(loss[-1]),
                         "min loss": float(np.min(loss)), "extrapolated from step": None if b is None else int(b[0]),
                         "why": "" if b is None else b[1]})
        return pd.DataFrame(rows).astype({"why": object}) if rows else pd.DataFrame(rows)

    def extrapolation(self) -> dict[str, tuple[int, str]]:
        """Label -> (first step whose prediction is outside the fitted domain, why) for a workbench FitResult
        (other law objects carry no domain: empty)."""
        if self._law is None or not hasattr(self._law, "flags"):
            return {}
        out = {}
        for label, s in self.chosen_schedules():
            T = int(s.total_steps)
            lr = np.asarray(s(np.arange(T)), float) * self.peak_lr
            X = {"step": np.arange(1, T + 1), "curve": np.zeros(T, dtype=np.int64), "lrs": [lr]}
            try:
                flags, _, why = self._law.flags(X)
            except Exception:  # noqa: BLE001 - no flags rather than no prediction
                continue
            idx = np.nonzero(np.asarray(flags) != "inside")[0]
            if len(idx):
                out[label] = (int(idx[0]) + 1, why[idx[-1]])
        return out

    def _prediction_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if self._law is None:
            return {}
        out = {}
        for label, s in self.chosen_schedules():
            T = int(s.total_steps)  # the loss after update T-1 is logged at step T (workbench.fit.data)
            lr = positive_lr(np.asarray(s(np.arange(T))) * self.peak_lr)
            out[label] = (np.arange(1, T + 1), predict_curve(self._law, lr))
        return out

    # -------------------------------------------------------------- training
    def _train_config(self, spec: dict, base: dict | None = None) -> Any:
        trainmod = _module("workbench.train")
        cfg = dict(base or {})
        cfg.update({"schedule": spec, "steps": int(spec.get("total_steps") or 0) or cfg.get("steps"),
                    "lr": float(self.peak_lr)})
        return trainmod.TrainConfig.from_dict(cfg)

    def base(self) -> dict:
        """The base training config (YAML text of ``TrainConfig`` fields) as a dict."""
        from workbench import yamlio

        try:
            d = yamlio.load(self.base_config or "") or {}
        except yamlio.YAMLError as e:
            raise ValueError(f"base_config: not valid YAML ({e})") from None
        if not isinstance(d, dict):
            raise ValueError("base_config: must be a YAML mapping of TrainConfig fields")
        return d

    @guarded
    def launch_run(self, *_: Any, index: int = -1, background: bool = True) -> str | None:
        """Train one chosen schedule (default: the last) with ``workbench.train.train`` in a thread
        writing to the store; returns the run id."""
        if not self.chosen:
            raise ValueError("chosen: add a schedule first (the Add button)")
        spec = self.chosen[index]
        cfg = self._train_config(spec, self.base())
        trainmod = _module("workbench.train")
        store_path = str(self.store.path)
        run_id = uuid.uuid4().hex[:12]
        name = f"lab-{spec.get('name')}"

        def work() -> None:
            from workbench.store import RunStore

            st = RunStore(store_path)
            try:
                trainmod.train(cfg, st, name=name, run_id=run_id)
            except Exception as e:  # noqa: BLE001 - reported in the page
                self.show_error(f"**Run {run_id} failed**: {type(e).__name__}: {e}")
            finally:
                st.close()

        self._start(work, run_id, background)
        self.last_run = run_id
        self.status.object = f"Run `{run_id}` started. [Watch it in the live monitor](./monitor?run={run_id})"
        return run_id

    def _start(self, work: Any, run_id: str, background: bool) -> str:
        if background:
            t = threading.Thread(target=work, daemon=True, name=f"schedule-lab-{run_id}")
            self._threads.append(t)
            t.start()
        else:
            work()
        return run_id

    def sweep_spec(self, name: str = "schedule-lab") -> dict:
        """A grid sweep over the chosen schedules (one member per schedule) as ``SweepSpec`` plain
        data; the base config's ``steps`` is the schedules' common ``total_steps``."""
        if not self.chosen:
            raise ValueError("chosen: add at least one schedule first")
        totals = {int(d.get("total_steps") or self._built_total(d)) for d in self.chosen}
        if len(totals) != 1:
            raise ValueError(f"chosen: schedules in one sweep must have the same length (total_steps), "
                             f"got {sorted(totals)}; train them one by one instead")
        base = self.base()
        base.update(lr=float(self.peak_lr), steps=totals.pop())
        return {"name": name, "strategy": "grid", "base": base,
                "axes": {"schedule": [dict(d) for d in self.chosen]}, "seeds": [int(base.pop("seed", 0))]}

    @staticmethod
    def _built_total(d: dict) -> int:
        return int(schedules_module().build(d).total_steps)

    @guarded
    def launch_sweep(self, *_: Any, background: bool = True) -> str | None:
        """Run the chosen schedules as one batched sweep (``workbench.sweeps.run_sweep``) in a thread
        writing to the store; returns the sweep id."""
        from workbench.apps.sweep_board import sweeps_api

        spec = _module("workbench.sweeps.spec").SweepSpec.from_dict(self.sweep_spec()).validate()
        run_sweep = sweeps_api("run_sweep")
        store_path = str(self.store.path)
        sid = "sw-" + uuid.uuid4().hex[:10]

        def work() -> None:
            from workbench.store import RunStore

            st = RunStore(store_path)
            try:
                run_sweep(spec, executor="batched", store=st, sweep_id=sid, progress=False)
            except Exception as e:  # noqa: BLE001 - shown in the page
                self.show_error(f"**Sweep {sid} failed**: {type(e).__name__}: {e}")
            finally:
                st.close()

        self._start(work, sid, background)
        self.last_sweep = sid
        self.status.object = (f"Sweep `{sid}` of {len(self.chosen)} schedule(s) started. "
                              "[Live monitor](./monitor) · [Sweep board](./sweeps)")
        return sid

    @guarded
    def optimise(self, *_: Any, knots: int = 32, iters: int = 300) -> dict | None:
        """Add the schedule minimising the law's predicted final loss (``workbench.schedule_design``, Luo et
        al. 2025) to the chosen schedules: the chosen ones' length and (longest) warmup, the lab's peak LR,
        min LR 0, non-increasing after the warmup; its predicted loss joins the overlay. Returns its spec."""
        if self._law is None:
            raise ValueError("law: load or fit a schedule-aware law first (Loss prediction)")
        base = [d for d in self.chosen if d.get("name") != "optimized"]
        if not base:
            raise ValueError("chosen: add the baseline schedules first; the optimised one gets their length")
        scheds = [schedules_module().build(d) for d in base]
        totals = {int(s.total_steps) for s in scheds}
        if len(totals) != 1:
            raise ValueError(f"chosen: schedules must have the same length (total_steps) to compare, "
                             f"got {sorted(totals)}")
        T = totals.pop()
        warm = max(int(s.params.get("warmup_steps") or 0) for s in scheds)
        from_zero = any(bool(s.params.get("warmup_from_zero")) for s in scheds)
        design = _module("workbench.schedule_design")
        opt = design.optimize_schedule(self._law, T, peak_lr=float(self.peak_lr), warmup=min(warm, T - 3),
                                       knots=max(1, min(knots, T - warm - 1)), iters=iters,
                                       warmup_from_zero=from_zero)
        spec = opt.to_dict()
        self.chosen = [*base, spec]
        d = opt.design
        notes = "".join(f" ({escape(n)})" for n in d.notes)
        self.status.object = f"Optimised schedule added: predicted final loss {d.final:.4f}{notes}."
        return spec

    # -------------------------------------------------------------- refresh
    @param.depends("chosen", "x_axis", "tokens_per_step", "log_y", "show_boundaries", "peak_lr", "law_json",
                   watch=True)
    def _refresh(self) -> None:
        preview, err = None, None
        if self.param_widgets:
            try:
                preview = ("preview: " + self.schedule, self.current())
            except Exception as e:  # noqa: BLE001 - the schedule library's message, shown in the page
                err = f"**{type(e).__name__}**: {e}"
        try:
            chosen = self.chosen_schedules()
        except Exception as e:  # noqa: BLE001
            chosen, err = [], f"**{type(e).__name__}**: {e}"
        if err:
            self.show_error(err)
        elif self.message.alert_type == "danger":
            self.clear_message()
        self.plot.object = schedules_figure(chosen, x_axis=self.x_axis, tokens_per_step=self.tokens_per_step,
                                            log_y=self.log_y, boundaries=self.show_boundaries, preview=preview)
        # object dtype: Bokeh serialises pandas' new string dtype in this table as NaN
        self.chosen_table.value = pd.DataFrame(
            {"label": [lbl for lbl, _ in chosen], "spec": [json.dumps(d) for d in self.chosen]}, dtype=object)
        self._refresh_predictions()

    def _refresh_predictions(self) -> None:
        if self._law is None or not self.chosen:
            self.pred_plot.visible = self.pred_table.visible = False
            return
        try:
            curves = self._prediction_curves()
        except Exception as e:  # noqa: BLE001
            self.show_error(f"**{type(e).__name__}**: {e}")
            self.pred_plot.visible = self.pred_table.visible = False
            return
        beyond = self.extrapolation()
        self.pred_plot.object = prediction_figure(curves, x_axis=self.x_axis, tokens_per_step=self.tokens_per_step,
                                                  beyond=beyond)
        self.pred_table.value = self.predictions()
        if beyond:
            label, (st, why) = next(iter(beyond.items()))
            self.show_info(f"Shaded: predictions beyond what the law was fitted on ({label}: from step {st}; {why}).")
        self.pred_plot.visible = self.pred_table.visible = True

    def figure(self) -> go.Figure:
        return self.plot.object

    def data(self) -> pd.DataFrame | None:
        """Every chosen schedule's multiplier per step (long form), for export."""
        frames = []
        for label, s in self.chosen_schedules():
            steps = np.arange(int(s.total_steps) + 1)
            frames.append(pd.DataFrame({"schedule": label, "step": steps, "tokens": steps * self.tokens_per_step,
                                        "multiplier": s(steps), "lr": np.asarray(s(steps)) * self.peak_lr}))
        return pd.concat(frames, ignore_index=True) if frames else None

    # -------------------------------------------------------------- view
    def view(self) -> pn.viewable.Viewable:
        add = pn.widgets.Button(label="Add to chosen", color="primary")
        add.on_click(self.add_current)
        clear = pn.widgets.Button(label="Clear chosen")
        clear.on_click(self.clear)
        spec_text = pn.widgets.TextAreaInput(label="Or a spec (JSON / YAML, nested schedules allowed)", height=90,
                                             placeholder='{"name": "cosine", "total_steps": 10000}')
        add_spec = pn.widgets.Button(label="Add spec")
        add_spec.on_click(lambda *_: self.add_spec(spec_text.value))

        law_file = pn.widgets.FileInput(accept=".json", multiple=False)
        law_file.param.watch(lambda e: e.new and self.load_law(e.new), "value")
        refresh_runs = pn.widgets.Button(label="↻", width=40, sizing_mode="fixed", description="Refresh the run list")
        refresh_runs.on_click(self.refresh_fit_runs)
        pick = pn.widgets.MultiChoice.from_param(self.param.fit_runs, label="Runs to fit on (one task)",
                                                 css_classes=["wb-fit-pick"], max_items=200)

        base_cfg = pn.widgets.TextAreaInput.from_param(
            self.param.base_config, label="Base training config (YAML; schedule, steps and lr come from here)",
            height=100)
        run_btn = pn.widgets.Button(label="Train last chosen", color="success")
        run_btn.on_click(self.launch_run)
        sweep_btn = pn.widgets.Button(label="Sweep all chosen (batched)", color="success")
        sweep_btn.on_click(self.launch_sweep)

        controls = pn.Column(
            pn.widgets.Select.from_param(self.param.schedule, label="Schedule"),
            self.form, pn.Row(add, clear), spec_text, add_spec,
            pn.layout.Divider(),
            pn.widgets.RadioButtonGroup.from_param(self.param.x_axis),
            pn.widgets.FloatInput.from_param(self.param.tokens_per_step, label="Tokens per step"),
            pn.widgets.Checkbox.from_param(self.param.log_y, label="log y"),
            pn.widgets.Checkbox.from_param(self.param.show_boundaries, label="phase boundaries"),
            pn.widgets.FloatInput.from_param(self.param.peak_lr, label="Peak LR", step=1e-4),
            width=320, sizing_mode="fixed",
        )
        law_box = pn.Card(pn.pane.Markdown("Upload a fitted schedule-aware law (`FitResult.to_json()`), "
                                           "or fit one on runs of the store that logged `lr` (one task):"),
                          law_file, pn.Row(pick, refresh_runs), pn.Row(self.fit_btn, self.fit_task.spinner),
                          self.fit_status, title="Loss prediction", collapsed=False)
        launch_box = pn.Card(base_cfg, pn.Row(run_btn, sweep_btn), self.status, title="Launch", collapsed=False)
        opt_btn = pn.widgets.Button(label="Optimise", color="primary", css_classes=["wb-optimise"],
                                    description="Add the schedule that minimises the law's predicted final loss")
        opt_btn.on_click(self.optimise)
        train_btn = pn.widgets.Button(label="Train it and the chosen baselines", color="success",
                                      css_classes=["wb-train-optimised"])
        train_btn.on_click(self.launch_sweep)
        main = pn.Column(self.plot, self.chosen_table, pn.Row(opt_btn, train_btn), law_box, self.pred_plot, self.pred_table, launch_box,
                         self._export(), sizing_mode="stretch_width")
        return pn.Row(controls, main, sizing_mode="stretch_width")

    def _export(self) -> pn.viewable.Viewable:
        try:
            ExportPanel = importlib.import_module("workbench.apps.export").ExportPanel
        except (ImportError, AttributeError):
            return pn.pane.Markdown("*Export is not available in this installation.*")
        return ExportPanel(figure=self.figure, data=self.data, fit_json=lambda: self.law_json,
                           basename="schedules")
