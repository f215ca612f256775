"""The live monitor's legend: one entry per visible run (coloured by run) or per group (coloured by a
config key), above the panels, for any number of runs. The end-of-line labels name the lines only while
a panel has few of them; the legend always names every colour on the page."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.apps.base import escape
from workbench.figures.curves import is_test_metric

END_LABELS_MAX = 16
"""A panel labels the ends of its lines when it has at most this many."""
LABEL_GAP_PX = 13
"""Vertical room of one end-of-line label (8 pt text, 10.7 px, and its background)."""
FRAME_MARGIN_PX = 75
"""A panel's height less its plot frame's (title above, x axis and its label below)."""
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


def _in_right_part(figs: Any, x: float) -> bool:
    xr = figs.x_range
    a, b = xr.start, xr.end
    if figs.view.settings.log_x:
        if x <= 0 or a <= 0:
            return False
        a, b, x = np.log10(a), np.log10(b), np.log10(x)
    return b > a and (x - a) / (b - a) > 0.6


def spread(targets: Any, gap: float, lo: float, hi: float) -> np.ndarray:
    """Positions as near ``targets`` as possible (least squares) with consecutive ones (in the targets'
    order) at least ``gap`` apart, inside ``[lo, hi]`` where there is room: labels that would overlap are
    pushed apart around where their lines end, not stacked. Pool-adjacent-violators on ``t_i - i * gap``:
    a cluster of touching labels sits at the mean of its members' wishes, exactly ``gap`` apart."""
    t = np.asarray(targets, dtype=float)
    n = t.size
    if n == 0:
        return t.copy()
    order = np.argsort(t, kind="stable")
    want = t[order] - gap * np.arange(n)  # each label's wish for the bottom of a stack starting at label 0
    top = hi - gap * (n - 1)  # the highest bottom that keeps the stack's top label inside
    clusters: list[list[float]] = []  # [bottom, sum of wishes, count]
    for w in want:
        clusters.append([min(max(w, lo), top) if top >= lo else lo, w, 1])
        while len(clusters) > 1 and clusters[-2][0] >= clusters[-1][0]:
            b2, s2, c2 = clusters.pop()
            _, s1, c1 = clusters[-1]
            m = (s1 + s2) / (c1 + c2)
            clusters[-1] = [min(max(m, lo), top) if top >= lo else lo, s1 + s2, c1 + c2]
    base = np.concatenate([np.full(c, b) for b, _, c in clusters])
    out = np.empty(n)
    out[order] = base + gap * np.arange(n)
    return out


def _nudges(figs: Any, panel: str, ys: list[float]) -> list[float]:
    """Pixels to move each label up (+) or down so that none overlaps another (:func:`spread` in the
    panel's screen space, from its y range and frame height)."""
    yr = figs.y.ranges.get(panel)
    f = figs.figs[panel][0]
    if yr is None or yr.start is None or yr.end is None or len(ys) < 2:
        return [0.0] * len(ys)
    log = figs.view.settings.log_y
    t = np.log10 if log else (lambda v: np.asarray(v, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b, y = t(max(yr.start, 1e-300) if log else yr.start), t(yr.end), t(np.asarray(ys, dtype=float))
    h = max(float(f.height or 300) - FRAME_MARGIN_PX, 2 * LABEL_GAP_PX)
    if not (np.isfinite(a) and np.isfinite(b)) or b <= a:
        return [0.0] * len(ys)
    px = np.where(np.isfinite(y), (y - a) / (b - a) * h, 0.0)
    return (spread(px, LABEL_GAP_PX, 0.0, h - LABEL_GAP_PX) - px).tolist()


def end_labels(figs: Any) -> None:
    """A label at the end of every line of a panel (each group's mean line with bands), when a panel
    has at most ``END_LABELS_MAX`` of them; more would cover the curves (the hover names them). Labels
    of lines that end close together are moved apart vertically (``dy``, pixels: :func:`spread`)."""
    for panel, src in figs.labels_src.items():
        members = figs.figs[panel][1]
        pts: list[tuple[float, float, str, str]] = []
        if figs.grouped:
            key = figs.view.color_by.removeprefix("cfg.")
            for (name, g), gs in figs.group_sources.items():
                d = gs.data
                if name in members and len(d["x"]) and np.isfinite(d["mean"][-1]):
                    pts.append((d["x"][-1], d["mean"][-1], f"{key}={g}", figs.cmap.get(g, "#888888")))
        elif sum(len(figs.layers[n].runs) for n in members if n in figs.layers) <= END_LABELS_MAX:
            keys = figs.colour_keys()
            for name in members:
                lay = figs.layers.get(name)
                for r in lay.runs if lay is not None else []:
                    s = figs.book.get(r, name)
                    if s is None or not s.shown or not s.shown["x"].n:
                        continue
                    x, y = s.shown["x"].a[-1], s.shown["ys"].a[-1]
                    if np.isfinite(x) and np.isfinite(y):
                        text = str(figs.view.run_names.get(r, r))[:24] + (f" {name}" if len(members) > 1 else "")
                        pts.append((x, y, text, figs.cmap.get(keys.get(r), "#888888")))
        if len(pts) > END_LABELS_MAX:
            pts = []
        # a line that ends in the right part of the view is labelled leftwards from its end, others
        # rightwards: a label never runs out of the frame (it used to be cut off at the right edge)
        right = [_in_right_part(figs, p[0]) for p in pts]
        new = {"x": [p[0] for p in pts], "y": [p[1] for p in pts], "text": [p[2] for p in pts],
               "color": [p[3] for p in pts], "align": ["right" if r else "left" for r in right],
               "dx": [-2 if r else 4 for r in right], "dy": [3 + d for d in _nudges(figs, panel, [p[1] for p in pts])]}
        if new != dict(src.data):
            src.data = new
