"""Errors of the fitting package (ValueError subclasses naming the field and the allowed range)."""


from workbench.errors import WorkbenchError


class FitDataError(WorkbenchError):
    """Bad input data or arguments for a fit (NaN, inf, non-positive values under a log, too few points...)."""


class UnknownLawError(FitDataError, KeyError):
    """No law of that name is registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
