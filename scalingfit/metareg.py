"""Random-effects meta-regression over models: the unit of inference is the model.

Each model's score ``y_m`` is an estimate with known sampling covariance ``V`` (paired across
models, because all models saw the same examples). On top of that every model deviates from the
smooth curve by its own amount ``u_m ~ N(0, tau^2)`` (seed, data order, checkpoint quirks), which
no number of examples averages away::

    y = X beta + u + e,   u ~ N(0, tau^2 I),   e ~ N(0, V).

``tau^2`` is estimated by restricted maximum likelihood (REML), ``beta`` by generalised least
squares with ``Sigma = V + tau^2 I``, and inference uses the
Knapp-Hartung adjustment: the covariance of ``beta`` is scaled by
``max(1, r' Sigma^-1 r / (k - p))`` and tests use t / F with ``k - p`` denominator degrees of
freedom. The truncation at 1 (Knapp & Hartung 2003; Rover, Knapp & Friede 2015) keeps the
intervals from shrinking below what the known sampling error alone implies when ``tau^2`` is
estimated at zero.

References
----------
Knapp, G. & Hartung, J. (2003). Improved tests for a random effects meta-regression with a single
covariate. Statistics in Medicine 22:2693-2710.
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. JSS 36(3).
Rover, C., Knapp, G. & Friede, T. (2015). Hartung-Knapp-Sidik-Jonkman approach and its
modification for random-effects meta-analysis with few studies. BMC Med Res Methodol 15:99.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg, special
from scipy.linalg import lapack

from .exceptions import DataValidationError

__all__ = ["MetaFit", "fit_metareg", "estimate_tau2", "batched_gls", "ridge", "eigen_basis",
           "reml_criterion", "gls_rotated", "batched_inv", "ScalarCriterion"]


def ridge(V: np.ndarray) -> float:
    """A ridge that keeps ``V + tau^2 I`` invertible when some model has zero sampling variance.

    Relative to the sampling variances (1e-9 of their mean), so that rescaling the scores
    rescales every variance and leaves every test unchanged; an absolute 1e-14 only when all
    variances are zero (there is no scale to be relative to).
    """
    scale = float(np.mean(np.diag(V))) if V.size else 0.0
    return 1e-9 * scale if scale > 0 else 1e-14


def eigen_basis(V):
    """``(lam, Q, jit)``: eigenvalues (clipped at 0) and eigenvectors of ``V``, and its ridge.

    Rotating scores and designs by ``Q`` makes ``Sigma = V + tau^2 I`` diagonal
    (``lam + tau^2 + jit``) for every ``tau^2`` at once, so REML and GLS at any ``tau^2`` cost
    a few small matrix products and no factorisation; one decomposition serves every design
    fitted to the same models.
    """
    V = np.asarray(V, dtype=float)
    lam, Q = np.linalg.eigh(V)
    return np.clip(lam, 0.0, None), Q, ridge(V)


def batched_inv(A):
    """Batched inverse; the pseudo-inverse of the matrices that are singular (their results
    are masked by callers), the inverse of the others."""
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        if A.ndim == 2:
            return np.linalg.pinv(A)
    p = A.shape[-1]
    flat = A.reshape(-1, p, p)
    singular = np.linalg.slogdet(flat)[0] == 0          # a zero pivot: what made inv fail
    out = np.empty_like(flat)
    try:
        out[~singular] = np.linalg.inv(flat[~singular])
        out[singular] = np.linalg.pinv(flat[singular])
    except np.linalg.LinAlgError:                       # pragma: no cover - belt and braces
        out = np.linalg.pinv(flat)
    return out.reshape(A.shape)


#: up to this many (response, tau^2) pairs the residual quadratic form is summed from explicit
#: residuals, the accurate form (as :class:`ScalarCriterion` does for the core's Brent search);
#: larger batches expand it as ``y'Wy - rhs' beta`` (BLAS products, k / p times fewer
#: operations, ~1e-12 relative cancellation, as the batched engine always has)
EXACT_RESIDUALS = 64


def _cross(w, Xt):
    """``sum_k w[., k] x_k x_k'`` as BLAS products over the models: ``w`` (G, k) with ``Xt``
    (k, p) gives (G, p, p); with per-response designs (B, k, p) it gives (G, B, p, p)."""
    if Xt.ndim == 2:
        k, p = Xt.shape
        return (w @ (Xt[:, :, None] * Xt[:, None, :]).reshape(k, p * p)).reshape(-1, p, p)
    B, k, p = Xt.shape
    XX = (Xt[:, :, :, None] * Xt[:, :, None, :]).transpose(1, 0, 2, 3).reshape(k, B * p * p)
    return (w @ XX).reshape(-1, B, p, p)


def _solve_logdet(A, rhs):
    """``A^-1 rhs`` and ``log det A`` of many small symmetric positive definite matrices (one
    Cholesky each); inverse or pseudo-inverse and ``slogdet`` when some ``A`` is singular."""
    try:
        L = np.linalg.cholesky(A)
        beta = np.linalg.solve(A, rhs[..., None])[..., 0]
        return beta, 2.0 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    except np.linalg.LinAlgError:
        return (batched_inv(A) @ rhs[..., None])[..., 0], np.linalg.slogdet(A)[1]


def reml_criterion(Yt, Xt, lam, jit, grid, *, reml: bool = True):
    """Minus twice the (restricted) log-likelihood, up to a constant: an array (G, B).

    ``logdet Sigma + r' Sigma^-1 r (+ logdet X' Sigma^-1 X for REML)`` of every rotated
    response ``Yt`` (B, k) at every ``tau^2`` in ``grid`` (G,), with ``Sigma = diag(lam + tau^2
    + jit)`` in the eigenbasis of ``V`` (:func:`eigen_basis`). ``Xt`` is one rotated design
    (k, p) shared by all responses or one per response (B, k, p). Non-finite values (singular
    designs) become ``inf``. The one criterion :func:`estimate_tau2` minimises and the batched
    verdict engine evaluates on its grid.
    """
    grid = np.asarray(grid, dtype=float)
    w = 1.0 / (lam[None, :] + grid[:, None] + jit)                         # (G, k)
    B, k = Yt.shape
    p = Xt.shape[-1]
    A = _cross(w, Xt)                                       # (G, p, p) or (G, B, p, p)
    if Xt.ndim == 2:
        YX = (Yt.T[:, :, None] * Xt[:, None, :]).reshape(k, B * p)         # y_bk x_k
        rhs = (w @ YX).reshape(-1, B, p)                                   # (G, B, p)
        beta = rhs @ batched_inv(A)                                        # A symmetric
        if B * len(grid) <= EXACT_RESIDUALS:
            r = Yt[None, :, :] - beta @ Xt.T                               # (G, B, k)
            q = np.einsum("gbk,gk->gb", r * r, w)
        else:   # large batches: q = y'Wy - rhs' beta, every product a BLAS matrix product
            q = w @ (Yt * Yt).T - np.einsum("gbp,gbp->gb", rhs, beta)
        logdet_x = np.linalg.slogdet(A)[1][:, None]
    else:
        XY = (Xt * Yt[:, :, None]).transpose(1, 0, 2).reshape(k, B * p)
        rhs = (w @ XY).reshape(-1, B, p)                                   # (G, B, p)
        beta, logdet_x = _solve_logdet(A, rhs)
        r = Yt[None] - (Xt[None] @ beta[..., None])[..., 0]                # (G, B, k)
        q = ((r * r) @ w[:, :, None])[..., 0]
    logdet = np.sum(np.log(lam[None, :] + grid[:, None] + jit), axis=1)[:, None]
    nll = logdet + q + (logdet_x if reml else 0.0)
    return np.where(np.isfinite(nll), nll, np.inf)


def gls_rotated(Yt, Xt, lam, jit, tau2):
    """GLS of each rotated response at its own ``tau^2`` (B,): beta (B, p),
    ``(X' Sigma^-1 X)^-1`` (B, p, p) and the weighted residual sum of squares (B,)."""
    wb = 1.0 / (lam[None, :] + np.asarray(tau2, dtype=float)[:, None] + jit)   # (B, k)
    B, k = Yt.shape
    p = Xt.shape[-1]
    if Xt.ndim == 2:
        A = _cross(wb, Xt)
        rhs = (Yt * wb) @ Xt
        Ai = batched_inv(A)
        beta = (Ai @ rhs[:, :, None])[:, :, 0]
        r = Yt - beta @ Xt.T
    else:
        XX = (Xt[:, :, :, None] * Xt[:, :, None, :]).reshape(B, k, p * p)
        A = (wb[:, None, :] @ XX).reshape(B, p, p)
        rhs = (wb[:, None, :] @ (Xt * Yt[:, :, None]))[:, 0, :]
        Ai = batched_inv(A)
        beta = (Ai @ rhs[:, :, None])[:, :, 0]
        r = Yt - (Xt @ beta[:, :, None])[:, :, 0]
    return beta, Ai, np.einsum("bk,bk->b", r * r, wb)


class ScalarCriterion:
    """:func:`reml_criterion` of one rotated response as a function of a scalar ``tau^2``.

    The same formula, with the per-design products (``x_k x_k'``, ``x_k y_k``) formed once, so
    that each of the ~20 evaluations of a Brent search costs a dozen tiny numpy calls (~15 us
    against ~65 us through the batched function; LAPACK's Cholesky
    called directly); ``__call__`` returns half the criterion
    (the negative log-likelihood up to a constant) at ``max(tau2, 0)``.
    """

    def __init__(self, yt, Xt, lam, jit, reml: bool = True):
        k, p = Xt.shape
        self.yt, self.Xt, self.p, self.reml = yt, Xt, p, reml
        self.lamj = lam + jit
        self.XX = (Xt[:, :, None] * Xt[:, None, :]).reshape(k, p * p)
        self.XY = Xt * yt[:, None]

    def __call__(self, tau2) -> float:
        w = 1.0 / (self.lamj + max(tau2, 0.0))
        A = (w @ self.XX).reshape(self.p, self.p)
        c, info = lapack.dpotrf(A, lower=1)          # one Cholesky: solve and log det
        if info == 0:
            beta = lapack.dpotrs(c, w @ self.XY, lower=1)[0]
            logdet_x = 2.0 * float(np.log(c.diagonal()).sum())
        else:                                         # singular design: as reml_criterion
            beta = batched_inv(A) @ (w @ self.XY)
            logdet_x = float(np.linalg.slogdet(A)[1])
        r = self.yt - self.Xt @ beta
        nll = float(w @ (r * r)) - float(np.log(w).sum()) + (logdet_x if self.reml else 0.0)
        return 0.5 * nll if math.isfinite(nll) else np.inf


def _neg_loglik(tau2, yt, Xt, lam, jit, reml):
    """Half :func:`reml_criterion` of one rotated response at one ``tau^2`` (clipped at 0)."""
    return ScalarCriterion(yt, Xt, lam, jit, reml)(tau2)


def _rotate(y, X, V, basis):
    lam, Q, jit = eigen_basis(V) if basis is None else basis
    return Q.T @ y, Q.T @ X, lam, jit


def bounded_brent(f, a: float, b: float, *, xatol: float, maxfun: int = 500):
    """Minimise ``f`` on ``[a, b]``: ``(x, f(x))``, step for step scipy's bounded Brent.

    A transcription of ``scipy.optimize.minimize_scalar(method='bounded')`` (scipy 1.17,
    ``_minimize_scalar_bounded``: golden section with parabolic steps, the same tolerances and
    comparisons) on Python floats, without the numpy scalar calls and result object that cost
    as much as a criterion evaluation per step; it returns the same ``x`` and ``f(x)`` bit
    for bit (checked by ``benchmarks/bench_fit.py``).
    """
    sqrt_eps = math.sqrt(2.2e-16)
    golden_mean = 0.5 * (3.0 - math.sqrt(5.0))
    fulc = a + golden_mean * (b - a)
    nfc = xf = fulc
    rat = e = 0.0
    fx = f(xf)
    num = 1
    ffulc = fnfc = fx
    xm = 0.5 * (a + b)
    tol1 = sqrt_eps * abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    while abs(xf - xm) > (tol2 - 0.5 * (b - a)):
        golden = True
        if abs(e) > tol1:                               # try a parabolic step
            golden = False
            r = (xf - nfc) * (fx - ffulc)
            q = (xf - fulc) * (fx - fnfc)
            p = (xf - fulc) * q - (xf - nfc) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            r, e = e, rat
            if abs(p) < abs(0.5 * q * r) and p > q * (a - xf) and p < q * (b - xf):
                rat = (p + 0.0) / q
                x = xf + rat
                if (x - a) < tol2 or (b - x) < tol2:
                    rat = tol1 * (_sign(xm - xf) + ((xm - xf) == 0))
            else:
                golden = True
        if golden:                                      # golden-section step
            e = (a - xf) if xf >= xm else (b - xf)
            rat = golden_mean * e
        x = xf + (_sign(rat) + (rat == 0)) * max(abs(rat), tol1)
        fu = f(x)
        num += 1
        if fu <= fx:
            if x >= xf:
                a = xf
            else:
                b = xf
            fulc, ffulc = nfc, fnfc
            nfc, fnfc = xf, fx
            xf, fx = x, fu
        else:
            if x < xf:
                a = x
            else:
                b = x
            if fu <= fnfc or nfc == xf:
                fulc, ffulc = nfc, fnfc
                nfc, fnfc = x, fu
            elif fu <= ffulc or fulc == xf or fulc == nfc:
                fulc, ffulc = x, fu
        xm = 0.5 * (a + b)
        tol1 = sqrt_eps * abs(xf) + xatol / 3.0
        tol2 = 2.0 * tol1
        if num >= maxfun:
            break
    return xf, fx


def _sign(v: float) -> float:
    return 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)


