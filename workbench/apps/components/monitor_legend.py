"""The live monitor's legend: one entry per visible run (coloured by run) or per group (coloured by a
config key), above the panels, for any number of runs. The end-of-line labels name the lines only while
a panel has few of them; the legend always names every colour on the page."""

from __future__ import annotations

from typing import Any

from workbench.apps.base import escape
from workbench.figures.curves import is_test_metric

STYLE = ("display:flex;flex-wrap:wrap;gap:2px 14px;max-height:84px;overflow-y:auto;font-size:12px;"
         "line-height:18px")


def _item(key: str, text: str, colour: str, title: str = "") -> str:
    return (f'<span class="wb-legend-item" data-key="{escape(key)}" title="{escape(title or text)}" '
            f'style="display:inline-flex;align-items:center;gap:5px;white-space:nowrap">'
            f'<i style="display:inline-block;width:16px;height:3px;background:{escape(colour)}"></i>'
            f'{escape(text)}</span>')


def legend_html(figs: Any) -> str:
    """The legend of :class:`~workbench.apps.components.monitor_figures.MonitorFigures` ``figs``: an entry
    per run shown (``data-key`` the run id), or per group (``data-key`` ``<key>=<value>``, with its run
    count), and the line styles when train and test share a panel."""
    view = figs.view
    runs = list(view.runs)
    if not runs:
        return ""
    keys = figs.colour_keys()
    items = []
    if view.color_by == "run":
        for r in runs:
            name = str(view.run_names.get(r, r))
            items.append(_item(r, name, figs.cmap.get(keys.get(r), "#888888"), view.run_labels.get(r, name)))
    else:
        key = view.color_by.removeprefix("cfg.")
        count: dict[Any, int] = {}
        for r in runs:
            count[keys[r]] = count.get(keys[r], 0) + 1
        for g, n in count.items():
            items.append(_item(f"{key}={g}", f"{key}={g} ({n} run{'s' if n > 1 else ''})",
                               figs.cmap.get(g, "#888888")))
    if any(len(m) > 1 and any(is_test_metric(n) for n in m) for _, m in figs.figs.values()):
        items.append('<span style="color:#555">solid: train · dashed: test</span>')
    return f'<div class="wb-legend" style="{STYLE}">{"".join(items)}</div>'
