"""``workbench sweep``: run, resume, inspect and compare sweeps from the command line.

    workbench sweep run spec.yaml --executor batched|local|ray [--workers N] [--address ADDR] [--store PATH]
    workbench sweep status SWEEP_ID [--json]
    workbench sweep resume SWEEP_ID [--executor ...]
    workbench sweep compare SWEEP_ID [SWEEP_ID ...] --metric test_acc --target 0.99 --mode max [--time steps|wall]
    workbench sweep list

Bad input exits with status 2 and a one-line message naming the field.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from workbench.errors import WorkbenchError
from workbench.sweeps.executors import EXECUTORS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench sweep", description="Run, resume, inspect and compare sweeps.")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    r = sub.add_parser("run", help="validate and run a sweep spec (YAML)")
    r.add_argument("spec")
    r.add_argument("--executor", default="batched", choices=EXECUTORS)
    r.add_argument("--workers", type=int, help="local executor: worker processes")
    r.add_argument("--max-group", type=int, help="batched executor: most members per batched model")
    r.add_argument("--address", help="ray executor: cluster address (default: a local Ray on loopback)")
    r.add_argument("--gpus-per-trial", type=float, help="ray executor: GPUs per trial (fractions share a GPU)")
    r.add_argument("--store-mode", choices=["ship", "direct"], help="ray executor: how trials reach the store")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--dry-run", action="store_true", help="validate and list the members, run nothing")
    for name, help_ in (("status", "counts of members by status"), ("resume", "continue after a crash or kill")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("sweep_id")
        if name == "resume":
            s.add_argument("--executor", choices=EXECUTORS)
            s.add_argument("--no-progress", action="store_true")
        else:
            s.add_argument("--json", action="store_true")
    c = sub.add_parser("compare", help="AlgoPerf time-to-target comparison of sweeps")
    c.add_argument("sweep_ids", nargs="+")
    c.add_argument("--metric", default="test_acc")
    c.add_argument("--target", type=float, default=0.99)
    c.add_argument("--mode", default="max", choices=["min", "max"])
    c.add_argument("--time", default="steps", choices=["steps", "wall"])
    c.add_argument("--workload", default="task", help="config field naming the workload (dotted path)")
    c.add_argument("--submission", default="schedule.name", help="config field naming the submission")
    c.add_argument("--json", action="store_true")
    sub.add_parser("list", help="all sweeps of the store")
    for s in sub.choices.values():
        s.add_argument("--store", help="run store file (default $WORKBENCH_STORE or ./runs/workbench.db)")
    return p


def cli_main(argv: list[str]) -> int:
    """Entry point of ``workbench sweep`` (returns the exit status)."""
    from workbench.store import RunStore, default_path
    from workbench.sweeps import algoperf, runner
    from workbench.sweeps.spec import SweepSpec

    a = _parser().parse_args(argv)
    try:
        store = RunStore(a.store or default_path())
        if a.cmd == "run":
            spec = SweepSpec.from_yaml(a.spec).validate()
            if a.dry_run:
                n = spec.n_members()
                print(f"sweep {spec.name}: {spec.strategy}, {n} member(s), valid")
                if spec.pruning is not None:
                    pr = spec.pruning
                    print(f"  pruning: pause at {pr['at_fraction']:g} of each run, stop a trial when "
                          f"P(better than the best completed) < {pr['threshold']:g}")
                if spec.strategy != "bayes":
                    for m in spec.members():
                        print(f"  m{m.index:04d} seed={m.seed} {json.dumps(m.params, sort_keys=True)}")
                return 0
            opts = {k: v for k, v in (("workers", a.workers), ("max_group", a.max_group), ("address", a.address),
                                      ("gpus_per_trial", a.gpus_per_trial), ("store_mode", a.store_mode))
                    if v is not None}
            sid = runner.run_sweep(spec, a.executor, store, progress=False if a.no_progress else None, **opts)
            return _report(sid, store, a.cmd)
        elif a.cmd == "resume":
            sid = runner.resume_sweep(a.sweep_id, store, executor=a.executor, progress=False if a.no_progress else None)
            return _report(sid, store, a.cmd)
        elif a.cmd == "status":
            st = runner.sweep_status(a.sweep_id, store)
            dec = runner.sweep_pruning(a.sweep_id, store)
            if a.json:
                st["pruning"] = json.loads(dec.to_json(orient="records"))
                print(json.dumps(st))
            else:
                print(f"sweep {st['id']} ({st['name']}): {st['status']}, {st['strategy']}, executor {st['executor']}, "
                      f"{st['done']}/{st['members']} done ({_counts(st)})")
                for _, d in dec.iterrows():
                    at = f" at step {int(d['step'])}" if d["pruned"] and math.isfinite(d["step"]) else ""
                    print(f"  trial {d['trial']}: {'pruned' if d['pruned'] else 'kept'}{at} ({d['reason']})")
        elif a.cmd == "list":
            df = store.sweeps()
            if df.empty:
                print("no sweeps")
            for _, r in df.iterrows():
                print(f"{r['id']:<16}{r['name'][:30]:<32}{r['status']}")
        elif a.cmd == "compare":
            for sid in a.sweep_ids:
                store.get_sweep(sid)  # an unknown id is named in the error
            out = algoperf.compare(store, sweeps=a.sweep_ids, metric=a.metric, target=a.target, mode=a.mode,
                                   workload=a.workload, submission=a.submission, time=a.time)
            if a.json:
                print(json.dumps({"times": json.loads(out["times"].to_json()),
                                  "score": json.loads(out["score"].to_json())}))
            else:
                print(f"time to {a.metric} {'>=' if a.mode == 'max' else '<='} {a.target} ({a.time}, median over seeds;"
                      " inf = missed)")
                print(out["times"].to_string())
                print("\nAlgoPerf score (normalised area under the performance profile, tau in [1, 4])")
                print(out["score"].to_string())
        return 0
    except WorkbenchError as e:
        print(f"workbench sweep {a.cmd}: error: {e}", file=sys.stderr)
        return 2


def _report(sid: str, store: Any, cmd: str) -> int:
    """Print the sweep's counts; with failed members, say how many and why on stderr and return 1."""
    from workbench.sweeps import runner

    st = runner.sweep_status(sid, store)
    print(f"sweep {sid}: {st['status']} ({_counts(st)})")
    n_failed = st["counts"].get("failed", 0)
    if not n_failed:
        return 0
    failed = store.runs(sweep=sid, status="failed")
    why = "; ".join(f"{r['name']}: {str(r['error'] or 'no reason recorded').splitlines()[0]}"
                    for _, r in failed.head(5).iterrows())
    more = f" (and {n_failed - 5} more: workbench runs list --sweep {sid} --status failed)" if n_failed > 5 else ""
    print(f"workbench sweep {cmd}: error: {n_failed} of {st['members']} member(s) failed: {why}{more}",
          file=sys.stderr)
    return 1


def _counts(st: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(st["counts"].items()))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(cli_main(sys.argv[1:]))
