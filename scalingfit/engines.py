"""What the reports say differently for each engine, in one place.

A bootstrap result quotes p-values and confidence intervals; a Bayesian result
(``meta['method'] == 'bayes'``) quotes posterior probabilities and credible intervals, since its
``p_*`` columns are posterior probabilities, not p-values. Every piece of wording, every column
list and every decision rule that differs between the two lives in an :class:`EngineView`,
chosen once per result by :func:`engine_view`; the assessment, the documents and the writers
ask the view and never branch on the method themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .multitest import adjust_p
from .options import BayesOptions
from .verdicts import SHAPES, U_SHAPES, claim_p_value
from .wording import finite, fmt, fmt_p, fmt_size, num, slope_words, x_words

__all__ = ["EngineView", "BootstrapView", "BayesView", "engine_view", "decision_threshold",
           "posterior_probability", "posterior_evidence", "family_claim_table",
           "bayes_family_table", "perf_sign", "claim_table_view"]


def perf_sign(result) -> int:
    """+1 when higher scores are better, -1 otherwise (the verdicts' performance scale)."""
    return 1 if result.meta.get("higher_is_better", True) else -1


def decision_threshold(result=None, *, meta=None) -> float:
    """Posterior probability a Bayesian verdict needs (``meta['bayes']['decision_threshold']``)."""
    meta = result.meta if meta is None else meta
    v = (meta.get("bayes") or {}).get("decision_threshold")
    return float(v) if finite(v) else BayesOptions.decision_threshold


def posterior_probability(row: dict, claim: str) -> float:
    """Posterior probability of ``claim`` in one row of a Bayesian result (``p_<claim>``)."""
    v = row.get(f"p_{claim}")
    return float(v) if finite(v) else float("nan")


def posterior_evidence(result, claim=None) -> tuple:
    """(shape, posterior probability) that a Bayesian result's summary row quotes.

    With a claim: the claim and its pooled ``p_<claim>``. Without: the verdict and its
    probability, or for an 'inconclusive' verdict the most probable shape and its probability.
    (None, NaN) when the pooled row carries no shape probabilities.
    """
    p = result.pooled
    shape = claim if claim is not None else result.shape
    if shape not in _PROBABILITY_SHAPES:
        probs = {s: posterior_probability(p, s) for s in _PROBABILITY_SHAPES}
        probs = {s: v for s, v in probs.items() if np.isfinite(v)}
        if not probs:
            return None, float("nan")
        shape = max(probs, key=probs.get)
    return shape, posterior_probability(p, shape)


#: shapes with a posterior probability column ``p_<shape>`` (every claimable shape)
_PROBABILITY_SHAPES = tuple(n for n, s in SHAPES.items() if s.claimable)


def _family_frame(fam: pd.DataFrame, **columns) -> pd.DataFrame:
    return pd.DataFrame({"family": fam["family"], "shape": fam["shape"], "slope": fam["slope"],
                         "ci_lower": fam["ci_lower"], "ci_upper": fam["ci_upper"], **columns})


def family_claim_table(result, claim: str) -> pd.DataFrame:
    """Per family: verdict, slope with interval, p of the claim
    (:func:`scalingfit.verdicts.claim_p_value`) and its Holm adjustment across families."""
    alpha = result.meta["alpha"]
    p = np.array([claim_p_value(r, claim, perf_sign(result), alpha)
                  for r in result.families.to_dict(orient="records")], dtype=float)
    holm = adjust_p(p, "holm")
    return _family_frame(result.families, p_claim=p, p_holm=holm,
                         supports=np.isfinite(p) & (holm <= alpha))


def bayes_family_table(result, claim: str) -> pd.DataFrame:
    """Per family of a Bayesian result: verdict, slope with credible interval, posterior
    probability of the claim, and whether it reaches the decision threshold."""
    fam = result.families
    pp = np.array([posterior_probability(r, claim) for r in fam.to_dict(orient="records")])
    return _family_frame(fam, p_posterior=pp,
                         supports=np.isfinite(pp) & (pp >= decision_threshold(result)))


def _tp_words(p) -> str:
    return (f"turning point {fmt_size(p.get('turning_point'))} "
            f"[{fmt_size(p.get('tp_ci_lower'))}, {fmt_size(p.get('tp_ci_upper'))}]")


_FAMILY_HEAD = [("family", "family", "str"), ("n_models", "models", "str"),
                ("shape", "verdict", "str"), ("slope", "slope / 10\u00d7", "num")]
_FAMILY_TAIL = [("total_change", "total change", "num"), ("tau2", "\u03c4\u00b2", "num"),
                ("turning_point", "turning point", "size"), ("best_curve", "best curve", "str")]
_CLAIM_HEAD = [("family", "family", "str"), ("shape", "verdict", "str"),
               ("slope", "slope / 10\u00d7", "num")]


class EngineView:
    """The engine-specific words, columns and rules of the reports (one subclass per method).

    Attributes
    ----------
    method : str
        ``meta['method']`` of the results it describes.
    interval : str
        'CI' or 'CrI', for column headers.
    family_columns, claim_columns : list of (key, header, kind)
        Columns of the per-family estimates and of the claim-per-family table.
    checks_note, refit_note : str
        Appended to the noise and coverage reasons (where the bootstrap engine did the work).
    """

    method = "bootstrap"
    interval = "CI"
    family_columns: list = []
    claim_columns: list = []
    checks_note = ""
    refit_note = ""
    #: key of ``result.meta`` that records the engine's own options (None: it has none)
    meta_key = None
    #: the column that marks a claim-per-family table of this engine
    claim_key = "p_holm"

    def threshold(self, result):
        """Posterior probability a verdict needs (None: the engine decides by p-values)."""
        return None

    def interval_words(self, meta) -> str:
        """What the pooled slope's interval is, after the slope in the strength light."""
        return ""

    # --------------------------------------------------------------- the verdict
    def verdict_sentence(self, result) -> str:
        raise NotImplementedError

    def verdict_evidence(self, result, claim):
        """(lead text, value, field, kind) of the claim's evidence after the verdict."""
        raise NotImplementedError

    # --------------------------------------------------------------- criteria
    def strength(self, result, claim, desc) -> tuple:
        """(reason text, shown, weak) of the trend-strength light for ``claim``."""
        raise NotImplementedError

    def family_claims(self, result, claim) -> pd.DataFrame:
        raise NotImplementedError

    def generality_reason(self, result, claim, k, n, same_dir) -> str:
        raise NotImplementedError

    def significance_row(self, result, claim) -> dict:
        """The one claim check a fit answers without its data (row of ``ClaimCheck.checks``)."""
        raise NotImplementedError

    def claim_caption(self, result) -> str:
        raise NotImplementedError

    # --------------------------------------------------------------- headers
    def subtitle(self, meta) -> str:
        raise NotImplementedError

    def settings_words(self, meta) -> str:
        """Sampler settings for the text report's header ('' for the bootstrap engine)."""
        return ""

    def columns_note(self, meta):
        """A line under the text report's table explaining its columns (None: none needed)."""
        return None

    def summary_row(self, result, claim, check) -> dict:
        """The evidence columns of one task in the multi-task summary."""
        raise NotImplementedError

    def options_record(self):
        """The option record of the engine's own options, recorded in ``meta[meta_key]``
        (None: the engine takes only the fit options)."""
        return None


class BootstrapView(EngineView):
    """The bootstrap engine: p-values, confidence intervals, Holm across families."""

    method = "bootstrap"
    interval = "CI"
    family_columns = [*_FAMILY_HEAD, ("ci_lower", "CI lower", "num"),
                      ("ci_upper", "CI upper", "num"), ("p_value", "p (slope)", "p"),
                      ("p_gate", "p (gate)", "p"), *_FAMILY_TAIL]
    claim_columns = [*_CLAIM_HEAD, ("ci_lower", "CI lower", "num"),
                     ("ci_upper", "CI upper", "num"), ("p_claim", "p (claim)", "p"),
                     ("p_holm", "p (Holm)", "p"), ("supports", "supports claim", "str")]

    def claim_p(self, result, claim) -> float:
        return claim_p_value(result.pooled, claim, perf_sign(result), result.meta["alpha"])

    def verdict_sentence(self, result) -> str:
        p, kind = result.pooled, SHAPES[result.shape].kind
        core = SHAPES[result.shape].sentence
        if kind == "monotone":
            core += (f": slope {fmt(p['slope'])} {slope_words(result)} "
                     f"[{fmt(p['ci_lower'])}, {fmt(p['ci_upper'])}], p = {fmt(p['p_value'])}")
        elif kind == "u":
            core += (f": two-lines p = {fmt(p[SHAPES[result.shape].p_column])}, turning point "
                     f"near {fmt(p['turning_point'])} {x_words(result.meta)} "
                     f"[{fmt(p['tp_ci_lower'])}, {fmt(p['tp_ci_upper'])}]")
        elif kind == "flat":
            core += (f": equivalence p = {fmt(p['p_flat'])} at margin "
                     f"±{fmt(result.meta['flat_margin'])}")
        else:
            core += f": gate p = {fmt(p['p_gate'])}"
        return core + "."

    def verdict_evidence(self, result, claim):
        return (f" p of the {claim} claim (gate and shape test together): ",
                self.claim_p(result, claim), "claim.p_value", "p")

    def strength(self, result, claim, desc):
        pc = self.claim_p(result, claim)
        kind = SHAPES[claim].kind
        if kind == "u":
            desc = f"two-lines p = {fmt_p(pc)}; " + _tp_words(result.pooled)
        elif kind == "flat":
            desc = f"equivalence p = {fmt_p(pc)}; " + desc
        else:
            desc += f", p of the claim = {fmt_p(pc)}"
        return desc, finite(pc) and pc <= result.meta["alpha"], not finite(pc) or pc >= 0.5

    def family_claims(self, result, claim):
        return family_claim_table(result, claim)

    def generality_reason(self, result, claim, k, n, same_dir):
        return (f"{k} of {n} families show {claim} after Holm correction; {same_dir} of {n} "
                "point in the claimed direction")

    def significance_row(self, result, claim):
        pc = self.claim_p(result, claim)
        return {"check": "significance", "passed": bool(finite(pc) and pc <= result.meta["alpha"]
                                                        and result.shape == claim),
                "required": True,
                "detail": f"verdict {result.shape}; p of the claim = {fmt_p(pc)} with the "
                          "model as the unit of inference", "value": pc}

    def claim_caption(self, result):
        return "Claim per family (p of the claim, Holm-adjusted across families)"

    def subtitle(self, meta):
        return (f"{meta['method']} with {meta['n_boot']} replicates, "
                f"{meta['confidence_level']:.0%} intervals")

    def summary_row(self, result, claim, check):
        checked = check is not None and finite(getattr(check, "p_value", None))
        p = (float(check.p_value) if checked else self.claim_p(result, claim) if claim
             else result.pooled["p_gate"])
        return {"p": p}


class BayesView(EngineView):
    """The Bayesian engine: posterior probabilities against a decision threshold, credible
    intervals; its claim checks are those of the bootstrap engine (``check_claim``)."""

    method = "bayes"
    interval = "CrI"
    #: p_value is the two-sided posterior tail 2 min(P(slope > 0), P(slope < 0)), labelled as
    #: such; p_gate is empty (dropped); the posterior shape probabilities are added
    family_columns = [*_FAMILY_HEAD, ("ci_lower", "CrI lower", "num"),
                      ("ci_upper", "CrI upper", "num"),
                      ("p_value", "posterior tail (slope), not a p-value", "p"),
                      *((f"p_{s}", f"P({s})", "num") for s in _PROBABILITY_SHAPES),
                      *_FAMILY_TAIL]
    claim_columns = [*_CLAIM_HEAD, ("ci_lower", "CrI lower", "num"),
                     ("ci_upper", "CrI upper", "num"),
                     ("p_posterior", "posterior P(claim)", "num"),
                     ("supports", "supports claim", "str")]
    checks_note = "; scalingfit.claims checks with the bootstrap engine"
    refit_note = " (levels refitted with the bootstrap engine)"
    meta_key = "bayes"
    claim_key = "p_posterior"

    def threshold(self, result):
        return decision_threshold(result)

    def interval_words(self, meta):
        return f", {meta['confidence_level']:.0%} credible interval"

    def verdict_sentence(self, result) -> str:
        """The verdict with posterior probabilities (pooled, every family, a new family)."""
        p = result.pooled
        level = fmt(100 * result.meta["confidence_level"])
        probs = {s: p.get(f"p_{s}") for s in _PROBABILITY_SHAPES}
        best = max(probs, key=lambda s: -1.0 if not np.isfinite(num(probs[s])) else probs[s])
        shown = result.shape if result.shape in probs else best
        core = (f"{SHAPES[result.shape].sentence}: posterior P({shown}) = {fmt(probs[shown])}; "
                f"slope {fmt(p['slope'])} {slope_words(result)}, {level}% credible interval "
                f"[{fmt(p['ci_lower'])}, {fmt(p['ci_upper'])}]")
        every = p.get(f"p_all_{shown}")
        if np.isfinite(num(every)):
            core += f"; P(every family shows {shown}) = {fmt(every)}"
        new = p.get(f"p_new_{shown}")
        if np.isfinite(num(new)):
            core += f"; P(a new family shows {shown}) = {fmt(new)}"
        return core + "."

    def verdict_evidence(self, result, claim):
        # no p-value of the claim: its posterior probability
        return (f" Posterior probability of the {claim} claim: ",
                posterior_probability(result.pooled, claim), f"pooled.p_{claim}", "num")

    def strength(self, result, claim, desc):
        # posterior probabilities are not p-values: judge the claim by P(claim) >= threshold
        pp, thr = posterior_probability(result.pooled, claim), decision_threshold(result)
        head = f"posterior P({claim}) = {fmt(pp)} (a verdict needs >= {fmt(thr)}); "
        desc = head + (_tp_words(result.pooled) if claim in U_SHAPES else desc)
        return desc, finite(pp) and pp >= thr, not finite(pp) or pp < 0.5

    def family_claims(self, result, claim):
        return bayes_family_table(result, claim)

    def generality_reason(self, result, claim, k, n, same_dir):
        reason = (f"{k} of {n} families have posterior P({claim}) >= "
                  f"{fmt(decision_threshold(result))}; {same_dir} of {n} point in the claimed "
                  "direction")
        every = result.pooled.get(f"p_all_{claim}")
        if finite(every):
            reason += f"; P(every family shows {claim}, jointly) = {fmt(float(every))}"
        new = result.pooled.get(f"p_new_{claim}")
        if finite(new):
            reason += f"; P(a new family shows {claim}) = {fmt(float(new))}"
        return reason

    def significance_row(self, result, claim):
        pp, thr = posterior_probability(result.pooled, claim), decision_threshold(result)
        return {"check": "significance", "passed": bool(finite(pp) and pp >= thr
                                                        and result.shape == claim),
                "required": True,
                "detail": f"verdict {result.shape}; posterior P({claim}) = {fmt(pp)} "
                          f"(threshold {fmt(thr)})", "value": pp}

    def claim_caption(self, result):
        return ("Claim per family (posterior probability of the claim; a family supports it at "
                f">= {fmt(decision_threshold(result))})")

    def subtitle(self, meta):
        b = meta.get("bayes") or {}
        return (f"Bayesian {str(b.get('model', 'model_level')).replace('_', '-')} model, "
                f"{b.get('chains')} chains \u00d7 {b.get('draws')} draws, "
                f"{meta['confidence_level']:.0%} credible intervals; verdicts need posterior "
                f"probability \u2265 {fmt(decision_threshold(meta=meta))}")

    def settings_words(self, meta):
        """' (model_level model, 2 chains x 200 draws, 200 warm-up, target_accept 0.95)'."""
        b = meta.get("bayes") or {}
        if not b:
            return ""
        return (f" ({b.get('model')} model, {b.get('chains')} chains x {b.get('draws')} draws, "
                f"{b.get('tune')} warm-up, target_accept {fmt(b.get('target_accept'))}"
                + (", LOO comparison" if b.get("compare") else "") + ")")

    def columns_note(self, meta):
        return ("(Bayesian engine: p_value is the two-sided posterior tail probability of the "
                "slope, 2 min(P(slope > 0), P(slope < 0)), not a frequentist p-value; "
                "p_<shape> are posterior shape probabilities, and a verdict needs one >= "
                f"{fmt((meta.get('bayes') or {}).get('decision_threshold', 0.95))}.)")

    def summary_row(self, result, claim, check):
        """A Bayesian result has no p-value of its own: ``p`` is ``check_claim``'s when that
        ran, else NaN; ``p_posterior`` / ``posterior_of`` quote :func:`posterior_evidence` (a
        posterior probability is not a p-value and is never multiplicity-adjusted)."""
        checked = check is not None and finite(getattr(check, "p_value", None))
        shape, prob = posterior_evidence(result, claim)
        return {"p": float(check.p_value) if checked else np.nan, "p_posterior": prob,
                "posterior_of": shape}

    def options_record(self):
        return BayesOptions


_VIEWS = {v.method: v() for v in (BootstrapView, BayesView)}


def claim_table_view(table):
    """The view whose claim-per-family columns ``table`` carries (None: neither engine's)."""
    if table is None or not len(table):
        return None
    return next((v for v in _VIEWS.values() if v.claim_key in table), None)


def engine_view(result=None, *, meta=None) -> EngineView:
    """The view of ``result``'s engine (``meta['method']``; the bootstrap engine by default)."""
    meta = result.meta if meta is None else meta
    return _VIEWS.get(meta.get("method"), _VIEWS["bootstrap"])
