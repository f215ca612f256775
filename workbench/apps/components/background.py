"""One job at a time in a background thread, for a page that must stay responsive while it runs (a law
fit that takes seconds to minutes): the page shows a spinner and the elapsed time, its buttons are
disabled, and the result (or the error) comes back to the page when the job ends.

Under ``panel serve`` the job's result is delivered on the session's own thread: the worker hands it to
the document with ``Document.add_next_tick_callback`` (the one thread-safe Document method), so the
``on_done`` / ``on_error`` callbacks may change widgets and panes as any button callback would. A periodic
callback (``AppBase.add_periodic``) runs only while the job runs, to show the elapsed time. Without a
server session (a notebook, a test) the callbacks run on the worker thread when the job ends, and
``wait()`` returns the result.

Usage (in an app, ``self`` an :class:`~workbench.apps.base.AppBase`)::

    self.fit_task = BackgroundTask(self, name="lab-fit", disable=[self.fit_btn], status=self.fit_status)
    ...
    self.fit_task.start(fit, law, data, label=f"Fitting {what}", on_done=self._fitted)
    # the layout shows self.fit_task.spinner next to the button

Cancelling cannot stop a Python thread: ``cancel()`` discards the job's result and frees the page at
once (the thread finishes in the background and its result is dropped).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import panel as pn
from panel.io.state import set_curdoc

from workbench.errors import WorkbenchError

WARMING = threading.Event()
"""Set by ``workbench serve``'s warm-up (``apps/pages/_warm.py``) while it builds each page once in a
throwaway document: a job started then is not run. Nobody will see its result, and the job may be long: the
runs page's forecast pass over 256 running runs (10^5 steps each) kept a server core busy after every start
with no page open (1.00 cores over the 50 s measured, while a writer appended to those runs)."""


class TaskBusyError(WorkbenchError):
    """A job was started while the previous one of the same task still runs."""


class BackgroundTask:
    """Runs one job at a time in a daemon thread for the app ``owner`` (an ``AppBase``).

    ``disable``: widgets disabled while a job runs; ``loading``: panes shown as loading while it runs;
    ``status``: a Markdown pane that shows ``"<label>… N s"`` while it runs (the callbacks write the
    final text); ``period_ms``: how often the elapsed time is refreshed. ``spinner`` is a
    ``LoadingSpinner``, visible only while a job runs, for the app to place in its layout.
    """

    def __init__(self, owner: Any, *, name: str, disable: Sequence[Any] = (), loading: Sequence[Any] = (),
                 status: Any = None, period_ms: int = 500) -> None:
        self.owner, self.name = owner, name
        self.disable, self.loading, self.status = list(disable), list(loading), status
        self.period_ms = int(period_ms)
        self.spinner = pn.indicators.LoadingSpinner(value=False, visible=False, size=24, width=24,
                                                    sizing_mode="fixed", css_classes=[f"wb-{name}-spinner"])
        self.label = ""
        self.t0 = 0.0
        self._thread: threading.Thread | None = None
        self._job = 0  # bumped at each start and cancel: a finished job whose number is stale is dropped
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()
        self._result: Any = None
        self._error: BaseException | None = None
        self._tick: Any = None

    # ------------------------------------------------------------------ state
    @property
    def busy(self) -> bool:
        """True from ``start`` until the job's result is delivered (or it is cancelled)."""
        return not self._done.is_set()

    @property
    def elapsed(self) -> float:
        """Seconds since the running job started (0 when idle)."""
        return time.perf_counter() - self.t0 if self.busy else 0.0

    # ------------------------------------------------------------------ control
    def start(self, fn: Callable[..., Any], *args: Any, label: str = "Working",
              on_done: Callable[[Any], Any] | None = None,
              on_error: Callable[[BaseException], Any] | None = None, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` in a thread. When it returns, ``on_done(result)``; when it raises,
        ``on_error(exc)`` (default: the error in the owner's message area, the traceback in the server
        log). Raises :class:`TaskBusyError` while a job runs. Does nothing during the server's warm-up
        (:data:`WARMING`)."""
        with self._lock:
            if self.busy:
                raise TaskBusyError(f"{self.name}: {self.label or 'a job'} is still running; "
                                    "wait for it to finish")
            if WARMING.is_set():  # a page built by the server's warm-up: no one to deliver to
                return
            self._job += 1
            job = self._job
            self._done.clear()
        self.label, self.t0 = label, time.perf_counter()
        self._result, self._error = None, None
        doc = self._session_doc()
        self._set_busy(True)
        if doc is not None:
            self._start_tick()
        self._thread = threading.Thread(target=self._work, args=(job, doc, fn, args, kwargs, on_done, on_error),
                                        daemon=True, name=f"wb-{self.name}")
        self._thread.start()

    def cancel(self) -> None:
        """Free the page now and drop the running job's result when it comes (the thread is not killed)."""
        with self._lock:
            if not self.busy:
                return
            self._job += 1
        if self.status is not None:
            self.status.object = f"{self.label}: cancelled."
        self._finish_ui()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the job's result is delivered (notebooks, tests); returns it, or raises its error.
        Raises ``TimeoutError`` when ``timeout`` seconds pass first."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.name}: still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _session_doc() -> Any:
        doc = pn.state.curdoc
        return doc if doc is not None and doc.session_context is not None else None

    def _work(self, job: int, doc: Any, fn: Callable, args: tuple, kwargs: dict, on_done: Callable | None,
              on_error: Callable | None) -> None:
        try:
            result, error = fn(*args, **kwargs), None
        except Exception as e:  # noqa: BLE001 - delivered to on_error / the page
            traceback.print_exc()
            result, error = None, e
        if doc is None:
            self._deliver(job, result, error, on_done, on_error)
            return
        try:
            doc.add_next_tick_callback(lambda: self._deliver_in(doc, job, result, error, on_done, on_error))
        except Exception:  # noqa: BLE001 - the session is gone (tab closed): nobody to show it to
            self._deliver(job, result, error, None, lambda e: None)

    def _deliver_in(self, doc: Any, *args: Any) -> None:
        with set_curdoc(doc):
            self._deliver(*args)

    def _deliver(self, job: int, result: Any, error: BaseException | None, on_done: Callable | None,
                 on_error: Callable | None) -> None:
        with self._lock:
            if job != self._job:  # cancelled, or superseded: drop it
                return
        try:
            if error is None and on_done is not None:
                on_done(result)
        except Exception as e:  # noqa: BLE001 - a failing on_done is an error of the job
            traceback.print_exc()
            error = e
        if error is not None:
            (on_error or self._show_error)(error)
        self._result, self._error = result, error
        self._finish_ui()

    def _show_error(self, error: BaseException) -> None:
        self.owner.show_error(f"**{type(error).__name__}**: {error}")
        if self.status is not None:
            self.status.object = f"{self.label}: failed."

    def _finish_ui(self) -> None:
        self._set_busy(False)
        if self._tick is not None:
            self._tick.stop()
        self._done.set()

    def _set_busy(self, on: bool) -> None:
        self.spinner.value = self.spinner.visible = on
        for w in self.disable:
            w.disabled = on
        for p in self.loading:
            p.loading = on
        if on and self.status is not None:
            self.status.object = f"{self.label}…"

    def _start_tick(self) -> None:
        if self._tick is None:
            self._tick = self.owner.add_periodic(self._show_elapsed, self.period_ms)
        elif not self._tick.running:
            self._tick.start()

    def _show_elapsed(self) -> None:
        if self.busy and self.status is not None:
            self.status.object = f"{self.label}… {self.elapsed:.0f} s"
