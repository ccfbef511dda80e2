"""The verdicts a fit can return, as data: the one shape registry.

Every module that names a shape -- validation of ``shapes=`` and ``claim=``, the verdict rules,
the claim checks, the reports, the plots and the CLI -- reads it from :data:`SHAPES` here, so
adding a shape is one record (and its test), not an edit in every room.

A verdict is stated on the *performance* scale: ``positive`` means larger models do better, for a
loss as for an accuracy (``sign = +1`` when higher scores are better, ``-1`` otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .exceptions import DataValidationError

__all__ = ["Shape", "SHAPES", "VERDICTS", "POPULATION_VERDICTS", "TREND_SHAPES", "MONOTONE_SHAPES", "U_SHAPES",
           "CLAIMS", "U_MIN_SIZES", "MIN_SIZES", "shape", "opposite", "check_claim_name",
           "claim_p_value"]


@dataclass(frozen=True)
class Shape:
    """One verdict and what every room needs to know of it.

    Attributes
    ----------
    name : str
        The verdict's key ('inverse').
    kind : {'monotone', 'u', 'flat', 'none'}
        Which test decides it: the linear slope, the two-lines U test, the equivalence test, or
        none (inconclusive).
    direction : int
        Performance direction of a monotone shape (+1 better with scale, -1 worse), or of the
        larger-scale arm of a U-type shape; 0 otherwise.
    summary : str
        A short phrase ('larger models do worse').
    sentence : str
        The phrase the verdict sentence of a report starts with.
    opposite : str or None
        The shape that contradicts it (a family showing it counts against generality).
    min_sizes : int
        Distinct model sizes a family needs before the shape can be tested.
    claimable : bool
        Whether ``check_claim`` / ``--claim`` accept it.
    p_column : str or None
        The column of a family / pooled row that holds the p-value of its own test step
        (``p_value`` for monotone shapes: the Knapp-Hartung slope test).
    """

    name: str
    kind: str
    direction: int
    summary: str
    sentence: str
    opposite: str | None
    min_sizes: int
    claimable: bool
    p_column: str | None
    #: returned only by the population-level engine (:mod:`scalingfit.population`), not by
    #: the per-family / pooled shape procedure
    population_only: bool = False


SHAPES = {s.name: s for s in [
    Shape("positive", "monotone", +1, "larger models do better",
          "larger models do better (positive scaling)", "inverse", 3, True, "p_value"),
    Shape("inverse", "monotone", -1, "larger models do worse",
          "larger models do worse (inverse scaling)", "positive", 3, True, "p_value"),
    Shape("u_shaped", "u", +1, "performance falls, then recovers at scale",
          "performance falls, then recovers at larger scale (U-shaped)", "inverted_u", 5, True,
          "p_u_shaped"),
    Shape("inverted_u", "u", -1, "performance rises, then falls at scale",
          "performance rises, then falls at larger scale (inverted U)", "u_shaped", 5, True,
          "p_inverted_u"),
    Shape("flat", "flat", 0, "performance does not change beyond the margin",
          "performance does not change beyond the margin (flat, shown by equivalence test)",
          None, 3, True, "p_flat"),
    Shape("inconclusive", "none", 0, "neither a trend nor flatness is shown",
          "the data show neither a trend nor flatness (inconclusive)", None, 0, False, None),
    # population level only (scalingfit.population): families significantly disagree in
    # direction, so no average sign is a population direction
    Shape("mixed", "none", 0, "families disagree in direction",
          "families disagree in direction: some scale positively, some inversely (mixed)",
          None, 3, False, None, population_only=True),
]}

#: every verdict the shape procedure can return, in the order reports list them
VERDICTS = tuple(n for n, s in SHAPES.items() if not s.population_only)
#: every verdict of the population level (adds 'mixed')
POPULATION_VERDICTS = tuple(SHAPES)
#: shapes that are a trend (what a claim of scaling behaviour can be)
TREND_SHAPES = tuple(n for n, s in SHAPES.items() if s.kind in ("monotone", "u"))
MONOTONE_SHAPES = tuple(n for n, s in SHAPES.items() if s.kind == "monotone")
U_SHAPES = tuple(n for n, s in SHAPES.items() if s.kind == "u")
#: shapes a user may claim (``check_claim``, ``--claim``)
CLAIMS = tuple(n for n, s in SHAPES.items() if s.claimable)
#: sizes per family a U-type test needs (two lines of at least 2 models each, plus the break)
U_MIN_SIZES = min(SHAPES[n].min_sizes for n in U_SHAPES)
#: sizes per family any trend needs (2 points leave no room for model-level noise)
MIN_SIZES = min(SHAPES[n].min_sizes for n in MONOTONE_SHAPES)


def shape(name: str) -> Shape:
    """The record of ``name``; a :class:`DataValidationError` naming the choices otherwise."""
    try:
        return SHAPES[name]
    except (KeyError, TypeError):
        raise DataValidationError(
            f"unknown shape {name!r}; choose from {list(SHAPES)}.") from None


def opposite(name: str) -> str | None:
    """The contradicting shape of ``name`` (None for flat and inconclusive)."""
    return shape(name).opposite


def check_claim_name(claim, *, allowed=CLAIMS, argname: str = "claim") -> str:
    """Return ``claim`` when it is one of ``allowed``, else raise naming the choices."""
    if not isinstance(claim, str) or claim not in allowed:
        raise DataValidationError(f"{argname} must be one of {list(allowed)}; got {claim!r}.")
    return claim


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def claim_p_value(row, claim: str, sign: int = 1, alpha: float = 0.05) -> float:
    """p-value of ``claim`` from one row of estimates (a family row or ``result.pooled``).

    The p-value of the gated verdict procedure of :mod:`scalingfit.shapes` for this shape, as
    an intersection-union test: the claim is shown at level ``alpha`` exactly when every step
    rejects, so ``p = max(p_gate, p_step)`` and ``p <= alpha`` matches the verdict.

    * monotone claims: the step is the two-sided Knapp-Hartung slope test when the estimate
      points the claimed way on the performance scale (``sign`` = +1 when higher scores are
      better, -1 otherwise), else 1 (the data point the other way: no level shows the claim);
    * U-type claims: the two-lines p (``p_u_shaped`` / ``p_inverted_u``);
    * 'flat': the equivalence (TOST) p when the gate does not reject at ``alpha`` (a curve the
      gate calls non-flat cannot be flat), else 1.

    NaN when the row lacks the estimate the claim needs. Posterior probabilities
    (``method='bayes'``) are not p-values and are not read here.
    """
    s = shape(claim)
    gate = row.get("p_gate")
    gate = float(gate) if _finite(gate) else 0.0
    p = row.get(s.p_column) if s.p_column else None
    if s.kind == "monotone":
        b = row.get("slope")
        if not (_finite(b) and _finite(p)):
            return float("nan")
        agrees = math.copysign(1.0, float(b)) * sign == s.direction and float(b) != 0
        return max(gate, float(p)) if agrees else 1.0
    if not _finite(p):
        return float("nan")
    if s.kind == "flat":
        return float(p) if gate > alpha else 1.0
    return max(gate, float(p))
