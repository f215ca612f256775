"""YAML as researchers write it: ``lr: 1e-3`` is a float.

PyYAML follows YAML 1.1, whose float pattern needs a dot (``1.0e-3``), so ``1e-3`` loads as the *string*
"1e-3" and a config fails validation. :func:`load` is ``yaml.safe_load`` with the YAML 1.2 float pattern
added; everything else (booleans, ints, nulls) resolves as before.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


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
