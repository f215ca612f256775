"""One exception base class for bad input anywhere in the package.

Everything the package raises because a caller gave it something it cannot use (a field out of
range, an unknown name, a malformed file) is a :class:`WorkbenchError`. It subclasses
``ValueError`` so existing ``except ValueError`` code keeps working. The CLI catches it and exits
with status 2 and the message; the dashboards catch it and show the message in the page.
Messages name the field and, where there is one, the allowed range.
"""

from __future__ import annotations

__all__ = ["WorkbenchError"]


class WorkbenchError(ValueError):
    """Bad input: the message names the field and the allowed range or values."""
