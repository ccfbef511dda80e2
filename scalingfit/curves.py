"""Candidate curves over log10 model size, as data.

Each curve is a small record: a name, its parameter names and a ``design(z, **kw)`` function that
returns the columns it adds to the per-family intercepts. All curves are linear in their
parameters, so one weighted least-squares machinery (:mod:`scalingfit.metareg`) fits them all, and
a bootstrap of a curve is one matrix product.

``z`` is log10 of the scale variable (parameters or FLOPs), centred on the mean of the models
being fitted, so that the slope is the change in score per 10x of scale.

The shape *verdicts* (positive, inverse, U-shaped, inverted-U, flat, inconclusive) are defined in
:data:`scalingfit.verdicts.SHAPES`; which curve and which test decides each one is in
:mod:`scalingfit.shapes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Curve", "CURVES", "design_matrix", "two_lines_columns"]


def _linear(z, **_):
    return z[:, None]


def _quadratic(z, **_):
    return np.column_stack([z, z**2])


def two_lines_columns(z, breakpoint):
    """Interrupted-regression columns of the two-lines test (Simonsohn 2018).

    ``x_low = z - c`` for ``z <= c`` (else 0), ``x_high = z - c`` for ``z > c`` (else 0) and the
    jump indicator ``high = 1`` for ``z > c``: the model at the breakpoint belongs to the low
    line, as in Simonsohn's ``twolines`` R code.
    """
    z = np.asarray(z, dtype=float)
    high = z > breakpoint
    d = z - breakpoint
    return np.column_stack([np.where(high, 0.0, d), np.where(high, d, 0.0), high.astype(float)])


def _two_lines(z, breakpoint=None, **_):
    return two_lines_columns(z, breakpoint)


@dataclass(frozen=True)
class Curve:
    """A candidate curve: ``score = family intercept + design(z) @ coefficients``."""

    name: str
    params: tuple
    design: Callable
    description: str

    @property
    def n_params(self) -> int:
        return len(self.params)


CURVES = {
    c.name: c for c in [
        Curve("flat", (), lambda z, **_: np.empty((len(z), 0)), "constant score"),
        Curve("linear", ("slope",), _linear, "straight line in log10 scale"),
        Curve("quadratic", ("slope", "curvature"), _quadratic,
              "parabola in log10 scale (Lind-Mehlum U test)"),
        Curve("two_lines", ("slope_left", "slope_right", "jump"), _two_lines,
              "two lines meeting at a breakpoint (Simonsohn two-lines test)"),
    ]
}


def design_matrix(curve: str, z, groups, **kw) -> np.ndarray:
    """Full design matrix: one intercept column per family, then the curve's columns.

    Parameters
    ----------
    curve : str
        A key of :data:`CURVES`.
    z : array_like, shape (k,)
        Centred log10 scale of each model.
    groups : array_like, shape (k,)
        Family index (0..F-1) of each model.
    """
    z = np.asarray(z, dtype=float)
    groups = np.asarray(groups)
    n_groups = groups.max() + 1
    intercepts = (groups[:, None] == np.arange(n_groups)[None, :]).astype(float)
    return np.column_stack([intercepts, CURVES[curve].design(z, **kw)])
