"""Sweep figures carry the data they were given."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.figures.sweeps import (
    final_metric_figure,
    parallel_coordinates_figure,
    performance_profile_figure,
)
from workbench.sweeps.algoperf import performance_profile, score


def test_profile_figure_traces_match_profile():
    t = pd.DataFrame({"w1": [10.0, 20.0], "w2": [40.0, math.inf]}, index=["cosine", "wsd"])
    prof = performance_profile(t, taus=[1, 2, 3, 4])
    fig = performance_profile_figure(prof, score(t))
    assert [tr.name.split(" ")[0] for tr in fig.data] == ["cosine", "wsd"]
    np.testing.assert_array_equal(fig.data[0].y, [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(fig.data[1].y, [0.0, 0.5, 0.5, 0.5])
    assert "score 1.000" in fig.data[0].name and "score 0.333" in fig.data[1].name


def test_final_metric_and_parallel_coordinates():
    df = pd.DataFrame({"lr": [1e-3, 1e-3, 1e-2, 1e-2], "schedule": ["cos", "lin", "cos", "lin"],
                       "test_loss": [1.0, 2.0, 3.0, 4.0]})
    fig = final_metric_figure(df, "lr", "test_loss", color="schedule", log_x=True)
    means = [tr for tr in fig.data if tr.mode == "lines+markers"]
    assert [list(tr.y) for tr in means] == [[1.0, 3.0], [2.0, 4.0]]
    pc = parallel_coordinates_figure(df, ["lr", "schedule"], "test_loss")
    dims = pc.data[0].dimensions
    assert dims[1].ticktext == ("cos", "lin") and list(dims[1].values) == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="momentum"):
        final_metric_figure(df, "momentum", "test_loss")
