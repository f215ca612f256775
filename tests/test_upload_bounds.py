"""Uploads are bounded (issue 12): file size, rows and step range, each refused with a message that
names the limit and its value; one huge step must not allocate memory proportional to it."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import workbench.fit.data as lf
from workbench.apps.curve_fitter import CurveFitter
from workbench.apps.law_fitter import LawFitter
from workbench.fit.data import CSVError, curves_from_frame, per_step_lr, read_csv


def curve_csv(last_step: float, n: int = 20, name: str | None = None) -> bytes:
    steps = [*np.linspace(0, 1000, n - 1).round().astype(int).tolist(), last_step]
    rows = ["step,lr,loss" + (",curve" if name else "")]
    rows += [f"{s:.0f},0.001,{3 - i / n:.4f}" + (f",{name}" if name else "") for i, s in enumerate(steps)]
    return ("\n".join(rows) + "\n").encode()


@pytest.fixture
def app(tmp_path):
    return LawFitter(store_path=str(tmp_path / "r.db"))


@pytest.fixture
def curves_app(tmp_path):
    return CurveFitter(store_path=str(tmp_path / "r.db"))


def test_one_huge_step_is_refused_without_allocating_it(app, curves_app) -> None:
    data = curve_csv(1e12)
    tracemalloc.start()
    try:
        with pytest.raises(CSVError, match=r"step 1e\+12.*limit of 10,000,000 steps per curve \(MAX_CURVE_STEPS"):
            curves_from_frame(read_csv(data))
        assert curves_app.source.load_csv(data, "huge.csv") is None  # in the page: a message, no traceback
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6, peak  # the per-step LR of 1e12 steps would be 8 TB
    assert "MAX_CURVE_STEPS" in curves_app.message.object and curves_app.message.alert_type == "danger"
    assert curves_app.curves == {}
    # the scaling-law upload that is also a curve table says why it is not usable as curves
    app.source.upload(data, "huge.csv")
    assert "MAX_CURVE_STEPS" in app.message.object
    with pytest.raises(CSVError, match="MAX_CURVE_STEPS"):
        per_step_lr(np.array([0, 10**13]), np.array([1e-3, 1e-3]))


def test_at_the_limit_is_accepted(monkeypatch) -> None:
    monkeypatch.setattr(lf, "MAX_CURVE_STEPS", 5000)
    curves = curves_from_frame(read_csv(curve_csv(5000)))
    assert len(curves["curve"][2]) == 5001
    with pytest.raises(CSVError, match="step 5001"):
        curves_from_frame(read_csv(curve_csv(5001)))


def test_total_steps_over_all_curves_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(lf, "MAX_TOTAL_STEPS", 3000)
    two = curve_csv(1500, name="a") + curve_csv(1600, name="b").split(b"\n", 1)[1]
    with pytest.raises(CSVError, match=r"3,100 steps together.*3,000 \(MAX_TOTAL_STEPS\)"):
        curves_from_frame(read_csv(two))


def test_file_size_and_rows_are_bounded(app, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(lf, "MAX_CSV_BYTES", 1000)
    big = b"x,y\n" + b"".join(f"{i},{i * 2}\n".encode() for i in range(200))
    assert len(big) > 1000
    with pytest.raises(CSVError, match=rf"{len(big):,} bytes, more than the limit of 1,000 bytes \(MAX_CSV_BYTES\)"):
        read_csv(big)
    path = tmp_path / "big.csv"
    path.write_bytes(big)
    with pytest.raises(CSVError, match="MAX_CSV_BYTES"):
        read_csv(path)
    app.source.upload(big, "big.csv")
    assert "MAX_CSV_BYTES" in app.message.object and app.df.empty
    monkeypatch.setattr(lf, "MAX_CSV_BYTES", 10**6)
    monkeypatch.setattr(lf, "MAX_CSV_ROWS", 150)
    with pytest.raises(CSVError, match=r"200 data rows, more than the limit of 150 rows \(MAX_CSV_ROWS\)"):
        read_csv(big)
    monkeypatch.setattr(lf, "MAX_CSV_ROWS", 200)
    assert len(read_csv(big)) == 200


def test_typed_schedule_length_is_bounded(curves_app) -> None:
    app = curves_app
    app.typed.build()
    if not app.typed.widgets or "total_steps" not in app.typed.widgets:
        pytest.skip("no typed schedule with total_steps in this registry")
    app.typed.set_values(total_steps=10**12)
    assert app.typed.add() is None
    assert "total_steps" in app.message.object and "MAX_CURVE_STEPS" in app.message.object


def test_law_json_upload_is_bounded(tmp_path) -> None:
    from workbench.apps.schedule_lab import MAX_LAW_BYTES, ScheduleLab

    lab = ScheduleLab(store_path=str(tmp_path / "r.db"))
    lab.load_law(b" " * (MAX_LAW_BYTES + 1))
    assert "MAX_LAW_BYTES" in lab.message.object and lab.message.alert_type == "danger"
