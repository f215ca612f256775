"""The live monitor's settings that are rarely changed (:class:`MonitorSettings`, a sub-object of the
app so the app keeps few parameters) and the sidebar of widgets (:func:`monitor_controls`)."""

from __future__ import annotations

from typing import Any

import panel as pn
import param

from workbench.apps.base import escape


class MonitorSettings(param.Parameterized):
    """Display and performance options of the live monitor (``LiveMonitor(max_points=...)`` passes them)."""

    follow = param.Boolean(default=True, doc="Add new runs that match the filters as they start")
    log_x = param.Boolean(default=False)
    log_y = param.Boolean(default=False)
    overlay = param.Boolean(default=True, doc="Train and test of a metric in one panel")
    band = param.Selector(default="min-max", objects=["min-max", "quartiles"], doc="What a group's band spans")
    show_runs = param.Boolean(default=False, doc="With bands, also draw every run")
    max_points = param.Integer(default=1600, bounds=(50, 20000), doc="Points per line (2 per min/max bucket)")
    max_runs = param.Integer(default=256, bounds=(1, 1024), doc="Runs selected by default")
    period_ms = param.Integer(default=300, bounds=(100, 5000), doc="How often the page polls the store")
    forecast = param.Boolean(default=True, doc="Draw each running run's forecast and 95 % band ahead of its loss "
                             "curve, and flag a run that leaves it (workbench.forecast_watch); only while at "
                             "most 16 runs are shown (monitor_forecast.MAX_RUNS)")
    backend = param.Selector(default="canvas", objects=["canvas", "webgl"],
                             doc="Bokeh output backend. Lines are decimated to max_points, so canvas is fast; "
                                 "webgl without a GPU (software rendering) made a 8-run live page 5x slower")


RUNS_CSS = ".choices__inner { max-height: 170px; overflow-y: auto; }"
"""The runs selector shows at most about eight rows of chosen runs and scrolls."""
REDRAW = ("log_x", "log_y", "overlay", "band", "show_runs", "max_points", "backend", "forecast")
"""Settings whose change rebuilds the figures."""


FIRST_CONTROLS = 8
"""The sidebar's run filters and selection; the display options below them (13 widgets, ~30 Bokeh models)
are added once a served page has loaded (``defer``): its first paint was 0.1-0.2 s sooner (issue 13)."""


def monitor_controls(app: Any, defer: list | None = None) -> pn.Column:
    """The sidebar: run filters and selection, then what is drawn and how. With ``defer`` (a served page
    not loaded yet), only the first :data:`FIRST_CONTROLS` items, and a function that adds the rest is
    appended to ``defer`` (the page calls it on load)."""
    w, p, st = pn.widgets, app.param, app.settings.param
    items = [
        "### Runs",
        w.Select.from_param(p.sweep, label="sweep"),
        w.Select.from_param(p.task, label="task"),
        w.MultiChoice.from_param(p.status, label="status"),
        w.Select.from_param(p.hp_key, label="hyperparameter filter"),
        w.MultiChoice.from_param(p.hp_values, label="values"),
        # the chosen runs scroll inside the box: 256 chips made the sidebar (and the page) 8 000 px tall
        w.MultiChoice.from_param(p.runs, label="runs", max_items=1024, css_classes=["wb-runs"],
                                 stylesheets=[RUNS_CSS]),
        w.Checkbox.from_param(st.follow, label="follow new runs"),
        "### Curves",
        w.RadioButtonGroup.from_param(p.view_mode, css_classes=["wb-view"]),
        w.MultiChoice.from_param(p.metrics, label="metrics", css_classes=["wb-metrics"]),
        w.RadioButtonGroup.from_param(p.x_axis, css_classes=["wb-xaxis"]),
        pn.Row(w.Checkbox.from_param(st.log_x, label="log x", css_classes=["wb-logx"]),
               w.Checkbox.from_param(st.log_y, label="log y", css_classes=["wb-logy"])),
        w.FloatSlider.from_param(p.smoothing, label="smoothing (EMA)", step=0.01, css_classes=["wb-smoothing"]),
        w.Checkbox.from_param(st.overlay, label="train / test in one panel"),
        w.Select.from_param(p.color_by, label="colour / group by"),
        w.Checkbox.from_param(p.bands, label="one mean line + band per group", css_classes=["wb-bands"]),
        w.RadioButtonGroup.from_param(st.band, css_classes=["wb-band"]),
        w.Checkbox.from_param(st.show_runs, label="with bands, also every run"),
        w.Checkbox.from_param(st.forecast, label="forecast band of running runs (<= 16 shown)",
                              css_classes=["wb-forecast"]),
        w.Toggle.from_param(p.live, label="live", color="success"),
    ]
    if defer is None:
        return pn.Column(*items, width=300, sizing_mode="fixed")
    col = pn.Column(*items[:FIRST_CONTROLS], width=300, sizing_mode="fixed")
    defer.append(lambda: col.extend(items[FIRST_CONTROLS:]))
    return col


class RunProgress(pn.viewable.Viewer):
    """Progress bar and status line of a :class:`workbench.background.BackgroundRun`, polled every
    ``period_ms`` (shown over the monitor in notebooks: ``live_monitor.live_run_view``)."""

    def __init__(self, handle: Any, period_ms: int = 1000) -> None:
        super().__init__()
        self.handle = handle
        self.bar = pn.indicators.Progress(value=0, max=1000, bar_color="primary", sizing_mode="stretch_width",
                                          css_classes=["wb-progress"])
        self.text = pn.pane.Markdown("", css_classes=["wb-progress-text"], margin=(0, 10))
        self.tick()
        self._cb = pn.state.add_periodic_callback(self.tick, period=int(period_ms))

    def tick(self) -> None:
        h = self.handle
        status, step = h.status, h.step
        self.bar.value = int(1000 * h.progress)
        self.bar.bar_color = {"finished": "success", "diverged": "danger", "failed": "danger",
                              "interrupted": "warning"}.get(status, "primary")
        text = f"**{h.run_id}** · {status} · step {step} / {h.steps}"
        if status == "failed":
            text += f"\n\n```\n{escape(h.error()[-800:])}\n```"
        self.text.object = text
        if not h.running and status != "starting" and getattr(self, "_cb", None) is not None:
            self._cb.stop()

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.bar, self.text, sizing_mode="stretch_width")
