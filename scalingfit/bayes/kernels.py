"""Numba kernels of the Bayesian engine's posteriors: log densities with analytic gradients.

Why kernels: nutpie samples a PyMC model through numba C callbacks that it compiles anew in
every process (5-9 s for a one-parameter model here, 13-29 s for the model-level model, 13-34 s
for the crossed one; numba cannot cache them on disk), which was most of the first Bayesian
fit's wall time. These kernels are the same log densities, written once with their analytic
gradients and compiled with ``cache=True``: numba stores them on disk, so only the first call on
a machine compiles them (3 s for the model-level kernel here) and every later process loads them
in a fraction of a second. ``tests/test_bayes.py`` checks that their log densities and gradients
equal PyMC's for the models of :func:`scalingfit.bayes.models.build_model_level` and
:func:`scalingfit.bayes.models.build_crossed` at random points (those PyMC models stay the
definition, and are what ``sampler='pymc'`` samples). The prior constants are arguments, built
by :func:`scalingfit.bayes.models.kernel_constants` from the same :data:`~scalingfit.bayes.PRIORS`
the PyMC models read.

The functions are plain Python until a kernel is first used: ``from .kernels import
model_level_logp`` (or the attribute) imports numba and compiles every function here (or loads
it from numba's disk cache), so importing :mod:`scalingfit` or :mod:`scalingfit.bayes` does not
import numba.

Reproducibility: the kernels use no BLAS or LAPACK. NUTS trajectories are chaotic, so a
last-bit difference in one gradient changes every later draw, and OpenBLAS chooses its kernels
by CPU (``DYNAMIC_ARCH``): with ``np.linalg`` and ``@`` in here, the same seed gave different
draws with ``OPENBLAS_CORETYPE=Haswell`` or ``Sandybridge`` than on this SkylakeX machine.
The dense loops below run plain IEEE arithmetic in a fixed order (numba without ``fastmath``
neither reassociates nor fuses multiply-adds: ``NUMBA_CPU_NAME=generic`` gives the same draws),
so a seed gives the same draws on every CPU (docs/bayes.md, "Reproducibility").

:func:`model_level_logp`: the density, on the unconstrained scale ``x = (log sd_a, log sd_b,
log sd_c, log tau_1, ..., log tau_F)`` that PyMC and nutpie use for half-normal scales::

    S = Z diag(g) Z' + V + diag(tau[fam]^2),   g = (mu_prior^2, sd^2 repeated per family)
    log p = log N(y | 0, S) + sum log HalfNormal(sd | s_sd) + sum log HalfNormal(tau | s_tau)
            + sum(x)                                  (log-Jacobian of the log transform)

and its gradient, with ``alpha = S^-1 y`` and ``P = S^-1``: ``d log N / d g_p = (z_p' alpha)^2
/ 2 - z_p' P z_p / 2`` for column ``z_p`` of ``Z``, ``d log N / d tau_f^2 = sum over the models
m of family f of (alpha_m^2 - P_mm) / 2``, then the chain rule ``d / d log s = 2 s^2 d / d s^2``.
"""

from __future__ import annotations

import math

import numpy as np

_LOG_2PI = float(np.log(2 * np.pi))
_LOG_SQRT_2_OVER_PI = float(0.5 * np.log(2 / np.pi))

__all__ = ["model_level_logp", "crossed_logp", "split_basis", "matvec"]

#: functions compiled together on first use (callers first need their callees as dispatchers)
_HELPERS = ("_cholesky", "_precision", "_matmul", "_matvec", "_curve_cov", "_d_sd2",
            "_gamma_scales", "_latent_scores", "_example_effects", "_gaussian_loglik",
            "_logit_loglik", "_back_through_transforms")
#: public name -> the plain function it compiles
_KERNELS = {"model_level_logp": "_model_level_logp", "crossed_logp": "_crossed_logp",
            "split_basis": "_split_basis", "matvec": "_matvec"}


