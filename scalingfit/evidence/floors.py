"""Per-model noise and the edges of the scale: neighbouring models, chance, ceiling, metric.

References
----------
Schaeffer, R., Miranda, B. & Koyejo, S. (2023). Are emergent abilities of large language models a
mirage? NeurIPS (discontinuous metrics).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..data import load_results, model_scores
from ..exceptions import DataValidationError
from ..multitest import adjust_p
from ..shapes import analyse_shape, default_flat_margin
from ..verdicts import SHAPES, U_SHAPES, VERDICTS
from .robustness import reference_fit

__all__ = ["adjacent_differences", "floor_ceiling", "metric_sensitivity", "model_noise_shares",
           "CONTINUOUS_METRICS"]

#: continuous per-example columns :func:`metric_sensitivity` looks for, in order, and whether
#: higher is better
CONTINUOUS_METRICS = {"logprob_correct": True, "log_prob_correct": True, "logprob": True,
                      "log_prob": True, "prob_correct": True, "label_prob": True,
                      "loss": False, "nll": False, "neg_log_likelihood": False}


def adjacent_differences(ms, *, confidence_level: float = 0.95) -> pd.DataFrame:
    """Paired differences of neighbouring models within each family, with intervals.

    ``diff = score[larger] - score[smaller]``, ``se = sqrt(V_ii + V_jj - 2 V_ij)`` (paired
    across examples, from ``ms.cov``: the example-sampling error of this contrast), normal
    interval, two-sided p and its Holm adjustment within the family.
    """
    zq = stats.norm.ppf(0.5 + confidence_level / 2)
    y = ms.models["score"].to_numpy(dtype=float)
    names = ms.models["model"].to_numpy()
    rows = []
    for fam in ms.families:
        idx = ms.family_index(fam)
        ps = []
        for i, j in zip(idx[:-1], idx[1:]):
            diff = y[j] - y[i]
            se = float(np.sqrt(max(ms.cov[i, i] + ms.cov[j, j] - 2 * ms.cov[i, j], 0.0)))
            p = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else float(diff == 0)
            ps.append(p)
            rows.append({"family": fam, "from_model": names[i],
                         "to_model": names[j], "diff": float(diff), "se": se,
                         "ci_lower": diff - zq * se, "ci_upper": diff + zq * se, "p_value": p})
        if ps:
            for r, pa in zip(rows[len(rows) - len(ps):], adjust_p(ps, "holm")):
                r["p_holm"] = float(pa)
    return pd.DataFrame(rows)


def model_noise_shares(result, ms) -> list:
    """Per family: the share of the score spread that model-level noise explains.

    ``share = tau^2 / (tau^2 + mean sampling variance + variance of the fitted curve)``, with
    the fit behind the verdict (two lines for U verdicts, else the quadratic when fitted, else
    the line). Rows ``family, share, tau2, curve_var, sampling_var``.
    """
    out = []
    for label, a in result.analyses.items():
        if label == "pooled":
            continue
        idx = ms.family_index(label)
        fit = reference_fit(a) if a.verdict in U_SHAPES else (
            a.quadratic if a.quadratic is not None else a.linear)
        curve = fit.X @ fit.params
        curve_var = float(np.var(curve))
        samp = float(np.mean(np.diag(ms.cov)[idx]))
        tau2 = float(fit.tau2)
        share = tau2 / (tau2 + samp + curve_var) if tau2 > 0 else 0.0
        out.append({"family": label, "share": share, "tau2": tau2, "curve_var": curve_var,
                    "sampling_var": samp})
    return out


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


def _continuous_table(table, column):
    """The per-example rows with ``column`` as the score; an example whose continuous score is
    missing for any model is dropped for every model of that family, so the paired example
    sets stay equal. Returns (rows, dropped example keys)."""
    sub = table.drop(columns=["score"]).rename(columns={column: "score"})
    sub = sub[["family", "model", "n_params", "example_id", "score"]
              + [c for c in ("flops",) if c in sub.columns]]
    finite = np.isfinite(pd.to_numeric(sub["score"], errors="coerce").to_numpy(float))
    key = sub["family"].astype(str) + "\x00" + sub["example_id"].astype(str)
    dropped = key[~finite].unique()
    return sub[~key.isin(dropped)], dropped


def _continuous_verdicts(result, ms2, margin, hib) -> dict:
    """Label -> core verdict of the continuous scores, for the labels of ``result``."""
    alpha = result.meta["alpha"]
    allow_u = bool(set(result.meta.get("shapes", VERDICTS)) & set(U_SHAPES))
    y = ms2.models["score"].to_numpy(float)
    lx = ms2.models["log10_x"].to_numpy(float)
    labels = {f: ms2.family_index(f) for f in ms2.families}
    if len(labels) > 1:
        labels["pooled"] = np.arange(len(y))
    codes = pd.Categorical(ms2.models["family"], categories=ms2.families).codes
    out = {}
    for label, idx in labels.items():
        if label not in result.analyses:
            continue
        out[label] = analyse_shape(
            label, y[idx], ms2.cov[np.ix_(idx, idx)], lx[idx],
            codes[idx] if label == "pooled" else np.zeros(len(idx), int), alpha=alpha,
            confidence_level=result.meta["confidence_level"], flat_margin=margin,
            allow_u=allow_u, sign=1 if hib else -1).verdict
    return out


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
    if table is None or "example_id" not in table.columns:
        return None
    if column is None:
        column = next((c for c in CONTINUOUS_METRICS if c in table.columns and c != "score"),
                      None)
    if column is None:
        return None
    hib = CONTINUOUS_METRICS.get(column, True)
    sub, dropped = _continuous_table(table, column)
    if sub.empty:
        return None
    try:
        t2 = load_results(sub, metric=None, higher_is_better=hib, proportion=False)
    except DataValidationError:
        return None
    ms2 = model_scores(t2, x=result.meta.get("x", "n_params"))
    margin = default_flat_margin(t2, ms2)
    out = {"column": column, "higher_is_better": hib, "labels": {}, "opposite": [],
           "n_examples_dropped": int(len(dropped))}
    for label, v2 in _continuous_verdicts(result, ms2, margin, hib).items():
        v1 = result.analyses[label].verdict
        out["labels"][label] = {"score": v1, "continuous": v2, "agree": bool(v1 == v2)}
        if v1 != v2 and SHAPES[v1].opposite == v2:
            out["opposite"].append(label)
    return out
