"""plotly.js for the sweep board, loaded after the page's first view is drawn.

The board's first view (the metric-vs-hyperparameter figure) is drawn with Bokeh, so the page does not
declare Panel's ``plotly`` extension: plotly.js (4.6 MB) is then not a blocking script of the page, whose
parse and compile were the largest part of its load (issue 13). The other result tabs (parallel
coordinates, importance, performance profile) are Plotly panes: once the document is ready, the browser
loads the same plotly.js file that Panel serves for its extension (from the server, so offline too) and
then redraws any Plotly pane that was rendered before it arrived (Panel's Plotly view draws nothing while
``window.Plotly`` is missing, and draws again when its ``_render_count`` changes).
"""

from __future__ import annotations

from pathlib import Path

import panel as pn
from bokeh.models import CustomJS

LOAD_JS = r"""
if (window.Plotly || window.__wb_plotly_loading) return;
window.__wb_plotly_loading = true;
const redraw = () => {
  for (const doc of (window.Bokeh && window.Bokeh.documents) || [])
    for (const m of doc.all_models)
      if (m.constructor.__name__ === 'PlotlyPlot') m._render_count += 1;
};
const start = () => {
  // next to Panel's own script (an absolute address, right behind a --prefix or a trailing slash too)
  const panel = Array.from(document.scripts).find(s => /\/panel(\.min)?\.js/.test(s.src));
  const s = document.createElement('script');
  s.src = panel && bundled ? panel.src.replace(/panel(\.min)?\.js.*$/, bundled) : url;
  s.onload = redraw;
  s.onerror = () => { window.__wb_plotly_loading = false; console.warn("plotly.js could not be loaded: " + s.src); };
  document.head.appendChild(s);
};
setTimeout(start, 0);
"""


def plotly_js_url() -> str:
    """The address of the plotly.js file that Panel serves with its ``plotly`` extension (relative to the
    page, as Panel's own script tags), or Panel's CDN address where the bundled file is missing."""
    from panel.io.resources import BUNDLE_DIR
    from panel.models.plotly import PlotlyPlot

    bundled = sorted((BUNDLE_DIR / "plotlyplot").glob("plotly-*.min.js"))
    if bundled:
        return f"static/extensions/panel/bundled/plotlyplot/{Path(bundled[-1]).name}"
    return PlotlyPlot.__javascript_raw__[0]


def load_plotly_after_first_paint() -> None:
    """In a served page: load plotly.js once the document is ready (after the first view is drawn). A
    notebook (no server session) loads it with ``pn.extension("plotly")`` as usual."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return
    url = plotly_js_url()
    bundled = url.removeprefix("static/extensions/panel/") if url.startswith("static/") else ""
    doc.js_on_event("document_ready", CustomJS(args={"url": url, "bundled": bundled}, code=LOAD_JS))
