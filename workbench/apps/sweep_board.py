"""Sweep board: define a sweep (YAML editor or a simple form), validate it, launch it in the
background, watch per-member progress, and compare the results.

- Specs are parsed and validated by ``workbench.sweeps.SweepSpec`` (``from_yaml`` / ``validate``),
  whose error names the field; sweeps run through ``workbench.sweeps.run_sweep`` in a thread that
  writes to the run store.
- Progress is read from the store (run status, last logged step against the config's ``steps``,
  an ETA from the members' step rate), so it also shows sweeps started elsewhere (CLI, notebook).
- Results: a Tabulator table (varied hyperparameters + final metrics), parallel coordinates
  (plotly ``Parcoords``, log10 axes for learning rates and weight decays), final metric against a
  hyperparameter grouped by another (loss against LR per model size, as in Wortsman et al. 2023,
  "Small-scale proxies for large-scale Transformer training instabilities"), and the AlgoPerf
  performance profile (Dahl et al. 2023) from ``workbench.sweeps.algoperf`` when the spec has a
  target.

The plotly figures are built in this module (small functions over the tables the store and
``workbench.sweeps`` return) because ``workbench.figures.sweeps`` has no builders for these views.
"""

from __future__ import annotations

import importlib
import math
import threading
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
import plotly.graph_objects as go
from bokeh.models.widgets.tables import NumberFormatter

from workbench.apps.base import AppBase, escape, guarded, show_table
from workbench.importance import hyperparameter_importance
from workbench.runs_table import lower_is_better
from workbench.sweeps.results import RESULT_METRICS, results_table  # noqa: F401 - re-exported
from workbench.sweeps.results import label as _label

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
IMPORTANCE_TAB = 3  # index of the Importance tab
SIZE_HINTS = ("width", "d_model", "n_embd", "params", "size", "n_layer", "depth", "hidden")
LOG_HINTS = ("lr", "weight_decay", "wd", "eps", "lr_min", "params", "tokens")

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


def _module(name: str) -> Any:
    return importlib.import_module(name)  # the package's own modules: an import error is a bug, never hidden


def sweeps_api(name: str) -> Any:
    """``workbench.sweeps.<name>`` (``run_sweep``, ``sweep_status``, ...), from the package or its
    ``runner`` module."""
    mod = _module("workbench.sweeps")
    fn = getattr(mod, name, None)
    return fn if fn is not None else getattr(_module("workbench.sweeps.runner"), name)


def _is_log(col: str, values: pd.Series) -> bool:
    leaf = col.split(".")[-1]
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty or (v <= 0).any():
        return False
    return leaf in LOG_HINTS or leaf.endswith("lr") or (v.max() / v.min() >= 100)


# ----------------------------------------------------------------------------- tables
def stored_spec(store: Any, sweep: str) -> dict:
    """The SweepSpec plain data of a sweep in the store (``run_sweep`` stores it under ``"spec"``
    next to the executor; a sweep created by hand may store the spec itself)."""
    rec = store.get_sweep(sweep)["spec"] or {}
    return rec["spec"] if isinstance(rec.get("spec"), dict) else rec

def pruning_reasons(store: Any, sweep: str, run_ids: pd.Series) -> list[str]:
    """For each run of a pruned Bayesian sweep, why its trial was pruned (the forecast decision of
    ``workbench.sweeps.sweep_pruning``), or "" for a run that was kept."""
    members = sweeps_api("sweep_members")(sweep, store)
    dec = sweeps_api("sweep_pruning")(sweep, store)
    trial_of = dict(zip(members["run_id"], members["trial"]))
    why = {int(t): f"P(beats {best:.4g}) = {prob:.2g} at step {int(st)}"
           for t, p, prob, best, st in zip(dec["trial"], dec["pruned"], dec["prob"], dec["best"], dec["step"]) if p}
    return [why.get(trial_of.get(i), "") for i in run_ids]


