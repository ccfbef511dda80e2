"""Random-effects meta-analysis of one coefficient over families (REML tau^2, HKSJ).

The engine of :mod:`scalingfit.population`: :func:`random_effects` (validated against
``metafor::rma(yi, vi, method="REML", test="knha")``) and the planning number
:func:`families_needed`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, stats

from ..exceptions import DataValidationError

__all__ = ["RandomEffects", "random_effects", "families_needed", "REFERENCES", "NO_POPULATION"]

#: small-sample references of :func:`random_effects`
REFERENCES = ("ols", "hksj", "hksj_trunc", "z")
#: the note of every population quantity computed from one family
NO_POPULATION = ("no population inference with one family: a between-family spread cannot be "
                 "estimated from one family; evaluate at least 2 (better 4 or more) families")


@dataclass(frozen=True)
class RandomEffects:
    """A random-effects meta-analysis of one coefficient over families.

    Attributes
    ----------
    estimate, se : float
        Population mean ``beta`` and its standard error under ``reference``.
    df : float
        Degrees of freedom of the t reference (``F - 1``; inf for ``reference='z'``).
    t, p_value, ci_lower, ci_upper : float
        Test of ``beta = 0`` and the ``confidence_level`` interval.
    tau2, tau2_ci_lower, tau2_ci_upper : float
        Between-family variance (REML) and its Q-profile interval (Viechtbauer 2007).
    q, p_heterogeneity, i2 : float
        Cochran's Q (common-effect weights), its chi-square(F-1) p-value, I-squared in percent.
    pi_lower, pi_upper : float
        Prediction interval for a new family, ``beta +- t(F-2) sqrt(tau2 + se^2)``; NaN with
        fewer than 3 families (``t`` with 0 degrees of freedom is undefined).
    common_estimate, common_se : float
        The common-effect (inverse-variance) average of these families and its SE.
    hksj_scale : float
        ``q_HK = sum w (b - beta)^2 / (F - 1)``: HKSJ variance ``q_HK / sum w`` (truncated:
        ``max(1, q_HK) / sum w``).
    n_families, reference, method, confidence_level
    note : str
        Why something is undefined ('' when nothing is).
    """

    estimate: float
    se: float
    df: float
    t: float
    p_value: float
    ci_lower: float
    ci_upper: float
    tau2: float
    tau2_ci_lower: float
    tau2_ci_upper: float
    q: float
    p_heterogeneity: float
    i2: float
    pi_lower: float
    pi_upper: float
    common_estimate: float
    common_se: float
    hksj_scale: float
    n_families: int
    reference: str
    method: str
    confidence_level: float
    note: str = ""

    @property
    def tau(self) -> float:
        """Between-family SD."""
        return float(np.sqrt(self.tau2)) if np.isfinite(self.tau2) else float("nan")

    def to_dict(self) -> dict:
        """Plain JSON types (NaN stays NaN)."""
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                for k, v in asdict(self).items()}


def _check_inputs(estimates, variances, method, reference, confidence_level):
    y = np.asarray(estimates, dtype=float).ravel()
    v = np.asarray(variances, dtype=float).ravel()
    if y.shape != v.shape:
        raise DataValidationError(f"estimates and variances must have the same length; got "
                                  f"{len(y)} and {len(v)}.")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise DataValidationError(
            "random_effects needs finite estimates and finite, positive variances; got "
            f"estimates {y.tolist()} and variances {v.tolist()}. Leave out a family whose "
            "coefficient has no sampling error (a floor or ceiling).")
    if method not in ("REML", "DL"):
        raise DataValidationError(f"method must be one of ['REML', 'DL']; got {method!r}.")
    if reference not in REFERENCES:
        raise DataValidationError(f"reference must be one of {list(REFERENCES)}; got "
                                  f"{reference!r}.")
    if not 0 < confidence_level < 1:
        raise DataValidationError(f"confidence_level must lie in (0, 1); got "
                                  f"{confidence_level!r}.")
    return y, v


def _tau2_dl(y, v) -> float:
    w = 1 / v
    mu = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - mu) ** 2))
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    return max(0.0, (q - (len(y) - 1)) / c)


def _tau2_reml(y, v, tol=1e-12, max_iter=200) -> float:
    """REML ``tau^2`` by Fisher scoring with step halving (metafor's algorithm), bounded at 0."""
    tau2 = _tau2_dl(y, v)
    for _ in range(max_iter):
        w = 1 / (v + tau2)
        P = np.diag(w) - np.outer(w, w) / np.sum(w)
        Py = P @ y
        PP = P @ P
        adj = (float(Py @ Py) - float(np.trace(P))) / float(np.trace(PP))
        while tau2 + adj < 0:
            adj /= 2
            if abs(adj) < tol * max(1.0, tau2):
                adj = -tau2
                break
        tau2 += adj
        if abs(adj) <= tol * max(1.0, tau2, float(np.mean(v))):
            break
    return max(0.0, float(tau2))


def _q_gen(tau2, y, v) -> float:
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu) ** 2))


