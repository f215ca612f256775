"""Export of figures, data and fits to bytes: what the dashboards' download buttons and notebooks use.

- Figures -> PNG / SVG / PDF through kaleido 1.x (``plotly.io.to_image``), which drives the system
  Chromium (found on ``PATH``, or ``$BROWSER_PATH``; kaleido's Chrome download helpers are never
  called: no network). Starting a browser per image costs ~2 s, so kaleido's sync server is started
  once per process (:func:`start_image_server`, done lazily) and each figure then costs ~0.1-0.5 s.
  Calls are serialised with a lock because a Panel server exports from several sessions' threads.
- Figures -> one self-contained HTML file with plotly.js inlined (``include_plotlyjs=True``), so the
  file opens offline and years later; never the CDN.
- Data -> CSV or Parquet bytes (pandas / pyarrow); a fit -> JSON (``FitResult.to_json()``, a JSON
  string, or a plain mapping).

Everything returns ``bytes`` so the caller decides where they go (a file, a download, a store
artifact). :func:`export_bytes` dispatches on a format name; :data:`FORMATS` lists them with their
file extension and MIME type.

Figures for papers (:class:`FigureStyle`, :func:`prepare_figure`): width and height (CSS px, the
figure's layout size), scale (pixel density of the PNG only), font size and legend position. The
figure has the same layout size in every format: a PNG is ``width*scale x height*scale`` pixels, an
SVG is ``width x height`` (its viewBox), a PDF page is ``width x height`` px at 96 dpi (0.75 pt per
px), a pgfplots figure is ``0.75*width x 0.75*height`` pt. Only what is visible is exported: traces
hidden (``visible`` False or "legendonly") or marked as an editor preview (``meta={"wb_role":
"preview"}``) are dropped. ``tex`` is a zip of a pgfplots/TikZ picture with one CSV per trace
(:mod:`workbench.figures.pgfplots`).
"""

from __future__ import annotations

import atexit
import io
import json
import math
import os
import shutil
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench.errors import WorkbenchError


class ExportError(WorkbenchError):
    """Bad input to an export: names the field and what is allowed."""


@dataclass(frozen=True)
class Format:
    name: str
    ext: str
    mime: str
    kind: str  # "figure", "data" or "fit"


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("png", "png", "image/png", "figure"),
        Format("svg", "svg", "image/svg+xml", "figure"),
        Format("pdf", "pdf", "application/pdf", "figure"),
        Format("html", "html", "text/html", "figure"),
        Format("csv", "csv", "text/csv", "data"),
        Format("parquet", "parquet", "application/vnd.apache.parquet", "data"),
        Format("json", "json", "application/json", "fit"),
        Format("tex", "zip", "application/zip", "figure"),
    )
}
IMAGE_FORMATS = ("png", "svg", "pdf")
LEGEND_POSITIONS = ("right", "top", "bottom", "inside top right", "inside bottom left", "none")
PREVIEW_ROLE = "preview"


@dataclass(frozen=True)
class FigureStyle:
    """Size and text of an exported figure. ``width`` / ``height``: layout size in CSS px (10-10000);
    ``scale``: PNG pixels per CSS px (0.1-10); ``font_size``: px (4-72); ``legend``: one of
    :data:`LEGEND_POSITIONS`."""

    width: int = 800
    height: int = 500
    scale: float = 2.0
    font_size: float = 12.0
    legend: str = "right"

    def __post_init__(self) -> None:
        _check_dim("width", self.width, 10, 10000)
        _check_dim("height", self.height, 10, 10000)
        _check_dim("scale", self.scale, 0.1, 10)
        _check_dim("font_size", self.font_size, 4, 72)
        if self.legend not in LEGEND_POSITIONS:
            raise ExportError(f"legend: must be one of {LEGEND_POSITIONS}, got {self.legend!r}")


