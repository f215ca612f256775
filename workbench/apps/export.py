"""A row of download buttons (PNG, SVG, PDF, HTML, TikZ, CSV, Parquet, JSON, configs CSV) for any
app, with the figure's size, scale, font size and legend position for papers.

The bytes are built on click (not on every redraw) by :mod:`workbench.figures.export` from the
callables the app passes in, so an export always reflects the current view, with only its shown
traces (no hidden trace, no editor preview). The figure has the same layout size in every format
(see :mod:`workbench.figures.export`). Data go out tidy: the long metric rows in one CSV and, where
the app gives ``configs``, one row per run's config in a second CSV (never the config on every row).
An export that fails (no figure yet, kaleido missing Chromium, ...) shows its reason in the panel;
nothing downloads.
"""

from __future__ import annotations

import io
import re
import traceback
from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn
import param

from workbench.apps.base import escape
from workbench.figures import export as fx

_LABELS = {"png": "PNG", "svg": "SVG", "pdf": "PDF", "html": "HTML", "tex": "TikZ", "csv": "CSV",
           "parquet": "Parquet", "json": "JSON", "configs": "Configs CSV"}


class ExportFailed(RuntimeError):
    """Raised to Panel after the reason is shown, so that the button downloads nothing."""


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    return name or "figure"


class ExportPanel(pn.viewable.Viewer):
    """Download buttons for a figure (PNG/SVG/PDF/HTML/TikZ), its data (CSV/Parquet), the runs'
    configs (CSV, one row per run) and a fit (JSON), and the figure's style controls.

    ``figure``: callable returning a plotly Figure; ``data``: callable returning a DataFrame or None;
    ``configs``: callable returning one row per run (or None); ``fit_json``: callable returning a
    JSON string (or None). Buttons whose callable is not given are not shown; a callable returning
    None shows "nothing to export" instead of downloading.
    """

    basename = param.String(default="figure", doc="File name stem of the downloads")
    width = param.Integer(default=800, bounds=(10, 10000), doc="Figure width (CSS px)")
    height = param.Integer(default=500, bounds=(10, 10000), doc="Figure height (CSS px)")
    scale = param.Number(default=2.0, bounds=(0.1, 10), doc="PNG pixels per CSS px")
    font_size = param.Number(default=12.0, bounds=(4, 72), doc="Font size (px)")
    legend = param.Selector(default="right", objects=list(fx.LEGEND_POSITIONS), doc="Legend position")

    def __init__(self, figure: Callable[[], Any] | None = None, data: Callable[[], pd.DataFrame | None] | None = None,
                 fit_json: Callable[[], str | None] | None = None, basename: str = "figure",
                 configs: Callable[[], pd.DataFrame | None] | None = None, **params: Any) -> None:
        super().__init__(basename=basename, **params)
        self._sources = {"figure": figure, "data": data, "fit": fit_json, "configs": configs}
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, margin=(0, 5))
        self.buttons: dict[str, pn.widgets.FileDownload] = {}
        for fmt in [*fx.FORMATS, "configs"]:
            if self._sources[self._kind(fmt)] is None:
                continue
            self.buttons[fmt] = pn.widgets.FileDownload(
                callback=self._callback(fmt), filename=self._filename(fmt), label=_LABELS[fmt],
                color="light", width=110 if fmt == "configs" else 82, margin=(2, 3), css_classes=[f"wb-export-{fmt}"])
        self._row = pn.Row(pn.pane.Markdown("**Export**", margin=(8, 6, 0, 6)), *self.buttons.values(),
                           sizing_mode="stretch_width")
        self._style_row = None
        if figure is not None:
            num = {"width": 90, "sizing_mode": "fixed", "margin": (0, 4)}
            self._style_row = pn.Row(
                pn.widgets.IntInput.from_param(self.param.width, label="width px", css_classes=["wb-export-width"],
                                               **num),
                pn.widgets.IntInput.from_param(self.param.height, label="height px",
                                               css_classes=["wb-export-height"], **num),
                pn.widgets.FloatInput.from_param(self.param.scale, label="PNG scale", step=0.5,
                                                 css_classes=["wb-export-scale"], **num),
                pn.widgets.FloatInput.from_param(self.param.font_size, label="font px", step=1,
                                                 css_classes=["wb-export-font"], **num),
                pn.widgets.Select.from_param(self.param.legend, label="legend", width=150, sizing_mode="fixed",
                                             margin=(0, 4), css_classes=["wb-export-legend"]),
                sizing_mode="stretch_width")

    @staticmethod
    def _kind(fmt: str) -> str:
        return "configs" if fmt == "configs" else fx.FORMATS[fmt].kind

    def _filename(self, fmt: str) -> str:
        stem = _safe_name(self.basename)
        return f"{stem}-configs.csv" if fmt == "configs" else f"{stem}.{fx.FORMATS[fmt].ext}"

    @param.depends("basename", watch=True)
    def _rename(self) -> None:
        for fmt, b in self.buttons.items():
            b.filename = self._filename(fmt)

    def style(self) -> fx.FigureStyle:
        """The figure style of the controls."""
        return fx.FigureStyle(width=self.width, height=self.height, scale=self.scale, font_size=self.font_size,
                              legend=self.legend)

    def build(self, fmt: str) -> bytes:
        """The bytes of one export (what a click downloads); raises on failure."""
        if fmt not in self.buttons:
            raise fx.ExportError(f"fmt: must be one of {sorted(self.buttons)}, got {fmt!r}")
        kind = self._kind(fmt)
        obj = self._sources[kind]()
        if obj is None or (isinstance(obj, pd.DataFrame) and obj.empty):
            raise fx.ExportError(f"{kind}: nothing to export yet")
        if fmt == "configs":
            return fx.data_to_csv(obj)
        if fmt == "html":
            return fx.figure_to_html(obj, title=self.basename, style=self.style())
        if fmt in fx.IMAGE_FORMATS:
            return fx.figure_to_image(obj, fmt, style=self.style())
        if fmt == "tex":
            return fx.export_bytes("tex", obj, style=self.style(), basename=_safe_name(self.basename))
        return fx.export_bytes(fmt, obj)

    def _callback(self, fmt: str) -> Callable[[], io.BytesIO]:
        def cb() -> io.BytesIO:
            try:
                data = self.build(fmt)
            except Exception as e:
                if not isinstance(e, fx.ExportError):
                    traceback.print_exc()
                self.message.object = f"**Export {_LABELS[fmt]} failed** ({type(e).__name__}): {escape(e)}"
                self.message.visible = True
                raise ExportFailed(str(e)) from e
            self.message.visible = False
            return io.BytesIO(data)

        return cb

    def __panel__(self) -> pn.viewable.Viewable:
        parts = [self._row] + ([self._style_row] if self._style_row is not None else []) + [self.message]
        return pn.Column(*parts, sizing_mode="stretch_width")
