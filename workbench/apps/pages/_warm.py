"""Run once by ``panel serve --setup`` (``workbench serve``) before the server accepts connections.

Imports the served apps and the science modules their first session needs (the schedule registry and the
fitters import torch), then builds each app's page once in a throwaway document, so that a visitor's first
page load does not wait for what only the first build does: importing torch (the schedule lab's cold load
was 14 s on 2 cores, issue 13), plotly's lazily imported figure classes and validators (Panel's Plotly pane
makes a ``go.FigureWidget``, which imports nbformat and jsonschema: ~5 s at load 8), Bokeh's and Panel's
model classes. The server takes that time once, at start, instead (a few seconds more before it answers).
A page that fails to build here is only reported: its own page then shows why, as it would without this.
"""

import importlib
import sys
import time
import traceback

import panel as pn
from bokeh.document import Document
from panel.io.state import set_curdoc

from workbench.apps import APPS, PAGES
from workbench.apps.components.background import WARMING

# Panel's Plotly pane makes a go.FigureWidget, whose import chain reaches nbformat -> jsonschema, which
# imports rfc3987_syntax if installed: ~40 grammars compiled at import (4-5 s at load 8), used only to check
# the "iri" string format, which nothing in the server validates. Marked absent in this server process only
# (jsonschema then skips that one check).
sys.modules.setdefault("rfc3987_syntax", None)

for info in APPS.values():
    importlib.import_module(info.target.split(":")[0])
for module in ("workbench.schedules", "workbench.fit"):
    importlib.import_module(module)  # the package's own modules: an import error must show, not be skipped

# only the pages this server serves (``panel serve`` lists their files on its command line; a page not
# served costs start-up time for nothing: the runs page on a store of 256 runs x 10^5 steps took 24 s)
served = {n: info for n, info in APPS.items() if str(PAGES / f"{n}.py") in sys.argv} or APPS
for info in served.values():
    t0 = time.perf_counter()
    doc = Document()
    WARMING.set()  # background jobs a page starts while built here are not run (no one would see them)
    try:
        with set_curdoc(doc):
            pn.extension(*info.extensions)
            mod, cls = info.target.split(":")
            app = getattr(importlib.import_module(mod), cls)()
            view = app.page() if hasattr(app, "page") else pn.panel(app)
            view.get_root(doc)
            for cb in pn.state._periodic.pop(doc, []):  # never started (no session), but stop them anyway
                cb.stop()
    except Exception:  # noqa: BLE001 - reported; the page itself shows the error to its visitor
        print(f"workbench serve: warming the {info.path} page failed (the page will show why):", flush=True)
        traceback.print_exc()
    finally:
        WARMING.clear()
    print(f"workbench serve: {info.path} page warmed in {time.perf_counter() - t0:.1f} s", flush=True)
