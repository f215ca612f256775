"""A row of download buttons (PNG, SVG, PDF, HTML, CSV, Parquet, JSON) for any app.

The bytes are built on click (not on every redraw) by :mod:`workbench.figures.export` from the
callables the app passes in, so an export always reflects the current view. An export that fails
(no figure yet, kaleido missing Chromium, ...) shows its reason in the panel; nothing downloads.
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

_LABELS = {"png": "PNG", "svg": "SVG", "pdf": "PDF", "html": "HTML", "csv": "CSV", "parquet": "Parquet",
           "json": "JSON"}


class ExportFailed(RuntimeError):
    """Raised to Panel after the reason is shown, so that the button downloads nothing."""


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    return name or "figure"


class ExportPanel(pn.viewable.Viewer):
    """Download buttons for a figure (PNG/SVG/PDF/HTML), its data (CSV/Parquet) and a fit (JSON).

    ``figure``: callable returning a plotly Figure; ``data``: callable returning a DataFrame or None;
    ``fit_json``: callable returning a JSON string (or None). Buttons whose callable is not given
    are not shown; a callable returning None shows "nothing to export" instead of downloading.
    """

    basename = param.String(default="figure", doc="File name stem of the downloads")

    def __init__(self, figure: Callable[[], Any] | None = None, data: Callable[[], pd.DataFrame | None] | None = None,
                 fit_json: Callable[[], str | None] | None = None, basename: str = "figure", **params: Any) -> None:
        super().__init__(basename=basename, **params)
        self._sources = {"figure": figure, "data": data, "fit": fit_json}
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, margin=(0, 5))
        self.buttons: dict[str, pn.widgets.FileDownload] = {}
        for fmt, spec in fx.FORMATS.items():
            if self._sources[spec.kind] is None:
                continue
            self.buttons[fmt] = pn.widgets.FileDownload(
                callback=self._callback(fmt), filename=f"{_safe_name(basename)}.{spec.ext}", label=_LABELS[fmt],
                color="light", width=82, margin=(2, 3), css_classes=[f"wb-export-{fmt}"])
        self._row = pn.Row(pn.pane.Markdown("**Export**", margin=(8, 6, 0, 6)), *self.buttons.values(),
                           sizing_mode="stretch_width")

    @param.depends("basename", watch=True)
    def _rename(self) -> None:
        for fmt, b in self.buttons.items():
            b.filename = f"{_safe_name(self.basename)}.{fx.FORMATS[fmt].ext}"

    def build(self, fmt: str) -> bytes:
        """The bytes of one export (what a click downloads); raises on failure."""
        if fmt not in self.buttons:
            raise fx.ExportError(f"fmt: must be one of {sorted(self.buttons)}, got {fmt!r}")
        kind = fx.FORMATS[fmt].kind
        obj = self._sources[kind]()
        if obj is None or (isinstance(obj, pd.DataFrame) and obj.empty):
            raise fx.ExportError(f"{kind}: nothing to export yet")
        if fmt == "html":
            return fx.figure_to_html(obj, title=self.basename)
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
        return pn.Column(self._row, self.message, sizing_mode="stretch_width")
