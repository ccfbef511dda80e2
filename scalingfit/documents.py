"""The criterion report of one task, as blocks: it renders an :class:`~scalingfit.assessment.
Assessment` and never fits.

A task's blocks are its header facts, the verdict line, the traffic lights, the trend plot, one
section per criterion (its reason, plots and evidence tables) and the tables of the result; the
plots come from :mod:`scalingfit.plotting` (matplotlib is imported only when one is drawn).
Every number shown is read from the assessment; :mod:`scalingfit.writers` turns the blocks into
HTML or Markdown.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from . import plotting
from .blocks import STATUS, Num, make_table
from .engines import claim_table_view
from .repro import call_options, repro_blocks
from .wording import x_words
from .writers import write_document

__all__ = ["render_assessment", "task_blocks", "figures", "document_title"]


# ------------------------------------------------------------------------------- figures
def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _trend_figure(result, prefix, level):
    fig = _figure((7.6, 4.6))
    plotting.plot_trend(result, ax=fig.subplots())
    drawn = {plotting._trend_curve(result, f) for f in result.families["family"]}
    what = (f"the posterior median curve per family with its {level} credible band"
            if "posterior" in drawn else "the fitted curve of the verdict with its band")
    return (f"{prefix}trend", _png(fig), "score against model size",
            "Score against model size (log scale) per family; bars are "
            f"{level} intervals per model, lines {what}.")


def _families_figure(result, prefix):
    n = len(result.families)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig = _figure((3.3 * ncol, 2.7 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False, sharex=True, sharey=True)
    plotting.plot_families(result, ax=axes)
    return (f"{prefix}families", _png(fig), "one panel per family",
            "Each family with its own verdict curve.")


def _power_caption(result) -> str:
    entry = plotting.power_entry(result)
    target = f"{entry.get('target', 0.8):.0%}"
    if entry.get("kind", "slope") == "curvature":
        return (f"Examples per model needed for {target} power against the size of the "
                "curvature (quadratic coefficient per decade\u00b2, the effect the U-shape "
                "test needs); the dashed line marks the observed curvature.")
    return (f"Examples per model needed for {target} power against the size of the slope; "
            "the dashed line marks the observed pooled slope.")


def figures(result, prefix, which=("trend", "families", "slopes", "influence", "power")):
    """(name, png, alt, caption) per plot; a plot whose table is missing yields
    (name, None, why, '') (the plots draw names as plain text: no mathtext)."""
    out = []
    if "trend" in which:
        out.append(_trend_figure(result, prefix, f"{result.meta['confidence_level']:.0%}"))
    if "families" in which and len(result.families) > 1:
        out.append(_families_figure(result, prefix))
    optional = [("slopes", plotting.plot_slope_distribution, (6.4, 3.8),
                 "distribution of the slope",
                 "Replicate slopes per family and pooled; mass away from zero in the claimed "
                 "direction is evidence for the trend."),
                ("influence", plotting.plot_influence, (6.4, 4.2), "influence plot",
                 "Pooled slope and verdict when each model is dropped."),
                ("power", plotting.plot_power, (6.4, 3.8), "power plot", None)]
    for name, draw, size, alt, cap in optional:
        if name not in which:
            continue
        if name == "power":
            cap = _power_caption(result)
        fig = _figure(size)
        try:
            draw(result, ax=fig.subplots())
            out.append((f"{prefix}{name}", _png(fig), alt, cap))
        except ValueError as err:
            out.append((f"{prefix}{name}", None, str(err), ""))
    return out


# ------------------------------------------------------------------------------- columns
_MODEL_COLS = [("family", "family", "str"), ("model", "model", "str"), ("x", "size", "size"),
               ("score", "score", "num4"), ("se", "SE", "num"), ("ci_lower", "CI lower", "num4"),
               ("ci_upper", "CI upper", "num4"), ("n_examples", "examples", "str")]
_SELECTION_COLS = [("family", "family", "str"), ("curve", "curve", "str"),
                   ("n_params", "parameters", "str"), ("loglik", "log-lik", "num"),
                   ("aicc", "AICc", "num"), ("delta_aicc", "\u0394AICc", "num"),
                   ("weight", "weight", "num")]
_LOO_COLS = [("family", "family", "str"), ("curve", "curve", "str"),
             ("elpd_loo", "elpd (LOO)", "num"), ("se", "SE", "num"),
             ("delta_elpd", "\u0394elpd", "num"), ("dse", "SE of \u0394", "num"),
             ("weight", "weight", "num"), ("max_pareto_k", "max Pareto k", "num"),
             ("n_refits", "exact refits", "str")]
_COVERAGE_COLS = [("column", "column", "str"), ("level", "level", "str"),
                  ("shape", "verdict", "str"), ("slope", "slope / 10\u00d7", "num"),
                  ("ci_lower", "CI lower", "num"), ("ci_upper", "CI upper", "num"),
                  ("p_claim", "p (claim)", "p"), ("agrees", "same direction", "str"),
                  ("error", "why not fitted", "str")]


def _generic_cols(df):
    return [(c, c, "p" if str(c).startswith("p_") else "num" if pd.api.types.is_float_dtype(
        df[c]) else "str") for c in df.columns if c != "details"]


def _selection_table(result, prefix):
    """AICc table (bootstrap engine) or grouped-LOO table (Bayesian engine, compare=True)."""
    sel = result.selection
    if sel is not None and "elpd_loo" in sel.columns:
        return make_table(f"{prefix}selection", "Model selection (grouped LOO: each model left "
                          "out in turn, exact refits where Pareto k > 0.7)", sel, _LOO_COLS,
                          "selection")
    return make_table(f"{prefix}selection", "Model selection (AICc on the model-level "
                      "likelihood)", sel, _SELECTION_COLS, "selection")


# ------------------------------------------------------------------------------- blocks
def _header_blocks(a, prefix):
    result, claim = a.result, a.claim
    m = result.meta
    fams = ", ".join(map(str, result.families["family"]))
    facts = [("task", [str(m.get("task") or "(unnamed)")]),
             ("metric", [f"{m.get('metric') or 'score'} "
                         f"({'higher' if m['higher_is_better'] else 'lower'} is better)"]),
             ("families", [Num(m["n_families"], "meta.n_families"), f" ({fams})"]),
             ("models", [Num(m["n_models"], "meta.n_models")]),
             ("examples", [Num(m["n_examples"], "meta.n_examples"), " per model"]
              if m.get("n_examples") else ["aggregated scores"]),
             ("claim", [claim or "none (the verdict is judged)"])]
    ev = []
    if a.evidence is not None:
        lead, value, field, kind = a.evidence
        ev = [lead, Num(value, field, kind), "."]
    return [("facts", facts),
            ("verdict", result.shape, ["Verdict: ", Num(result.shape, "shape"), " — ",
                                       a.engine.verdict_sentence(result), *ev]),
            ("lights", [(c.key, c.title, c.status, c.reason) for c in a.criteria], prefix)]


def _criterion_blocks(a, key, fig, prefix, h):
    """The section of one criterion: its reason, then its figures and tables."""
    c, result = a.criterion(key), a.result
    blocks = [("open", f"{prefix}crit-{c.key}", c.key, c.status),
              ("h", h, f"{c.title} \u2014 {STATUS[c.status][1]}", f"{prefix}{c.key}"),
              ("p", [c.reason])]
    has_table = c.table is not None and len(c.table)
    if key == "trend_strength":
        if fig.get(f"{prefix}slopes"):
            blocks.append(("fig", f"{prefix}slopes", *fig[f"{prefix}slopes"]))
        if has_table:
            blocks.append(("table", make_table(f"{prefix}strength", "Trend strength "
                                               "(scalingfit.evidence)", c.table,
                                               _generic_cols(c.table), "strength")))
    elif key == "generality":
        if fig.get(f"{prefix}families"):
            blocks.append(("fig", f"{prefix}families", *fig[f"{prefix}families"]))
        view = claim_table_view(c.table)     # without a claim: the noise generality table
        if view is not None:
            blocks.append(("table", make_table(f"{prefix}claim_families",
                                               view.claim_caption(result), c.table,
                                               view.claim_columns, "claim_families",
                                               "family")))
        gen = result.generality
        if gen is not None and len(gen):
            blocks.append(("table", make_table(f"{prefix}generality", "Generality "
                                               "(scalingfit.evidence)", gen, _generic_cols(gen),
                                               "generality")))
    elif key == "noise":
        blocks += _noise_blocks(c, result, fig, prefix, h)
    elif key == "coverage" and has_table:
        blocks.append(("table", make_table(f"{prefix}coverage", "Refit per level", c.table,
                                           _COVERAGE_COLS, "coverage", "level")))
    return blocks + [("close",)]


def _noise_blocks(c, result, fig, prefix, h):
    blocks = []
    if c.table is not None and len(c.table):
        blocks.append(("table", make_table(f"{prefix}checks", "Checks", c.table,
                                           _generic_cols(c.table), "checks")))
    for name in ("influence", "power"):
        png, alt, cap = fig.get(f"{prefix}{name}", (None, None, None))
        if png is not None:
            blocks.append(("fig", f"{prefix}{name}", png, alt, cap))
        elif alt:
            blocks.append(("p", [f"{name.capitalize()} plot not shown: {alt}"], "muted"))
    if len(result.diagnostics):
        blocks.append(("h", h + 1, "Diagnostics notes", f"{prefix}notes"))
        blocks.append(("notes", [(r["code"], r["severity"], r["message"])
                                 for r in result.diagnostics.to_dict(orient="records")]))
    return blocks


def _result_tables(a, prefix, h):
    result = a.result
    fam_rows = result.families if len(result.families) == 1 else pd.concat(
        [result.families, pd.DataFrame([result.pooled])], ignore_index=True)
    unit = x_words(result.meta, flops="FLOPs")
    return [("open", f"{prefix}tables", "tables", ""), ("h", h, "Tables", f"{prefix}tables-h"),
            ("table", make_table(f"{prefix}families", f"Per-family estimates (slope per "
                                 f"10\u00d7 {unit})", fam_rows, a.engine.family_columns,
                                 "families", "family")),
            ("table", _selection_table(result, prefix)),
            ("table", make_table(f"{prefix}models", "Per-model scores", result.models,
                                 _MODEL_COLS, "models", "model")),
            ("close",)]


def task_blocks(a, plots, prefix="", level=2) -> list:
    """Blocks of one task: header, lights, plots, criterion sections, tables.

    ``a`` is an :class:`~scalingfit.assessment.Assessment`; ``plots`` the output of
    :func:`figures` (or ``[]``)."""
    fig = {name: (png, alt, cap) for name, png, alt, cap in plots}
    blocks = _header_blocks(a, prefix)
    if fig.get(f"{prefix}trend"):
        blocks.append(("fig", f"{prefix}trend", *fig[f"{prefix}trend"]))
    for key in ("trend_strength", "generality", "noise", "coverage"):
        blocks += _criterion_blocks(a, key, fig, prefix, level)
    return blocks + _result_tables(a, prefix, level)


def document_title(meta) -> str:
    return f"Scaling report: {meta.get('task') or 'results'}"


def render_assessment(a, format="html", out=None, *, source=None, options=None, title=None,
                      plots=True) -> str:
    """The criterion report of an :class:`~scalingfit.assessment.Assessment`, as HTML or
    Markdown (see :func:`scalingfit.report.render_document`); written to ``out`` when given."""
    m = a.result.meta
    figs = figures(a.result, "") if plots else []
    subtitle = (f"{m.get('metric') or 'score'} against {x_words(m)}; "
                + a.engine.subtitle(m))
    blocks = task_blocks(a, figs)
    blocks += repro_blocks(m, call_options(m, options), source, a.asked, out, format)
    return write_document(blocks, title or document_title(m), subtitle, format, out)

