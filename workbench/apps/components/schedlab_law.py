"""The schedule lab's loss prediction: a fitted schedule-aware law, uploaded (``FitResult.to_json()``) or
fitted in the background on chosen runs of the store (one task), and the predicted loss curves of the
chosen schedules with the part beyond the law's fitted domain shaded. The science is in
``workbench.schedule_predict`` and ``workbench.fit``; the figure in ``workbench.figures.schedules_bokeh``."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import panel as pn
import param

from workbench import schedule_predict as sp
from workbench.apps.base import escape, guarded
from workbench.apps.components.background import BackgroundTask
from workbench.errors import WorkbenchError

MAX_LAW_BYTES = 5_000_000
"""Largest fitted-law JSON the page accepts as an upload."""


class LawPanel(param.Parameterized):
    """The law and the predictions of the schedule lab ``owner`` (an ``AppBase``: store, messages).
    ``on_change`` is called after the law changes (loaded, set or fitted)."""

    fit_runs = param.ListSelector(default=[], objects=[], doc="Runs of the store to fit the law on (one task)")
    law_json = param.String(default=None, allow_None=True, doc="A fitted schedule-aware law (FitResult JSON)")

    def __init__(self, owner: Any, on_change: Callable[[], Any], **params: Any) -> None:
        super().__init__(**params)
        self.owner, self.on_change = owner, on_change
        self.law: Any = None
        self._fit_what = ""
        self.fit_btn = pn.widgets.Button(label="Fit multi-power law on the chosen runs", css_classes=["wb-fit-runs"])
        self.fit_btn.on_click(lambda *_: self.fit(background=True))
        self.fit_status = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["wb-fit-status"])
        self.fit_task = BackgroundTask(owner, name="fit", disable=[self.fit_btn], status=self.fit_status)
        self.plot = pn.pane.Bokeh(None, sizing_mode="stretch_width", height=360)
        self.table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                          sizing_mode="stretch_width", height=160)
        # shown with a law and a schedule; the Bokeh pane's own `visible` follows its figure's, so the
        # column around them is what is hidden
        self.results = pn.Column(self.plot, self.table, visible=False, sizing_mode="stretch_width")

    def show_error(self, msg: str) -> None:  # for @guarded
        self.owner.show_error(msg)

    # -------------------------------------------------------------- the law
    @guarded
    def load(self, text: str | bytes) -> None:
        """Load a fitted law from ``FitResult.to_json()`` text (at most ``MAX_LAW_BYTES``)."""
        self.owner.clear_message()  # a new action: the previous message goes
        if len(text) > MAX_LAW_BYTES:
            raise WorkbenchError(f"law file: {len(text):,} bytes, more than the limit of {MAX_LAW_BYTES:,} bytes "
                                 "(MAX_LAW_BYTES); a fitted law's JSON is a few kB")
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            raise WorkbenchError(f"law file: not valid JSON ({e.msg} at line {e.lineno})") from None
        from workbench.fit import FitResult

        self.set(FitResult.from_json(text), text)
        self.owner.show_info(f"Loaded law {sp.law_name(self.law)}.")

    def set(self, result: Any, text: str | None = None) -> None:
        """Use an already fitted law object (its JSON ``text`` when known)."""
        self.law = result
        self.law_json = text if text is not None else (result.to_json() if hasattr(result, "to_json") else None)
        self.on_change()

    # -------------------------------------------------------------- fitting on runs of the store
    def refresh_runs(self, *_: Any) -> None:
        """Offer the store's runs for fitting (label: name · task · id), newest first."""
        runs = self.owner.store.runs()
        if "created" in runs:
            runs = runs.sort_values("created", ascending=False)
        self.param.fit_runs.objects = {escape(f"{r.name} · {r.task or '?'} · {r.id}"): r.id for r in runs.itertuples()}
        self.fit_runs = [r for r in self.fit_runs if r in set(runs["id"])]

    @guarded
    def fit(self, law: str = "multi_power", run_ids: Sequence[str] | None = None, background: bool = False) -> Any:
        """Fit a schedule-aware law on chosen runs of the store (``fit_runs``; one task only) that logged
        ``lr`` and a loss. ``background=True`` (the page's button) fits in a thread with a spinner and the
        elapsed time; otherwise returns the FitResult. Bad input shows a message and returns None."""
        if self.fit_task.busy:
            raise WorkbenchError("fit_runs: a fit is already running; wait for it to finish")
        from workbench.fit import FitData, fit

        curves = sp.store_curves(self.owner.store, self.fit_runs if run_ids is None else run_ids)
        data = FitData.from_curves(curves)
        self.owner.clear_message()
        self._fit_what = f"{law} on {len(curves)} run(s)"
        if background:
            self.fit_task.start(fit, law, data, label=f"Fitting {self._fit_what}", on_error=self._fit_failed,
                                on_done=lambda res: self._fitted(res, self.fit_task.elapsed))
            return None
        t0 = time.perf_counter()
        try:
            res = fit(law, data)
        except Exception as e:  # noqa: BLE001 - shown in the page (the traceback goes to the log)
            traceback.print_exc()
            self._fit_failed(e)
            return None
        self._fitted(res, time.perf_counter() - t0)
        return res

    def _fitted(self, res: Any, seconds: float) -> None:
        self.fit_status.object = f"Fitted {self._fit_what} in {seconds:.1f} s (training R² {res.r2:.4f})."
        self.set(res)
        self.owner.show_info(f"Fitted {self._fit_what}.")

    def _fit_failed(self, e: BaseException) -> None:
        self.owner.show_error(f"**Fit failed**: {type(e).__name__}: {e}")
        self.fit_status.object = f"Fit of {self._fit_what} failed."

    # -------------------------------------------------------------- predictions
    def predictions(self, schedules: Sequence[tuple[str, Any]], peak_lr: float) -> pd.DataFrame:
        """Predicted final loss of each (label, Schedule) under the law (empty without a law), with the step
        from which the prediction leaves the law's fitted domain and why."""
        if self.law is None:
            return pd.DataFrame()
        return sp.predictions_table(sp.prediction_curves(self.law, schedules, peak_lr),
                                    sp.extrapolation(self.law, schedules, peak_lr), domain=sp.has_domain(self.law))

    def update(self, schedules: Sequence[tuple[str, Any]], peak_lr: float, x_axis: str, tokens_per_step: float
               ) -> None:
        """Redraw the predicted curves and their table (hidden without a law or a schedule); a prediction
        that fails is a message in the page."""
        if self.law is None or not schedules:
            self.results.visible = False
            return
        from workbench.figures.schedules_bokeh import prediction_overlay

        try:
            curves = sp.prediction_curves(self.law, schedules, peak_lr)
        except Exception as e:  # noqa: BLE001
            self.owner.show_error(f"**{type(e).__name__}**: {e}")
            self.results.visible = False
            return
        beyond = sp.extrapolation(self.law, schedules, peak_lr)
        self.plot.object = prediction_overlay(curves, x_axis=x_axis, tokens_per_step=tokens_per_step, beyond=beyond)
        self.table.value = sp.predictions_table(curves, beyond, domain=sp.has_domain(self.law))
        if beyond:
            label, (st, why) = next(iter(beyond.items()))
            self.owner.show_info(f"Shaded: predictions beyond what the law was fitted on ({label}: from step {st}; "
                                 f"{why}).")
        self.results.visible = True

    # -------------------------------------------------------------- view
    def card(self) -> pn.viewable.Viewable:
        law_file = pn.widgets.FileInput(accept=".json", multiple=False)
        law_file.param.watch(lambda e: e.new and self.load(e.new), "value")
        refresh = pn.widgets.Button(label="↻", width=40, sizing_mode="fixed", description="Refresh the run list")
        refresh.on_click(self.refresh_runs)
        pick = pn.widgets.MultiChoice.from_param(self.param.fit_runs, label="Runs to fit on (one task)",
                                                 css_classes=["wb-fit-pick"], max_items=200)
        return pn.Card(pn.pane.Markdown("Upload a fitted schedule-aware law (`FitResult.to_json()`), "
                                        "or fit one on runs of the store that logged `lr` (one task):"),
                       law_file, pn.Row(pick, refresh), pn.Row(self.fit_btn, self.fit_task.spinner),
                       self.fit_status, title="Loss prediction", collapsed=False)