def estimate_tau2(y, X, V, *, method: str = "REML", basis=None) -> float:
    """Between-model variance ``tau^2`` by REML (default) or ML, bounded below by zero.

    Parameters
    ----------
    y : ndarray, shape (k,)
    X : ndarray, shape (k, p)
    V : ndarray, shape (k, k)
        Known sampling covariance.
    method : {'REML', 'ML'}
    basis : tuple, optional
        :func:`eigen_basis` of ``V``, when the caller fits several designs to the same models.

    Returns
    -------
    float

    Notes
    -----
    Bounded Brent search (:func:`bounded_brent`, ``xatol = 1e-8`` of the upper bound
    ``10 (var y + mean V_mm)``) of
    :func:`reml_criterion`, evaluated in the eigenbasis of ``V``; zero when the criterion at 0 is
    no worse than at the optimum found.
    """
    y, X, V = np.asarray(y, float), np.asarray(X, float), np.asarray(V, float)
    reml = method.upper() == "REML"
    k, p = X.shape
    if k - p < 1:
        return 0.0
    yt, Xt, lam, jit = _rotate(y, X, V, basis)
    spread = float(np.var(y)) + float(np.mean(np.diag(V)))
    upper = 10.0 * spread if spread > 0 else 1e-12       # relative: scores may be tiny
    f = ScalarCriterion(yt, Xt, lam, jit, reml)
    x, fx = bounded_brent(f, 0.0, upper, xatol=upper * 1e-8)
    best = float(x)
    if f(0.0) <= fx:
        best = 0.0
    return best


