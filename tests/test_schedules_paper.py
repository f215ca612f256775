"""Rebuild the per-step LR of the published loss-curve data sets (../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.schedules import ScheduleParamError
from workbench.schedules.paper import GPT100M_STEMS, MPL_STEMS, gpt100m_schedule, mpl_schedule


def _shared_data() -> Path:
    env = os.environ.get("WORKBENCH_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


DATA = _shared_data()
MPL = DATA / "mpl-loss-curves"
GPT = DATA / "gpt100m-3sched"
MPL_FILES = sorted(MPL.glob("csv_*/*.csv")) if MPL.is_dir() else []

pytestmark = pytest.mark.shared_data


@pytest.mark.skipif(not MPL.is_dir(), reason=f"shared data not found at {MPL} (set WORKBENCH_SHARED_DATA)")
def test_all_27_mpl_files_are_covered():
    assert len(MPL_FILES) == 27
    assert {f.stem for f in MPL_FILES} == set(MPL_STEMS)


@pytest.mark.skipif(not MPL.is_dir(), reason=f"shared data not found at {MPL} (set WORKBENCH_SHARED_DATA)")
@pytest.mark.parametrize("path", MPL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_mpl_rebuild_matches_logged_lr(path):
    d = pd.read_csv(path)
    sched, peak = mpl_schedule(path.stem)
    lr = peak * sched(d["step"].to_numpy())
    rel = np.abs(lr / d["lr"].to_numpy() - 1)
    assert rel.max() < 1e-3
    assert rel.max() < 1e-12  # in fact exact to rounding


@pytest.mark.skipif(not GPT.is_dir(), reason=f"shared data not found at {GPT} (set WORKBENCH_SHARED_DATA)")
@pytest.mark.parametrize("stem", GPT100M_STEMS)
def test_gpt100m_rebuild_matches_logged_lr(stem):
    d = pd.read_csv(GPT / f"{stem}.csv")
    sched, peak = gpt100m_schedule(stem)
    lr = peak * sched(d["step"].to_numpy())
    assert np.abs(lr / d["lr"].to_numpy() - 1).max() < 1e-12


def test_mpl_schedule_shapes_without_data():
    s, peak = mpl_schedule("cosine_24000")
    assert peak == 3e-4 and s(0) == 0.0 and s(2160) == 1.0  # papers' warmup: 0 at step 0
    assert peak * s(24000) == pytest.approx(3e-5, rel=1e-12)
    s, _ = mpl_schedule("wsd_20000_24000")
    assert s(22000) == pytest.approx(0.1 ** 0.5, rel=1e-12)  # geometric decay: halfway = sqrt(0.1)
    s, _ = mpl_schedule("wsdld_20000_24000")
    assert s(22000) == pytest.approx(0.55, rel=1e-12)
    s, _ = mpl_schedule("wsdcon_9")
    assert s(7999) == 1.0 and peak * s(8000) == pytest.approx(9e-5) and s.total_steps == 16000
    with pytest.raises(ScheduleParamError, match="stem"):
        mpl_schedule("cosine")
