"""Threading for small fits: one intra-op thread inside a context that restores the caller's setting.

Why: the fits are many small batched problems (a few thousand rows of a few hundred points). With torch's
and BLAS's default thread pools, every operation wakes one thread per core; when another process keeps a
core busy (a run training beside the notebook or dashboard, the workbench's normal use), the woken thread
waits for that core and each operation takes a scheduler time slice longer: the 4 500-start Chinchilla fit
took ~2x longer with the default threads than pinned to one (issue 15). One thread is as fast as several
for these sizes on an idle machine (``bench/fit_bench.py`` measures both), so the fitters choose it
themselves instead of asking users to set ``OMP_NUM_THREADS``.

``small_problem_threads()`` sets ``torch.set_num_threads(1)`` and ``threadpoolctl.threadpool_limits(1)``
(OpenMP and BLAS pools of numpy/scipy) and restores both on exit, also on an exception. Nested use is
cheap (the inner context sees one thread already and leaves it). ``WORKBENCH_FIT_THREADS=N`` overrides
the choice (0: leave the caller's setting alone).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from threadpoolctl import threadpool_limits


def fit_threads() -> int:
    """Threads the fitters use (``WORKBENCH_FIT_THREADS``, default 1; 0 keeps the caller's setting)."""
    raw = os.environ.get("WORKBENCH_FIT_THREADS", "1").strip()
    try:
        n = int(raw)
    except ValueError:
        n = 1
    return max(n, 0)


@contextmanager
def small_problem_threads(n: int | None = None) -> Iterator[int]:
    """Run the body with ``n`` (default :func:`fit_threads`) torch intra-op and BLAS/OpenMP threads, then
    restore the caller's settings. Yields the thread count in effect."""
    n = fit_threads() if n is None else n
    if n <= 0:
        yield torch.get_num_threads()
        return
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


F = TypeVar("F", bound=Callable[..., Any])


def threaded_for_small_problems(fn: F) -> F:
    """Decorator: run ``fn`` inside :func:`small_problem_threads`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with small_problem_threads():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
