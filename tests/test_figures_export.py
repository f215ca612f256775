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
