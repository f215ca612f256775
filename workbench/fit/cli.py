"""``workbench fit``: fit a registered law to a CSV or to the runs of a sweep, from the command line.

    workbench fit --list
    workbench fit chinchilla --csv runs.csv --map N=params,D=tokens,L=loss --drop-top 5 --bootstrap 100 \\
        --out fit.json --figure fit.html
    workbench fit grok_power --sweep wd-sweep --store runs/workbench.db --map x=cfg.weight_decay,t=steps_to_grok
    workbench fit multi_power --curves a.csv b.csv --step step --loss val_loss --lr lr --out fit.json

Loss curves (schedule-aware laws): one curve per file (or per value of ``--curve`` COLUMN), the per-update
LR interpolated from the logged ``--lr`` column; steps follow the convention of :mod:`workbench.fit.data`
(the loss at step s is measured after s updates). Curve fits are calibrated by backtests unless
``--no-calibrate``, so ``workbench predict`` gives honest bands.

Prints :meth:`FitResult.report`. Bad input exits with status 2 and one line on stderr naming the
problem, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


class _Usage(Exception):
    """A command-line error: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message + SystemExit
        raise _Usage(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="workbench fit", description="Fit a scaling or loss-curve law to data.")
    p.add_argument("law", nargs="?", help="law name (see --list)")
    p.add_argument("--list", action="store_true", help="list the available laws with their formulas")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--csv", help="CSV file with one row per point")
    src.add_argument("--sweep", help="fit the final metrics of the runs of this sweep (with --store)")
    src.add_argument("--curves", nargs="+", metavar="CSV", help="loss-curve CSV files (schedule-aware laws)")
    p.add_argument("--step", default=None, help="with --curves: the step column (default 'step')")
    p.add_argument("--loss-col", "--loss-column", dest="loss_col", default=None,
                   help="with --curves: the loss column (default 'loss' or 'train_loss')")
    p.add_argument("--lr", default=None, help="with --curves: the logged LR column (default 'lr')")
    p.add_argument("--curve", default=None, help="with --curves: a column naming several curves in one file")
    p.add_argument("--lr-head", default="ramp from 0", choices=["ramp from 0", "hold first value"],
                   help="with --curves: the LR before the first logged step")
    p.add_argument("--no-calibrate", action="store_true", help="curve fits: skip the backtest calibration of bands")
    p.add_argument("--calibrate", action="store_true", help="point fits: calibrate bands by backtests")
    p.add_argument("--store", help="run store file (default $WORKBENCH_STORE or ./runs/workbench.db)")
    p.add_argument("--status", default="finished", help="with --sweep: only runs of this status (default finished)")
    p.add_argument("--map", dest="mapping", help="law names to columns, e.g. N=params,D=tokens,L=loss "
                   "(store: cfg.<key> or metric names)")
    p.add_argument("--drop-top", type=int, default=0, metavar="K", help="drop the K points with the highest target")
    p.add_argument("--bootstrap", type=int, default=0, metavar="B", help="bootstrap resamples (intervals)")
    p.add_argument("--holdout", type=float, default=None, metavar="F",
                   help="fraction held out of the fit and predicted: whole curves/runs (random, --seed) when there "
                        "are several, else the points with the largest first input (workbench.fit.data.holdout_mask)")
    p.add_argument("--starts", type=int, default=None, metavar="S", help="use S random starts of the law's grid")
    p.add_argument("--loss", default=None, help="with --curves: the loss column; otherwise the fit loss: huber, "
                   "ls_log, ls or huber_lin (default: the law's)")
    p.add_argument("--fit-loss", default=None, help="the fit loss with --curves (huber, ls_log, ls, huber_lin)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the fit as JSON (FitResult.from_json reads it back)")
    p.add_argument("--figure", help="write the figure (.html, .png, .svg, .pdf)")
    return p


def _list() -> str:
    from workbench.fit import available_laws, get_law

    lines = []
    for name in available_laws():
        law = get_law(name)
        lines.append(f"{name:<18} {law.formula}")
        lines.append(f"{'':<18} inputs: {', '.join(law.inputs)}; target: {law.target}; "
                     f"params: {', '.join(law.param_names)}")
    return "\n".join(lines)


