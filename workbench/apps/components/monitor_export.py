"""What the live monitor exports: the shown runs' shown metrics at full resolution, read from the store
(not the decimated points drawn), as a long table and as a plotly figure of the current view."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workbench.figures.curves import curves_figure


def current_data(app: Any) -> pd.DataFrame | None:
    """``app``: the monitor (read: ``runs``, ``metrics``, ``store``, ``book.cursor``). The shown runs' shown metrics at full resolution, long form (what CSV / Parquet export writes)."""
    if not app.runs or not app.metrics:
        return None
    df = app.store.metrics(app.runs, app.metrics)
    if df.empty:
        return None
    df = df[df["id"] <= app.book.cursor] if app.book.cursor else df
    out = df[["run", "name", "step", "tokens", "wall", "value"]].reset_index(drop=True)
    out["step"] = out["step"].astype(np.int64)
    out["tokens"] = out["tokens"].astype(float)
    return out


def plotly_figure(app: Any) -> Any:
    """The current view as a plotly figure (for PNG / SVG / PDF / HTML export)."""
    df = current_data(app)
    if df is None:
        return None
    st = app.settings
    runs = app.run_table[app.run_table["id"].isin(app.runs)] if not app.run_table.empty else None
    return curves_figure(df, runs, names=app.metrics, x=app.x_axis, log_x=st.log_x, log_y=st.log_y,
                         smoothing=app.smoothing, color_by=None if app.color_by == "run" else app.color_by,
                         bands=app.figs.grouped, overlay=st.overlay,
                         max_points=st.max_points, title="workbench · live monitor")