def progress_table(store: Any, sweep: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-member progress of a sweep from the store (status, last step / total steps, steps per
    second, ETA) and a summary (counts per status, expected members, overall ETA in seconds)."""
    runs = store.runs(sweep=sweep)
    summary: dict[str, Any] = {"members": len(runs), "expected": None, "eta_s": None}
    try:  # members not started yet count as pending (workbench.sweeps knows the spec's members)
        st = sweeps_api("sweep_status")(sweep, store)
        summary.update(expected=st["members"], status=st["status"])
    except Exception:  # noqa: BLE001 - a sweep recorded without a spec: count the runs only
        pass
    if runs.empty:
        summary["counts"] = {"pending": summary["expected"]} if summary["expected"] else {}
        return pd.DataFrame(columns=["id", "name", "status", "step", "steps", "progress", "steps/s", "eta_s"]), summary
    ids = runs["id"].tolist()
    q = ",".join("?" * len(ids))
    rows = store._query(f"SELECT run, MAX(step), MIN(wall), MAX(wall) FROM metrics WHERE run IN ({q}) GROUP BY run",
                        ids)
    info = {r[0]: r[1:] for r in rows}
    out = []
    now = time.time()
    for _, r in runs.iterrows():
        last, w0, w1 = info.get(r["id"], (None, None, None))
        total = r["config"].get("steps") if isinstance(r["config"], dict) else None
        step = int(last) if last is not None else 0
        done = r["status"] != "running"
        frac = 1.0 if r["status"] == "finished" else (min(step / total, 1.0) if total else float("nan"))
        rate = step / (w1 - w0) if (last is not None and w1 and w0 and w1 > w0) else float("nan")
        eta = 0.0 if done else ((total - step) / rate if total and rate and rate > 0 else float("nan"))
        if not done and last is not None and w1 and now - w1 > 0 and not math.isnan(eta):
            eta = max(eta - (now - w1), 0.0)
        out.append({"id": r["id"], "name": r["name"], "status": r["status"], "step": step, "steps": total,
                    "progress": frac, "steps/s": rate, "eta_s": eta})
    df = pd.DataFrame(out)
    if (df["status"] == "pruned").any():
        df["why"] = pruning_reasons(store, sweep, df["id"])
    summary["counts"] = {k: int(v) for k, v in df["status"].value_counts().items()}
    if summary["expected"] and summary["expected"] > len(df):
        summary["counts"]["pending"] = summary["expected"] - len(df)
    etas = df.loc[df["status"] == "running", "eta_s"].dropna()
    summary["eta_s"] = float(etas.max()) if len(etas) else (0.0 if (df["status"] != "running").all() else None)
    return df, summary


# ----------------------------------------------------------------------------- figures
def metric_vs_param_figure(table: pd.DataFrame, x: str, y: str, group: str | None = None, *,
                           log_x: bool = True, log_y: bool = False) -> go.Figure:
    """``y`` (e.g. final test loss) against hyperparameter ``x`` (e.g. LR), one line per value of
    ``group`` (e.g. model size): the mean over seeds with min/max as error bars."""
    fig = go.Figure()
    if x in table and y in table:
        df = table[[c for c in {x, y, group} if c]].copy()
        df[y] = pd.to_numeric(df[y], errors="coerce")
        df = df.dropna(subset=[y])
        groups = df.groupby(df[group].astype(str)) if group and group in df else [("all runs", df)]
        for i, (g, d) in enumerate(groups):
            agg = d.groupby(x)[y].agg(["mean", "min", "max"]).reset_index()
            try:
                agg = agg.sort_values(x)
            except TypeError:
                pass
            fig.add_trace(go.Scatter(
                x=agg[x], y=agg["mean"], mode="lines+markers", name=f"{group.removeprefix('cfg.')}={g}" if group else g,
                line={"color": PALETTE[i % len(PALETTE)]},
                error_y={"type": "data", "symmetric": False, "array": agg["max"] - agg["mean"],
                         "arrayminus": agg["mean"] - agg["min"], "thickness": 1}))
    fig.update_layout(template="plotly_white", height=380, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      title=f"{y} against {x.removeprefix('cfg.')}", xaxis_title=x.removeprefix("cfg."),
                      yaxis_title=y, legend={"orientation": "h", "y": -0.2})
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def _short_labels(cols: list[str]) -> dict[str, str]:
    """Axis labels: the last part of each column name (``cfg.model_params.width`` -> ``width``), the
    full name without its ``cfg.``/``final.`` prefix where two last parts collide."""
    leaf = {c: c.split(".")[-1] for c in cols}
    counts = pd.Series(list(leaf.values())).value_counts()
    return {c: (leaf[c] if counts[leaf[c]] == 1 else c.split(".", 1)[-1]) for c in cols}


def _log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks of a log10 axis at 1, 2 and 5 times the powers of ten inside [lo, hi] (log10 values)."""
    vals = [math.log10(m * 10.0 ** e) for e in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in (1, 2, 5)]
    vals = [v for v in vals if lo - 1e-9 <= v <= hi + 1e-9] or [lo, hi]
    return vals, [f"{10 ** v:.3g}" for v in vals]


def parallel_coordinates_figure(table: pd.DataFrame, color: str | None = None, *,
                                uirevision: str | None = None) -> go.Figure:
    """Parallel coordinates of a sweep's members: one axis per varied hyperparameter (``cfg.*``, not
    the seed) and one for ``color`` (the objective; all ``final.*`` metrics when it is None), lines
    coloured by ``color``. Categorical columns (schedules, optimizers) become integer-coded axes with
    their labels; positive columns spanning decades (LR, weight decay) are drawn on a log10 scale with
    ticks in the real values. Labels are short and tilted so they do not overlap. Drag along an axis
    to brush (select a range; several axes combine); ``uirevision`` (the sweep id) keeps the brushes
    while the board refreshes."""
    dims = []
    cols = [c for c in table.columns if c.startswith("cfg.") and c != "cfg.seed"
            and table[c].astype(str).nunique() > 1]  # an axis with one value says nothing
    cols += [color] if color and color in table else [c for c in table.columns if c.startswith("final.")]
    labels = _short_labels(cols)
    for c in cols:
        s = table[c]
        num = pd.to_numeric(s, errors="coerce")
        if num.notna().all() and len(num):
            if _is_log(c, num):
                v = np.log10(num.to_numpy(float))
                tv, tt = _log_ticks(float(v.min()), float(v.max()))
                dims.append({"label": f"{labels[c]} (log)", "values": v, "tickvals": tv, "ticktext": tt})
            else:
                dims.append({"label": labels[c], "values": num.to_numpy(float)})
        else:
            cats = sorted(s.astype(str).unique())
            code = {v: i for i, v in enumerate(cats)}
            dims.append({"label": labels[c], "values": s.astype(str).map(code).to_numpy(),
                         "tickvals": list(range(len(cats))), "ticktext": [escape(c) for c in cats]})
    line: dict[str, Any] = {}
    if color and color in table:
        cv = pd.to_numeric(table[color], errors="coerce")
        if cv.notna().any():
            line = {"color": cv.to_numpy(float), "colorscale": "Viridis", "showscale": True,
                    "colorbar": {"title": {"text": labels.get(color, color)}}}
    tilt = -25 if len(dims) > 5 else 0
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line, labelangle=tilt, labelside="top",
                                 labelfont={"size": 12}, tickfont={"size": 10}, rangefont={"size": 9},
                                 uirevision=uirevision) if dims else None)
    fig.update_layout(template="plotly_white", height=400, margin={"l": 70, "r": 70, "t": 90 if tilt else 70, "b": 30},
                      title={"text": "Parallel coordinates (drag along an axis to brush)", "y": 0.98},
                      uirevision=uirevision)
    return fig