def __getattr__(name):
    """The compiled kernels, compiled (or loaded from numba's disk cache) on first access."""
    if name in _KERNELS:
        _compile()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _compile():
    import numba

    space = globals()
    if "model_level_logp" in space:
        return
    jit = numba.njit(cache=True, nogil=True)
    for name in _HELPERS:
        space[name] = jit(space[name])
    for public, private in _KERNELS.items():
        space[public] = space[private] if private in _HELPERS else jit(space[private])


# ---------------------------------------------------------------- dense linear algebra, no BLAS
# small matrices (k models), fixed summation order: the same bits on every CPU (module docstring)
def _cholesky(S):
    """Lower Cholesky factor of ``S`` (Cholesky-Banachiewicz order); raises when ``S`` is not
    positive definite (the guarded callback turns that into -inf, a divergence)."""
    n = S.shape[0]
    L = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            s = S[i, j]
            for q in range(j):
                s -= L[i, q] * L[j, q]
            if i == j:
                if not s > 0.0:
                    raise ValueError("matrix is not positive definite")
                L[i, i] = np.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
    return L


def _precision(L):
    """``S^-1 = L^-T L^-1`` from the Cholesky factor ``L`` of ``S``."""
    n = L.shape[0]
    Li = np.zeros((n, n))
    for j in range(n):
        Li[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, n):
            s = 0.0
            for q in range(j, i):
                s += L[i, q] * Li[q, j]
            Li[i, j] = -s / L[i, i]
    P = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            s = 0.0
            for q in range(j, n):
                s += Li[q, i] * Li[q, j]
            P[i, j] = s
            P[j, i] = s
    return P


def _matmul(A, B, transpose_a):
    """``A @ B`` (``A.T @ B`` with ``transpose_a``) in a fixed summation order."""
    n = A.shape[1] if transpose_a else A.shape[0]
    inner = A.shape[0] if transpose_a else A.shape[1]
    out = np.zeros((n, B.shape[1]))
    for i in range(n):
        for q in range(inner):
            a = A[q, i] if transpose_a else A[i, q]
            for j in range(B.shape[1]):
                out[i, j] += a * B[q, j]
    return out


def _matvec(A, x, transpose_a):
    """``A @ x`` (``A.T @ x`` with ``transpose_a``) in a fixed summation order."""
    n = A.shape[1] if transpose_a else A.shape[0]
    inner = A.shape[0] if transpose_a else A.shape[1]
    out = np.zeros(n)
    for i in range(n):
        s = 0.0
        for q in range(inner):
            s += (A[q, i] if transpose_a else A[i, q]) * x[q]
        out[i] = s
    return out


