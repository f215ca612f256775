"""The papers' data shipped in data/ and the one resolver (workbench.datasets) everything reads it through."""

from __future__ import annotations

import filecmp

import pandas as pd
import pytest

from workbench.datasets import REPO_DATA, SHIPPED, DatasetNotFound, data_dir, data_dirs
from workbench.errors import WorkbenchError


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_sets_resolve_to_the_repository_with_a_source_note(name, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_SHARED_DATA", str(tmp_path))  # a shared folder must not shadow data/
    (tmp_path / name).mkdir()
    d = data_dir(name)
    assert d == REPO_DATA / name
    assert (d / "SOURCE.md").read_text().strip()
    if name != "chinchilla-epoch":  # MIT sets carry their licence text
        assert "MIT License" in (d / "LICENSE").read_text()


def test_non_shipped_sets_come_only_from_the_shared_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_SHARED_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFound, match="steplaw"):
        data_dir("steplaw")
    (tmp_path / "steplaw").mkdir()
    assert data_dir("steplaw") == tmp_path / "steplaw"
    assert data_dirs() == [REPO_DATA, tmp_path]


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", ".hidden"])
def test_bad_names_are_refused(bad):
    with pytest.raises(WorkbenchError, match="data set"):
        data_dir(bad)


def test_unlicensed_sets_do_not_ship():
    assert not (REPO_DATA / "steplaw").exists() and not (REPO_DATA / "gpt100m-3sched").exists()


def test_chinchilla_points_ship_as_facts_only():
    df = pd.read_csv(data_dir("chinchilla-epoch") / "svg_extracted_data.csv")
    assert list(df.columns) == ["Model Size", "Training FLOP", "loss"]
    assert len(df) == 245 and df.notna().all().all()
    assert df["Model Size"].between(5e7, 2e10).all() and df["loss"].between(2.0, 5.1).all()


@pytest.mark.shared_data
def test_shipped_copies_equal_the_project_data(shared_data):
    """Verbatim copies are byte-identical; the Chinchilla facts round-trip exactly."""
    for name in ("mpl-loss-curves", "gadre-overtraining"):
        for f in (REPO_DATA / name).rglob("*"):
            if f.is_file() and f.name not in ("SOURCE.md", "LICENSE"):
                assert filecmp.cmp(f, shared_data / name / f.relative_to(REPO_DATA / name), shallow=False), f
    up = pd.read_csv(shared_data / "chinchilla-epoch" / "svg_extracted_data.csv")
    ours = pd.read_csv(REPO_DATA / "chinchilla-epoch" / "svg_extracted_data.csv")
    pd.testing.assert_frame_equal(ours, up[ours.columns.tolist()], check_exact=True)
