"""What every app shares: the run store it reads, a message area for bad input, safe callbacks,
and the page template used under ``panel serve`` (the bare view is used in notebooks)."""

from __future__ import annotations

import functools
import re
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from weakref import WeakKeyDictionary

import panel as pn
import param
from bokeh.core.validation import silence
from bokeh.core.validation.warnings import FIXED_SIZING_MODE
from bokeh.document.events import DocumentPatchedEvent

from workbench.store import RunStore, default_path

# inline=True: in a notebook, Panel's and the extensions' JavaScript is embedded in the output instead of
# fetched from a CDN, so the components render offline (under `panel serve` the server sends them anyway;
# each served page narrows the extensions to its own, see workbench/apps/pages/_page.py). No notification
# area: nothing uses it, and it cost every page two stylesheets, font-awesome and a script.
pn.extension("plotly", "tabulator", sizing_mode="stretch_width", inline=True)



def inline_notebook_stylesheets() -> None:
    """Keep Panel's stylesheets inline in a notebook after the first render (offline JupyterLab, issue 13).

    ``inline=True`` makes Panel embed its CSS when a cell's output is first drawn, but a pane that is
    updated later (a Markdown pane whose text changes every second in the live monitor) is sent its
    stylesheets again as links to Panel's CDN (``markdown.css``, ``loading.css``, the theme's
    ``default.css`` / ``native.css`` in Panel 1.9; ``loading.css`` first as a server path that Panel
    then points at the CDN): offline they are requests that fail. This wraps
    ``Syncable._process_param_change`` (where every Panel component turns its stylesheets into Bokeh
    models) so that a stylesheet of Panel's own dist folder (CDN or server URL) becomes the same CSS inline, one
    ``InlineStyleSheet`` per document and file (an unchanged list then sends nothing). Served pages
    (a session with a server context) are left alone: the server sends those files itself."""
    from weakref import WeakKeyDictionary

    from bokeh.models import ImportedStyleSheet, InlineStyleSheet
    from panel.io.resources import CDN_DIST, DIST_DIR, LOCAL_DIST
    from panel.io.state import state
    from panel.reactive import Syncable

    if getattr(Syncable._process_param_change, "_wb_inline", False):
        return
    original = Syncable._process_param_change
    per_doc: WeakKeyDictionary = WeakKeyDictionary()
    texts: dict[str, str | None] = {}

    def inline(sheet: Any) -> Any:
        if not isinstance(sheet, ImportedStyleSheet):
            return sheet
        url = sheet.url
        prefix = next((p for p in (CDN_DIST, LOCAL_DIST) if url.startswith(p)), None)
        if prefix is None:
            return sheet
        if url not in texts:
            path = DIST_DIR / url[len(prefix):].split("?")[0]
            texts[url] = path.read_text(encoding="utf-8") if path.is_file() else None
        if texts[url] is None:
            return sheet
        doc = state.curdoc
        if doc is None:
            return InlineStyleSheet(css=texts[url])
        cache = per_doc.setdefault(doc, {})
        if url not in cache:
            cache[url] = InlineStyleSheet(css=texts[url])
        return cache[url]

    @functools.wraps(original)
    def process(self: Any, params: dict[str, Any]) -> dict[str, Any]:
        props = original(self, params)
        doc = state.curdoc
        served = doc is not None and doc.session_context is not None and doc.session_context.server_context is not None
        if props.get("stylesheets") and pn.config.inline and not served:
            props["stylesheets"] = [inline(s) for s in props["stylesheets"]]
        return props

    process._wb_inline = True  # type: ignore[attr-defined]
    Syncable._process_param_change = process  # type: ignore[method-assign]


if pn.config.inline and hasattr(__import__("builtins"), "__IPYTHON__"):  # a notebook kernel (or IPython)
    inline_notebook_stylesheets()

# The sidebars are fixed-width columns whose height follows their content, on purpose; Bokeh warns
# (W-1005) about every such column at every page load, which buried real warnings in the server log.
silence(FIXED_SIZING_MODE, True)


_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9\\])_|_(?![A-Za-z0-9])")


