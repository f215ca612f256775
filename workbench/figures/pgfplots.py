"""A plotly figure as a pgfplots/TikZ picture for LaTeX: ``<name>.tex`` (a ``tikzpicture`` to
``\\input`` in a paper, so the paper's fonts are used), one ``<name>-<i>.csv`` per trace, and
``<name>-standalone.tex``, a one-page document that compiles it (``pdflatex``).

Hand-written because the maintained converters take matplotlib figures (tikzplotlib, itself
unmaintained since 2023), not plotly ones. Covered: line and marker scatter traces (colour, dash,
width, markers, log axes, axis titles and ranges, subplots as a ``groupplot``), filled polygons
(``fill="toself"``: min/max bands) and the legend (position as in :class:`FigureStyle`). Other trace
types (heatmaps, parallel coordinates, error bars) are refused with an error naming the trace rather
than drawn wrong. Requires ``\\usepackage{pgfplots}`` and ``\\usepgfplotslibrary{groupplots}``.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import DEFAULT_PLOTLY_COLORS, hex_to_rgb, unlabel_rgb

from workbench.figures.export import ExportError, FigureStyle

PT_PER_PX = 0.75
_DASH = {"dash": "dashed", "dot": "dotted", "dashdot": "dashdotted", "longdash": "loosely dashed",
         "longdashdot": "loosely dashdotted"}
_MARK = {"circle": "*", "square": "square*", "diamond": "diamond*", "triangle-up": "triangle*", "x": "x",
         "cross": "+"}
_LEGEND = {"right": "legend pos=outer north east", "inside top right": "legend pos=north east",
           "inside bottom left": "legend pos=south west",
           "top": "legend style={at={(0.5,1.03)},anchor=south,legend columns=-1}",
           "bottom": "legend style={at={(0.5,-0.18)},anchor=north,legend columns=-1}"}
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\~{}"}


def tex_escape(text: Any) -> str:
    """Plain text for LaTeX: special characters escaped, plotly's ``<br>`` / tags removed."""
    s = re.sub(r"<br\s*/?>", " ", str(text))
    s = re.sub(r"<[^>]+>", "", s)
    return "".join(_TEX_SPECIAL.get(c, c) for c in s)


def _rgb(color: Any, fallback: str) -> tuple[str, float]:
    """(``R,G,B`` for ``\\definecolor{..}{RGB}``, opacity) of a plotly colour string."""
    c = str(color).strip() if color else fallback
    try:
        if c.startswith("#"):
            if len(c) == 4:
                c = "#" + "".join(ch * 2 for ch in c[1:])
            r, g, b = hex_to_rgb(c)
            return f"{r},{g},{b}", 1.0
        if c.startswith("rgba"):
            parts = [float(v) for v in c[c.index("(") + 1:c.index(")")].split(",")]
            return ",".join(str(int(round(v))) for v in parts[:3]), float(parts[3])
        if c.startswith("rgb"):
            r, g, b = unlabel_rgb(c)
            return f"{int(r)},{int(g)},{int(b)}", 1.0
    except (ValueError, IndexError):
        pass
    return _rgb(fallback, "#444444") if c != fallback else ("68,68,68", 1.0)