@dataclass
class MetaFit:
    """A fitted meta-regression (see module docstring).

    Attributes
    ----------
    params, cov : ndarray
        Coefficients and their Knapp-Hartung covariance.
    df_resid : int
        ``k - p``, the denominator degrees of freedom of t and F tests.
    tau2 : float
        Between-model variance (REML).
    kh_scale : float
        The Knapp-Hartung scale ``max(1, q / (k - p))`` applied to ``cov``.
    loglik : float
        Maximised marginal log-likelihood (ML ``tau^2``), for AICc.
    n_obs, n_params : int
    """

    params: np.ndarray
    cov: np.ndarray
    df_resid: int
    tau2: float
    kh_scale: float
    loglik: float
    n_obs: int
    n_params: int
    sigma: np.ndarray
    X: np.ndarray
    y: np.ndarray

    def contrast(self, c) -> tuple[float, float, float, float]:
        """Estimate, SE, t and two-sided p of the linear combination ``c @ params``."""
        c = np.asarray(c, dtype=float)
        est = float(c @ self.params)
        se = float(np.sqrt(max(c @ self.cov @ c, 0.0)))
        t = est / se if se > 0 else np.inf * np.sign(est)
        p = float(2 * special.stdtr(self.df_resid, -abs(t))) if np.isfinite(t) else 0.0
        return est, se, float(t), p

    def wald_f(self, R) -> tuple[float, float]:
        """F statistic and p-value (F(q, k - p)) of ``R @ params = 0``."""
        R = np.atleast_2d(np.asarray(R, dtype=float))
        est = R @ self.params
        F = float(est @ np.linalg.solve(R @ self.cov @ R.T, est)) / R.shape[0]
        return F, float(special.fdtrc(R.shape[0], self.df_resid, F))

    def t_quantile(self, confidence_level: float) -> float:
        return float(special.stdtrit(self.df_resid, 0.5 + confidence_level / 2))

    @property
    def aicc(self) -> float:
        """AICc on the model-level likelihood (K = p + 1 counts ``tau^2``); inf if undefined."""
        K = self.n_params + 1
        if self.n_obs - K - 1 <= 0:
            return np.inf
        return -2 * self.loglik + 2 * K + 2 * K * (K + 1) / (self.n_obs - K - 1)


