"""Population-level inference: model families as a random effect on the curve's coefficients.

The pooled verdict of :mod:`scalingfit.shapes` fits family intercepts and *one common curve*:
it answers "do these families share one curve?", and differences between the families' slopes
never enter its standard error (METHODS section 8). A claim about families in general -- the
Inverse Scaling Prize's generality criterion -- treats the family as a level of the hierarchy::

    b_f = beta + delta_f + e_f,   delta_f ~ N(0, tau^2),   e_f ~ N(0, v_f),

where ``b_f`` is family ``f``'s coefficient (slope per decade, curvature, a two-lines slope)
estimated by the model-level engine (stage 1: :func:`scalingfit.shapes.analyse_shape`, its
Knapp-Hartung variance ``v_f``), ``beta`` the population mean and ``tau^2`` the between-family
variance. This module is stage 2 of a two-stage individual-participant-data meta-analysis
(Riley et al. 2021): univariate random-effects meta-analyses of the family coefficients with
REML ``tau^2`` and a Hartung-Knapp-Sidik-Jonkman (HKSJ) reference, t with ``F - 1`` degrees of
freedom -- the number of *families*, not of models.

Two questions are named apart:

* **these families** -- the common-effect (inverse-variance) average of the observed families'
  coefficients. It estimates a weighted average of *these* families' true slopes (Rice, Higgins &
  Lumley 2018) and ignores ``tau^2``: the answer for "do the families we looked at, on average,
  scale?".
* **a new family** -- the prediction interval ``beta +- t(F-2) sqrt(tau^2 + SE^2)`` (Higgins,
  Thompson & Spiegelhalter 2009): where the slope of a family not yet evaluated would fall.

The population verdict (:func:`population_verdict`) is about ``beta``, the mean over families in
general, with the HKSJ interval; it is the answer to the generality criterion. It follows the
gated procedure of :mod:`scalingfit.shapes` at the population level, with univariate
meta-analyses per coefficient and intersection-union rules instead of a multivariate
between-family covariance (with 2-8 families a 2 x 2 REML covariance is barely identified;
the calibration in ``docs/calibration.md`` shows the univariate rules hold their level).

References
----------
Hartung, J. & Knapp, G. (2001). A refined method for the meta-analysis of controlled clinical
trials with binary outcome. Statistics in Medicine 20:3875-3889.
Sidik, K. & Jonkman, J. N. (2002). A simple confidence interval for meta-analysis. Statistics in
Medicine 21:3153-3159.
IntHout, J., Ioannidis, J. P. A. & Borm, G. F. (2014). The Hartung-Knapp-Sidik-Jonkman method for
random effects meta-analysis is straightforward and considerably outperforms the standard
DerSimonian-Laird method. BMC Medical Research Methodology 14:25.
Rover, C., Knapp, G. & Friede, T. (2015). Hartung-Knapp-Sidik-Jonkman approach and its
modification for random-effects meta-analysis with few studies. BMC Med Res Methodol 15:99.
Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
Statistics in Medicine 26:37-52.
Higgins, J. P. T., Thompson, S. G. & Spiegelhalter, D. J. (2009). A re-evaluation of
random-effects meta-analysis. JRSS-A 172:137-159.
Rice, K., Higgins, J. P. T. & Lumley, T. (2018). A re-evaluation of fixed effect(s)
meta-analysis. JRSS-A 181:205-227.
Riley, R. D., Tierney, J. F. & Stewart, L. A. (2021). Individual Participant Data Meta-Analysis.
Wiley.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import optimize, stats

from .exceptions import DataValidationError
from .metareg import ridge
from .multitest import adjust_p
from .shapes import interrupted_regression

__all__ = ["RandomEffects", "random_effects", "PopulationVerdict", "population_verdict",
           "families_needed", "REFERENCES", "NO_POPULATION"]

#: small-sample references of :func:`random_effects`
REFERENCES = ("hksj", "hksj_trunc", "z")
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
        ``q_HK = sum w (b - beta)^2 / (F - 1)``; the HKSJ variance is ``q_HK / sum w``
        (``max(1, q_HK) / sum w`` truncated).
    n_families : int
    reference, method : str
    confidence_level : float
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
    reference : {'hksj', 'hksj_trunc', 'z'}
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


@dataclass(frozen=True)
class PopulationVerdict:
    """The shape verdict at the population level of families (:func:`population_verdict`).

    Attributes
    ----------
    verdict : str
        ``positive``, ``inverse``, ``u_shaped``, ``inverted_u``, ``flat``, ``inconclusive`` or
        ``mixed`` (families significantly disagree in direction; see ``sides``).
    families, left_out : tuple of str
        Families analysed, and families left out (a slope without sampling error: floor or
        ceiling).
    slope : RandomEffects
        Meta-analysis of the families' linear slopes per decade (score scale): the population
        mean with its HKSJ interval, ``tau``, ``I^2``, the new-family prediction interval and the
        common-effect ("these families") average.
    curvature, slope_left, slope_right : RandomEffects or None
        Meta-analyses of the quadratic curvature and of the two-lines slopes at the common
        ``breakpoint`` (log10 scale), when U-type shapes are tested.
    these_families : dict
        The common-effect average of the observed families' slopes: ``estimate, se, df,
        ci_lower, ci_upper, p_value`` (df = the sum of the family fits' residual df).
    p_gate, p_u_shaped, p_inverted_u, p_flat : float
        Holm gate over the population slope and curvature tests; intersection-union p-values
        of the U tests; the TOST p-value of flatness.
    sides : dict
        ``{'positive': (...), 'inverse': (...)}``: families whose own slope is significant
        (Holm over the families) in each performance direction.
    families_needed : int or None
        Families that would show the observed population mean at 80% power
        (:func:`families_needed`), when the verdict is not a trend.
    sentence : str
        Plain-language summary, including what more data would settle it.
    notes : tuple of str
    """

    verdict: str
    families: tuple
    left_out: tuple
    reference: str
    alpha: float
    slope: RandomEffects
    curvature: RandomEffects | None
    slope_left: RandomEffects | None
    slope_right: RandomEffects | None
    breakpoint: float | None
    these_families: dict
    p_gate: float
    p_u_shaped: float
    p_inverted_u: float
    p_flat: float
    flat_change: float
    sides: dict
    families_needed: int | None
    sentence: str
    notes: tuple = field(default_factory=tuple)

    @property
    def n_families(self) -> int:
        return len(self.families)

    def to_dict(self) -> dict:
        """Plain JSON types; the meta-analyses as nested dicts."""
        out = {}
        for k, v in asdict(self).items():
            out[k] = list(v) if isinstance(v, tuple) else v
        out["sides"] = {k: list(v) for k, v in self.sides.items()}
        return out


def _family_parts(analyses: dict):
    """Per-family coefficients on a common origin of log10 scale, and who is left out."""
    fams = [k for k in analyses if k != "pooled"]
    keep, left_out = [], []
    for f in fams:
        _, se, _, _ = analyses[f].slope
        (keep if np.isfinite(se) and se > 0 else left_out).append(f)
    lx = {f: np.asarray(analyses[f].z, float) + analyses[f].z_center for f in fams}
    origin = float(np.mean(np.concatenate([lx[f] for f in keep]))) if keep else 0.0
    return keep, left_out, lx, origin


def _curvatures(analyses, fams, lx, origin):
    """Curvature and slope at the common ``origin`` of each family's quadratic.

    A family's quadratic is centred on its own mean ``c_f``; on ``z' = log10 x - origin`` its
    slope is ``b - 2 q d`` with ``d = c_f - origin`` (the curvature ``q`` is unchanged).
    """
    b, q, vq = [], [], []
    for f in fams:
        quad = analyses[f].quadratic
        d = analyses[f].z_center - origin
        bf, qf = quad.params[-2], quad.params[-1]
        b.append(bf - 2 * qf * d)
        q.append(qf)
        vq.append(quad.cov[-1, -1])
    return np.array(b), np.array(q), np.array(vq)


def _common_breakpoint(fams, lx, origin, b_mean, q_mean):
    """The population quadratic's turning point, kept where every family has two distinct
    scales on each side (None when no such point exists)."""
    lo = max(np.unique(lx[f] - origin)[1] for f in fams)
    hi = min(np.unique(lx[f] - origin)[-2] for f in fams)
    if not lo < hi:
        return None
    eps = 1e-9 * (hi - lo)
    tp = -b_mean / (2 * q_mean) if q_mean != 0 else 0.5 * (lo + hi)
    return float(np.clip(tp, lo + eps, hi - eps))


def _two_lines_population(analyses, fams, lx, origin, c, re_kw):
    """Each family's two-lines slopes at the common breakpoint ``c``, meta-analysed."""
    parts = {"left": ([], []), "right": ([], [])}
    for f in fams:
        lin = analyses[f].linear
        V = lin.sigma - lin.tau2 * np.eye(len(lin.y))
        V = V - ridge(V) * np.eye(len(lin.y))
        _, left, right = interrupted_regression(lin.y, V, lx[f] - origin,
                                                np.zeros(len(lin.y), dtype=int), c)
        for side, res in (("left", left), ("right", right)):
            parts[side][0].append(res[0])
            parts[side][1].append(res[1] ** 2)
    return (random_effects(*parts["left"], **re_kw), random_effects(*parts["right"], **re_kw))


def _u_p(left: RandomEffects, right: RandomEffects, direction: int) -> float:
    """Intersection-union p of a score-scale U (``direction=+1``) or inverted U (``-1``)."""
    ok = direction * left.estimate < 0 and direction * right.estimate > 0
    return max(left.p_value, right.p_value) if ok else 1.0


def _tost(parts, margin, alpha):
    """TOST over (meta-analysis, multiplier) parts: each ``multiplier * beta`` inside
    ``(-margin, margin)``; the p-value is the largest one-sided p."""
    if margin is None or not np.isfinite(margin) or margin <= 0:
        return float("nan"), False
    ps = []
    for re, mult in parts:
        est, se = re.estimate * mult, re.se * abs(mult)
        if not se > 0:
            ps.append(float(abs(est) >= margin))
            continue
        ps.append(max(stats.t.sf((est + margin) / se, re.df),
                      stats.t.cdf((est - margin) / se, re.df)))
    p = float(max(ps))
    return p, p < alpha


def _sides(analyses, fams, sign, alpha):
    """Families whose own slope test is significant after Holm over the families."""
    p = adjust_p([analyses[f].slope[3] for f in fams], "holm")
    out = {"positive": [], "inverse": []}
    for f, pf in zip(fams, p):
        if pf <= alpha:
            out["positive" if analyses[f].slope[0] * sign > 0 else "inverse"].append(f)
    return {k: tuple(v) for k, v in out.items()}


def _these_families(analyses, fams, slope: RandomEffects, confidence_level):
    df = float(sum(analyses[f].linear.df_resid for f in fams))
    est, se = slope.common_estimate, slope.common_se
    crit = float(stats.t.ppf(0.5 + confidence_level / 2, df))
    p = float(2 * stats.t.sf(abs(est / se), df)) if se > 0 else 0.0
    return {"estimate": est, "se": se, "df": df, "ci_lower": est - crit * se,
            "ci_upper": est + crit * se, "p_value": p}


def _decide(p_gate, p_u, p_inv, slope, sides, p_flat_ok, mixed_het, sign, alpha):
    if sides["positive"] and sides["inverse"] and mixed_het:
        return "mixed"
    if not p_gate <= alpha:
        return "flat" if p_flat_ok else "inconclusive"
    # a score-scale U is a performance-scale U for higher-is-better (sign +1)
    if p_u <= alpha:
        return "u_shaped" if sign > 0 else "inverted_u"
    if p_inv <= alpha:
        return "inverted_u" if sign > 0 else "u_shaped"
    if slope.p_value <= alpha:
        return "positive" if slope.estimate * sign > 0 else "inverse"
    return "inconclusive"


def _sentence(verdict, slope: RandomEffects, sides, needed, confidence_level) -> str:
    k, pct = slope.n_families, f"{100 * confidence_level:g}%"
    if k < 2:
        return f"Only one family: {NO_POPULATION}."
    mean = (f"population mean slope {slope.estimate:+.3g} per decade, {pct} HKSJ interval "
            f"[{slope.ci_lower:+.3g}, {slope.ci_upper:+.3g}] (t with {k - 1} df), "
            f"between-family SD tau = {slope.tau:.3g}, I2 = {slope.i2:.0f}%")
    new = (f"a new family's slope would fall in [{slope.pi_lower:+.3g}, {slope.pi_upper:+.3g}]"
           if np.isfinite(slope.pi_lower) else "no prediction interval for a new family with "
           "2 families (a third is needed)")
    if verdict == "mixed":
        head = (f"Families disagree in direction: {', '.join(sides['positive'])} scale "
                f"positively, {', '.join(sides['inverse'])} inversely (heterogeneity "
                f"p = {slope.p_heterogeneity:.2g}); no population direction holds")
    elif verdict in ("positive", "inverse", "u_shaped", "inverted_u"):
        head = f"Across families in general the curve is {verdict}"
    elif verdict == "flat":
        head = "Across families in general the curve is flat within the margin"
    else:
        head = f"With {k} families the population-level shape is inconclusive"
    more = ""
    if verdict in ("inconclusive", "mixed"):
        more = (f"; about {needed} families with this spread would show the observed mean at "
                "80% power" if needed and needed > k else
                "; more families would not settle it at the observed mean (it is near zero "
                "relative to the spread): show flatness with a margin, or explain the spread"
                if needed is None else "")
    return f"{head}: {mean}; {new}{more}."


def population_verdict(analyses: dict, *, alpha: float = 0.05, flat_margin: float | None = None,
                       sign: int = 1, reference: str = "hksj", allow_u: bool = True,
                       confidence_level: float | None = None) -> PopulationVerdict:
    """The gated shape verdict at the level of families in general (module docstring).

    Parameters
    ----------
    analyses : dict
        Family name -> :class:`scalingfit.shapes.ShapeAnalysis`, as
        :func:`scalingfit.fit.analyse` returns them (a ``'pooled'`` entry is ignored).
    alpha : float
        Level of the gate and of every directional test.
    flat_margin : float or None
        Equivalence margin (score units over the observed range); None makes flat impossible.
    sign : {+1, -1}
        +1 when higher scores are better.
    reference : {'hksj', 'hksj_trunc', 'z'}
        Small-sample reference of every meta-analysis (:func:`random_effects`).
    allow_u : bool
        Consider U-type verdicts (only when every family has a quadratic and >= 5 sizes).
    confidence_level : float, optional
        Interval level (default ``1 - alpha``).

    Returns
    -------
    PopulationVerdict

    Notes
    -----
    1. ``mixed``: at least one family significantly positive and one significantly inverse
       (each family's Knapp-Hartung slope test, Holm over the families) *and* significant
       heterogeneity of the slopes (Cochran's Q at ``alpha``). It takes precedence: an average
       of opposite directions is not a population direction.
    2. Gate: Holm over the HKSJ tests of the population mean slope and mean curvature.
    3. U / inverted U: the families' two-lines slopes at one common breakpoint (the population
       quadratic's turning point, kept where every family has two sizes on each side), left and
       right slopes meta-analysed separately; a U needs both significant with opposite signs
       (intersection-union test).
    4. Monotone: the sign of a significant population mean slope.
    5. Flat: TOST with the HKSJ reference on the population mean change over the observed range
       (and the curvature's bow at mid-range when U shapes are considered).
    """
    level = 1 - alpha if confidence_level is None else confidence_level
    kw = {"reference": reference, "confidence_level": level}
    fams, left_out, lx, origin = _family_parts(analyses)
    notes = [f"{f}: left out (its slope has no sampling error: a floor or ceiling)"
             for f in left_out]
    slope = random_effects([analyses[f].slope[0] for f in fams],
                           [analyses[f].slope[1] ** 2 for f in fams], **kw)
    rng_all = np.concatenate([lx[f] for f in fams]) if fams else np.zeros(1)
    z_range = float(np.ptp(rng_all))
    curv = left = right = bp = None
    p_u = p_inv = 1.0
    u_ok = allow_u and len(fams) >= 2 and all(
        analyses[f].quadratic is not None and len(np.unique(lx[f])) >= 5 for f in fams)
    if u_ok:
        b, q, vq = _curvatures(analyses, fams, lx, origin)
        curv = random_effects(q, vq, **kw)
        bp = _common_breakpoint(fams, lx, origin, float(np.mean(b)), curv.estimate)
        if bp is not None:
            left, right = _two_lines_population(analyses, fams, lx, origin, bp, kw)
            p_u, p_inv = _u_p(left, right, +1), _u_p(left, right, -1)
            bp = bp + origin
    ps = [slope.p_value] + ([curv.p_value] if curv is not None else [])
    p_gate = float(min(1.0, len(ps) * min(ps))) if len(fams) >= 2 else float("nan")
    parts = [(slope, z_range)] + ([(curv, (z_range / 2) ** 2)] if curv is not None else [])
    p_flat, flat_ok = _tost(parts, flat_margin, alpha) if len(fams) >= 2 else (np.nan, False)
    sides = _sides(analyses, fams, sign, alpha) if fams else {"positive": (), "inverse": ()}
    mixed_het = len(fams) >= 2 and slope.p_heterogeneity <= alpha
    verdict = ("inconclusive" if len(fams) < 2 else
               _decide(p_gate, p_u, p_inv, slope, sides, flat_ok, mixed_het, sign, alpha))
    needed = None
    if len(fams) >= 2 and verdict in ("inconclusive", "mixed"):
        within = float(np.mean([analyses[f].slope[1] ** 2 for f in fams]))
        needed = families_needed(slope.estimate, slope.tau2, within, alpha=alpha)
    if slope.note:
        notes.append(slope.note)
    return PopulationVerdict(
        verdict=verdict, families=tuple(fams), left_out=tuple(left_out), reference=reference,
        alpha=alpha, slope=slope, curvature=curv, slope_left=left, slope_right=right,
        breakpoint=bp, these_families=(_these_families(analyses, fams, slope, level)
                                       if fams else {}),
        p_gate=p_gate, p_u_shaped=p_u if sign > 0 else p_inv,
        p_inverted_u=p_inv if sign > 0 else p_u, p_flat=p_flat,
        flat_change=float(slope.estimate * z_range), sides=sides, families_needed=needed,
        sentence=_sentence(verdict, slope, sides, needed, level), notes=tuple(notes))
