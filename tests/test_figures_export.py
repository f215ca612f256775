"""Export of figures (kaleido + system Chromium), data and fits: checked by parsing what comes back."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench.figures import export as fx

HAVE_CHROMIUM = bool(shutil.which("chromium") or Path("/usr/bin/chromium").exists())
needs_chromium = pytest.mark.skipif(not HAVE_CHROMIUM, reason="kaleido needs a Chromium (apt-get install chromium)")


def _fig() -> go.Figure:
    f = go.Figure(go.Scatter(x=[0, 1, 2, 3], y=[4.0, 2.5, 2.1, 2.0], name="train_loss_marker"))
    f.update_layout(title="export test")
    return f


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@needs_chromium
def test_png_has_signature_and_requested_size() -> None:
    data = fx.figure_to_image(_fig(), "png", width=320, height=240, scale=1)
    assert png_size(data) == (320, 240)
    data2 = fx.figure_to_image(_fig(), "png", width=320, height=240, scale=2)
    assert png_size(data2) == (640, 480)


@needs_chromium
def test_svg_and_pdf_are_valid() -> None:
    svg = fx.figure_to_image(_fig(), "svg", width=400, height=300)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.get("width") == "400"
    assert b"export test" in svg
    pdf = fx.export_bytes("pdf", _fig())
    assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-64:]


def test_html_is_self_contained() -> None:
    html = fx.figure_to_html(_fig(), title="my run").decode()
    assert "<title>my run</title>" in html
    assert "train_loss_marker" in html
    assert not re.search(r"<script[^>]*\ssrc=", html)  # plotly.js inlined, nothing fetched
    assert "Plotly.newPlot" in html and len(html) > 1_000_000


def test_csv_and_parquet_round_trip() -> None:
    df = pd.DataFrame({"run": ["a", "a", "b"], "step": [0, 10, 0], "value": [1.5, np.nan, -2.0]})
    back = pd.read_csv(io.BytesIO(fx.data_to_csv(df)))
    pd.testing.assert_frame_equal(back, df)
    back = pd.read_parquet(io.BytesIO(fx.data_to_parquet(df)))
    pd.testing.assert_frame_equal(back, df)
    wide = pd.DataFrame({0: [1.0], ("a"): [2.0]})
    assert list(pd.read_parquet(io.BytesIO(fx.export_bytes("parquet", wide))).columns) == ["0", "a"]


def test_fit_json_forms() -> None:
    class FakeFit:
        def to_json(self) -> str:
            return json.dumps({"law": "power", "params": {"E": 1.69}})

    assert json.loads(fx.fit_to_json(FakeFit()))["params"]["E"] == 1.69
    assert json.loads(fx.fit_to_json({"a": np.array([1.0, 2.0])})) == {"a": [1.0, 2.0]}
    assert json.loads(fx.fit_to_json('{"x": 1}')) == {"x": 1}
    with pytest.raises(fx.ExportError, match="fit: not valid JSON"):
        fx.fit_to_json("{not json")
    with pytest.raises(fx.ExportError, match="fit"):
        fx.fit_to_json(3.0)


def test_bad_input_names_the_field() -> None:
    with pytest.raises(fx.ExportError, match="fmt"):
        fx.export_bytes("gif", _fig())
    with pytest.raises(fx.ExportError, match="figure"):
        fx.figure_to_html([1, 2, 3])
    with pytest.raises(fx.ExportError, match="width"):
        fx.figure_to_image(_fig(), "png", width=0)
    with pytest.raises(fx.ExportError, match="data"):
        fx.data_to_csv([1, 2])


def test_write_by_extension(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [1, 2]})
    p = fx.write(tmp_path / "d.csv", df)
    pd.testing.assert_frame_equal(pd.read_csv(p), df)
    p = fx.write(tmp_path / "sub" / "f.html", _fig())
    assert p.read_bytes()[:15].lower() == b"<!doctype html>"
    with pytest.raises(fx.ExportError, match="path"):
        fx.write(tmp_path / "f.xlsx", df)


# ---------------------------------------------------------------- figures for papers
def _three() -> go.Figure:
    f = go.Figure()
    f.add_trace(go.Scatter(x=[0, 1, 2], y=[3.0, 2.0, 1.5], name="kept_trace"))
    f.add_trace(go.Scatter(x=[0, 1, 2], y=[1.0, 1.2, 1.1], name="hidden_trace", visible="legendonly"))
    f.add_trace(go.Scatter(x=[0, 1, 2], y=[2.0, 2.0, 2.0], name="preview_trace", meta={"wb_role": "preview"},
                           line={"dash": "dash", "color": "#444444"}))
    f.update_layout(title="paper figure", xaxis_title="step", yaxis_title="loss", yaxis_type="log")
    return f


def test_prepare_figure_keeps_only_shown_traces_and_applies_style() -> None:
    fig = _three()
    st = fx.FigureStyle(width=420, height=260, scale=3, font_size=9, legend="inside top right")
    out = fx.prepare_figure(fig, st)
    assert [t.name for t in out.data] == ["kept_trace"]
    assert len(fig.data) == 3  # the app's figure is untouched
    assert (out.layout.width, out.layout.height, out.layout.font.size) == (420, 260, 9)
    assert out.layout.legend.xanchor == "right" and out.layout.legend.x > 0.9
    assert fx.prepare_figure(fig, fx.FigureStyle(legend="none")).layout.showlegend is False
    for bad, field in (({"width": 5}, "width"), ({"font_size": 0}, "font_size"), ({"legend": "left"}, "legend"),
                       ({"scale": 20}, "scale")):
        with pytest.raises(fx.ExportError, match=field):
            fx.FigureStyle(**bad)


def pdf_size(data: bytes) -> tuple[float, float]:
    box = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    assert box, "no MediaBox"
    x0, y0, x1, y1 = (float(v) for v in box.groups())
    return x1 - x0, y1 - y0


@needs_chromium
def test_same_size_in_every_format_and_no_hidden_trace() -> None:
    st = fx.FigureStyle(width=480, height=300, scale=2.5, font_size=14, legend="bottom")
    png = fx.figure_to_image(_three(), "png", style=st)
    assert png_size(png) == (1200, 750)  # width x height at the PNG scale
    svg = fx.figure_to_image(_three(), "svg", style=st)
    root = ET.fromstring(svg)
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("480", "300", "0 0 480 300")
    assert b"kept_trace" in svg and b"hidden_trace" not in svg and b"preview_trace" not in svg
    assert b"font-size: 14px" in svg
    w, h = pdf_size(fx.figure_to_image(_three(), "pdf", style=st))
    assert abs(w - 480 * 0.75) < 1.5 and abs(h - 300 * 0.75) < 1.5  # 480 x 300 px at 96 dpi, in pt
    html = fx.figure_to_html(_three(), style=st).decode()
    assert "kept_trace" in html and "preview_trace" not in html and "hidden_trace" not in html


def test_pgfplots_files(tmp_path: Path) -> None:
    import zipfile

    from workbench.figures.pgfplots import pgfplots_files, tex_escape

    assert tex_escape("a_b & 50%<br>x") == r"a\_b \& 50\% x"
    fig = _three()
    fig.data[0].name = "lr_1e-3 & more"
    files = pgfplots_files(fx.prepare_figure(fig), fx.FigureStyle(width=400, height=200, legend="top"), basename="f")
    assert sorted(files) == ["f-0.csv", "f-standalone.tex", "f.tex"]
    tex = files["f.tex"].decode()
    assert "ymode=log" in tex and "xlabel={step}" in tex and r"\addlegendentry{lr\_1e-3 \& more}" in tex
    assert "width=300pt" in tex and "height=150pt" in tex  # 0.75 pt per px
    back = pd.read_csv(io.BytesIO(files["f-0.csv"]))
    assert back["y"].tolist() == [3.0, 2.0, 1.5]
    z = zipfile.ZipFile(io.BytesIO(fx.export_bytes("tex", _three(), basename="g")))
    assert sorted(z.namelist()) == ["g-0.csv", "g-standalone.tex", "g.tex"]  # the hidden and preview traces left out
    with pytest.raises(fx.ExportError, match="pgfplots export draws line/marker traces only"):
        pgfplots_files(go.Figure(go.Heatmap(z=[[1, 2]])))
    with pytest.raises(fx.ExportError, match="basename"):
        pgfplots_files(_fig(), basename="../x")


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="pdflatex is not installed")
def test_pgfplots_compiles_with_pdflatex(tmp_path: Path) -> None:
    """A multi-panel curves figure (log axes, smoothing with faint raw curves, a min/max band, special
    characters in names) written as pgfplots compiles to a PDF."""
    import subprocess

    from workbench.figures.curves import curves_figure
    from workbench.figures.pgfplots import pgfplots_files

    rows = [{"run": r, "step": s, "tokens": s, "wall": s, "name": n, "value": float(np.exp(-s * lr) + off)}
            for r, lr in (("a", 0.01), ("b", 0.03)) for s in range(60) for n, off in (("train_loss", 0.1),
                                                                                     ("test_loss", 0.2))]
    runs = pd.DataFrame({"id": ["a", "b"], "name": ["run_a & 50%", "run #b"], "cfg.lr": [0.01, 0.03]})
    figs = {"panels": curves_figure(pd.DataFrame(rows), runs, color_by="cfg.lr", smoothing=0.6, log_y=True,
                                    overlay=False, title="loss $ curves"),
            "band": curves_figure(pd.DataFrame(rows), runs, names=["train_loss"], color_by="cfg.lr", bands=True)}
    for name, fig in figs.items():
        for fname, data in pgfplots_files(fx.prepare_figure(fig), fx.FigureStyle(), basename=name).items():
            (tmp_path / fname).write_bytes(data)
        r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}-standalone.tex"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stdout[-3000:]
        assert (tmp_path / f"{name}-standalone.pdf").read_bytes().startswith(b"%PDF-")
