"""Generality: does the shape hold in every family, and does the pooled verdict need each one?

References
----------
Higgins, J. P. T. & Thompson, S. G. (2002). Quantifying heterogeneity in a meta-analysis.
Statistics in Medicine 21:1539-1558 (I^2); Higgins, Thompson & Spiegelhalter (2009), JRSS-A 172
(prediction interval).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..multitest import adjust_p
from ..verdicts import U_SHAPES, claim_p_value
from .labels import label_data, target_claim
from .replicates import batched_verdicts

__all__ = ["generality_table", "family_effects", "claim_p"]


def claim_p(row, claim: str, sign: int, alpha: float) -> float:
    """:func:`scalingfit.verdicts.claim_p_value` of one row, with a missing estimate read as no
    evidence for the claim (p = 1): a family whose U test could not run (fewer sizes) still
    counts as one of the families tested, and shows nothing."""
    p = claim_p_value(row, claim, sign, alpha)
    return p if math.isfinite(p) else 1.0


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


def family_effects(result, families, claim):
    """The effect compared across families ('slope', or 'curvature' for U-type claims), with
    the estimate and SE of each family in ``families``."""
    kind = "curvature" if claim in U_SHAPES else "slope"
    vals = [_effect_of(result.analyses[f], kind) for f in families]
    return kind, np.array([v[0] for v in vals]), np.array([v[1] for v in vals])


def _leave_family_out(result, ms, pooled_d, fams, i, claim, b, s, alpha) -> dict:
    """Pooled verdict without family ``i`` and its prediction interval from the others."""
    row = {}
    family = fams["family"].iloc[i]
    others = [f for f in fams["family"] if f != family]
    if len(others) == 1:
        loo = result.analyses[others[0]].verdict
    else:
        keep = np.flatnonzero(ms.models["family"].to_numpy() != family)
        loo = str(batched_verdicts(pooled_d.subset(keep))["verdict"][0])
    row["loo_shape"], row["loo_keeps_claim"] = loo, bool(loo == claim)
    o = (np.arange(len(fams)) != i) & np.isfinite(b) & np.isfinite(s)
    m = int(o.sum())
    if m >= 1 and np.isfinite(b[i]):
        mean, se_mean, tau2, _, _ = _dl(b[o], s[o])
        q = stats.t.ppf(1 - alpha / 2, m - 2) if m >= 3 else stats.norm.ppf(1 - alpha / 2)
        half = q * np.sqrt(se_mean**2 + tau2 + s[i] ** 2)
        row["pred_lower"], row["pred_upper"] = mean - half, mean + half
        row["in_prediction_interval"] = bool(mean - half <= b[i] <= mean + half)
    return row


def _pooled_row(result, out, fams, kind, b, s, claim, sign, alpha) -> dict:
    ok = np.isfinite(b) & np.isfinite(s)
    mean, se_mean, tau2, Q, i2 = _dl(b[ok], s[ok])
    pb, ps_ = _effect_of(result.analyses["pooled"], kind)
    return {"family": "pooled", "shape": result.shape, "effect": kind, "estimate": pb,
            "se": ps_, "claim": claim, "p_claim": claim_p(result.pooled, claim, sign, alpha),
            "n_showing": int(out["shows_claim"].sum()), "n_families": len(fams),
            "Q": Q, "df_q": int(ok.sum()) - 1,
            "p_heterogeneity": float(stats.chi2.sf(Q, int(ok.sum()) - 1)),
            "I2": i2, "tau2_between": tau2}


def generality_table(result, ms, claim=None) -> pd.DataFrame:
    """Generality of ``claim`` (default: the verdict, or the slope direction) across families.

    One row per family: its verdict, the ``effect`` compared (``slope`` per decade, or
    ``curvature`` -- the quadratic coefficient -- for U-type claims) with its ``estimate`` and
    ``se``, ``p_claim`` (see :func:`claim_p`) and its Holm-adjusted value across families,
    ``shows_claim``; ``loo_shape`` (pooled verdict of the other families, from
    :func:`~scalingfit.evidence.replicates.batched_verdicts`) and ``loo_keeps_claim``; the
    random-effects ``pred_lower`` / ``pred_upper`` prediction interval of this family's slope
    from the others (Higgins et al. 2009, plus this family's own SE; t with m - 2 df for m >= 3
    others, normal otherwise) and ``in_prediction_interval``. A last row ``family='pooled'``
    holds the pooled verdict, ``n_showing``, and Cochran's ``Q`` (``df_q``,
    ``p_heterogeneity``), ``I2`` and ``tau2_between`` of the family effects.
    """
    claim = claim or target_claim(result)
    alpha = result.meta["alpha"]
    sign = 1 if result.meta["higher_is_better"] else -1
    fams = result.families.reset_index(drop=True)
    p = np.array([claim_p(r, claim, sign, alpha) for r in fams.to_dict("records")])
    adj = adjust_p(p, "holm")
    rows = []
    pooled_d = label_data(result, ms, "pooled") if "pooled" in result.analyses else None
    kind, b, s = family_effects(result, fams["family"], claim)
    for i, r in fams.iterrows():
        row = {"family": r["family"], "shape": r["shape"], "effect": kind, "estimate": b[i],
               "se": s[i], "claim": claim, "p_claim": p[i], "p_holm": adj[i],
               "shows_claim": bool(adj[i] <= alpha), "loo_shape": None,
               "loo_keeps_claim": None, "pred_lower": np.nan, "pred_upper": np.nan,
               "in_prediction_interval": None}
        if pooled_d is not None:
            row.update(_leave_family_out(result, ms, pooled_d, fams, i, claim, b, s, alpha))
        rows.append(row)
    out = pd.DataFrame(rows)
    ok = np.isfinite(b) & np.isfinite(s)
    if len(fams) > 1 and ok.sum() >= 2:
        out = pd.concat([out, pd.DataFrame([_pooled_row(result, out, fams, kind, b, s, claim,
                                                        sign, alpha)])], ignore_index=True)
    else:
        out["n_showing"] = int(out["shows_claim"].sum())
    return out
