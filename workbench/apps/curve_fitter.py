"""Curve-law fitter (``/curves``): fit a schedule-aware loss-curve law, which takes a run's whole per-step LR
as input (multi-power law, Luo et al. ICLR 2025 eq. 7; LR-annealing law, Tissue et al. 2024 eq. 1; both in
``workbench.fit.schedule_laws``), on chosen training curves (loss-curve CSVs shipped in ``data/``, an upload
with columns ``step, lr, loss[, curve]``, or runs of the store that logged ``lr``; ``components/data_source.py``),
then predict every loaded curve, the held-out ones and schedules typed in from the registry that nobody trained
(``components/lawfit_typed.py``), against its measurement with per-curve R², mean and worst relative error
(``workbench.fit.curveset``; figure ``workbench.figures.fits.schedule_law_figure``, drawn in the page with
Bokeh by ``workbench.figures.plotly_bokeh``, so the page loads no plotly.js; exports use the Plotly figure). Predictions beyond the
fitted domain are shaded and the table says why (``workbench.fit.domain``). Given the dataset size in updates,
the LR-annealing law is compared with its repetition-aware variant (Muennighoff et al. 2023,
``workbench.fit.repetition``) and the page says whether the repetition term helps. Warnings for a low R², a
residual trend or curves of several tasks come from ``workbench.fit.guardrails``. The fit runs in a
background task (``components/background.py``) with its elapsed time shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param

from workbench.apps.base import AppBase, escape, guarded, options
from workbench.apps.components.background import BackgroundTask
from workbench.apps.components.data_source import DataSource
from workbench.apps.components.lawfit_typed import TypedSchedules
from workbench.figures.plotly_bokeh import shown_traces, to_bokeh

INSIDE = "inside"
"""The results table's "extrapolated from step" of a curve whose prediction stays in the fitted domain."""


