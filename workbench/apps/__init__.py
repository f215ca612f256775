"""Panel dashboards over the workbench package, served together by ``workbench serve``.

Each app is one ``pn.viewable.Viewer`` class (params are the single source of truth, ``__panel__``
is the view) that renders the same in a notebook cell and under ``panel serve``. The view layer
holds no science: it calls ``workbench.*`` and the figure builders in ``workbench.figures``.

``APPS`` maps a URL path to the app class; ``workbench/apps/pages/<path>.py`` are the thin files
that ``panel serve`` runs (one fresh app object per browser session).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError

PAGES = Path(__file__).parent / "pages"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class AppInfo:
    path: str  # URL path, and the page file's stem
    target: str  # "module:Class"
    title: str
    description: str
    # Panel extensions the page uses (their JavaScript is sent with the page): only these, so a page
    # without plotly figures does not load plotly.js (4.6 MB, ~1 s of the browser's time per load)
    extensions: tuple[str, ...] = ("plotly", "tabulator")


APPS: dict[str, AppInfo] = {
    a.path: a
    for a in (
        AppInfo("schedules", "workbench.apps.schedule_lab:ScheduleLab", "Schedule lab",
                "Compose learning-rate schedules, overlay them, predict their loss curves, launch runs.",
                ("tabulator",)),  # figures drawn with Bokeh: no plotly.js (exports build Plotly server-side)
        AppInfo("monitor", "workbench.apps.live_monitor:LiveMonitor", "Live monitor",
                "Watch runs train: smoothing, log axes, grouping by hyperparameter, grokking measures.", ()),
        AppInfo("sweeps", "workbench.apps.sweep_board:SweepBoard", "Sweep board",
                "Define and launch sweeps, watch progress, compare results and performance profiles.",
                ("tabulator", "codeeditor")),  # first view drawn with Bokeh: plotly.js loaded after it is drawn
        AppInfo("laws", "workbench.apps.law_fitter:LawFitter", "Scaling-law fitter",
                "Fit scaling laws (L(N), L(N, D), ...) on tables, compare them, extrapolate, find crossovers.",
                ("tabulator",)),  # figures drawn with Bokeh (figures.plotly_bokeh): no plotly.js
        AppInfo("curves", "workbench.apps.curve_fitter:CurveFitter", "Curve-law fitter",
                "Fit schedule-aware loss-curve laws on runs or files; predict held-out and untrained schedules.",
                ("tabulator",)),  # figures drawn with Bokeh (figures.plotly_bokeh): no plotly.js
        AppInfo("runs", "workbench.apps.runs:RunsPage", "Runs",
                "Every run in one table: filter, sort, group, tag, annotate; compare curves and configs.",
                ("tabulator",)),  # compare view drawn with Bokeh: no plotly.js (exports build Plotly server-side)
    )
}


def index_template() -> Path:
    """The index page template, a file of the installed package (``templates/index.html``). It reads the
    apps' titles and descriptions from :data:`APPS` itself (Bokeh's index handler only passes the URL
    paths), so nothing is written anywhere: a page built in the shared temp dir could be planted there
    by another user and would run as a template inside the server."""
    return TEMPLATES / "index.html"


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(address: str) -> bool:
    """Whether a listen address only accepts connections from this machine."""
    import ipaddress

    if address in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:  # a host name: only "localhost" is known to be loopback
        return False


def login_users(passwd: str | os.PathLike = "/etc/passwd") -> set[str]:
    """People who can log in to this machine: accounts of /etc/passwd with uid >= 1000 (not ``nobody``)
    and a login shell, plus whoever ``who`` lists as logged in (accounts from LDAP and the like)."""
    users: set[str] = set()
    try:
        for line in Path(passwd).read_text().splitlines():
            f = line.split(":")
            if len(f) >= 7 and f[2].isdigit() and 1000 <= int(f[2]) < 65534 \
                    and not f[6].strip().endswith(("nologin", "false", "sync")) and f[6].strip():
                users.add(f[0])
    except OSError:
        pass
    try:
        out = subprocess.run(["who"], capture_output=True, text=True, timeout=5).stdout
        users |= {ln.split()[0] for ln in out.splitlines() if ln.strip()}
    except (OSError, subprocess.SubprocessError):
        pass
    return users


def token_by_default(address: str, users: set[str] | None = None) -> tuple[bool, str]:
    """Whether ``workbench serve`` asks for a token when neither ``--token`` nor ``--no-token`` is given,
    and why: yes when the address is not loopback or more than one person can log in to the machine
    (every local user can reach a loopback port)."""
    if not is_loopback(address):
        return True, f"--address {address} is reachable from other machines"
    users = login_users() if users is None else users
    if len(users) > 1:
        return True, f"{len(users)} users can log in to this machine"
    return False, "loopback address and a single login user"


def check_token(address: str, token: bool | None) -> None:
    """Refuse to serve a non-loopback address without a token (``--no-token``)."""
    if token is False and not is_loopback(address):
        raise WorkbenchError(f"address: serving on {address} without a token (--no-token) would let anyone who can "
                             "reach this machine read your run store and launch runs; drop --no-token (a token "
                             "is then printed) or serve on 127.0.0.1")


def serve_command(*, port: int = 5006, address: str = "127.0.0.1", apps: list[str] | None = None,
                  show: bool = False, extra: list[str] | None = None, token: bool = False) -> list[str]:
    """The ``panel serve`` command line that serves the apps (all by default) with the index page;
    ``token=True`` adds the token check (``workbench/apps/auth.py``; the token itself travels in the
    environment as ``$WORKBENCH_TOKEN``, never on the command line)."""
    names = list(APPS) if apps is None else apps
    for n in names:
        if n not in APPS:
            raise WorkbenchError(f"apps: unknown app {n!r}; choose from {sorted(APPS)}")
    origins = [f"{address}:{port}"] + ([f"localhost:{port}"] if address == "127.0.0.1" else [])
    if not is_loopback(address):
        import socket

        origins += [f"{h}:{port}" for h in dict.fromkeys((socket.gethostname(), socket.getfqdn()))]
    cmd = [sys.executable, "-m", "panel", "serve", *[str(PAGES / f"{n}.py") for n in names],
           "--port", str(port), "--address", address, "--index", str(index_template()),
           "--check-unused-sessions", "5000", "--unused-session-lifetime", "15000",
           "--num-procs", "1", "--setup", str(PAGES / "_warm.py")]  # imports once, before the first visit
    for o in origins:
        cmd += ["--allow-websocket-origin", o]
    if token:
        cmd += ["--auth-module", str(Path(__file__).parent / "auth.py")]
    if show and not token:  # with a token the browser is opened on the address that carries it
        cmd.append("--show")
    return cmd + list(extra or [])


def _open_when_up(url: str, port: int, timeout: float = 60.0) -> None:
    import socket
    import threading
    import time
    import webbrowser

    def run() -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                webbrowser.open(url)
                return
            except OSError:
                time.sleep(0.5)

    threading.Thread(target=run, daemon=True).start()


def serve(*, port: int = 5006, address: str = "127.0.0.1", store: str | os.PathLike | None = None,
          apps: list[str] | None = None, show: bool = False, token: bool | None = None) -> int:
    """Run ``panel serve`` on the apps until interrupted; ``store`` sets ``WORKBENCH_STORE``.

    ``token``: None decides by :func:`token_by_default`; True asks every request for a token
    (``$WORKBENCH_TOKEN`` if set, else a random one), printed in the address; False serves without one,
    refused for an address other machines can reach."""
    import secrets

    env = dict(os.environ)
    if store is not None:
        env["WORKBENCH_STORE"] = str(Path(store).resolve())
    check_token(address, token)
    why = "asked for with --token"
    if token is None:
        token, why = token_by_default(address)
    secret = ""
    if token:
        secret = env.get("WORKBENCH_TOKEN") or secrets.token_urlsafe(24)
        env["WORKBENCH_TOKEN"] = secret
    else:
        env.pop("WORKBENCH_TOKEN", None)
    cmd = serve_command(port=port, address=address, apps=apps, show=show, token=bool(token))
    host = "127.0.0.1" if address in ("0.0.0.0", "::", "") else address
    url = f"http://{host}:{port}/" + (f"?token={secret}" if token else "")
    print(f"workbench: serving {', '.join(apps or APPS)} at {url}", flush=True)
    if token:
        print(f"workbench: a token is required ({why}); open the address above, or pass --no-token "
              "on a single-user machine", flush=True)
    if show and token:
        _open_when_up(url, port)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
