"""The sweep board's optional result views, computed from the store and the results table: the fANOVA
hyperparameter importance (``workbench.importance``) and the AlgoPerf performance profile (Dahl et al.
2023, ``workbench.sweeps.algoperf``). Each returns what to draw, or ``None`` and a message saying why
the view is unavailable (these views are optional: a failure is shown in the page, never raised)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench.apps.base import escape
from workbench.figures.sweeps import importance_figure, performance_profile_figure
from workbench.importance import hyperparameter_importance
from workbench.runs_table import lower_is_better
from workbench.sweeps import algoperf
from workbench.sweeps.progress import stored_spec


def importance_view(table: pd.DataFrame, objective: str | None, mode: str | None,
                    from_spec: bool) -> tuple[go.Figure | None, str]:
    """fANOVA importance of the varied hyperparameters (``cfg.*`` but the seed) for ``objective``
    (``mode`` min/max; None: by the metric's name), and the line shown above it."""
    if table.empty or not objective or objective not in table:
        return None, "*No objective metric in this sweep's results yet.*"
    name = objective.split(".", 1)[-1]
    mode = mode or ("min" if lower_is_better(name) else "max")
    params = [c for c in table.columns if c.startswith("cfg.") and c != "cfg.seed"]
    try:
        imp = hyperparameter_importance(table, objective, params, mode=mode)
    except Exception as e:  # noqa: BLE001 - optional view: say why it is missing
        return None, f"*Importance unavailable: {escape(e)}*"
    return importance_figure(imp, objective), (f"Objective **{escape(objective)}** ({mode}imise)"
                                               + (" from the spec" if from_spec else "") + ".")


def profile_view(store: Any, sweep: str) -> tuple[go.Figure | None, pd.DataFrame | None, str]:
    """The AlgoPerf performance profile and scores of the sweep's submissions against its spec's
    ``target`` (``workload``/``submission`` from the spec where given), and the line shown above it."""
    try:
        spec = stored_spec(store, sweep)
        target = spec.get("target")
        if not target:
            return None, None, "*No AlgoPerf target in this sweep's spec (add `target:`).*"
        kw: dict[str, Any] = {"sweeps": sweep, "metric": target["metric"], "target": float(target["value"]),
                              "mode": target.get("mode", "max")}
        if spec.get("workload"):
            kw["workload"] = spec["workload"]
        if spec.get("submission"):
            kw["submission"] = spec["submission"]
        res = algoperf.compare(store, **kw)
    except Exception as e:  # noqa: BLE001 - the profile is optional: say why it is missing
        return None, None, f"*Performance profile unavailable: {escape(e)}*"
    return performance_profile_figure(res["profile"], title="AlgoPerf performance profile"), res["score"], ""
