"""Exceptions and warnings raised by scalingfit.

Every error a user can trigger is one of these, so that ``except ScalingFitError`` catches all
of them, and ``except ValueError`` still catches bad input.
"""

__all__ = ["ScalingFitError", "DataValidationError", "OptionError", "ConvergenceError",
           "StatisticalWarning"]


class ScalingFitError(Exception):
    """Base class of every error raised by scalingfit."""


class DataValidationError(ScalingFitError, ValueError):
    """The results table is malformed; the message names the column, the rows and the fix."""


class ConvergenceError(ScalingFitError, RuntimeError):
    """A numerical fit or sampler did not converge; the message lists what to try."""


class StatisticalWarning(UserWarning):
    """The analysis ran, but a diagnostic says its answer should be read with care."""


class OptionError(DataValidationError):
    """An option has a bad type or value; the message names the option, the allowed values and
    the value given. (A subclass of :class:`DataValidationError`: options are input too.)"""