class CurveFitter(AppBase):
    """Fit a schedule-aware law on loss curves and predict held-out and untrained schedules."""

    title = "Curve-law fitter"

    curve_law = param.Selector(default="multi_power", objects=["multi_power", "lr_annealing"],
                               doc="Schedule-aware law (Luo et al. 2025 multi-power; Tissue et al. 2024 annealing)")
    curve_method = param.Selector(default="paper", objects=["paper", "optimum"],
                                  doc="paper: the law's published procedure (multi-power: L-BFGS on a 4-parameter "
                                      "form, then AdamW, early-stopped); optimum: batched L-BFGS from data-driven "
                                      "starts to the least Huber objective")
    fit_on = param.ListSelector(default=[], objects=[], doc="Loaded curves the law is fitted on (others held out)")
    fit_points = param.Integer(default=24, bounds=(5, 2000),
                               doc="Observed points per training curve in the fit (cost ~ points x LR steps)")
    eval_points = param.Integer(default=200, bounds=(10, 5000), doc="Points per curve for metrics and lines")
    skip_frac = param.Number(default=0.1, bounds=(0, 0.9),
                             doc="Leave out the first share of each curve (warmup, early transient)")
    dataset_steps = param.Integer(default=None, allow_None=True, bounds=(1, None),
                                  doc="Dataset size in optimizer updates (unique tokens / tokens per update): "
                                      "given, the repetition-aware law is compared (Muennighoff et al. 2023)")
    log_y = param.Boolean(default=False, doc="log y on the loss-curve figure")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        from workbench.figures.scaling import empty_figure

        self.result: Any = None
        self.fitted_on: list[str] = []
        self.repetition: pd.DataFrame | None = None
        self._what = ""
        self._fig: Any = empty_figure("Load curves, choose the ones to fit on, then press Fit law on curves.", 560)
        self.plot = pn.pane.Bokeh(to_bokeh(self._fig), sizing_mode="stretch_width")
        self.table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=220,
                                          sizing_mode="stretch_width", layout="fit_columns")
        self.params_table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=250,
                                                 width=360, sizing_mode="fixed", layout="fit_columns")
        self.rep_pane = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["wb-repetition"])
        self.status = pn.pane.Markdown("Load curves, choose the ones to fit on, then **Fit law on curves**.",
                                       sizing_mode="stretch_width", css_classes=["wb-curve-status"])
        self.warnings = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["wb-fit-warnings"])
        self.curve_list = pn.pane.Markdown("", sizing_mode="stretch_width")
        # the tables and the export enter the page with the first fit (page load: only what is visible)
        self.results_box = pn.Column(sizing_mode="stretch_width")
        self.fit_btn = pn.widgets.Button(label="Fit law on curves", color="primary", css_classes=["wb-fit-curves"])
        self.fit_btn.on_click(lambda *_: self.fit_curves())
        # no loading overlay on the Bokeh pane: its css change reached a figure outside the session lock
        self.task = BackgroundTask(self, name="curve-fit", disable=[self.fit_btn], status=self.status)
        self.source = DataSource(self, kind="curves")
        self.source.param.watch(self._on_loaded, "loaded")
        self.typed = TypedSchedules(self, self._refresh)

    @property
    def curves(self) -> dict:
        return self.source.curves

    def _on_loaded(self, *_: Any) -> None:
        self.result, self.fitted_on, self.repetition = None, [], None
        names = list(self.curves)
        self.param.fit_on.objects = options(names)
        self.fit_on = names[:-1] if len(names) > 1 else names  # the last one is predicted as unseen
        self.typed.peak_lr = float(max(np.max(c[2]) for c in self.curves.values()))  # the runs' peak LR
        self.curve_list.object = self.source.description

    # -------------------------------------------------------------- fit
    def fit_curves(self, *_: Any, background: bool = True) -> Any:
        """Fit ``curve_law`` on the ``fit_on`` curves (``paper``: the law's own procedure; ``optimum``: batched
        L-BFGS from ``schedule_law_starts``), then predict every curve; with ``dataset_steps`` also compare the
        repetition-aware law. In the page the fit runs in a thread; ``background=False`` (tests, notebooks)
        returns the FitResult. Bad input or a failed fit shows a message and returns None."""
        from workbench.fit import get_law
        from workbench.fit.curveset import curve_fit_data

        if self.task.busy:
            self.show_error("**fit**: a loss-curve fit is already running; wait for it to finish")
            return None
        try:
            law = get_law(self.curve_law)
            data, peak = curve_fit_data(self.curves, self.fit_on, skip_frac=self.skip_frac,
                                        fit_points=self.fit_points, n_params=law.n_params)
            starts = None
            if self.curve_method == "optimum":
                from workbench.fit.schedule_laws import schedule_law_starts

                starts = schedule_law_starts(law, data.y, peak)
        except Exception as e:  # noqa: BLE001 - bad input: a message in the page
            self.show_error(f"**{type(e).__name__}**: {e}")
            return None
        self.clear_message()
        self._what = escape(f"{law.name} ({self.curve_method}) on {len(data.names)} curve(s), {len(data)} points")
        if background:
            self.task.start(self._fit, law, data, starts, label=f"Fitting {self._what}", on_done=self._fitted,
                            on_error=self._failed)
            return None
        self.status.object = f"Fitting {self._what}…"
        try:
            return self._fitted(self._fit(law, data, starts))
        except Exception as e:  # noqa: BLE001 - shown in the page
            self._failed(e)
            return None

    def _fit(self, law: Any, data: Any, starts: np.ndarray | None) -> tuple[Any, list[str], pd.DataFrame | None]:
        """The fit (in the background task's thread): the law, the tasks note and the repetition comparison."""
        from workbench.fit import fit
        from workbench.fit.guardrails import note_tasks

        res = fit(law, data) if starts is None else fit(law, data, starts=starts, n_polish=1)
        note_tasks(res, [self.source.tasks.get(n, "") for n in data.names])
        return res, list(data.names), self._compare_repetition(data, list(data.names)) if self.dataset_steps else None

    def _fitted(self, out: tuple[Any, list[str], pd.DataFrame | None]) -> Any:
        res, self.fitted_on, self.repetition = out
        self.result = res
        self._show(res)
        self.status.object = f"Fitted {self._what} in {res.seconds:.1f} s (training R² {res.r2:.5f})."
        return res

    def _failed(self, e: BaseException) -> None:
        self.show_error(f"**{type(e).__name__}**: {e}")
        self.status.object = f"Fit of {self._what} failed."

    def _compare_repetition(self, data: Any, fitted_on: list[str]) -> pd.DataFrame:
        """The LR-annealing law and its repetition-aware variant on the fitted curves, compared on the held-out
        curves when there are any (``workbench.fit.compare_repetition``)."""
        from workbench.fit import compare_repetition
        from workbench.fit.curveset import curve_fit_data

        held = [n for n in self.curves if n not in fitted_on]
        test = curve_fit_data(self.curves, held, skip_frac=self.skip_frac, fit_points=self.eval_points)[0] \
            if held else None
        return compare_repetition(data, float(self.dataset_steps), test=test)

    def _show(self, result: Any) -> None:
        from workbench.figures.fits import schedule_law_figure
        from workbench.fit.curveset import curve_predictions, metrics_table
        from workbench.fit.guardrails import fit_warnings

        curves = curve_predictions(result, self.curves, self.typed.curves, self.fitted_on,
                                   skip_frac=self.skip_frac, eval_points=self.eval_points)
        self._fig = schedule_law_figure(curves, law=result.law.name, log_y=self.log_y)
        self.plot.object = to_bokeh(self._fig)
        # object dtype: Bokeh serialises pandas' string dtype in Tabulator as NaN
        table = pd.DataFrame(metrics_table(curves, result, self.fitted_on))
        ext = "extrapolated from step"  # a row inside the fitted domain says so (a None column reads NaN)
        table[ext] = [INSIDE if v is None or pd.isna(v) else str(int(v)) for v in table[ext]]
        self.table.value = table.astype({"curve": object, "role": object, ext: object, "why": object})
        self.params_table.value = pd.DataFrame([{"param": k, "value": v} for k, v in result.params.items()]
                                               ).astype({"param": object})
        warn = fit_warnings(result)
        self.warnings.object = escape("**Check before trusting this fit:**\n" + "\n".join(f"- {m}" for m in warn))
        self.warnings.visible = bool(warn)
        self.rep_pane.object = self._repetition_text()
        if not self.results_box.objects:
            self.results_box.objects = self._results_view()
        far = [(n, d["beyond"]) for n, d in curves.items() if "beyond" in d]
        if far:
            n, (st, why) = far[0]
            self.show_info(f"Shaded: predictions beyond what the law was fitted on ({n}: from step {st}; {why}); "
                           f"trust them less (the table's 'why' column says why for each curve).")

    def _repetition_text(self) -> str:
        r = self.repetition
        if r is None:
            return ""
        cols = [c for c in ("law", "aic", "heldout_mean_rel", "heldout_worst_rel", "trend_flags") if c in r]
        rows = "\n".join("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
                         for row in r[cols].itertuples(index=False))
        return escape(f"**Repeated data** (dataset of {self.dataset_steps:,} updates; Muennighoff et al. 2023): "
                      f"{r['verdict'].iloc[-1]}.\n\n| {' | '.join(cols)} |\n|{'---|' * len(cols)}\n{rows}")

    def _refresh(self) -> None:
        if self.result is not None:
            guarded(lambda s: s._show(s.result))(self)

    @param.depends("log_y", "eval_points", watch=True)
    def _on_view(self) -> None:
        self._refresh()

    # -------------------------------------------------------------- export
    def figure(self) -> Any:
        """The Plotly figure drawn in the page (for exports), without the traces hidden by a click on the legend."""
        return shown_traces(self._fig, self.plot.object)

    def data(self) -> pd.DataFrame | None:
        return self.table.value if len(self.table.value) else None

    def fit_json(self) -> str | None:
        return None if self.result is None else self.result.to_json()

    # -------------------------------------------------------------- view
    def _results_view(self) -> list:
        from workbench.apps.export import ExportPanel

        return [pn.pane.Markdown("**Per-curve metrics** (R², mean and worst relative error)"), self.table,
                self.rep_pane, pn.pane.Markdown("**Fitted parameters**"), self.params_table,
                ExportPanel(figure=self.figure, data=self.data, fit_json=self.fit_json, basename="curves")]

    def view(self) -> pn.viewable.Viewable:
        fit_box = pn.Column(
            pn.pane.Markdown("**Fit**"),
            pn.widgets.Select.from_param(self.param.curve_law, label="Law"),
            pn.widgets.RadioButtonGroup.from_param(self.param.curve_method, button_type="light"),
            pn.widgets.MultiChoice.from_param(self.param.fit_on, label="Fit on (the others are held out)"),
            pn.widgets.IntInput.from_param(self.param.fit_points, label="Points per curve in the fit"),
            pn.widgets.FloatInput.from_param(self.param.skip_frac, label="Skip first share of each curve", step=0.05),
            pn.widgets.IntInput.from_param(self.param.dataset_steps, label="Dataset size in updates (optional)"),
            pn.Row(self.fit_btn, self.task.spinner), sizing_mode="stretch_width")
        controls = pn.Column(self.source.view(), pn.layout.Divider(), fit_box, self.typed.view(), width=330,
                             sizing_mode="fixed")
        main = pn.Column(self.status, self.warnings, self.curve_list, self.plot,
                         pn.Row(pn.widgets.Checkbox.from_param(self.param.log_y, label="log y"),
                                pn.widgets.IntInput.from_param(self.param.eval_points, label="Points per curve shown",
                                                               width=180)),
                         self.results_box, sizing_mode="stretch_width")
        return pn.Row(controls, main, sizing_mode="stretch_width")
