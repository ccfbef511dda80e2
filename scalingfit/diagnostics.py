"""Diagnostics: numbered, machine-readable notes about how far a verdict can be trusted.

Each note is a row ``code, severity, message, details`` (severity ``info`` or ``warning``); the
report prints them numbered under "Notes", and a :class:`StatisticalWarning` is emitted once when
any note is a warning.

:func:`core_notes` are the notes every fit gets; the ``notes_*`` builders turn the evidence
computed by :mod:`scalingfit.evidence` (influence, stability, null calibration, power, floor /
ceiling, metric sensitivity, generality) into the notes listed in :data:`NOTE_CODES`. They only
word computed numbers; they compute nothing that a report would need to show.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .exceptions import StatisticalWarning
from .verdicts import MONOTONE_SHAPES, TREND_SHAPES, U_MIN_SIZES, U_SHAPES

__all__ = ["note", "core_notes", "warn_notes", "records", "NOTE_COLUMNS", "NOTE_CODES",
           "STABILITY_TARGET", "POWER_TARGET", "SMALL_EVAL_SET", "notes_models",
           "notes_influence", "notes_stability", "notes_null", "notes_power", "notes_floor",
           "notes_metric", "notes_generality"]

NOTE_COLUMNS = ["code", "severity", "message", "details"]

#: every note the evidence rooms can add, with its meaning (docs/diagnostics.md)
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

#: share of replicates that must reproduce a verdict before ``unstable_shape`` stays silent
STABILITY_TARGET = 0.8
#: power a design should have (``underpowered`` below it; the target of power analyses)
POWER_TARGET = 0.8
#: examples per model below which normal-theory intervals under-cover (``small_eval_set``)
SMALL_EVAL_SET = 300


def note(code: str, severity: str, message: str, **details) -> dict:
    """One diagnostic note."""
    return {"code": code, "severity": severity, "message": message, "details": details}


def warn_notes(notes: pd.DataFrame) -> None:
    """Emit one StatisticalWarning summarising the warning-level notes, if any."""
    if len(notes) == 0:
        return
    bad = notes[notes["severity"] == "warning"]
    if len(bad):
        codes = ", ".join(pd.unique(bad["code"]))
        warnings.warn(f"{len(bad)} diagnostic warning(s): {codes}; see result.diagnostics.",
                      StatisticalWarning, stacklevel=4)


def core_notes(result, ms) -> pd.DataFrame:
    """Notes every fit gets: data too thin for a U test, no flat margin, model-level noise."""
    out = []
    for _, row in result.families.iterrows():
        n = int(ms.models.loc[ms.models["family"] == row["family"], "x"].nunique())
        if n < U_MIN_SIZES and set(U_SHAPES) & set(result.meta["shapes"]):
            out.append(note(
                "too_few_models", "info",
                f"family {row['family']!r} has {n} model sizes: U-shaped and inverted-U were not "
                f"tested (they need at least {U_MIN_SIZES}).", family=row["family"],
                n_models=n))
        mean_var = float(ms.models.loc[ms.models["family"] == row["family"], "se"].pow(2).mean())
        if row["tau2"] > mean_var:
            out.append(note(
                "model_level_noise", "info",
                f"family {row['family']!r}: models scatter around the curve more than their "
                f"example-level error explains (tau^2 = {row['tau2']:.3g} vs mean sampling "
                f"variance {mean_var:.3g}); intervals are widened accordingly.",
                family=row["family"], tau2=float(row["tau2"]), sampling_var=mean_var))
    if result.meta["flat_margin"] is None:
        out.append(note(
            "no_flat_margin", "info",
            "no equivalence margin is known for this metric, so 'flat' cannot be shown; pass "
            "flat_margin= in score units.", metric=result.meta.get("metric")))
    degenerate = result.meta.get("degenerate_families") or []
    if degenerate and len(degenerate) == result.meta["n_families"]:
        out.append(note(
            "degenerate_family", "warning",
            "every family scores the same on every example of every model (a floor or a "
            "ceiling): the data carry no information about the curve's shape; a 'flat' verdict "
            "here says the task is at its floor or ceiling at every size, not that scale does "
            "not matter.", families=[str(f) for f in degenerate]))
    for fam in result.meta.get("left_out_of_pooled") or []:
        out.append(note(
            "degenerate_family", "warning",
            f"family {fam!r} scores the same on every example of every model (a floor or a "
            "ceiling): it carries no information about a trend and is left out of the pooled "
            "verdict, which it would otherwise pin flat with a vanishing interval.",
            family=str(fam)))
    if result.meta["n_families"] == 1:
        out.append(note("single_family", "info",
                        "one family only: generality across model families is untested.",
                        family=str(result.families["family"].iloc[0])))
    return pd.DataFrame(out, columns=NOTE_COLUMNS)


def records(df: pd.DataFrame) -> list:
    """A table as a list of row dicts (how notes and ``meta['noise']`` carry tables)."""
    return df.to_dict(orient="records")


# ---------------------------------------------------------------------------- evidence notes
def _adjacent_reversals(adj, alpha) -> list:
    """Families whose significant neighbour steps change direction at least twice."""
    bad = []
    for fam, sub in adj.groupby("family", sort=False):
        signs = np.sign(sub.loc[sub["p_holm"] <= alpha, "diff"].to_numpy())
        if np.sum(signs[1:] != signs[:-1]) >= 2:   # up-down-up: one turn is a U, two zigzag
            bad.append(fam)
    return bad


def _note_small_eval_set(m) -> list:
    n = m["n_examples"]
    if not (n.notna().all() and (n < SMALL_EVAL_SET).any()):
        return []
    return [note(
        "small_eval_set", "info",
        f"{int((n < SMALL_EVAL_SET).sum())} of {len(m)} models were scored on fewer than "
        f"{SMALL_EVAL_SET} examples (min {int(n.min())}): normal-theory intervals under-cover "
        "on small item sets (Bowyer et al. 2025); treat p-values near alpha with care.",
        min_examples=int(n.min()), threshold=SMALL_EVAL_SET)]


def _note_imprecise_models(result, m) -> list:
    margin = result.meta.get("flat_margin")
    zq = stats.norm.ppf(0.5 + result.meta["confidence_level"] / 2)
    if not (margin and np.isfinite(margin)):
        return []
    wide = m[zq * m["se"] > margin]
    if not len(wide):
        return []
    return [note(
        "imprecise_models", "info",
        f"{len(wide)} of {len(m)} models have a {result.meta['confidence_level']:.0%} "
        f"interval wider than +-{margin:.3g} (the flat margin); largest SE "
        f"{m['se'].max():.3g} ({m.loc[m['se'].idxmax(), 'model']}). More examples "
        "narrow these; they do not remove model-level noise.",
        margin=float(margin), table=records(m[["family", "model", "x", "score", "se"]]))]


def notes_models(result, ms, adjacent, model_noise) -> list:
    """small_eval_set, imprecise_models, adjacent_reversals, spread_is_model_noise.

    ``adjacent`` is :func:`scalingfit.evidence.adjacent_differences`, ``model_noise``
    :func:`scalingfit.evidence.model_noise_shares`.
    """
    m = ms.models
    out = _note_small_eval_set(m) + _note_imprecise_models(result, m)
    bad = _adjacent_reversals(adjacent, result.meta["alpha"]) if len(adjacent) else []
    if bad:
        out.append(note(
            "adjacent_reversals", "warning",
            f"in {', '.join(map(repr, bad))} neighbouring models differ significantly, turning "
            f"direction at least twice ({_paired_words(result)}, Holm within family): scores "
            "jump up and down "
            "from one size to the next, which examples cannot explain -- model-level noise "
            "(single checkpoints), not a smooth trend.",
            families=bad, table=records(adjacent)))
    for r in model_noise:
        if r["share"] >= 0.5:
            label, share, tau2 = r["family"], r["share"], r["tau2"]
            curve_var, samp = r["curve_var"], r["sampling_var"]
            out.append(note(
                "spread_is_model_noise", "warning",
                f"family {label!r}: model-to-model noise explains {share:.0%} of the spread of "
                f"the scores (tau^2 = {tau2:.3g} vs curve variance {curve_var:.3g} and sampling "
                f"variance {samp:.3g}); the curve is mostly noise, not trend, whatever the "
                "number of examples.", family=label, share=share, tau2=tau2,
                curve_var=curve_var, sampling_var=samp))
    return out


def _paired_words(result) -> str:
    """How neighbouring models were compared: paired across examples for per-example input;
    aggregated input has independent errors per model (nothing to pair)."""
    return ("paired across examples" if result.meta.get("form") == "per_example"
            else "independent errors per model (aggregated input)")


def _largest_model_story(big) -> str:
    """The precedent that fits the change: Wei et al. (2022) saw inverse trends turn U-shaped
    when one larger model was added -- quoted only when the verdict at stake is inverse or U."""
    shapes = set(big["shape_full"]) | set(big["shape"])
    if shapes & {"inverse", "u_shaped"}:
        return ("Inverse trends have turned U-shaped when one larger model was added (Wei et "
                "al. 2022): ")
    return "With one model fewer the verdict is another: "


def notes_influence(infl) -> list:
    """verdict_depends_on_largest_model and influential_model, from the influence table."""
    out = []
    changed = infl[infl["changed"]]
    big = changed[changed["largest"]]
    if len(big):
        what = "; ".join(f"{r.label}: without {r.dropped} {r.shape_full} -> {r.shape}"
                         for r in big.itertuples())
        out.append(note(
            "verdict_depends_on_largest_model", "warning",
            f"dropping the largest model changes the verdict ({what}). "
            + _largest_model_story(big) + "the end of the curve rests on one checkpoint.",
            labels=sorted(set(big["label"])), table=records(infl)))
    other = changed[~changed["largest"]]
    if len(other):
        what = "; ".join(f"{r.label}: without {r.dropped} {r.shape_full} -> {r.shape}"
                         for r in other.itertuples())
        out.append(note(
            "influential_model", "warning",
            f"dropping a single model changes the verdict ({what}).",
            labels=sorted(set(other["label"])), table=records(infl)))
    return out


def notes_stability(stab) -> list:
    """unstable_shape, from :func:`scalingfit.evidence.shape_stability`."""
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


def notes_null(null, verdict, alpha) -> list:
    """null_calibration_disagrees, from :func:`scalingfit.evidence.null_calibrated_p`."""
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


def notes_power(pw) -> list:
    """underpowered, from :func:`scalingfit.evidence.power_analysis` of the main label."""
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


def notes_floor(fc) -> list:
    """near_chance, near_ceiling, chance_to_below_chance, from
    :func:`scalingfit.evidence.floor_ceiling`."""
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


def notes_metric(sens) -> list:
    """metric_disagreement, from :func:`scalingfit.evidence.metric_sensitivity` (or None)."""
    if sens is None:
        return []
    bad = {k: v for k, v in sens["labels"].items() if not v["agree"]}
    if not bad:
        return []
    sev = "warning" if sens["opposite"] or any(
        v["score"] in TREND_SHAPES and v["continuous"] in TREND_SHAPES for v in bad.values()) \
        else "info"
    what = "; ".join(f"{k}: score {v['score']}, {sens['column']} {v['continuous']}"
                     for k, v in bad.items())
    return [note("metric_disagreement", sev,
                 f"the continuous metric {sens['column']!r} gives a different shape ({what}); "
                 "discontinuous metrics can manufacture or hide shapes (Schaeffer et al. 2023).",
                 **sens)]


def _note_heterogeneity(pooled) -> list:
    if not (pooled["I2"] >= 0.5 and pooled["p_heterogeneity"] <= 0.1):
        return []
    return [note("heterogeneous_families", "warning",
                 f"family slopes differ more than their errors explain (Cochran Q = "
                 f"{pooled['Q']:.3g} on {int(pooled['df_q'])} df, p = "
                 f"{pooled['p_heterogeneity']:.3g}, I^2 = {pooled['I2']:.0%}); the pooled "
                 "slope averages different behaviours.", Q=float(pooled["Q"]),
                 I2=float(pooled["I2"]), p_value=float(pooled["p_heterogeneity"]))]


def notes_generality(gen, result) -> list:
    """heterogeneous_families, family_outside_prediction, pooled_verdict_depends_on_family,
    families_disagree, from :func:`scalingfit.evidence.generality_table`."""
    if len(result.families) < 2:
        return []
    fam = gen[gen["family"] != "pooled"]
    pooled = gen[gen["family"] == "pooled"]
    pooled = pooled.iloc[0] if len(pooled) else {"I2": 0.0, "p_heterogeneity": 1.0}
    out = _note_heterogeneity(pooled)
    outside = fam[fam["in_prediction_interval"] == False]  # noqa: E712
    if len(outside):
        out.append(note("family_outside_prediction", "warning",
                        f"the slope of {', '.join(map(repr, outside['family']))} lies outside "
                        "the prediction interval from the other families.",
                        families=list(outside["family"]), table=records(fam)))
    moved = fam[fam["loo_shape"] != result.shape]
    if len(moved):
        what = "; ".join(f"without {r.family}: {r.loo_shape}" for r in moved.itertuples())
        out.append(note("pooled_verdict_depends_on_family", "warning",
                        f"the pooled verdict {result.shape} changes when one family is left out "
                        f"({what}).", families=list(moved["family"])))
    dirs = set(fam["shape"]) & set(MONOTONE_SHAPES)
    if len(dirs) == 2:
        out.append(note("families_disagree", "warning",
                        "families show significant trends in opposite directions: "
                        + ", ".join(f"{r.family} {r.shape}" for r in fam.itertuples()
                                    if r.shape in dirs) + ".",
                        table=records(fam[["family", "shape", "effect", "estimate", "se"]])))
    return out
