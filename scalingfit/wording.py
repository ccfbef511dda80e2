"""Numbers and units in words: the formatting every report room shares.

Reports quote numbers to 3 significant figures (p-values to 2), sizes with a suffix
(``1.3B``), a missing value as an en dash, and slopes in the words of :func:`slope_words`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fmt", "fmt_p", "fmt_size", "finite", "num", "slope_words", "x_words"]

#: what a missing or non-finite number is shown as
MISSING = "\u2013"


def finite(v) -> bool:
    """True when ``v`` is a finite number (None, NaN, text: False)."""
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def num(v) -> float:
    """``v`` as a float, NaN when it is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def fmt(v, digits=3) -> str:
    """A value in running text: ``digits`` significant figures, 'yes' / 'no' for booleans."""
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return MISSING
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}g}"
    return str(v)


def fmt_p(p) -> str:
    """A p-value or probability column: 2 significant figures."""
    return fmt(p, 2)


def fmt_size(v) -> str:
    """A model size or compute: ``125M``, ``1.3B``."""
    if not finite(v):
        return MISSING
    v = float(v)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def x_words(meta, flops: str = "training FLOPs") -> str:
    """The scale variable in words: 'parameters' or ``flops``."""
    return "parameters" if meta.get("x", "n_params") == "n_params" else flops


def slope_words(result) -> str:
    """Units of a slope in running text: '<metric> per 10x parameters' (or training FLOPs).

    The same words in the verdict sentence, the text report and the criterion lights."""
    return f"{result.meta.get('metric') or 'score'} per 10x {x_words(result.meta)}"
