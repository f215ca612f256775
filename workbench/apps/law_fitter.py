"""Scaling-law fitter (``/laws``): choose a table (the papers' data shipped in ``data/``, an uploaded CSV with
its column mapping shown and confirmed, or the runs of a sweep; ``components/data_source.py``), map its
columns to a law's inputs, add derived columns (``workbench.expr``), fit several laws (``workbench.fit``:
Chinchilla (Hoffmann et al. 2022), Kaplan et al. 2020, power law + constant (Hestness et al. 2017), Gadre
et al. 2024, the data-constrained law with repeated data (Muennighoff et al. 2023, map ``U`` to the unique
tokens), ...) and compare them: held-out error and AIC ranking, parameters with intervals, extrapolation
to a target scale with its fitted-domain flag, and the crossover of two laws (Languini Kitchen).

Figures (``workbench.figures.scaling``, drawn in the page with Bokeh by ``workbench.figures.plotly_bokeh``, so
the page loads no plotly.js; exports use the Plotly figure): a one-input law as curves over the data with bands and residuals,
the region beyond the fitted domain shaded with the reason; laws of two inputs (L(N, D)) as predicted vs
observed with y = x plus iso-N curves over compute C ≈ 6ND. Guardrails (``workbench.fit.guardrails``): a
warning in the page when a fit's R² is below 0.9, its residuals trend or its rows come from several tasks.
Loss curves with their LR schedule are fitted by the curve-law fitter (``/curves``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param

from workbench.apps.base import AppBase, escape, guarded
from workbench.apps.components.data_source import DataSource
from workbench.apps.components.lawfit_mapping import InputColumn
from workbench.figures.plotly_bokeh import shown_traces, to_bokeh
from workbench.fit.data import CSVError, derive, parse_mapping


class LawFitter(AppBase):
    """Fit and compare scaling laws on a table from files, uploads or a sweep of the store."""

    title = "Scaling-law fitter"

    laws = param.ListSelector(default=["power_law"], objects=[], doc="Laws to fit")
    derived = param.String(default="", doc="Derived columns, one 'name = expression' per line: column names "
                                            "(`back-quoted` with spaces), numbers, + - * / **, parentheses, "
                                            "log exp sqrt log10 abs")
    x_var = param.String(default="x", doc="Law input on the figure's x axis (one-input laws)")
    holdout = param.Number(default=0.2, bounds=(0, 0.5), doc="Share held out of the fit and predicted: the points "
                           "with the largest x (workbench.fit.data.holdout_mask, as the CLI's --holdout)")
    bootstrap = param.Integer(default=0, bounds=(0, 2000), doc="Bootstrap resamples for intervals")
    target_scale = param.Number(default=None, allow_None=True, doc="Extrapolate to this value of x_var")
    drop_highest = param.Integer(default=0, bounds=(0, None), doc="Drop the k highest targets (Chinchilla replication: 5)")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        from workbench.fit.laws import available_laws, get_law

        # laws of points; the schedule-aware laws (their input is a whole LR schedule) are the curve-law fitter's
        self.param.laws.objects = [n for n in available_laws() if "lrs" not in get_law(n).inputs]
        self.results: dict[str, Any] = {}
        self._data: dict[str, Any] = {}
        self._hold: dict[str, np.ndarray] = {}
        from workbench.figures.scaling import empty_figure

        self._fig: Any = empty_figure("Choose data and laws, then press Fit.")
        self.plot = pn.pane.Bokeh(to_bokeh(self._fig), sizing_mode="stretch_width")
        self.compare_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=140,
                                                  sizing_mode="stretch_width")
        self.params_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=200,
                                                 sizing_mode="stretch_width")
        self.extra = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.warnings = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["wb-fit-warnings"])
        # the ranking, parameters and export enter the page with the first fit (page load: only what is visible)
        self.results_box = pn.Column(sizing_mode="stretch_width")
        self.source = DataSource(self, kind="table")
        self.source.param.watch(self._on_loaded, "loaded")
        self.unique = InputColumn(self.source, "U", "unique tokens")  # shown while a chosen law takes U
        self.source.open_default()
        self._on_laws()

    @property
    def df(self) -> pd.DataFrame:
        return self.source.df

    def _on_loaded(self, *_: Any) -> None:
        p = self.source.preset
        laws = [law for law in p.get("laws", self.laws) if law in self.param.laws.objects] or self.laws
        self.param.update(laws=laws, x_var=p.get("x", self.x_var), derived=p.get("derive", ""), drop_highest=0)
        self.results = {}

    @param.depends("laws", "derived", watch=True)
    def _on_laws(self) -> None:
        self.unique.update(self.laws, self.derived)

    def frame(self) -> pd.DataFrame:
        """The data after derived columns and the drop of the highest targets."""
        if self.df.empty:
            raise CSVError("data: load a CSV, choose a data file or a sweep first")
        df = derive(self.df, self.derived)
        if self.drop_highest:
            m = parse_mapping(self.source.mapping)
            tcol = m.get("L", m.get("y"))
            if tcol not in df:
                raise CSVError(f"mapping: target column {tcol!r} not in the data")
            df = df[df[tcol] < df[tcol].sort_values().iloc[-self.drop_highest]]
        return df

    # -------------------------------------------------------------- fit
    @guarded
    def fit(self, *_: Any) -> dict[str, Any]:
        """Fit every chosen law (held-out share, bootstrap) and show the comparison, figure and warnings."""
        from workbench.fit import FitData, compare, get_law, holdout_mask
        from workbench.fit import fit as fit_law
        from workbench.fit.guardrails import note_tasks

        if not self.laws:
            raise ValueError("laws: choose at least one law")
        src = self.source
        if src.origin == "upload" and not src.mapping_confirmed:
            raise ValueError(f"mapping: confirm the uploaded file's column mapping first (proposed {src.mapping}): "
                             "edit the Mapping field or press Confirm mapping")
        df, mapping = self.frame(), parse_mapping(src.mapping)
        inputs = [i for n in self.laws for i in get_law(n).inputs]
        if inputs and self.x_var not in inputs:
            self.x_var = inputs[0]
        results, datas, holds = {}, {}, {}
        for name in self.laws:
            law = get_law(name)
            missing = [i for i in law.inputs if i not in mapping]
            if missing:
                raise ValueError(f"mapping: law {name!r} needs inputs {list(law.inputs)}; map {missing} to columns")
            m = {k: v for k, v in mapping.items() if k in law.inputs}
            m[law.target] = mapping.get(law.target, mapping.get("L", mapping.get("y")))
            data = FitData.from_frame(df, m, target=law.target)
            hold = np.zeros(len(data), bool)
            if self.holdout > 0:
                hold = holdout_mask(data, self.holdout, key=self.x_var if self.x_var in data.x else None)
            results[name] = note_tasks(fit_law(law, data, bootstrap=int(self.bootstrap),
                                               holdout=hold if hold.any() else None), src.table_tasks(df))
            datas[name], holds[name] = data, hold
        self.results, self._data, self._hold = results, datas, holds
        self.compare_table.value = compare(results)
        self.params_table.value = self.parameters()
        self._redraw()
        self._extras()
        self.clear_message()
        self._show_warnings()
        if not self.results_box.objects:
            self.results_box.objects = self._results_view()
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

    def _show_warnings(self) -> None:
        from workbench.fit.guardrails import fit_warnings

        lines = [f"- **{n}**: {m}" for n, r in self.results.items() for m in fit_warnings(r)]
        self.warnings.object = escape("**Check before trusting these fits:**\n" + "\n".join(lines)) if lines else ""
        self.warnings.visible = bool(lines)

    def two_inputs(self) -> bool:
        """Whether a chosen law has more than one input (shown as predicted vs observed and iso-N)."""
        return any(len(r.law.inputs) > 1 for r in self.results.values())

    def _redraw(self) -> None:
        from workbench.figures import scaling

        if self.two_inputs():
            laws = {n: {"observed": d.y, "predicted": np.asarray(self.results[n].predict(d, warn=False)),
                        "heldout": self._hold[n]} for n, d in self._data.items()}
            nd = next((n for n, r in self.results.items() if {"N", "D"} <= set(r.law.inputs)), None)
            iso = None
            if nd is not None:
                d = self._data[nd]
                iso = {"law": nd, "N": d.x["N"], "D": d.x["D"], "y": d.y,
                       "lines": scaling.iso_n_lines(self.results[nd], d.x["N"], d.x["D"])}
            self._fig = scaling.two_input_figure(laws, iso=iso)
        else:
            laws, x = {}, None
            for name, r in self.results.items():
                d = self._data[name]
                if self.x_var not in d.x:
                    continue
                x, y = d.x[self.x_var].astype(float), d.y
                grid = scaling.x_grid(x, self.target_scale)
                pred = r.predict({self.x_var: grid}, level=0.95 if r.boot is not None and len(r.boot) else None,
                                 warn=False)
                mean, lo, hi = (pred, None, None) if isinstance(pred, np.ndarray) else (pred.mean, pred.lo, pred.hi)
                flags, _, why = r.flags({self.x_var: grid})
                laws[name] = {"grid": grid, "pred": np.asarray(mean), "lo": lo, "hi": hi, "flags": flags, "why": why,
                              "fitted": np.asarray(r.predict(d, warn=False))}
            if x is None:
                raise ValueError(f"x_var: {self.x_var!r} is not an input of the fitted laws")
            self._fig = scaling.overlay_figure(laws, x, y, self.x_var, log=bool(np.all(x > 0)))
        self.plot.object = to_bokeh(self._fig)

    @param.depends("x_var", "target_scale", watch=True)
    def _on_x(self) -> None:
        if self.results:
            guarded(lambda s: (s._redraw(), s._extras()))(self)

    def _extras(self) -> None:
        from workbench.fit import crossover, extrapolate

        lines, first = [], next(iter(self._data.values()))
        fixed = {k: float(np.median(v)) for k, v in first.x.items() if k != self.x_var}
        if self.target_scale:
            X = {self.x_var: [self.target_scale], **{k: [v] for k, v in fixed.items()}}
            for _, row in extrapolate(self.results, X).iterrows():
                band = "" if np.isnan(row["lo"]) else f" (95 %: {row['lo']:.4g} – {row['hi']:.4g})"
                flags, _, why = self.results[row["law"]].flags({k: np.asarray(v, float) for k, v in X.items()})
                where = "" if flags[0] == "inside" else f" — **beyond the fitted domain** ({flags[0]}: {why[0]})"
                lines.append(f"- **{row['law']}** at {self.x_var} = {self.target_scale:.3g}: {row['pred']:.4g}{band}{where}")
        names = list(self.results)
        if len(names) >= 2:
            try:
                c = crossover(self.results[names[0]], self.results[names[1]], var=self.x_var, fixed=fixed)
                x0 = c.get("x")
                txt = "no crossover in range" if x0 is None or not np.isfinite(x0) else f"{self.x_var} = {x0:.4g}"
                if c.get("ci"):
                    txt += f" (95 %: {c['ci'][0]:.3g} – {c['ci'][1]:.3g})"
                lines.append(f"- Crossover of **{names[0]}** and **{names[1]}**: {txt}")
            except Exception as e:  # noqa: BLE001 - laws with different inputs have no crossover
                lines.append(f"- Crossover of {names[0]} and {names[1]}: not available ({e})")
        self.extra.object = escape("\n".join(lines))

    # -------------------------------------------------------------- export
    def figure(self) -> Any:
        """The Plotly figure drawn in the page (for exports), without the traces hidden by a click on the legend."""
        return shown_traces(self._fig, self.plot.object)

    def data(self) -> pd.DataFrame | None:
        return None if self.df.empty else self.df

    def fit_json(self) -> str | None:
        return next(iter(self.results.values())).to_json() if self.results else None

    # -------------------------------------------------------------- view
    def _results_view(self) -> list:
        from workbench.apps.export import ExportPanel

        return [pn.pane.Markdown("**Ranking** (held-out error, AIC)"), self.compare_table,
                pn.pane.Markdown("**Parameters**"), self.params_table, self.extra,
                ExportPanel(figure=self.figure, data=self.data, fit_json=self.fit_json, basename="laws")]

    def view(self) -> pn.viewable.Viewable:
        fit_btn = pn.widgets.Button(label="Fit", color="primary", css_classes=["wb-fit"])
        fit_btn.on_click(self.fit)
        controls = pn.Column(
            self.source.view(), self.unique.view(),
            pn.widgets.TextAreaInput.from_param(self.param.derived, label="Derived columns", height=70),
            pn.widgets.IntInput.from_param(self.param.drop_highest, label="Drop highest k targets"),
            pn.pane.Markdown("**Laws**"),
            pn.widgets.MultiChoice.from_param(self.param.laws, label="Laws"),
            pn.widgets.TextInput.from_param(self.param.x_var, label="x axis (law input)"),
            pn.widgets.FloatInput.from_param(self.param.holdout, label="Held-out share", step=0.05),
            pn.widgets.IntInput.from_param(self.param.bootstrap, label="Bootstrap resamples"),
            pn.widgets.FloatInput.from_param(self.param.target_scale, label="Extrapolate to x ="),
            fit_btn, width=330, sizing_mode="fixed")
        main = pn.Column(self.warnings, self.plot, self.results_box, pn.pane.Markdown("**Data**"), self.source.preview,
                         sizing_mode="stretch_width")
        return pn.Row(controls, main, sizing_mode="stretch_width")
