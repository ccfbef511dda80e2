"""Noise diagnostics, trend strength and generality: is a scaling trend real, strong and general?

:func:`add_noise_diagnostics` (called by :func:`scalingfit.fit_trend`) adds to a
:class:`~scalingfit.TrendResult`

* ``strength`` -- per family and pooled: slope per decade, change from the smallest to the largest
  model (paired across examples), trough depth / peak height of U shapes, signal-to-noise ratio;
* ``generality`` -- per family: does it show the shape (Holm across families), is its slope inside
  what the other families predict, does the pooled verdict survive leaving it out; plus Cochran's
  Q / I^2 of the family slopes;
* numbered notes in ``diagnostics`` (codes in :data:`NOTE_CODES`) and the raw numbers in
  ``result.meta['noise']``: influence of each model, bootstrap shape stability, a null-calibrated
  p-value, power, floor / ceiling near chance, metric sensitivity.

Everything that re-runs the verdict many times (influence, stability, null calibration) uses
:func:`batched_verdicts`, a vectorised re-implementation of the gated procedure of
:mod:`scalingfit.shapes` (REML ``tau^2`` on a shared grid refined by parabolic interpolation,
GLS, Knapp-Hartung t / F, two lines at a fixed breakpoint, TOST). It reproduces the core verdict on
the observed data (tested) and costs a few milliseconds per thousand replicates.

References
----------
Wei, J. et al. (2022). Inverse scaling can become U-shaped. arXiv:2211.02011.
Schaeffer, R., Miranda, B. & Koyejo, S. (2023). Are emergent abilities of large language models a
mirage? NeurIPS.
Higgins, J. P. T. & Thompson, S. G. (2002). Quantifying heterogeneity in a meta-analysis.
Statistics in Medicine 21:1539-1558 (I^2); Higgins, Thompson & Spiegelhalter (2009), JRSS-A 172
(prediction interval).
Knapp, G. & Hartung, J. (2003). Statistics in Medicine 22:2693-2710.
MacKinnon, J. G., Nielsen, M. O. & Webb, M. D. (2023). Cluster-robust inference: a guide to
empirical practice. J. Econometrics 232:272-299 (bootstrap tests with the null imposed).
Miller, E. (2024). Adding error bars to evals. arXiv:2411.00640.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import ndtr

from .bootstrap import as_generator
from .curves import design_matrix
from .diagnostics import NOTE_COLUMNS, note
from .exceptions import DataValidationError

__all__ = ["add_noise_diagnostics", "batched_verdicts", "LabelData", "label_data",
           "trend_strength", "generality_table", "influence_table", "shape_stability",
           "null_calibrated_p", "power_analysis", "examples_for_power", "power_at",
           "adjacent_differences", "floor_ceiling", "metric_sensitivity", "claim_p_value",
           "holm", "NOTE_CODES", "TREND_SHAPES"]

TREND_SHAPES = ("positive", "inverse", "u_shaped", "inverted_u")
U_SHAPES = ("u_shaped", "inverted_u")
VERDICTS = np.array(["positive", "inverse", "u_shaped", "inverted_u", "flat", "inconclusive",
                     "untestable"])
_V = {name: i for i, name in enumerate(VERDICTS)}

#: every note this module can add, with its severity and meaning (docs/diagnostics.md)
NOTE_CODES = {
    "small_eval_set": "fewer than 300 examples per model: normal-theory intervals under-cover",
    "imprecise_models": "some model's 95% interval is wider than +-flat margin (or the change)",
    "adjacent_reversals": "significant steps between neighbouring models change direction twice",
    "spread_is_model_noise": "model-level noise explains most of the spread of the scores",
    "verdict_depends_on_largest_model": "dropping the largest model changes the verdict",
    "influential_model": "dropping some other single model changes the verdict",
    "unstable_shape": "fewer than 80% of bootstrap replicates give the same verdict",
    "null_calibration_disagrees": "parametric bootstrap under the null disagrees with the t test",
    "underpowered": "less than 80% power for the observed effect",
    "near_chance": "models within noise of chance",
    "near_ceiling": "models within noise of the maximum score",
    "chance_to_below_chance": "the trend runs from chance to significantly below chance",
    "metric_disagreement": "a continuous metric gives a different shape",
    "heterogeneous_families": "family slopes differ more than their errors explain",
    "family_outside_prediction": "a family's slope is outside what the others predict",
    "pooled_verdict_depends_on_family": "leaving one family out changes the pooled verdict",
    "families_disagree": "families show significant trends in opposite directions",
}

STABILITY_TARGET = 0.8
POWER_TARGET = 0.8
SMALL_EVAL_SET = 300


# =================================================================== batched verdict engine
class LabelData:
    """The models behind one verdict (a family, or all families pooled) and the test options.

    Attributes
    ----------
    label : str
    idx : ndarray of int
        Positions in ``ModelScores.models``.
    y, V, z, groups : per-model scores, sampling covariance, centred log10 scale, family codes.
    breakpoint : float or None
        Two-lines breakpoint of the observed data (z units); held fixed in replicates.
    allow_u : bool
        Whether U-type verdicts were requested (the engine also needs >= 5 scales).
    wanted : set of str
        Verdicts allowed by ``shapes=`` (others read 'inconclusive').
    sign : {+1, -1}; alpha : float; margin : float or None
    """

    def __init__(self, label, idx, y, V, z, groups, breakpoint, allow_u, wanted, sign, alpha,
                 margin, verdict=None):
        self.label, self.idx = label, np.asarray(idx)
        self.y, self.V = np.asarray(y, float), np.asarray(V, float)
        self.z, self.groups = np.asarray(z, float), np.asarray(groups, int)
        self.breakpoint, self.allow_u, self.wanted = breakpoint, allow_u, set(wanted)
        self.sign, self.alpha, self.margin, self.verdict = sign, alpha, margin, verdict

    @property
    def k(self) -> int:
        return len(self.y)

    @property
    def n_groups(self) -> int:
        return int(self.groups.max()) + 1

    def subset(self, keep, label=None) -> "LabelData":
        """The same options on a subset of models (family codes renumbered)."""
        keep = np.asarray(keep)
        g = self.groups[keep]
        _, codes = np.unique(g, return_inverse=True)
        return LabelData(label or self.label, self.idx[keep], self.y[keep],
                         self.V[np.ix_(keep, keep)], self.z[keep], codes, self.breakpoint,
                         self.allow_u, self.wanted, self.sign, self.alpha, self.margin)


def label_data(result, ms, label) -> LabelData:
    """:class:`LabelData` of ``label`` (a family or 'pooled') from a result and its scores."""
    a = result.analyses[label]
    idx = np.arange(len(ms.models)) if label == "pooled" else ms.family_index(label)
    y = ms.models["score"].to_numpy(dtype=float)[idx]
    shapes = set(result.meta.get("shapes", TREND_SHAPES + ("flat", "inconclusive")))
    bp = a.two_lines.breakpoint if a.two_lines is not None else None
    return LabelData(label, idx, y, ms.cov[np.ix_(idx, idx)], a.z, a.groups, bp,
                     bool(shapes & set(U_SHAPES)), shapes | {"inconclusive"},
                     a.sign, result.meta["alpha"], result.meta.get("flat_margin"),
                     verdict=a.verdict)


def _jitter(V):
    scale = float(np.mean(np.diag(V))) if V.size else 0.0
    return 1e-9 * scale + 1e-14


def _tau2_grid(lam, Y, n=40):
    """Shared grid: 0, then log-spaced from negligible to 10x the largest plausible spread."""
    mean_v = max(float(np.mean(lam)), 0.0)
    spread = float(np.max(np.var(Y, axis=1))) if Y.size else 0.0
    hi = max(10.0 * (spread + mean_v), 1e-12)
    lo = max(1e-4 * mean_v, 1e-10 * hi)
    return np.r_[0.0, np.geomspace(lo, hi, n)]


def _reml_fit(Yt, Xt, lam, jit, grid):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _reml_fit_impl(Yt, Xt, lam, jit, grid)


def _reml_fit_impl(Yt, Xt, lam, jit, grid):
    """REML ``tau^2``, GLS and Knapp-Hartung covariance for many responses at once.

    ``Yt`` (B, k) and ``Xt`` ((k, p) shared or (B, k, p)) are rotated by the eigenvectors of
    ``V``, so ``Sigma = V + tau^2 I`` is diagonal (``lam + tau^2``). The REML criterion
    ``logdet Sigma + r' Sigma^-1 r + logdet X' Sigma^-1 X`` (the one :func:`estimate_tau2`
    minimises) is evaluated on a grid shared by all responses, refined per response by a parabola
    through the three grid points around its minimum (in log ``tau^2``); the final GLS uses each
    response's own ``tau^2``.

    Returns beta (B, p), cov (B, p, p), tau2 (B,).
    """
    B, k = Yt.shape
    shared = Xt.ndim == 2
    p = Xt.shape[-1]
    w = 1.0 / (lam[None, :] + grid[:, None] + jit)                       # (G, k)
    if shared:
        # q = y'Wy - rhs' beta, with every product a BLAS matrix product over the grid
        A = np.einsum("kp,gk,kq->gpq", Xt, w, Xt)
        Ai = _inv(A)
        yWy = (Yt * Yt) @ w.T                                              # (B, G)
        YX = (Yt[:, :, None] * Xt[None, :, :]).transpose(0, 2, 1).reshape(B * p, k)
        rhs = (YX @ w.T).reshape(B, p, -1).transpose(2, 0, 1)              # (G, B, p)
        beta = np.einsum("gpq,gbq->gbp", Ai, rhs)
        q = yWy.T - np.einsum("gbp,gbp->gb", rhs, beta)
        logdet_x = np.linalg.slogdet(A)[1][:, None]
    else:
        A = np.einsum("bkp,gk,bkq->gbpq", Xt, w, Xt)
        Ai = _inv(A)
        rhs = np.einsum("bkp,gk,bk->gbp", Xt, w, Yt)
        beta = np.einsum("gbpq,gbq->gbp", Ai, rhs)
        fitted = np.einsum("bkp,gbp->gbk", Xt, beta)
        logdet_x = np.linalg.slogdet(A)[1]
        r = Yt[None] - fitted
        q = np.einsum("gbk,gk->gb", r * r, w)
    logdet = np.sum(np.log(lam[None, :] + grid[:, None] + jit), axis=1)[:, None]
    nll = logdet + q + logdet_x                                            # (G, B)
    nll = np.where(np.isfinite(nll), nll, np.inf)     # singular designs (masked by callers)
    i = np.argmin(nll, axis=0)
    tau2 = grid[i].copy()
    # parabolic refinement in s = log tau2 where the minimum is interior to the log grid
    inner = (i >= 2) & (i <= len(grid) - 2)
    if inner.any():
        b = np.flatnonzero(inner)
        ii = i[b]
        s = np.log(grid[1:])
        h = s[1] - s[0]
        f0, f1, f2 = nll[ii - 1, b], nll[ii, b], nll[ii + 1, b]
        with np.errstate(invalid="ignore"):
            den = f0 - 2 * f1 + f2
            ok = np.isfinite(den) & (den > 0)
            step = np.where(ok, 0.5 * h * (f0 - f2) / np.where(ok, den, 1.0), 0.0)
        tau2[b] = np.exp(s[ii - 1] + np.clip(step, -h, h))
    # final fit at each response's own tau2
    wb = 1.0 / (lam[None, :] + tau2[:, None] + jit)                       # (B, k)
    if shared:
        A = np.einsum("kp,bk,kq->bpq", Xt, wb, Xt)
        rhs = (Yt * wb) @ Xt
        Ai = _inv(A)
        beta = np.einsum("bpq,bq->bp", Ai, rhs)
        r = Yt - beta @ Xt.T
    else:
        A = np.einsum("bkp,bk,bkq->bpq", Xt, wb, Xt)
        rhs = np.einsum("bkp,bk,bk->bp", Xt, wb, Yt)
        Ai = _inv(A)
        beta = np.einsum("bpq,bq->bp", Ai, rhs)
        r = Yt - np.einsum("bkp,bp->bk", Xt, beta)
    return beta, Ai, tau2, np.einsum("bk,bk->b", r * r, wb)


def _inv(A):
    """Batched inverse; the pseudo-inverse when some matrix is singular (masked by callers)."""
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(A)


def _kh(beta, Ai, q, df):
    """Knapp-Hartung covariance ``max(1, q / df) (X' Sigma^-1 X)^-1``."""
    scale = np.maximum(1.0, q / np.maximum(df, 1))
    return Ai * scale[:, None, None]


def _t_p(est, var, df):
    se = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, est / se, np.inf * np.sign(est))
    p = 2 * stats.t.sf(np.abs(t), np.maximum(df, 1))
    return se, t, np.where(np.isfinite(t), p, 0.0)


