"""Shape tests and the verdict: is the curve positive, inverse, U, inverted-U, flat or unclear?

The verdict is a gated procedure whose false-positive rate under a flat truth is at most ``alpha``
(METHODS section 2: separate tests at ``alpha`` each inflate it to 11-16%):

1. **Gate** (omnibus "not flat"): the Holm-adjusted minimum of the Knapp-Hartung t test of the
   linear slope and the F test of slope and curvature in the quadratic. No non-flat verdict is
   possible unless the gate rejects, so P(any trend verdict | flat truth) <= alpha.
2. **U / inverted-U**: the two-lines test (Simonsohn 2018): two separate lines around a
   breakpoint chosen by the Robin Hood procedure; a U needs a significantly negative left slope
   *and* a significantly positive right slope (an intersection-union test, level ``alpha``
   without correction). The Lind-Mehlum test on the quadratic (Lind & Mehlum 2010) is reported as
   a second opinion, with a Fieller interval for the turning point. A significant quadratic term
   alone never makes a U.
3. **Monotone**: otherwise the sign of a significant linear slope.
4. **Flat** needs positive evidence: both one-sided tests (TOST) that the total linear change
   over the observed range, and the quadratic's bow at mid-range, lie inside
   ``(-flat_margin, flat_margin)``. Without it the answer is ``"inconclusive"``.

Directions are on the performance scale: for a lower-is-better metric (loss) the sign is flipped
before classifying, so "inverse" always means larger models do worse.

References
----------
Simonsohn, U. (2018). Two lines: a valid alternative to the invalid testing of U-shaped
relationships with quadratic regressions. AMPPS 1(4):538-555. doi:10.1177/2515245918805755
Lind, J. T. & Mehlum, H. (2010). With or without U? The appropriate test for a U-shaped
relationship. Oxford Bulletin of Economics and Statistics 72(1):109-118.
Sasabuchi, S. (1980). A test of a multivariate normal mean with composite hypotheses determined
by linear inequalities. Biometrika 67:429-439.
Schuirmann, D. J. (1987). A comparison of the two one-sided tests procedure and the power
approach for assessing the equivalence of average bioavailability. J. Pharmacokin. Biopharm. 15.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .curves import CURVES, design_matrix
from .metareg import MetaFit, eigen_basis, fit_metareg

__all__ = ["ShapeAnalysis", "analyse_shape", "default_flat_margin", "two_lines_test", "lind_mehlum_test", "tost_flat",
           "robin_hood_breakpoint", "flat_region", "interrupted_regression"]


@dataclass
class TwoLines:
    """Result of the two-lines test; slopes are per decade of scale, on the score scale."""

    breakpoint: float
    slope_left: float
    se_left: float
    p_left: float
    slope_right: float
    se_right: float
    p_right: float
    n_left: int
    n_right: int
    fit: MetaFit | None = None

    def u_p_value(self, direction: int) -> float:
        """Intersection-union p-value for a U (``direction=+1``) or inverted U (``-1``).

        A U needs ``slope_left < 0`` and ``slope_right > 0``; the p-value is the larger of the
        two two-sided p-values when both signs match, and 1 otherwise.
        """
        ok = (direction * self.slope_left < 0) and (direction * self.slope_right > 0)
        return max(self.p_left, self.p_right) if ok else 1.0


def interrupted_regression(y, V, z, groups, c, tau2=None, basis=None, loglik=True):
    """Fit the two lines at breakpoint ``c`` as Simonsohn's ``reg2`` does.

    Two fits are made: the left slope comes from the fit in which a model at ``z == c`` belongs
    to the low line, the right slope from the fit in which it belongs to the high line (when no
    model sits at ``c`` the fits are identical).

    ``basis`` is the :func:`~scalingfit.metareg.eigen_basis` of ``V`` when the caller has it;
    ``loglik=False`` skips the first fit's ML log-likelihood (AICc), which only the final
    breakpoint's fit needs (the second fit's is never used).

    Returns
    -------
    fit : MetaFit
        The first fit (low line includes ``c``).
    left, right : tuple
        ``(estimate, se, t, p)`` of the two slopes.
    """
    z = np.asarray(z, dtype=float)
    nf = int(np.max(groups)) + 1
    X1 = design_matrix("two_lines", z, groups, breakpoint=c)
    basis = eigen_basis(V) if basis is None else basis
    fit1 = fit_metareg(y, X1, V, tau2=tau2, basis=basis, loglik=loglik)
    left = fit1.contrast(np.eye(X1.shape[1])[nf])
    if np.any(z == c):
        X2 = X1.copy()
        at = z == c
        X2[at, nf + 2] = 1.0               # the model at c joins the high line
        fit2 = fit_metareg(y, X2, V, tau2=tau2, basis=basis, loglik=False)
        right = fit2.contrast(np.eye(X2.shape[1])[nf + 1])
    else:
        right = fit1.contrast(np.eye(X1.shape[1])[nf + 1])
    return fit1, left, right


def u_direction(quad: MetaFit, z_min: float) -> int:
    """+1 to look for a minimum (U), -1 for a maximum: Simonsohn's rule, from the sign of the
    quadratic's slope at the smallest scale (a rising start means look for a maximum)."""
    j = len(quad.params) - 2
    s0 = quad.params[j] + 2 * quad.params[j + 1] * z_min
    return -1 if s0 > 0 else 1


