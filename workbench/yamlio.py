"""YAML as researchers write it: ``lr: 1e-3`` is a float.

PyYAML follows YAML 1.1, whose float pattern needs a dot (``1.0e-3``), so ``1e-3`` loads as the *string*
"1e-3" and a config fails validation. :func:`load` is ``yaml.safe_load`` with the YAML 1.2 float pattern
added; everything else (booleans, ints, nulls) resolves as before.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from workbench.errors import WorkbenchError


class _Loader(yaml.SafeLoader):
    """SafeLoader that also resolves YAML 1.2 floats without a dot (``1e-3``, ``-2E+5``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load(text: str) -> Any:
    """Parse ``text`` like ``yaml.safe_load``, with ``1e-3`` read as a float."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


YAMLError = yaml.YAMLError


def load_mapping_file(path: str | Path, field: str = "config") -> dict:
    """A YAML (``.yaml``/``.yml``) or JSON file holding one mapping, as a dict. A missing file, a
    directory, unreadable or malformed text, or a top level that is not a mapping is a
    :class:`~workbench.errors.WorkbenchError` whose message starts with ``field``."""
    p = Path(path)
    if not p.exists():
        raise WorkbenchError(f"{field}: file {p} does not exist")
    if p.is_dir():
        raise WorkbenchError(f"{field}: {p} is a directory, not a YAML or JSON file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise WorkbenchError(f"{field}: cannot read {p} ({e})") from None
    try:
        d = json.loads(text) if p.suffix.lower() == ".json" else load(text)
    except (yaml.YAMLError, ValueError) as e:
        kind = "JSON" if p.suffix.lower() == ".json" else "YAML"
        raise WorkbenchError(f"{field}: {p} is not valid {kind} ({' '.join(str(e).split())})") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise WorkbenchError(f"{field}: {p} must hold a mapping of field: value, got a {type(d).__name__}")
    return d