def _scales_kept(z, keep):
    """Number of distinct scales among kept models, per replicate (keep: (B, k) bool)."""
    u, inv = np.unique(z, return_inverse=True)
    onehot = np.zeros((len(z), len(u)), bool)
    onehot[np.arange(len(z)), inv] = True
    return (keep.astype(int) @ onehot.astype(int) > 0).sum(axis=1)


def batched_verdicts(d: LabelData, Y=None, *, drop=None, n_grid: int = 40) -> dict:
    """The gated shape verdict of :func:`scalingfit.shapes.analyse_shape` for many responses.

    Parameters
    ----------
    d : LabelData
        Models, covariance, design and options (breakpoint held fixed).
    Y : ndarray, shape (B, k), optional
        Replicate scores (default: the observed scores, one row).
    drop : ndarray of int, shape (B,), optional
        Model to leave out of each replicate (-1 for none). Dropping is exact: a model-specific
        indicator column absorbs the model, which for GLS and REML is the same as deleting it.

    Returns
    -------
    dict of ndarray, shape (B,)
        ``verdict`` (str), ``slope``, ``se``, ``p_linear``, ``p_quadratic``, ``p_gate``,
        ``p_u`` (U on the performance scale), ``p_inverted_u``, ``p_flat``, ``tau2``, and
        ``p_claim_<shape>`` for each trend shape (see :func:`claim_p_value`).

    Notes
    -----
    Departures from the core procedure, all forced by vectorising: ``tau^2`` is found on a
    40-point log grid with parabolic refinement instead of Brent's method (verdicts agree with
    the core on the observed data, tested), and the two-lines breakpoint is not re-chosen per
    replicate.
    """
    Y = d.y[None, :] if Y is None else np.atleast_2d(np.asarray(Y, dtype=float))
    B, k = Y.shape
    G = d.n_groups
    z, alpha, sign = d.z, d.alpha, d.sign
    if drop is None:
        keep = np.ones((B, k), bool)
    else:
        drop = np.asarray(drop)
        keep = np.ones((B, k), bool)
        keep[np.arange(B)[drop >= 0], drop[drop >= 0]] = False
    n_kept = keep.sum(axis=1)
    n_scales = _scales_kept(z, keep)
    lam, Q = np.linalg.eigh(d.V)
    lam = np.clip(lam, 0.0, None)
    jit = _jitter(d.V)
    Yt = Y @ Q
    grid = _tau2_grid(lam, Y, n_grid)
    dummy = None if drop is None else (~keep).astype(float)               # (B, k)

    def fit(X):
        """Rotate a (k, p) design (adding the drop indicator) and fit all replicates."""
        if dummy is None:
            Xt = Q.T @ X
            p = X.shape[1]
        else:
            Xb = np.concatenate([np.broadcast_to(X, (B,) + X.shape), dummy[:, :, None]], axis=2)
            Xt = np.einsum("kj,bkp->bjp", Q, Xb)
            p = X.shape[1] + int(np.any(dummy))
        beta, Ai, tau2, q = _reml_fit(Yt, Xt, lam, jit, grid)
        df = n_kept - (p - (0 if dummy is None else 1))  # kept models minus curve parameters
        if dummy is None:
            df = k - p
        return beta, _kh(beta, Ai, q, df), tau2, np.broadcast_to(df, (B,)).astype(int)

    lin_ok = n_kept - (G + 1) >= 1
    bl, cl, tau2_lin, dfl = fit(design_matrix("linear", z, d.groups))
    slope = bl[:, G]
    se, _, p_lin = _t_p(slope, cl[:, G, G], dfl)
    out = {"slope": slope, "se": se, "p_linear": p_lin, "tau2": tau2_lin}

    quad_ok = (n_kept - (G + 3) >= 1) & (n_scales >= 3)
    allow_u = d.allow_u & (n_scales >= 5) & quad_ok
    p_quad = np.full(B, np.nan)
    bow_p = np.full(B, np.nan)
    z_range = np.array([np.ptp(z[kp]) for kp in keep]) if drop is not None else np.full(
        B, np.ptp(z))
    if allow_u.any() and d.k - (G + 3) >= 1:
        bq, cq, _, dfq = fit(design_matrix("quadratic", z, d.groups))
        est = bq[:, G:G + 2]
        C = cq[:, G:G + 2, G:G + 2]
        F = np.einsum("bi,bij,bj->b", est, _inv(C), est) / 2
        p_quad = np.where(allow_u, stats.f.sf(F, 2, np.maximum(dfq, 1)), np.nan)
        bow_p = _tost_p(bq[:, G + 1] * (z_range / 2) ** 2,
                        np.sqrt(cq[:, G + 1, G + 1]) * (z_range / 2) ** 2, d.margin, dfq)
    # gate: Holm-adjusted minimum of the linear and (when U is allowed) quadratic p-values
    with np.errstate(invalid="ignore"):
        p_gate = np.where(allow_u, np.minimum(1.0, 2 * np.fmin(p_lin, p_quad)), p_lin)
    out.update(p_quadratic=p_quad, p_gate=p_gate)

    p_u = np.ones(B)
    p_iu = np.ones(B)
    c = d.breakpoint
    if c is not None and allow_u.any():
        low_scales = _scales_kept(z, keep & (z <= c)[None, :])
        high_scales = _scales_kept(z, keep & (z > c)[None, :])
        at = keep & np.isclose(z, c, rtol=0, atol=1e-12)[None, :]
        low2 = _scales_kept(z, keep & (z < c)[None, :] & ~at)
        high2 = _scales_kept(z, keep & ((z > c)[None, :] | at))
        tl_ok = allow_u & (low_scales >= 2) & (high_scales >= 2) & (low2 >= 2) & (high2 >= 2)
        tl_ok &= n_kept - (G + 3) >= 1
        if tl_ok.any():
            X1 = design_matrix("two_lines", z, d.groups, breakpoint=c)
            b1, c1, _, df1 = fit(X1)
            sl, _, pl = _t_p(b1[:, G], c1[:, G, G], df1)
            if np.any(np.isclose(z, c, rtol=0, atol=1e-12)):
                X2 = X1.copy()
                X2[np.isclose(z, c, rtol=0, atol=1e-12), G + 2] = 1.0
                b2, c2, _, df2 = fit(X2)
            else:
                b2, c2, df2 = b1, c1, df1
            sr, _, pr = _t_p(b2[:, G + 1], c2[:, G + 1, G + 1], df2)
            left, right = b1[:, G], b2[:, G + 1]
            for direction, target in ((sign, "u"), (-sign, "iu")):
                ok = (direction * left < 0) & (direction * right > 0) & tl_ok
                val = np.where(ok, np.maximum(pl, pr), 1.0)
                if target == "u":
                    p_u = val
                else:
                    p_iu = val
    out.update(p_u=p_u, p_inverted_u=p_iu)

    lin_tost = _tost_p(slope * z_range, se * z_range, d.margin, dfl)
    p_flat = np.where(allow_u & np.isfinite(bow_p), np.fmax(lin_tost, bow_p), lin_tost)
    out["p_flat"] = p_flat

    verdict = np.full(B, _V["inconclusive"])
    gate_pass = p_gate <= alpha
    verdict[~gate_pass & (p_flat < alpha)] = _V["flat"]
    is_u = gate_pass & (p_u <= alpha)
    is_iu = gate_pass & ~is_u & (p_iu <= alpha)
    mono = gate_pass & ~is_u & ~is_iu & (p_lin <= alpha)
    verdict[is_u] = _V["u_shaped"]
    verdict[is_iu] = _V["inverted_u"]
    verdict[mono & (slope * sign > 0)] = _V["positive"]
    verdict[mono & (slope * sign <= 0)] = _V["inverse"]
    names = VERDICTS[verdict]
    names = np.where(np.isin(names, list(d.wanted)), names, "inconclusive")
    names = np.where(lin_ok, names, "untestable")
    out["verdict"] = names
    perf = slope * sign
    out["p_claim_positive"] = np.where(perf > 0, np.fmax(p_gate, p_lin), 1.0)
    out["p_claim_inverse"] = np.where(perf < 0, np.fmax(p_gate, p_lin), 1.0)
    out["p_claim_u_shaped"] = np.fmax(p_gate, p_u)
    out["p_claim_inverted_u"] = np.fmax(p_gate, p_iu)
    out["p_claim_flat"] = np.where(p_gate > alpha, p_flat, 1.0)
    return out


