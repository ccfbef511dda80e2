"""Render a TrendResult as text (markdown and HTML reports build on the same pieces)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["render", "verdict_sentence"]

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
        core += (f": slope {_fmt(p['slope'])} score per 10x {x} "
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
    x = "parameters" if result.meta["x"] == "n_params" else "training FLOPs"
    level = _fmt(100 * result.meta["confidence_level"])
    probs = {s: p.get(c) for s, c in _PROB_COLUMN.items()}
    best = max(probs, key=lambda s: -1.0 if not np.isfinite(_num(probs[s])) else probs[s])
    shown = result.shape if result.shape in probs else best
    core = (f"{_SHAPE_WORDS[result.shape]}: posterior P({shown}) = {_fmt(probs[shown])}; slope "
            f"{_fmt(p['slope'])} score per 10x {x}, {level}% credible interval "
            f"[{_fmt(p['ci_lower'])}, {_fmt(p['ci_upper'])}]")
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
             f"better), x = {m['x']}, method = {m['method']}",
             f"{m['n_families']} families, {m['n_models']} models, "
             f"{m['n_examples'] or 'aggregated'} examples; alpha = {m['alpha']:.3g}, "
             f"flat margin = {_fmt(m['flat_margin'])}, seed = {m['seed']}",
             "", f"Verdict: {result.shape} -- {verdict_sentence(result)}", "",
             _table_text(result.summary())]
    if len(result.diagnostics):
        lines += ["", "Notes:"]
        lines += [f"[{i + 1}] ({r.severity}) {r.message}"
                  for i, r in enumerate(result.diagnostics.itertuples())]
    return "\n".join(lines)