def flat_region(z, fitted, se, direction: int):
    """Scales in the middle 80% whose fitted value is within one SE of the extremum.

    Simonsohn's Robin Hood step 1: keep ``quantile(z, .1) < z < quantile(z, .9)``; the
    extremum is the smallest (``direction=+1``) or largest fitted value there; the flat region
    holds the middle scales with ``fitted - se < extremum`` (U) or ``fitted + se > extremum``.
    """
    z, fitted, se = (np.asarray(a, dtype=float) for a in (z, fitted, se))
    lo, hi = np.quantile(z, [0.1, 0.9])
    mid = (z > lo) & (z < hi)
    if not mid.any():
        return np.array([])
    f, s = fitted[mid], se[mid]
    if direction > 0:
        flat = f - s < f.min()
    else:
        flat = f + s > f.max()
    return z[mid][flat]


def robin_hood_breakpoint(region, t_left, t_right):
    """Breakpoint that gives the weaker line more data (Simonsohn 2018, Robin Hood step 3).

    The breakpoint is the ``|t_right| / (|t_left| + |t_right|)`` quantile (linear
    interpolation, R type 7) of the flat region: a weak right line moves the breakpoint left,
    giving the right line more observations.
    """
    total = abs(t_left) + abs(t_right)
    q = 0.5 if total == 0 or not np.isfinite(total) else abs(t_right) / total
    return float(np.quantile(region, q))


def _clip_breakpoint(c, z):
    """Keep two distinct scales on each side in both fits (a line needs two points)."""
    u = np.unique(z)
    eps = 1e-9 * (u[-1] - u[0])
    return float(np.clip(c, u[1] + eps, u[-2] - eps))


