"""The runs page in headless Chromium against `workbench serve`: a filter, a sort, a tag and a note
survive a reload; selecting two runs shows their config diff (the differing keys highlighted) and
their curves (drawn with Bokeh: the page loads no plotly.js); run names are shown as text, not HTML. Export for papers: a PNG and an SVG downloaded
from the runs page and from the schedule lab have the size asked for, and the schedule lab's dashed
preview of the form is not in them. Screenshot: docs/screenshots/runs.png."""

from __future__ import annotations

import math
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import console_errors
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from conftest import Server

    from workbench.store import RunStore

    d = tmp_path_factory.mktemp("runs-page")
    st = RunStore(d / "runs.db")
    sid = st.create_sweep("lr-grid", {"spec": {"name": "lr-grid"}})
    for lr in (1e-3, 3e-3, 1e-2, 3e-2):
        for w in (64, 128):
            rid = st.create_run(f"modular-lr{lr:g}-w{w}", task="modular", sweep=sid,
                                config={"lr": lr, "steps": 200, "model_params": {"width": w}, "optimizer": "adamw"})
            for s in range(0, 201, 10):
                st.log(rid, s, {"train_loss": 2.5 * math.exp(-s * lr * 3) + 1 / w,
                                "test_loss": 2.6 * math.exp(-s * lr * 2) + 2 / w})
            st.set_status(rid, "finished")
    rid = st.create_run("<img src=x onerror=alert(1)>", task="grokking", config={"lr": 1e-3, "wd": 1.0})
    st.log(rid, 0, {"train_loss": 4.0})
    st.set_status(rid, "diverged")
    st.close()
    srv = Server(d / "runs.db", apps=["runs", "schedules"])
    yield srv
    srv.stop()


def open_runs(page, url: str) -> list[str]:
    errors = console_errors(page)
    page.set_viewport_size({"width": 1500, "height": 1100})
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".wb-runs-table .tabulator-row", timeout=60_000)
    page.wait_for_selector(".wb-runs-info:has-text(' of ')", timeout=60_000)
    page.wait_for_timeout(1500)
    return errors


def rows(page) -> list[str]:
    return page.locator(".wb-runs-table .tabulator-row .tabulator-cell[tabulator-field='name']").all_inner_texts()


def wait_rows(page, n: int, tries: int = 180) -> bool:
    """Whether the table holds ``n`` rows within ``tries`` polls of 0.25 s."""
    for _ in range(tries):
        page.wait_for_timeout(250)
        if len(rows(page)) == n:
            return True
    return False


def search(page, text: str, n: int) -> None:
    """Type a search and wait until the table holds ``n`` rows."""
    box = page.locator(".wb-query input").first
    for _attempt in range(2):  # a keystroke sent while the page still hydrates can be lost: type again once
        box.fill(text)
        box.press("Enter")
        if wait_rows(page, n):
            return
    raise AssertionError(f"search {text!r}: rows {rows(page)}, url {page.url}")


