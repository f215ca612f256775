"""The schedule lab, scaling-law fitter, curve-law fitter and sweep board pages in headless Chromium against
`workbench serve`: each loads without console errors, a widget change changes the figure, a malformed CSV
upload shows its message (scaling-law fitter), Chinchilla's L(N, D) is drawn as predicted vs observed with
iso-N curves over compute (laws.png), a schedule-aware law fitted on uploaded loss curves draws measured and
predicted curves (curve-law fitter, curves.png), the sweep board fits a 1500 px and a 1280 px wide viewport
without a horizontal scrollbar, an export click downloads a valid PNG; screenshots go to docs/screenshots."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import console_errors

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from conftest import Server

    from workbench.store import RunStore

    d = tmp_path_factory.mktemp("apps")
    st = RunStore(d / "runs.db")  # a finished sweep so the sweep board has something to show
    sid = st.create_sweep("demo", {"spec": {"name": "demo", "axes": {"lr": [1e-3, 1e-2]}}})
    for lr in (1e-3, 3e-3, 1e-2):
        for width in (64, 128):
            rid = st.create_run(f"lr{lr}-w{width}", config={"lr": lr, "model_params": {"width": width}, "steps": 10},
                                sweep=sid)
            for step in (0, 10):
                st.log(rid, step, {"test_loss": 1 + abs(lr - 3e-3) * 100 + 10 / width + (10 - step) / 10})
            st.set_status(rid, "finished")
    st.close()
    srv = Server(d / "runs.db", apps=["schedules", "laws", "curves", "sweeps"])
    yield srv
    srv.stop()


def open_page(page, url: str, drawn: str = ".js-plotly-plot") -> list[str]:
    """Open ``url`` and wait until a figure is drawn (``drawn``: a plotly plot; ``canvas`` for Bokeh)."""
    errors = console_errors(page)
    page.set_viewport_size({"width": 1500, "height": 1100})
    page.goto(url)
    page.wait_for_selector(drawn, timeout=60_000)
    page.wait_for_timeout(1500)
    return errors


SIGNATURE_JS = """() => {
  const out = [];
  const walk = (root) => {
    root.querySelectorAll('*').forEach((el) => {
      if (el.classList && el.classList.contains('js-plotly-plot')) {
        const fl = el._fullLayout || {};
        out.push([(el._fullData || []).map(t => [t.name, (t.y || []).length, String(Array.from(t.y || []).slice(0, 20))]),
                  fl.xaxis && fl.xaxis.range, fl.yaxis && fl.yaxis.type]);
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    });
  };
  walk(document);
  // Bokeh figures (schedule lab, sweep board, law fitters): the data sources of lines and points named wb-...,
  // and the y scale of figures named wb-...
  for (const d of (window.Bokeh && window.Bokeh.documents) || [])
    for (const m of d.all_models) {
      if (m.name && m.name.startsWith('wb-') && m.data && m.data.y)
        out.push([m.name, m.data.y.length, String(Array.from(m.data.y).slice(0, 20))]);
      if (m.name && m.name.startsWith('wb-') && m.y_scale)
        out.push([m.name, m.y_scale.constructor.__name__]);
    }
  return JSON.stringify(out);
}"""


def plot_signature(page) -> str:
    """Names and values of the traces of every plotly figure in the page (through shadow roots) and of the
    named line sources of its Bokeh figures."""
    return page.evaluate(SIGNATURE_JS)


def wait_change(page, before: str, timeout: float = 20_000) -> str:
    page.wait_for_function(f"(b) => ({SIGNATURE_JS})() !== b", arg=before, timeout=timeout)
    return plot_signature(page)


def export_png(page, tmp_path: Path) -> None:
    with page.expect_download(timeout=60_000) as dl:
        page.locator(".wb-export-png button, .wb-export-png a").first.click()
    path = tmp_path / "export.png"
    dl.value.save_as(path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 2000


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_schedule_lab_page(served, page, tmp_path):
    errors = open_page(page, served.url + "/schedules", drawn="canvas")
    before = plot_signature(page)
    box = page.locator("input.bk-input").first  # total_steps of the generated form
    box.fill("2000")
    box.press("Enter")
    after = wait_change(page, before)
    assert after != before
    page.get_by_role("button", name="Add to chosen").click()
    page.wait_for_timeout(1000)
    # an invalid value shows the schedule library's message
    warm = page.locator(".bk-input-group").filter(has_text="warmup_steps").locator("input").first
    warm.fill("999999")
    warm.press("Enter")
    page.wait_for_selector("text=warmup longer than the run", timeout=20_000)
    warm.fill("100")
    warm.press("Enter")
    page.wait_for_timeout(1000)
    export_png(page, tmp_path)
    shot(page, "schedules")
    assert not errors, errors


def test_law_fitter_page(served, page, tmp_path):
    errors = open_page(page, served.url + "/laws", drawn="canvas")
    bad = tmp_path / "bad.csv"
    bad.write_text("size,loss\n1,2,3,4\n5,6\n")
    page.locator(".wb-csv-upload input[type='file'], input[type='file']").first.set_input_files(str(bad))
    page.wait_for_selector("text=line 2 has 4 fields", timeout=20_000)
    good = tmp_path / "good.csv"
    good.write_text("size,loss\n" + "\n".join(f"{x},{1.5 + 4 * x ** -0.5}" for x in (10, 30, 100, 300, 1e3, 3e3,
                                                                                       1e4, 3e4, 1e5)) + "\n")
    page.locator("input[type='file']").first.set_input_files(str(good))
    page.wait_for_selector("text=Loaded good.csv", timeout=20_000)
    page.wait_for_selector("text=Proposed mapping: x=size,L=loss", timeout=20_000)  # shown, not used unasked
    page.get_by_role("button", name="Confirm mapping").click()
    page.wait_for_selector("text=Mapping confirmed", timeout=20_000)
    before = plot_signature(page)
    page.get_by_role("button", name="Fit").click()
    after = wait_change(page, before, timeout=60_000)
    assert "power_law" in after
    export_png(page, tmp_path)
    assert not [e for e in errors if "favicon" not in e], errors


def test_law_fitter_two_input_law_page(served, page):
    """The page opens on Chinchilla's points (data/); L(N, D) is shown as predicted vs observed with the line
    y = x and as iso-N curves over compute, never as a line through points sorted by N."""
    errors = open_page(page, served.url + "/laws", drawn="canvas")
    page.wait_for_selector("text=svg_extracted_data.csv", timeout=20_000)
    before = plot_signature(page)
    page.get_by_role("button", name="Fit").click()
    after = wait_change(page, before, timeout=240_000)
    assert "y = x" in after and "chinchilla (fitted)" in after and "chinchilla (held out)" in after
    assert "N = " in after  # the iso-N curves
    page.wait_for_timeout(1500)
    shot(page, "laws")
    assert not [e for e in errors if "favicon" not in e], errors


def test_law_fitter_schedule_law_page(served, page, tmp_path):
    from test_apps_curve_fitter import curves_csv, syn_lr

    errors = open_page(page, served.url + "/curves", drawn="canvas")
    bad = tmp_path / "bad_curves.csv"
    bad.write_text("step,loss\n10,3.0\n20,2.9\n")
    page.locator(".wb-curve-upload input[type='file']").set_input_files(str(bad))
    page.wait_for_selector("text=missing ['lr']", timeout=20_000)  # the message is in the page
    good = tmp_path / "curves.csv"
    good.write_bytes(curves_csv({"cosine": syn_lr("cosine", min_ratio=0.1), "constant": syn_lr("constant"),
                                 "wsd": syn_lr("wsd", decay_fraction=0.2, min_ratio=0.1)}))
    page.locator(".wb-curve-upload input[type='file']").set_input_files(str(good))
    page.wait_for_selector("text=3 curve(s)", timeout=20_000)
    points = page.locator(".bk-input-group").filter(has_text="Points per curve in the fit").locator("input").first
    points.fill("20")
    points.press("Enter")
    before = plot_signature(page)
    page.locator(".wb-fit-curves button").click()
    page.wait_for_selector("text=Fitting multi_power", timeout=20_000)  # status while the thread runs
    page.wait_for_selector("text=Fitted multi_power", timeout=180_000)
    after = wait_change(page, before)
    for name in ("cosine", "constant", "wsd"):
        assert f"{name} (held out): predicted" in after or f"{name} (fitted on): predicted" in after
    assert "wsd (held out): measured" in after
    # a schedule nobody trained, typed in from the registry
    page.get_by_text("Predict an untrained schedule").click()
    total = page.locator(".bk-input-group").filter(has_text="total_steps").locator("input").last
    total.fill("1500")
    total.press("Enter")
    page.wait_for_timeout(500)
    before = plot_signature(page)
    page.get_by_role("button", name="Add schedule to predict").click()
    after = wait_change(page, before, timeout=60_000)
    assert "(not trained): predicted" in after
    page.wait_for_selector("text=not trained", timeout=20_000)  # its row in the metrics table
    page.wait_for_timeout(1000)
    shot(page, "curves")
    assert not [e for e in errors if "favicon" not in e], errors


def test_sweep_board_page(served, page, tmp_path):
    errors = open_page(page, served.url + "/sweeps", drawn="canvas")
    page.wait_for_selector("text=demo", timeout=20_000)
    before = plot_signature(page)
    assert '"wb-sweep|0",3' in before and '"LinearScale"' in before, before  # one line: the 3 LRs' means
    page.screenshot(path=str(tmp_path / 'before.png'))
    page.locator("input[type='checkbox']:visible").nth(1).check()  # log y: the y axis type changes
    # the new figure replaces the old one: wait for its log scale, not for the first change seen
    page.wait_for_function(f"() => ({SIGNATURE_JS})().includes('LogScale')", timeout=20_000)
    after = plot_signature(page)
    assert after != before and '"wb-sweep|0",3' in after, after
    export_png(page, tmp_path)
    # the definition's members table joins the page at the first validation (not an empty table at load)
    tables = page.locator(".tabulator").count()
    page.get_by_role("button", name="Validate").click()
    page.wait_for_selector("text=is valid", timeout=20_000)
    page.locator(".tabulator").nth(tables).wait_for(timeout=20_000)
    shot(page, "sweeps")
    # the first view needs no plotly.js; it is loaded after first paint, for the parallel-coordinates tab
    html = page.request.get(served.url + "/sweeps").text()
    assert not [src for src in re.findall(r'<script[^>]*src="([^"]*)"', html) if "plotly" in src]
    page.get_by_text("Parallel coordinates", exact=True).first.click()
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    assert page.evaluate("() => typeof window.Plotly") == "object"
    # let the shown plot settle: leaving its tab removes (purges) it, and a resize plotly.js had queued for
    # it then reads the purged layout ("reading '_guiEditing'", once in a fresh-clone CI run)
    page.locator(".js-plotly-plot .parcoords .y-axis").nth(1).wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    # the result tabs are dynamic (sent when opened): the importance tab draws its view when opened
    page.get_by_text("Importance", exact=True).first.click()
    page.get_by_text(re.compile("fANOVA|Importance unavailable|No objective")).first.wait_for(timeout=60_000)
    assert not errors, errors


@pytest.mark.parametrize("width", [1500, 1280])
def test_sweep_board_fits_the_viewport(served, page, width):
    """No horizontal scrollbar: the document is no wider than the viewport (controls wrap, tables and
    figures stretch)."""
    errors = console_errors(page)
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(served.url + "/sweeps")
    page.wait_for_selector("canvas", timeout=60_000)
    page.wait_for_selector("text=demo", timeout=20_000)
    page.wait_for_timeout(1500)
    sw, cw = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert cw == width and sw <= width, (sw, width)
    assert not errors, errors


def test_schedule_lab_optimise(served, page, tmp_path):
    """Optimise in the browser: with an uploaded law (LR-annealing, Tissue et al. 2024, FitResult JSON) and a
    chosen cosine, the optimised schedule joins the chosen table and its predicted final loss is shown."""
    from test_apps_schedule_lab import annealing_curves

    from workbench.fit import FitData, fit, get_law

    law = get_law("lr_annealing")
    curves = annealing_curves(law, np.array([2.628, 0.429, 0.55, 0.411]))
    path = tmp_path / "law.json"
    fit(law, FitData.from_curves(curves)).to_json(str(path))
    errors = open_page(page, served.url + "/schedules", drawn="canvas")
    box = page.locator("input.bk-input").first  # total_steps of the generated form
    box.fill("600")
    box.press("Enter")
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Add to chosen").click()
    page.wait_for_timeout(1000)
    page.locator("input[type=file]").first.set_input_files(str(path))
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Optimise").click()
    page.wait_for_selector("text=Optimised schedule added", timeout=120_000)
    page.wait_for_timeout(2000)
    shot(page, "schedules_optimise")
    assert page.locator("text=optimized").count() >= 1      # in the chosen table and the predictions
    assert page.get_by_role("button", name="Train it and the chosen baselines").count() == 1
    assert not errors, errors