def two_lines_test(y, V, z, groups, quad: MetaFit, *, basis=None) -> TwoLines | None:
    """The two-lines test with the Robin Hood breakpoint, on model-level scores.

    Follows Simonsohn's ``twolines`` R code (app 0.52) step by step (direction rule, middle
    80%, flat region, median start, one Robin Hood update, two fits at the breakpoint), with two
    departures forced by having 4-12 models instead of hundreds of observations: the smooth that
    locates the extremum is the model-level quadratic (a GAM is not identified), and the line
    slopes get Knapp-Hartung model-level standard errors instead of HC3. The breakpoint is kept
    where both lines have at least two scales.

    Parameters
    ----------
    y, V : per-model scores and their sampling covariance.
    z : centred log10 scale; groups : family index of each model.
    quad : MetaFit
        The quadratic fit of the same models.
    basis : tuple, optional
        :func:`~scalingfit.metareg.eigen_basis` of ``V`` (computed when not given).

    Returns
    -------
    TwoLines or None
        None with fewer than 5 distinct scales or an empty flat region.
    """
    z = np.asarray(z, dtype=float)
    if len(np.unique(z)) < 5:
        return None
    X = quad.X
    fitted = X @ quad.params
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, quad.cov, X))
    region = flat_region(z, fitted, se, u_direction(quad, z.min()))
    if len(region) == 0:
        return None
    basis = eigen_basis(V) if basis is None else basis
    c0 = _clip_breakpoint(float(np.median(region)), z)
    _, left, right = interrupted_regression(y, V, z, groups, c0, basis=basis, loglik=False)
    c = _clip_breakpoint(robin_hood_breakpoint(region, left[2], right[2]), z)
    fit, left, right = interrupted_regression(y, V, z, groups, c, basis=basis)
    return TwoLines(breakpoint=c, slope_left=left[0], se_left=left[1], p_left=left[3],
                    slope_right=right[0], se_right=right[1], p_right=right[3],
                    n_left=int(np.sum(z <= c)), n_right=int(np.sum(z >= c)), fit=fit)


def lind_mehlum_test(quad: MetaFit, z_min: float, z_max: float, *, confidence_level=0.95):
    """Lind-Mehlum (Sasabuchi) test of a U in ``y = a + b z + c z^2`` over ``[z_min, z_max]``.

    The direction follows the sign of the curvature: for ``c > 0`` (U) it tests slope < 0 at
    ``z_min`` and slope > 0 at ``z_max``; for ``c < 0`` the reverse. The statistic is the smaller
    of the two one-sided t's, with ``p = P(t_{k-p} > stat)``. The turning point ``-b / (2 c)``
    gets a Fieller interval: the ``theta`` with ``(b + 2 c theta)^2 <= t^2 Var(b + 2 c theta)``.

    Returns
    -------
    dict
        ``direction, slope_min, se_min, slope_max, se_max, t_stat, p_value, turning_point,
        tp_ci_lower, tp_ci_upper`` (z units; the interval is infinite when it is unbounded).
    """
    j = len(quad.params) - 2
    b, c = quad.params[j], quad.params[j + 1]
    vb, vc, vbc = quad.cov[j, j], quad.cov[j + 1, j + 1], quad.cov[j, j + 1]
    direction = 1 if c > 0 else -1
    out = {"direction": direction}
    ts = []
    for name, zz in (("min", z_min), ("max", z_max)):
        slope = b + 2 * c * zz
        se = np.sqrt(max(vb + 4 * zz * vbc + 4 * zz**2 * vc, 0.0))
        out[f"slope_{name}"], out[f"se_{name}"] = float(slope), float(se)
        ts.append(slope / se if se > 0 else np.inf * np.sign(slope))
    stat = min(-direction * ts[0], direction * ts[1])
    out["t_stat"] = float(stat)
    out["p_value"] = float(stats.t.sf(stat, quad.df_resid))
    out["turning_point"] = float(-b / (2 * c)) if c != 0 else np.nan
    t = stats.t.ppf(0.5 + confidence_level / 2, quad.df_resid)
    out["tp_ci_lower"], out["tp_ci_upper"] = _fieller(b, c, vb, vc, vbc, t)
    return out


def _fieller(b, c, vb, vc, vbc, t):
    """Fieller interval for ``-b / (2c)``; (-inf, inf) when ``c`` is not significant."""
    A = 4 * (c**2 - t**2 * vc)
    B = 4 * (b * c - t**2 * vbc)
    C = b**2 - t**2 * vb
    disc = B**2 - 4 * A * C
    if A <= 0 or disc < 0:
        return -np.inf, np.inf
    r = np.sqrt(disc)
    return float((-B - r) / (2 * A)), float((-B + r) / (2 * A))


