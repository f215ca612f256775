"""Each served page declares the Panel extensions it uses (``AppInfo.extensions``, issue 13): the page sends
only those extensions' JavaScript, so a model of an undeclared extension would not render after the
server's first session. Built without a browser: every model of each page's first view must come from
Panel's core or from a declared extension, and the monitor (Bokeh only) must not load plotly."""

from __future__ import annotations

import importlib

import panel as pn
import pytest
from bokeh.document import Document
from panel.config import panel_extension
from panel.io.state import set_curdoc

from workbench.apps import APPS


@pytest.mark.parametrize("path", list(APPS))
def test_page_models_come_from_declared_extensions(path, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "runs.db"))
    info = APPS[path]
    exts_of: dict[str, set[str]] = {}
    for ext, module in panel_extension._imports.items():
        exts_of.setdefault(module, set()).add(ext)
    doc = Document()
    with set_curdoc(doc):
        pn.extension(*info.extensions)
        mod, cls = info.target.split(":")
        app = getattr(importlib.import_module(mod), cls)()
        root = app.page().get_root(doc)
        for cb in pn.state._periodic.pop(doc, []):
            cb.stop()
    used = {type(m).__module__ for m in root.references()}
    missing = {m: sorted(exts_of[m]) for m in used if m in exts_of and not exts_of[m] & set(info.extensions)}
    assert not missing, f"{path}: models of undeclared extensions {missing}; add one to AppInfo.extensions"
    unused = [e for e in info.extensions if panel_extension._imports.get(e) not in used]
    assert not unused or path != "monitor", f"monitor loads unused extensions {unused}"


def test_the_monitor_page_loads_no_plotly():
    assert "plotly" not in APPS["monitor"].extensions


def test_notebook_updates_keep_panel_stylesheets_inline(monkeypatch):
    """In a notebook (a comm, ``inline=True``), a Markdown pane updated after the first render is sent its
    stylesheets again; they stay inline CSS, never a link to Panel's CDN or server path (which fail offline)."""
    from bokeh.models import ImportedStyleSheet, UIElement
    from panel.io.notebook import patch_inline_stylesheets
    from pyviz_comms import Comm

    from workbench.apps.base import inline_notebook_stylesheets

    class OfflineComm(Comm):
        def init(self, *_, **__): pass
        def send(self, *_, **__): pass
        def close(self): pass

    monkeypatch.setenv("PANEL_INLINE", "true")  # as pn.extension(..., inline=True) in a notebook
    inline_notebook_stylesheets()
    assert pn.config.inline
    info = pn.pane.Markdown("0 runs")
    view = pn.Column(pn.pane.Markdown("progress"), info)
    doc = Document()
    with set_curdoc(doc):
        root = view.get_root(doc, OfflineComm())
    for m in root.select({"type": UIElement}):  # what Panel does when the cell's output is first drawn
        patch_inline_stylesheets(m)
    for i in range(1, 3):
        with set_curdoc(doc):
            info.object = f"{i} runs, **running**"
        linked = [s.url for m in root.references() for s in (getattr(m, "stylesheets", None) or [])
                  if isinstance(s, ImportedStyleSheet)]
        assert not linked, linked
        assert "running" in info._models[root.ref["id"]][0].text