def _tost_p(est, se, margin, df):
    """Larger of the two one-sided p-values that ``est`` lies inside ``(-margin, margin)``."""
    est = np.asarray(est, float)
    if margin is None or not np.isfinite(margin) or margin <= 0:
        return np.ones_like(est)
    df = np.maximum(df, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_lo = np.where(se > 0, stats.t.sf((est + margin) / se, df), (est <= -margin) * 1.0)
        p_hi = np.where(se > 0, stats.t.cdf((est - margin) / se, df), (est >= margin) * 1.0)
    return np.fmax(p_lo, p_hi)


def claim_p_value(row: dict, claim: str, sign: int, alpha: float) -> float:
    """p-value of ``claim`` for one family / pooled row of :attr:`TrendResult.families`.

    The smallest level at which the gated procedure could return the claim: monotone claims
    ``max(p_gate, p_linear)`` when the slope points the claimed way (performance orientation),
    else 1; U-type ``max(p_gate, p_two_lines)``; flat the TOST p when the gate does not reject.
    """
    gate = row.get("p_gate", np.nan)
    if claim in ("positive", "inverse"):
        want = 1 if claim == "positive" else -1
        return float(max(gate, row["p_value"])) if row["slope"] * sign * want > 0 else 1.0
    if claim in U_SHAPES:
        p = row.get("p_" + claim, np.nan)
        return float(max(gate, p)) if np.isfinite(p) else 1.0
    if claim == "flat":
        p = row.get("p_flat", np.nan)
        return float(p) if np.isfinite(p) and gate > alpha else 1.0
    raise ValueError(f"claim must be one of {list(TREND_SHAPES) + ['flat']}; got {claim!r}")


def holm(p) -> np.ndarray:
    """Holm step-down adjusted p-values (equal to statsmodels ``multipletests(p, 'holm')``,
    tested; written out because statsmodels runs ``gc.collect()`` on every Holm call, ~40 ms)."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adj
    return out


def _main_label(result) -> str:
    return "pooled" if "pooled" in result.analyses else next(iter(result.analyses))


def _target_claim(result) -> str:
    """The shape the diagnostics test: the verdict when it is a trend, else the slope direction."""
    if result.shape in TREND_SHAPES:
        return result.shape
    perf = result.pooled["slope"] * (1 if result.meta["higher_is_better"] else -1)
    return "positive" if perf > 0 else "inverse"


def _units(result) -> tuple[str, str]:
    metric = result.meta.get("metric") or "score"
    x = "parameters" if result.meta.get("x", "n_params") == "n_params" else "training FLOPs"
    scale = " (0-1 scale; x100 for points)" if result.meta.get("proportion") else ""
    return f"{metric}{scale} per 10x {x}", f"{metric}{scale}"


# ======================================================================= trend strength
def _family_ends(ms, idx):
    """Contrast vector (over ``idx``) of largest minus smallest model, averaged over families."""
    m = ms.models.iloc[idx]
    c = np.zeros(len(idx))
    fams = list(pd.unique(m["family"]))
    for fam in fams:
        pos = np.flatnonzero(m["family"].to_numpy() == fam)
        x = m["x"].to_numpy()[pos]
        small, large = pos[x == x.min()], pos[x == x.max()]
        c[large] += 1.0 / len(large) / len(fams)
        c[small] -= 1.0 / len(small) / len(fams)
    return c


def trend_strength(result, ms) -> pd.DataFrame:
    """Trend strength per family and pooled, each with an interval and its units.

    Rows (``quantity``): ``slope_per_decade`` and ``change_fitted`` (slope times the observed
    range; Knapp-Hartung, model level); ``change_smallest_to_largest`` (largest minus smallest
    model, paired across examples: its SE is the example-sampling error only, from ``ms.cov``);
    ``snr`` (fitted change over its model-level SE) and ``snr_examples_only`` (observed change
    over its paired SE -- a large gap between the two says the model-level noise, not the
    examples, limits what the curve can show); for U / inverted-U verdicts ``left_arm_change``,
    ``right_arm_change`` (two-lines slopes times the arm lengths), ``trough_depth`` /
    ``peak_height`` (the smaller arm, relative to both ends), ``extremum_location`` (the
    breakpoint, x units) and ``turning_point`` (quadratic, Fieller interval).
    """
    cl = result.meta["confidence_level"]
    zq = stats.norm.ppf(0.5 + cl / 2)
    slope_units, score_units = _units(result)
    y = ms.models["score"].to_numpy(dtype=float)
    rows = []

    def add(label, quantity, est, se, lo, hi, units, note_=""):
        rows.append({"family": label, "quantity": quantity, "estimate": float(est),
                     "se": float(se), "ci_lower": float(lo), "ci_upper": float(hi),
                     "units": units, "note": note_})

    for label, a in result.analyses.items():
        idx = np.arange(len(ms.models)) if label == "pooled" else ms.family_index(label)
        est, se, _, _ = a.slope
        t = a.linear.t_quantile(cl)
        add(label, "slope_per_decade", est, se, est - t * se, est + t * se, slope_units,
            "model-level (Knapp-Hartung) interval")
        rng_z = float(np.ptp(a.z))
        add(label, "change_fitted", est * rng_z, se * rng_z, (est - t * se) * rng_z,
            (est + t * se) * rng_z, score_units,
            f"fitted change over {rng_z:.2g} decades, model-level interval")
        c = _family_ends(ms, idx)
        V = ms.cov[np.ix_(idx, idx)]
        obs = float(c @ y[idx])
        se_obs = float(np.sqrt(max(c @ V @ c, 0.0)))
        add(label, "change_smallest_to_largest", obs, se_obs, obs - zq * se_obs,
            obs + zq * se_obs, score_units,
            "paired across examples; excludes model-level noise")
        # the interval of the change in units of its (fixed) SE: snr +- the quantile
        snr = est * rng_z / (se * rng_z) if se > 0 else np.inf
        add(label, "snr", snr, 1.0, snr - t, snr + t, "ratio",
            "fitted change / its model-level SE (interval: the change's interval in SE units)")
        snr_e = obs / se_obs if se_obs > 0 else np.inf
        add(label, "snr_examples_only", snr_e, 1.0, snr_e - zq, snr_e + zq, "ratio",
            "observed change / its paired example-level SE (interval in SE units)")
        tl = a.two_lines
        if a.verdict in U_SHAPES and tl is not None:
            df = tl.fit.df_resid
            t2 = stats.t.ppf(0.5 + cl / 2, df)
            left_len, right_len = tl.breakpoint - a.z.min(), a.z.max() - tl.breakpoint
            arms = {"left_arm_change": (tl.slope_left * left_len, tl.se_left * left_len),
                    "right_arm_change": (tl.slope_right * right_len, tl.se_right * right_len)}
            for name, (e, s) in arms.items():
                add(label, name, e, s, e - t2 * s, e + t2 * s, score_units,
                    "two-lines slope times arm length")
            (el, sl), (er, sr) = arms.values()
            # depth relative to both ends: the smaller rise from the extremum to an end
            depth, sd = (abs(el), sl) if abs(el) <= abs(er) else (abs(er), sr)
            name = "trough_depth" if a.verdict == "u_shaped" else "peak_height"
            add(label, name, depth, sd, depth - t2 * sd, depth + t2 * sd, score_units,
                "smaller of the two arm changes (relative to both ends), performance scale")
            bx = float(10 ** (tl.breakpoint + a.z_center))
            add(label, "extremum_location", bx, np.nan, np.nan, np.nan,
                result.meta.get("x", "n_params"),
                "two-lines breakpoint (a design choice, no sampling interval; the "
                "turning_point row carries the Fieller interval of the extremum)")
            lm = a.lind_mehlum
            if lm is not None and np.isfinite(lm["turning_point"]):
                f = lambda v: float(10 ** (v + a.z_center)) if np.isfinite(v) else np.nan
                add(label, "turning_point", f(lm["turning_point"]), np.nan,
                    f(lm["tp_ci_lower"]), f(lm["tp_ci_upper"]),
                    result.meta.get("x", "n_params"), "quadratic, Fieller interval")
    return pd.DataFrame(rows)


# ======================================================================= generality
def _dl(b, s):
    """DerSimonian-Laird random-effects mean, its SE, tau^2, Cochran's Q and I^2."""
    b, s = np.asarray(b, float), np.asarray(s, float)
    w = 1.0 / s**2
    fixed = np.sum(w * b) / np.sum(w)
    Q = float(np.sum(w * (b - fixed) ** 2))
    df = len(b) - 1
    denom = np.sum(w) - np.sum(w**2) / np.sum(w)
    tau2 = max(0.0, (Q - df) / denom) if df > 0 and denom > 0 else 0.0
    wr = 1.0 / (s**2 + tau2)
    mean = float(np.sum(wr * b) / np.sum(wr))
    i2 = max(0.0, (Q - df) / Q) if Q > 0 and df > 0 else 0.0
    return mean, float(np.sqrt(1.0 / np.sum(wr))), tau2, Q, i2


def _effect_of(a, kind):
    """(estimate, SE) of the slope, or of the quadratic coefficient for U-type claims."""
    if kind == "curvature" and a.quadratic is not None:
        return float(a.quadratic.params[-1]), float(np.sqrt(a.quadratic.cov[-1, -1]))
    if kind == "curvature":
        return np.nan, np.nan
    est, se, _, _ = a.slope
    return float(est), float(se)


def _family_effects(result, fams, claim):
    kind = "curvature" if claim in U_SHAPES else "slope"
    vals = [_effect_of(result.analyses[f], kind) for f in fams["family"]]
    return kind, np.array([v[0] for v in vals]), np.array([v[1] for v in vals])


def generality_table(result, ms, claim=None) -> pd.DataFrame:
    """Generality of ``claim`` (default: the verdict, or the slope direction) across families.

    One row per family: its verdict, the ``effect`` compared (``slope`` per decade, or
    ``curvature`` -- the quadratic coefficient -- for U-type claims) with its ``estimate`` and
    ``se``, ``p_claim`` (see :func:`claim_p_value`) and
    its Holm-adjusted value across families, ``shows_claim``; ``loo_shape`` (pooled verdict of
    the other families, from :func:`batched_verdicts`) and ``loo_keeps_claim``; the random-effects
    ``pred_lower`` / ``pred_upper`` prediction interval of this family's slope from the others
    (Higgins et al. 2009, plus this family's own SE; t with m - 2 df for m >= 3 others, normal
    otherwise) and ``in_prediction_interval``. A last row ``family='pooled'`` holds the pooled
    verdict, ``n_showing``, and Cochran's ``Q`` (``df_q``, ``p_heterogeneity``), ``I2`` and
    ``tau2_between`` of the family effects.
    """
    claim = claim or _target_claim(result)
    alpha = result.meta["alpha"]
    sign = 1 if result.meta["higher_is_better"] else -1
    fams = result.families.reset_index(drop=True)
    p = np.array([claim_p_value(r, claim, sign, alpha) for r in fams.to_dict("records")])
    adj = holm(p)
    rows = []
    pooled_d = label_data(result, ms, "pooled") if "pooled" in result.analyses else None
    kind, b, s = _family_effects(result, fams, claim)
    for i, r in fams.iterrows():
        row = {"family": r["family"], "shape": r["shape"], "effect": kind, "estimate": b[i],
               "se": s[i], "claim": claim, "p_claim": p[i], "p_holm": adj[i],
               "shows_claim": bool(adj[i] <= alpha), "loo_shape": None,
               "loo_keeps_claim": None, "pred_lower": np.nan, "pred_upper": np.nan,
               "in_prediction_interval": None}
        if pooled_d is not None:
            others = [f for f in fams["family"] if f != r["family"]]
            if len(others) == 1:
                loo = result.analyses[others[0]].verdict
            else:
                keep = np.flatnonzero(ms.models["family"].to_numpy() != r["family"])
                loo = str(batched_verdicts(pooled_d.subset(keep))["verdict"][0])
            row["loo_shape"], row["loo_keeps_claim"] = loo, bool(loo == claim)
            o = (np.arange(len(fams)) != i) & np.isfinite(b) & np.isfinite(s)
            m = int(o.sum())
            if m >= 1 and np.isfinite(b[i]):
                mean, se_mean, tau2, _, _ = _dl(b[o], s[o])
                q = stats.t.ppf(1 - alpha / 2, m - 2) if m >= 3 else stats.norm.ppf(
                    1 - alpha / 2)
                half = q * np.sqrt(se_mean**2 + tau2 + s[i] ** 2)
                row["pred_lower"], row["pred_upper"] = mean - half, mean + half
                row["in_prediction_interval"] = bool(mean - half <= b[i] <= mean + half)
        rows.append(row)
    out = pd.DataFrame(rows)
    ok = np.isfinite(b) & np.isfinite(s)
    if len(fams) > 1 and ok.sum() >= 2:
        mean, se_mean, tau2, Q, i2 = _dl(b[ok], s[ok])
        pa = result.analyses["pooled"]
        pb, ps_ = _effect_of(pa, kind)
        out = pd.concat([out, pd.DataFrame([{
            "family": "pooled", "shape": result.shape, "effect": kind, "estimate": pb,
            "se": ps_, "claim": claim,
            "p_claim": claim_p_value(result.pooled, claim, sign, alpha),
            "n_showing": int(out["shows_claim"].sum()), "n_families": len(fams),
            "Q": Q, "df_q": int(ok.sum()) - 1,
            "p_heterogeneity": float(stats.chi2.sf(Q, int(ok.sum()) - 1)),
            "I2": i2, "tau2_between": tau2}])], ignore_index=True)
    else:
        out["n_showing"] = int(out["shows_claim"].sum())
    return out


# ======================================================================= influence & stability
def influence_table(result, ms, labels=None) -> pd.DataFrame:
    """Verdict, slope and interval with each single model left out, per family and pooled.

    Columns: ``label`` (the analysis), ``dropped`` (model), ``family``, ``x``, ``largest``
    (the largest model of its family), ``shape`` (verdict without it; 'untestable' when too few
    models remain), ``shape_full``, ``changed``, ``slope``, ``ci_lower``, ``ci_upper``.
    """
    cl = result.meta["confidence_level"]
    frames = []
    for label in labels or result.analyses:
        d = label_data(result, ms, label)
        o = batched_verdicts(d, np.repeat(d.y[None, :], d.k, axis=0), drop=np.arange(d.k))
        m = ms.models.iloc[d.idx]
        largest = m["x"].to_numpy() == m.groupby("family")["x"].transform("max").to_numpy()
        df = np.maximum(d.k - 1 - d.n_groups - 1, 1)
        t = stats.t.ppf(0.5 + cl / 2, df)
        frames.append(pd.DataFrame({
            "label": label, "dropped": m["model"].to_numpy(), "family": m["family"].to_numpy(),
            "x": m["x"].to_numpy(), "largest": largest, "shape": o["verdict"],
            "shape_full": d.verdict, "changed": (o["verdict"] != d.verdict)
            & (o["verdict"] != "untestable"), "slope": o["slope"],
            "ci_lower": o["slope"] - t * o["se"], "ci_upper": o["slope"] + t * o["se"]}))
    return pd.concat(frames, ignore_index=True)


def _reference_fit(a):
    """The fit behind a verdict: two lines for U verdicts, else the straight line."""
    return a.two_lines.fit if (a.verdict in U_SHAPES and a.two_lines is not None) else a.linear


def shape_stability(result, ms, *, n_boot: int, rng) -> dict:
    """Share of replicates (examples and models resampled) that give each label's verdict.

    A replicate is the label's fitted verdict curve (two lines for U verdicts, else the line)
    plus a paired-bootstrap draw of the example error (one draw of example ids shared by all
    models, centred: ``ybar* - ybar``) plus a fresh model-level deviation ``N(0, tau^2)`` per
    model, with that curve's REML ``tau^2``. It is a new dataset from the fitted model, so the
    share estimates how often a repeat of the study (same sizes, new examples, new checkpoints)
    would reach the same verdict. Replicates are classified by :func:`batched_verdicts` with the
    observed two-lines breakpoint held fixed.

    Returns
    -------
    dict
        label -> ``{'verdict', 'share', 'n', 'counts'}``; the replicate verdicts under
        ``'_raw'``.
    """
    from .bootstrap import replicate_scores

    y = ms.models["score"].to_numpy(dtype=float)
    E = replicate_scores(ms, n_boot, rng, 0.0) - y           # paired example error
    Z = rng.standard_normal(E.shape)                         # model-level deviations
    out, raw = {}, {}
    for label, a in result.analyses.items():
        d = label_data(result, ms, label)
        fit = _reference_fit(a)
        Y = (fit.X @ fit.params)[None, :] + E[:, d.idx] + np.sqrt(fit.tau2) * Z[:, d.idx]
        o = batched_verdicts(d, Y)
        vals, counts = np.unique(o["verdict"], return_counts=True)
        out[label] = {"verdict": d.verdict, "share": float(np.mean(o["verdict"] == d.verdict)),
                      "n": int(n_boot), "counts": {str(v): int(c) for v, c in zip(vals, counts)}}
        raw[label] = o["verdict"]
    out["_raw"] = raw
    return out


# ======================================================================= null calibration
def _fit_observed(d: LabelData, X):
    """GLS + REML of the observed scores on design ``X`` (via the batched engine)."""
    lam, Q = np.linalg.eigh(d.V)
    lam = np.clip(lam, 0.0, None)
    beta, _, tau2, _ = _reml_fit(d.y[None, :] @ Q, Q.T @ X, lam, _jitter(d.V),
                                 _tau2_grid(lam, d.y[None, :]))
    return beta[0], float(tau2[0])


def null_calibrated_p(d: LabelData, claim: str, *, n_sim: int, rng) -> dict:
    """Parametric-bootstrap p-value of ``claim`` under the best-fitting curve that is not it.

    The null is the least favourable curve without the claimed shape: flat (family intercepts)
    for monotone claims, the best straight line for U-type claims, and for 'flat' the line
    whose change over the range equals the margin (in the observed direction). Datasets are
    drawn as ``X beta_0 + N(0, V + tau_0^2 I)`` with the null fit's REML ``tau_0^2``, classified
    by :func:`batched_verdicts`, and the p-value is
    ``(1 + #{p*_claim <= p_claim}) / (n_sim + 1)`` (MacKinnon, Nielsen & Webb 2023: impose the
    null).
    """
    if claim in ("positive", "inverse"):
        X = design_matrix("flat", d.z, d.groups)
        beta, tau2 = _fit_observed(d, X)
    else:
        X = design_matrix("linear", d.z, d.groups)
        beta, tau2 = _fit_observed(d, X)
        if claim == "flat":
            margin = d.margin if d.margin and np.isfinite(d.margin) else 0.0
            beta = beta.copy()
            beta[-1] = np.sign(beta[-1] or 1.0) * margin / max(np.ptp(d.z), 1e-12)
    mean = X @ beta
    lam, Q = np.linalg.eigh(d.V + tau2 * np.eye(d.k))
    L = Q * np.sqrt(np.clip(lam, 0.0, None))
    Y = mean + rng.standard_normal((n_sim, d.k)) @ L.T
    obs = batched_verdicts(d)[f"p_claim_{claim}"][0]
    sim = batched_verdicts(d, Y)[f"p_claim_{claim}"]
    p = (1 + int(np.sum(sim <= obs))) / (n_sim + 1)
    return {"claim": claim, "label": d.label, "p_value": float(p), "p_observed": float(obs),
            "n_sim": int(n_sim), "tau2_null": tau2,
            "null": "flat" if claim in ("positive", "inverse") else
            ("line at the margin" if claim == "flat" else "straight line")}


# ======================================================================= power
def power_at(delta, df, crit, floor=1.0, n_q: int = 256):
    """Power of the Knapp-Hartung t test of one coefficient.

    With known weights the estimate is ``N(effect, var)`` and the Knapp-Hartung scale is
    ``S = chi^2_df / df`` (independent of it); the REML / truncated scale used by the core is
    ``max(floor, S)`` with ``floor = var_sampling / (var_sampling + tau^2 part)`` (exact when all
    models have the same sampling variance). So the test rejects when
    ``|Z + delta| > crit * sqrt(max(floor, S))``; the expectation over ``S`` is taken on
    ``n_q`` quantiles. With ``floor=0`` this is the noncentral t power.

    Parameters
    ----------
    delta : float or array
        Effect over its true standard error (noncentrality).
    df : int; crit : float (two-sided critical value); floor : float or array in [0, 1].
    """
    S = _chi2_quantiles(int(df), n_q)
    floor = np.asarray(floor, dtype=float)[..., None]
    c = crit * np.sqrt(np.maximum(floor, S))
    delta = np.asarray(delta, dtype=float)[..., None]
    return np.mean(ndtr(delta - c) + ndtr(-c - delta), axis=-1)


@lru_cache(maxsize=256)
def _chi2_quantiles(df: int, n_q: int) -> np.ndarray:
    return stats.chi2.ppf((np.arange(n_q) + 0.5) / n_q, df) / df


def _coef_var(X, V, tau2, a, col):
    """``[(X' (a V + tau^2 I)^-1 X)^-1]_{col,col}`` for an array of ``a`` (via V's eigenvectors)."""
    lam, Q = np.linalg.eigh(V)
    lam = np.clip(lam, 0.0, None)
    Xt = Q.T @ X
    a = np.atleast_1d(np.asarray(a, dtype=float))
    w = 1.0 / (a[:, None] * lam[None, :] + tau2 + _jitter(V) + 1e-300)
    A = np.einsum("kp,ak,kq->apq", Xt, w, Xt)
    return np.linalg.inv(A)[:, col, col]


def _solve_delta(df, crit, floor, target):
    from scipy.optimize import brentq

    return float(brentq(lambda dl: power_at(dl, df, crit, floor) - target, 0.0, 60.0,
                        xtol=1e-4))


def examples_for_power(d: LabelData, effect, *, tau2: float, n_examples: float,
                       target: float = POWER_TARGET, kind: str = "slope"):
    """Examples per model at which ``effect`` reaches ``target`` power.

    The sampling covariance scales as ``V * n_examples / n``; ``tau^2`` does not shrink with
    more examples, so the answer is None when even infinitely many examples fall short.
    Power is evaluated on a log grid of ``n`` (10 decades either way) and the crossing is
    interpolated in log ``n``. ``effect`` may be an array (one answer per effect); ``kind`` is
    'slope' (per decade) or 'curvature' (quadratic coefficient per decade^2).
    """
    X, col, df, crit = _coef_test(d, kind)
    eff = np.abs(np.atleast_1d(np.asarray(effect, dtype=float)))
    if df < 1 or n_examples is None or not np.isfinite(n_examples):
        out = [None] * len(eff)
        return out if np.ndim(effect) else out[0]
    a = np.geomspace(1e4, 1e-6, 201)                 # a = n_now / n: n grows along the grid
    var = _coef_var(X, d.V, tau2, a, col)
    floor = _coef_var(X, d.V, 0.0, a, col) / var if tau2 > 0 else np.ones_like(a)
    pw = power_at(eff[:, None] / np.sqrt(var)[None, :], df, crit, floor[None, :])
    out = []
    for e, row in zip(eff, pw):
        hit = np.flatnonzero(row >= target)
        if e == 0 or not len(hit):
            out.append(None)
            continue
        i = hit[0]
        if i == 0:
            out.append(1)
            continue
        f = (target - row[i - 1]) / (row[i] - row[i - 1])
        log_a = np.log(a[i - 1]) + f * (np.log(a[i]) - np.log(a[i - 1]))
        out.append(int(np.ceil(n_examples / np.exp(log_a))))
    return out if np.ndim(effect) else out[0]


def _coef_test(d: LabelData, kind: str = "slope", k_models=None):
    """Design, tested column, df and two-sided critical value of the verdict's test.

    ``kind='slope'``: the linear slope. With U-type shapes in play the gate is the Holm minimum
    of two tests, so a slope is detected at two-sided level alpha / 2; otherwise at alpha.
    ``kind='curvature'``: the quadratic coefficient at level alpha (a proxy for the two-lines
    test, which needs both arms).
    """
    G = d.n_groups
    n_scales = len(np.unique(d.z)) if k_models is None else k_models
    k = d.k if k_models is None else G * k_models
    if kind == "curvature":
        X = design_matrix("quadratic", d.z, d.groups) if k_models is None else None
        df = k - G - 2
        return X, G + 1, df, float(stats.t.ppf(1 - d.alpha / 2, max(df, 1)))
    X = design_matrix("linear", d.z, d.groups) if k_models is None else None
    df = k - G - 1
    two_tests = d.allow_u and n_scales >= 5 and k - (G + 3) >= 1
    level = d.alpha / 2 if two_tests else d.alpha
    return X, G, df, float(stats.t.ppf(1 - level / 2, max(df, 1)))


def _resid_ss(X, col):
    """Sum of squares of column ``col`` after regressing it on the other columns."""
    other = np.delete(X, col, axis=1)
    beta = np.linalg.lstsq(other, X[:, col], rcond=None)[0]
    r = X[:, col] - other @ beta
    return float(r @ r)


def _design_k(d: LabelData, kk: int, kind: str):
    """``kk`` models per family, evenly spread in log scale over the label's range."""
    G = d.n_groups
    z = np.tile(np.linspace(d.z.min(), d.z.max(), kk), G)
    groups = np.repeat(np.arange(G), kk)
    return design_matrix("quadratic" if kind == "curvature" else "linear", z, groups)


MAX_MODELS = 1000


def u_verdict_power(d: LabelData, params, claim: str, *, tau2: float, n_examples: float,
                    n_values, n_sim: int = 400, rng=None) -> np.ndarray:
    """Simulated power of the actual U verdict (gate + two-lines test) at each ``n``.

    A study is simulated from the quadratic curve ``params`` (on ``d``'s quadratic design) with
    model-level deviations ``N(0, tau2)`` and sampling error ``N(0, V * n_examples / n)``; the
    power is the share of ``n_sim`` studies whose batched gated verdict is ``claim``. The same
    normal draws serve every ``n`` (common random numbers), so power is smooth in ``n``.
    """
    X = design_matrix("quadratic", d.z, d.groups)
    mean = X @ np.asarray(params, dtype=float)
    gen = as_generator(rng)[0]
    L = np.linalg.cholesky(d.V + 1e-15 * np.eye(d.k) * max(np.trace(d.V), 1e-300))
    e1, e2 = gen.standard_normal((2, int(n_sim), d.k))
    out = []
    for n in np.atleast_1d(np.asarray(n_values, dtype=float)):
        a = float(n_examples) / n
        Y = mean + np.sqrt(a) * e1 @ L.T + np.sqrt(max(tau2, 0.0)) * e2
        dn = LabelData(d.label, d.idx, Y[0], d.V * a, d.z, d.groups, d.breakpoint, d.allow_u,
                       d.wanted, d.sign, d.alpha, d.margin)
        out.append(float(np.mean(batched_verdicts(dn, Y)["verdict"] == claim)))
    return np.array(out)


def _u_examples_needed(d, params, claim, *, tau2, n_now, target, rng, n_sim=400):
    """(power now, examples needed) of the simulated U verdict; None when 10^4 x n_now is not
    enough. Bisection in log n on common random numbers (12 steps: n within ~0.3%)."""
    gen = as_generator(rng)[0]
    seed = int(gen.integers(2**63))                      # one seed, reused: the same draws

    def power(n):
        return float(u_verdict_power(d, params, claim, tau2=tau2, n_examples=n_now,
                                     n_values=n, n_sim=n_sim, rng=seed)[0])

    now = power(n_now)
    if now >= target:
        return now, int(round(n_now))
    if power(n_now * 1e4) < target:
        return now, None
    lo, hi = np.log(n_now), np.log(n_now * 1e4)
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if power(np.exp(mid)) >= target else (mid, hi)
    return now, int(np.ceil(np.exp(hi)))


def power_analysis(d: LabelData, *, effect=None, tau2: float, n_examples=None,
                   target: float = POWER_TARGET, with_table: bool = True,
                   kind: str = "slope", u_curve=None, claim=None, rng=None) -> dict:
    """Power of the verdict's test and what it would take to reach ``target``.

    Parameters
    ----------
    d : LabelData
    effect : float, optional
        Effect to detect: slope per decade (``kind='slope'``) or quadratic coefficient per
        decade^2 (``kind='curvature'``, for U-type claims), in score units; default observed.
    tau2 : float
        Between-model variance (REML, from the fit of the curve being tested).
    n_examples : int, optional
        Examples per model now (per-example or aggregated-with-n input).

    Returns
    -------
    dict
        ``kind``, ``effect``, ``se`` of the coefficient, ``power`` (at ``effect``),
        ``mde_slope`` and ``mde_curvature`` (effects detected with ``target`` power now),
        ``examples_needed`` for ``effect`` (None: unreachable by examples alone),
        ``models_needed`` (per family, evenly spread over the same range, at the current
        examples; None above 1000 or when ``with_table`` is False), ``table`` (effects from
        0.5x to 3x the MDE and the examples each needs). For U-type claims with ``u_curve``
        (the quadratic fit's coefficients) and a two-lines breakpoint: ``power_u_verdict``
        and ``examples_needed_u_verdict``, the simulated power of the actual U verdict
        (:func:`u_verdict_power`), which needs both arms significant and so has less power
        than the curvature-coefficient proxy.

    Notes
    -----
    Coefficient variance ``[(X' (a V + tau^2 I)^-1 X)^-1]`` exactly, with ``a = n_now / n``;
    the test's power from :func:`power_at`. Models needed uses compound symmetry calibrated to
    the current design: ``var = (v_eff + tau^2) / S`` with ``S`` the residual sum of squares of
    the tested column and ``v_eff`` matched to the exact current variance. Verified by
    simulation in ``tests/test_noise.py`` (monotone claims at the reported examples needed).
    """
    X, col, df, crit = _coef_test(d, kind)
    if effect is None:
        effect = float(batched_verdicts(d)["slope"][0])
    out = {"label": d.label, "kind": kind, "effect": float(effect), "tau2": float(tau2),
           "df": int(df), "target": target,
           "n_examples": None if n_examples is None else int(round(n_examples)),
           "power": np.nan, "se": np.nan, "mde_slope": np.nan, "mde_curvature": np.nan,
           "examples_needed": None, "models_needed": None, "table": [],
           "power_u_verdict": None, "examples_needed_u_verdict": None}
    if df < 1:
        return out
    if (kind == "curvature" and u_curve is not None and claim in U_SHAPES
            and d.breakpoint is not None and n_examples is not None):
        params = np.array(u_curve, dtype=float)
        params[-1] = effect
        now, need = _u_examples_needed(d, params, claim, tau2=tau2, n_now=float(n_examples),
                                       target=target, rng=rng)
        out["power_u_verdict"], out["examples_needed_u_verdict"] = now, need
    var = float(_coef_var(X, d.V, tau2, 1.0, col)[0])
    floor = float(_coef_var(X, d.V, 0.0, 1.0, col)[0]) / var if tau2 > 0 else 1.0
    out["se"] = float(np.sqrt(var))
    out["power"] = float(power_at(abs(effect) / np.sqrt(var), df, crit, floor))
    for k2 in ("slope", "curvature"):
        X2, c2, df2, cr2 = _coef_test(d, k2)
        if df2 >= 1 and (k2 == "slope" or len(np.unique(d.z)) >= 3):
            v2 = float(_coef_var(X2, d.V, tau2, 1.0, c2)[0])
            f2 = float(_coef_var(X2, d.V, 0.0, 1.0, c2)[0]) / v2 if tau2 > 0 else 1.0
            out[f"mde_{k2}"] = _solve_delta(df2, cr2, f2, target) * float(np.sqrt(v2))
    n_now = n_examples if n_examples is not None else np.nan
    if np.isfinite(n_now):
        out["examples_needed"] = examples_for_power(d, effect, tau2=tau2, n_examples=n_now,
                                                    target=target, kind=kind)
    # models per family (compound symmetry calibrated to the current design)
    v_eff = max(var * _resid_ss(X, col) - tau2, 1e-300)
    fl = v_eff / (v_eff + tau2)

    def power_k(kk):
        _, ck_col, dfk, ck = _coef_test(d, kind, k_models=kk)
        if dfk < 1:
            return 0.0
        S = _resid_ss(_design_k(d, kk, kind), ck_col)
        return float(power_at(abs(effect) / np.sqrt((v_eff + tau2) / S), dfk, ck, fl))

    lo, hi = 3 if kind == "slope" else 4, MAX_MODELS   # bisection: power grows with models
    if with_table and effect != 0 and power_k(hi) >= target:
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if power_k(mid) >= target else (mid + 1, hi)
        out["models_needed"] = int(lo)
    if with_table:
        effects = np.array([0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0]) * out[f"mde_{kind}"]
        needed = examples_for_power(d, effects, tau2=tau2, n_examples=n_now, target=target,
                                    kind=kind) if np.isfinite(n_now) else [None] * len(effects)
        out["table"] = [{"effect": float(e), "power": float(p_), "n_examples": n}
                        for e, p_, n in zip(effects,
                                            power_at(effects / np.sqrt(var), df, crit, floor),
                                            needed)]
    return out


# ======================================================================= per-model noise
def adjacent_differences(ms, *, confidence_level: float = 0.95) -> pd.DataFrame:
    """Paired differences of neighbouring models within each family, with intervals.

    ``diff = score[larger] - score[smaller]``, ``se = sqrt(V_ii + V_jj - 2 V_ij)`` (paired
    across examples, from ``ms.cov``: the example-sampling error of this contrast), normal
    interval, two-sided p and its Holm adjustment within the family.
    """
    zq = stats.norm.ppf(0.5 + confidence_level / 2)
    y = ms.models["score"].to_numpy(dtype=float)
    rows = []
    for fam in ms.families:
        idx = ms.family_index(fam)
        ps = []
        for i, j in zip(idx[:-1], idx[1:]):
            diff = y[j] - y[i]
            se = float(np.sqrt(max(ms.cov[i, i] + ms.cov[j, j] - 2 * ms.cov[i, j], 0.0)))
            p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else float(diff == 0)
            ps.append(p)
            rows.append({"family": fam, "from_model": ms.models["model"].iloc[i],
                         "to_model": ms.models["model"].iloc[j], "diff": float(diff), "se": se,
                         "ci_lower": diff - zq * se, "ci_upper": diff + zq * se, "p_value": p})
        if ps:
            for r, pa in zip(rows[len(rows) - len(ps):], holm(ps)):
                r["p_holm"] = float(pa)
    return pd.DataFrame(rows)


def _chance_vector(ms, table=None, chance=None):
    """Per-model chance level from ``chance=``, a ``chance`` / ``n_classes`` column, or None."""
    k = len(ms.models)
    if chance is not None:
        return np.broadcast_to(np.asarray(chance, dtype=float), (k,)).copy()
    for src in (ms.models, table):
        if src is None:
            continue
        if "chance" in src.columns or "n_classes" in src.columns:
            col = "chance" if "chance" in src.columns else "n_classes"
            vals = pd.to_numeric(src[col], errors="coerce")
            if col == "n_classes":
                vals = 1.0 / vals
            if src is ms.models:
                return vals.to_numpy(dtype=float)
            per = src.assign(_c=vals).groupby(["family", "model"], sort=False)["_c"].mean()
            keys = list(zip(ms.models["family"], ms.models["model"]))
            return np.array([per.get(key, np.nan) for key in keys], dtype=float)
    return None


def floor_ceiling(ms, *, table=None, chance=None, confidence_level: float = 0.95) -> dict:
    """Models within noise of chance or of the maximum, and chance-to-below-chance trends.

    Within noise: ``|score - chance| <= z * se``; below chance: ``score < chance - z * se``
    (z the normal quantile of ``confidence_level``). Ceiling (proportion metrics where higher is
    better): ``score >= 1 - z * se``. A family runs *from chance to below chance* when its
    smallest model is within noise of chance (or above it) and its largest is significantly
    below chance.
    """
    zq = stats.norm.ppf(0.5 + confidence_level / 2)
    m = ms.models
    y, se = m["score"].to_numpy(float), m["se"].to_numpy(float)
    out = {"chance": None, "near_chance": [], "below_chance": [], "near_ceiling": [],
           "chance_to_below_chance": []}
    ch = _chance_vector(ms, table, chance)
    if ch is not None and np.all(np.isfinite(ch)):
        near = np.abs(y - ch) <= zq * se
        below = y < ch - zq * se
        out["chance"] = [float(v) for v in ch]
        out["near_chance"] = list(m["model"][near])
        out["below_chance"] = list(m["model"][below])
        for fam in ms.families:
            idx = ms.family_index(fam)
            first, last = idx[np.argmin(m["x"].to_numpy()[idx])], idx[np.argmax(
                m["x"].to_numpy()[idx])]
            if (near[first] or y[first] > ch[first]) and below[last]:
                out["chance_to_below_chance"].append(fam)
    if ms.meta.get("proportion") and ms.meta.get("higher_is_better", True):
        out["near_ceiling"] = list(m["model"][y >= 1 - zq * se])
    out["n_models"] = len(m)
    return out


_CONTINUOUS = {"logprob_correct": True, "log_prob_correct": True, "logprob": True,
               "log_prob": True, "prob_correct": True, "label_prob": True,
               "loss": False, "nll": False, "neg_log_likelihood": False}


def metric_sensitivity(result, table, *, column=None) -> dict | None:
    """Refit the shape on a continuous per-example column and compare verdicts.

    The first of ``logprob_correct, log_prob_correct, logprob, log_prob, prob_correct,
    label_prob`` (higher is better) or ``loss, nll, neg_log_likelihood`` (lower is better) found
    in a per-example ``table`` (or ``column=``) is analysed exactly as the score (model-level
    meta-regression, gated verdict; Schaeffer et al. 2023: discontinuous metrics can manufacture
    sharp shapes). Verdicts are compared on the performance scale.

    Returns
    -------
    dict or None
        ``column``, and per label ``{'score': verdict, 'continuous': verdict, 'agree': bool}``;
        ``opposite`` lists labels whose significant directions conflict. None when no column.
    """
    from .data import load_results, model_scores
    from .shapes import default_flat_margin
    from .shapes import analyse_shape

    if table is None or "example_id" not in table.columns:
        return None
    if column is None:
        column = next((c for c in _CONTINUOUS if c in table.columns and c != "score"), None)
    if column is None:
        return None
    hib = _CONTINUOUS.get(column, True)
    sub = table.drop(columns=["score"]).rename(columns={column: "score"})
    sub = sub[["family", "model", "n_params", "example_id", "score"]
              + [c for c in ("flops",) if c in sub.columns]]
    # an example whose continuous score is missing for any model is dropped for every model
    # of that family, so the paired example sets stay equal
    finite = np.isfinite(pd.to_numeric(sub["score"], errors="coerce").to_numpy(float))
    key = sub["family"].astype(str) + "\x00" + sub["example_id"].astype(str)
    dropped = key[~finite].unique()
    sub = sub[~key.isin(dropped)]
    if sub.empty:
        return None
    try:
        t2 = load_results(sub, metric=None, higher_is_better=hib, proportion=False)
    except DataValidationError:
        return None
    ms2 = model_scores(t2, x=result.meta.get("x", "n_params"))
    margin = default_flat_margin(t2, ms2)
    alpha = result.meta["alpha"]
    allow_u = bool(set(result.meta.get("shapes", TREND_SHAPES)) & set(U_SHAPES))
    y = ms2.models["score"].to_numpy(float)
    lx = ms2.models["log10_x"].to_numpy(float)
    labels = {f: ms2.family_index(f) for f in ms2.families}
    if len(labels) > 1:
        labels["pooled"] = np.arange(len(y))
    codes = pd.Categorical(ms2.models["family"], categories=ms2.families).codes
    out = {"column": column, "higher_is_better": hib, "labels": {}, "opposite": [],
           "n_examples_dropped": int(len(dropped))}
    for label, idx in labels.items():
        if label not in result.analyses:
            continue
        a2 = analyse_shape(label, y[idx], ms2.cov[np.ix_(idx, idx)], lx[idx],
                           codes[idx] if label == "pooled" else np.zeros(len(idx), int),
                           alpha=alpha, confidence_level=result.meta["confidence_level"],
                           flat_margin=margin, allow_u=allow_u, sign=1 if hib else -1)
        v1, v2 = result.analyses[label].verdict, a2.verdict
        out["labels"][label] = {"score": v1, "continuous": v2, "agree": bool(v1 == v2)}
        if {v1, v2} == {"positive", "inverse"} or {v1, v2} == {"u_shaped", "inverted_u"}:
            out["opposite"].append(label)
    return out


# ======================================================================= notes
def _records(df: pd.DataFrame) -> list:
    return df.to_dict(orient="records")


def _notes_models(result, ms, adj) -> list:
    """small_eval_set, imprecise_models, adjacent_reversals, spread_is_model_noise."""
    out = []
    m = ms.models
    n = m["n_examples"]
    if n.notna().all() and (n < SMALL_EVAL_SET).any():
        out.append(note(
            "small_eval_set", "info",
            f"{int((n < SMALL_EVAL_SET).sum())} of {len(m)} models were scored on fewer than "
            f"{SMALL_EVAL_SET} examples (min {int(n.min())}): normal-theory intervals under-cover "
            "on small item sets (Bowyer et al. 2025); treat p-values near alpha with care.",
            min_examples=int(n.min()), threshold=SMALL_EVAL_SET))
    margin = result.meta.get("flat_margin")
    zq = stats.norm.ppf(0.5 + result.meta["confidence_level"] / 2)
    if margin and np.isfinite(margin):
        wide = m[zq * m["se"] > margin]
        if len(wide):
            out.append(note(
                "imprecise_models", "info",
                f"{len(wide)} of {len(m)} models have a {result.meta['confidence_level']:.0%} "
                f"interval wider than +-{margin:.3g} (the flat margin); largest SE "
                f"{m['se'].max():.3g} ({m.loc[m['se'].idxmax(), 'model']}). More examples "
                "narrow these; they do not remove model-level noise.",
                margin=float(margin), table=_records(m[["family", "model", "x", "score", "se"]])))
    alpha = result.meta["alpha"]
    if len(adj):
        bad = []
        for fam, sub in adj.groupby("family", sort=False):
            signs = np.sign(sub.loc[sub["p_holm"] <= alpha, "diff"].to_numpy())
            if np.sum(signs[1:] != signs[:-1]) >= 2:   # up-down-up: one turn is a U, two zigzag
                bad.append(fam)
        if bad:
            out.append(note(
                "adjacent_reversals", "warning",
                f"in {', '.join(map(repr, bad))} neighbouring models differ significantly, turning "
                "direction at least twice (paired across examples, Holm within family): scores "
                "jump up and down "
                "from one size to the next, which examples cannot explain -- model-level noise "
                "(single checkpoints), not a smooth trend.",
                families=bad, table=_records(adj)))
    for label, a in result.analyses.items():
        if label == "pooled":
            continue
        idx = ms.family_index(label)
        fit = _reference_fit(a) if a.verdict in U_SHAPES else (
            a.quadratic if a.quadratic is not None else a.linear)
        curve = fit.X @ fit.params
        curve_var = float(np.var(curve))
        samp = float(np.mean(np.diag(ms.cov)[idx]))
        tau2 = float(fit.tau2)
        share = tau2 / (tau2 + samp + curve_var) if tau2 > 0 else 0.0
        if share >= 0.5:
            out.append(note(
                "spread_is_model_noise", "warning",
                f"family {label!r}: model-to-model noise explains {share:.0%} of the spread of "
                f"the scores (tau^2 = {tau2:.3g} vs curve variance {curve_var:.3g} and sampling "
                f"variance {samp:.3g}); the curve is mostly noise, not trend, whatever the "
                "number of examples.", family=label, share=share, tau2=tau2,
                curve_var=curve_var, sampling_var=samp))
    return out


def _notes_influence(infl) -> list:
    out = []
    changed = infl[infl["changed"]]
    big = changed[changed["largest"]]
    if len(big):
        what = "; ".join(f"{r.label}: without {r.dropped} {r.shape_full} -> {r.shape}"
                         for r in big.itertuples())
        out.append(note(
            "verdict_depends_on_largest_model", "warning",
            f"dropping the largest model changes the verdict ({what}). Inverse trends have turned "
            "U-shaped when one larger model was added (Wei et al. 2022): the end of the curve "
            "rests on one checkpoint.", labels=sorted(set(big["label"])),
            table=_records(infl)))
    other = changed[~changed["largest"]]
    if len(other):
        what = "; ".join(f"{r.label}: without {r.dropped} {r.shape_full} -> {r.shape}"
                         for r in other.itertuples())
        out.append(note(
            "influential_model", "warning",
            f"dropping a single model changes the verdict ({what}).",
            labels=sorted(set(other["label"])), table=_records(infl)))
    return out


def _notes_stability(stab) -> list:
    bad = {k: v for k, v in stab.items() if not k.startswith("_")
           and v["verdict"] not in ("inconclusive", "untestable")
           and v["share"] < STABILITY_TARGET}
    if not bad:
        return []
    what = "; ".join(f"{k}: {v['share']:.0%} {v['verdict']}" for k, v in bad.items())
    n = next(iter(bad.values()))["n"]
    return [note("unstable_shape", "warning",
                 f"fewer than {STABILITY_TARGET:.0%} of {n} replicates (examples and models "
                 f"resampled) reproduce the verdict ({what}).",
                 labels=list(bad), stability={k: v for k, v in bad.items()})]


def _notes_null(null, verdict, alpha) -> list:
    claim, p = null["claim"], null["p_value"]
    if verdict == claim and p > alpha:
        return [note("null_calibration_disagrees", "warning",
                     f"the verdict is {claim}, but a parametric bootstrap under the "
                     f"{null['null']} null (estimated tau^2 and V) gives p = {p:.3g} > {alpha:g}: "
                     "with this few models the t reference is optimistic.", **null)]
    if verdict != claim and p <= alpha:
        return [note("null_calibration_disagrees", "info",
                     f"the verdict is {verdict}, but a parametric bootstrap under the "
                     f"{null['null']} null gives p = {p:.3g} <= {alpha:g} for {claim}.", **null)]
    return []


def _notes_power(pw, n_now) -> list:
    if not np.isfinite(pw.get("power", np.nan)) or pw["power"] >= POWER_TARGET:
        return []
    need = pw["examples_needed"]
    ex = (f"{need} examples per model would reach {POWER_TARGET:.0%}" if need is not None else
          "examples needed unknown (no example counts)" if pw["n_examples"] is None else
          "no number of examples reaches it (model-level noise dominates)")
    mod = (f"; or {pw['models_needed']} models per family" if pw.get("models_needed") else "")
    what = ("a slope of {:.3g} per decade".format(pw["effect"]) if pw["kind"] == "slope" else
            "a curvature of {:.3g} per decade^2".format(pw["effect"]))
    return [note("underpowered", "info",
                 f"{pw['label']}: power {pw['power']:.0%} to detect {what} (the observed or "
                 f"claimed effect); minimum detectable now: slope {pw['mde_slope']:.3g}, "
                 f"curvature {pw['mde_curvature']:.3g}; {ex}{mod}.", **pw)]


def _notes_floor(fc) -> list:
    out = []
    k = fc["n_models"]
    if fc["near_chance"]:
        sev = "warning" if len(fc["near_chance"]) == k else "info"
        out.append(note("near_chance", sev,
                        f"{len(fc['near_chance'])} of {k} models score within noise of chance "
                        f"({', '.join(fc['near_chance'][:6])}); a trend among them is a trend in "
                        "noise around chance.", models=fc["near_chance"], chance=fc["chance"]))
    if fc["near_ceiling"]:
        sev = "warning" if len(fc["near_ceiling"]) == k else "info"
        out.append(note("near_ceiling", sev,
                        f"{len(fc['near_ceiling'])} of {k} models score within noise of 100% "
                        f"({', '.join(fc['near_ceiling'][:6])}): the ceiling limits the trend.",
                        models=fc["near_ceiling"]))
    if fc["chance_to_below_chance"]:
        out.append(note("chance_to_below_chance", "info",
                        f"in {', '.join(map(repr, fc['chance_to_below_chance']))} the curve runs "
                        "from chance (smallest model) to significantly below chance (largest): "
                        "larger models are drawn to a systematically wrong answer, the inverse "
                        "scaling pattern, not a loss of skill.",
                        families=fc["chance_to_below_chance"]))
    return out


def _notes_metric(ms_) -> list:
    if ms_ is None:
        return []
    bad = {k: v for k, v in ms_["labels"].items() if not v["agree"]}
    if not bad:
        return []
    sev = "warning" if ms_["opposite"] or any(
        v["score"] in TREND_SHAPES and v["continuous"] in TREND_SHAPES for v in bad.values()) \
        else "info"
    what = "; ".join(f"{k}: score {v['score']}, {ms_['column']} {v['continuous']}"
                     for k, v in bad.items())
    return [note("metric_disagreement", sev,
                 f"the continuous metric {ms_['column']!r} gives a different shape ({what}); "
                 "discontinuous metrics can manufacture or hide shapes (Schaeffer et al. 2023).",
                 **ms_)]


def _notes_generality(gen, result) -> list:
    if len(result.families) < 2:
        return []
    out = []
    fam = gen[gen["family"] != "pooled"]
    pooled = gen[gen["family"] == "pooled"]
    pooled = pooled.iloc[0] if len(pooled) else {"I2": 0.0, "p_heterogeneity": 1.0}
    if pooled["I2"] >= 0.5 and pooled["p_heterogeneity"] <= 0.1:
        out.append(note("heterogeneous_families", "warning",
                        f"family slopes differ more than their errors explain (Cochran Q = "
                        f"{pooled['Q']:.3g} on {int(pooled['df_q'])} df, p = "
                        f"{pooled['p_heterogeneity']:.3g}, I^2 = {pooled['I2']:.0%}); the pooled "
                        "slope averages different behaviours.", Q=float(pooled["Q"]),
                        I2=float(pooled["I2"]), p_value=float(pooled["p_heterogeneity"])))
    outside = fam[fam["in_prediction_interval"] == False]  # noqa: E712
    if len(outside):
        out.append(note("family_outside_prediction", "warning",
                        f"the slope of {', '.join(map(repr, outside['family']))} lies outside "
                        "the prediction interval from the other families.",
                        families=list(outside["family"]), table=_records(fam)))
    moved = fam[fam["loo_shape"] != result.shape]
    if len(moved):
        what = "; ".join(f"without {r.family}: {r.loo_shape}" for r in moved.itertuples())
        out.append(note("pooled_verdict_depends_on_family", "warning",
                        f"the pooled verdict {result.shape} changes when one family is left out "
                        f"({what}).", families=list(moved["family"])))
    dirs = set(fam["shape"]) & {"positive", "inverse"}
    if len(dirs) == 2:
        out.append(note("families_disagree", "warning",
                        "families show significant trends in opposite directions: "
                        + ", ".join(f"{r.family} {r.shape}" for r in fam.itertuples()
                                    if r.shape in dirs) + ".",
                        table=_records(fam[["family", "shape", "effect", "estimate", "se"]])))
    return out


# ======================================================================= entry point
def _n_now(ms, idx):
    n = ms.models["n_examples"].to_numpy(dtype=float)[idx]
    return float(np.mean(n)) if np.all(np.isfinite(n)) else None


def noise_evidence(result, ms, *, claim, rng, n_stability=None, n_null=None, effect=None,
                   table=None, chance=None, stability=None, influence=None) -> dict:
    """Everything claim-specific: null-calibrated p and power for ``claim`` on the main label,
    plus (unless given) influence and stability, floor / ceiling and metric sensitivity."""
    n_boot = int(result.meta.get("n_boot", 2000))
    n_stability = n_stability or min(n_boot, 400)
    n_null = n_null or min(n_boot, 1000)
    main = _main_label(result)
    d = label_data(result, ms, main)
    ev = {"claim": claim, "main_label": main}
    ev["influence"] = influence if influence is not None else influence_table(result, ms)
    ev["stability"] = stability if stability is not None else shape_stability(
        result, ms, n_boot=n_stability, rng=rng)
    ev["null"] = null_calibrated_p(d, claim, n_sim=n_null, rng=rng)
    ev["power"] = {}
    for label in [main] + [lab for lab in result.analyses if lab != main]:
        a = result.analyses[label]
        dl = d if label == main else label_data(result, ms, label)
        u = (claim if label == main else a.verdict) in U_SHAPES and a.quadratic is not None
        fit = a.quadratic if u else a.linear
        eff = (fit.params[-1] if effect is None or label != main else effect)
        shape = claim if label == main else a.verdict
        ev["power"][label] = power_analysis(dl, effect=eff, tau2=fit.tau2,
                                            n_examples=_n_now(ms, dl.idx),
                                            with_table=label == main,
                                            kind="curvature" if u else "slope",
                                            u_curve=fit.params if u else None, claim=shape,
                                            rng=rng)
    ev["floor_ceiling"] = floor_ceiling(ms, table=table, chance=chance,
                                        confidence_level=result.meta["confidence_level"])
    ev["metric_sensitivity"] = metric_sensitivity(result, table)
    return ev


def add_noise_diagnostics(result, ms, *, rng, table=None, chance=None, claim=None,
                          n_stability=None, n_null=None):
    """Add trend strength, generality and noise diagnostics to a fitted result.

    Parameters
    ----------
    result : TrendResult
        From the core fit (needs ``result.analyses``).
    ms : ModelScores
    rng : numpy.random.Generator
    table : pandas.DataFrame, optional
        The validated per-example table, for floor / ceiling (``chance`` / ``n_classes``
        columns) and metric sensitivity (``loss``, ``logprob_correct``, ... columns).
    chance : float, optional
        Chance-level score (overrides table columns).
    claim : str, optional
        Shape to test (default: the verdict when it is a trend, else the slope's direction).
    n_stability, n_null : int, optional
        Replicates for shape stability (default ``min(n_boot, 400)``) and the null-calibrated
        p-value (default ``min(n_boot, 1000)``); recorded in ``meta['noise']``.

    Returns
    -------
    TrendResult
        With ``strength``, ``generality``, new ``diagnostics`` rows and ``meta['noise']``.
    """
    if result.analyses is None:
        return result
    with _single_thread():
        return _add_noise_diagnostics(result, ms, rng=np.random.default_rng(rng), table=table,
                                      chance=chance, claim=claim, n_stability=n_stability,
                                      n_null=n_null)


def _single_thread():
    """Limit BLAS to one thread: these are many tiny matrices, and on a shared 2-core machine
    threaded BLAS made them ~3x slower (measured). No-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _add_noise_diagnostics(result, ms, *, rng, table, chance, claim, n_stability, n_null):
    claim = claim or _target_claim(result)
    strength = trend_strength(result, ms)
    gen = generality_table(result, ms, claim)
    ev = noise_evidence(result, ms, claim=claim, rng=rng, table=table, chance=chance,
                        n_stability=n_stability, n_null=n_null)
    adj = adjacent_differences(ms, confidence_level=result.meta["confidence_level"])
    main = ev["main_label"]
    notes = (_notes_models(result, ms, adj) + _notes_influence(ev["influence"])
             + _notes_stability(ev["stability"])
             + _notes_null(ev["null"], result.analyses[main].verdict, result.meta["alpha"])
             + _notes_power(ev["power"][main], _n_now(ms, np.arange(len(ms.models))))
             + _notes_floor(ev["floor_ceiling"]) + _notes_metric(ev["metric_sensitivity"])
             + _notes_generality(gen, result))
    noise_meta = {
        "claim": claim, "main_label": main,
        "stability": {k: v for k, v in ev["stability"].items() if not k.startswith("_")},
        "null": ev["null"], "power": ev["power"],
        "influence": _records(ev["influence"][ev["influence"]["label"] == main]),
        "influence_by_family": _records(ev["influence"][ev["influence"]["label"] != main]),
        "adjacent": _records(adj), "floor_ceiling": ev["floor_ceiling"],
        "metric_sensitivity": ev["metric_sensitivity"],
        "n_stability": next(v["n"] for k, v in ev["stability"].items()
                            if not k.startswith("_")),
        "n_null": ev["null"]["n_sim"]}
    out = result.replace(strength=strength, generality=gen,
                         meta={**result.meta, "noise": noise_meta})
    return out.with_diagnostics(pd.DataFrame(notes, columns=NOTE_COLUMNS))
