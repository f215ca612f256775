"""Shared fixtures: the ../shared/data folder, a fresh run store, `panel serve` in a subprocess,
and Playwright's Chromium from the system (no `playwright install`, no network)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def shared_data_dir() -> Path | None:
    env = os.environ.get("WORKBENCH_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real measurements from the papers); skips where a clone has none."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is absent (it ships beside the repo in CI, not with a user's clone)")
    return path


@pytest.fixture
def store(tmp_path: Path):
    from workbench.store import RunStore

    s = RunStore(tmp_path / "runs.db")
    yield s
    s.close()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run a test with one torch thread: on a shared 2-core machine tiny ops are far faster so."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def console_errors(page) -> list[str]:
    """Start collecting a Playwright page's console errors and uncaught exceptions into a list."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    last: Exception | None = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=60) as r:  # a first page build can take > 5 s on a loaded box
                if r.status == 200:
                    return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s: {last}")


class Server:
    """A `workbench serve` (i.e. `panel serve`) subprocess on a free loopback port."""

    def __init__(self, store_path: Path, apps: list[str] | None = None, env: dict | None = None,
                 token: str | None = None) -> None:
        """``token``: serve with ``--token`` and this token (``self.query`` is then ``?token=...``); by
        default ``--no-token``, so the fixture works the same on a machine with several login users."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store_path = store_path
        self.token = token
        self.query = f"?token={token}" if token else ""
        cmd = [sys.executable, "-m", "workbench", "serve", "--port", str(self.port), "--store", str(store_path),
               "--token" if token else "--no-token"]
        if apps:
            cmd += ["--apps", *apps]
        env = {**os.environ, **(env or {})}
        env.pop("WORKBENCH_TOKEN", None)
        if token:
            env["WORKBENCH_TOKEN"] = token
        self.log = open(store_path.parent / f"serve-{self.port}.log", "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        try:
            wait_http(self.url + (f"/{apps[0]}" if apps and token else "/") + self.query)
        except Exception:
            self.stop()
            raise RuntimeError(f"panel serve failed: {Path(self.log.name).read_text()[-3000:]}") from None

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """All apps served once for the test session, on a store in a temp dir (reference runs loaded
    by the apps themselves where they do that)."""
    d = tmp_path_factory.mktemp("serve")
    srv = Server(d / "runs.db")
    yield srv
    srv.stop()


# ---------------------------------------------------------------- Playwright with the system Chromium
def _have_chromium() -> bool:
    return Path(CHROMIUM).exists()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_browser = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords and not _have_chromium():
            item.add_marker(skip_browser)
