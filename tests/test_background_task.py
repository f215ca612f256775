"""The apps' background-task helper (``workbench.apps.components.background``): a job runs in another
thread while the page is marked busy, its result or its error comes back through the callbacks, a second
start while busy is refused, a cancelled job's result is dropped, and under a server session the result is
delivered on the document's next tick (the session's thread), never from the worker thread."""

from __future__ import annotations

import threading

import panel as pn
import pytest

from workbench.apps.base import AppBase
from workbench.apps.components.background import WARMING, BackgroundTask, TaskBusyError
from workbench.errors import WorkbenchError


class App(AppBase):
    def view(self):
        return pn.Column()


@pytest.fixture
def app(tmp_path):
    return App(store_path=str(tmp_path / "runs.db"))


def make(app):
    btn = pn.widgets.Button(label="go")
    pane = pn.pane.Markdown("plot")
    status = pn.pane.Markdown("")
    return BackgroundTask(app, name="t", disable=[btn], loading=[pane], status=status), btn, pane, status


def test_result_is_delivered_and_the_page_is_busy_meanwhile(app):
    task, btn, pane, status = make(app)
    gate, seen = threading.Event(), {}
    task.start(lambda a, b: (gate.wait(10), a + b)[1], 2, b=3, label="Adding",
               on_done=lambda r: seen.update(result=r, thread=threading.current_thread().name))
    assert task.busy and btn.disabled and pane.loading and task.spinner.visible and task.spinner.value
    assert status.object == "Adding…"
    with pytest.raises(TaskBusyError, match="Adding is still running"):
        task.start(lambda: 0)
    assert issubclass(TaskBusyError, WorkbenchError)
    gate.set()
    assert task.wait(10) == 5
    assert seen["result"] == 5
    assert not task.busy and not btn.disabled and not pane.loading and not task.spinner.visible
    assert task.elapsed == 0.0
    # idle again: a new job starts
    task.start(lambda: "again", on_done=lambda r: seen.update(result=r))
    assert task.wait(10) == "again" and seen["result"] == "again"


def test_a_job_started_during_the_servers_warm_up_is_not_run(app, tmp_path):
    """The warm-up builds each page once in a throwaway document: a job a page starts then (the runs page's
    forecast pass over every running run) is not run, and the page is not left busy; after it, jobs run.
    End to end: the runs page built during the warm-up with a running run starts no forecast thread."""
    from workbench.apps.runs import RunsPage
    from workbench.store import RunStore

    task, btn, _, _ = make(app)
    ran = threading.Event()
    WARMING.set()
    try:
        task.start(ran.set, label="Never")
        assert not task.busy and not btn.disabled
        store = RunStore(tmp_path / "warm.db")
        rid = store.create_run("live", task="modular")
        store.log(rid, 0, {"train_loss": 1.0})
        page = RunsPage(store_path=str(store.path))
        assert (page._all["status"] == "running").any() and not page.forecast_task.busy
        assert not any(t.name == "wb-runs-forecast" for t in threading.enumerate())
    finally:
        WARMING.clear()
    assert not ran.wait(0.2)
    task.start(ran.set, label="Now")
    assert ran.wait(10)


def test_an_error_reaches_the_message_area_and_frees_the_page(app):
    task, btn, _, status = make(app)

    def boom():
        raise ValueError("lr: must be > 0")

    task.start(boom, label="Fitting", on_done=lambda r: pytest.fail("on_done after an error"))
    with pytest.raises(ValueError, match="lr: must be > 0"):
        task.wait(10)
    assert app.message.visible and app.message.alert_type == "danger"
    assert "ValueError" in app.message.object and "lr: must be &gt; 0" not in app.message.object
    assert "lr: must be > 0" in app.message.object
    assert status.object == "Fitting: failed."
    assert not btn.disabled and not task.busy


def test_custom_on_error_and_a_failing_on_done(app):
    task, *_ = make(app)
    errors = []
    task.start(lambda: 1, on_done=lambda r: 1 / 0, on_error=errors.append)
    with pytest.raises(ZeroDivisionError):
        task.wait(10)
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError)
    assert not app.message.visible  # the custom handler was used instead


def test_cancel_frees_the_page_and_drops_the_result(app):
    task, btn, _, status = make(app)
    gate, got = threading.Event(), []
    task.start(lambda: gate.wait(10) and "late", label="Fitting", on_done=got.append)
    thread = task._thread
    task.cancel()
    assert not task.busy and not btn.disabled and status.object == "Fitting: cancelled."
    task.start(lambda: "new", on_done=got.append)  # not refused: the page is free
    assert task.wait(10) == "new"
    gate.set()
    thread.join(10)
    assert got == ["new"]  # the cancelled job's result never arrived


class FakeDoc:
    """Stands for a served Bokeh document: records next-tick callbacks (run later, as the server's event
    loop would) and periodic callbacks."""

    session_context = object()

    def __init__(self):
        self.next_tick = []

    def add_next_tick_callback(self, cb):
        self.next_tick.append(cb)


def test_in_a_session_the_result_is_delivered_on_the_next_tick(app, monkeypatch):
    task, btn, _, status = make(app)
    doc = FakeDoc()
    ticks = []

    class Tick:
        running = True

        def stop(self):
            self.running = False

        def start(self):
            self.running = True

    monkeypatch.setattr(BackgroundTask, "_session_doc", staticmethod(lambda: doc))
    monkeypatch.setattr(app, "add_periodic", lambda cb, period_ms: ticks.append((cb, period_ms)) or Tick())
    got = []
    task.start(lambda: 42, label="Fitting", on_done=lambda r: got.append((r, pn.state.curdoc)))
    task._thread.join(10)
    assert got == [] and task.busy and btn.disabled  # the worker never touches the page itself
    assert len(doc.next_tick) == 1 and len(ticks) == 1 and ticks[0][1] == 500
    ticks[0][0]()  # a periodic tick while busy shows the elapsed time
    assert status.object.startswith("Fitting… ") and status.object.endswith(" s")
    doc.next_tick.pop()()  # the server runs the callback on its own thread, with the session's document
    assert got == [(42, doc)] and not task.busy and not btn.disabled and not task._tick.running
    assert task.wait(0) == 42