def _tau2_qprofile(y, v, confidence_level):
    """Q-profile interval for ``tau^2``: ``Q_gen(tau^2)`` equal to the chi-square quantiles."""
    k = len(y)
    alpha = 1 - confidence_level
    out = []
    for target in (stats.chi2.ppf(1 - alpha / 2, k - 1), stats.chi2.ppf(alpha / 2, k - 1)):
        if _q_gen(0.0, y, v) <= target:
            out.append(0.0)
            continue
        hi = max(1.0, float(np.var(y)) * 10, float(np.max(v)))
        while _q_gen(hi, y, v) > target:
            hi *= 10
        out.append(float(optimize.brentq(lambda t: _q_gen(t, y, v) - target, 0.0, hi,
                                         xtol=1e-14 * hi, rtol=1e-12)))
    return out[0], out[1]


def _undefined(n, reference, method, confidence_level, note, y=None, v=None):
    nan = float("nan")
    est = float(y[0]) if y is not None and len(y) == 1 else nan
    cse = float(np.sqrt(v[0])) if v is not None and len(v) == 1 else nan
    return RandomEffects(nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan,
                         nan, est, cse, nan, n, reference, method, confidence_level, note)


def random_effects(estimates, variances, *, method: str = "REML", reference: str = "hksj",
                   confidence_level: float = 0.95) -> RandomEffects:
    """Random-effects meta-analysis of per-family estimates with a small-sample reference.

    Parameters
    ----------
    estimates : array_like, shape (F,)
        One coefficient per family (e.g. its slope per decade).
    variances : array_like, shape (F,)
        Their sampling variances (treated as known, as two-stage meta-analysis does).
    method : {'REML', 'DL'}
        Estimator of the between-family variance ``tau^2``.
    reference : {'ols', 'hksj', 'hksj_trunc', 'z'}
        ``'ols'``: the summary-statistics test (Holmes & Friston 1998; Mumford & Nichols
        2009): the unweighted mean of the ``b_f``, ``SE = sd(b) / sqrt(F)`` and t(F-1) --
        exact for exchangeable families of equal precision whatever ``tau^2``, and it does
        not lean on the stage-1 variances, which rest on few models' residual df;
        ``'hksj'``: Hartung-Knapp-Sidik-Jonkman, variance ``q_HK / sum w`` and t(F-1);
        ``'hksj_trunc'``: the same with ``max(1, q_HK)`` (never narrower than the Wald
        interval; Rover et al. 2015); ``'z'``: the Wald interval ``1 / sum w`` with a normal
        reference (known to be anti-conservative with few families; for comparison only).
    confidence_level : float

    Returns
    -------
    RandomEffects
        With one family every population quantity is NaN and ``note`` says why
        (:data:`NO_POPULATION`); with two the prediction interval is NaN (t with 0 degrees of
        freedom).

    Raises
    ------
    DataValidationError
        Estimates and variances of different lengths, a non-finite value, a variance <= 0, an
        unknown method or reference.

    Notes
    -----
    ``w_f = 1 / (v_f + tau^2)``, ``beta = sum w b / sum w``, ``q_HK = sum w (b - beta)^2 / (F - 1)``.
    With equal variances the HKSJ interval is the one-sample t interval of the ``b_f``
    (whatever ``tau^2``). ``I^2 = tau^2 / (tau^2 + s^2)`` with the typical within-family
    variance ``s^2 = (F - 1) sum(1/v) / ((sum 1/v)^2 - sum 1/v^2)`` (Higgins & Thompson 2002),
    as metafor reports it. Validated against ``metafor::rma(yi, vi, method="REML",
    test="knha")`` (``tests/data/reference/``).
    """
    y, v = _check_inputs(estimates, variances, method, reference, confidence_level)
    k = len(y)
    if k < 2:
        return _undefined(k, reference, method, confidence_level, NO_POPULATION, y, v)
    tau2 = _tau2_reml(y, v) if method == "REML" else _tau2_dl(y, v)
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    q_hk = float(np.sum(w * (y - mu) ** 2) / (k - 1))
    if reference == "ols":
        mu, se = float(np.mean(y)), float(np.std(y, ddof=1) / np.sqrt(k))
    else:
        scale = {"hksj": q_hk, "hksj_trunc": max(1.0, q_hk), "z": 1.0}[reference]
        se = float(np.sqrt(scale / np.sum(w)))
    df = float("inf") if reference == "z" else float(k - 1)
    t = mu / se if se > 0 else float(np.inf * np.sign(mu))
    p = float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) else 0.0
    crit = float(stats.t.ppf(0.5 + confidence_level / 2, df))
    w0 = 1 / v
    mu0 = float(np.sum(w0 * y) / np.sum(w0))
    q = float(np.sum(w0 * (y - mu0) ** 2))
    s2 = (k - 1) * np.sum(w0) / (np.sum(w0) ** 2 - np.sum(w0**2))
    lo2, hi2 = _tau2_qprofile(y, v, confidence_level)
    note, pi = "", (float("nan"), float("nan"))
    if k >= 3:
        half = float(stats.t.ppf(0.5 + confidence_level / 2, k - 2)) * np.sqrt(tau2 + se**2)
        pi = (mu - half, mu + half)
    else:
        note = ("no prediction interval with 2 families: t with F - 2 = 0 degrees of freedom is "
                "undefined; a third family is needed to say where a new family would fall")
    return RandomEffects(
        estimate=mu, se=se, df=df, t=float(t), p_value=p, ci_lower=mu - crit * se,
        ci_upper=mu + crit * se, tau2=tau2, tau2_ci_lower=lo2, tau2_ci_upper=hi2, q=q,
        p_heterogeneity=float(stats.chi2.sf(q, k - 1)), i2=float(100 * tau2 / (tau2 + s2)),
        pi_lower=float(pi[0]), pi_upper=float(pi[1]), common_estimate=mu0,
        common_se=float(np.sqrt(1 / np.sum(w0))), hksj_scale=q_hk, n_families=k,
        reference=reference, method=method, confidence_level=confidence_level, note=note)


