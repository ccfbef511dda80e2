"""Render a TrendResult as text (markdown and HTML reports build on the same pieces)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["render", "verdict_sentence", "slope_words"]

_SHAPE_WORDS = {
    "positive": "larger models do better (positive scaling)",
    "inverse": "larger models do worse (inverse scaling)",
    "u_shaped": "performance falls, then recovers at larger scale (U-shaped)",
    "inverted_u": "performance rises, then falls at larger scale (inverted U)",
    "flat": "performance does not change beyond the margin (flat, shown by equivalence test)",
    "inconclusive": "the data show neither a trend nor flatness (inconclusive)",
}


def _fmt(v, digits=3):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}g}"
    return str(v)


def slope_words(result) -> str:
    """Units of a slope in running text: '<metric> per 10x parameters' (or training FLOPs).

    The same words in the verdict sentence, the text report and the criterion lights."""
    x = "parameters" if result.meta.get("x", "n_params") == "n_params" else "training FLOPs"
    return f"{result.meta.get('metric') or 'score'} per 10x {x}"


def verdict_sentence(result) -> str:
    """One sentence: the pooled verdict with its evidence.

    Bootstrap results quote p-values and confidence intervals; Bayesian results
    (``meta['method'] == 'bayes'``) quote posterior probabilities and credible intervals, since
    their ``p_*`` columns are posterior probabilities, not p-values.
    """
    if result.meta.get("method") == "bayes":
        return _bayes_sentence(result)
    p = result.pooled
    x = "parameters" if result.meta["x"] == "n_params" else "training FLOPs"
    core = f"{_SHAPE_WORDS[result.shape]}"
    if result.shape in ("positive", "inverse"):
        core += (f": slope {_fmt(p['slope'])} {slope_words(result)} "
                 f"[{_fmt(p['ci_lower'])}, {_fmt(p['ci_upper'])}], p = {_fmt(p['p_value'])}")
    elif result.shape in ("u_shaped", "inverted_u"):
        key = "p_u_shaped" if result.shape == "u_shaped" else "p_inverted_u"
        core += (f": two-lines p = {_fmt(p[key])}, turning point near {_fmt(p['turning_point'])} "
                 f"{x} [{_fmt(p['tp_ci_lower'])}, {_fmt(p['tp_ci_upper'])}]")
    elif result.shape == "flat":
        core += f": equivalence p = {_fmt(p['p_flat'])} at margin ±{_fmt(result.meta['flat_margin'])}"
    else:
        core += f": gate p = {_fmt(p['p_gate'])}"
    return core + "."


_PROB_COLUMN = {"positive": "p_positive", "inverse": "p_inverse", "u_shaped": "p_u_shaped",
                "inverted_u": "p_inverted_u", "flat": "p_flat"}


def _bayes_sentence(result) -> str:
    """The verdict with posterior probabilities (pooled, and for a new family when known)."""
    p = result.pooled
    level = _fmt(100 * result.meta["confidence_level"])
    probs = {s: p.get(c) for s, c in _PROB_COLUMN.items()}
    best = max(probs, key=lambda s: -1.0 if not np.isfinite(_num(probs[s])) else probs[s])
    shown = result.shape if result.shape in probs else best
    core = (f"{_SHAPE_WORDS[result.shape]}: posterior P({shown}) = {_fmt(probs[shown])}; slope "
            f"{_fmt(p['slope'])} {slope_words(result)}, {level}% credible interval "
            f"[{_fmt(p['ci_lower'])}, {_fmt(p['ci_upper'])}]")
    every = p.get(f"p_all_{shown}")
    if np.isfinite(_num(every)):
        core += f"; P(every family shows {shown}) = {_fmt(every)}"
    new = p.get(f"p_new_{shown}")
    if np.isfinite(_num(new)):
        core += f"; P(a new family shows {shown}) = {_fmt(new)}"
    return core + "."


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _table_text(df: pd.DataFrame) -> str:
    return df.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def render(result, format: str = "text", **kwargs) -> str:
    """Render ``result`` as ``'text'``, ``'markdown'`` or ``'html'``."""
    if format == "text":
        return _render_text(result)
    if format in ("markdown", "html"):
        from .criteria_report import render_document

        return render_document(result, format=format, **kwargs)
    raise ValueError(f"format must be 'text', 'markdown' or 'html'; got {format!r}")


def _render_text(result) -> str:
    m = result.meta
    lines = [f"scalingfit {m['version']} -- task {m.get('task') or '(unnamed)'}, metric "
             f"{m.get('metric') or 'score'} ({'higher' if m['higher_is_better'] else 'lower'} is "
             f"better), x = {m['x']}, method = {m['method']}{_engine_settings(m)}",
             f"{m['n_families']} families, {m['n_models']} models, "
             f"{m['n_examples'] or 'aggregated'} examples; alpha = {m['alpha']:.3g}, "
             f"flat margin = {_fmt(m['flat_margin'])}, seed = {m['seed']}",
             "", f"Verdict: {result.shape} -- {verdict_sentence(result)}", "",
             _table_text(result.summary())]
    if m.get("method") == "bayes":
        lines.append(_BAYES_COLUMNS.format(_fmt((m.get("bayes") or {}).get(
            "decision_threshold", 0.95))))
    lines += _criteria_lines(result) + _selection_lines(result)
    if len(result.diagnostics):
        lines += ["", "Notes:"]
        lines += [f"[{i + 1}] ({r.severity}) {r.message}"
                  for i, r in enumerate(result.diagnostics.itertuples())]
    return "\n".join(lines)


_BAYES_COLUMNS = ("(Bayesian engine: p_value is the two-sided posterior tail probability of the "
                  "slope, 2 min(P(slope > 0), P(slope < 0)), not a frequentist p-value; "
                  "p_<shape> are posterior shape probabilities, and a verdict needs one >= {}.)")


def _engine_settings(meta) -> str:
    """' (model_level model, 2 chains x 200 draws, 200 warm-up, target_accept 0.95)' for a
    Bayesian result, '' for the bootstrap engine."""
    b = meta.get("bayes") or {}
    if meta.get("method") != "bayes" or not b:
        return ""
    return (f" ({b.get('model')} model, {b.get('chains')} chains x {b.get('draws')} draws, "
            f"{b.get('tune')} warm-up, target_accept {_fmt(b.get('target_accept'))}"
            + (", LOO comparison" if b.get("compare") else "") + ")")


def _criteria_lines(result) -> list:
    """Trend strength, generality and noise in a few lines (the HTML report has the detail)."""
    noise = result.meta.get("noise") or {}
    main = noise.get("main_label", "pooled")
    lines = []
    st = result.strength
    if st is not None and len(st):
        rows = st[st["family"] == main].set_index("quantity")
        if "slope_per_decade" in rows.index:
            r = rows.loc["slope_per_decade"]
            text = (f"Strength ({main}): {_fmt(r['estimate'])} {slope_words(result)} "
                    f"[{_fmt(r['ci_lower'])}, {_fmt(r['ci_upper'])}]")
            if "change_smallest_to_largest" in rows.index:
                c = rows.loc["change_smallest_to_largest"]
                text += (f"; smallest -> largest model {_fmt(c['estimate'])} "
                         f"[{_fmt(c['ci_lower'])}, {_fmt(c['ci_upper'])}] (paired)")
            if "snr" in rows.index:
                text += f"; signal-to-noise {_fmt(abs(rows.loc['snr', 'estimate']))}"
            lines.append(text + ".")
    gen = result.generality
    if gen is not None and len(gen) and "shows_claim" in gen:
        fam = gen[gen["family"] != "pooled"]
        claim = fam["claim"].iloc[0] if len(fam) else noise.get("claim")
        text = (f"Generality: {int(fam['shows_claim'].fillna(False).astype(bool).sum())} of "
                f"{len(fam)} families show {claim} (Holm-adjusted)")
        pooled = gen[gen["family"] == "pooled"]
        if len(pooled) and np.isfinite(_num(pooled["I2"].iloc[0])):
            text += (f"; heterogeneity I2 = {_fmt(100 * pooled['I2'].iloc[0], 2)}%, "
                     f"p = {_fmt(pooled['p_heterogeneity'].iloc[0])}")
        lines.append(text + ".")
    lines += _noise_line(noise, main)
    return [""] + lines if lines else []


def _noise_line(noise: dict, main: str) -> list:
    bits = []
    stab = (noise.get("stability") or {}).get(main)
    if stab:
        bits.append(f"{_fmt(100 * stab['share'], 3)}% of {stab['n']} bootstrap replicates give "
                    f"'{stab['verdict']}'")
    null = noise.get("null") or {}
    if np.isfinite(_num(null.get("p_value"))):
        bits.append(f"null-calibrated p = {_fmt(null['p_value'])} ({null.get('n_sim')} "
                    f"simulations under the best {null.get('null', 'null')} curve)")
    infl = noise.get("influence") or []
    if infl:
        changed = [r["dropped"] for r in infl if r.get("changed")]
        bits.append(f"verdict unchanged when any one of {len(infl)} models is dropped"
                    if not changed else
                    f"verdict changes when dropping {', '.join(map(str, changed))}")
    power = (noise.get("power") or {}).get(main) or {}
    key = "mde_curvature" if power.get("kind") == "curvature" else "mde_slope"
    if np.isfinite(_num(power.get(key))):
        bits.append(f"minimum detectable {power.get('kind', 'slope')} at 80% power "
                    f"{_fmt(power[key])}")
    return ["Noise: " + "; ".join(bits) + "."] if bits else []


def _selection_lines(result) -> list:
    """Model selection by AICc: the best curve and its Akaike weight per family."""
    sel = result.selection
    if sel is None or not len(sel):
        return []
    # the bootstrap engine ranks by AICc; the Bayesian one (compare=True) by grouped LOO elpd
    by_loo = "aicc" not in sel.columns
    parts = []
    for fam, rows in sel.groupby("family", sort=False):
        best = rows.loc[rows["elpd_loo"].idxmax() if by_loo else rows["aicc"].idxmin()]
        parts.append(f"{fam} {best['curve']} (weight {_fmt(best['weight'], 2)})")
    criterion = "grouped LOO (leave one model out)" if by_loo else "AICc"
    return ["", f"Best curve form by {criterion} (a fit, not a verdict: a quadratic may be "
                "monotone over the observed range): " + "; ".join(parts) + "."]
