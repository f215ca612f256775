"""The README's first lines give the two commands a newcomer runs; `.ci/run` must call the same
test command, and both commands must exist as targets that do their own set-up."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block and text.index(block.group(0)) < 800, "the two commands must open the README"
    return [ln.split("#")[0].strip() for ln in block.group(1).splitlines() if ln.split("#")[0].strip()]


def test_readme_opens_with_two_commands() -> None:
    cmds = readme_commands()
    assert cmds == ["make serve", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    calls = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert readme_commands()[1] in calls


def test_make_targets_do_their_own_setup() -> None:
    mk = (ROOT / "Makefile").read_text()
    for target, extras, runs in (("serve", "", "-m workbench serve"), ("test", " all", "-m pytest")):
        body = re.search(rf"^{target}:\n((?:\t.*\n)+)", mk, re.M).group(1)
        assert f"scripts/setup.sh{extras})" in body and runs in body


def test_setup_pins_cpu_torch_only_when_missing() -> None:
    sh = (ROOT / "scripts" / "setup.sh").read_text()
    assert 'import torch' in sh and '"torch==2.13.0"' in sh
    assert sh.index("import torch") < sh.index('"torch==2.13.0"')
