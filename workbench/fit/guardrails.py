"""Guardrails on a fit (issue 17 item 3): plain-language warnings for a result that should not be trusted,
shown by the pages and printed by ``FitResult.report()`` under ``[[warnings]]``.

- **Low R²**: training R² below :data:`R2_WARN` = 0.9. A law that leaves more than a tenth of the target's
  variance unexplained does not describe the data (a wrongly mapped column gave R² 0.59); a correct law on
  clean data reaches 0.98 and more (Chinchilla's grid, the multi-power law's curves). The threshold is
  deliberately loose: it flags a wrong mapping or law, not a noisy but right fit.
- **Residual trend**: :func:`workbench.fit.diagnostics.residual_trend` flags a curve or group whose last
  quarter lies systematically off the law (the law under- or over-fits its end; longer runs will be
  mis-predicted). ``report()`` lists these under ``[[diagnostics]]``; :func:`fit_warnings` includes them.
- **Mixed tasks**: data from runs of several tasks (the store's ``task`` column). A law fitted across tasks
  describes none of them. The data's tasks are not part of ``FitData``, so whoever loads the data records
  them with :func:`note_tasks`; the note travels in ``FitResult.notes`` (and its JSON).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

R2_WARN = 0.9
"""Training R² below which a fit is reported as not describing its data."""
MIXED_TASKS = "the data mix tasks"


def mixed_tasks_message(tasks: Iterable[str]) -> str | None:
    """The warning for data from runs of several tasks (None for one task or none known)."""
    distinct = sorted({str(t) for t in tasks if t})
    if len(distinct) < 2:
        return None
    return (f"{MIXED_TASKS} ({', '.join(distinct[:6])}{', ...' if len(distinct) > 6 else ''}): one law fitted "
            "across tasks describes none of them; fit each task's runs on their own")


def note_tasks(result: object, tasks: Iterable[str]) -> object:
    """Record in ``result.notes`` that its data mix tasks (nothing for one task); returns ``result``."""
    msg = mixed_tasks_message(tasks)
    if msg and msg not in result.notes:
        result.notes.append(msg)
    return result


def low_r2_message(r2: float) -> str | None:
    if np.isfinite(r2) and r2 >= R2_WARN:
        return None
    return (f"R² {r2:.3f} is below {R2_WARN}: the law does not describe the data; check the column mapping "
            "(is the target the loss, are the inputs the right columns?), the law and whether the data mix "
            "different settings")


def fit_warnings(result: object, *, trends: bool = True) -> list[str]:
    """Every warning about ``result``: low R², mixed tasks (from its notes) and, with ``trends``, the
    residual-trend flags of its curves or groups."""
    out = [m for m in (low_r2_message(result.r2),) if m]
    out += [n for n in getattr(result, "notes", []) if n.startswith(MIXED_TASKS)]
    if trends:
        try:
            out += [d["message"] for d in result.diagnostics() if d["flag"]]
        except Exception:  # noqa: BLE001 - a diagnostic that cannot run is no warning
            pass
    return out