def escape(text: object) -> str:
    """Text from a user (a file, a form, the store) made safe as the *text* of a Markdown or HTML pane
    (not an attribute): ``&`` and ``<`` become entities, so it is shown as typed and never parsed as
    HTML (a CSV header such as ``<img src=x onerror=...>`` would otherwise run script in the page);
    without ``<`` there is no tag, so ``>`` stays readable ("must be > 0"). Markdown emphasis in the
    text still renders; links to ``javascript:`` are refused by the Markdown renderer."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;")


def md(template: str, *values: object) -> str:
    """A Markdown string with each ``{}`` of ``template`` (the app's own text) filled by an escaped
    user value: ``md("Loaded **{}**", name)``."""
    return template.format(*(escape(v) for v in values))


def options(values: Any) -> dict[str, Any]:
    """``objects`` for a selector shown as a ``MultiChoice``: escaped label -> value (Bokeh's MultiChoice
    renders its labels as HTML; the values, and so the app's params, stay as they are)."""
    return {escape(v): v for v in values}


def safe_titles(df: Any) -> dict[str, str]:
    """``titles=`` for a Tabulator showing ``df``: the escaped column names (Tabulator puts a column's
    title into the page as HTML)."""
    return {c: escape(c) for c in getattr(df, "columns", [])}


def show_table(table: pn.widgets.Tabulator, df: Any) -> None:
    """Show ``df`` in ``table`` with its column names escaped (cells use Tabulator's plaintext
    formatter, which escapes them)."""
    table.titles = safe_titles(df)
    table.value = df


class AppBase(pn.viewable.Viewer):
    """Base of the workbench apps. Subclasses implement ``view()`` (the app's content) and may use
    ``self.store``, ``self.show_error(msg)`` / ``self.show_info(msg)`` and the ``@guarded`` decorator
    so that a bad widget value or a failing fit shows a message in the page, never a traceback."""

    store_path = param.String(default=None, allow_None=True, doc="Run store file ($WORKBENCH_STORE by default)")
    title = "workbench"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._store: RunStore | None = None
        self._periodic: list = []
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, margin=(5, 10))

    @property
    def store(self) -> RunStore:
        if self._store is None:
            self._store = RunStore(self.store_path or default_path())
        return self._store

    def show_message(self, msg: str, kind: str = "info") -> None:
        """The one way a message reaches the page: ``msg`` (Markdown, with user values in it) is escaped
        as a whole, so no HTML in a file name, column, run or sweep name or error text is ever parsed."""
        # an underscore at a word's edge would start Markdown emphasis (``__import__`` shown as a bold
        # "import"); escaped, it shows as typed. Underscores inside names (fit_points) never do.
        self.message.object = _EDGE_UNDERSCORE.sub(r"\\_", escape(msg))
        self.message.alert_type = kind
        self.message.visible = True

    def show_error(self, msg: str) -> None:
        self.show_message(msg, "danger")

    def show_info(self, msg: str) -> None:
        """Show an information; an error on show stays (the information is added under it): an error is
        cleared only when the user acts again (``clear_message``), never by a later message."""
        if self.message.visible and self.message.alert_type == "danger":
            self.message.object = f"{self.message.object}\n\n{escape(msg)}"
            return
        self.show_message(msg, "info")

    def on_exception(self, exc: BaseException) -> None:
        """Panel's exception handler for this page's session: an exception in any callback (a watcher,
        a button, a periodic callback) reaches the message area instead of only the server log."""
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        self.show_error(f"**{type(exc).__name__}**: {exc}")

    def clear_message(self) -> None:
        self.message.visible = False
        self.message.object = ""

    def add_periodic(self, callback: Callable[[], Any], period_ms: int = 400) -> Any:
        """Run ``callback`` every ``period_ms`` in this session (one browser tab), stopped when the
        session is destroyed; returns Panel's ``PeriodicCallback`` (``.stop()`` / ``.start()``)."""
        cb = pn.state.add_periodic_callback(callback, period=int(period_ms))
        self._periodic.append(cb)
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.on_session_destroyed(self._on_session_destroyed)
        return cb

    def _on_session_destroyed(self, session_context: Any) -> None:
        for cb in self._periodic:
            try:
                cb.stop()
            except Exception:  # already stopped
                pass
        self._periodic.clear()

    def view(self) -> pn.viewable.Viewable:  # pragma: no cover - overridden
        raise NotImplementedError

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.message, self.view(), sizing_mode="stretch_width")

    def page(self) -> pn.viewable.Viewable:
        """The app under a header bar with links to the other apps, for ``panel serve``.

        A plain layout rather than a Panel template: the Fast templates load a Google font, and the
        pages must work offline (no request may leave the machine)."""
        from workbench.apps import APPS

        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.config.exception_handler = self.on_exception  # set in a session: applies to this session only
        links = " · ".join(f'<a href="./{a.path}" style="color:#dbe7ff">{a.title}</a>' for a in APPS.values())
        header = pn.pane.HTML(
            f'<div style="display:flex;align-items:baseline;gap:24px"><span style="font-size:22px;'
            f'font-weight:600">workbench · {self.title}</span><span>{links}</span>'
            f'<a href="./" style="color:#dbe7ff;margin-left:auto">index</a></div>',
            styles={"background": "#1f3a5f", "color": "white", "padding": "10px 20px"},
            sizing_mode="stretch_width", margin=0)
        page = pn.Column(header, self.__panel__(), sizing_mode="stretch_width",
                         styles={"font-family": "system-ui, -apple-system, 'Segoe UI', sans-serif"})
        return page


