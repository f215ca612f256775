"""What the live monitor sends to a notebook's browser (``workbench.apps.base.held``), without a browser.

In a notebook Panel keeps the document held and sends what is held when something pushes it; a browser
message is applied by holding, applying and un-holding the document, which hands everything held to the
document's callbacks instead of the comm. ipykernel 7 handles comm messages on its shell thread, so this
landed in the middle of the monitor's ticks and notebook 02's rows had holes. Here that message is played
by hand (the same hold / apply / unhold) in the middle of a tick."""

from __future__ import annotations

import json

import numpy as np
import panel as pn
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from workbench.apps.base import held


class FakeComm:
    """Records what is sent (Panel's ``push`` sends a message's JSON parts as strings)."""

    id = "browser-comm"
    _comm = True  # open

    def __init__(self) -> None:
        self.sent: list = []

    def send(self, data=None, metadata=None, buffers=None) -> None:
        self.sent.append(data)

    def events(self) -> list[dict]:
        out = []
        for d in self.sent:
            if isinstance(d, str) and d.startswith("{") and '"events"' in d:
                out += json.loads(d)["events"]
        self.sent.clear()
        return out


def _shown():
    src = ColumnDataSource({"x": [np.array([0.0] + [np.nan] * 5)], "y": [np.array([0.0] + [np.nan] * 5)]})
    fig = figure()
    fig.multi_line(xs="x", ys="y", source=src)
    pane = pn.pane.Bokeh(fig)
    doc, comm = Document(), FakeComm()
    doc.add_root(pane.get_root(doc, comm))  # as a notebook shows it: Panel's view registry knows the comm
    doc.hold("combine")  # and keeps the document held
    comm.events()
    return src, fig, pane, doc, comm


def _browser_message(doc: Document, fig) -> None:
    """Panel's ``Viewable._on_msg``: hold, apply the browser's change (its comm as the setter), unhold."""
    held_before = doc.callbacks.hold_value
    doc.hold()
    fig.x_range.set_from_json("start", -3.0, setter=FakeComm.id)
    doc.unhold()
    doc.hold(held_before)


def _patched(events: list[dict]) -> list[int]:
    """The slice starts of the ColumnsPatched events, in the order sent."""
    return [e["patches"]["entries"][0][1][0][0][1]["start"] for e in events if e["kind"] == "ColumnsPatched"]


def test_a_tick_sends_its_patches_at_its_end() -> None:
    src, fig, pane, doc, comm = _shown()
    with held(pane):
        src.patch({"x": [((0, slice(1, 2)), [1.0])], "y": [((0, slice(1, 2)), [1.0])]})
        assert comm.events() == []  # nothing before the end of the block: one message a tick
    assert _patched(comm.events()) == [1]


def test_a_browser_message_mid_tick_loses_no_patch() -> None:
    src, fig, pane, doc, comm = _shown()
    with held(pane):
        src.patch({"x": [((0, slice(1, 2)), [1.0])]})
        _browser_message(doc, fig)  # hands the held patch to the callbacks, not the comm
        src.patch({"x": [((0, slice(2, 3)), [2.0])]})
    assert _patched(comm.events()) == [2]
    with held(pane):  # the next tick sends the lost one first, then its own
        src.patch({"x": [((0, slice(3, 4)), [3.0])]})
    ev = comm.events()
    assert _patched(ev) == [1, 3]
    # the browser's own change is not sent back to it
    assert not [e for e in ev if e["kind"] == "ModelChanged" and e.get("attr") == "start" and e.get("new") == -3.0]
    with held(pane):
        pass
    assert _patched(comm.events()) == []  # each sent once


def test_a_lost_change_of_a_model_since_removed_is_not_sent() -> None:
    src, fig, pane, doc, comm = _shown()
    with held(pane):
        src.patch({"x": [((0, slice(1, 2)), [1.0])]})
        doc.title = "a change of no model"  # dispatched too: not kept (it has no model to look up)
        _browser_message(doc, fig)
    comm.events()
    doc.remove_root(doc.roots[0])  # e.g. the monitor rebuilt its figures
    with held(pane):
        pass
    assert _patched(comm.events()) == []


def test_serial_callbacks_of_an_app_run_one_at_a_time() -> None:
    """A notebook runs a widget's callback (the monitor's rebuild) on ipykernel's comm thread while the
    periodic tick runs on the main thread: ``guarded(serial=True)`` makes them take turns (re-entrant: a
    tick may rebuild)."""
    import threading
    import time

    from workbench.apps.base import AppBase, guarded

    class App(AppBase):
        def __init__(self) -> None:
            super().__init__()
            self.inside, self.overlaps, self.nested = 0, 0, 0

        def _work(self) -> None:
            self.inside += 1
            self.overlaps += self.inside > 1
            time.sleep(0.02)
            self.inside -= 1

        @guarded(serial=True)
        def tick(self) -> None:
            self._work()
            self.rebuild()  # the same thread again: no deadlock

        @guarded(serial=True)
        def rebuild(self) -> None:
            self.nested += 1

        @guarded
        def free(self) -> None:
            self._work()

    def race(fn) -> None:
        ts = [threading.Thread(target=lambda: [fn() for _ in range(5)]) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)

    app = App()
    race(app.tick)
    assert app.overlaps == 0 and app.nested == 15 and not app.message.visible
    race(app.free)  # the same work, not serial: the threads do overlap (so the check above can fail)
    assert app.overlaps > 0
