"""Law fitter: choose data (a CSV in a data folder such as ../shared/data or data/reference, an
uploaded CSV, or the runs of a sweep in the store), map its columns to a law's inputs, fit several
laws (``workbench.fit``: Chinchilla (Hoffmann et al. 2022), Kaplan et al. 2020, power law +
constant (Hestness et al. 2017), Gadre et al. 2024, Step Law (Li et al. 2025), ...) and compare
them: overlay with bootstrap bands, residuals, parameter table with intervals, held-out error and
AIC ranking (``workbench.fit.compare``), extrapolation to a target scale (``extrapolate``) and the
crossover of two laws (``crossover``, Languini Kitchen).

All fitting is ``workbench.fit``; the plotly figures are built here from ``FitResult.predict``
because ``workbench.figures.fits`` had no multi-law overlay when this app was written. A malformed
CSV, an unknown column or a failing fit shows its message in the page.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.apps.base import AppBase, guarded

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
ROOT = Path(__file__).resolve().parents[2]

# column mappings and derived columns for known files (everything else: pick the mapping by hand)
PRESETS: dict[str, dict[str, Any]] = {
    "svg_extracted_data.csv": {"laws": ["chinchilla"], "mapping": "N=Model Size,D=D,L=loss",
                               "derive": "D = `Training FLOP` / (6 * `Model Size`)", "x": "N"},
    "models_flat.csv": {"laws": ["gadre"], "mapping": "C=C,M=tokens_per_param_M,L=loss_c4_val",
                        "derive": "C = 6 * N_params * D_tokens", "x": "C"},
}


class CSVError(ValueError):
    """A CSV that cannot be read, or a mapping that does not fit it (names the column)."""


def data_dirs() -> list[Path]:
    """Folders offered as data sources: $WORKBENCH_SHARED_DATA or ../shared/data, and data/reference."""
    env = os.environ.get("WORKBENCH_SHARED_DATA")
    cands = [Path(env)] if env else [ROOT.parent / "shared" / "data"]
    cands.append(ROOT / "data" / "reference")
    return [p for p in cands if p.is_dir()]


def data_files() -> dict[str, Path]:
    """Label -> path of every CSV under the data folders (files over 20 MB left out)."""
    out = {}
    for d in data_dirs():
        for p in sorted(d.rglob("*.csv")):
            if p.stat().st_size < 20e6:
                out[f"{d.name}/{p.relative_to(d)}"] = p
    return out


def read_csv(data: bytes | str | Path) -> pd.DataFrame:
    """Read a CSV (bytes of an upload or a path); raise :class:`CSVError` with the reason if it is
    malformed (ragged rows, not text, empty, fewer than two columns or no numeric column)."""
    try:
        raw = data if isinstance(data, bytes) else Path(data).read_bytes()
        text = raw.decode("utf-8")
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
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
    """Add derived columns, one ``name = expression`` per line (``DataFrame.eval`` syntax,
    back-quote names with spaces)."""
    df = df.copy()
    for line in filter(None, (ln.strip() for ln in (text or "").splitlines())):
        if "=" not in line:
            raise CSVError(f"derive: expected 'name = expression', got {line!r}")
        name, expr = (s.strip() for s in line.split("=", 1))
        try:
            df[name] = df.eval(expr)
        except Exception as e:  # noqa: BLE001 - pandas raises many types here
            raise CSVError(f"derive: could not evaluate {expr!r} ({e})") from None
    return df


def parse_map(text: str) -> dict[str, str]:
    from workbench.fit import parse_mapping

    return parse_mapping(text)


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
    derived = param.String(default="", doc="Derived columns, one 'name = expression' per line")
    x_var = param.String(default="x", doc="Law input on the figure's x axis")
    holdout = param.Number(default=0.2, bounds=(0, 0.5), doc="Share of points held out (largest x) for the error")
    bootstrap = param.Integer(default=0, bounds=(0, 2000), doc="Bootstrap resamples for intervals")
    target_scale = param.Number(default=None, allow_None=True, doc="Extrapolate to this value of x_var")
    drop_highest = param.Integer(default=0, bounds=(0, None), doc="Drop the k highest targets (Chinchilla replication: 5)")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
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
        try:
            from workbench.fit import available_laws

            self.param.laws.objects = list(available_laws())
        except ImportError as e:
            self.show_error(f"**Law fitting unavailable**: {e}")
        self._files = data_files()
        self.param.dataset.objects = list(self._files)
        try:
            self.param.sweep.objects = self.store.sweeps()["id"].tolist()
        except Exception:  # noqa: BLE001 - the store is optional here
            pass
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
        self.preview.value = self.df.head(200)
        self.show_info(f"Loaded {len(self.df)} rows, columns: {', '.join(map(str, self.df.columns[:20]))}.")
        return self.df

    @guarded
    def upload(self, data: bytes, filename: str = "upload.csv") -> None:
        self.param.update(source="upload", derived="", drop_highest=0)
        self.df = pd.DataFrame()
        self.results = {}
        self.preview.value = pd.DataFrame()
        self.df = read_csv(data)
        self.preview.value = self.df.head(200)
        num = [c for c in self.df.columns if pd.api.types.is_numeric_dtype(self.df[c])]
        if len(num) >= 2:  # start from the simplest law: target = last numeric column, x = the first
            self.param.update(mapping=f"x={num[0]},L={num[-1]}", x_var="x",
                              laws=["power_law"] if "power_law" in self.param.laws.objects else self.laws)
        self.show_info(f"Loaded {filename}: {len(self.df)} rows. Map its columns, then Fit.")

    @guarded
    def load_sweep(self, sweep: str | None = None) -> None:
        """The runs of a sweep as data: config values (``cfg.*``) and final metrics (``final.*``)."""
        from workbench.apps.sweep_board import results_table

        sid = sweep or self.sweep
        if not sid:
            raise ValueError("sweep: choose a sweep of the store")
        self.param.update(source="store", derived="", drop_highest=0)
        self.df = results_table(self.store, sid)
        self.preview.value = self.df
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
                                 "use the schedule lab to fit and apply it")
            target = law.target
            m = {k: v for k, v in mapping.items() if k in law.inputs}
            tcol = mapping.get(target, mapping.get("L", mapping.get("y")))
            missing = [i for i in law.inputs if i not in m]
            if missing:
                raise ValueError(f"mapping: law {name!r} needs inputs {list(law.inputs)}; map {missing} to columns")
            m[target] = tcol
            data = FitData.from_frame(df, m, target=target)
            hold = None
            if self.holdout > 0 and self.x_var in data.x:
                cut = np.quantile(data.x[self.x_var], 1 - self.holdout)
                hold = data.x[self.x_var] > cut
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
        self.extra.object = "\n".join(lines)

    def figure(self) -> go.Figure:
        return self._fig

    def data(self) -> pd.DataFrame | None:
        return None if self.df.empty else self.df

    def fit_json(self) -> str | None:
        if not self.results:
            return None
        return next(iter(self.results.values())).to_json()

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
        return pn.Row(controls, main, sizing_mode="stretch_width")

    def _export(self) -> pn.viewable.Viewable:
        try:
            from workbench.apps.export import ExportPanel
        except ImportError:
            return pn.pane.Markdown("*Export is not available in this installation.*")
        return ExportPanel(figure=self.figure, data=self.data, fit_json=self.fit_json, basename="laws")
