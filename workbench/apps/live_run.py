"""A background run, live, in a notebook: a progress bar over the live monitor, both updating every second.

``live_run_view(handle)`` takes the handle of :func:`workbench.background.start_run` and returns a Panel
layout: a progress bar with the run's status and step, and a :class:`~workbench.apps.live_monitor.LiveMonitor`
on the run's store (following new runs, so the run appears as soon as the child process registers it).
The cell that displays it returns at once; Jupyter runs the periodic updates whenever the kernel is
idle (while another cell runs, the view pauses and then catches up). Not a served page: a component for
notebooks, built on the same monitor the dashboards use.
"""

from __future__ import annotations

from typing import Any

import panel as pn

from workbench.apps.base import escape
from workbench.apps.live_monitor import LiveMonitor
from workbench.background import BackgroundRun


class RunProgress(pn.viewable.Viewer):
    """Progress bar and status line of a :class:`BackgroundRun`, polled every ``period_ms``."""

    def __init__(self, handle: BackgroundRun, period_ms: int = 1000) -> None:
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


def live_run_view(handle: BackgroundRun, **monitor_params: Any) -> pn.viewable.Viewable:
    """Progress bar + live monitor of ``handle``'s store (``monitor_params`` go to :class:`LiveMonitor`;
    by default the grokking view, updated every second)."""
    params = {"view_mode": "grokking", "period_ms": 1000, **monitor_params}
    monitor = LiveMonitor(store_path=str(handle.store_path), **params)
    return pn.Column(RunProgress(handle, period_ms=params["period_ms"]), monitor, sizing_mode="stretch_width")
