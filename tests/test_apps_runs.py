"""The runs page at the param level (no browser): per-parameter metric columns (``weight_norm/<param>``)
are left out of the table until asked for (or sorted by), the page says how many, and search still
matches their values; the compare view draws the selected runs with Bokeh and exports them with Plotly,
without a run hidden from the legend."""

from __future__ import annotations

import pytest
from bokeh.models import GlyphRenderer

from workbench.apps.runs import RunsPage
from workbench.store import RunStore


@pytest.fixture()
def page(tmp_path):
    st = RunStore(tmp_path / "runs.db")
    for i, lr in enumerate((1e-3, 1e-2)):
        rid = st.create_run(f"run{i}", task="modular", config={"lr": lr})
        for s in range(0, 50, 10):
            st.log(rid, s, {"train_loss": 2.0 - s * lr, "test_loss": 2.1 - s * lr,
                            "weight_norm/head.weight": 3.0 + i + s / 100, "weight_norm/tok.weight": 1.5})
        st.set_status(rid, "finished")
    st.close()
    p = RunsPage(store_path=str(tmp_path / "runs.db"))
    p.view()
    return p


def test_per_parameter_columns_only_when_asked(page) -> None:
    cols = list(page.table.value.columns)
    assert "final.train_loss" in cols and "best.test_loss" in cols
    assert not [c for c in cols if "/" in c]
    assert "4 per-parameter metric columns not shown" in page.info.object
    page.all_columns = True
    cols = list(page.table.value.columns)
    assert {"final.weight_norm/head.weight", "best.weight_norm/head.weight", "final.weight_norm/tok.weight",
            "best.weight_norm/tok.weight"} <= set(cols)
    assert "not shown" not in page.info.object
    page.all_columns = False
    page.sort_by, page.descending = "final.weight_norm/head.weight", True  # sorted by it: the column is shown
    assert [c for c in page.table.value.columns if "/" in c] == ["final.weight_norm/head.weight"]
    assert page.table.sorters == [{"field": "final.weight_norm/head.weight", "dir": "desc"}]
    page.sort_by = ""
    page.query = "4.4"  # run1's final head weight norm (3 + 1 + 0.4): search reads hidden columns too
    assert page.table.value["name"].tolist() == ["run1"]


def test_compare_draws_with_bokeh_and_exports_the_visible_runs(page) -> None:
    ids = page._all["id"].tolist()
    page.selected = ids
    assert page.curves_box.visible
    lines = {r.name: r for r in page.curves.object.select({"type": GlyphRenderer})}
    assert set(lines) == {f"run{i} {m}" for i in (0, 1) for m in ("train_loss", "test_loss")}
    assert sorted(t.name for t in page.shown_figure().data) == ["run0", "run0", "run1", "run1"]
    lines["run0 test_loss"].visible = False  # what a click on run0's legend entry sends back
    assert sorted(t.name for t in page.shown_figure().data) == ["run1", "run1"]
    assert set(page.data()["run"]) == set(ids)  # the data export keeps every selected run
    page.selected = ids[:1]
    assert not page.curves_box.visible and page.shown_figure() is None