def test_filter_sort_tag_note_persist_across_reload(served, page) -> None:
    errors = open_runs(page, served.url + "/runs")
    search(page, "onerror", 1)
    assert rows(page) == ["<img src=x onerror=alert(1)>"]  # shown as text
    assert page.locator(".wb-runs-table img").count() == 0
    search(page, "w128", 4)
    page.locator(".tabulator-col[tabulator-field='final.test_loss'] .tabulator-col-title").first.click()
    page.wait_for_function("() => location.search.includes('sort=final.test_loss')", timeout=45_000)
    # the sorted table is redrawn after the URL changes: read it once it holds its rows again (read mid-redraw,
    # it was empty once in a fresh-clone CI run)
    assert wait_rows(page, 4), f"rows after the sort: {rows(page)}"
    ordered = rows(page)
    assert ordered == ["modular-lr0.03-w128", "modular-lr0.01-w128", "modular-lr0.003-w128", "modular-lr0.001-w128"]
    page.locator(".wb-runs-table .tabulator-row input[type='checkbox']").nth(1).check()  # lr0.01-w128
    page.wait_for_function("() => location.search.includes('sel=')", timeout=45_000)
    page.wait_for_selector(".wb-runs-info:has-text('1 selected')", timeout=45_000)  # the server has it
    page.locator(".wb-tags input").first.fill("keep, <b>bold</b>")
    page.locator(".wb-tags input").first.press("Tab")  # commit the field (a TextInput sends on change)
    page.locator(".wb-note textarea").first.fill("loss spike at step 40 & recovered")
    page.locator(".wb-note textarea").first.press("Tab")
    page.locator(".wb-save-notes button").first.click()
    page.wait_for_selector(".tabulator-cell[tabulator-field='note']:has-text('loss spike at step 40')",
                           timeout=45_000)
    page.wait_for_selector(".tabulator-cell[tabulator-field='tags']:has-text('keep')", timeout=45_000)
    from workbench.store import RunStore

    # what was written, read by another connection: the run the user ticked got it (a selection index taken
    # from the rows' order before a sort once sent the tags and note to another run)
    st = RunStore(served.store_path, readonly=True, mark_interrupted=False)
    ann = st.annotations().set_index("run")
    rid = st.runs().set_index("name").loc["modular-lr0.01-w128", "id"]
    assert ann.loc[rid, "tags"] == ["keep", "<b>bold</b>"]
    assert ann.loc[rid, "note"] == "loss spike at step 40 & recovered"
    st.close()

    page.reload(timeout=120_000)
    page.wait_for_selector(".wb-runs-table .tabulator-row", timeout=60_000)
    page.wait_for_timeout(1500)
    assert page.locator(".wb-query input").first.input_value() == "w128"
    assert rows(page) == ordered  # same filter, same order
    row = page.locator(".wb-runs-table .tabulator-row", has_text="modular-lr0.01-w128")
    # the restored session re-sends the table (filter, sort, selection from the URL): wait for its last state
    expect(row.locator(".tabulator-cell[tabulator-field='tags']")).to_have_text("keep, <b>bold</b>", timeout=30_000)
    expect(row.locator(".tabulator-cell[tabulator-field='note']")).to_have_text(
        "loss spike at step 40 & recovered", timeout=30_000)
    assert page.locator(".wb-runs-table b").count() == 0  # the tag is text, not markup
    assert not [e for e in errors if "favicon" not in e], errors


def test_selecting_two_runs_shows_their_config_diff(served, page, tmp_path) -> None:
    errors = open_runs(page, served.url + "/runs?q=lr0.001")
    assert sorted(rows(page)) == ["modular-lr0.001-w128", "modular-lr0.001-w64"]
    boxes = page.locator(".wb-runs-table .tabulator-row input[type='checkbox']")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.wait_for_selector("table.wb-config-diff", timeout=45_000)
    diff = page.locator("table.wb-config-diff tr.wb-diff")
    assert diff.count() == 1
    assert diff.first.locator("td").all_inner_texts() == ["model_params.width", "64", "128"]
    same = page.locator("table.wb-config-diff tbody tr:not(.wb-diff) td:first-child").all_inner_texts()
    assert sorted(same) == ["lr", "optimizer", "steps"]
    want = {"modular-lr0.001-w64", "modular-lr0.001-w128"}
    for _ in range(180):  # the overlaid curves of the two runs: a legend entry each, drawn on a canvas
        if want <= set(legend_labels(page)) and page.locator("canvas").count():
            break
        page.wait_for_timeout(250)
    assert want <= set(legend_labels(page))
    assert set(line_names(page)) == {f"{r} {m}" for r in want for m in ("train_loss", "test_loss")}
    assert not page.evaluate("() => !!window.Plotly"), "the runs page loaded plotly.js"
    page.locator(".wb-runs-table").scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)

    # export for papers: the requested size in PNG and SVG
    set_size(page, 480, 300, 2)
    png = download(page, "png", tmp_path)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (960, 600)
    svg = ET.fromstring(download(page, "svg", tmp_path))
    assert (svg.get("width"), svg.get("height")) == ("480", "300")
    assert "modular-lr0.001-w64" in ET.tostring(svg, encoding="unicode")

    # a run hidden from the legend is not exported (exactly the visible lines). A click on a legend entry
    # (click_policy "hide") sets its lines' `visible`; here one line of the run is hidden that way, and the
    # figure's links hide its other lines (every panel) in the browser, which sends them to the server
    assert page.evaluate(HIDE_JS, "modular-lr0.001-w64 train_loss") == 1
    for _ in range(120):
        if set(line_names(page, visible=False)) == {"modular-lr0.001-w64 train_loss", "modular-lr0.001-w64 test_loss"}:
            break
        page.wait_for_timeout(250)
    assert set(line_names(page, visible=False)) == {"modular-lr0.001-w64 train_loss", "modular-lr0.001-w64 test_loss"}
    page.wait_for_timeout(1000)  # the change reaches the server's copy of the figure
    text = download(page, "svg", tmp_path).decode()
    assert "modular-lr0.001-w128" in text and "modular-lr0.001-w64" not in text
    csv = download(page, "configs", tmp_path).decode()
    assert csv.splitlines()[0].startswith("run,run_name,run_tags,run_note,")
    assert not [e for e in errors if "favicon" not in e], errors


