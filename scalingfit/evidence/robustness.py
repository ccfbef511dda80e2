"""Robustness of a verdict: without each model, in repeats of the study, under the null.

References
----------
Wei, J. et al. (2022). Inverse scaling can become U-shaped. arXiv:2211.02011 (one larger model).
MacKinnon, J. G., Nielsen, M. O. & Webb, M. D. (2023). Cluster-robust inference: a guide to
empirical practice. J. Econometrics 232:272-299 (bootstrap tests with the null imposed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from ..bootstrap import replicate_scores
from ..curves import design_matrix
from ..verdicts import MONOTONE_SHAPES, U_SHAPES
from .labels import LabelData, label_data
from .replicates import batched_verdicts, fit_observed

__all__ = ["influence_table", "reference_fit", "shape_stability", "null_calibrated_p"]


def influence_table(result, ms, labels=None) -> pd.DataFrame:
    """Verdict, slope and interval with each single model left out, per family and pooled.

    Columns: ``label`` (the analysis), ``dropped`` (model), ``family``, ``x``, ``largest``
    (the largest model of its family), ``shape`` (verdict without it; 'untestable' when too few
    models remain), ``shape_full``, ``changed``, ``slope``, ``ci_lower``, ``ci_upper``.
    """
    cl = result.meta["confidence_level"]
    cols = {c: [] for c in ("label", "dropped", "family", "x", "largest", "shape", "shape_full",
                            "changed", "slope", "ci_lower", "ci_upper")}
    models = ms.models
    for label in labels or result.analyses:
        d = label_data(result, ms, label)
        o = batched_verdicts(d, np.repeat(d.y[None, :], d.k, axis=0), drop=np.arange(d.k))
        fam = models["family"].to_numpy()[d.idx]
        x = models["x"].to_numpy()[d.idx]
        codes, uniques = pd.factorize(fam)
        top = np.full(len(uniques), -np.inf)
        np.maximum.at(top, codes, x)                     # the largest size of each family
        df = np.maximum(d.k - 1 - d.n_groups - 1, 1)
        t = special.stdtrit(df, 0.5 + cl / 2)
        for c, v in (("label", [label] * d.k), ("dropped", models["model"].to_numpy()[d.idx]),
                     ("family", fam), ("x", x), ("largest", x == top[codes]),
                     ("shape", o["verdict"]), ("shape_full", [d.verdict] * d.k),
                     ("changed", (o["verdict"] != d.verdict) & (o["verdict"] != "untestable")),
                     ("slope", o["slope"]), ("ci_lower", o["slope"] - t * o["se"]),
                     ("ci_upper", o["slope"] + t * o["se"])):
            cols[c].append(np.asarray(v))
    return pd.DataFrame({c: np.concatenate(v) for c, v in cols.items()})


def reference_fit(a):
    """The fit behind a verdict: two lines for U verdicts, else the straight line."""
    return a.two_lines.fit if (a.verdict in U_SHAPES and a.two_lines is not None) else a.linear


def shape_stability(result, ms, *, n_boot: int, rng) -> dict:
    """Share of replicates (examples and models resampled) that give each label's verdict.

    A replicate is the label's fitted verdict curve (two lines for U verdicts, else the line)
    plus a paired-bootstrap draw of the example error (one draw of example ids shared by all
    models, centred: ``ybar* - ybar``) plus a fresh model-level deviation ``N(0, tau^2)`` per
    model, with that curve's REML ``tau^2``. It is a new dataset from the fitted model, so the
    share estimates how often a repeat of the study (same sizes, new examples, new checkpoints)
    would reach the same verdict. Replicates are classified by
    :func:`~scalingfit.evidence.replicates.batched_verdicts` with the observed two-lines
    breakpoint held fixed.

    Returns
    -------
    dict
        label -> ``{'verdict', 'share', 'n', 'counts'}``; the replicate verdicts under
        ``'_raw'``.
    """
    y = ms.models["score"].to_numpy(dtype=float)
    E = replicate_scores(ms, n_boot, rng, 0.0) - y           # paired example error
    Z = rng.standard_normal(E.shape)                         # model-level deviations
    out, raw = {}, {}
    for label, a in result.analyses.items():
        d = label_data(result, ms, label)
        fit = reference_fit(a)
        Y = (fit.X @ fit.params)[None, :] + E[:, d.idx] + np.sqrt(fit.tau2) * Z[:, d.idx]
        o = batched_verdicts(d, Y)
        vals, counts = np.unique(o["verdict"], return_counts=True)
        out[label] = {"verdict": d.verdict, "share": float(np.mean(o["verdict"] == d.verdict)),
                      "n": int(n_boot), "counts": {str(v): int(c) for v, c in zip(vals, counts)}}
        raw[label] = o["verdict"]
    out["_raw"] = raw
    return out


def _null_curve(d: LabelData, claim: str):
    """Design, coefficients and REML tau^2 of the least favourable curve without ``claim``."""
    if claim in MONOTONE_SHAPES:
        X = design_matrix("flat", d.z, d.groups)
        beta, tau2 = fit_observed(d, X)
    else:
        X = design_matrix("linear", d.z, d.groups)
        beta, tau2 = fit_observed(d, X)
        if claim == "flat":
            margin = d.margin if d.margin and np.isfinite(d.margin) else 0.0
            beta = beta.copy()
            beta[-1] = np.sign(beta[-1] or 1.0) * margin / max(np.ptp(d.z), 1e-12)
    return X, beta, tau2


def null_calibrated_p(d: LabelData, claim: str, *, n_sim: int, rng) -> dict:
    """Parametric-bootstrap p-value of ``claim`` under the best-fitting curve that is not it.

    The null is the least favourable curve without the claimed shape: flat (family intercepts)
    for monotone claims, the best straight line for U-type claims, and for 'flat' the line
    whose change over the range equals the margin (in the observed direction). Datasets are
    drawn as ``X beta_0 + N(0, V + tau_0^2 I)`` with the null fit's REML ``tau_0^2``, classified
    by :func:`~scalingfit.evidence.replicates.batched_verdicts`, and the p-value is
    ``(1 + #{p*_claim <= p_claim}) / (n_sim + 1)`` (MacKinnon, Nielsen & Webb 2023: impose the
    null).
    """
    X, beta, tau2 = _null_curve(d, claim)
    mean = X @ beta
    lam, Q = np.linalg.eigh(d.V + tau2 * np.eye(d.k))
    L = Q * np.sqrt(np.clip(lam, 0.0, None))
    Y = mean + rng.standard_normal((n_sim, d.k)) @ L.T
    obs = batched_verdicts(d)[f"p_claim_{claim}"][0]
    sim = batched_verdicts(d, Y)[f"p_claim_{claim}"]
    p = (1 + int(np.sum(sim <= obs))) / (n_sim + 1)
    return {"claim": claim, "label": d.label, "p_value": float(p), "p_observed": float(obs),
            "n_sim": int(n_sim), "tau2_null": tau2,
            "null": "flat" if claim in MONOTONE_SHAPES else
            ("line at the margin" if claim == "flat" else "straight line")}
