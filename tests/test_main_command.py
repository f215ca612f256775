"""The README's main command, `make serve`, brings up `panel serve` on loopback and the index page
loads in headless Chromium with a link to every app."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, console_errors, free_port, wait_http

from workbench.apps import APPS


@pytest.mark.browser
def test_make_serve_loads_in_chromium(page, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "WORKBENCH_STORE": str(tmp_path / "runs.db")}
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(["make", "serve", f"PORT={port}"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/", timeout=300)
        errors = console_errors(page)
        page.goto(f"http://127.0.0.1:{port}/")
        links = page.locator("#apps a")
        assert sorted(a.get_attribute("href").lstrip("./") for a in links.all()) == sorted(APPS)
        assert "Live monitor" in page.inner_text("#apps")
        page.screenshot(path=str(tmp_path / "index.png"))
        assert errors == []
        # bound to loopback only
        if shutil.which("ss"):
            out = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
            listening = [ln for ln in out.splitlines() if f":{port} " in ln]
            assert listening and all("127.0.0.1" in ln for ln in listening), listening
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()