def is_shown(trace: Any) -> bool:
    """Whether a trace is drawn: not hidden (``visible`` False / "legendonly") and not an editor preview."""
    meta = trace.meta if hasattr(trace, "meta") else trace.get("meta")
    visible = trace.visible if hasattr(trace, "visible") else trace.get("visible")
    role = meta.get("wb_role") if isinstance(meta, Mapping) else None
    return visible not in (False, "legendonly") and role != PREVIEW_ROLE


_LEGEND = {
    "right": {"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"},
    "top": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"},
    "bottom": {"orientation": "h", "x": 0, "xanchor": "left", "y": -0.15, "yanchor": "top"},
    "inside top right": {"orientation": "v", "x": 0.99, "xanchor": "right", "y": 0.99, "yanchor": "top",
                         "bgcolor": "rgba(255,255,255,0.7)"},
    "inside bottom left": {"orientation": "v", "x": 0.01, "xanchor": "left", "y": 0.01, "yanchor": "bottom",
                           "bgcolor": "rgba(255,255,255,0.7)"},
}


def prepare_figure(fig: Any, style: FigureStyle | None = None) -> go.Figure:
    """A copy of ``fig`` holding only its shown traces (:func:`is_shown`), laid out at ``style``'s
    size, font size and legend position (the input figure is not changed)."""
    fig = _check_figure(fig)
    out = go.Figure(fig)
    out.data = [t for t in out.data if is_shown(t)]
    if style is None:
        return out
    out.update_layout(width=style.width, height=style.height, autosize=False, font={"size": style.font_size})
    if style.legend == "none":
        out.update_layout(showlegend=False)
    else:
        out.update_layout(showlegend=True, legend={**_LEGEND[style.legend], "font": {"size": style.font_size}})
    return out

_lock = threading.Lock()
_server_started = False


def _chromium_env() -> None:
    """Point kaleido at the system Chromium when it is not on PATH under a name kaleido knows."""
    if os.environ.get("BROWSER_PATH"):
        return
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return
    for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(p).exists():
            os.environ["BROWSER_PATH"] = p
            return


def start_image_server() -> None:
    """Start kaleido's sync server once in this process (a persistent Chromium), stopped at exit."""
    global _server_started
    if _server_started:
        return
    import kaleido

    _chromium_env()
    kaleido.start_sync_server(silence_warnings=True)
    _server_started = True
    atexit.register(stop_image_server)


def stop_image_server() -> None:
    global _server_started
    if not _server_started:
        return
    import kaleido

    try:
        kaleido.stop_sync_server(silence_warnings=True)
    finally:
        _server_started = False


def _check_figure(fig: Any) -> go.Figure:
    if isinstance(fig, go.Figure):
        return fig
    if isinstance(fig, Mapping) and "data" in fig:
        return go.Figure(fig)
    raise ExportError(f"figure: must be a plotly Figure (or its dict), got {type(fig).__name__}")


def _check_dim(name: str, v: float | None, low: float, high: float) -> None:
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not low <= v <= high:
        raise ExportError(f"{name}: must be a number in [{low:g}, {high:g}], got {v!r}")


def figure_to_image(fig: go.Figure, fmt: str = "png", *, width: int | None = None, height: int | None = None,
                    scale: float | None = None, style: FigureStyle | None = None) -> bytes:
    """A plotly figure as PNG, SVG or PDF bytes (kaleido + system Chromium), shown traces only. With
    ``style`` the figure is laid out at its size and fonts, and ``style.scale`` applies to the PNG only
    (SVG and PDF keep the layout size: see the module docstring)."""
    if fmt not in IMAGE_FORMATS:
        raise ExportError(f"fmt: must be one of {IMAGE_FORMATS}, got {fmt!r}")
    fig = prepare_figure(fig, style)
    if style is not None:
        width, height, scale = style.width, style.height, (style.scale if fmt == "png" else 1)
    _check_dim("width", width, 10, 10000)
    _check_dim("height", height, 10, 10000)
    _check_dim("scale", scale, 0.1, 10)
    import plotly.io as pio

    with _lock:
        start_image_server()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The kopts argument is ignored")
            return pio.to_image(fig, format=fmt, width=width, height=height, scale=scale)


