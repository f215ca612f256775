"""Law fitters: scaling laws, schedule-aware loss-curve laws, uncertainty and comparison.

``get_law(name)``, ``available_laws()``, ``fit(law, data, ...) -> FitResult``, ``predict_schedule(result,
schedule)``, ``compare(results)``, ``crossover(a, b, ...)``, ``extrapolate(results, X)``; data from arrays,
DataFrames, CSVs, loss curves or the run store (:class:`FitData`; the step convention is stated in
:mod:`workbench.fit.data`). Every result (``FitResult``, ``CurveForecast``, ``StepLawFit``) follows
:class:`ResultProtocol`. The import graph of the package is a DAG (tests/test_fit_api.py):
errors, metrics, threads, core -> laws, data, domain, calibration, objective -> result -> schedule laws,
fitting, steplaw, learning curves -> compare, predict, repetition.
"""

from workbench.fit import repetition as _repetition  # noqa: F401  (registers the repetition laws)
from workbench.fit import schedule_laws as _schedule_laws  # noqa: F401  (registers the schedule laws)
from workbench.fit.calibration import Calibration
from workbench.fit.compare import compare, crossover, extrapolate
from workbench.fit.data import FitData, check_steps, holdout_mask, lr_array, parse_mapping, per_step_lr
from workbench.fit.diagnostics import gap_trend, gap_trends, residual_trend
from workbench.fit.domain import Domain, ExtrapolationWarning
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
from workbench.fit.metrics import curve_metrics
from workbench.fit.predict import predict_schedule
from workbench.fit.repetition import compare_repetition, with_unique
from workbench.fit.result import FitResult, Prediction, ResultProtocol
from workbench.fit.schedule_laws import fit_multi_power, schedule_law_starts
from workbench.fit.steplaw import StepLawFit, fit_step_law, select_near_optimal

__all__ = ["Calibration", "CurveForecast", "Domain", "ExtrapolationWarning", "FitData", "FitDataError", "FitResult",
           "Law", "Param", "Prediction", "ResultProtocol", "StepLawFit", "UnknownLawError", "available_laws",
           "check_steps", "chinchilla_allocation", "compare", "compare_repetition", "crossover", "curve_metrics",
           "extrapolate", "fit", "fit_curve", "fit_multi_power", "fit_step_law", "gap_trend", "gap_trends", "get_law",
           "holdout_mask", "lr_array", "parse_mapping", "per_step_lr", "predict_schedule", "register_law",
           "residual_trend", "schedule_law_starts", "select_near_optimal", "should_stop", "user_law", "with_unique"]
