"""Sweeps (issue 7): specs as plain data, executors from one GPU to a Ray cluster, resumable runs in
the run store, and the AlgoPerf time-to-result comparison.

    from workbench.sweeps import SweepSpec, run_sweep, resume_sweep, sweep_status, performance_profile
    sid = run_sweep(SweepSpec.from_yaml("spec.yaml"), executor="batched", store="runs/workbench.db")
"""

from workbench.sweeps.algoperf import compare, performance_profile, performance_ratios, score, time_to_target
from workbench.sweeps.executors import EXECUTORS, ExecutorError, make_executor
from workbench.sweeps.results import results_table
from workbench.sweeps.runner import (
    SweepBusyError,
    SweepRecord,
    resume_sweep,
    run_sweep,
    sweep_members,
    sweep_pruning,
    sweep_record,
    sweep_results,
    sweep_status,
)
from workbench.sweeps.spec import Axis, Linked, Member, SweepSpec, SweepSpecError

__all__ = ["SweepSpec", "SweepSpecError", "Axis", "Linked", "Member", "run_sweep", "resume_sweep", "sweep_status",
           "sweep_members", "sweep_results", "sweep_pruning", "sweep_record", "SweepRecord", "results_table", "SweepBusyError", "EXECUTORS", "ExecutorError",
           "make_executor", "time_to_target", "performance_ratios", "performance_profile", "score", "compare"]