def figure_to_html(fig: go.Figure, *, title: str | None = None, style: FigureStyle | None = None) -> bytes:
    """A plotly figure (shown traces only) as one self-contained HTML page with plotly.js inlined
    (works offline)."""
    fig = prepare_figure(fig, style)
    html = fig.to_html(include_plotlyjs=True, full_html=True, config={"displaylogo": False})
    if title:
        import html as _html

        html = html.replace("<head>", f"<head><title>{_html.escape(title)}</title>", 1)
    return html.encode("utf-8")


def _check_frame(df: Any) -> pd.DataFrame:
    if isinstance(df, pd.DataFrame):
        return df
    if isinstance(df, pd.Series):
        return df.to_frame()
    raise ExportError(f"data: must be a pandas DataFrame, got {type(df).__name__}")


def data_to_csv(df: pd.DataFrame) -> bytes:
    """A DataFrame as UTF-8 CSV bytes (no index column)."""
    return _check_frame(df).to_csv(index=False).encode("utf-8")


def data_to_parquet(df: pd.DataFrame) -> bytes:
    """A DataFrame as Parquet bytes (pyarrow); column names are made strings, as Parquet requires."""
    df = _check_frame(df)
    if not all(isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def fit_to_json(fit: Any) -> bytes:
    """A fit as JSON bytes: an object with ``to_json()`` (``workbench.fit.FitResult``), a JSON string
    (validated), or a plain mapping."""
    if hasattr(fit, "to_json"):
        text = fit.to_json()
    elif isinstance(fit, (str, bytes)):
        text = fit.decode("utf-8") if isinstance(fit, bytes) else fit
    elif isinstance(fit, Mapping):
        text = json.dumps(fit, indent=2, default=_json_default)
    else:
        raise ExportError(f"fit: must be a FitResult, a JSON string or a mapping, got {type(fit).__name__}")
    try:
        json.loads(text)
    except (TypeError, ValueError) as e:
        raise ExportError(f"fit: not valid JSON ({e})") from None
    return text.encode("utf-8")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def export_bytes(fmt: str, obj: Any, **kwargs: Any) -> bytes:
    """Dispatch on a format name from :data:`FORMATS`: a figure for png/svg/pdf/html, a DataFrame for
    csv/parquet, a fit for json."""
    if fmt not in FORMATS:
        raise ExportError(f"fmt: must be one of {sorted(FORMATS)}, got {fmt!r}")
    if fmt in IMAGE_FORMATS:
        return figure_to_image(obj, fmt, **kwargs)
    if fmt == "html":
        return figure_to_html(obj, **kwargs)
    if fmt == "tex":
        from workbench.figures.pgfplots import figure_to_pgfplots_zip

        return figure_to_pgfplots_zip(prepare_figure(obj, kwargs.get("style")), kwargs.get("style") or FigureStyle(),
                                      basename=kwargs.get("basename", "figure"))
    if fmt == "csv":
        return data_to_csv(obj)
    if fmt == "parquet":
        return data_to_parquet(obj)
    return fit_to_json(obj)


def write(path: str | os.PathLike, obj: Any, **kwargs: Any) -> Path:
    """Write ``obj`` to ``path`` in the format given by its extension (``.png``, ``.html``, ``.csv``, ...;
    ``.zip`` writes the pgfplots/TikZ picture and its data)."""
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    fmt = {"pq": "parquet", "htm": "html", "zip": "tex"}.get(ext, ext)
    if fmt == "tex":
        kwargs.setdefault("basename", path.stem)
    if fmt not in FORMATS:
        raise ExportError(f"path: {path.name!r} must end in one of {sorted('.' + f.ext for f in FORMATS.values())}")
    data = export_bytes(fmt, obj, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
