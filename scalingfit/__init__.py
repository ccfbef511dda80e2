"""scalingfit: honest shape verdicts for language-model scaling curves.

Data in (:func:`load_results`) -> shape tests over log model size with the model as the unit of
inference (:func:`fit_trend`) -> uncertainty (paired bootstrap, or PyMC) -> criteria and noise
diagnostics (:func:`check_claim`) -> report. Heavy dependencies (PyMC, matplotlib, torch) are
imported only where they are used.
"""

from ._version import __version__  # noqa: E402

from .exceptions import (ConvergenceError, DataValidationError, OptionError,  # noqa: E402
                         ScalingFitError, StatisticalWarning)
from .data import load_results  # noqa: E402
from .fit import fit_trend  # noqa: E402
from .results import TrendResult  # noqa: E402
from .claims import ClaimCheck, check_claim  # noqa: E402
from .many import ManyResult, fit_many  # noqa: E402

__all__ = ["load_results", "fit_trend", "fit_many", "TrendResult", "ManyResult", "check_claim",
           "ClaimCheck", "ScalingFitError",
           "DataValidationError", "OptionError", "ConvergenceError", "StatisticalWarning", "__version__"]
