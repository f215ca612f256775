"""Every bad input gets a clear error, and changes nothing.

Table-driven: each row is one bad input, through the CLI (``workbench ...``, in-process through
``workbench.cli.main``; a few as real subprocesses) or the Python API. For each row the test asserts

- CLI: exit status 2 and a one-line message on stderr that starts ``workbench <command>`` and names the field;
- API: a :class:`~workbench.errors.WorkbenchError` whose message names the field;
- the run store is unchanged (every row of every table) and no file appeared next to it.

To add a case, append a row to ``CLI`` (argv with placeholders, see :func:`_fill`) or ``API`` (a function
of the fixture namespace ``w``). The ``field`` is a regular expression searched in the message.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.store import RunStore

ROOT = Path(__file__).resolve().parents[1]

BASE = {"task": "modular", "task_params": {"p": 11, "frac": 0.5}, "model": "mlp", "model_params": {"hidden": [16]},
        "steps": 20, "log_every": 5, "eval_every": 10, "device": "cpu"}


# ---------------------------------------------------------------------------------------------- the world
@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """A store with a finished run (metrics, no checkpoint), an interrupted run without a checkpoint, a
    finished sweep of two members; config / spec / import files, good and bad, in a separate folder."""
    from workbench.sweeps import run_sweep
    from workbench.train import train

    d = tmp_path_factory.mktemp("world")
    files = tmp_path_factory.mktemp("inputs")
    db = d / "world.db"
    with RunStore(db) as st:
        finished = train(BASE, st, name="finished").run_id
        interrupted = st.create_run("interrupted", task="modular", config=BASE, run_id="interrupted1")
        st.log(interrupted, 0, {"train_loss": 2.3})
        st.set_status(interrupted, "interrupted")
        sweep = run_sweep({"name": "tiny", "base": BASE, "axes": {"lr": [1e-3, 3e-3]}, "seeds": [0]}, "batched", st,
                          progress=False)
        st.export(files / "good.csv", [finished])
    (files / "adir").mkdir()
    (files / "adir.csv").mkdir()
    (files / "afile").write_text("a plain file")
    (files / "notadb.db").write_bytes(b"not a database" * 100)
    texts = {
        "malformed.yaml": "task: modular\n  steps: [1, 2\n", "list.yaml": "- task: modular\n- steps: 3\n",
        "scalar.yaml": "just a string\n", "bad.json": "{\"task\": ", "unknown.yaml": "task: modular\nbogus_field: 1\n",
        "badvalue.yaml": "task: modular\nsteps: -5\n", "schedule.yaml": "task: modular\nschedule: {name: wsd, decay_frac: 0.2}\n",
        "empty.csv": "", "garbage.csv": "a,b\n1,2\n",
    }
    for name, text in texts.items():
        (files / name).write_text(text)
    good = pd.read_csv(files / "good.csv")
    spec = {"name": "s", "base": BASE, "axes": {"lr": [1e-3, 3e-3]}, "seeds": [0]}
    return SimpleNamespace(db=db, dir=d, files=files, finished=finished, interrupted=interrupted, sweep=sweep,
                           good=good, spec=spec)


def _snapshot(w) -> dict:
    con = sqlite3.connect(f"file:{w.db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        rows = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
        rows["user_version"] = con.execute("PRAGMA user_version").fetchall()
    finally:
        con.close()
    files = sorted(p.name for p in w.dir.iterdir() if not p.name.endswith(("-wal", "-shm")))
    return {"rows": rows, "files": files}


# ---------------------------------------------------------------------------------------------- CLI table
def _csv(w, name: str, change) -> str:
    """A copy of the good export with ``change(df)`` applied, written as ``name``."""
    df = w.good.copy()
    change(df)
    p = w.files / name
    df.to_csv(p, index=False)
    return str(p)


def _spec(w, name: str, **changes) -> str:
    import yaml

    p = w.files / name
    p.write_text(yaml.safe_dump({**w.spec, **changes}))
    return str(p)


def _set(col, value, row=0):
    def f(df):
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
    return f


def _fill(w, argv: list) -> list[str]:
    """Placeholders: {db} the world store, {f} the input folder, {finished} / {interrupted} / {sweep} ids;
    a callable item is called with ``w`` (writes a file, returns its path)."""
    out = []
    for a in argv:
        a = a(w) if callable(a) else a
        out.append(a.format(db=w.db, f=w.files, finished=w.finished, interrupted=w.interrupted, sweep=w.sweep))
    if "--store" not in out and out[0] in ("run", "runs", "export", "import", "sweep"):
        out += ["--store", str(w.db)]
    return out


RUN = ["run", "grokking", "--no-progress"]
CLI: list[tuple[str, list, str]] = [
    # --- workbench run: config files
    ("config-missing", ["run", "--config", "{f}/nope.yaml"], r"--config.*does not exist"),
    ("config-dir", ["run", "--config", "{f}/adir"], r"--config.*directory"),
    ("config-malformed", ["run", "--config", "{f}/malformed.yaml"], r"--config.*not valid YAML"),
    ("config-list", ["run", "--config", "{f}/list.yaml"], r"--config.*mapping.*list"),
    ("config-scalar", ["run", "--config", "{f}/scalar.yaml"], r"--config.*mapping.*str"),
    ("config-bad-json", ["run", "--config", "{f}/bad.json"], r"--config.*not valid JSON"),
    ("config-unknown-field", ["run", "--config", "{f}/unknown.yaml"], r"bogus_field"),
    ("config-bad-value", ["run", "--config", "{f}/badvalue.yaml"], r"steps"),
    ("config-bad-schedule-param", ["run", "--config", "{f}/schedule.yaml"], r"decay_frac"),
    # --- workbench run: flags
    ("run-no-task", ["run"], r"give a task"),
    ("run-unknown-task", ["run", "nosuchtask"], r"task"),
    ("device-tpu", [*RUN, "--device", "tpu"], r"device"),
    ("device-empty", [*RUN, "--device", ""], r"device"),
    ("device-cuda-x", [*RUN, "--device", "cuda:x"], r"device"),
    ("sgd-with-adam-betas", [*RUN, "--optimizer", "sgd"], r"optimizer_params.*betas|betas"),
    ("optimizer-unknown", [*RUN, "--optimizer", "nosuchopt"], r"optimizer"),
    ("beta1-out-of-range", [*RUN, "--beta1", "2.0"], r"beta"),
    ("momentum-for-adamw", [*RUN, "--momentum", "0.9"], r"momentum"),
    ("lr-zero", [*RUN, "--lr", "0"], r"\blr\b"),
    ("lr-negative", [*RUN, "--lr", "-1"], r"\blr\b"),
    ("lr-nan", [*RUN, "--lr", "nan"], r"\blr\b"),
    ("lr-inf", [*RUN, "--lr", "inf"], r"\blr\b"),
    ("lr-text", [*RUN, "--lr", "fast"], r"--lr"),
    ("wd-negative", [*RUN, "--wd", "-1"], r"weight_decay"),
    ("steps-zero", [*RUN, "--steps", "0"], r"steps"),
    ("steps-negative", [*RUN, "--steps", "-10"], r"steps"),
    ("steps-float", [*RUN, "--steps", "1.5"], r"--steps"),
    ("seeds-zero", [*RUN, "--seeds", "0"], r"--seeds"),
    ("seeds-negative", [*RUN, "--seeds", "-3"], r"--seeds"),
    ("batch-size-zero", [*RUN, "--batch-size", "0"], r"batch_size"),
    ("seed-negative", [*RUN, "--seed", "-1"], r"seed"),
    ("grad-clip-zero", [*RUN, "--grad-clip", "0"], r"grad_clip"),
    ("log-every-zero", [*RUN, "--log-every", "0"], r"log_every"),
    ("eval-every-zero", [*RUN, "--eval-every", "0"], r"eval_every"),
    ("checkpoint-every-negative", [*RUN, "--checkpoint-every", "-1"], r"checkpoint_every"),
    ("loss-unknown", [*RUN, "--loss", "hinge2"], r"loss"),
    ("loss-dtype-unknown", [*RUN, "--loss-dtype", "float8"], r"loss_dtype"),
    ("dtype-unknown", [*RUN, "--dtype", "float16"], r"dtype"),
    ("schedule-unknown", [*RUN, "--schedule", "nosuchschedule"], r"schedule"),
    ("warmup-negative", [*RUN, "--schedule", "cosine", "--warmup-steps", "-5"], r"warmup_steps"),
    ("stop-acc-above-one", [*RUN, "--stop-at-test-acc", "2"], r"stop_at_test_acc"),
    ("p-one", [*RUN, "--p", "1"], r"\bp\b"),
    ("p-not-prime-division", [*RUN, "--p", "12", "--op", "/"], r"\bp\b.*prime"),
    ("p-negative", [*RUN, "--p", "-7"], r"\bp\b"),
    ("frac-above-one", [*RUN, "--frac", "1.5"], r"frac"),
    ("frac-zero", [*RUN, "--frac", "0"], r"frac"),
    ("op-unknown", [*RUN, "--op", "%%"], r"op"),
    ("model-gpt-on-modular", [*RUN, "--model", "gpt"], r"gpt"),
    ("model-unknown", [*RUN, "--model", "resnet"], r"model"),
    ("width-for-mlp", [*RUN, "--width", "8"], r"width"),
    ("n-bits-for-modular", [*RUN, "--n-bits", "8"], r"n_bits"),
    ("preset-for-parity", ["run", "parity", "--preset", "nanda"], r"--preset"),
    ("preset-unknown", [*RUN, "--preset", "huge"], r"--preset"),
    ("grokfast-unknown", [*RUN, "--grokfast", "fir"], r"--grokfast"),
    ("unknown-flag", [*RUN, "--learning-rate", "1"], r"unrecognized arguments"),
    # --- workbench run: stores
    ("store-dir", [*RUN, "--store", "{f}/adir"], r"store.*directory"),
    ("store-not-db", [*RUN, "--store", "{f}/notadb.db"], r"store.*not a usable workbench store"),
    ("store-under-file", [*RUN, "--store", "{f}/afile/x.db"], r"store"),
    # --- workbench run --resume
    ("resume-finished", ["run", "--resume", "{finished}"], r"resume.*'finished'.*interrupted"),
    ("resume-no-checkpoint", ["run", "--resume", "{interrupted}"], r"resume.*no checkpoint"),
    ("resume-no-such", ["run", "--resume", "nosuchrun"], r"nosuchrun"),
    ("resume-with-task", ["run", "grokking", "--resume", "{interrupted}"], r"--resume"),
    ("resume-sweep-member", ["run", "--resume", "{sweep}-m0000"], r"resume|no such run"),
    # --- workbench export
    ("export-no-such-sweep", ["export", "{f}/out.csv", "--sweep", "nosuch"], r"sweep.*nosuch"),
    ("export-wide-no-such-sweep", ["export", "{f}/out.csv", "--wide", "--sweep", "nosuch"], r"sweep.*nosuch"),
    ("export-bad-extension", ["export", "{f}/out.txt"], r"\.csv or \.parquet"),
    ("export-wide-bad-extension", ["export", "{f}/out.txt", "--wide"], r"\.csv or \.parquet"),
    ("export-to-dir", ["export", "{f}/adir.csv"], r"out.*directory"),
    ("export-unwritable", ["export", "{f}/afile/out.csv"], r"out.*cannot write"),
    ("export-wide-unwritable", ["export", "{f}/afile/out.csv", "--wide"], r"out.*cannot write"),
    ("export-unknown-run", ["export", "{f}/out.csv", "nosuchrun"], r"nosuchrun"),
    ("export-wide-unknown-run", ["export", "{f}/out.csv", "nosuchrun", "--wide"], r"nosuchrun"),
    ("export-store-dir", ["export", "{f}/out.csv", "--store", "{f}/adir"], r"store.*directory"),
    ("export-store-not-db", ["export", "{f}/out.csv", "--store", "{f}/notadb.db"], r"store"),
    # --- workbench import
    ("import-missing", ["import", "{f}/nope.csv"], r"does not exist"),
    ("import-dir", ["import", "{f}/adir"], r"csv or \.parquet|directory"),
    ("import-bad-extension", ["import", "{f}/scalar.yaml"], r"\.csv or \.parquet"),
    ("import-empty", ["import", "{f}/empty.csv"], r"empty\.csv"),
    ("import-not-export", ["import", "{f}/garbage.csv"], r"missing columns"),
    ("import-conflict", ["import", lambda w: _csv(w, "same.csv", lambda df: None)], r"run_id.*already exists"),
    ("import-bad-status", ["import", lambda w: _csv(w, "st.csv", _set("run_status", "done"))], r"run_status"),
    ("import-empty-status", ["import", lambda w: _csv(w, "st2.csv", _set("run_status", ""))], r"run_status"),
    ("import-negative-step", ["import", lambda w: _csv(w, "neg.csv", _set("step", -1))], r"\bstep\b"),
    ("import-fraction-step", ["import", lambda w: _csv(w, "frac.csv", _set("step", 2.5))], r"\bstep\b"),
    ("import-huge-step", ["import", lambda w: _csv(w, "huge.csv", _set("step", 1e30))], r"\bstep\b"),
    ("import-text-step", ["import", lambda w: _csv(w, "tstep.csv", _set("step", "ten"))], r"\bstep\b"),
    ("import-missing-step", ["import", lambda w: _csv(w, "nstep.csv", _set("step", None))], r"\bstep\b"),
    ("import-empty-id", ["import", lambda w: _csv(w, "eid.csv", _set("run_id", ""))], r"run_id"),
    ("import-blank-id", ["import", lambda w: _csv(w, "bid.csv", _set("run_id", "   "))], r"run_id"),
    ("import-text-value", ["import", lambda w: _csv(w, "tval.csv", _set("value", "high"))], r"value"),
    ("import-negative-tokens", ["import", lambda w: _csv(w, "tok.csv", _set("tokens", -5))], r"tokens"),
    ("import-huge-tokens", ["import", lambda w: _csv(w, "htok.csv", _set("tokens", 1e40))], r"tokens"),
    ("import-bad-config", ["import", lambda w: _csv(w, "cfg.csv", _set("run_config", "{not json"))], r"run_config"),
    ("import-config-list", ["import", lambda w: _csv(w, "cfgl.csv", _set("run_config", "[1, 2]"))], r"run_config"),
    ("import-bad-created", ["import", lambda w: _csv(w, "cr.csv", _set("run_created", "yesterday"))], r"run_created"),
    ("import-inf-wall", ["import", lambda w: _csv(w, "wall.csv", _set("wall", "inf"))], r"wall"),
    ("import-late-bad-row", ["import", lambda w: _csv(w, "late.csv", lambda df: (
        df.__setitem__("run_id", "fresh-id"), _set("step", -4, row=len(df) - 1)(df)))], r"row \d+: step"),
    ("import-bad-on-conflict", ["import", "{f}/good.csv", "--on-conflict", "merge"], r"--on-conflict"),
    ("import-store-dir", ["import", "{f}/good.csv", "--store", "{f}/adir"], r"store.*directory"),
    # --- workbench runs
    ("runs-show-no-such", ["runs", "show", "nosuchrun"], r"nosuchrun"),
    ("runs-delete-no-such", ["runs", "delete", "nosuchrun"], r"nosuchrun"),
    ("runs-show-no-id", ["runs", "show"], r"run id"),
    ("runs-bad-status", ["runs", "list", "--status", "done"], r"status"),
    ("runs-bad-action", ["runs", "purge"], r"invalid choice"),
    ("runs-store-dir", ["runs", "list", "--store", "{f}/adir"], r"store.*directory"),
    ("runs-store-not-db", ["runs", "list", "--store", "{f}/notadb.db"], r"store"),
    # --- workbench sweep
    ("sweep-spec-missing", ["sweep", "run", "{f}/nope.yaml"], r"spec.*does not exist"),
    ("sweep-spec-malformed", ["sweep", "run", "{f}/malformed.yaml"], r"spec.*YAML"),
    ("sweep-spec-list", ["sweep", "run", "{f}/list.yaml"], r"spec.*mapping"),
    ("sweep-bad-schedule-param", ["sweep", "run", lambda w: _spec(w, "s1.yaml", axes={
        "schedule": ["cosine", {"name": "wsd", "decay_frac": 0.2}]})], r"decay_frac"),
    ("sweep-bad-optimizer-param", ["sweep", "run", lambda w: _spec(w, "s2.yaml", axes={
        "optimizer": ["adamw", "sgd"]}, base={**BASE, "optimizer_params": {"betas": [0.9, 0.98]}})], r"betas"),
    ("sweep-huge-grid-dry-run", ["sweep", "run", "--dry-run", lambda w: _spec(w, "s3.yaml", axes={
        "lr": {"grid": [1e-4, 1e-2, 100_000]}, "weight_decay": {"grid": [0, 1, 100_000]},
        "batch_size": {"grid": [8, 64, 100]}})], r"axes.*members"),
    ("sweep-huge-axis", ["sweep", "run", "--dry-run", lambda w: _spec(w, "s4.yaml", axes={
        "lr": {"grid": [1e-4, 1e-2, 10**12]}})], r"axes\.lr\.grid"),
    ("sweep-seeds-empty", ["sweep", "run", lambda w: _spec(w, "s5.yaml", seeds=[])], r"seeds"),
    ("sweep-strategy", ["sweep", "run", lambda w: _spec(w, "s6.yaml", strategy="hyperband")], r"strategy"),
    ("sweep-base-wd", ["sweep", "run", lambda w: _spec(w, "s7.yaml", base={**BASE, "weight_decay": -1})],
     r"weight_decay"),
    ("sweep-device-tpu", ["sweep", "run", lambda w: _spec(w, "s8.yaml", base={**BASE, "device": "tpu"})], r"device"),
    ("sweep-short-schedule", ["sweep", "run", lambda w: _spec(w, "s9.yaml", base={
        **BASE, "schedule": {"name": "cosine", "total_steps": 5}})], r"total_steps"),
    ("sweep-model-gpt", ["sweep", "run", lambda w: _spec(w, "s10.yaml", axes={"model": ["mlp", "gpt"]})], r"gpt"),
    ("sweep-unknown-key", ["sweep", "run", lambda w: _spec(w, "s11.yaml", budgett=3)], r"budgett"),
    ("sweep-status-no-such", ["sweep", "status", "nosuchsweep"], r"nosuchsweep"),
    ("sweep-resume-no-such", ["sweep", "resume", "nosuchsweep"], r"nosuchsweep"),
    ("sweep-compare-no-such", ["sweep", "compare", "nosuchsweep"], r"nosuchsweep"),
    ("sweep-bad-executor", ["sweep", "run", "{f}/nope.yaml", "--executor", "slurm"], r"--executor"),
    ("sweep-store-dir", ["sweep", "list", "--store", "{f}/adir"], r"store.*directory"),
    ("sweep-workers-zero", ["sweep", "run", lambda w: _spec(w, "s12.yaml"), "--executor", "local", "--workers", "0"],
     r"workers"),
]


@pytest.mark.parametrize("name, argv, field", CLI, ids=[c[0] for c in CLI])
def test_cli_bad_input(w, capsys, name, argv, field):
    args = _fill(w, argv)
    before = _snapshot(w)
    try:
        rc = main(args)
    except SystemExit as e:  # argparse's own usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, f"{name}: exit {rc}, stderr {err!r}"
    cmd = "workbench " + args[0]
    msg = [ln for ln in err.splitlines() if ln.startswith("workbench")]   # argparse prints its usage first
    assert len(msg) == 1 and msg[0].startswith(cmd), f"{name}: not one line prefixed {cmd!r}: {err!r}"
    assert msg[0] == err.strip().splitlines()[-1], f"{name}: more after the message: {err!r}"
    assert "Traceback" not in err
    assert re.search(field, err), f"{name}: {field!r} not in {err!r}"
    assert _snapshot(w) == before, f"{name}: the store changed"


# ---------------------------------------------------------------------------------------------- API table
def _tc(**changes):
    from workbench.train import TrainConfig

    return lambda w: TrainConfig.from_dict({**BASE, **changes})


def _sw(**changes):
    from workbench.sweeps.spec import SweepSpec

    return lambda w: SweepSpec.from_dict({"name": "s", "base": BASE, "axes": {"lr": [1e-3]}, "seeds": [0],
                                          **changes}).validate()


def _st(method: str, *args, **kw):
    def call(w):
        with RunStore(w.db) as st:
            def f(a):
                return a.format(finished=w.finished, f=w.files) if isinstance(a, str) else a
            return getattr(st, method)(*map(f, args), **{k: f(v) for k, v in kw.items()})
    return call


def _committer(w, **kw):
    from workbench.train.sink import WindowCommitter

    with RunStore(w.db) as st:
        return WindowCommitter(st, **kw)


def _fd():
    import workbench.fit.data as fd

    return fd


def _fit(**kw):
    import numpy as np

    def call(w):
        from workbench.fit import fit

        n = np.array([1e6, 3e6, 1e7, 3e7, 1e8, 3e8])
        data = {"N": n, "D": 20 * n, "L": 1.7 + 400 / n ** 0.34 + 410 / (20 * n) ** 0.28}
        return fit("chinchilla", {**data, **kw.pop("data", {})} if "data" not in kw else kw.pop("data"), **kw)
    return call


def _new_store(kind: str):
    def call(w):
        p = w.files / f"store-{kind}.db"
        if kind == "newer":
            with RunStore(p) as st:
                st._conn.execute("PRAGMA user_version=999")
        return RunStore(w.files / "adir" if kind == "dir" else w.files / "notadb.db" if kind == "notdb" else p)
    return call


NAN = float("nan")
API: list[tuple[str, object, str]] = [
    # --- TrainConfig: scalar fields
    *[(f"train-{k}-{v!r}", _tc(**{k: v}), k) for k, v in [
        ("lr", 0), ("lr", -1e-3), ("lr", NAN), ("lr", math.inf), ("lr", "1e-3"), ("lr", None), ("weight_decay", -1),
        ("weight_decay", NAN), ("steps", 0), ("steps", -5), ("steps", 1.5), ("steps", True), ("steps", "10"),
        ("batch_size", 0), ("batch_size", 2.5), ("seed", -1), ("seed", 0.5), ("data_seed", -2), ("log_every", 0),
        ("eval_every", 0), ("sync_every", 0), ("checkpoint_every", -1), ("keep_checkpoints", 0),
        ("sharpness_every", -1), ("sharpness_iters", 0), ("progress_every", -1), ("grad_clip", 0.0),
        ("grad_clip", -1.0), ("stop_at_test_acc", 1.5), ("stop_at_test_acc", -0.1), ("loss", "hinge2"),
        ("loss_dtype", "float8"), ("dtype", "float16"), ("device", "tpu"), ("device", 3), ("device", ""),
        ("device", "cuda:x"), ("task", "nosuchtask"), ("task_params", [1]), ("model_params", "big"),
        ("optimizer_params", None), ("optimizer", ""), ("optimizer", "nosuchopt"), ("schedule", "cosine"),
        ("model", "resnet")]],
    # --- TrainConfig: nested specs, built
    ("train-unknown-field", _tc(bogus_field=1), "bogus_field"),
    ("train-task-p-one", _tc(task_params={"p": 1, "frac": 0.5}), r"\bp\b"),
    ("train-task-p-not-prime-division", _tc(task_params={"p": 12, "op": "/", "frac": 0.5}), r"\bp\b.*prime"),
    ("train-task-frac", _tc(task_params={"p": 11, "frac": 1.5}), "frac"),
    ("train-task-unknown-param", _tc(task_params={"p": 11, "bogus": 1}), "bogus"),
    ("train-task-op", _tc(task_params={"p": 11, "op": "%%"}), "op"),
    ("train-model-gpt-on-modular", _tc(model="gpt", model_params={}), "gpt"),
    ("train-model-unknown-param", _tc(model_params={"hidden": [16], "bogus": 2}), "bogus"),
    ("train-model-nanda-on-parity", _tc(task="parity", task_params={}, model="nanda", model_params={}), "nanda"),
    ("train-model-mlp-init-scale", _tc(model_params={"hidden": [16], "init_scale": -1.0}), "init_scale"),
    ("train-optimizer-sgd-betas", _tc(optimizer="sgd", optimizer_params={"betas": [0.9, 0.98]}), "betas"),
    ("train-optimizer-unknown-param", _tc(optimizer_params={"foo": 1}), "foo"),
    ("train-optimizer-beta-range", _tc(optimizer_params={"betas": [2.0, 0.9]}), "beta"),
    ("train-optimizer-betas-text", _tc(optimizer_params={"betas": "x"}), "betas"),
    ("train-optimizer-eps", _tc(optimizer_params={"eps": -1.0}), "eps"),
    ("train-optimizer-momentum-adam", _tc(optimizer="adam", optimizer_params={"momentum": 0.9}), "momentum"),
    ("train-schedule-wsd-decay-frac", _tc(schedule={"name": "wsd", "decay_frac": 0.2}), "decay_frac"),
    ("train-schedule-unknown", _tc(schedule={"name": "nosuch"}), "nosuch"),
    ("train-schedule-no-name", _tc(schedule={}), r"schedule\.name"),
    ("train-schedule-shorter-than-run", _tc(schedule={"name": "cosine", "total_steps": 10}), "total_steps"),
    ("train-schedule-min-ratio", _tc(schedule={"name": "cosine", "min_ratio": 2.0}), "min_ratio"),
    ("train-schedule-warmup", _tc(schedule={"name": "cosine", "warmup_steps": -1}), "warmup_steps"),
    ("train-schedule-warmup-shape", _tc(schedule={"name": "linear", "warmup_shape": "zigzag"}), "warmup_shape"),
    ("train-grokfast-kind", _tc(grokfast={"kind": "fir"}), "grokfast"),
    ("train-resume-finished", lambda w: __import__("workbench.train", fromlist=["resume"]).resume(
        w.finished, RunStore(w.db)), r"resume.*finished"),
    ("train-resume-no-checkpoint", lambda w: __import__("workbench.train", fromlist=["resume"]).resume(
        w.interrupted, RunStore(w.db)), r"resume.*no checkpoint"),
    ("train-until-zero", lambda w: __import__("workbench.train", fromlist=["train"]).train(BASE, until=0), "until"),
    # --- SweepSpec
    ("spec-not-mapping", lambda w: __import__("workbench.sweeps.spec", fromlist=["x"]).SweepSpec.from_dict([1]), "spec"),
    ("spec-no-name", _sw(name=""), "name"),
    ("spec-strategy", _sw(strategy="hyperband"), "strategy"),
    ("spec-unknown-key", _sw(budgett=3), "budgett"),
    ("spec-axes-list", _sw(axes=[1, 2]), "axes"),
    ("spec-seeds-empty", _sw(seeds=[]), "seeds"),
    ("spec-seeds-negative", _sw(seeds=[-1]), "seeds"),
    ("spec-seeds-duplicate", _sw(seeds=[0, 0]), "seeds"),
    ("spec-budget-key", _sw(budget={"time": 3}), "budget"),
    ("spec-budget-trials-zero", _sw(strategy="random", budget={"trials": 0}), r"budget\.trials"),
    ("spec-random-no-trials", _sw(strategy="random"), r"budget\.trials"),
    ("spec-grid-n-zero", _sw(axes={"lr": {"grid": [1e-3, 1e-2, 0]}}), r"axes\.lr\.grid"),
    ("spec-grid-n-huge", _sw(axes={"lr": {"grid": [1e-3, 1e-2, 10**12]}}), r"axes\.lr\.grid"),
    ("spec-product-huge", _sw(axes={"lr": {"grid": [1e-4, 1e-2, 1000]}, "weight_decay": {"grid": [0, 1, 1000]},
                                    "batch_size": {"grid": [8, 64, 1000]}}), r"axes.*members"),
    ("spec-log-grid-negative", _sw(axes={"lr": {"log_grid": [-1, 1e-2, 3]}}), r"log_grid"),
    ("spec-range-in-grid", _sw(axes={"lr": {"uniform": [1e-3, 1e-2]}}), r"axes\.lr"),
    ("spec-uniform-reversed", _sw(strategy="random", budget={"trials": 2}, axes={"lr": {"uniform": [1e-2, 1e-3]}}),
     r"axes\.lr"),
    ("spec-axis-seed", _sw(axes={"seed": [0, 1]}), r"axes\.seed"),
    ("spec-schedule-unknown", _sw(axes={"schedule": ["cosine", "nosuch"]}), "schedule"),
    ("spec-schedule-bad-param", _sw(axes={"schedule": [{"name": "wsd", "decay_frac": 0.2}]}), "decay_frac"),
    ("spec-optimizer-unknown", _sw(axes={"optimizer": ["adamw", "nosuchopt"]}), "optimizer"),
    ("spec-optimizer-betas-sgd", _sw(base={**BASE, "optimizer_params": {"betas": [0.9, 0.98]}},
                                     axes={"optimizer": ["adamw", "sgd"]}), "betas"),
    ("spec-base-wd", _sw(base={**BASE, "weight_decay": -1}), r"weight_decay"),
    ("spec-axis-lr", _sw(axes={"lr": [1e-3, -1]}), r"\blr\b"),
    ("spec-base-unknown-field", _sw(base={**BASE, "bogus": 1}), "bogus"),
    ("spec-base-device", _sw(base={**BASE, "device": "tpu"}), "device"),
    ("spec-model-gpt", _sw(axes={"model": ["mlp", "gpt"]}), "gpt"),
    ("spec-task-params", _sw(axes={"task_params.p": [11, 1]}), r"\bp\b"),
    ("spec-short-schedule", _sw(base={**BASE, "schedule": {"name": "cosine", "total_steps": 5}}), "total_steps"),
    ("spec-linked-missing", _sw(linked=[{"param": "lr", "scale_with": "batch_size", "ref": 64}]), "batch_size"),
    ("spec-linked-ref", _sw(linked=[{"param": "lr", "scale_with": "steps", "ref": 0}]), r"linked.*ref"),
    ("spec-objective-mode", _sw(objective={"metric": "test_loss", "mode": "lowest"}), r"objective\.mode"),
    ("spec-pruning-grid", _sw(pruning=True), "pruning"),
    ("spec-max-members", _sw(axes={"lr": [1e-3, 2e-3, 3e-3]}, budget={"max_members": 2}), "max_members"),
    # --- RunStore writes
    ("store-log-step-2**70", _st("log", "{finished}", 2**70, {"loss": 1.0}), "step"),
    ("store-log-step-negative", _st("log", "{finished}", -1, {"loss": 1.0}), "step"),
    ("store-log-step-float", _st("log", "{finished}", 1.5, {"loss": 1.0}), "step"),
    ("store-log-step-bool", _st("log", "{finished}", True, {"loss": 1.0}), "step"),
    ("store-log-tokens-negative", _st("log", "{finished}", 1, {"loss": 1.0}, tokens=-1), "tokens"),
    ("store-log-tokens-huge", _st("log", "{finished}", 1, {"loss": 1.0}, tokens=2**64), "tokens"),
    ("store-log-no-metrics", _st("log", "{finished}", 1, {}), "metrics"),
    ("store-log-empty-name", _st("log", "{finished}", 1, {"": 1.0}), "metric name"),
    ("store-log-text-value", _st("log", "{finished}", 1, {"loss": "low"}), "loss"),
    ("store-log-unknown-run", _st("log", "nosuchrun", 1, {"loss": 1.0}), "nosuchrun"),
    ("store-create-status", _st("create_run", "x", status="done"), "status"),
    ("store-create-empty-id", _st("create_run", "x", run_id=""), "run_id"),
    ("store-create-duplicate-id", _st("create_run", "x", run_id="{finished}"), "run_id"),
    ("store-create-config-list", _st("create_run", "x", config=[1, 2]), "config"),
    ("store-create-config-object", _st("create_run", "x", config={"a": object()}), "config"),
    ("store-create-config-nan", _st("create_run", "x", config={"a": NAN}), "config"),
    ("store-set-status", _st("set_status", "{finished}", "done"), "status"),
    ("store-set-status-unknown-run", _st("set_status", "nosuchrun", "failed"), "nosuchrun"),
    ("store-runs-status", _st("runs", status="done"), "status"),
    ("store-metrics-unknown-run", _st("metrics", "nosuchrun"), "nosuchrun"),
    ("store-artifact-empty-kind", _st("add_artifact", "{finished}", "", "/x"), "kind"),
    ("store-writer-every-rows", _st("writer", "{finished}", every_rows=0), "every_rows"),
    ("store-writer-every-seconds", _st("writer", "{finished}", every_seconds=-1), "every_seconds"),
    ("sink-writer-max-windows", lambda w: _committer(w, max_windows=0), "max_windows"),
    ("sink-writer-hold-rows", lambda w: _committer(w, hold_rows=0), "hold_rows"),
    ("sink-writer-hold-seconds-negative", lambda w: _committer(w, hold_seconds=-1), r"hold_seconds.*\[0, 60\]"),
    ("sink-writer-hold-seconds-huge", lambda w: _committer(w, hold_seconds=61), r"hold_seconds.*\[0, 60\]"),
    ("store-delete-metrics-negative", _st("delete_metrics", "{finished}", from_step=-1), "from_step"),
    ("store-delete-unknown-run", _st("delete_run", "nosuchrun"), "nosuchrun"),
    ("store-get-sweep-unknown", _st("get_sweep", "nosuchsweep"), "nosuchsweep"),
    ("store-export-extension", _st("export", "{f}/x.txt"), r"\.csv or \.parquet"),
    ("store-export-unknown-run", _st("export", "{f}/x.csv", ["nosuchrun"]), "nosuchrun"),
    ("store-export-no-such-sweep", _st("export", "{f}/x.csv", sweep="nosuch"), "sweep"),
    ("store-export-unwritable", _st("export", "{f}/afile/x.csv"), "out"),
    ("store-import-on-conflict", _st("import_file", "{f}/good.csv", on_conflict="merge"), "on_conflict"),
    ("store-import-missing", _st("import_file", "{f}/nope.csv"), "does not exist"),
    ("store-import-conflict", _st("import_file", "{f}/good.csv"), "run_id"),
    ("store-import-huge-step", lambda w: _st("import_file", _csv(w, "api-huge.csv", _set("step", 1e30)))(w), "step"),
    ("store-import-bad-status", lambda w: _st("import_file", _csv(w, "api-st.csv", _set("run_status", "ok")))(w),
     "run_status"),
    ("store-open-dir", _new_store("dir"), "directory"),
    ("store-open-not-db", _new_store("notdb"), "not a usable workbench store"),
    ("store-open-newer", _new_store("newer"), r"written by workbench .*schema 999"),
    ("store-readonly-write", lambda w: RunStore(w.db, readonly=True).create_run("x"), "read-only"),
    ("store-readonly-missing", lambda w: RunStore(w.files / "nope.db", readonly=True), "does not exist"),
    # --- fitting
    ("fit-n-starts-zero", _fit(n_starts=0), "n_starts"),
    ("fit-n-starts-negative", _fit(n_starts=-1), "n_starts"),
    ("fit-n-starts-float", _fit(n_starts=1.5), "n_starts"),
    ("fit-bootstrap-negative", _fit(bootstrap=-1), "bootstrap"),
    ("fit-loss-unknown", _fit(loss="nope"), "loss"),
    ("fit-level", _fit(level=1.5), "level"),
    ("fit-no-target", _fit(data={"N": [1.0, 2.0], "D": [3.0, 4.0]}), "target"),
    ("fit-unknown-law", lambda w: __import__("workbench.fit", fromlist=["fit"]).fit("nosuchlaw", {}), "nosuchlaw"),
    # --- the law fitters' data (workbench.fit.data, workbench.fit.curveset: what the /laws and /curves pages call)
    ("lawfit-csv-ragged", lambda w: _fd().read_csv(b"a,b\n1,2,3\n"), "line 2 has 3 fields"),
    ("lawfit-csv-not-text", lambda w: _fd().read_csv(b"\xff\xfe\x00"), "CSV"),
    ("lawfit-csv-one-column", lambda w: _fd().read_csv(b"a\n1\n"), "two columns"),
    ("lawfit-derive-no-name", lambda w: _fd().derive(pd.DataFrame({"a": [1.0]}), "= a * 2"), "derive"),
    ("lawfit-derive-code", lambda w: _fd().derive(pd.DataFrame({"a": [1.0]}), "b = __import__('os')"), "derive"),
    ("lawfit-curves-no-lr", lambda w: _fd().curves_from_frame(pd.DataFrame({"step": [1, 2], "loss": [3.0, 2.9]})),
     r"missing \['lr'\]"),
    ("lawfit-curves-huge-step", lambda w: _fd().curves_from_frame(
        pd.DataFrame({"step": [1, 1e12], "lr": [1e-3, 1e-3], "loss": [3.0, 2.9]})), "MAX_CURVE_STEPS"),
    ("lawfit-curves-store-loss", lambda w: _fd().curves_from_store(RunStore(w.db), {"a": "x"}, loss="acc"),
     "curve_loss"),
    ("lawfit-fit-on-none", lambda w: __import__("workbench.fit.curveset", fromlist=["x"]).curve_fit_data(
        {"a": (np.array([1, 2]), np.array([3.0, 2.9]), np.full(3, 1e-3))}, []), "fit_on"),
    # --- schedules, optimizers, devices directly
    ("schedule-build-unknown-param", lambda w: __import__("workbench.schedules", fromlist=["build"]).build(
        {"name": "wsd", "total_steps": 100, "decay_frac": 0.2}), "decay_frac"),
    ("optimizer-build-unknown", lambda w: __import__("workbench.optim", fromlist=["x"]).build_optimizer(
        "nosuchopt", []), "optimizer"),
    ("device-pick-tpu", lambda w: __import__("workbench.device", fromlist=["x"]).pick_device("tpu"), "device"),
]


@pytest.mark.parametrize("name, call, field", API, ids=[c[0] for c in API])
def test_api_bad_input(w, name, call, field):
    import re

    before = _snapshot(w)
    with pytest.raises(WorkbenchError) as e:
        call(w)
    assert re.search(field, str(e.value)), f"{name}: {field!r} not in {str(e.value)!r}"
    assert _snapshot(w) == before, f"{name}: the store changed"


def test_table_is_big_enough():
    assert len(CLI) + len(API) >= 150


# ---------------------------------------------------------------------------------------------- real processes
SUBPROCESS = [  # a few end to end through `python -m workbench` (each pays the torch import)
    (["run", "grokking", "--device", "tpu", "--no-progress"], "device"),
    (["export", "{f}/out.csv", "--sweep", "nosuch"], "sweep"),
    (["import", lambda w: _csv(w, "sub-huge.csv", _set("step", 1e30))], "step"),
]


@pytest.mark.parametrize("argv, field", SUBPROCESS, ids=[" ".join(map(str, a[:2])) for a, _ in SUBPROCESS])
def test_real_process_exit_status_and_stderr(w, argv, field):
    args = _fill(w, argv)
    before = _snapshot(w)
    p = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(f"workbench {args[0]}: error:") and field in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    assert _snapshot(w) == before


def test_import_is_atomic_and_valid_rows_round_trip(w, tmp_path):
    """A valid export re-imports whole; an export whose last row is bad imports nothing (one transaction)."""
    good = w.good.copy()
    good["run_id"] = "copy-" + good["run_id"].astype(str)
    ok, bad = tmp_path / "ok.csv", tmp_path / "bad.csv"
    good.to_csv(ok, index=False)
    broken = good.copy()
    broken["run_id"] = "other-" + broken["run_id"].astype(str)
    broken.loc[len(broken) - 1, "step"] = -1
    broken.to_csv(bad, index=False)
    with RunStore(tmp_path / "s.db") as st:
        with pytest.raises(WorkbenchError, match="step"):
            st.import_file(bad)
        assert st.runs().empty and st.cursor() == 0
        ids = st.import_file(ok)
        with RunStore(w.db, readonly=True) as src:
            a, b = src.metrics(w.finished), st.metrics(ids[0])
        assert len(a) == len(b) > 0
        assert a["value"].tolist() == b["value"].tolist() and a["step"].tolist() == b["step"].tolist()
        assert json.dumps(st.get_run(ids[0])["config"], sort_keys=True) == \
            json.dumps(RunStore(w.db, readonly=True).get_run(w.finished)["config"], sort_keys=True)