def _data(a: argparse.Namespace, law):
    from workbench.fit import FitData, parse_mapping
    from workbench.fit.errors import FitDataError

    curve_law = "lrs" in law.inputs
    if a.curves or (curve_law and a.csv):
        if not curve_law:
            raise FitDataError(f"curves: law {law.name!r} does not take an LR schedule; use --csv with --map")
        loss_col = a.loss_col or a.loss
        return FitData.from_csv(a.curves or [a.csv], step=a.step or "step", loss=loss_col, lr=a.lr or "lr",
                                curve=a.curve, lr_head=a.lr_head)
    if curve_law:
        raise FitDataError(f"data: law {law.name!r} fits loss curves; give --curves FILE... (--step, --loss, --lr)")

    if not a.mapping and a.sweep:
        raise FitDataError("map: --sweep needs --map (e.g. x=cfg.weight_decay,t=steps_to_grok)")
    mapping = parse_mapping(a.mapping or "")
    for k in mapping:
        if k not in law.inputs and k != law.target:
            raise FitDataError(f"map: {k!r} is not an input or the target of law {law.name!r} "
                               f"(inputs {list(law.inputs)}, target {law.target!r})")
    if a.csv:
        path = Path(a.csv)
        if not path.is_file():
            raise FitDataError(f"csv: no such file {a.csv!r}")
        return FitData.from_csv(path, mapping, target=law.target)
    from workbench.store import RunStore, default_path

    path = Path(a.store) if a.store else default_path()
    if not path.is_file():
        raise FitDataError(f"store: no such file {str(path)!r}")
    return FitData.from_store(RunStore(path), mapping, target=law.target, sweep=a.sweep,
                              status=a.status)


def run(a: argparse.Namespace) -> int:
    from workbench.fit import fit, get_law, holdout_mask
    from workbench.fit.errors import FitDataError

    if a.list:
        print(_list())
        return 0
    if not a.law:
        raise _Usage("law: give a law name (workbench fit --list shows them)")
    law = get_law(a.law)
    if not (a.csv or a.sweep or a.curves):
        raise _Usage("data: give --csv FILE or --sweep ID (--curves FILE... for loss curves)")
    data = _data(a, law)
    if a.drop_top:
        if not 0 <= a.drop_top < len(data):
            raise FitDataError(f"drop-top: must be in [0, {len(data)}), got {a.drop_top}")
        keep = np.sort(np.argsort(-np.nan_to_num(data.y, nan=np.inf), kind="stable")[a.drop_top:])
        data = data.subset(keep)
    holdout = None
    if a.holdout is not None:
        holdout = holdout_mask(data, a.holdout, key=law.inputs[0] if law.inputs[0] in data.x else None, seed=a.seed)
    if a.starts is not None and a.starts < 1:
        raise FitDataError(f"starts: must be >= 1, got {a.starts}")
    curve_law = "lrs" in law.inputs
    fit_loss = a.fit_loss if curve_law else (a.fit_loss or a.loss)
    calibrate = (curve_law and not a.no_calibrate) or a.calibrate
    result = fit(law, data, loss=fit_loss, bootstrap=a.bootstrap, holdout=holdout, n_starts=a.starts, seed=a.seed,
                 calibrate=calibrate)
    print(result.report())
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        result.to_json(a.out)
        print(f"wrote {a.out}")
    if a.figure:
        from workbench.figures.export import write

        print(f"wrote {write(a.figure, result.figure())}")
    return 0


def guarded_main(prog: str, parser: argparse.ArgumentParser, run_fn, argv: list[str] | None) -> int:
    """Parse ``argv`` and run ``run_fn``; bad input is one line on stderr (``workbench PROG: error: ...``)
    and exit status 2, never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        a = parser.parse_args(argv)
        return run_fn(a)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except (_Usage, ValueError, KeyError, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"workbench {prog}: error: {msg}", file=sys.stderr)
        return 2


def cli_main(argv: list[str] | None = None) -> int:
    return guarded_main("fit", _parser(), run, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(cli_main())
