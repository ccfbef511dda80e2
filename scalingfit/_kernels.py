"""Numba kernel of the collapsed model-level posterior (imported lazily by :mod:`scalingfit.bayes`).

Why a kernel: nutpie samples a PyMC model through numba C callbacks that it compiles anew in
every process (5-9 s for a one-parameter model here, 13-22 s for the model-level model; numba
cannot cache them on disk), which was most of the first Bayesian fit's wall time. This kernel
is the same log density, written once with its analytic gradient and compiled with
``cache=True``: numba stores it on disk, so only the first call on a machine compiles it (3 s
here) and every later process loads it in a fraction of a second. ``tests/test_bayes.py``
checks that its log density and gradient equal PyMC's for the model built by
:func:`scalingfit.bayes._build_model_level` (that PyMC model stays the definition, and is what
``sampler='pymc'`` samples).

The density, on the unconstrained scale ``x = (log sd_a, log sd_b, log sd_c, log tau_1, ...,
log tau_F)`` that PyMC and nutpie use for half-normal scales::

    S = Z diag(g) Z' + V + diag(tau[fam]^2),   g = (mu_prior^2, sd^2 repeated per family)
    log p = log N(y | 0, S) + sum log HalfNormal(sd | s_sd) + sum log HalfNormal(tau | s_tau)
            + sum(x)                                  (log-Jacobian of the log transform)

and its gradient, with ``alpha = S^-1 y`` and ``P = S^-1``: ``d log N / d g_p = (z_p' alpha)^2
/ 2 - z_p' P z_p / 2`` for column ``z_p`` of ``Z``, ``d log N / d tau_f^2 = sum over the models
m of family f of (alpha_m^2 - P_mm) / 2``, then the chain rule ``d / d log s = 2 s^2 d / d s^2``.
"""

from __future__ import annotations

import numba
import numpy as np

_LOG_2PI = float(np.log(2 * np.pi))
_LOG_SQRT_2_OVER_PI = float(0.5 * np.log(2 / np.pi))


@numba.njit(cache=True, nogil=True)
def model_level_logp(x, y, V, Z, fam, g0, s_sd, s_tau):
    """Log density and gradient of the collapsed model-level posterior at ``x``.

    Parameters
    ----------
    x : ndarray, shape (3 + F,)
        ``log sd`` (3) then ``log tau`` (F).
    y : ndarray, shape (k,)
        Standardised model scores.
    V : ndarray, shape (k, k)
        Their sampling covariance (standardised units).
    Z : ndarray, shape (k, 3 + 3F)
        Population then per-family design columns (``bayes._z_matrix``).
    fam : ndarray of int64, shape (k,)
        Family index of each model.
    g0 : ndarray, shape (3,)
        Prior variances of the population coefficients ``mu``.
    s_sd : ndarray, shape (3,)
        Half-normal prior scales of ``sd``.
    s_tau : float
        Half-normal prior scale of every ``tau_f``.

    Returns
    -------
    logp : float
    grad : ndarray, shape (3 + F,)
    """
    k, p = Z.shape
    F = p // 3 - 1
    # loops rather than array expressions: numba compiles them in less than half the time
    g = np.empty(p)                             # prior variances of the columns of Z
    for j in range(3):
        g[j] = g0[j]
        for f in range(F):
            g[3 + 3 * f + j] = np.exp(2 * x[j])
    Zg = np.empty((k, p))
    for i in range(k):
        for q in range(p):
            Zg[i, q] = Z[i, q] * g[q]
    S = Zg @ Z.T
    for i in range(k):
        for j in range(k):
            S[i, j] += V[i, j]
        S[i, i] += np.exp(2 * x[3 + fam[i]])
    L = np.linalg.cholesky(S)
    Li = np.linalg.inv(L)
    P = Li.T @ Li
    alpha = P @ y
    W = P @ Z
    lp = -0.5 * k * _LOG_2PI + (3 + F) * _LOG_SQRT_2_OVER_PI - F * np.log(s_tau)
    for i in range(k):                          # log N(y | 0, S)
        lp += -np.log(L[i, i]) - 0.5 * y[i] * alpha[i]
    grad = np.zeros(3 + F)                      # first d log N / d s^2, then d / d log s
    for i in range(k):
        grad[3 + fam[i]] += 0.5 * (alpha[i] ** 2 - P[i, i])
    for q in range(3, p):
        za, zw = 0.0, 0.0
        for i in range(k):
            za += Z[i, q] * alpha[i]
            zw += Z[i, q] * W[i, q]
        grad[q % 3] += 0.5 * (za * za - zw)
    for j in range(3 + F):                      # chain rule, half-normal priors, Jacobian
        s = np.exp(x[j])
        r = s / (s_sd[j] if j < 3 else s_tau)
        grad[j] = 2 * s * s * grad[j] - r * r + 1
        lp += -0.5 * r * r + x[j] - (np.log(s_sd[j]) if j < 3 else 0.0)
    return lp, grad
