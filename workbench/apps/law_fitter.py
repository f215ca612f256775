"""Law fitter: choose data (a CSV of the papers' data in data/ (``workbench.datasets``), an
uploaded CSV, or the runs of a sweep in the store), map its columns to a law's inputs, fit several
laws (``workbench.fit``: Chinchilla (Hoffmann et al. 2022), Kaplan et al. 2020, power law +
constant (Hestness et al. 2017), Gadre et al. 2024, Step Law (Li et al. 2025), ...) and compare
them: overlay with bootstrap bands, residuals, parameter table with intervals, held-out error and
AIC ranking (``workbench.fit.compare``), extrapolation to a target scale (``extrapolate``) and the
crossover of two laws (``crossover``, Languini Kitchen).

The "Loss curves" tab fits the schedule-aware laws, which take a run's whole per-step LR as input
(multi-power law, Luo et al. ICLR 2025 eq. 7; LR-annealing law, Tissue et al. 2024 eq. 1; both in
``workbench.fit.schedule_laws``), on chosen training curves (runs of the store that logged ``lr`` and a
loss, or CSVs with columns ``step, lr, loss`` and optionally ``curve``/``run``), then predicts every loaded
curve, including those left out of the fit and schedules typed in from the schedule registry that nobody
trained, against its measurement with per-curve R², mean and worst relative error
(``workbench.fit.curve_metrics``; figure: ``workbench.figures.fits.schedule_law_figure``). Only the observed
points are thinned for the fit (``fit_points`` per curve); the LR series always keeps every step, since
both laws sum over all steps. The fit runs in a background thread with its elapsed time shown.

All fitting is ``workbench.fit``; the scaling-law overlay is built here from ``FitResult.predict``
because ``workbench.figures.fits`` had no multi-law overlay when this app was written. A malformed
CSV, an unknown column or a failing fit shows its message in the page.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.apps.base import AppBase, escape, guarded, options, show_table
from workbench.errors import WorkbenchError

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

# column mappings and derived columns for known files (everything else: pick the mapping by hand)
PRESETS: dict[str, dict[str, Any]] = {
    "svg_extracted_data.csv": {"laws": ["chinchilla"], "mapping": "N=Model Size,D=D,L=loss",
                               "derive": "D = `Training FLOP` / (6 * `Model Size`)", "x": "N"},
    "models_flat.csv": {"laws": ["gadre"], "mapping": "C=C,M=tokens_per_param_M,L=loss_c4_val",
                        "derive": "C = 6 * N_params * D_tokens", "x": "C"},
}


class CSVError(WorkbenchError):
    """A CSV that cannot be read, or a mapping that does not fit it (names the column)."""


# Bounds on what a page visitor can make the server hold (issue 12): an upload is read whole, and a loss
# curve becomes one LR value per step 0..last step, so one row with step 1e12 must be refused, not allocated.
MAX_CSV_BYTES = 20_000_000
"""Largest CSV read (an upload, or a file of the data folders), in bytes."""
MAX_CSV_ROWS = 1_000_000
"""Most data rows in one CSV."""
MAX_CURVE_STEPS = 10_000_000
"""Largest step of a loss curve (its per-step LR array has this many float64 values: 80 MB)."""
MAX_TOTAL_STEPS = 40_000_000
"""Most per-step LR values over all loaded curves together (320 MB)."""


def data_files() -> dict[str, Path]:
    """Label -> path of every CSV in the data folders (``workbench.datasets``): the repository's ``data/``
    first, then the sets of the shared data folder that do not ship with it (files over 20 MB left out)."""
    from workbench.datasets import REPO_DATA, SHIPPED, shared_data_root

    out = {}
    shared = shared_data_root()
    for d, label in ((REPO_DATA, "data"), (shared, "shared")):
        if d is None or not d.is_dir():
            continue
        for p in sorted(d.rglob("*.csv")):
            rel = p.relative_to(d)
            if label == "shared" and rel.parts[0] in SHIPPED:
                continue  # the repository's copy is listed
            if p.stat().st_size < 20e6:
                out[f"{label}/{rel}"] = p
    return out


def read_csv(data: bytes | str | Path) -> pd.DataFrame:
    """Read a CSV (bytes of an upload or a path); raise :class:`CSVError` with the reason if it is
    malformed (ragged rows, not text, empty, fewer than two columns or no numeric column)."""
    size = len(data) if isinstance(data, bytes) else Path(data).stat().st_size
    if size > MAX_CSV_BYTES:
        raise CSVError(f"CSV: the file has {size:,} bytes, more than the limit of {MAX_CSV_BYTES:,} bytes "
                       "(MAX_CSV_BYTES); thin it (e.g. keep every k-th step) or fit it with workbench.fit in Python")
    try:
        raw = data if isinstance(data, bytes) else Path(data).read_bytes()
        text = raw.decode("utf-8")
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
        if len(rows) - 1 > MAX_CSV_ROWS:
            raise CSVError(f"CSV: {len(rows) - 1:,} data rows, more than the limit of {MAX_CSV_ROWS:,} rows "
                           "(MAX_CSV_ROWS)")
        if rows:
            bad = next((i for i, r in enumerate(rows[1:], start=2) if len(r) != len(rows[0])), None)
            if bad is not None:
                raise CSVError(f"CSV: line {bad} has {len(rows[bad - 1])} fields, the header has {len(rows[0])} "
                               f"({', '.join(rows[0][:8])})")
        df = pd.read_csv(io.StringIO(text))
    except CSVError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise CSVError(f"CSV: could not be read ({type(e).__name__}: {str(e).strip()[:200]})") from None
    if df.shape[1] < 2:
        raise CSVError(f"CSV: needs at least two columns (an input and a target), found {df.shape[1]}")
    if not any(pd.api.types.is_numeric_dtype(df[c]) for c in df.columns):
        raise CSVError("CSV: no numeric column found")
    return df


def derive(df: pd.DataFrame, text: str) -> pd.DataFrame:
    """Add derived columns, one ``name = expression`` per line; an expression is arithmetic over
    columns (``workbench.expr``: numbers, + - * / **, parentheses, log exp sqrt log10 abs; back-quote
    names with spaces). Nothing in the text is executed as Python."""
    from workbench.expr import ExpressionError, evaluate

    df = df.copy()
    for line in filter(None, (ln.strip() for ln in (text or "").splitlines())):
        if "=" not in line:
            raise CSVError(f"derive: expected 'name = expression', got {line!r}")
        name, expr = (s.strip() for s in line.split("=", 1))
        name = name[1:-1].strip() if len(name) > 1 and name[0] == name[-1] == "`" else name
        if not name or "`" in name:
            raise CSVError(f"derive: {line!r} needs a column name before '='")
        try:
            df[name] = evaluate(expr, df, length=len(df))
        except ExpressionError as e:
            raise CSVError(f"derive: {e}") from None
    return df


def parse_map(text: str) -> dict[str, str]:
    from workbench.fit import parse_mapping

    return parse_mapping(text)


# ----------------------------------------------------------------------------- loss curves
# The CSV-to-curves helpers live in workbench.fit.data (shared with the CLI and notebooks); imported on first
# use so that opening the page does not import torch.
Curve = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One loss curve: observed steps, observed losses, and the absolute LR of every update 0..last step."""

