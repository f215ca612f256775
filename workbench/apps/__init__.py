"""Panel dashboards over the workbench package, served together by ``workbench serve``.

Each app is one ``pn.viewable.Viewer`` class (params are the single source of truth, ``__panel__``
is the view) that renders the same in a notebook cell and under ``panel serve``. The view layer
holds no science: it calls ``workbench.*`` and the figure builders in ``workbench.figures``.

``APPS`` maps a URL path to the app class; ``workbench/apps/pages/<path>.py`` are the thin files
that ``panel serve`` runs (one fresh app object per browser session).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PAGES = Path(__file__).parent / "pages"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class AppInfo:
    path: str  # URL path, and the page file's stem
    target: str  # "module:Class"
    title: str
    description: str


APPS: dict[str, AppInfo] = {
    a.path: a
    for a in (
        AppInfo("schedules", "workbench.apps.schedule_lab:ScheduleLab", "Schedule lab",
                "Compose learning-rate schedules, overlay them, predict their loss curves, launch runs."),
        AppInfo("monitor", "workbench.apps.live_monitor:LiveMonitor", "Live monitor",
                "Watch runs train: smoothing, log axes, grouping by hyperparameter, grokking measures."),
        AppInfo("sweeps", "workbench.apps.sweep_board:SweepBoard", "Sweep board",
                "Define and launch sweeps, watch progress, compare results and performance profiles."),
        AppInfo("laws", "workbench.apps.law_fitter:LawFitter", "Law fitter",
                "Fit scaling and loss-curve laws, compare them, extrapolate, find crossovers."),
    )
}


def index_template() -> Path:
    """The index page template with the apps' titles and descriptions filled in (Bokeh's index
    template only receives the URL paths)."""
    info = {a.path: [a.title, a.description] for a in APPS.values()}
    text = (TEMPLATES / "index.html").read_text().replace("__INFO__", json.dumps(info))
    out = Path(tempfile.gettempdir()) / f"workbench-index-{hashlib.md5(text.encode()).hexdigest()[:10]}.html"
    if not out.exists():
        out.write_text(text)
    return out


def serve_command(*, port: int = 5006, address: str = "127.0.0.1", apps: list[str] | None = None,
                  show: bool = False, extra: list[str] | None = None) -> list[str]:
    """The ``panel serve`` command line that serves the apps (all by default) with the index page."""
    names = list(APPS) if apps is None else apps
    for n in names:
        if n not in APPS:
            raise ValueError(f"apps: unknown app {n!r}; choose from {sorted(APPS)}")
    origins = [f"{address}:{port}"] + ([f"localhost:{port}"] if address == "127.0.0.1" else [])
    cmd = [sys.executable, "-m", "panel", "serve", *[str(PAGES / f"{n}.py") for n in names],
           "--port", str(port), "--address", address, "--index", str(index_template()),
           "--check-unused-sessions", "5000", "--unused-session-lifetime", "15000",
           "--num-procs", "1"]
    for o in origins:
        cmd += ["--allow-websocket-origin", o]
    if show:
        cmd.append("--show")
    return cmd + list(extra or [])


def serve(*, port: int = 5006, address: str = "127.0.0.1", store: str | os.PathLike | None = None,
          apps: list[str] | None = None, show: bool = False) -> int:
    """Run ``panel serve`` on the apps until interrupted; ``store`` sets ``WORKBENCH_STORE``."""
    env = dict(os.environ)
    if store is not None:
        env["WORKBENCH_STORE"] = str(Path(store).resolve())
    cmd = serve_command(port=port, address=address, apps=apps, show=show)
    print(f"workbench: serving {', '.join(apps or APPS)} at http://{address}:{port}/", flush=True)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
