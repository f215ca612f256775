"""Where a law fitter's data comes from, shared by the scaling-law fitter (``kind="table"``: one table of
points) and the curve-law fitter (``kind="curves"``: loss curves with their per-step LR).

Sources: the CSVs shipped under ``data/`` (and the shared data folder), an uploaded CSV, the runs of a sweep
of the store (config values and final metrics, ``workbench.sweeps.results.results_table``) and, for curves,
runs of the store that logged ``lr``. Parsing, limits and curve building are ``workbench.fit.data``; this
component holds the widgets and the loaded data. A table's column mapping (``law input=column``) is always
shown: an uploaded file's mapping is a proposal the user confirms or edits before a fit may use it; a curve
table's columns are named in the message. Errors: in the host's message area. Each good load fires ``loaded``.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param

from workbench.apps.base import escape, options, show_table
from workbench.fit.data import (
    LOSS_METRICS,
    LR_HEAD,
    CSVError,
    Curve,
    curve_columns,
    curves_from_frame,
    curves_from_store,
    data_files,
    is_curve_csv,
    is_curve_table,
    read_csv,
    store_curve_runs,
)

# column mappings, derived columns, laws and x axis for the shipped files (anything else: mapped by hand)
PRESETS: dict[str, dict[str, Any]] = {
    "svg_extracted_data.csv": {"laws": ["chinchilla"], "mapping": "N=Model Size,D=D,L=loss",
                               "derive": "D = `Training FLOP` / (6 * `Model Size`)", "x": "N"},
    "models_flat.csv": {"laws": ["gadre"], "mapping": "C=C,M=tokens_per_param_M,L=loss_c4_val",
                        "derive": "C = 6 * N_params * D_tokens", "x": "C"},
}
DEFAULT_TABLE = "svg_extracted_data.csv"  # the page opens on Chinchilla's points (Besiroglu et al. 2024)


def _shown(fn: Callable) -> Callable:
    """A load: its error goes to the host's message area (returns None), the traceback to the log."""

    @functools.wraps(fn)
    def wrapper(self: DataSource, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - bad input: a message in the page
            traceback.print_exc()
            self.host.show_error(f"**{type(e).__name__}**: {e}")
            return None

    return wrapper


class DataSource(param.Parameterized):
    """The data of a law fitter (see the module docstring). ``host``: the app (an ``AppBase``) whose
    message area and run store are used."""

    dataset = param.Selector(default=None, objects=[], allow_None=True, doc="CSV of the data folders")
    files = param.ListSelector(default=[], objects=[], doc="Loss-curve CSVs of the data folders")
    sweep = param.Selector(default=None, objects=[], allow_None=True, doc="Sweep of the store")
    runs = param.ListSelector(default=[], objects=[], doc="Runs of the store that logged lr")
    loss_metric = param.Selector(default="train_loss", objects=list(LOSS_METRICS), doc="Loss metric of store runs")
    lr_head = param.Selector(default="ramp from 0", objects=list(LR_HEAD), doc="LR before the first logged step")
    mapping = param.String(default="x=x,L=y", doc="Law input = column, comma-separated; L (or y) is the target")
    mapping_confirmed = param.Boolean(default=True, doc="False while an upload's proposed mapping awaits the user")
    origin = param.Selector(default="file", objects=["file", "upload", "store"], doc="Where the data came from")
    loaded = param.Event(doc="Fires after each successful load")

    def __init__(self, host: Any, kind: str = "table", **params: Any) -> None:
        super().__init__(**params)
        self.host, self.kind = host, kind
        self.df = pd.DataFrame()
        self.curves: dict[str, Curve] = {}
        self.tasks: dict[str, str] = {}  # curve label -> task of its run (store runs only)
        self.preset: dict[str, Any] = {}
        self.description = ""
        self._proposing = False
        self.confirm_btn = pn.widgets.Button(label="Confirm mapping", color="warning", visible=False,
                                             css_classes=["wb-confirm-mapping"])
        self.confirm_btn.on_click(self.confirm_mapping)
        self.preview = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, height=160, sizing_mode="stretch_width",
                                            pagination="local", page_size=20)
        self._paths = data_files()
        if kind == "table":
            self.param.dataset.objects = list(self._paths)
            try:
                self.param.sweep.objects = self.host.store.sweeps()["id"].tolist()
            except Exception:  # noqa: BLE001 - the store is optional here
                pass
        else:
            self.param.files.objects = options(k for k, p in self._paths.items() if is_curve_csv(p))
            self._run_ids: dict[str, str] = {}
            self.refresh_runs()

    # ------------------------------------------------------------------ tables
    def open_default(self) -> None:
        """Choose the default shipped table (Chinchilla's points), else the first file."""
        if self.dataset is None and self._paths:
            pref = [k for k in self._paths if k.endswith(DEFAULT_TABLE)]
            self.dataset = pref[0] if pref else next(iter(self._paths))

    @param.depends("dataset", watch=True)
    def _on_dataset(self) -> None:
        if self.dataset:
            self.load_file(self.dataset)

    @_shown
    def load_file(self, label: str) -> pd.DataFrame:
        """A CSV of the data folders as the table (with its preset mapping for the shipped files)."""
        if label not in self._paths:
            raise CSVError(f"dataset: {label!r} is not a CSV of the data folders")
        path = self._paths[label]
        df = read_csv(path)
        self.preset = PRESETS.get(Path(path).name, {})
        self._propose(origin="file", mapping=self.preset.get("mapping", self.mapping), mapping_confirmed=True)
        self.confirm_btn.visible = False
        self._set_table(df, f"Loaded {label}: {len(df)} rows")
        return df

    @_shown
    def upload(self, data: bytes, filename: str = "upload.csv") -> pd.DataFrame:
        """An uploaded CSV as the table; its mapping is proposed (target = last numeric column, x = the
        first) and waits for the user's confirmation."""
        self.df = pd.DataFrame()
        try:  # the preview changes once: two quick changes race in Tabulator's JS (null 'firstChild')
            df = read_csv(data)
        except Exception:
            self.preview.value = pd.DataFrame()  # a bad file leaves no table shown
            raise
        num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        self.preset = {"laws": ["power_law"], "x": "x", "derive": ""}
        self._propose(origin="upload", mapping=f"x={num[0]},L={num[-1]}" if len(num) >= 2 else "")
        self.mapping_confirmed = False  # an uploaded file's columns are never used on a guess
        self.confirm_btn.visible = True
        note = self._curve_note(df, Path(filename).stem)
        self._set_table(df, f"Loaded {filename}: {len(df)} rows", f" **Proposed mapping: {self.mapping}** (a guess "
                        "from the column order). Check it, edit it in the Mapping field or press **Confirm mapping**;"
                        f" Fit waits for that.{note}")
        return df

    @_shown
    def load_sweep(self, sweep: str | None = None) -> pd.DataFrame:
        """The runs of a sweep as the table: config values (``cfg.*``) and final metrics (``final.*``)."""
        from workbench.sweeps.results import results_table

        sid = sweep or self.sweep
        if not sid:
            raise CSVError("sweep: choose a sweep of the store")
        df = results_table(self.host.store, sid)
        runs = self.host.store.runs(sweep=sid)
        self.tasks = dict(zip(runs["id"], runs["task"].astype(str))) if "task" in runs else {}
        self.preset = {"derive": ""}
        self.param.update(origin="store", mapping_confirmed=True)
        self.confirm_btn.visible = False
        self._set_table(df, f"Loaded {len(df)} runs of sweep {sid}")
        return df

    def table_tasks(self, df: pd.DataFrame | None = None) -> list[str]:
        """The tasks the table's rows come from: the runs' tasks for a sweep, else a ``task`` column's values."""
        if self.origin == "store":
            return list(self.tasks.values())
        df = self.df if df is None else df
        col = next((c for c in df.columns if str(c).strip().lower() == "task"), None)
        return [] if col is None else df[col].dropna().astype(str).tolist()

    def _set_table(self, df: pd.DataFrame, what: str, extra: str = "") -> None:
        if self.origin != "store":
            self.tasks = {}
        self.df = df
        show_table(self.preview, df.head(200))
        self.description = what
        self.loaded = True
        cols = ", ".join(map(str, df.columns[:20]))
        self.host.show_info(f"{what}, columns {cols}.{extra or f' Mapping: {self.mapping}.'}")

    def _propose(self, **values: Any) -> None:  # set by the page, not typed by the user (_mapping_edited)
        self._proposing = True
        try:
            self.param.update(**values)
        finally:
            self._proposing = False

    def confirm_mapping(self, *_: Any) -> None:
        """The user accepts the mapping shown for an uploaded file."""
        self.mapping_confirmed = True
        self.confirm_btn.visible = False
        self.host.show_info(f"Mapping confirmed: {self.mapping}.")

    @param.depends("mapping", watch=True)
    def _mapping_edited(self) -> None:
        if not self._proposing:  # typed (or set) by the user: a choice, not a guess
            self.mapping_confirmed = True
            self.confirm_btn.visible = False

    def _curve_note(self, df: pd.DataFrame, name: str) -> str:
        if not is_curve_table(df.columns):
            return ""
        try:
            curves_from_frame(df, name=name, head=self.lr_head)
        except CSVError as e:
            return f" Not usable as loss curves: {e}"
        return " It has the columns of loss curves: fit them with the **Curve-law fitter** (/curves)."

    # ------------------------------------------------------------------ curves
    def refresh_runs(self) -> None:
        try:
            self._run_ids = store_curve_runs(self.host.store)
        except Exception:  # noqa: BLE001 - the store is optional here
            self._run_ids = {}
        self.param.runs.objects = options(self._run_ids)

    @_shown
    def load_files(self, files: list[str] | None = None) -> dict[str, Curve]:
        """Loss curves from CSVs of the data folders; a file without a ``curve``/``run`` column is one curve
        named after its folder and file."""
        files = list(files if files is not None else self.files)
        if not files:
            raise CSVError("curve_files: choose at least one loss-curve CSV (columns step, lr, loss)")
        out: dict[str, Curve] = {}
        for f in files:
            if f not in self._paths:
                raise CSVError(f"curve_files: {f!r} is not a CSV of the data folders")
            path = Path(self._paths[f])
            for n, c in curves_from_frame(read_csv(path), name=f"{path.parent.name}/{path.stem}",
                                          head=self.lr_head).items():
                out[n if n not in out else f"{path.stem}:{n}"] = c
        self._set_curves(out, {}, f"{len(files)} file(s)")
        return out

    @_shown
    def load_csv(self, data: bytes | str | Path, filename: str = "upload.csv") -> dict[str, Curve]:
        """Loss curves from one CSV (uploaded bytes or a path): columns step, lr, loss[, curve or run]."""
        df = read_csv(data)
        curves = curves_from_frame(df, name=Path(filename).stem, head=self.lr_head)
        self.origin = "upload"
        self._set_curves(curves, {}, f"{filename} (columns {curve_columns(df.columns)})")
        return curves

    @_shown
    def load_runs(self, labels: list[str] | None = None) -> dict[str, Curve]:
        """Loss curves (``loss_metric``) and logged LR of runs of the store (all that logged lr if none chosen)."""
        self.refresh_runs()
        labels = list(labels if labels is not None else self.runs) or list(self._run_ids)
        unknown = [x for x in labels if x not in self._run_ids]
        if unknown:
            raise CSVError(f"curve_runs: {unknown} are not runs of the store that logged lr")
        ids = {x: self._run_ids[x] for x in labels}
        curves = curves_from_store(self.host.store, ids, loss=self.loss_metric, head=self.lr_head)
        runs = self.host.store.runs()
        task = dict(zip(runs["id"], runs["task"])) if "task" in runs else {}
        self.origin = "store"
        self._set_curves(curves, {x: str(task.get(i, "")) for x, i in ids.items()},
                         f"the run store ({self.loss_metric})")
        return curves

    def _set_curves(self, curves: dict[str, Curve], tasks: dict[str, str], origin: str) -> None:
        self.curves, self.tasks = dict(curves), tasks
        self.description = (f"**{len(curves)} curve(s)** from {escape(origin)}: "
                            + ", ".join(f"{escape(n)} ({int(c[0][-1]) + 1} steps)" for n, c in curves.items()))
        self.loaded = True
        self.host.show_info(f"Loaded {len(curves)} loss curve(s) from {origin}. Choose the curves to fit on, then Fit.")

    # ------------------------------------------------------------------ view
    def view(self) -> pn.viewable.Viewable:
        upload = pn.widgets.FileInput(accept=".csv", multiple=False,
                                      css_classes=["wb-csv-upload" if self.kind == "table" else "wb-curve-upload"])
        on_file = self.upload if self.kind == "table" else self.load_csv
        upload.param.watch(lambda e: e.new is not None and on_file(e.new, upload.filename or "upload.csv"), "value")
        if self.kind == "table":
            load_sweep = pn.widgets.Button(label="Load sweep")
            load_sweep.on_click(lambda *_: self.load_sweep())
            return pn.Column(
                pn.pane.Markdown("**Data**"), pn.widgets.Select.from_param(self.param.dataset, label="Data file"),
                pn.pane.Markdown("or upload a CSV:"), upload,
                pn.Row(pn.widgets.Select.from_param(self.param.sweep, label="or a sweep"), load_sweep),
                pn.widgets.TextInput.from_param(self.param.mapping, label="Mapping (input=column, ...)"),
                self.confirm_btn, sizing_mode="stretch_width")
        load_files = pn.widgets.Button(label="Load files")
        load_files.on_click(lambda *_: self.load_files())
        load_runs = pn.widgets.Button(label="Load runs")
        load_runs.on_click(lambda *_: self.load_runs())
        return pn.Column(
            pn.pane.Markdown("**Loss curves** (step, lr, loss[, curve])"),
            pn.widgets.MultiChoice.from_param(self.param.files, label="Data files"), load_files,
            pn.pane.Markdown("or upload a CSV:"), upload,
            pn.widgets.MultiChoice.from_param(self.param.runs, label="or runs of the store (all if empty)"),
            pn.Row(pn.widgets.Select.from_param(self.param.loss_metric, label="Loss metric", width=160), load_runs),
            pn.widgets.Select.from_param(self.param.lr_head, label="LR before the first logged step"),
            sizing_mode="stretch_width")
