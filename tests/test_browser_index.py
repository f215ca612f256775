"""The index page in headless Chromium: every app linked, no console errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import console_errors

from workbench.apps import APPS

SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


@pytest.mark.browser
def test_index_lists_every_app_without_console_errors(server, page) -> None:
    errors = console_errors(page)
    page.goto(server.url + "/", wait_until="networkidle")
    links = page.locator("#apps a")
    assert links.count() == len(APPS)
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert sorted(h.strip("./") for h in hrefs) == sorted(APPS)
    for info in APPS.values():
        assert page.get_by_text(info.title).count() >= 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1100, "height": 520})
    page.screenshot(path=str(SHOTS / "index.png"))
    assert not errors, errors
