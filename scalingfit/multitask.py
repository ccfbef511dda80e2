"""One report for a table with several tasks (and/or metrics): a multiplicity-adjusted summary,
then a section per task.

Each (task, metric) is fitted with :func:`scalingfit.fit_trend` (same options and seed) and
assessed (:func:`scalingfit.assessment.assess`); the summary lists every task with its verdict
and the p-value of the claim, adjusted across tasks by Holm and Benjamini-Hochberg
(:func:`scalingfit.multitest.adjust_p`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .assessment import assess
from .blocks import Num, Table
from .bootstrap import as_generator
from .documents import figures, task_blocks
from .engines import engine_view
from .exceptions import ScalingFitError
from .fit import fit_trend
from .multitest import adjust_p
from .readers import read_path
from .repro import call_options, repro_blocks
from .verdicts import check_claim_name
from .wording import fmt
from .writers import write_document

__all__ = ["report_tasks", "task_groups", "read_raw", "summary_row"]


def read_raw(results, fmt=None) -> pd.DataFrame:
    """The results table as given (a copy of a DataFrame, or the file read as it is), before
    :func:`scalingfit.load_results` chooses one task and metric."""
    if isinstance(results, pd.DataFrame):
        return results.copy()
    return read_path(Path(results), fmt)


def task_groups(table: pd.DataFrame, *, task=None, metric=None) -> list:
    """(task, metric) pairs of a table with several tasks / metrics, in table order."""
    t = table
    if task is not None and "task" in t:
        t = t[t["task"] == task]
    if metric is not None and "metric" in t:
        t = t[t["metric"] == metric]
    keys = [c for c in ("task", "metric") if c in t.columns]
    if not keys:
        return [(None, None)]
    pairs = t[keys].drop_duplicates().itertuples(index=False)
    return [(getattr(p, "task", None), getattr(p, "metric", None)) for p in pairs]


def summary_row(r, claim, check) -> dict:
    """Verdict, size, slope and evidence of one fitted task in the multi-task summary.

    ``p``: the claim's p-value of ``check_claim`` (which refits with the bootstrap engine), else
    :func:`scalingfit.verdicts.claim_p_value`; without a claim, the gate's p-value. A Bayesian
    result has no p-value of its own: its ``p`` is ``check_claim``'s when that ran, else NaN,
    and ``p_posterior`` / ``posterior_of`` quote :func:`scalingfit.engines.posterior_evidence`
    (a posterior probability is not a p-value and is never multiplicity-adjusted).
    """
    row = {"verdict": r.shape, "n_families": r.meta["n_families"],
           "n_models": r.meta["n_models"], "slope": r.pooled["slope"]}
    return {**row, **engine_view(r).summary_row(r, claim, check)}


def _adjust(summary, alpha) -> int:
    """Holm and Benjamini-Hochberg adjustments across the tasks with a finite p (in place);
    'holds (Holm)' is empty for a fitted task without one (a Bayesian task without a claim).
    Returns the number of tasks adjusted."""
    p = summary["p"] if "p" in summary else pd.Series(np.nan, index=summary.index)
    tested = p.notna()
    for col, method in (("p_holm", "holm"), ("p_bh", "fdr_bh")):
        summary[col] = adjust_p(p.to_numpy(dtype=float), method)
    holds = (summary["p_holm"] <= alpha).astype(object)
    if "verdict" in summary:
        holds[~tested & (summary["verdict"] != "not fitted")] = None
    summary["holds_holm"] = holds
    return int(tested.sum())


def _summary_text(claim, alpha, n_tested, threshold=None) -> str:
    """The paragraph above the summary table; ``threshold`` is the decision threshold of
    Bayesian fits (None for the bootstrap engine)."""
    what = f"the {claim} claim (gate and shape test)" if claim else "a trend (gate: not flat)"
    adjusted = (f"adjusted across the {n_tested} tasks with a p-value by Holm (family-wise "
                f"error) and Benjamini-Hochberg (false discovery rate); 'holds' uses Holm at "
                f"alpha = {alpha:.3g}.")
    if threshold is None:
        return f"p-value of {what} per task, " + adjusted
    of = f"the {claim} claim" if claim else ("its verdict (for an inconclusive verdict, its most "
                                             "probable shape)")
    text = (f"Bayesian fits: 'posterior P' is each task's posterior probability of {of}; a "
            f"Bayesian verdict needs posterior probability >= {fmt(threshold)} "
            "(meta['bayes']['decision_threshold']). A posterior probability is not a p-value: "
            "multiplicity corrections (Holm, Benjamini-Hochberg) apply to the bootstrap "
            "engine's p-values only, and no posterior probability is adjusted.")
    if claim and n_tested:
        return text + (f" The p column holds check_claim's p-value of the {claim} claim (it "
                       "refits each task with the bootstrap engine), " + adjusted)
    why = ("check_claim (bootstrap engine) could not run" if claim else
           "without a claim no check_claim p-value is computed")
    return text + (f" p, p (Holm) and p (BH) stay empty ({why}): refit with "
                   "method='bootstrap' for multiplicity-adjusted p-values.")


_SUMMARY_COLS = [("task", "task", "str"), ("metric", "metric", "str"),
                 ("verdict", "verdict", "str"), ("n_families", "families", "str"),
                 ("n_models", "models", "str"), ("slope", "slope / 10\u00d7", "num"),
                 ("p", "p", "p"), ("p_holm", "p (Holm)", "p"), ("p_bh", "p (BH)", "p"),
                 ("holds_holm", "holds (Holm)", "str"), ("why", "why not fitted", "str")]
_POSTERIOR_COLS = [("p_posterior", "posterior P", "num"), ("posterior_of", "of shape", "str")]


def _summary_blocks(summary, claim, seed, alpha, n_tested, threshold):
    cols = list(_SUMMARY_COLS)
    if threshold is not None:
        cols[6:6] = _POSTERIOR_COLS
    n_fitted = int((summary["verdict"] != "not fitted").sum()) if len(summary) else 0
    return [("facts", [("tasks", [Num(len(summary), "summary.n_tasks")]),
                       ("fitted", [Num(n_fitted, "summary.n_fitted")]),
                       ("claim", [claim or "none"]), ("seed", [str(seed)])]),
            ("h", 2, "Summary of all tasks", "summary-h"),
            ("p", [_summary_text(claim, alpha, n_tested, threshold)]),
            ("table", Table("summary", "All tasks", cols, summary.to_dict(orient="records"),
                            "summary", "task"))]


def _assess_tasks(table, claim, rng, *, task, metric, higher_is_better, fit_kwargs):
    """Fit and assess every (task, metric): (summary rows, [(anchor, label, assessment)])."""
    rows, sections = [], []
    for i, (t, mt) in enumerate(task_groups(table, task=task, metric=metric)):
        sub = table
        if t is not None:
            sub = sub[sub["task"] == t]
        if mt is not None:
            sub = sub[sub["metric"] == mt]
        label = " \u00b7 ".join(str(v) for v in (t, mt) if v is not None) or "results"
        row = {"task": str(t), "metric": str(mt) if mt is not None else "", "anchor": f"t{i}-"}
        try:
            r = fit_trend(sub, higher_is_better=higher_is_better, rng=rng, **fit_kwargs)
        except ScalingFitError as err:
            rows.append({**row, "verdict": "not fitted", "why": str(err)})
            continue
        # check_claim runs for a claim the user made, not for a verdict judged by itself
        a = assess(r, claim, data=sub, check_claims=claim is not None)
        rows.append({**row, **summary_row(r, claim, a.check if claim else None)})
        sections.append((row["anchor"], label, a))
    return rows, sections


def _task_sections(sections, plots) -> list:
    blocks = []
    for anchor, label, a in sections:
        figs = figures(a.result, anchor) if plots else []
        blocks += [("open", f"{anchor}task", "task", ""), ("h", 2, label, f"{anchor}h")]
        blocks += [b if b[0] != "h" else ("h", b[1] + 1, *b[2:])
                   for b in task_blocks(a, figs, prefix=anchor, level=3)]
        blocks.append(("close",))
    return blocks


def report_tasks(results_table, *, claim=None, format="html", out=None, source=None,
                 task=None, metric=None, higher_is_better=None, input_format=None,
                 plots=True, **fit_kwargs) -> str:
    """One report for a table with several tasks (and/or metrics).

    Each (task, metric) is fitted with :func:`scalingfit.fit_trend` (same options and seed);
    the summary table lists every task with its verdict and the p-value of the claim, adjusted
    across tasks by Holm (family-wise) and Benjamini-Hochberg (false discovery rate) with
    :func:`scalingfit.multitest.adjust_p`; tasks that cannot be fitted are listed with the
    reason. Without a claim the p-value is the gate's (the curve is not flat). A section per
    task follows.

    Bayesian fits (``method='bayes'``) list each task's posterior probability of the claim (of
    the verdict without a claim; of the most probable shape for 'inconclusive') instead: a
    posterior probability is not a p-value and is not adjusted. With a claim, the p column
    holds ``check_claim``'s p-value (bootstrap engine), which is adjusted; without one, p and
    its adjustments stay empty.

    Returns
    -------
    str
        The document (also written to ``out`` when given).
    """
    if claim is not None:
        check_claim_name(claim)
    table = read_raw(results_table, input_format)
    gen, seed = as_generator(fit_kwargs.pop("rng", None))
    rows, sections = _assess_tasks(table, claim, seed if isinstance(seed, int) else gen,
                                   task=task, metric=metric, higher_is_better=higher_is_better,
                                   fit_kwargs=fit_kwargs)
    summary = pd.DataFrame(rows)
    alpha = 1 - fit_kwargs.get("confidence_level", 0.95)
    n_tested = _adjust(summary, alpha)
    thresholds = [a.engine.threshold(a.result) for _, _, a in sections]
    thresholds = [t for t in thresholds if t is not None]
    threshold = thresholds[0] if thresholds else None
    blocks = _summary_blocks(summary, claim, seed, alpha, n_tested, threshold)
    blocks += _task_sections(sections, plots)
    meta0 = sections[0][2].result.meta if sections else {"seed": seed}
    # per-task options (a chance level read from each task's column) are not repeated
    opts = {k: v for k, v in call_options(meta0).items()
            if k not in ("task", "metric", "chance")}
    opts.update({k: v for k, v in (("task", task), ("metric", metric),
                                   ("format", input_format),
                                   ("chance", fit_kwargs.get("chance"))) if v is not None})
    opts["rng"] = seed
    blocks += repro_blocks(meta0, opts, source, claim, out, format, multi=True)
    title = f"Scaling report: {len(summary)} tasks"
    subtitle = ("one section per task; summary first (posterior probabilities, multiplicity "
                "adjustment for bootstrap p-values only)" if thresholds else
                "one section per task; multiplicity-adjusted summary first")
    return write_document(blocks, title, subtitle, format, out)
