"""The scaling-law fitter's column-mapping step in headless Chromium: choosing a law that needs the unique
tokens U (the data-constrained law, Muennighoff et al. 2023) shows a column choice for them and a message
while none is mapped; choosing the column writes it into the Mapping field and the message goes."""

from __future__ import annotations

import pytest
from conftest import ROOT, console_errors
from test_apps_law_fitter import data_constrained_csv
from test_serve_security import open_upload

SHOTS = ROOT / "docs" / "screenshots"


@pytest.mark.browser
def test_unique_tokens_column_is_asked_for(server, page, tmp_path) -> None:
    errors = console_errors(page)
    upload = open_upload(page, server.url + "/laws", ".wb-csv-upload")
    csv = tmp_path / "repeats.csv"
    csv.write_bytes(data_constrained_csv())
    upload.set_input_files(str(csv))
    page.wait_for_selector("text=Loaded repeats.csv", timeout=60_000)
    assert page.locator(".wb-input-U").count() == 0 or not page.locator(".wb-input-U").first.is_visible()
    pick = page.locator(".choices input").first  # the Laws box
    pick.click()
    pick.fill("data_constrained")
    page.locator(".choices__list--dropdown .choices__item--choice", has_text="data_constrained").first.click()
    page.keyboard.press("Escape")
    page.wait_for_selector("text=needs the unique tokens", timeout=60_000)
    select = page.locator(".wb-input-U select")
    assert select.is_visible() and "unique_tokens" in select.inner_text()
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "law-fitter-unique-tokens.png"), full_page=True)
    select.select_option("unique_tokens")
    mapping = page.locator(".bk-input-group").filter(has_text="Mapping (input=column").locator("input").first
    page.wait_for_function("(el) => el.value.includes('U=unique_tokens')", arg=mapping.element_handle(),
                           timeout=60_000)
    page.wait_for_selector("text=needs the unique tokens", state="hidden", timeout=60_000)
    assert page.get_by_role("button", name="Confirm mapping").is_visible()  # the rest still awaits the user
    assert not [e for e in errors if "favicon" not in e], errors