def tost_flat(lin: MetaFit, quad: MetaFit | None, z_range: float, margin: float | None,
              alpha: float):
    """Two one-sided tests that the curve changes by less than ``margin`` over the range.

    Tested quantities: the linear total change ``slope * z_range`` and, when a quadratic is
    fitted, its bow at mid-range ``curvature * (z_range / 2)^2``. Each passes when its
    ``1 - 2 alpha`` interval lies inside ``(-margin, margin)``; the p-value is the larger of the
    TOST p-values.
    """
    if margin is None or not np.isfinite(margin) or margin <= 0:
        return {"total_change": np.nan, "p_value": np.nan, "margin": margin, "passed": False}
    parts = [(lin, np.r_[np.zeros(lin.n_params - 1), z_range])]
    if quad is not None:
        parts.append((quad, np.r_[np.zeros(quad.n_params - 1), (z_range / 2) ** 2]))
    ps = []
    for fit, c in parts:
        est, se, _, _ = fit.contrast(c)
        p_lo = stats.t.sf((est + margin) / se, fit.df_resid) if se > 0 else float(
            est <= -margin)
        p_hi = stats.t.cdf((est - margin) / se, fit.df_resid) if se > 0 else float(
            est >= margin)
        ps.append(max(p_lo, p_hi))
    p = float(max(ps))
    total = float(lin.params[-1] * z_range)
    return {"total_change": total, "p_value": p, "margin": float(margin), "passed": p < alpha}


def default_flat_margin(table: pd.DataFrame, ms) -> float | None:
    """The documented default equivalence margin for "flat", in score units.

    * proportions (accuracy and the like): 0.05, i.e. five points over the observed range;
    * other metrics: 0.1 standard deviations of the per-example scores (a negligible effect in
      Cohen's terms), from the per-example rows or from ``se * sqrt(n)``;
    * otherwise None: a flat verdict is then impossible and such curves read "inconclusive".
    """
    if ms.meta["proportion"]:
        return 0.05
    if ms.matrix is not None:
        return float(0.1 * np.nanmean(np.nanstd(ms.matrix, axis=0)))
    n = ms.models["n_examples"].to_numpy(dtype=float)
    if np.all(np.isfinite(n)):
        return float(0.1 * np.mean(ms.models["se"].to_numpy() * np.sqrt(n)))
    return None


@dataclass
class ShapeAnalysis:
    """Everything the shape procedure computed for one family (or the pooled families)."""

    label: str
    verdict: str
    sign: int
    z_center: float
    z: np.ndarray
    groups: np.ndarray
    linear: MetaFit
    quadratic: MetaFit | None
    two_lines: TwoLines | None
    lind_mehlum: dict | None
    gate: dict
    tost: dict
    selection: pd.DataFrame
    notes: list = field(default_factory=list)
    #: positions of the analysed models in ``ModelScores.models`` (set by :func:`fit_trend`;
    #: the pooled analysis leaves out degenerate families)
    idx: object = None

    @property
    def slope(self):
        """Estimate, SE, t and p of the linear slope per decade."""
        c = np.zeros(self.linear.n_params)
        c[-1] = 1.0
        return self.linear.contrast(c)


def _selection_table(label, fits: dict) -> pd.DataFrame:
    """AICc, its differences and Akaike weights of the fitted curves (numpy, one frame)."""
    fits = {name: f for name, f in fits.items() if f is not None}
    aicc = np.array([f.aicc for f in fits.values()], dtype=float)
    finite = np.isfinite(aicc)
    best = aicc[finite].min() if finite.any() else np.nan
    delta = aicc - best
    w = np.where(finite, np.exp(-0.5 * np.where(finite, delta, 0.0)), 0.0)
    return pd.DataFrame({
        "family": [label] * len(fits), "curve": list(fits),
        "n_params": [f.n_params + 1 for f in fits.values()],
        "loglik": [f.loglik for f in fits.values()], "aicc": aicc, "delta_aicc": delta,
        "weight": w / w.sum() if w.sum() > 0 else np.full(len(fits), np.nan)})