# loops rather than array expressions: numba compiles them in less than half the time
def _curve_cov(Z, g0, sd2):
    """``Z diag(g) Z'``: the covariance the family curves give the model scores, with ``g`` the
    prior variances of Z's columns (``g0`` for the population, ``sd2`` for each family)."""
    k, p = Z.shape
    g = np.empty(p)
    for j in range(3):
        g[j] = g0[j]
        for f in range(p // 3 - 1):
            g[3 + 3 * f + j] = sd2[j]
    C = np.empty((k, k))
    for i in range(k):
        for j in range(i + 1):
            s = 0.0
            for q in range(p):
                s += Z[i, q] * g[q] * Z[j, q]
            C[i, j] = s
            C[j, i] = s
    return C


def _d_sd2(Z, alpha, W):
    """d log N(y | 0, S) / d sd_j^2 for the three family SDs, summed over families:
    ``((z_q' alpha)^2 - z_q' S^-1 z_q) / 2`` over the family columns ``q`` of ``Z`` of each
    coefficient (``alpha = S^-1 y``, ``W = S^-1 Z``)."""
    k, p = Z.shape
    out = np.zeros(3)
    for q in range(3, p):
        za, zw = 0.0, 0.0
        for i in range(k):
            za += Z[i, q] * alpha[i]
            zw += Z[i, q] * W[i, q]
        out[q % 3] += 0.5 * (za * za - zw)
    return out


def _model_level_logp(x, y, V, Z, fam, g0, s_sd, s_tau):
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
        Population then per-family design columns (:func:`scalingfit.bayes.models.z_matrix`).
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
    S = _curve_cov(Z, g0, np.exp(2 * x[:3]))
    for i in range(k):
        for j in range(k):
            S[i, j] += V[i, j]
        S[i, i] += np.exp(2 * x[3 + fam[i]])
    L = _cholesky(S)
    P = _precision(L)
    alpha = _matvec(P, y, False)
    W = _matmul(P, Z, False)
    lp = -0.5 * k * _LOG_2PI + (3 + F) * _LOG_SQRT_2_OVER_PI - F * np.log(s_tau)
    for i in range(k):                          # log N(y | 0, S)
        lp += -np.log(L[i, i]) - 0.5 * y[i] * alpha[i]
    grad = np.zeros(3 + F)                      # first d log N / d s^2, then d / d log s
    for i in range(k):
        grad[3 + fam[i]] += 0.5 * (alpha[i] ** 2 - P[i, i])
    grad[:3] = _d_sd2(Z, alpha, W)
    for j in range(3 + F):                      # chain rule, half-normal priors, Jacobian
        s = np.exp(x[j])
        r = s / (s_sd[j] if j < 3 else s_tau)
        grad[j] = 2 * s * s * grad[j] - r * r + 1
        lp += -0.5 * r * r + x[j] - (np.log(s_sd[j]) if j < 3 else 0.0)
    return lp, grad


def _gamma_scales(x, beta_sd, beta_tau, gamma_shape, grad):
    """Gamma(gamma_shape, beta) priors of ``sd`` (3) and ``tau`` on the log scale (+ Jacobian):
    their log density; their gradient into ``grad[:4]``."""
    lp = 0.0
    sd = np.exp(x[:3])
    tau = np.exp(x[3])
    lg = math.lgamma(gamma_shape)
    for j in range(3):
        lp += gamma_shape * np.log(beta_sd[j]) - lg + gamma_shape * x[j] - beta_sd[j] * sd[j]
        grad[j] = gamma_shape - beta_sd[j] * sd[j]
    lp += gamma_shape * np.log(beta_tau) - lg + gamma_shape * x[3] - beta_tau * tau
    grad[3] = gamma_shape - beta_tau * tau
    return lp


def _latent_scores(x, Z, U, mask, g0, sd, tau, lp, grad):
    """Prior of the latent model scores' coordinates ``a`` (centred, in the curves' span) and
    ``z`` (non-centred, orthogonal to it), added to ``lp`` and ``grad``; returns ``(lp,
    eta_m)`` with ``eta_m = U (mask a + (1 - mask) tau z)``."""
    k = Z.shape[0]
    # a ~ MvNormal(0, ZU diag(g) ZU' + diag(mask tau^2 + 1 - mask)), ZU = U'Z
    a = x[4:4 + k]
    z = x[4 + k:4 + 2 * k]
    ZU = _matmul(U, Z, True)
    S = _curve_cov(ZU, g0, sd * sd)
    for i in range(k):
        S[i, i] += mask[i] * tau * tau + 1.0 - mask[i]
    L = _cholesky(S)
    P = _precision(L)
    alpha = _matvec(P, a, False)
    W_ = _matmul(P, ZU, False)
    lp += -0.5 * k * _LOG_2PI
    dtau2 = 0.0
    for i in range(k):
        lp += -np.log(L[i, i]) - 0.5 * a[i] * alpha[i]
        grad[4 + i] = -alpha[i]
        dtau2 += mask[i] * 0.5 * (alpha[i] ** 2 - P[i, i])
    grad[:3] += _d_sd2(ZU, alpha, W_) * 2 * sd * sd
    grad[3] += dtau2 * 2 * tau * tau
    # z ~ N(0, 1)
    for i in range(k):
        lp += -0.5 * z[i] ** 2 - 0.5 * _LOG_2PI
        grad[4 + k + i] = -z[i]
    b = np.empty(k)
    for i in range(k):
        b[i] = mask[i] * a[i] + (1.0 - mask[i]) * tau * z[i]
    return lp, _matvec(U, b, False)


def _example_effects(x, pos, n_ex, E, s_sd_d, lp, grad):
    """``sd_d ~ HalfNormal(s_sd_d)`` on the log scale and ``d ~ ZeroSumNormal(sd_d)`` from its
    ``n_ex - 1`` coordinates: returns ``(lp, d)`` (``d`` zero without example effects)."""
    d = np.zeros(E)
    if n_ex == 0:
        return lp, d
    sd_d = np.exp(x[pos])
    r = sd_d / s_sd_d
    lp += _LOG_SQRT_2_OVER_PI - np.log(s_sd_d) - 0.5 * r * r + x[pos]
    grad[pos] = 1 - r * r
    v = x[pos + 1:pos + n_ex]
    n = float(n_ex)
    sv = v.sum()
    norm = sv / (np.sqrt(n) + n)
    for i in range(n_ex - 1):
        d[i] = v[i] - norm
    d[n_ex - 1] = norm - sv / np.sqrt(n) - norm
    ss = 0.0
    for i in range(n_ex):
        ss += d[i] * d[i]
    lp += -0.5 * ss / sd_d ** 2 - (n - 1) * (0.5 * _LOG_2PI + x[pos])
    grad[pos] += ss / sd_d ** 2 - (n - 1)
    return lp, d


def _gaussian_loglik(x, Y, W, eta_m, d, s_sigma, lp, grad, g_eta_m, g_d):
    """Gaussian scores over the dense (model x example) matrix, with ``sigma``'s prior."""
    sigma = np.exp(x[-1])
    g_sigma = 0.0
    for m in range(Y.shape[0]):
        for i in range(Y.shape[1]):
            if W[m, i] != 0.0:
                res = Y[m, i] - eta_m[m] - d[i]
                lp += W[m, i] * (-0.5 * (res / sigma) ** 2 - x[-1])
                ge = W[m, i] * res / sigma ** 2
                g_eta_m[m] += ge
                g_d[i] += ge
                g_sigma += W[m, i] * ((res / sigma) ** 2 - 1.0)
    r = sigma / s_sigma
    lp += _LOG_SQRT_2_OVER_PI - np.log(s_sigma) - 0.5 * r * r + x[-1]
    grad[-1] = g_sigma + 1 - r * r
    return lp


def _logit_loglik(Y, T, W, eta_m, d, lp, g_eta_m, g_d):
    """Bernoulli / binomial-logit scores over the dense (model x example) matrix."""
    for m in range(Y.shape[0]):
        for i in range(Y.shape[1]):
            if W[m, i] != 0.0:
                e = eta_m[m] + d[i]
                t = np.exp(-abs(e))                 # one exp for log1pexp and sigmoid
                log1pexp = max(e, 0.0) + np.log1p(t)
                sigmoid = 1.0 / (1.0 + t) if e >= 0 else t / (1.0 + t)
                lp += W[m, i] * (Y[m, i] * e - T[m, i] * log1pexp)
                ge = W[m, i] * (Y[m, i] - T[m, i] * sigmoid)
                g_eta_m[m] += ge
                g_d[i] += ge
    return lp


def _back_through_transforms(x, U, mask, tau, pos, n_ex, d, g_eta_m, g_d, grad):
    """The likelihood's gradient back through ``eta_m = U b`` and the zero-sum transform."""
    k = U.shape[0]
    z = x[4 + k:4 + 2 * k]
    gb = _matvec(U, g_eta_m, True)
    for i in range(k):
        grad[4 + i] += mask[i] * gb[i]
        grad[4 + k + i] += (1.0 - mask[i]) * tau * gb[i]
        grad[3] += (1.0 - mask[i]) * z[i] * gb[i] * tau
    if n_ex > 0:
        sd_d = np.exp(x[pos])
        for i in range(n_ex):
            g_d[i] -= d[i] / sd_d ** 2
        head = 0.0
        for i in range(n_ex - 1):
            head += g_d[i]
        n = float(n_ex)
        for i in range(n_ex - 1):
            grad[pos + 1 + i] = g_d[i] - head / (np.sqrt(n) + n) - g_d[n_ex - 1] / np.sqrt(n)


def _crossed_logp(x, Y, T, W, Z, U, mask, n_ex, normal, g0, beta_sd, beta_tau, s_sd_d,
                  s_sigma, gamma_shape):
    """Log density and gradient of the crossed model (:func:`scalingfit.bayes.models.build_crossed`).

    ``x`` holds, in PyMC's order and on its unconstrained scales: ``log sd`` (3), ``log tau``
    (1), ``a`` (k), ``z`` (k), then with example effects ``log sd_d`` and the ``n_ex - 1``
    zero-sum coordinates of ``d`` (PyMC's zero-sum transform, an isometry), then for Gaussian
    scores ``log sigma``. ``beta_sd``, ``beta_tau`` are the Gamma(``gamma_shape``, beta) prior
    rates; ``s_sd_d``, ``s_sigma`` the half-normal scales (all from
    :func:`scalingfit.bayes.models.kernel_constants`). Returns ``(logp, grad)``.
    """
    k = Z.shape[0]
    grad = np.zeros(x.shape[0])
    lp = _gamma_scales(x, beta_sd, beta_tau, gamma_shape, grad)
    sd = np.exp(x[:3])
    tau = np.exp(x[3])
    lp, eta_m = _latent_scores(x, Z, U, mask, g0, sd, tau, lp, grad)
    pos = 4 + 2 * k
    lp, d = _example_effects(x, pos, n_ex, Y.shape[1], s_sd_d, lp, grad)
    g_eta_m = np.zeros(k)
    g_d = np.zeros(Y.shape[1])
    if normal:
        lp = _gaussian_loglik(x, Y, W, eta_m, d, s_sigma, lp, grad, g_eta_m, g_d)
    else:
        lp = _logit_loglik(Y, T, W, eta_m, d, lp, g_eta_m, g_d)
    _back_through_transforms(x, U, mask, tau, pos, n_ex, d, g_eta_m, g_d, grad)
    return lp, grad


def _split_basis(Z, rtol):
    """Orthonormal basis ``U`` (k, k) of R^k whose first ``rank(Z)`` columns span Z's columns,
    and the 0/1 ``mask`` of those columns.

    Gram-Schmidt with re-orthogonalisation (each direction projected off twice) over Z's columns,
    a column whose remainder is below ``rtol`` of its norm being dependent, then over the unit
    vectors to complete the basis. Loops in a fixed order, not LAPACK's SVD: the basis is data
    of the sampled model, and an SVD's last bits depend on the CPU's OpenBLAS kernels.
    """
    k, p = Z.shape
    U = np.zeros((k, k))
    mask = np.zeros(k)
    n = 0
    for stage in range(2):
        for c in range(p if stage == 0 else k):
            if n == k:
                break
            v = np.zeros(k)
            if stage == 0:
                for i in range(k):
                    v[i] = Z[i, c]
            else:
                v[c] = 1.0
            norm0 = 0.0
            for i in range(k):
                norm0 += v[i] * v[i]
            norm0 = np.sqrt(norm0)
            if norm0 == 0.0:
                continue
            for _ in range(2):
                for j in range(n):
                    s = 0.0
                    for i in range(k):
                        s += U[i, j] * v[i]
                    for i in range(k):
                        v[i] -= s * U[i, j]
            norm = 0.0
            for i in range(k):
                norm += v[i] * v[i]
            norm = np.sqrt(norm)
            if norm <= (rtol if stage == 0 else 1e-6) * norm0:
                continue
            for i in range(k):
                U[i, n] = v[i] / norm
            mask[n] = 1.0 if stage == 0 else 0.0
            n += 1
    if n < k:
        raise ValueError("no complete basis")
    return U, mask