def fit_metareg(y, X, V, *, tau2: float | None = None, basis=None,
                loglik: bool = True) -> MetaFit:
    """Fit the random-effects meta-regression with REML ``tau^2`` and Knapp-Hartung inference.

    Parameters
    ----------
    y : array_like, shape (k,)
        Per-model scores.
    X : array_like, shape (k, p)
        Design matrix (see :func:`scalingfit.curves.design_matrix`); needs ``k > p``.
    V : array_like, shape (k, k)
        Known within-model sampling covariance.
    tau2 : float, optional
        Fix ``tau^2`` instead of estimating it.
    basis : tuple, optional
        :func:`eigen_basis` of ``V`` (computed when not given); pass it when fitting several
        designs to the same models.
    loglik : bool
        Compute the maximised ML log-likelihood (for AICc; one more ``tau^2`` search); NaN
        when False, for fits whose only use is their coefficients.

    Returns
    -------
    MetaFit

    Notes
    -----
    With ``V = 0`` the fit reduces to ordinary least squares (REML ``tau^2`` is the OLS residual
    variance and the Knapp-Hartung scale is 1), which the tests check against R's ``lm``.
    GLS is the closed form in the eigenbasis of ``V`` (:func:`gls_rotated`), the same numbers
    statsmodels' ``GLS`` gives, without building its result objects.
    """
    y, X, V = np.asarray(y, float), np.asarray(X, float), np.asarray(V, float)
    k, p = X.shape
    if k <= p:
        raise DataValidationError(f"need more models ({k}) than curve parameters ({p}): add "
                                  "models, or fit a curve with fewer parameters.")
    basis = eigen_basis(V) if basis is None else basis
    yt, Xt, lam, jit = _rotate(y, X, V, basis)
    tau2 = estimate_tau2(y, X, V, basis=basis) if tau2 is None else float(tau2)
    beta, Ai, q = gls_rotated(yt[None, :], Xt, lam, jit, np.array([tau2]))
    kh_scale = max(1.0, float(q[0]) / (k - p))
    ll = np.nan
    if loglik:
        tau2_ml = estimate_tau2(y, X, V, method="ML", basis=basis)
        ll = -_neg_loglik(tau2_ml, yt, Xt, lam, jit, False) - 0.5 * k * np.log(2 * np.pi)
    Sigma = V + (tau2 + jit) * np.eye(k)
    return MetaFit(params=beta[0], cov=kh_scale * Ai[0], df_resid=int(k - p), tau2=tau2,
                   kh_scale=kh_scale, loglik=float(ll), n_obs=k, n_params=p, sigma=Sigma,
                   X=X, y=y)


def batched_gls(Y, X, Sigma):
    """Fit many response vectors that share one design and covariance, in one matrix product.

    Parameters
    ----------
    Y : ndarray, shape (B, k)
        One replicate of per-model scores per row.
    X : ndarray, shape (k, p)
    Sigma : ndarray, shape (k, k)

    Returns
    -------
    beta : ndarray, shape (B, p)
    scale : ndarray, shape (B,)
        Knapp-Hartung scale ``max(1, q_b / (k - p))`` of each replicate.
    bread : ndarray, shape (p, p)
        ``(X' Sigma^-1 X)^-1``; the covariance of replicate ``b`` is ``scale[b] * bread``.
    """
    c = linalg.cho_factor(Sigma, lower=True)
    Si_X = linalg.cho_solve(c, X)
    bread = np.linalg.inv(X.T @ Si_X)
    H = bread @ Si_X.T                       # (p, k): beta = H y
    beta = Y @ H.T
    R = Y - beta @ X.T
    q = np.einsum("bk,bk->b", R, linalg.cho_solve(c, R.T).T)
    df = X.shape[0] - X.shape[1]
    scale = np.maximum(1.0, q / df) if df > 0 else np.ones(len(Y))
    return beta, scale, bread