def families_needed(effect: float, tau2: float, within: float, *, alpha: float = 0.05,
                    power: float = 0.8, max_families: int = 200) -> int | None:
    """Families needed to show a population mean ``effect`` with the HKSJ t test at ``power``.

    A deliberately simple planning number: ``F`` families with equal within-family variance
    ``within`` give ``SE = sqrt((tau2 + within) / F)``; the power of the two-sided t(F-1) test is
    taken from the noncentral t with noncentrality ``effect / SE``. None when even
    ``max_families`` are not enough (or the effect is zero).

    Parameters
    ----------
    effect : float
        The population mean to detect (e.g. the observed one).
    tau2, within : float
        Between-family variance and a typical within-family sampling variance.
    alpha, power : float
    max_families : int

    Returns
    -------
    int or None
    """
    if not (np.isfinite(effect) and effect != 0 and np.isfinite(tau2 + within)):
        return None
    var = max(tau2, 0.0) + max(within, 0.0)

    def enough(f):
        df, ncp = f - 1, abs(effect) / np.sqrt(var / f)
        crit = stats.t.ppf(1 - alpha / 2, df)
        lower = float(np.nan_to_num(stats.nct.cdf(-crit, df, ncp)))   # nan deep in the tail
        return stats.nct.sf(crit, df, ncp) + lower >= power

    if not enough(max_families):
        return None
    lo, hi = 1, max_families          # power grows with the families: bisect for the first
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi
