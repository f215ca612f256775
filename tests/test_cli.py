"""The `workbench` CLI: runs list/show/delete, export/import, serve's command line, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workbench.apps import APPS, serve_command
from workbench.cli import main
from workbench.store import RunStore


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "cli.db"
    s = RunStore(path)
    sid = s.create_sweep("grid")
    ids = []
    for lr in (1e-3, 3e-3):
        rid = s.create_run(f"lr={lr}", task="grokking", config={"lr": lr}, sweep=sid)
        for step in range(3):
            s.log(rid, step, {"train_loss": 1.0 / (step + 1) * lr * 1e3})
        s.set_status(rid, "finished")
        ids.append(rid)
    s.close()
    return path, ids


def test_runs_list_show_delete(filled, capsys) -> None:
    path, ids = filled
    assert main(["runs", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert all(r in out for r in ids) and "grokking" in out and "finished" in out
    assert main(["runs", "list", "--json", "--store", str(path)]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ids
    assert main(["runs", "show", ids[0], "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert '"lr": 0.001' in out and "train_loss=0.3333 (step 2)" in out
    assert main(["runs", "delete", ids[0], "--store", str(path)]) == 0
    assert RunStore(path).runs()["id"].tolist() == ids[1:]


def test_unknown_run_is_a_clear_error_not_a_traceback(filled) -> None:
    path, _ = filled
    r = _cli("runs", "show", "nope", "--store", str(path))
    assert r.returncode == 2
    assert "run 'nope': no such run" in r.stderr and "Traceback" not in r.stderr


def test_export_import_via_cli(filled, tmp_path: Path) -> None:
    path, ids = filled
    for ext in ("csv", "parquet"):
        out = tmp_path / f"e.{ext}"
        assert main(["export", str(out), "--store", str(path)]) == 0
        other = tmp_path / f"o-{ext}.db"
        assert main(["import", str(out), "--store", str(other)]) == 0
        assert sorted(RunStore(other).runs()["id"]) == sorted(ids)
        assert len(RunStore(other).metrics(ids)) == 6
    wide = tmp_path / "w.csv"
    assert main(["export", str(wide), "--wide", "--store", str(path)]) == 0
    df = pd.read_csv(wide)
    assert list(df.columns) == ["run", "step", "tokens", "wall", "train_loss"] and len(df) == 6
    assert main(["export", str(tmp_path / "bad.txt"), "--store", str(path)]) == 2


def test_serve_command_is_panel_serve_on_loopback() -> None:
    cmd = serve_command(port=5123)
    assert cmd[1:4] == ["-m", "panel", "serve"]
    assert cmd[cmd.index("--address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "5123"
    setup = cmd[cmd.index("--setup") + 1]  # the imports, once, before the first visit
    assert Path(setup).is_file()
    pages = [Path(c) for c in cmd if c.endswith(".py") and c != setup]
    assert sorted(p.stem for p in pages) == sorted(APPS) and all(p.exists() for p in pages)
    with pytest.raises(ValueError, match="apps: unknown app 'nope'"):
        serve_command(apps=["nope"])


def test_subcommands_exist() -> None:
    r = _cli("--help")
    assert r.returncode == 0
    for sub in ("serve", "runs", "export", "import", "run", "sweep", "fit"):
        assert sub in r.stdout
