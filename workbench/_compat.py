"""Deprecated keyword aliases: one name per concept across ``fit``, ``train`` and ``sweeps`` (issue 16), the
old public spelling still accepted for a while with a ``DeprecationWarning``."""

from __future__ import annotations

import warnings
from typing import TypeVar

T = TypeVar("T")


def deprecated_alias(old: str, old_value: T | None, new: str, new_value: T, *, stacklevel: int = 3) -> T:
    """``new_value``, or ``old_value`` (with a ``DeprecationWarning`` naming both keywords) when the caller
    used the deprecated keyword ``old``."""
    if old_value is None:
        return new_value
    warnings.warn(f"{old}= is deprecated, use {new}= (the same meaning)", DeprecationWarning, stacklevel=stacklevel)
    return old_value
