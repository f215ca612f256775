"""The apps are thin compositions (issue 17, item 6): no app module imports another app module, no
component under ``workbench/apps/`` imports an app module, every module under ``workbench/apps/`` is at
most 300 lines, and every app class has at most 15 parameters of its own.

An app module is one named by :data:`workbench.apps.APPS` (``module:Class``); everything else under
``workbench/apps/`` (``base``, ``auth``, ``export``, ``components/``) is shared infrastructure that app
modules may use. Imports are read from the source with ``ast`` (also imports inside functions)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import param
import pytest

from workbench.apps import APPS

APPS_DIR = Path(__file__).resolve().parents[1] / "workbench" / "apps"
APP_MODULES = {info.target.split(":")[0] for info in APPS.values()}
MAX_LINES = 300
MAX_PARAMS = 15

# Modules still being split (issue 17 item 6), with the checks they fail today. The change that splits
# a module removes its entry; a listed check that passes fails the suite, so the list can't go stale.
NOT_YET_SPLIT: dict[str, set[str]] = {
}


def _check(name: str, check: str, problem: str) -> None:
    """Fail with ``problem`` (empty: no problem), or xfail where ``name`` is known not to be split yet."""
    known = check in NOT_YET_SPLIT.get(name, set())
    if problem and known:
        pytest.xfail(f"not split yet (issue 17 item 6): {problem}")
    assert not known, f"{name} now passes the {check!r} check: remove it from NOT_YET_SPLIT"
    assert not problem, problem


def _module_name(path: Path) -> str:
    rel = path.relative_to(APPS_DIR.parents[1]).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(path: Path, module: str | None = None) -> set[str]:
    """Every module name ``path`` (the module ``module``, by default its name under the package)
    imports: absolute names, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = (module or _module_name(path)).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


MODULES = sorted(p for p in APPS_DIR.rglob("*.py") if "templates" not in p.parts)


def test_app_modules_exist() -> None:
    for mod in APP_MODULES:
        assert (APPS_DIR.parents[1] / (mod.replace(".", "/") + ".py")).exists(), mod


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(APPS_DIR)))
def test_no_module_imports_another_app(path: Path) -> None:
    own = _module_name(path)
    others = APP_MODULES - {own}
    bad = sorted(n for n in _imported(path) if any(n == o or n.startswith(o + ".") for o in others))
    _check(path.name, "imports", f"{own} imports app module(s) {bad}" if bad else "")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(APPS_DIR)))
def test_module_is_small(path: Path) -> None:
    n = len(path.read_text().splitlines())
    _check(path.name, "lines", f"{path.name}: {n} lines > {MAX_LINES}" if n > MAX_LINES else "")


@pytest.mark.parametrize("path", sorted(APPS), ids=str)
def test_app_has_few_parameters(path: str) -> None:
    mod, cls_name = APPS[path].target.split(":")
    cls = getattr(importlib.import_module(mod), cls_name)
    own = [n for n in cls.param if n != "name" and n not in param.Parameterized.param]
    _check(mod.rsplit(".", 1)[-1] + ".py", "params",
           f"{cls_name}: {len(own)} parameters > {MAX_PARAMS}: {own}" if len(own) > MAX_PARAMS else "")


def test_import_reader_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    # apps imported each other inside methods before the split; the reader must see those too
    p = tmp_path / "m.py"
    p.write_text("import os\n\ndef f():\n    from workbench.apps.schedule_lab import x\n"
                 "    from .sweep_board import y\n    from . import base\n")
    seen = _imported(p, "workbench.apps.m")
    assert {"os", "workbench.apps.schedule_lab", "workbench.apps.sweep_board",
            "workbench.apps.base"} <= seen