HIDE_JS = """(name) => { let n = 0; for (const d of window.Bokeh.documents) for (const m of d.all_models)
    if (m.constructor.__name__ === 'GlyphRenderer' && m.name === name) { m.visible = false; n += 1; } return n; }"""


def legend_labels(page) -> list[str]:
    """Labels of the legend items of every Bokeh figure in the page (the schedule lab draws with Bokeh)."""
    return page.evaluate("""() => { const out = [];
        for (const d of (window.Bokeh && window.Bokeh.documents) || []) for (const m of d.all_models)
          if (m.constructor.__name__ === 'LegendItem' && m.label) out.push(typeof m.label === 'string' ? m.label
              : (m.label.value !== undefined ? m.label.value : String(m.label)));
        return out; }""")


def line_names(page, visible: bool = True) -> list[str]:
    """Names of the (visible, or hidden) line renderers of every Bokeh figure in the page."""
    return page.evaluate("""(vis) => { const out = [];
        for (const d of (window.Bokeh && window.Bokeh.documents) || []) for (const m of d.all_models)
          if (m.constructor.__name__ === 'GlyphRenderer' && m.name && m.visible === vis) out.push(m.name);
        return out; }""", visible)


def set_size(page, width: int, height: int, scale: float) -> None:
    for cls, v in (("width", width), ("height", height), ("scale", scale)):
        box = page.locator(f".wb-export-{cls} input").first
        box.fill(str(v))
        box.press("Tab")
    page.wait_for_timeout(800)


def download(page, fmt: str, tmp_path: Path) -> bytes:
    with page.expect_download(timeout=60_000) as dl:
        page.locator(f".wb-export-{fmt} button, .wb-export-{fmt} a").first.click()
    path = tmp_path / f"export.{fmt}"
    dl.value.save_as(path)
    return path.read_bytes()


def test_schedule_lab_export_has_the_size_and_no_preview(served, page, tmp_path) -> None:
    errors = console_errors(page)
    page.set_viewport_size({"width": 1500, "height": 1100})
    page.goto(served.url + "/schedules", timeout=120_000)
    page.wait_for_selector("canvas", timeout=60_000)
    page.wait_for_timeout(1500)
    shown = legend_labels(page)
    previews = [n for n in shown if n.startswith("preview")]
    assert previews, shown  # the page draws the form's schedule as a dashed preview
    set_size(page, 500, 320, 1.5)
    png = download(page, "png", tmp_path)
    assert struct.unpack(">II", png[16:24]) == (750, 480)
    svg = download(page, "svg", tmp_path)
    root = ET.fromstring(svg)
    assert (root.get("width"), root.get("height")) == ("500", "320")
    text = svg.decode()
    assert not any(p in text for p in previews)
    assert not re.search(r"stroke: ?rgb\(68, ?68, ?68\)", text)  # no dashed grey (#444444) line either
    assert not [e for e in errors if "favicon" not in e], errors