_UNSENT: WeakKeyDictionary = WeakKeyDictionary()  # notebook document -> its changes dispatched, not sent


def _unsent(doc: Any) -> deque:
    """The changes made here to ``doc`` (not the browser's) that went to its callbacks instead of its comm.

    In a notebook Panel keeps the document held and sends what is held when something pushes it. A message
    from the browser (a range echoed back, a patch echoed back) is applied by holding the document,
    applying, and un-holding it, which hands every held change to the document's callbacks -- where nothing
    sends it. ipykernel 7 handles comm messages on its shell thread, so this can land in the middle of a
    tick: notebook 02's rows had holes (a point every few ticks never reached the browser)."""
    q = _UNSENT.get(doc)
    if q is None:
        q = _UNSENT[doc] = deque()

        def keep(event: Any) -> None:  # a model's change (not a title or a custom message) made here
            if (isinstance(event, DocumentPatchedEvent) and getattr(event, "setter", None) is None
                    and getattr(event, "model", None) is not None):
                q.append(event)
        doc.on_change(keep)
    return q


@contextmanager
def held(view: pn.viewable.Viewable) -> Iterator[None]:
    """Hold the Bokeh documents ``view`` is shown in while the block changes their models, then send the
    changes in one message: under ``panel serve`` ``pn.io.hold()``; in a notebook, each document with its
    comm, pushed at the end, after what a browser message had dispatched unsent since (:func:`_unsent`:
    first, in its order, so a replaced row never overwrites points sent after it)."""
    shown = [pn.state._views.get(ref) for ref in list(view._models)]
    nb = [(v[2], v[3]) for v in shown if v is not None and v[3] is not None]
    if not nb:
        with pn.io.hold():
            yield
        return
    with ExitStack() as stack:
        for doc, comm in nb:
            stack.enter_context(pn.io.hold(doc, comm=comm))
            q = _unsent(doc)
            while q:
                e = q.popleft()
                if doc.get_model_by_id(e.model.id) is not None:  # (not a model a rebuild has since removed)
                    doc.callbacks.trigger_on_change(e)
        yield
    pn.io.push_notebook(view)  # (what an already held document kept is sent too)


def guarded(fn: Callable | None = None, *, serial: bool = False) -> Callable:
    """Wrap an app callback: on an exception, show ``Type: message`` in the app's message area and
    keep the page working (the traceback goes to the server log only). With ``serial=True``
    (``@guarded(serial=True)``) the app's serial callbacks run one at a time: in a notebook a widget's
    callback runs on ipykernel's comm thread while a periodic one runs on the main thread (under
    ``panel serve`` a session's callbacks share a thread and the lock is never waited for)."""
    if fn is None:
        return functools.partial(guarded, serial=serial)

    @functools.wraps(fn)
    def wrapper(self: AppBase, *args: Any, **kwargs: Any) -> Any:
        try:
            if not serial:
                return fn(self, *args, **kwargs)
            with self.__dict__.setdefault("_serial_lock", threading.RLock()):
                return fn(self, *args, **kwargs)
        except Exception as e:
            traceback.print_exc()
            self.show_error(f"**{type(e).__name__}**: {e}")
            return None

    return wrapper