def analyse_shape(label, y, V, log10_x, groups, *, alpha=0.05, confidence_level=0.95,
                  flat_margin=None, allow_u=True, sign=1) -> ShapeAnalysis:
    """Run the gated shape procedure (module docstring) on one set of models.

    Parameters
    ----------
    label : str
        Family name or ``"pooled"``.
    y, V : per-model scores and their sampling covariance.
    log10_x : array_like
        log10 scale per model (centred here).
    groups : array_like of int
        Family index per model (one intercept each).
    alpha : float
        Level of the gate and of every directional test.
    flat_margin : float or None
        Equivalence margin in score units; None makes "flat" impossible.
    allow_u : bool
        Whether U-type verdicts are considered (needs at least 5 distinct scales).
    sign : {+1, -1}
        +1 when higher scores are better, -1 for losses.

    Returns
    -------
    ShapeAnalysis
    """
    y, V = np.asarray(y, float), np.asarray(V, float)
    groups = np.asarray(groups)
    lx = np.asarray(log10_x, dtype=float)
    z_center = float(lx.mean())
    z = lx - z_center
    n_scales = len(np.unique(z))
    allow_u = allow_u and n_scales >= 5 and len(y) - (groups.max() + 3) >= 1
    basis = eigen_basis(V)                    # one eigendecomposition for every design
    fits = {"flat": fit_metareg(y, design_matrix("flat", z, groups), V, basis=basis),
            "linear": fit_metareg(y, design_matrix("linear", z, groups), V, basis=basis)}
    lin = fits["linear"]
    _, _, _, p_lin = lin.contrast(np.r_[np.zeros(lin.n_params - 1), 1.0])
    quad = tl = lm = None
    p_quad = np.nan
    if len(y) - (groups.max() + 3) >= 1 and n_scales >= 3:
        quad = fits["quadratic"] = fit_metareg(y, design_matrix("quadratic", z, groups), V,
                                               basis=basis)
        R = np.zeros((2, quad.n_params))
        R[0, -2], R[1, -1] = 1.0, 1.0
        _, p_quad = quad.wald_f(R)
        lm = lind_mehlum_test(quad, z.min(), z.max(), confidence_level=confidence_level)
    if allow_u and quad is not None:
        tl = two_lines_test(y, V, z, groups, quad, basis=basis)
        if tl is not None and len(y) - (groups.max() + 4) >= 1:
            fits["two_lines"] = tl.fit
    gate = _gate(p_lin, p_quad if allow_u else np.nan)
    tost = tost_flat(lin, quad if allow_u else None, float(z.max() - z.min()), flat_margin, alpha)
    verdict = _verdict(gate, p_lin, lin.params[-1] * sign, tl, sign, tost, alpha)
    return ShapeAnalysis(label=label, verdict=verdict, sign=sign, z_center=z_center, z=z,
                         groups=groups, linear=lin, quadratic=quad, two_lines=tl,
                         lind_mehlum=lm, gate=gate, tost=tost,
                         selection=_selection_table(label, fits))


def _gate(p_lin, p_quad):
    """Holm-adjusted omnibus p-value of 'the curve is not flat'.

    The smallest Holm-adjusted p-value of m tests is ``min(1, m * min(p))``; it is written out
    because statsmodels' ``multipletests`` runs ``gc.collect()`` on every call, which cost more
    than the rest of the verdict (the equality is tested against ``multipletests``).
    """
    ps = [p for p in (p_lin, p_quad) if np.isfinite(p)]
    return {"p_linear": float(p_lin), "p_quadratic": float(p_quad),
            "p_value": float(min(1.0, len(ps) * min(ps)))}


def _verdict(gate, p_lin, perf_slope, tl: TwoLines | None, sign, tost, alpha) -> str:
    if gate["p_value"] > alpha:
        return "flat" if tost["passed"] else "inconclusive"
    if tl is not None:
        # performance-scale U is a score-scale U for higher-is-better, an inverted U for losses
        if tl.u_p_value(sign) <= alpha:
            return "u_shaped"
        if tl.u_p_value(-sign) <= alpha:
            return "inverted_u"
    if p_lin <= alpha:
        return "positive" if perf_slope > 0 else "inverse"
    return "inconclusive"
