"""Law fitters: scaling laws, schedule-aware loss-curve laws, uncertainty and comparison.

``get_law(name)``, ``available_laws()``, ``fit(law, data, ...) -> FitResult``, ``compare(results)``,
``crossover(a, b, ...)``, ``extrapolate(results, X)``; data from arrays, DataFrames, CSVs or the run store
(:class:`FitData`).
"""

from workbench.fit import schedule_laws as _schedule_laws  # noqa: F401  (registers the schedule laws)
from workbench.fit.compare import compare, crossover, extrapolate
from workbench.fit.data import FitData, parse_mapping
from workbench.fit.errors import FitDataError, UnknownLawError
from workbench.fit.fitting import fit
from workbench.fit.laws import (
           Law,
           Param,
           available_laws,
           chinchilla_allocation,
           get_law,
           register_law,
           user_law,
)
from workbench.fit.learning_curves import CurveForecast, fit_curve, should_stop
from workbench.fit.result import FitResult
from workbench.fit.schedule_laws import curve_metrics, lr_array
from workbench.fit.steplaw import fit_step_law, select_near_optimal

__all__ = ["CurveForecast", "FitData", "FitDataError", "FitResult", "Law", "Param", "UnknownLawError",
           "available_laws", "chinchilla_allocation", "compare", "crossover", "curve_metrics", "extrapolate", "fit",
           "fit_curve", "fit_step_law", "get_law", "lr_array", "parse_mapping", "register_law",
           "select_near_optimal", "should_stop", "user_law"]