def importance_figure(imp: pd.DataFrame, objective: str) -> go.Figure:
    """fANOVA importances (``workbench.importance.hyperparameter_importance``) as horizontal bars."""
    fig = go.Figure()
    if len(imp):
        d = imp.iloc[::-1]
        fig.add_trace(go.Bar(x=d["importance"], y=[p.removeprefix("cfg.") for p in d["param"]], orientation="h",
                             marker={"color": "#1f77b4"}, text=[f"{v:.2f}" for v in d["importance"]],
                             textposition="auto", name="importance"))
    n = imp.attrs.get("n_trials", 0)
    fig.update_layout(template="plotly_white", height=max(220, 60 + 40 * len(imp)),
                      margin={"l": 140, "r": 20, "t": 50, "b": 50}, xaxis_range=[0, 1],
                      title=f"Hyperparameter importance for {objective} (fANOVA, {n} members)",
                      xaxis_title="share of the objective's variance explained")
    return fig


def profile_figure(profile: pd.DataFrame) -> go.Figure:
    """AlgoPerf performance profiles ρ_s(τ) (rows: submissions, columns: τ)."""
    fig = go.Figure()
    taus = np.asarray(profile.columns, dtype=float)
    for i, (sub, row) in enumerate(profile.iterrows()):
        fig.add_trace(go.Scatter(x=taus, y=row.to_numpy(float), mode="lines", line_shape="hv", name=str(sub),
                                 line={"color": PALETTE[i % len(PALETTE)]}))
    fig.update_layout(template="plotly_white", height=340, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      title="AlgoPerf performance profile", xaxis_title="τ (time / best time)",
                      yaxis_title="ρ(τ): share of workloads", yaxis_range=[-0.02, 1.02])
    return fig


