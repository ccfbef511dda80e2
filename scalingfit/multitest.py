"""Multiple-testing adjustment: the one helper every room uses (families, tasks, models).

Holm's step-down and Benjamini-Hochberg's step-up adjustments through statsmodels'
``multipletests``, NaN-aware: a NaN p-value (a test that could not be run) stays NaN and does
not count towards the number of tests.
"""

from __future__ import annotations

import numpy as np

__all__ = ["adjust_p", "METHODS"]

#: names accepted by :func:`adjust_p` (statsmodels' names)
METHODS = ("holm", "fdr_bh", "bonferroni")


def _holm(p: np.ndarray) -> np.ndarray:
    # Holm's step-down, written out for the inner loops of the verdict engine (statsmodels'
    # multipletests costs ~40 ms a call there: it runs gc.collect()); equality with
    # multipletests(p, method='holm') is tested.
    m = len(p)
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adj
    return out


def adjust_p(p, method: str = "holm") -> np.ndarray:
    """Adjusted p-values, NaN where ``p`` is NaN.

    Parameters
    ----------
    p : array_like
        Unadjusted p-values.
    method : {'holm', 'fdr_bh', 'bonferroni'}
        Family-wise error (Holm, Bonferroni) or false-discovery rate (Benjamini-Hochberg).

    Returns
    -------
    numpy.ndarray
        Same shape as ``p``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    if method == "holm":
        out[ok] = _holm(p[ok])
    else:
        from statsmodels.stats.multitest import multipletests

        out[ok] = multipletests(p[ok], method=method)[1]
    return out
