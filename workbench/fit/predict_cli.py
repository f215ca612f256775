"""``workbench predict``: the loss curve a fitted schedule-aware law predicts for a schedule, with its band
and extrapolation flags.

    workbench predict fit.json --schedule wsd.yaml [--peak-lr 3e-4] [--level 0.95] [--points 200] [--out pred.csv]

``fit.json`` comes from ``workbench fit ... --out fit.json``; ``wsd.yaml`` is a schedule spec (``name`` and
its parameters, e.g. ``{name: wsd, total_steps: 24000, decay_fraction: 0.2}``, optionally ``peak_lr``).
Prints a short table (step, prediction, band, flag) and why points are flagged; ``--out`` writes every
point as CSV. Bad input exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.fit.cli import _Parser, guarded_main


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="workbench predict", description="Predict a schedule's loss curve from a fitted law.")
    p.add_argument("fit", help="a fit written by `workbench fit ... --out fit.json`")
    p.add_argument("--schedule", required=True, help="schedule spec (YAML or JSON file: name + parameters)")
    p.add_argument("--peak-lr", type=float, default=None, help="peak LR (default: the spec's, else the fitted peak)")
    p.add_argument("--level", type=float, default=0.95, help="band level in (0, 1) (default 0.95)")
    p.add_argument("--points", type=int, default=200, help="number of predicted steps (default 200)")
    p.add_argument("--out", help="write every predicted point as CSV")
    return p


def run(a: argparse.Namespace) -> int:
    import numpy as np

    from workbench import yamlio
    from workbench.fit import FitResult, predict_schedule
    from workbench.fit.errors import FitDataError

    path = Path(a.fit)
    if not path.is_file():
        raise FitDataError(f"fit: no such file {a.fit!r}")
    try:
        result = FitResult.from_json(path.read_text())
    except (KeyError, TypeError, ValueError) as e:
        raise FitDataError(f"fit: {a.fit!r} is not a fit written by `workbench fit --out` ({e})") from None
    sp = Path(a.schedule)
    if not sp.is_file():
        raise FitDataError(f"schedule: no such file {a.schedule!r}")
    spec = yamlio.load(sp.read_text())
    if not isinstance(spec, dict) or "name" not in spec:
        raise FitDataError(f"schedule: {a.schedule!r} must hold a mapping with a 'name' (a schedule spec)")
    if not 0 < a.level < 1:
        raise FitDataError(f"level: must be in (0, 1), got {a.level}")
    if not 2 <= a.points <= 100_000:
        raise FitDataError(f"points: must be in [2, 100000], got {a.points}")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the flags are printed below
        p = predict_schedule(result, spec, level=a.level, peak_lr=a.peak_lr, n_points=a.points,
                             name=str(spec["name"]))
    df = p.to_frame()
    print(f"[[prediction]] {result.law.name} fitted on {', '.join(result.names) or 'its curves'}; schedule {spec['name']}")
    print(f"    band ({a.level:.0%}): {p.band_kind}")
    show = df.iloc[np.unique(np.linspace(0, len(df) - 1, min(12, len(df))).round().astype(int))]
    print(f"    {'step':>8} {'pred':>9} {'lo':>9} {'hi':>9}  flag")
    for _, r in show.iterrows():
        print(f"    {int(r['step']):>8} {r['pred']:>9.5g} {r['lo']:>9.5g} {r['hi']:>9.5g}  {r['flag']}")
    counts = df["flag"].value_counts().to_dict()
    print("[[flags]] " + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("inside", "mild", "far")))
    far = df[df["flag"] != "inside"]
    if len(far):
        print(f"    beyond the fitted domain from step {int(far['step'].iloc[0])}: {far['why'].iloc[-1]}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(a.out, index=False)
        print(f"wrote {a.out}")
    return 0


def cli_main(argv: list[str] | None = None) -> int:
    return guarded_main("predict", _parser(), run, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(cli_main())