# ----------------------------------------------------------------------------- the app
class SweepBoard(AppBase):
    """Define, launch, watch and compare sweeps."""

    title = "Sweep board"

    yaml_text = param.String(default=EXAMPLE_SPEC, doc="Sweep spec (YAML)")
    executor = param.Selector(default="batched", objects=["batched", "local", "ray"])
    sweep = param.Selector(default=None, objects=[], allow_None=True, doc="Sweep (id) to show")
    metric = param.Selector(default=None, objects=[], allow_None=True, doc="Result column on the y axis")
    x_param = param.Selector(default=None, objects=[], allow_None=True, doc="Hyperparameter on the x axis")
    group_by = param.Selector(default=None, objects=[], allow_None=True, doc="Hyperparameter for the lines")
    log_x = param.Boolean(default=True)
    log_y = param.Boolean(default=False)
    auto_refresh = param.Boolean(default=True, doc="Refresh progress every 2 s while served")

    # the simple form
    form_name = param.String(default="my-sweep")
    form_task = param.String(default="modular")
    form_schedules = param.List(default=["cosine", "linear"])
    form_lrs = param.String(default="1e-3, 3e-3, 1e-2")
    form_seeds = param.String(default="0")
    form_steps = param.Integer(default=300, bounds=(1, None))

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.spec: Any = None
        self.launched: str | None = None
        self._table = pd.DataFrame()
        self._threads: list[threading.Thread] = []
        self._callback: Any = None
        self.members_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=180,
                                                  sizing_mode="stretch_width")
        self.progress = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=200,
                                             sizing_mode="stretch_width",
                                             formatters={"progress": {"type": "progress", "max": 1},
                                                         "steps/s": NumberFormatter(format="0,0.0"),
                                                         "eta_s": NumberFormatter(format="0,0")})
        self.progress_md = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.results = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=260,
                                            sizing_mode="stretch_width", pagination="local", page_size=50)
        self.plot = pn.pane.Plotly(metric_vs_param_figure(pd.DataFrame(), "x", "y"), sizing_mode="stretch_width",
                                   height=400)
        self.parcoords = pn.pane.Plotly(parallel_coordinates_figure(pd.DataFrame()), sizing_mode="stretch_width",
                                        height=400)
        self.profile = pn.pane.Plotly(profile_figure(pd.DataFrame()), sizing_mode="stretch_width", height=360,
                                      visible=False)
        self.score = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, height=140, sizing_mode="stretch_width",
                                          visible=False)
        self.profile_md = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.importance = pn.pane.Plotly(importance_figure(pd.DataFrame(columns=["param", "importance"]), ""),
                                         sizing_mode="stretch_width", height=300, visible=False)
        self.importance_md = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._objective: tuple[str, str] | None = None
        self._metric_sweep: str | None = None
        self._statuses: tuple = ()
        self._importance_key: tuple | None = None
        self.importance_lazy = False
        self.refresh_sweeps()

    # -------------------------------------------------------------- spec
    @guarded
    def validate(self, *_: Any) -> Any:
        """Parse and validate the YAML; shows the member count, or the spec library's error."""
        SweepSpec = _module("workbench.sweeps.spec").SweepSpec
        spec = SweepSpec.from_yaml(self.yaml_text if "\n" in self.yaml_text else self.yaml_text + "\n")
        spec.validate()
        self.spec = spec
        try:
            members = spec.members()
            show_table(self.members_table, pd.DataFrame(
                [{"member": m.index, "seed": m.seed, **{k: _label(v) for k, v in m.params.items()}} for m in members]))
            n = len(members)
        except ValueError:  # bayes: members come while it runs
            n = spec.n_members()
            self.members_table.value = pd.DataFrame()
        self.show_info(f"Spec **{spec.name}** is valid: {n} member(s), strategy {spec.strategy}.")
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

    # -------------------------------------------------------------- launch
    @guarded
    def launch(self, *_: Any, background: bool = True) -> str | None:
        """Validate and run the sweep with ``workbench.sweeps.run_sweep`` (a thread writing to the store)."""
        spec = self.validate()
        if spec is None:
            return None
        run_sweep = sweeps_api("run_sweep")
        store_path, executor = str(self.store.path), self.executor
        sid = "sw-" + uuid.uuid4().hex[:10]

        def work() -> None:
            from workbench.store import RunStore

            st = RunStore(store_path)
            try:
                run_sweep(spec, executor=executor, store=st, sweep_id=sid, progress=False)
            except Exception as e:  # noqa: BLE001 - shown in the page
                self.show_error(f"**Sweep {spec.name} failed**: {type(e).__name__}: {e}")
            finally:
                st.close()

        if background:
            t = threading.Thread(target=work, daemon=True, name=f"sweep-board-{sid}")
            self._threads.append(t)
            t.start()
            deadline = time.time() + 5.0  # the runner registers the sweep first: wait for it briefly
            while time.time() < deadline and t.is_alive() and sid not in set(self.store.sweeps()["id"]):
                time.sleep(0.1)
        else:
            work()
        self.launched = sid
        self.refresh_sweeps()
        if sid in self.param.sweep.objects:
            self.sweep = sid
        if self.message.alert_type != "danger" or not self.message.visible:
            self.show_info(f"Sweep **{spec.name}** (`{sid}`) launched with the {executor} executor. "
                           "[Live monitor](./monitor)")
        return sid

    # -------------------------------------------------------------- store views
    def refresh_sweeps(self) -> None:
        try:
            sw = self.store.sweeps()
        except Exception as e:  # noqa: BLE001
            self.show_error(f"**Store unavailable**: {e}")
            return
        ids = sw["id"].tolist()
        self._sweep_names = dict(zip(sw["id"], sw["name"]))
        self.param.sweep.objects = ids
        if ids and self.sweep not in ids:  # the newest of the user's own sweeps, else the newest reference one
            own = [i for i in ids if not str(self._sweep_names.get(i, "")).startswith("reference-")]
            self.sweep = (own or ids)[-1]
        elif not ids:
            self.progress_md.object = "No sweeps in the store yet: define one on the left and launch it."

    @param.depends("sweep", watch=True)
    def _on_sweep(self) -> None:
        self.refresh_progress()
        self.refresh_results()

    @guarded
    def refresh_progress(self) -> None:
        if not self.sweep:
            return
        df, summ = progress_table(self.store, self.sweep)
        show_table(self.progress, df)
        counts = ", ".join(f"{k}: {v}" for k, v in summ["counts"].items() if v)
        exp = summ.get("expected")
        eta = summ.get("eta_s")
        eta_txt = "done" if eta == 0 else ("unknown" if eta is None or math.isnan(eta) else f"{eta:.0f} s")
        self.progress_md.object = (f"**{escape(self._sweep_names.get(self.sweep, self.sweep))}** (`{self.sweep}`): "
                                   f"{summ['members']} run(s)" + (f" of {exp} members" if exp else "")
                                   + (f" ({counts})" if counts else "") + f" · ETA {eta_txt}")

    @guarded
    def refresh_results(self) -> None:
        if not self.sweep:
            return
        spec = stored_spec(self.store, self.sweep)
        extra = [d.get("metric") for d in (spec.get("objective"), spec.get("target")) if isinstance(d, dict)]
        table = results_table(self.store, self.sweep, [*RESULT_METRICS, *[m for m in extra if m]])
        self._table = table
        show_table(self.results, table)
        cfg_cols = [c for c in table.columns if c.startswith("cfg.") and c != "cfg.seed"]
        metrics = [c for c in table.columns if c.startswith(("final.", "best."))]
        self.param.x_param.objects = cfg_cols
        self.param.group_by.objects = [None, *cfg_cols]
        self.param.metric.objects = metrics
        obj = spec.get("objective") if isinstance(spec.get("objective"), dict) else {}
        self._objective = (f"final.{obj['metric']}", obj.get("mode", "min")) if obj.get("metric") else None
        with param.parameterized.batch_call_watchers(self):
            if self._objective and self._objective[0] in metrics and self._metric_sweep != self.sweep:
                self.metric = self._objective[0]  # the spec's objective, until the user picks another metric
            self._metric_sweep = self.sweep
            if self.x_param not in cfg_cols:
                self.x_param = "cfg.lr" if "cfg.lr" in cfg_cols else (cfg_cols[0] if cfg_cols else None)
            if self.group_by is None or self.group_by not in self.param.group_by.objects:
                sizes = [c for c in cfg_cols if c != self.x_param and any(h in c for h in SIZE_HINTS)]
                self.group_by = (sizes or [c for c in cfg_cols if c != self.x_param] or [None])[0]
            if self.metric not in metrics:
                self.metric = next((m for m in ("final.test_loss", "final.val_loss", "final.train_loss")
                                    if m in metrics), metrics[0] if metrics else None)
        self._statuses = tuple(table["status"]) if "status" in table else ()
        self._update_figures()
        self._update_profile()
        self._update_importance()

    def _update_importance(self) -> None:
        """fANOVA importance of the varied hyperparameters for the objective (the spec's, else the
        chosen metric), or why it is unavailable. Under ``panel serve`` only while its tab is open, and
        only when the members or their statuses changed since the last one."""
        if self.importance_lazy and getattr(self, "tabs", None) is not None and self.tabs.active != IMPORTANCE_TAB:
            return
        t = self._table
        objective, mode = self._objective or (self.metric, None)
        key = (self.sweep, objective, self._statuses, len(t))
        if key == self._importance_key:
            return
        self._importance_key = key
        self.importance.visible = False
        if t.empty or not objective or objective not in t:
            self.importance_md.object = "*No objective metric in this sweep's results yet.*"
            return
        name = objective.split(".", 1)[-1]
        mode = mode or ("min" if lower_is_better(name) else "max")
        params = [c for c in t.columns if c.startswith("cfg.") and c != "cfg.seed"]
        try:
            imp = hyperparameter_importance(t, objective, params, mode=mode)
        except Exception as e:  # noqa: BLE001 - optional view: say why it is missing
            self.importance_md.object = f"*Importance unavailable: {escape(e)}*"
            return
        self.importance.object = importance_figure(imp, objective)
        self.importance_md.object = (f"Objective **{escape(objective)}** ({mode}imise)"
                                     + (" from the spec" if self._objective else "") + ".")
        self.importance.visible = True

    @param.depends("metric", watch=True)
    def _on_metric(self) -> None:
        if self._objective is None:  # without a spec objective the importance follows the chosen metric
            self._update_importance()

    @param.depends("x_param", "group_by", "metric", "log_x", "log_y", watch=True)
    def _update_figures(self) -> None:
        t = self._table
        if t.empty or not self.x_param or not self.metric:
            return
        log_x = self.log_x and _is_log(self.x_param, t[self.x_param]) if self.x_param in t else False
        self.plot.object = metric_vs_param_figure(t, self.x_param, self.metric, self.group_by, log_x=log_x,
                                                  log_y=self.log_y)
        self.parcoords.object = parallel_coordinates_figure(t, color=self.metric, uirevision=self.sweep)

    def _update_profile(self) -> None:
        self.profile.visible = self.score.visible = False
        self.profile_md.object = "*No AlgoPerf target in this sweep's spec (add `target:`).*"
        try:
            spec = stored_spec(self.store, self.sweep)
            target = spec.get("target")
            if not target:
                return
            algoperf = _module("workbench.sweeps.algoperf")
            kw: dict[str, Any] = {"sweeps": self.sweep, "metric": target["metric"], "target": float(target["value"]),
                                  "mode": target.get("mode", "max")}
            if spec.get("workload"):
                kw["workload"] = spec["workload"]
            if spec.get("submission"):
                kw["submission"] = spec["submission"]
            res = algoperf.compare(self.store, **kw)
        except Exception as e:  # noqa: BLE001 - the profile is optional: say why it is missing
            self.profile_md.object = f"*Performance profile unavailable: {escape(e)}*"
            return
        self.profile.object = profile_figure(res["profile"])
        show_table(self.score, res["score"])
        self.profile_md.object = ""
        self.profile.visible = self.score.visible = True

    def figure(self) -> go.Figure:
        return self.plot.object

    def data(self) -> pd.DataFrame | None:
        return None if self._table.empty else self._table

    # -------------------------------------------------------------- periodic refresh
    def _tick(self) -> None:
        if not self.auto_refresh:
            return
        self.refresh_sweeps()
        if self.sweep:
            self.refresh_progress()
            prog = self.progress.value
            running = (prog["status"] == "running").any() if len(prog) else False
            # also once more when a member's status changed (the last ones finishing): the results table
            # then shows them finished, not running
            changed = len(prog) and tuple(prog["status"]) != self._statuses
            if running or changed or self._threads and any(t.is_alive() for t in self._threads):
                self.refresh_results()

    def _start_periodic(self) -> None:
        if self._callback is None and pn.state.curdoc is not None:
            self._callback = pn.state.add_periodic_callback(self._tick, period=2000)
            pn.state.on_session_destroyed(lambda *_: self._callback.stop() if self._callback else None)

    # -------------------------------------------------------------- view
    def view(self) -> pn.viewable.Viewable:
        self._start_periodic()
        editor = pn.widgets.CodeEditor.from_param(self.param.yaml_text, language="yaml", height=330,
                                                  sizing_mode="stretch_width")
        validate = pn.widgets.Button(label="Validate", color="primary")
        validate.on_click(self.validate)
        launch = pn.widgets.Button(label="Launch sweep", color="success")
        launch.on_click(self.launch)
        sched_names = _module("workbench.schedules").available()
        form = pn.Column(
            pn.widgets.TextInput.from_param(self.param.form_name, label="Name"),
            pn.widgets.TextInput.from_param(self.param.form_task, label="Task"),
            pn.widgets.MultiChoice.from_param(self.param.form_schedules, label="Schedules", options=sched_names),
            pn.widgets.TextInput.from_param(self.param.form_lrs, label="Learning rates"),
            pn.widgets.TextInput.from_param(self.param.form_seeds, label="Seeds"),
            pn.widgets.IntInput.from_param(self.param.form_steps, label="Steps"),
        )
        to_yaml = pn.widgets.Button(label="Form → YAML")
        to_yaml.on_click(self.apply_form)
        refresh = pn.widgets.Button(label="Refresh", width=90, align="end")
        refresh.on_click(lambda *_: (self.refresh_sweeps(), self.refresh_progress(), self.refresh_results()))
        define = pn.Column(
            pn.Tabs(("YAML", editor), ("Form", pn.Column(form, to_yaml))),
            pn.Row(validate, launch, pn.widgets.Select.from_param(self.param.executor, label="Executor", width=110)),
            self.members_table, width=420, sizing_mode="fixed")
        # a wrapping flex row of fixed-width widgets: the four selects at Panel's default width (300 px)
        # in a plain Row made the page ~1900 px wide (issue 6); here they wrap below ~1300 px of room
        sel = {"width": 180, "sizing_mode": "fixed"}
        controls = pn.FlexBox(
            pn.widgets.Select.from_param(self.param.sweep, label="Sweep", **sel),
            pn.widgets.Select.from_param(self.param.metric, label="Metric", **sel),
            pn.widgets.Select.from_param(self.param.x_param, label="x", **sel),
            pn.widgets.Select.from_param(self.param.group_by, label="Lines by", **sel),
            pn.widgets.Checkbox.from_param(self.param.log_x, label="log x", width=60, align="end"),
            pn.widgets.Checkbox.from_param(self.param.log_y, label="log y", width=60, align="end"),
            refresh, flex_wrap="wrap", align_items="flex-end", sizing_mode="stretch_width")
        self.tabs = pn.Tabs(
            ("Metric vs hyperparameter", self.plot), ("Parallel coordinates", self.parcoords), ("Table", self.results),
            ("Importance", pn.Column(self.importance_md, self.importance)),
            ("Performance profile", pn.Column(self.profile_md, self.profile, self.score)), dynamic=False)
        self.tabs.param.watch(lambda e: self._update_importance() if e.new == IMPORTANCE_TAB else None, "active")
        self.importance_lazy = True  # served: fANOVA (about a second) runs when its tab is opened
        results = pn.Column(
            controls, self.progress_md, self.progress,
            self.tabs, self._export(), sizing_mode="stretch_width")
        return pn.Row(define, results, sizing_mode="stretch_width")

    def _export(self) -> pn.viewable.Viewable:
        ExportPanel = importlib.import_module("workbench.apps.export").ExportPanel
        return ExportPanel(figure=self.figure, data=self.data, basename="sweep")
