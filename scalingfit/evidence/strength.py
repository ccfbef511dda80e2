"""Trend strength: how large is the change, per family and pooled, with intervals and units.

References
----------
Wei, J. et al. (2022). Inverse scaling can become U-shaped. arXiv:2211.02011.
Miller, E. (2024). Adding error bars to evals. arXiv:2411.00640.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..verdicts import U_SHAPES
from .labels import analysis_index

__all__ = ["trend_strength"]


def _units(result) -> tuple[str, str]:
    metric = result.meta.get("metric") or "score"
    x = "parameters" if result.meta.get("x", "n_params") == "n_params" else "training FLOPs"
    scale = " (0-1 scale; x100 for points)" if result.meta.get("proportion") else ""
    return f"{metric}{scale} per 10x {x}", f"{metric}{scale}"


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


def _row(label, quantity, est, se, lo, hi, units, note_="") -> dict:
    return {"family": label, "quantity": quantity, "estimate": float(est), "se": float(se),
            "ci_lower": float(lo), "ci_upper": float(hi), "units": units, "note": note_}


def _monotone_rows(result, ms, label, a, y) -> list:
    """Slope, fitted change, paired smallest-to-largest change and both signal-to-noise ratios."""
    cl = result.meta["confidence_level"]
    zq = stats.norm.ppf(0.5 + cl / 2)
    slope_units, score_units = _units(result)
    idx = analysis_index(a, ms, label)
    est, se, _, _ = a.slope
    t = a.linear.t_quantile(cl)
    rng_z = float(np.ptp(a.z))
    c = _family_ends(ms, idx)
    V = ms.cov[np.ix_(idx, idx)]
    obs = float(c @ y[idx])
    se_obs = float(np.sqrt(max(c @ V @ c, 0.0)))
    # the interval of the change in units of its (fixed) SE: snr +- the quantile
    snr = est * rng_z / (se * rng_z) if se > 0 else np.inf
    snr_e = obs / se_obs if se_obs > 0 else np.inf
    return [
        _row(label, "slope_per_decade", est, se, est - t * se, est + t * se, slope_units,
             "model-level (Knapp-Hartung) interval"),
        _row(label, "change_fitted", est * rng_z, se * rng_z, (est - t * se) * rng_z,
             (est + t * se) * rng_z, score_units,
             f"fitted change over {rng_z:.2g} decades, model-level interval"),
        _row(label, "change_smallest_to_largest", obs, se_obs, obs - zq * se_obs,
             obs + zq * se_obs, score_units,
             ("paired across examples" if result.meta.get("form") == "per_example" else
              "independent errors (aggregated input)") + "; excludes model-level noise"),
        _row(label, "snr", snr, 1.0, snr - t, snr + t, "ratio",
             "fitted change / its model-level SE (interval: the change's interval in SE units)"),
        _row(label, "snr_examples_only", snr_e, 1.0, snr_e - zq, snr_e + zq, "ratio",
             "observed change / its paired example-level SE (interval in SE units)")]


def _u_rows(result, label, a) -> list:
    """Arm changes, trough depth / peak height, breakpoint and turning point of a U verdict."""
    cl = result.meta["confidence_level"]
    _, score_units = _units(result)
    x_name = result.meta.get("x", "n_params")
    tl = a.two_lines
    df = tl.fit.df_resid
    t2 = stats.t.ppf(0.5 + cl / 2, df)
    left_len, right_len = tl.breakpoint - a.z.min(), a.z.max() - tl.breakpoint
    arms = {"left_arm_change": (tl.slope_left * left_len, tl.se_left * left_len),
            "right_arm_change": (tl.slope_right * right_len, tl.se_right * right_len)}
    rows = [_row(label, name, e, s, e - t2 * s, e + t2 * s, score_units,
                 "two-lines slope times arm length") for name, (e, s) in arms.items()]
    (el, sl), (er, sr) = arms.values()
    # depth relative to both ends: the smaller rise from the extremum to an end
    depth, sd = (abs(el), sl) if abs(el) <= abs(er) else (abs(er), sr)
    name = "trough_depth" if a.verdict == "u_shaped" else "peak_height"
    rows.append(_row(label, name, depth, sd, depth - t2 * sd, depth + t2 * sd, score_units,
                     "smaller of the two arm changes (relative to both ends), performance "
                     "scale"))
    bx = float(10 ** (tl.breakpoint + a.z_center))
    rows.append(_row(label, "extremum_location", bx, np.nan, np.nan, np.nan, x_name,
                     "two-lines breakpoint (a design choice, no sampling interval; the "
                     "turning_point row carries the Fieller interval of the extremum)"))
    lm = a.lind_mehlum
    if lm is not None and np.isfinite(lm["turning_point"]):
        f = lambda v: float(10 ** (v + a.z_center)) if np.isfinite(v) else np.nan  # noqa: E731
        rows.append(_row(label, "turning_point", f(lm["turning_point"]), np.nan,
                         f(lm["tp_ci_lower"]), f(lm["tp_ci_upper"]), x_name,
                         "quadratic, Fieller interval"))
    return rows


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
    y = ms.models["score"].to_numpy(dtype=float)
    rows = []
    for label, a in result.analyses.items():
        rows += _monotone_rows(result, ms, label, a, y)
        if a.verdict in U_SHAPES and a.two_lines is not None:
            rows += _u_rows(result, label, a)
    return pd.DataFrame(rows)
