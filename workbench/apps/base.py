"""What every app shares: the run store it reads, a message area for bad input, safe callbacks,
and the page template used under ``panel serve`` (the bare view is used in notebooks)."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import Any

import panel as pn
import param

from workbench.store import RunStore, default_path

pn.extension("plotly", "tabulator", notifications=True, sizing_mode="stretch_width")


class AppBase(pn.viewable.Viewer):
    """Base of the workbench apps. Subclasses implement ``view()`` (the app's content) and may use
    ``self.store``, ``self.show_error(msg)`` / ``self.show_info(msg)`` and the ``@guarded`` decorator
    so that a bad widget value or a failing fit shows a message in the page, never a traceback."""

    store_path = param.String(default=None, allow_None=True, doc="Run store file ($WORKBENCH_STORE by default)")
    title = "workbench"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._store: RunStore | None = None
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, margin=(5, 10))

    @property
    def store(self) -> RunStore:
        if self._store is None:
            self._store = RunStore(self.store_path or default_path())
        return self._store

    def show_error(self, msg: str) -> None:
        self.message.object = msg
        self.message.alert_type = "danger"
        self.message.visible = True

    def show_info(self, msg: str) -> None:
        self.message.object = msg
        self.message.alert_type = "info"
        self.message.visible = True

    def clear_message(self) -> None:
        self.message.visible = False
        self.message.object = ""

    def view(self) -> pn.viewable.Viewable:  # pragma: no cover - overridden
        raise NotImplementedError

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.message, self.view(), sizing_mode="stretch_width")

    def page(self) -> pn.template.BaseTemplate:
        """The app inside the served page template, with links to the other apps."""
        from workbench.apps import APPS

        links = " · ".join(f"[{a.title}](./{a.path})" for a in APPS.values())
        tmpl = pn.template.FastListTemplate(title=f"workbench · {self.title}", header_background="#1f3a5f",
                                            accent_base_color="#3e7bfa", theme_toggle=False)
        tmpl.header.append(pn.pane.Markdown(links, styles={"color": "white"}, margin=(0, 10)))
        tmpl.main.append(self.__panel__())
        return tmpl


def guarded(fn: Callable) -> Callable:
    """Wrap an app callback: on an exception, show ``Type: message`` in the app's message area and
    keep the page working (the traceback goes to the server log only)."""

    @functools.wraps(fn)
    def wrapper(self: AppBase, *args: Any, **kwargs: Any) -> Any:
        try:
            out = fn(self, *args, **kwargs)
        except Exception as e:
            traceback.print_exc()
            self.show_error(f"**{type(e).__name__}**: {e}")
            return None
        return out

    return wrapper
