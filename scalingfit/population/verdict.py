"""The population-level shape verdict over families (see :mod:`scalingfit.population`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from ..metareg import ridge
from ..multitest import adjust_p
from ..shapes import interrupted_regression
from .meta import NO_POPULATION, RandomEffects, families_needed, random_effects

__all__ = ["PopulationVerdict", "population_verdict"]


@dataclass(frozen=True)
class PopulationVerdict:
    """The shape verdict at the population level of families (:func:`population_verdict`).

    Attributes
    ----------
    verdict : str
        ``positive``, ``inverse``, ``u_shaped``, ``inverted_u``, ``flat``, ``inconclusive`` or
        ``mixed`` (families significantly disagree in direction; see ``sides``).
    families, left_out : tuple of str
        Families analysed; families left out (slope without sampling error: floor, ceiling).
    slope : RandomEffects
        The families' linear slopes per decade (score scale) meta-analysed: population mean
        and HKSJ interval, ``tau``, ``I^2``, new-family prediction interval, common effect.
    curvature, slope_left, slope_right : RandomEffects or None
        The quadratic curvature and the two-lines slopes at the common ``breakpoint`` (log10
        scale) meta-analysed, when U-type shapes are tested.
    these_families : dict
        Common-effect average of the observed families' slopes: ``estimate, se, df, ci_lower,
        ci_upper, p_value`` (df = the sum of the family fits' residual df).
    p_gate, p_u_shaped, p_inverted_u, p_flat, flat_change : float
        Holm gate (population slope and curvature tests), intersection-union U p-values,
        TOST p of flatness and the population mean change over the observed range.
    sides : dict
        ``{'positive': (...), 'inverse': (...)}``: families whose own slope is significant
        (Holm over the families) in each performance direction.
    families_needed : int or None
        Families that would show the observed mean at 80% power (:func:`families_needed`).
    sentence : str
        Plain-language summary, including what more data would settle it.
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


def _u_tests(analyses, fams, lx, origin, allow_u, kw):
    """Population curvature and two-lines meta-analyses: ``(curvature, left, right,
    breakpoint, p_u, p_inverted_u)`` on the score scale (Nones and p = 1 when not tested)."""
    curv = left = right = bp = None
    p_u = p_inv = 1.0
    if not (allow_u and len(fams) >= 2 and all(
            analyses[f].quadratic is not None and len(np.unique(lx[f])) >= 5 for f in fams)):
        return curv, left, right, bp, p_u, p_inv
    b, q, vq = _curvatures(analyses, fams, lx, origin)
    curv = random_effects(q, vq, **kw)
    bp = _common_breakpoint(fams, lx, origin, float(np.mean(b)), curv.estimate)
    if bp is not None:
        left, right = _two_lines_population(analyses, fams, lx, origin, bp, kw)
        p_u, p_inv = _u_p(left, right, +1), _u_p(left, right, -1)
        bp = bp + origin
    return curv, left, right, bp, p_u, p_inv


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
    curv, left, right, bp, p_u, p_inv = _u_tests(analyses, fams, lx, origin, allow_u, kw)
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