LOSS_METRICS = ("train_loss", "loss", "val_loss", "test_loss")
LR_HEAD = ("ramp from 0", "hold first value")


def per_step_lr(steps: np.ndarray, lr: np.ndarray, *, head: str = "ramp from 0") -> np.ndarray:
    """:func:`workbench.fit.data.per_step_lr` within the page's step limit (MAX_CURVE_STEPS)."""
    from workbench.fit.data import per_step_lr as f

    _check_steps(np.asarray(steps, np.int64))
    return f(steps, lr, head=head)


def _check_steps(steps: np.ndarray, name: str | None = None) -> None:
    last = float(np.max(steps)) if len(steps) else 0.0
    if last > MAX_CURVE_STEPS:
        raise CSVError(f"step: {'curve ' + repr(name) + ' has' if name else 'a curve has'} step {last:.6g}, more "
                       f"than the limit of {MAX_CURVE_STEPS:,} steps per curve (MAX_CURVE_STEPS: the laws need "
                       "the LR of every step)")


def _check_curve(name: str, steps: np.ndarray, loss: np.ndarray, lr: np.ndarray) -> None:
    from workbench.fit.data import check_curve

    check_curve(name, steps, loss, lr)


def curves_from_frame(df: pd.DataFrame, *, name: str = "curve", head: str = "ramp from 0") -> dict[str, Curve]:
    """:func:`workbench.fit.data.curves_from_frame` with the default column names, within the page's step
    limits (checked before anything is allocated per step); errors as :class:`CSVError`."""
    from workbench.fit.data import curves_from_frame as f
    from workbench.fit.errors import FitDataError

    cols = {str(c).strip().lower(): c for c in df.columns}
    if "step" in cols:
        st = pd.to_numeric(df[cols["step"]], errors="coerce")
        _check_steps(st.dropna().to_numpy(float))
        gcol = cols.get("curve", cols.get("run"))
        grp = df[gcol].astype(str) if gcol is not None else pd.Series(name, index=df.index)
        total = float(st.groupby(grp, sort=False).max().clip(lower=0).sum())
        if total > MAX_TOTAL_STEPS:
            raise CSVError(f"step: the curves span {total:,.0f} steps together, more than the limit of "
                           f"{MAX_TOTAL_STEPS:,} (MAX_TOTAL_STEPS); load fewer curves")
    try:
        return f(df, name=name, head=head)
    except FitDataError as e:
        raise CSVError(str(e)) from None


def is_curve_csv(path: Path) -> bool:
    """Whether a CSV's header has the columns of a loss-curve file (step, lr and loss)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            head = {c.strip().lower() for c in next(csv.reader(f), [])}
    except (OSError, UnicodeDecodeError):
        return False
    return {"step", "lr"} <= head and bool(head & {"loss", "train_loss"})


def store_curve_runs(store: Any) -> dict[str, str]:
    """Label -> run id of every run of the store that logged ``lr`` (label: run name, id added when the
    name is not unique)."""
    runs = store.runs()
    out: dict[str, str] = {}
    if runs.empty:
        return out
    dup = runs["name"].duplicated(keep=False)
    for (_, r), d in zip(runs.iterrows(), dup):
        if "lr" in store.metric_names(r["id"]):
            out[f"{r['name']} ({r['id'][:8]})" if d or not r["name"] else str(r["name"])] = r["id"]
    return out


def curves_from_store(store: Any, runs: dict[str, str], *, loss: str = "train_loss",
                      head: str = "ramp from 0") -> dict[str, Curve]:
    """The ``loss`` curve and per-step LR (interpolated between logged steps, see :func:`per_step_lr`) of
    runs of the store (label -> run id)."""
    if not runs:
        raise CSVError("runs: choose at least one run of the store that logged lr")
    if loss not in LOSS_METRICS:
        raise CSVError(f"curve_loss: must be one of {LOSS_METRICS}, got {loss!r}")
    df = store.metrics(list(runs.values()), ["lr", loss], wide=True)
    out: dict[str, Curve] = {}
    by_id = {v: k for k, v in runs.items()}
    for rid, label in by_id.items():
        g = df[df["run"] == rid] if len(df) else df
        if g.empty or "lr" not in g or loss not in g:
            raise CSVError(f"runs: run {label!r} has no logged 'lr' and {loss!r} (choose another loss metric)")
        g = g.dropna(subset=["lr", loss]).drop_duplicates("step", keep="last").sort_values("step")
        steps = g["step"].to_numpy(np.int64)
        if len(steps) < 2:
            raise CSVError(f"curve {label!r}: needs at least 2 logged steps with both lr and {loss}, has {len(steps)}")
        lr = per_step_lr(steps, g["lr"].to_numpy(float), head=head)
        _check_curve(label, steps, g[loss].to_numpy(float), lr)
        out[label] = (steps, g[loss].to_numpy(float), lr)
    return out


def thin_index(n: int, k: int) -> np.ndarray:
    """Indices of at most ``k`` points spread evenly over ``n`` (first and last kept)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