def _num(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "nan"
    return repr(f) if math.isfinite(f) else "nan"


def _axis_names(fig: go.Figure) -> list[tuple[str, str]]:
    """The (xaxis, yaxis) pairs that carry traces, in subplot order (top-left first)."""
    pairs = list(dict.fromkeys((t.xaxis or "x", t.yaxis or "y") for t in fig.data))
    return pairs or [("x", "y")]


def _layout_axis(fig: go.Figure, ref: str) -> Any:
    name = ("xaxis" if ref[0] == "x" else "yaxis") + ref[1:]
    return fig.layout[name] if name in fig.layout else None


def _subplot_title(fig: go.Figure, xref: str, yref: str) -> str | None:
    """The title ``make_subplots`` puts over a subplot (a paper annotation centred on its x domain,
    just above its y domain), if any."""
    xa, ya = _layout_axis(fig, xref), _layout_axis(fig, yref)
    if xa is None or ya is None or xa.domain is None or ya.domain is None or len(fig.data) == 0:
        return None
    xc, ytop = (xa.domain[0] + xa.domain[1]) / 2, ya.domain[1]
    for a in fig.layout.annotations or ():
        if a.xref == "paper" and a.yref == "paper" and a.x is not None and a.y is not None \
                and abs(a.x - xc) < 0.02 and abs(a.y - ytop) < 0.05 and a.text:
            return a.text
    return None


def _axis_options(fig: go.Figure, xref: str, yref: str, style: FigureStyle, first: bool) -> list[str]:
    opts = []
    for ref, key in ((xref, "x"), (yref, "y")):
        ax = _layout_axis(fig, ref)
        if ax is None:
            continue
        if ax.type == "log":
            opts.append(f"{key}mode=log")
        title = ax.title.text if ax.title is not None else None
        if title:
            opts.append(f"{key}label={{{tex_escape(title)}}}")
        if ax.range is not None and None not in ax.range:
            lo, hi = (10 ** float(v) for v in ax.range) if ax.type == "log" else (float(v) for v in ax.range)
            opts.append(f"{key}min={_num(lo)}, {key}max={_num(hi)}")
    title = _subplot_title(fig, xref, yref)
    if title:
        opts.append(f"title={{{tex_escape(title)}}}")
    if first and style.legend != "none":
        opts.append(_LEGEND[style.legend])
    return opts


def pgfplots_files(fig: go.Figure, style: FigureStyle | None = None, *, basename: str = "figure"
                   ) -> dict[str, bytes]:
    """The pgfplots picture of ``fig`` (already holding only what should be drawn: see
    :func:`workbench.figures.export.prepare_figure`) as files: ``<basename>.tex``,
    ``<basename>-standalone.tex`` and one ``<basename>-<i>.csv`` per trace (columns ``x,y``)."""
    style = style or FigureStyle()
    if not re.fullmatch(r"[A-Za-z0-9._-]+", basename):
        raise ExportError(f"basename: letters, digits, '.', '_' and '-' only, got {basename!r}")
    files: dict[str, bytes] = {}
    pairs = _axis_names(fig)
    palette = list(fig.layout.template.layout.colorway or []) if fig.layout.template else []
    palette = palette or list(DEFAULT_PLOTLY_COLORS)
    colors: list[str] = []
    body: dict[tuple[str, str], list[str]] = {p: [] for p in pairs}
    for i, t in enumerate(fig.data):
        if t.type not in ("scatter", "scattergl"):
            raise ExportError(f"trace {i} ({t.name!r}): pgfplots export draws line/marker traces only, "
                              f"not {t.type!r}")
        x = np.asarray(t.x if t.x is not None else np.arange(len(t.y or [])), dtype=object)
        y = np.asarray(t.y if t.y is not None else [], dtype=object)
        csv = "x,y\n" + "".join(f"{_num(a)},{_num(b)}\n" for a, b in zip(x, y))
        fname = f"{basename}-{i}.csv"
        files[fname] = csv.encode()
        fallback = palette[i % len(palette)]
        fill = t.fill == "toself"
        rgb, alpha = _rgb((t.fillcolor if fill else None) or (t.line.color if t.line else None)
                          or (t.marker.color if t.marker is not None and isinstance(t.marker.color, str) else None),
                          fallback)
        cname = f"wbc{i}"
        colors.append(f"\\definecolor{{{cname}}}{{RGB}}{{{rgb}}}")
        opts = [f"color={cname}"]
        if fill:
            opts += [f"fill={cname}", f"fill opacity={alpha:.3g}", "draw=none", "forget plot"]
        else:
            mode = t.mode or "lines"
            if alpha < 1:
                opts.append(f"opacity={alpha:.3g}")
            if "lines" in mode:
                width = t.line.width if t.line and t.line.width is not None else 2
                opts.append(f"line width={width * PT_PER_PX:.3g}pt")
                dash = t.line.dash if t.line else None
                if dash in _DASH:
                    opts.append(_DASH[dash])
            else:
                opts.append("only marks")
            if "markers" in mode:
                sym = t.marker.symbol if t.marker is not None and isinstance(t.marker.symbol, str) else "circle"
                opts.append(f"mark={_MARK.get(sym, '*')}, mark size=1.5pt")
            else:
                opts.append("mark=none")
            if t.showlegend is False or not t.name or style.legend == "none":
                opts.append("forget plot")
        line = (f"\\addplot[{', '.join(opts)}] table[x=x, y=y, col sep=comma] {{{fname}}}"
                + (" -- cycle;" if fill else ";"))
        body[(t.xaxis or "x", t.yaxis or "y")].append(line)
        if not fill and "forget plot" not in opts:
            body[(t.xaxis or "x", t.yaxis or "y")].append(f"\\addlegendentry{{{tex_escape(t.name)}}}")
    w, h = style.width * PT_PER_PX, style.height * PT_PER_PX
    title = fig.layout.title.text if fig.layout.title is not None else None
    fs = style.font_size * PT_PER_PX
    head = [f"% pgfplots picture written by workbench ({len(fig.data)} traces; data in {basename}-<i>.csv).",
            "% Needs \\usepackage{pgfplots} and \\usepgfplotslibrary{groupplots}.", *colors,
            f"\\begin{{tikzpicture}}[font=\\fontsize{{{fs:.3g}}}{{{fs * 1.2:.3g}}}\\selectfont]"]
    common = ["unbounded coords=jump", "scale only axis", "grid=major", "grid style={gray!25}"]
    if len(pairs) == 1:
        opts = [f"width={w:.4g}pt", f"height={h:.4g}pt", *common, *_axis_options(fig, *pairs[0], style, True)]
        if title and not any(o.startswith("title=") for o in opts):
            opts.append(f"title={{{tex_escape(title)}}}")
        tex = [*head, f"\\begin{{axis}}[{', '.join(opts)}]", *body[pairs[0]], "\\end{axis}"]
    else:
        ncols = min(len(pairs), 2)
        nrows = math.ceil(len(pairs) / ncols)
        gw, gh = 0.8 * w / ncols, 0.75 * h / nrows
        tex = [*head, f"\\begin{{groupplot}}[group style={{group size={ncols} by {nrows}, horizontal sep=1.5cm, "
                      f"vertical sep=1.5cm}}, width={gw:.4g}pt, height={gh:.4g}pt, {', '.join(common)}]"]
        for k, p in enumerate(pairs):
            tex.append(f"\\nextgroupplot[{', '.join(_axis_options(fig, *p, style, k == 0))}]")
            tex += body[p]
        tex.append("\\end{groupplot}")
    tex.append("\\end{tikzpicture}")
    files[f"{basename}.tex"] = ("\n".join(tex) + "\n").encode()
    pw, ph = w + 220, h + 160  # room for tick labels, axis titles and an outside legend
    files[f"{basename}-standalone.tex"] = (
        "\\documentclass{article}\n\\usepackage{pgfplots}\n\\usepgfplotslibrary{groupplots}\n"
        "\\pgfplotsset{compat=1.16}\n\\pagestyle{empty}\n"
        f"\\pdfpagewidth={pw:.0f}pt \\pdfpageheight={ph:.0f}pt \\paperwidth={pw:.0f}pt \\paperheight={ph:.0f}pt\n"
        f"\\textwidth={pw - 20:.0f}pt \\textheight={ph - 20:.0f}pt \\hoffset=-1in \\voffset=-1in\n"
        "\\oddsidemargin=10pt \\topmargin=0pt \\headheight=0pt \\headsep=0pt \\parindent=0pt\n"
        f"\\begin{{document}}\n\\input{{{basename}.tex}}\n\\end{{document}}\n").encode()
    return files


def figure_to_pgfplots_zip(fig: go.Figure, style: FigureStyle | None = None, *, basename: str = "figure") -> bytes:
    """:func:`pgfplots_files` as one zip (what the dashboards' TikZ button downloads)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in pgfplots_files(fig, style, basename=basename).items():
            z.writestr(name, data)
    return buf.getvalue()
