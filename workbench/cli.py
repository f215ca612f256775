"""The ``workbench`` command line.

``serve``   all dashboards through ``panel serve`` on loopback (the main job)
``runs``    list / show / delete runs of the store
``export``  runs (or a sweep) to CSV / Parquet; ``import`` reads such a file back
``run``     train one configured run            (workbench.train.cli_main)
``sweep``   declare, run, resume, compare sweeps (workbench.sweeps.cli.cli_main)
``fit``     fit a law to data                    (workbench.fit.cli.cli_main)
``predict`` a schedule's loss curve from a fit   (workbench.fit.predict_cli.cli_main)
``fork``    cooldowns branched from a run's constant-LR checkpoints in one batch (workbench.train.fork)
``task-law`` a fitted schedule-aware law as the forecast of a task's running runs (workbench.forecast_watch)

Every command takes ``--store PATH`` (default ``$WORKBENCH_STORE`` or ``./runs/workbench.db``) and
``--shared-store`` (new store files, folders and checkpoints group-readable instead of owner-only;
the same as ``$WORKBENCH_SHARED_STORE=1``, see ``workbench.safeio``).
Bad input exits with status 2 and a one-line message on stderr, ``workbench <command>: error: ...``,
naming the field, never a traceback: every :class:`~workbench.errors.WorkbenchError` (the base of the
package's bad-input errors) and every OS error on a file the user named is caught here, for the
delegated commands too. A store the user cannot write is opened read-only: ``runs list/show`` and
``export`` work, writes say why they cannot.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from workbench import __version__
from workbench.errors import WorkbenchError

DELEGATED = {
    "run": ("workbench.train", "train one configured run (e.g. `workbench run grokking --p 113 --frac 0.3`)"),
    "sweep": ("workbench.sweeps.cli", "run / resume / inspect / compare sweeps"),
    "fit": ("workbench.fit.cli", "fit a scaling or loss-curve law to data"),
    "predict": ("workbench.fit.predict_cli", "predict a schedule's loss curve (band, flags) from a fit"),
}


FORECAST_BUDGET_S = 30.0
"""``runs list`` checks running runs against their forecasts (newest first) for at most this long."""


class CliError(WorkbenchError):
    """A user error: printed as one line, exit status 2."""


def _store(path: str | None, *, readonly: bool | None = None):
    from workbench.store import RunStore, default_path

    return RunStore(path or default_path(), readonly=readonly)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="Training-dynamics research workbench.")
    p.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    s = sub.add_parser("serve", help="serve all dashboards with `panel serve` (loopback by default)")
    s.add_argument("--port", type=int, default=5006)
    s.add_argument("--address", default="127.0.0.1", help="listen address (default loopback only)")
    s.add_argument("--store", help="run store file")
    s.add_argument("--apps", nargs="+", help="serve only these apps")
    s.add_argument("--show", action="store_true", help="open a browser")
    tok = s.add_mutually_exclusive_group()
    tok.add_argument("--token", dest="token", action="store_true", default=None,
                     help="ask every request for a secret token ($WORKBENCH_TOKEN or a random one, printed in the "
                          "address); the default when more than one user can log in or --address is not loopback")
    tok.add_argument("--no-token", dest="token", action="store_false",
                     help="serve without a token (refused unless --address is loopback)")
    s.add_argument("--no-reference", action="store_true",
                   help="do not load the shipped reference runs (data/reference) into an empty store")

    r = sub.add_parser("runs", help="list, show or delete runs")
    r.add_argument("action", nargs="?", default="list", choices=["list", "show", "delete"])
    r.add_argument("ids", nargs="*", help="run ids (show, delete)")
    r.add_argument("--store")
    r.add_argument("--sweep")
    r.add_argument("--status")
    r.add_argument("--task")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.add_argument("--no-forecast", action="store_true",
                   help="list: skip the forecast flag of running runs (it fits each running run's forecast, "
                        "a few seconds each; workbench.forecast_watch)")
    r.add_argument("--columns", help="comma-separated columns of `runs list` (e.g. id,name,cfg.lr,final.test_loss,"
                                     "tags); any column of the runs table: id name task sweep status created tags "
                                     "note last_step cfg.<key that varies> final.<metric> best.<metric>")

    e = sub.add_parser("export", help="export runs to .csv or .parquet (long form, re-importable)")
    e.add_argument("out", help="output file, .csv or .parquet")
    e.add_argument("ids", nargs="*", help="run ids (default: all, or those of --sweep)")
    e.add_argument("--sweep")
    e.add_argument("--metrics", nargs="+", help="only these metric names")
    e.add_argument("--wide", action="store_true", help="one column per metric (not re-importable)")
    e.add_argument("--store")

    f = sub.add_parser("fork", help="branch cooldowns from a run's fork_points checkpoints as one batched launch "
                                    "(Hägele et al. 2024), and/or draw its forks' final loss against compute")
    f.add_argument("run", help="the parent run id (trained with fork_points=[...] at a constant LR)")
    f.add_argument("--at", type=int, nargs="+", help="fork steps (steps of the parent's fork_points)")
    f.add_argument("--cooldown", type=int, nargs="+", help="cooldown lengths in steps")
    f.add_argument("--shapes", nargs="+", default=["linear", "1-sqrt", "cosine"], help="decay shapes")
    f.add_argument("--metric", default="test_loss", help="the loss of the figure and table (default test_loss)")
    f.add_argument("--figure", help="write the forks figure here (.html, .png, .svg, .pdf, .zip)")
    f.add_argument("--store")

    t = sub.add_parser("task-law", help="save a fitted schedule-aware law (`workbench fit ... --out fit.json`) as "
                                        "the forecast of a task's running runs (monitor band, runs list flag)")
    t.add_argument("fit", help="a FitResult JSON of a law that takes the LR schedule (multi_power, lr_annealing)")
    t.add_argument("--task", required=True, help="the task whose runs it forecasts")
    t.add_argument("--metric", default="train_loss", help="the logged loss it was fitted on (default train_loss)")
    t.add_argument("--store")

    i = sub.add_parser("import", help="import runs from a file written by `workbench export`")
    i.add_argument("file")
    i.add_argument("--on-conflict", default="error", choices=["error", "skip", "replace"])
    i.add_argument("--store")

    for sp in (s, r, e, i):  # main() takes it out of argv before parsing, for every command (also delegated)
        sp.add_argument("--shared-store", action="store_true",
                        help="create the store, its folders and checkpoints group-readable (0640/0750) instead "
                             "of owner-only (0600/0700)")
    for name, (_, help_) in DELEGATED.items():
        d = sub.add_parser(name, help=help_, add_help=False)
        d.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _delegate(name: str, argv: list[str]) -> int:
    module, _ = DELEGATED[name]
    return int(importlib.import_module(module).cli_main(argv) or 0)


def _fmt_time(t: float | None) -> str:
    import time

    return "" if t is None or t != t else time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def cmd_runs(a: argparse.Namespace) -> int:
    store = _store(a.store)
    if a.action == "list":
        df = store.runs(sweep=a.sweep, status=a.status, task=a.task)
        if a.json:
            print(df.to_json(orient="records"))
            return 0
        if df.empty:
            print("no runs")
            return 0
        from workbench.runs_table import format_table, runs_table

        flags = None
        if not a.no_forecast and (df["status"] == "running").any():  # fits only for running runs
            from workbench.forecast_watch import running_flags

            flags = running_flags(store, df["id"].tolist(), budget_s=FORECAST_BUDGET_S)
            n_running = int((df["status"] == "running").sum())
            if len(flags) < n_running:
                print(f"workbench runs: forecast flags of the {len(flags)} newest of {n_running} running runs "
                      f"(a {FORECAST_BUDGET_S:g} s budget; the runs page and the monitor check all)", file=sys.stderr)
        table = runs_table(store, sweep=a.sweep, status=a.status, task=a.task, flags=flags)
        cols = [c.strip() for c in a.columns.split(",") if c.strip()] if a.columns else None
        print(format_table(table, cols))
        return 0
    if not a.ids:
        raise CliError(f"runs {a.action}: give at least one run id")
    for rid in a.ids:
        if a.action == "show":
            rec = store.get_run(rid)
            names = store.metric_names(rid)
            if a.json:
                print(json.dumps({**rec, "metrics": names}, default=str))
                continue
            for k in ("id", "name", "task", "status", "sweep", "device", "version", "error"):
                print(f"{k:>8}: {rec[k] if rec[k] is not None else ''}")
            print(f"{'created':>8}: {_fmt_time(rec['created'])}   finished: {_fmt_time(rec['finished'])}")
            print(f"{'config':>8}: {json.dumps(rec['config'], sort_keys=True)}")
            if names:  # each metric's value at its last step (series_ends: no read of the run's rows)
                last = store.series_ends([rid]).set_index("name")
                print(f"{'metrics':>8}: " + ", ".join(f"{n}={last.at[n, 'last_value']:.4g} (step {last.at[n, 'last_step']})"
                                                       for n in names if n in last.index))
        else:
            store.delete_run(rid)
            print(f"deleted {rid}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    store = _store(a.store)
    ids = a.ids or None
    if a.wide:
        from workbench.store import write_table

        ids = store.run_ids(a.sweep) if ids is None else ids
        out = write_table(store.metrics(ids, a.metrics, wide=True), a.out)
    else:
        out = store.export(a.out, ids, sweep=a.sweep, names=a.metrics)
    print(f"wrote {out}")
    return 0


def cmd_fork(a: argparse.Namespace) -> int:
    from workbench.train.fork import fork, fork_results

    store = _store(a.store)
    if (a.at is None) != (a.cooldown is None):
        raise CliError("fork: give both --at and --cooldown (or neither, to draw the existing forks)")
    if a.at is not None:
        res = fork(a.run, a.at, a.cooldown, a.shapes, store=store)
        print(f"trained {len(res)} fork(s) of {a.run} in one batched launch")
    forks, parent = fork_results(store, a.run, a.metric)
    if forks.empty:
        raise CliError(f"fork: run {a.run!r} has no forks yet (give --at and --cooldown)")
    print(forks[["run", "fork_step", "cooldown_steps", "shape", "status", "step", "final"]]
          .rename(columns={"final": f"final {a.metric}"}).to_string(index=False))
    if a.figure:
        from workbench.figures.export import write
        from workbench.figures.forks import forks_figure

        print(f"wrote {write(a.figure, forks_figure(forks, parent, metric=a.metric))}")
    return 0


def cmd_task_law(a: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.fit.result import FitResult
    from workbench.forecast_watch import save_task_law

    try:
        result = FitResult.from_json(Path(a.fit).read_text())
    except (ValueError, KeyError, TypeError) as e:
        raise CliError(f"fit: {a.fit} is not a fit result JSON ({type(e).__name__}: {e})") from None
    print(f"wrote {save_task_law(_store(a.store), result, a.task, a.metric)}: runs of task {a.task!r} are forecast "
          f"by {result.law.name} ({a.metric})")
    return 0


def cmd_import(a: argparse.Namespace) -> int:
    ids = _store(a.store).import_file(a.file, on_conflict=a.on_conflict)
    print(f"imported {len(ids)} run(s)")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    from workbench.apps import check_token, serve
    from workbench.store import default_path

    check_token(a.address, a.token)

    store = a.store or str(default_path())
    if not a.no_reference:
        from workbench.reference import ensure_reference_runs

        st = _store(store)
        if not st.readonly:
            n = ensure_reference_runs(st)
            if n:
                print(f"workbench: loaded {n} reference run(s) from data/reference into {store}", flush=True)
    return serve(port=a.port, address=a.address, store=store, apps=a.apps, show=a.show, token=a.token)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--shared-store" in argv:  # any command, delegated ones included: through the environment
        import os

        from workbench.safeio import SHARED_ENV

        old = os.environ.get(SHARED_ENV)
        os.environ[SHARED_ENV] = "1"
        try:
            return main([x for x in argv if x != "--shared-store"])
        finally:
            if old is None:
                os.environ.pop(SHARED_ENV, None)
            else:
                os.environ[SHARED_ENV] = old
    parser = _parser()
    cmd = argv[0] if argv and argv[0] in DELEGATED else None
    try:
        if cmd is not None:
            return _delegate(cmd, argv[1:])
        a = parser.parse_args(argv)
        cmd = a.cmd
        if a.cmd is None:
            parser.print_help()
            return 0
        return {"runs": cmd_runs, "export": cmd_export, "import": cmd_import, "serve": cmd_serve,
                "fork": cmd_fork, "task-law": cmd_task_law}[a.cmd](a)
    except WorkbenchError as e:
        return fail(cmd, e)
    except OSError as e:  # a file the user named: unreadable, unwritable, a directory, disk full
        return fail(cmd, f"{e.strerror or e}: {e.filename}" if e.filename else e)


def fail(cmd: str | None, msg: object) -> int:
    """Print ``workbench <cmd>: error: <msg>`` on stderr and return the bad-input status 2."""
    print(f"workbench{' ' + cmd if cmd else ''}: error: {msg}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