# ----------------------------------------------------------------------------- figures
def overlay_figure(results: dict[str, Any], df_x: np.ndarray, y: np.ndarray, x_name: str, *,
                   bands: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, log: bool = True) -> go.Figure:
    """Data and every law's prediction against input ``x_name`` (points sorted by it), with bootstrap
    bands, and a residual panel (relative residual per law)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.05)
    order = np.argsort(df_x)
    fig.add_trace(go.Scatter(x=df_x[order], y=y[order], mode="markers", name="data",
                             marker={"color": "#333", "size": 5, "opacity": 0.6}), row=1, col=1)
    for i, (name, (pred, _res)) in enumerate(results.items()):
        c = PALETTE[i % len(PALETTE)]
        if bands and name in bands:
            lo, hi = bands[name]
            fig.add_trace(go.Scatter(x=np.r_[df_x[order], df_x[order][::-1]], y=np.r_[hi[order], lo[order][::-1]],
                                     fill="toself", fillcolor=c, opacity=0.15, line={"width": 0},
                                     name=f"{name} band", showlegend=False, hoverinfo="skip"), row=1, col=1)
        fig.add_trace(go.Scatter(x=df_x[order], y=pred[order], mode="markers+lines", name=name,
                                 line={"color": c, "width": 1}, marker={"size": 4}), row=1, col=1)
        fig.add_trace(go.Scatter(x=df_x[order], y=(y[order] - pred[order]) / pred[order], mode="markers",
                                 name=f"{name} residual", marker={"color": c, "size": 4}, showlegend=False),
                      row=2, col=1)
    fig.update_layout(template="plotly_white", height=520, margin={"l": 60, "r": 20, "t": 40, "b": 50},
                      title="Fitted laws", legend={"orientation": "h", "y": -0.15})
    fig.update_yaxes(title_text="target", row=1, col=1)
    fig.update_yaxes(title_text="rel. residual", row=2, col=1)
    fig.update_xaxes(title_text=x_name, row=2, col=1)
    if log:
        fig.update_xaxes(type="log")
        fig.update_yaxes(type="log", row=1, col=1)
    return fig


# ----------------------------------------------------------------------------- the app
class LawFitter(AppBase):
    """Fit and compare scaling laws on data from files, uploads or the store."""

    title = "Law fitter"

    source = param.Selector(default="file", objects=["file", "upload", "store"])
    dataset = param.Selector(default=None, objects=[], allow_None=True, doc="CSV from a data folder")
    sweep = param.Selector(default=None, objects=[], allow_None=True, doc="Sweep in the store")
    laws = param.ListSelector(default=["power_law"], objects=[], doc="Laws to fit")
    mapping = param.String(default="x=x,L=y", doc="Law input = column, comma-separated; L (or y) is the target")
    mapping_confirmed = param.Boolean(default=True, doc="False while an uploaded file's proposed mapping awaits the user")
    derived = param.String(default="", doc="Derived columns, one 'name = expression' per line: column names "
                                            "(`back-quoted` with spaces), numbers, + - * / **, parentheses, "
                                            "log exp sqrt log10 abs")
    x_var = param.String(default="x", doc="Law input on the figure's x axis")
    holdout = param.Number(default=0.2, bounds=(0, 0.5), doc="Share held out of the fit and predicted: the points with the largest x "
                           "(workbench.fit.data.holdout_mask, as the CLI's --holdout)")
    bootstrap = param.Integer(default=0, bounds=(0, 2000), doc="Bootstrap resamples for intervals")
    target_scale = param.Number(default=None, allow_None=True, doc="Extrapolate to this value of x_var")
    drop_highest = param.Integer(default=0, bounds=(0, None), doc="Drop the k highest targets (Chinchilla replication: 5)")

    # loss curves (schedule-aware laws)
    mode = param.Selector(default="points", objects=["points", "curves"], doc="Active tab: scaling laws or loss curves")
    curve_law = param.Selector(default="multi_power", objects=["multi_power", "lr_annealing"],
                               doc="Schedule-aware law (Luo et al. 2025 multi-power; Tissue et al. 2024 annealing)")
    curve_method = param.Selector(default="paper", objects=["paper", "optimum"],
                                  doc="paper: the law's published procedure (multi-power: L-BFGS on a 4-parameter "
                                      "form, then AdamW, early-stopped); optimum: batched L-BFGS from data-driven "
                                      "starts to the least Huber objective")
    curve_files = param.ListSelector(default=[], objects=[], doc="Loss-curve CSVs (step, lr, loss[, curve])")
    curve_runs = param.ListSelector(default=[], objects=[], doc="Runs of the store that logged lr")
    curve_loss = param.Selector(default="train_loss", objects=list(LOSS_METRICS), doc="Loss metric of store runs")
    lr_head = param.Selector(default="ramp from 0", objects=list(LR_HEAD), doc="LR before the first logged step")
    fit_on = param.ListSelector(default=[], objects=[], doc="Loaded curves the law is fitted on (others held out)")
    fit_points = param.Integer(default=24, bounds=(5, 2000),
                                doc="Observed points per training curve in the fit (cost ~ points x LR steps)")
    eval_points = param.Integer(default=200, bounds=(10, 5000), doc="Points per curve for metrics and lines")
    skip_frac = param.Number(default=0.1, bounds=(0, 0.9),
                             doc="Leave out the first share of each curve (warmup, early transient)")
    typed_schedule = param.Selector(default=None, objects=[], allow_None=True, doc="Registry schedule to predict")
    typed_peak_lr = param.Number(default=3e-4, bounds=(0, None), inclusive_bounds=(False, True),
                                 doc="Peak LR of the typed schedule (absolute LR = peak x multiplier)")
    curve_log_y = param.Boolean(default=False, doc="log y on the loss-curve figure")

    _proposing = False  # True while upload() proposes a mapping (not the user's choice)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.confirm_btn = pn.widgets.Button(label="Confirm mapping", button_type="warning", visible=False,
                                             css_classes=["wb-confirm-mapping"])
        self.confirm_btn.on_click(self.confirm_mapping)
        self.df = pd.DataFrame()
        self.results: dict[str, Any] = {}
        self._fig = overlay_figure({}, np.array([]), np.array([]), "x")
        self.plot = pn.pane.Plotly(self._fig, sizing_mode="stretch_width", height=540)
        self.preview = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, height=160, sizing_mode="stretch_width",
                                            pagination="local", page_size=20)
        self.params_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=200,
                                                 sizing_mode="stretch_width")
        self.compare_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=140,
                                                  sizing_mode="stretch_width")
        self.extra = pn.pane.Markdown("", sizing_mode="stretch_width")
        from workbench.fit import available_laws

        self.param.laws.objects = list(available_laws())
        self._files = data_files()
        self.param.dataset.objects = list(self._files)
        try:
            self.param.sweep.objects = self.store.sweeps()["id"].tolist()
        except Exception:  # noqa: BLE001 - the store is optional here
            pass
        # loss curves (schedule-aware laws)
        self.curves: dict[str, Curve] = {}
        self.typed: dict[str, np.ndarray] = {}
        self.curve_result: Any = None
        self.curve_fitted_on: list[str] = []
        self._curve_thread: threading.Thread | None = None
        self._curve_t0: float | None = None
        self._curve_tick: Any = None
        self.typed_widgets: dict[str, pn.widgets.Widget] = {}
        self._typed_specs: dict[str, Any] = {}
        self.typed_form = pn.Column(sizing_mode="stretch_width")
        from workbench.figures.fits import schedule_law_figure

        self._curve_fig = schedule_law_figure({})
        self.curve_plot = pn.pane.Plotly(self._curve_fig, sizing_mode="stretch_width", height=580)
        self.curve_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=220,
                                                sizing_mode="stretch_width", layout="fit_columns")
        self.curve_params = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=250,
                                                 width=360, sizing_mode="fixed", layout="fit_columns")
        self.curve_status = pn.pane.Markdown("Load curves, choose the ones to fit on, then **Fit law on curves**.",
                                             sizing_mode="stretch_width", css_classes=["wb-curve-status"])
        self.curve_list = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.curve_fit_btn = pn.widgets.Button(label="Fit law on curves", color="primary",
                                               css_classes=["wb-fit-curves"])
        self.curve_fit_btn.on_click(lambda *_: self.fit_curves())
        self.param.curve_files.objects = options(k for k, p in self._files.items() if is_curve_csv(p))
        try:
            self._runs_by_label = store_curve_runs(self.store)
        except Exception:  # noqa: BLE001 - the store is optional here
            self._runs_by_label = {}
        self.param.curve_runs.objects = options(self._runs_by_label)
        try:
            from workbench.apps.components.schedule_form import form_schedules

            names = form_schedules()
        except Exception:  # noqa: BLE001 - typed schedules are optional
            names = []
        self.param.typed_schedule.objects = names
        if names:
            self.typed_schedule = "wsd" if "wsd" in names else names[0]
        self._build_typed_form()
        if self.dataset is None and self._files:
            pref = [k for k in self._files if k.endswith("svg_extracted_data.csv")]
            self.dataset = pref[0] if pref else next(iter(self._files))

    # -------------------------------------------------------------- data
    @param.depends("dataset", watch=True)
    def _load_dataset(self) -> None:
        if not self.dataset:
            return
        self.source = "file"
        preset = PRESETS.get(Path(self._files[self.dataset]).name)
        if preset:
            self.param.update(mapping=preset["mapping"], derived=preset["derive"], x_var=preset["x"],
                              laws=[law for law in preset["laws"] if law in self.param.laws.objects])
        self.load(self._files[self.dataset])

    @guarded
    def load(self, src: bytes | str | Path) -> pd.DataFrame:
        """Load a CSV (path or uploaded bytes) as the data; errors show as messages."""
        self.df = read_csv(src)
        self.results = {}
        show_table(self.preview, self.df.head(200))
        self.show_info(f"Loaded {len(self.df)} rows, columns: {', '.join(map(str, self.df.columns[:20]))}."
                       + self._detect_curves(self.df, Path(src).stem if not isinstance(src, bytes) else "upload"))
        return self.df

    @guarded
    def upload(self, data: bytes, filename: str = "upload.csv") -> None:
        self.param.update(source="upload", derived="", drop_highest=0)
        self.df = pd.DataFrame()
        self.results = {}
        self.preview.value = pd.DataFrame()
        self.df = read_csv(data)
        show_table(self.preview, self.df.head(200))
        num = [c for c in self.df.columns if pd.api.types.is_numeric_dtype(self.df[c])]
        self._proposing = True
        try:  # a proposal only: the simplest law, target = last numeric column, x = the first
            if len(num) >= 2:
                self.param.update(mapping=f"x={num[0]},L={num[-1]}", x_var="x",
                                  laws=["power_law"] if "power_law" in self.param.laws.objects else self.laws)
        finally:
            self._proposing = False
        self.mapping_confirmed = False  # an uploaded file's columns are never used on a guess
        self.confirm_btn.visible = True
        self.show_info(f"Loaded {filename}: {len(self.df)} rows, columns {', '.join(map(str, self.df.columns[:20]))}. "
                       f"**Proposed mapping: {self.mapping}** (a guess from the column order). Check it, edit "
                       "it in the Mapping field or press **Confirm mapping**; Fit waits for that."
                       + self._detect_curves(self.df, Path(filename).stem))

    def confirm_mapping(self, *_: Any) -> None:
        """The user accepts the mapping shown for an uploaded file."""
        self.mapping_confirmed = True
        self.confirm_btn.visible = False
        self.show_info(f"Mapping confirmed: {self.mapping}.")

    @param.depends("mapping", watch=True)
    def _mapping_edited(self) -> None:
        if not self._proposing:  # typed (or set) by the user: that is a choice, not a guess
            self.mapping_confirmed = True
            if hasattr(self, "confirm_btn"):
                self.confirm_btn.visible = False

    def _detect_curves(self, df: pd.DataFrame, name: str) -> str:
        """Also load a table with the columns of loss curves (step, lr, loss) into the Loss curves tab;
        returns a note for the message."""
        cols = {str(c).strip().lower() for c in df.columns}
        if not ({"step", "lr"} <= cols and cols & {"loss", "train_loss"}):
            return ""
        try:
            curves = curves_from_frame(df, name=name, head=self.lr_head)
        except CSVError as e:
            return f" Not usable as loss curves: {e}"
        self._set_curves(curves, name)
        return f" Also loaded as {len(curves)} loss curve(s): see the **Loss curves** tab."

    @guarded
    def load_sweep(self, sweep: str | None = None) -> None:
        """The runs of a sweep as data: config values (``cfg.*``) and final metrics (``final.*``)."""
        from workbench.sweeps.results import results_table

        sid = sweep or self.sweep
        if not sid:
            raise ValueError("sweep: choose a sweep of the store")
        self.param.update(source="store", derived="", drop_highest=0)
        self.df = results_table(self.store, sid)
        show_table(self.preview, self.df)
        self.show_info(f"Loaded {len(self.df)} runs of sweep {sid}.")

    def frame(self) -> pd.DataFrame:
        """The data after derived columns and the drop of the highest targets."""
        if self.df.empty:
            raise CSVError("data: load a CSV, choose a data file or a sweep first")
        df = derive(self.df, self.derived)
        if self.drop_highest:
            m = parse_map(self.mapping)
            tcol = m.get("L", m.get("y"))
            if tcol not in df:
                raise CSVError(f"mapping: target column {tcol!r} not in the data")
            df = df[df[tcol] < df[tcol].sort_values().iloc[-self.drop_highest]]
        return df

    # -------------------------------------------------------------- fit
    @guarded
    def fit(self, *_: Any) -> dict[str, Any]:
        from workbench.fit import FitData, compare, get_law
        from workbench.fit import fit as fit_law

        if not self.laws:
            raise ValueError("laws: choose at least one law")
        if self.source == "upload" and not self.mapping_confirmed:
            raise ValueError(f"mapping: confirm the uploaded file's column mapping first (proposed {self.mapping}): "
                             "edit the Mapping field or press Confirm mapping")
        df = self.frame()
        mapping = parse_map(self.mapping)
        inputs = [i for n in self.laws for i in get_law(n).inputs]
        if inputs and self.x_var not in inputs:
            self.x_var = inputs[0]
        results: dict[str, Any] = {}
        for name in self.laws:
            law = get_law(name)
            if "lrs" in law.inputs:
                raise ValueError(f"laws: {name!r} needs whole loss curves with their LR schedule; "
                                 "use the 'Loss curves' tab")
            target = law.target
            m = {k: v for k, v in mapping.items() if k in law.inputs}
            tcol = mapping.get(target, mapping.get("L", mapping.get("y")))
            missing = [i for i in law.inputs if i not in m]
            if missing:
                raise ValueError(f"mapping: law {name!r} needs inputs {list(law.inputs)}; map {missing} to columns")
            m[target] = tcol
            data = FitData.from_frame(df, m, target=target)
            hold = None
            if self.holdout > 0:
                from workbench.fit import holdout_mask

                hold = holdout_mask(data, self.holdout, key=self.x_var if self.x_var in data.x else None)
            results[name] = fit_law(law, data, bootstrap=int(self.bootstrap), holdout=hold)
        self.results = results
        self._data = {n: FitData.from_frame(df, {**{k: v for k, v in mapping.items() if k in r.law.inputs},
                                                 r.law.target: mapping.get(r.law.target, mapping.get("L", mapping.get("y")))},
                                            target=r.law.target) for n, r in results.items()}
        self.compare_table.value = compare(results)
        self.params_table.value = self.parameters()
        self._redraw()
        self._extras()
        self.clear_message()
        return results

    def parameters(self) -> pd.DataFrame:
        """One row per (law, parameter): value, standard error, interval."""
        rows = []
        for name, r in self.results.items():
            ci, se = r.ci, r.stderr
            for k, v in r.params.items():
                lo, hi = ci.get(k, (np.nan, np.nan))
                rows.append({"law": name, "param": k, "value": v, "stderr": se.get(k, np.nan), "lo": lo, "hi": hi})
        return pd.DataFrame(rows)

    def _redraw(self) -> None:
        preds, bands, x, y = {}, {}, None, None
        for name, r in self.results.items():
            d = self._data[name]
            if self.x_var not in d.x:
                continue
            x, y = d.x[self.x_var].astype(float), d.y
            if r.boot is not None and len(r.boot):
                p, lo, hi = r.predict(d, band=0.95)
                bands[name] = (lo, hi)
            else:
                p = r.predict(d)
            preds[name] = (p, r)
        if x is None:
            raise ValueError(f"x_var: {self.x_var!r} is not an input of the fitted laws")
        self._fig = overlay_figure(preds, x, y, self.x_var, bands=bands, log=bool(np.all(x > 0)))
        self.plot.object = self._fig

    @param.depends("x_var", watch=True)
    def _on_x(self) -> None:
        if self.results:
            guarded(lambda s: s._redraw())(self)

    def _extras(self) -> None:
        from workbench.fit import crossover, extrapolate

        lines = []
        fixed = {}
        first = next(iter(self._data.values()))
        for k, v in first.x.items():
            if k != self.x_var:
                fixed[k] = float(np.median(v))
        if self.target_scale:
            ex = extrapolate(self.results, {self.x_var: [self.target_scale],
                                            **{k: [v] for k, v in fixed.items()}})
            for _, r in ex.iterrows():
                band = "" if np.isnan(r["lo"]) else f" (95 %: {r['lo']:.4g} – {r['hi']:.4g})"
                lines.append(f"- **{r['law']}** at {self.x_var} = {self.target_scale:.3g}: {r['pred']:.4g}{band}")
        names = list(self.results)
        if len(names) >= 2:
            a, b = self.results[names[0]], self.results[names[1]]
            try:
                c = crossover(a, b, var=self.x_var, fixed=fixed)
                x0 = c.get("x")
                txt = "no crossover in range" if x0 is None or not np.isfinite(x0) else f"{self.x_var} = {x0:.4g}"
                if c.get("ci"):
                    txt += f" (95 %: {c['ci'][0]:.3g} – {c['ci'][1]:.3g})"
                lines.append(f"- Crossover of **{names[0]}** and **{names[1]}**: {txt}")
            except Exception as e:  # noqa: BLE001 - laws with different inputs have no crossover
                lines.append(f"- Crossover of {names[0]} and {names[1]}: not available ({e})")
        self.extra.object = escape("\n".join(lines))

    def figure(self) -> go.Figure:
        return self._curve_fig if self.mode == "curves" else self._fig

    def data(self) -> pd.DataFrame | None:
        if self.mode == "curves":
            t = self.curve_table.value
            return t if len(t) else None
        return None if self.df.empty else self.df

    def fit_json(self) -> str | None:
        if self.mode == "curves":
            return None if self.curve_result is None else self.curve_result.to_json()
        if not self.results:
            return None
        return next(iter(self.results.values())).to_json()

    # -------------------------------------------------------------- loss curves: data
    def _set_curves(self, curves: dict[str, Curve], origin: str) -> None:
        self.curves = dict(curves)
        self.curve_result = None
        self.curve_fitted_on = []
        names = list(self.curves)
        self.param.fit_on.objects = options(names)
        # default: fit on all but the last curve, which is then predicted as an unseen schedule
        self.fit_on = names[:-1] if len(names) > 1 else names
        self.typed_peak_lr = float(max(np.max(c[2]) for c in self.curves.values()))  # the runs' peak LR
        self.curve_list.object = (f"**{len(names)} curve(s)** from {escape(origin)}: "
                                  + ", ".join(f"{escape(n)} ({int(c[0][-1]) + 1} steps)"
                                              for n, c in self.curves.items()))
        self.show_info(f"Loaded {len(names)} loss curve(s) from {origin}. Choose the curves to fit on, then Fit.")

    @guarded
    def load_curve_files(self, files: list[str] | None = None) -> dict[str, Curve]:
        """Loss curves from CSVs of the data folders (labels of ``curve_files``); a file without a
        ``curve``/``run`` column is one curve named after the file."""
        files = list(files if files is not None else self.curve_files)
        if not files:
            raise CSVError("curve_files: choose at least one loss-curve CSV (columns step, lr, loss)")
        out: dict[str, Curve] = {}
        for f in files:
            if f not in self._files:
                raise CSVError(f"curve_files: {f!r} is not a CSV of the data folders")
            path = Path(self._files[f])
            for n, c in curves_from_frame(read_csv(path), name=f"{path.parent.name}/{path.stem}",
                                          head=self.lr_head).items():
                out[n if n not in out else f"{path.stem}:{n}"] = c
        self._set_curves(out, f"{len(files)} file(s)")
        return out

    @guarded
    def load_curve_csv(self, data: bytes | str | Path, filename: str = "upload.csv") -> dict[str, Curve]:
        """Loss curves from one CSV (uploaded bytes or a path): columns step, lr, loss[, curve or run]."""
        curves = curves_from_frame(read_csv(data), name=Path(filename).stem, head=self.lr_head)
        self._set_curves(curves, filename)
        return curves

    @guarded
    def load_store_curves(self, labels: list[str] | None = None) -> dict[str, Curve]:
        """Loss curves (``curve_loss``) and logged LR of runs of the store (labels of ``curve_runs``)."""
        self._runs_by_label = store_curve_runs(self.store)
        self.param.curve_runs.objects = options(self._runs_by_label)
        labels = list(labels if labels is not None else self.curve_runs) or list(self._runs_by_label)
        unknown = [x for x in labels if x not in self._runs_by_label]
        if unknown:
            raise CSVError(f"curve_runs: {unknown} are not runs of the store that logged lr")
        curves = curves_from_store(self.store, {x: self._runs_by_label[x] for x in labels}, loss=self.curve_loss,
                                   head=self.lr_head)
        self._set_curves(curves, "the run store")
        return curves

    # -------------------------------------------------------------- loss curves: typed schedules
    @param.depends("typed_schedule", watch=True)
    def _build_typed_form(self) -> None:
        from workbench.apps.components.schedule_form import schedule_form

        self.typed_widgets, self._typed_specs = {}, {}
        if not self.typed_schedule:
            self.typed_form.objects = []
            return
        try:
            self.typed_widgets, self._typed_specs = schedule_form(self.typed_schedule)
        except Exception as e:  # noqa: BLE001 - shown in the page
            self.show_error(f"**{type(e).__name__}**: {e}")
            return
        self.typed_form.objects = list(self.typed_widgets.values())

    def set_typed_values(self, **values: Any) -> None:
        """Set the typed schedule's form widgets by parameter name (as typing them in the page)."""
        from workbench.apps.components.schedule_form import set_form_values

        set_form_values(self.typed_widgets, values, self.typed_schedule)

    @guarded
    def add_typed(self, *_: Any) -> str:
        """Add the form's schedule (registry name, its parameters, total length, ``typed_peak_lr``) as a
        curve to predict: nobody trained it, so it gets a prediction and no measurement."""
        from workbench.apps.components.schedule_form import schedules_module, widget_value

        values = {k: widget_value(self._typed_specs[k], w) for k, w in self.typed_widgets.items()}
        sched = schedules_module().build(self.typed_schedule, **values)
        T = int(sched.total_steps)
        if T < 10:
            raise ValueError(f"total_steps: a predicted curve needs at least 10 steps, got {T}")
        if T > MAX_CURVE_STEPS:
            raise ValueError(f"total_steps: {T:,} is more than the limit of {MAX_CURVE_STEPS:,} steps per curve "
                             "(MAX_CURVE_STEPS)")
        from workbench.fit import lr_array

        lr = lr_array(sched, float(self.typed_peak_lr), T)
        if not np.all(np.isfinite(lr)) or np.any(lr[1:] <= 0):
            raise ValueError(f"{self.typed_schedule}: the LR must stay > 0 after step 0 (the laws take powers of "
                             f"the LR; min is {lr[1:].min():g}); raise min_ratio / the final LR above 0")
        keys = [k for k in ("decay_fraction", "decay_shape", "min_ratio", "warmup_steps") if k in values]
        label = f"{self.typed_schedule} {T} ({', '.join(f'{k}={values[k]}' for k in keys[:3])})" if keys \
            else f"{self.typed_schedule} {T}"
        self.typed[label] = lr
        if self.curve_result is not None:
            self._show_curve_fit(self.curve_result)
        self.show_info(f"Added {label}, peak LR {self.typed_peak_lr:g}: "
                       + ("predicted below." if self.curve_result is not None else "predicted after the fit."))
        return label

    def clear_typed(self, *_: Any) -> None:
        self.typed = {}
        if self.curve_result is not None:
            guarded(lambda s: s._show_curve_fit(s.curve_result))(self)

    # -------------------------------------------------------------- loss curves: fit
    def _kept(self, steps: np.ndarray) -> np.ndarray:
        """Indices of the observed points past the first ``skip_frac`` of a curve."""
        return np.nonzero(steps >= max(1, int(self.skip_frac * int(steps[-1]))))[0]

    def curve_fit_data(self) -> tuple[Any, float]:
        """The training data of the curve fit (``FitData.from_curves``: at most ``fit_points`` observed points
        per curve, the whole per-step LR) and the largest LR in it (for the starting grid)."""
        from workbench.fit import FitData

        if not self.curves:
            raise CSVError("curves: load loss curves first (data files, an upload or runs of the store)")
        names = [n for n in self.fit_on if n in self.curves]
        if not names:
            raise CSVError(f"fit_on: choose at least one of the loaded curves {list(self.curves)[:8]}")
        rows = []
        for n in names:
            steps, loss, lr = self.curves[n]
            keep = self._kept(steps)
            keep = keep[thin_index(len(keep), int(self.fit_points))]
            if len(keep) < 2:
                raise CSVError(f"skip_frac: leaves {len(keep)} point(s) of curve {n!r}; lower it")
            rows.append((n, steps[keep], loss[keep], lr))
        data = FitData.from_curves(rows)
        law = self._curve_law()
        if len(data) < law.n_params:
            raise CSVError(f"fit_points: {len(data)} points in all, fewer than the {law.n_params} parameters of "
                           f"{law.name!r}; raise fit_points or fit on more curves")
        return data, float(max(np.max(r[3]) for r in rows))

    def _curve_law(self) -> Any:
        from workbench.fit import get_law

        law = get_law(self.curve_law)
        if "lrs" not in law.inputs:
            raise ValueError(f"curve_law: {self.curve_law!r} does not take an LR schedule")
        return law

    def fit_curves(self, *_: Any, background: bool = True) -> Any:
        """Fit ``curve_law`` on the ``fit_on`` curves with ``workbench.fit.fit``: ``curve_method="paper"`` uses
        the law's own procedure (the multi-power law's two-stage fit, which reproduces the published
        parameters; data-driven starts for the LR-annealing law), ``"optimum"`` batched L-BFGS from
        ``schedule_law_starts`` to the least objective. Then predict every curve. In the page the fit runs in a thread and the
        status line shows its elapsed time; ``background=False`` (tests, notebooks) returns the FitResult.
        Bad input or a failed fit shows a message and returns None."""
        if self._curve_thread is not None and self._curve_thread.is_alive():
            self.show_error("**fit**: a loss-curve fit is already running; wait for it to finish")
            return None
        try:
            law = self._curve_law()
            data, peak = self.curve_fit_data()
            starts = None
            if self.curve_method == "optimum":
                from workbench.fit.schedule_laws import schedule_law_starts

                starts = schedule_law_starts(law, data.y, peak)
        except Exception as e:  # noqa: BLE001 - bad input: a message in the page
            self.show_error(f"**{type(e).__name__}**: {e}")
            return None
        self.clear_message()
        n_curves = len(set(data.x["curve"].tolist()))
        self._curve_t0 = time.perf_counter()
        self._curve_what = escape(f"{law.name} ({self.curve_method}) on {n_curves} curve(s), {len(data)} points")
        self.curve_status.object = f"Fitting {self._curve_what}…"
        if not background:
            return self._run_curve_fit(law, data, starts)
        self.curve_fit_btn.disabled = True
        self.curve_plot.loading = True
        self._curve_thread = threading.Thread(target=self._run_curve_fit, args=(law, data, starts), daemon=True,
                                              name="law-fitter-curves")
        self._curve_thread.start()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None and self._curve_tick is None:
            self._curve_tick = self.add_periodic(self._tick_curve_status, 500)
        return None

    def _tick_curve_status(self) -> None:
        if self._curve_thread is not None and self._curve_thread.is_alive() and self._curve_t0 is not None:
            self.curve_status.object = (f"Fitting {self._curve_what}… "
                                        f"{time.perf_counter() - self._curve_t0:.0f} s")

    def _run_curve_fit(self, law: Any, data: Any, starts: np.ndarray | None) -> Any:
        from workbench.fit import fit

        try:
            res = fit(law, data) if starts is None else fit(law, data, starts=starts, n_polish=1)
            self.curve_fitted_on = list(data.names)
            self.curve_result = res
            self._show_curve_fit(res)
            self.curve_status.object = (f"Fitted {self._curve_what} in {res.seconds:.1f} s "
                                        f"(training R² {res.r2:.5f}).")
            return res
        except Exception as e:  # noqa: BLE001 - shown in the page (the traceback goes to the log)
            import traceback

            traceback.print_exc()
            self.show_error(f"**{type(e).__name__}**: {e}")
            self.curve_status.object = f"Fit of {self._curve_what} failed."
            return None
        finally:
            self.curve_fit_btn.disabled = False
            self.curve_plot.loading = False

    def curve_predictions(self, result: Any) -> dict[str, dict[str, Any]]:
        """Per curve: measured points (past ``skip_frac``, at most ``eval_points``), the prediction at those
        steps, the role (fit / heldout / typed) and, for measured curves, ``curve_metrics``."""
        from workbench.fit import FitData, curve_metrics

        rows, meta = [], []
        for n, (steps, loss, lr) in self.curves.items():
            keep = self._kept(steps)
            keep = keep[thin_index(len(keep), int(self.eval_points))]
            rows.append((n, steps[keep], loss[keep], lr))
            meta.append((n, "fit" if n in self.curve_fitted_on else "heldout"))
        for n, lr in self.typed.items():
            T = len(lr)
            st = np.unique(np.linspace(max(1, int(self.skip_frac * (T - 1))), T - 1,
                                       min(int(self.eval_points), T)).round().astype(np.int64))
            rows.append((n, st, np.ones(len(st)), lr))
            meta.append((n, "typed"))
        out: dict[str, dict[str, Any]] = {}
        if not rows:
            return out
        data = FitData.from_curves(rows)
        pred = np.asarray(result.predict(data, warn=False), float)
        try:
            flags, _, why = result.flags(data)
        except Exception:  # noqa: BLE001 - no shading rather than no prediction
            flags, why = np.full(len(data), "inside", dtype=object), [""] * len(data)
        for c, ((n, role), (_, st, y, _lr)) in enumerate(zip(meta, rows)):
            sel = data.x["curve"] == c
            p = pred[sel]
            d: dict[str, Any] = {"role": role, "pred_step": st, "pred": p}
            out_idx = np.nonzero(np.asarray(flags)[sel] != "inside")[0]
            if len(out_idx):  # the law's fitted domain ends here (workbench.fit flags)
                d["beyond"] = (int(st[out_idx[0]]), [w for w, m in zip(why, sel) if m][out_idx[-1]])
            if role != "typed":
                d.update(step=st, loss=y, fit_pred=p, metrics=curve_metrics(y, p))
            out[n] = d
        return out

    def _show_curve_fit(self, result: Any) -> None:
        from workbench.figures.fits import schedule_law_figure

        curves = self.curve_predictions(result)
        self._curve_fig = schedule_law_figure(curves, law=result.law.name, log_y=self.curve_log_y)
        self.curve_plot.object = self._curve_fig
        n_fit = {n: int(np.sum(result.x["curve"] == i)) for i, n in enumerate(self.curve_fitted_on)}
        rows = []
        for n, d in curves.items():
            m = d.get("metrics", {})
            rows.append({"curve": n, "role": {"fit": "fitted on", "heldout": "held out", "typed": "not trained"}[d["role"]],
                         "fit points": n_fit.get(n, 0), "R²": m.get("r2", np.nan),
                         "mean rel. err": m.get("mean_rel", np.nan), "worst rel. err": m.get("worst_rel", np.nan),
                         "final step": int(d["pred_step"][-1]),
                         "final loss": float(d["loss"][-1]) if "loss" in d else np.nan,
                         "predicted final": float(d["pred"][-1]),
                         "extrapolated from step": d["beyond"][0] if "beyond" in d else None,
                         "why": d["beyond"][1] if "beyond" in d else ""})
        # object dtype: Bokeh serialises pandas' string dtype in Tabulator as NaN (see the schedule lab)
        self.curve_table.value = pd.DataFrame(rows).astype({"curve": object, "role": object, "why": object})
        far = [(n, d["beyond"]) for n, d in curves.items() if "beyond" in d]
        if far:
            n, (st, why) = far[0]
            self.show_info(f"Shaded: predictions beyond what the law was fitted on ({n}: from step {st}; {why}); "
                           f"trust them less (the table's 'why' column says why for each curve).")
        self.curve_params.value = pd.DataFrame([{"param": k, "value": v} for k, v in result.params.items()]
                                               ).astype({"param": object})

    @param.depends("curve_log_y", "eval_points", watch=True)
    def _on_curve_view(self) -> None:
        if self.curve_result is not None:
            guarded(lambda s: s._show_curve_fit(s.curve_result))(self)

    # -------------------------------------------------------------- view
    def view(self) -> pn.viewable.Viewable:
        upload = pn.widgets.FileInput(accept=".csv", multiple=False, css_classes=["wb-csv-upload"])
        upload.param.watch(lambda e: e.new is not None and self.upload(e.new, upload.filename or "upload.csv"), "value")
        load_sweep = pn.widgets.Button(label="Load sweep")
        load_sweep.on_click(lambda *_: self.load_sweep())
        fit_btn = pn.widgets.Button(label="Fit", color="primary", css_classes=["wb-fit"])
        fit_btn.on_click(self.fit)
        controls = pn.Column(
            pn.pane.Markdown("**Data**"),
            pn.widgets.Select.from_param(self.param.dataset, label="Data file"),
            pn.pane.Markdown("or upload a CSV:"), upload,
            pn.Row(pn.widgets.Select.from_param(self.param.sweep, label="or a sweep"), load_sweep),
            pn.widgets.TextInput.from_param(self.param.mapping, label="Mapping (input=column, ...)"),
            self.confirm_btn,
            pn.widgets.TextAreaInput.from_param(self.param.derived, label="Derived columns", height=70),
            pn.widgets.IntInput.from_param(self.param.drop_highest, label="Drop highest k targets"),
            pn.pane.Markdown("**Laws**"),
            pn.widgets.MultiChoice.from_param(self.param.laws, label="Laws"),
            pn.widgets.TextInput.from_param(self.param.x_var, label="x axis (law input)"),
            pn.widgets.FloatInput.from_param(self.param.holdout, label="Held-out share", step=0.05),
            pn.widgets.IntInput.from_param(self.param.bootstrap, label="Bootstrap resamples"),
            pn.widgets.FloatInput.from_param(self.param.target_scale, label="Extrapolate to x ="),
            fit_btn, width=330, sizing_mode="fixed")
        main = pn.Column(self.plot, pn.pane.Markdown("**Ranking** (held-out error, AIC)"), self.compare_table,
                         pn.pane.Markdown("**Parameters**"), self.params_table, self.extra,
                         pn.pane.Markdown("**Data**"), self.preview, self._export(), sizing_mode="stretch_width")
        points = pn.Row(controls, main, sizing_mode="stretch_width")
        tabs = pn.Tabs(("Scaling laws", points), ("Loss curves (schedule-aware)", self.curves_view()),
                       dynamic=False, sizing_mode="stretch_width")
        tabs.active = 1 if self.mode == "curves" else 0
        tabs.param.watch(lambda e: setattr(self, "mode", "curves" if e.new == 1 else "points"), "active")
        return tabs

    def curves_view(self) -> pn.viewable.Viewable:
        """The Loss curves tab: curves from files / an upload / the store, the schedule-aware law, typed
        schedules to predict, and measured vs predicted curves with per-curve metrics."""
        load_files = pn.widgets.Button(label="Load files")
        load_files.on_click(lambda *_: self.load_curve_files())
        load_runs = pn.widgets.Button(label="Load runs")
        load_runs.on_click(lambda *_: self.load_store_curves())
        upload = pn.widgets.FileInput(accept=".csv", multiple=False, css_classes=["wb-curve-upload"])
        upload.param.watch(lambda e: e.new is not None and self.load_curve_csv(e.new, upload.filename or "upload.csv"),
                           "value")
        add_typed = pn.widgets.Button(label="Add schedule to predict")
        add_typed.on_click(self.add_typed)
        clear_typed = pn.widgets.Button(label="Clear")
        clear_typed.on_click(self.clear_typed)
        data_box = pn.Column(
            pn.pane.Markdown("**Loss curves** (step, lr, loss[, curve])"),
            pn.widgets.MultiChoice.from_param(self.param.curve_files, label="Data files"), load_files,
            pn.pane.Markdown("or upload a CSV:"), upload,
            pn.widgets.MultiChoice.from_param(self.param.curve_runs, label="or runs of the store (all if empty)"),
            pn.Row(pn.widgets.Select.from_param(self.param.curve_loss, label="Loss metric", width=160), load_runs),
            pn.widgets.Select.from_param(self.param.lr_head, label="LR before the first logged step"),
            sizing_mode="stretch_width")
        fit_box = pn.Column(
            pn.pane.Markdown("**Fit**"),
            pn.widgets.Select.from_param(self.param.curve_law, label="Law"),
            pn.widgets.RadioButtonGroup.from_param(self.param.curve_method, button_type="light"),
            pn.widgets.MultiChoice.from_param(self.param.fit_on, label="Fit on (the others are held out)"),
            pn.widgets.IntInput.from_param(self.param.fit_points, label="Points per curve in the fit"),
            pn.widgets.FloatInput.from_param(self.param.skip_frac, label="Skip first share of each curve", step=0.05),
            self.curve_fit_btn, sizing_mode="stretch_width")
        typed_box = pn.Card(
            pn.widgets.Select.from_param(self.param.typed_schedule, label="Schedule"), self.typed_form,
            pn.widgets.FloatInput.from_param(self.param.typed_peak_lr, label="Peak LR", step=1e-4),
            pn.Row(add_typed, clear_typed), title="Predict an untrained schedule", collapsed=True,
            sizing_mode="stretch_width")
        controls = pn.Column(data_box, pn.layout.Divider(), fit_box, typed_box, width=330, sizing_mode="fixed")
        main = pn.Column(self.curve_status, self.curve_list, self.curve_plot,
                         pn.Row(pn.widgets.Checkbox.from_param(self.param.curve_log_y, label="log y"),
                                pn.widgets.IntInput.from_param(self.param.eval_points, label="Points per curve shown",
                                                               width=180)),
                         pn.pane.Markdown("**Per-curve metrics** (R², mean and worst relative error)"),
                         self.curve_table, pn.pane.Markdown("**Fitted parameters**"), self.curve_params,
                         self._export(), sizing_mode="stretch_width")
        return pn.Row(controls, main, sizing_mode="stretch_width")

    def _export(self) -> pn.viewable.Viewable:
        from workbench.apps.export import ExportPanel

        return ExportPanel(figure=self.figure, data=self.data, fit_json=self.fit_json, basename="laws")
