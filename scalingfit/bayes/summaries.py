"""From posterior curve draws to verdict rows: the shape rule, shape probabilities, slopes,
turning points, and the pooled / new-family / every-family probabilities.

Every posterior draw of a curve is evaluated on a grid over the family's observed range, put in
performance orientation (sign flipped for lower-is-better metrics) and labelled with exactly one
shape (:func:`classify_curves`):

* ``flat`` -- the curve's range ``max - min`` is below ``flat_margin`` (the bootstrap engine's
  margin: score units over the observed range; a ROPE in Kruschke's sense);
* ``u_shaped`` -- it falls from the smallest model to an interior minimum by at least the margin
  and rises again from there to the largest model by at least the margin (``inverted_u``
  mirrored); both arms must matter, as in the two-lines test, not just the curvature;
* ``positive`` / ``inverse`` -- otherwise, the sign of the change from the smallest to the
  largest model.

``p_<shape>`` is the fraction of draws with that label (they sum to one). The verdict is the
shape whose posterior probability is at least ``decision_threshold`` (0.95); otherwise
"inconclusive". U labels are only allowed for families with at least
:data:`scalingfit.verdicts.U_MIN_SIZES` sizes (as in the bootstrap engine), and a shape not in
``shapes`` becomes "inconclusive". The pooled row describes the population curve ``mu``;
``p_new_<shape>`` are the shape probabilities of the curve of a *new* family drawn from the
hierarchy (posterior predictive), and ``p_new_family`` is the probability that a new family
shows the pooled shape. ``p_all_<shape>`` is the joint posterior probability that every observed
family shows the shape (``p_all_families``: that of the pooled shape; the fraction of draws in
which all family curves carry the label): the generality of the trend over the families at
hand, where the pooled row speaks of the population of families.

Slopes are chords: ``(f(x_max) - f(x_min)) / (log10 x_max - log10 x_min)`` on the score scale
(score per 10x), which equals the linear slope when the truth is a line; ``ci_lower/ci_upper`` are
equal-tailed credible intervals at ``confidence_level`` and ``p_value`` is the two-sided posterior
tail probability ``2 min(P(slope > 0), P(slope < 0))``.

References
----------
Kruschke, J. K. (2018). Rejecting or accepting parameter values in Bayesian estimation.
AMPPS 1(2):270-280.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..verdicts import SHAPES, TREND_SHAPES, U_MIN_SIZES, U_SHAPES

__all__ = ["SHAPE_NAMES", "classify_curves", "shape_probabilities", "decide", "curve_summary",
           "turning_point", "family_rows", "pooled_row", "attach_slopes"]

#: the labels a posterior curve can take, in the order of the label indices (the trends of the
#: shape registry, then flat)
SHAPE_NAMES = TREND_SHAPES + tuple(n for n, s in SHAPES.items() if s.kind == "flat")
_POS, _INV, _U, _IU, _FLAT = (SHAPE_NAMES.index(n) for n in
                              ("positive", "inverse", "u_shaped", "inverted_u", "flat"))


def classify_curves(curves, *, margin=None, allow_u=True, sign=1) -> np.ndarray:
    """Label each curve (a row of values on a grid from the smallest to the largest model).

    Parameters
    ----------
    curves : array_like, shape (n, G)
        Curve values on the score scale, on a grid over the observed range.
    margin : float or None
        ``flat_margin`` in score units. None: "flat" is impossible and each arm of a U must
        reach 20% of the curve's range instead.
    allow_u : bool
        Whether U / inverted-U labels are possible.
    sign : {1, -1}
        -1 for lower-is-better metrics (labels are in performance orientation).

    Returns
    -------
    ndarray of int, shape (n,)
        Indices into :data:`SHAPE_NAMES` (rule in the module docstring).
    """
    f = sign * np.atleast_2d(np.asarray(curves, dtype=float))
    lo, hi = f.min(axis=1), f.max(axis=1)
    rng_ = hi - lo
    use_margin = margin is not None and np.isfinite(margin) and margin > 0
    thr = np.full(len(f), float(margin)) if use_margin else 0.2 * rng_
    first, last = f[:, 0], f[:, -1]
    labels = np.where(last >= first, _POS, _INV)
    if allow_u:
        u_arm = np.minimum(first - lo, last - lo)
        iu_arm = np.minimum(hi - first, hi - last)
        is_u = (u_arm >= thr) & (u_arm > 0)
        is_iu = (iu_arm >= thr) & (iu_arm > 0)
        labels = np.where(is_u & (~is_iu | (u_arm >= iu_arm)), _U, labels)
        labels = np.where(is_iu & (~is_u | (iu_arm > u_arm)), _IU, labels)
    if use_margin:
        labels = np.where(rng_ < margin, _FLAT, labels)
    return labels


def shape_probabilities(labels) -> dict:
    """``{'p_positive': ..., ...}``: the fraction of draws with each label."""
    labels = np.asarray(labels)
    return {f"p_{name}": float(np.mean(labels == i)) for i, name in enumerate(SHAPE_NAMES)}


def decide(probs: dict, threshold: float, wanted) -> str:
    """The most probable shape when its probability reaches ``threshold`` and it is among
    ``wanted``; else 'inconclusive'."""
    name, p = max(((n, probs[f"p_{n}"]) for n in SHAPE_NAMES), key=lambda kv: kv[1])
    return name if p >= threshold and name in wanted else "inconclusive"


def allows_u(wanted, n_sizes) -> bool:
    """Whether U labels are possible: a U-type shape is wanted and there are enough sizes."""
    return bool(set(wanted) & set(U_SHAPES)) and n_sizes >= U_MIN_SIZES


def curve_summary(engine, post, f, *, margin, sign, allow_u, confidence_level):
    """Slope interval, total change, shape probabilities, vertex, band and slope draws of one
    curve's draws (``f``: a family index, 'pooled' or 'new')."""
    des = engine.des
    coef = post["mu"] if f == "pooled" else (post["new"] if f == "new" else post["beta"][:, f])
    g = des.grid(None if f in ("pooled", "new") else f)
    curves = engine.score_curve(coef, g, None if f in ("pooled", "new") else f)
    labels = classify_curves(curves, margin=margin, allow_u=allow_u, sign=sign)
    change = curves[:, -1] - curves[:, 0]
    slope = change / ((g[-1] - g[0]) * des.half)
    lo, hi = np.quantile(slope, [(1 - confidence_level) / 2, (1 + confidence_level) / 2])
    tail = 2 * min(np.mean(slope > 0), np.mean(slope < 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = des.center + des.half * (-coef[:, 1] / (2 * coef[:, 2]))
    row = {"slope": float(np.median(slope)), "se": float(np.std(slope)),
           "ci_lower": float(lo), "ci_upper": float(hi), "p_value": float(tail),
           "total_change": float(np.median(change)), **shape_probabilities(labels)}
    q = np.quantile(curves, [(1 - confidence_level) / 2, 0.5, (1 + confidence_level) / 2],
                    axis=0)
    band = pd.DataFrame({"x": 10.0 ** (des.center + des.half * g), "fitted": q[1],
                         "ci_lower": q[0], "ci_upper": q[2]})
    return row, labels, vertex, band, slope


def turning_point(row, labels, vertex, confidence_level):
    """Posterior median and interval of the vertex (x units) for a U-type verdict."""
    out = {"turning_point": np.nan, "tp_ci_lower": np.nan, "tp_ci_upper": np.nan}
    if row["shape"] in U_SHAPES:
        v = vertex[labels == SHAPE_NAMES.index(row["shape"])]
        v = v[np.isfinite(v)]
        if len(v):
            lo, mid, hi = np.quantile(v, [(1 - confidence_level) / 2, 0.5,
                                          (1 + confidence_level) / 2])
            out = {"turning_point": float(10**mid), "tp_ci_lower": float(10**lo),
                   "tp_ci_upper": float(10**hi)}
    return out


def family_rows(engine, post, *, margin, sign, wanted, threshold, confidence_level):
    """Per-family verdict rows, bands, slope draws and labels:
    ``(rows by family, bands, slopes, labels)``."""
    des = engine.des
    rows, bands, slopes, labels_ = {}, [], [], []
    for i, fam in enumerate(des.families):
        row, labels, vertex, band, slope = curve_summary(
            engine, post, i, margin=margin, sign=sign, allow_u=allows_u(wanted, des.n_sizes(i)),
            confidence_level=confidence_level)
        row["shape"] = decide(row, threshold, wanted)
        row.update(turning_point(row, labels, vertex, confidence_level))
        row["tau2"] = float(np.mean(post["tau2_score"][:, i]))
        rows[fam] = row
        bands.append(band.assign(family=fam, curve="posterior"))
        slopes.append(slope)
        labels_.append(labels)
    return rows, bands, slopes, labels_


def pooled_row(engine, post, rows, slopes, fam_labels, *, margin, sign, wanted, threshold,
               confidence_level):
    """The pooled row (population curve, new family, every observed family) and its slope
    draws; with one family, that family's row (the new-family columns empty)."""
    des = engine.des
    if des.F == 1:
        prow, pslope = dict(rows[des.families[0]]), slopes[0]
        prow.update({f"p_new_{n}": np.nan for n in SHAPE_NAMES})
        prow.update({f"p_all_{n}": np.nan for n in SHAPE_NAMES})
        prow.update({"p_new_family": np.nan, "new_family_shape": None,
                     "p_all_families": np.nan})
        return prow, pslope
    kw = dict(margin=margin, sign=sign, allow_u=allows_u(wanted, des.n_sizes()),
              confidence_level=confidence_level)
    prow, plabels, pvertex, _, pslope = curve_summary(engine, post, "pooled", **kw)
    prow["shape"] = decide(prow, threshold, wanted)
    prow.update(turning_point(prow, plabels, pvertex, confidence_level))
    prow["tau2"] = float(np.mean(post["tau2_score"]))
    nrow, nlabels, _, _, _ = curve_summary(engine, post, "new", **kw)
    target = prow["shape"] if prow["shape"] in SHAPE_NAMES else max(
        SHAPE_NAMES, key=lambda n: prow[f"p_{n}"])
    prow.update({f"p_new_{n}": nrow[f"p_{n}"] for n in SHAPE_NAMES})
    prow["p_new_family"] = nrow[f"p_{target}"]
    prow["new_family_shape"] = target
    # generality over the families at hand: every observed curve has the shape, jointly
    joint = np.stack(fam_labels)
    prow.update({f"p_all_{n}": float(np.mean((joint == i).all(axis=0)))
                 for i, n in enumerate(SHAPE_NAMES)})
    prow["p_all_families"] = prow[f"p_all_{target}"]
    return prow, pslope


def attach_slopes(idata, families, slopes, pooled):
    """Add the slope draws (score units per 10x): ``slope`` (chain, draw, family) and
    ``pooled_slope`` (chain, draw), the draws behind the ``slope``/``ci_*`` columns."""
    import xarray as xr

    post = idata.posterior
    shape = (post.sizes["chain"], post.sizes["draw"])
    post["slope"] = xr.DataArray(np.stack(slopes, axis=-1).reshape(shape + (len(families),)),
                                 dims=("chain", "draw", "family"),
                                 coords={"family": list(families)})
    post["pooled_slope"] = xr.DataArray(np.asarray(pooled).reshape(shape), dims=("chain", "draw"))
