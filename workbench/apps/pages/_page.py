"""Shared body of the thin page files: build the app of a path, or a clear message if it fails."""

from __future__ import annotations

import importlib
import traceback

import panel as pn

from workbench.apps import APPS
from workbench.apps.base import escape


def page(path: str) -> pn.viewable.Viewable:
    info = APPS[path]
    # Called in the session, the extension list is this page's own: Panel then sends only these
    # extensions' JavaScript and CSS (without it, every extension imported anywhere in the server is
    # sent to every page; plotly.js alone is 4.6 MB to parse in the browser)
    pn.extension(*info.extensions)
    mod, cls = info.target.split(":")
    try:
        app = getattr(importlib.import_module(mod), cls)()
        view = app.page() if hasattr(app, "page") else pn.panel(app)
    except Exception as e:  # a broken app must not take the server down: show why, in the page
        traceback.print_exc()
        view = pn.Column(f"# {info.title}",
                         pn.pane.Alert(escape(f"This page could not start: {type(e).__name__}: {e}"),
                                       alert_type="danger"))
    return view
