"""``check_claim``: does a claimed scaling trend survive noise?

A claim ("inverse scaling on this task") survives when every required check passes:

1. **significance** -- the gated verdict of :func:`scalingfit.fit_trend` is the claimed shape, with
   the *model* as the unit of inference (random-effects meta-regression, Knapp-Hartung t / F);
2. **null_calibration** -- a parametric bootstrap under the best-fitting curve *without* the
   claimed shape (flat for monotone claims, a straight line for U-type claims) also rejects;
3. **influence** -- the verdict stays the claim when any single model is dropped (the largest
   one in particular: Wei et al. 2022);
4. **stability** -- at least ``min_stability`` of the replicates (examples and models resampled)
   reach the claimed verdict;
5. **generality** (several families) -- the pooled verdict survives leaving out each family and
   no family shows the opposite shape.

Power, floor / ceiling near chance and metric sensitivity are reported alongside (``required``
is False): they explain a failure, they do not cause one. The numbers come from
:mod:`scalingfit.evidence`; :func:`claim_checks` builds the table of checks from them, for
:func:`check_claim` and for the report's assessment alike.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .bayes import fit_bayes
from .bootstrap import as_generator
from .data import load_results, model_scores
from .evidence import (NoiseEvidence, claim_p, evidence_for_claim, generality_table,
                       label_data)
from .exceptions import DataValidationError, OptionError
from .fit import fit_trend, run_bootstrap
from .options import BayesOptions, FitOptions, LoadOptions, split_options
from .results import jsonable
from .verdicts import CLAIMS, SHAPES, TREND_SHAPES, U_MIN_SIZES, check_claim_name

__all__ = ["check_claim", "claim_checks", "claim_p_of", "ClaimCheck", "CLAIMS", "CHECK_COLUMNS"]

#: columns of the checks table
CHECK_COLUMNS = ["check", "passed", "required", "detail", "value"]


def _fmt(v, digits=3):
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return "n/a"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}g}"
    return str(v)


@dataclass(frozen=True)
class ClaimCheck:
    """Outcome of :func:`check_claim`.

    Attributes
    ----------
    claim : str
    survives : bool
        True when every required check passed.
    p_value : float
        The larger of the model-level p-value of the claim and its null-calibrated p-value
        (both from the bootstrap engine, also for ``method='bayes'``).
    checks : pandas.DataFrame
        One row per check: ``check, passed, required, detail, value``. With
        ``method='bayes'`` the ``significance`` row is Bayesian (passed when the posterior
        verdict is the claim; value: the posterior probability of the claim) and the other
        rows are those of the bootstrap engine's fit of the same data and seed.
    result : TrendResult
        The fit the checks were run on (with claim-specific notes appended); the Bayesian fit
        for ``method='bayes'``.
    alpha : float
    meta : dict
        Seed, replicate counts and options.
    """

    claim: str
    survives: bool
    p_value: float
    checks: pd.DataFrame
    result: object = field(repr=False)
    alpha: float = 0.05
    meta: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        failed = [c for c, p, r in zip(self.checks["check"], self.checks["passed"],
                                       self.checks["required"]) if r and not p]
        return (f"<ClaimCheck claim={self.claim!r} survives={self.survives} "
                f"p={self.p_value:.3g} failed={failed}>")

    def summary(self) -> pd.DataFrame:
        """The checks table (a copy)."""
        return self.checks.copy()

    def to_dict(self) -> dict:
        """Plain JSON types: claim, survives, p_value, alpha, checks, meta and the result."""
        return jsonable({"claim": self.claim, "survives": self.survives,
                         "p_value": self.p_value, "alpha": self.alpha, "checks": self.checks,
                         "reasons": self.reasons(), "meta": self.meta,
                         "result": self.result.to_dict()})

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), indent=kwargs.pop("indent", 2), **kwargs)

    def reasons(self) -> list[str]:
        """Plain-language reasons: the failed required checks, or why the claim holds."""
        rows = self.checks[self.checks["required"]]
        bad = rows[~rows["passed"].astype(bool)]
        if len(bad):
            return [f"{r.check}: {r.detail}" for r in bad.itertuples()]
        return [f"{r.check}: {r.detail}" for r in rows.itertuples()]

    def report(self, format: str = "text") -> str:
        """Explain in plain words why the claim does or does not survive.

        Parameters
        ----------
        format : {'text', 'markdown'}
        """
        if format not in ("text", "markdown"):
            raise OptionError(f"format must be 'text' or 'markdown'; got {format!r}")
        r = self.result
        m = r.meta
        verdict = "SURVIVES" if self.survives else "DOES NOT SURVIVE"
        head = (f"Claim: {self.claim} ({SHAPES[self.claim].summary}) -- {verdict} "
                f"(p = {_fmt(self.p_value)}, alpha = {self.alpha:g})")
        data = (f"task {m.get('task') or '(unnamed)'}, metric {m.get('metric') or 'score'}: "
                f"{m['n_families']} families, {m['n_models']} models, "
                f"{m.get('n_examples') or 'aggregated'} examples; fitted verdict {r.shape}; "
                f"seed {self.meta.get('seed')}")
        why = ("Why it does not survive:" if not self.survives else "Why it survives:")
        reasons = self.reasons()
        notes = [f"[{i + 1}] ({n.severity}) {n.message}"
                 for i, n in enumerate(r.diagnostics.itertuples())]
        if format == "markdown":
            lines = [f"## {head}", "", data, "", f"**{why}**", ""]
            lines += [f"- {x}" for x in reasons]
            lines += ["", "| check | result | required | detail |", "|---|---|---|---|"]
            for c in self.checks.itertuples():
                res = "pass" if c.passed else "fail"
                lines.append(f"| {c.check} | {res} | {'yes' if c.required else 'no'} | "
                             f"{str(c.detail).replace('|', '/')} |")
            if notes:
                lines += ["", "**Notes**", ""] + [f"{n}  " for n in notes]
            return "\n".join(lines)
        lines = [head, data, "", why] + [f"  - {x}" for x in reasons] + ["", "Checks:"]
        for c in self.checks.itertuples():
            tag = ("pass" if c.passed else "FAIL") if c.required else (
                "ok" if c.passed else "note")
            lines.append(f"  [{tag:4s}] {c.check}: {c.detail}")
        if notes:
            lines += ["", "Notes:"] + notes
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return (f"<p><b>{self.claim}</b>: {'survives' if self.survives else 'does not survive'}"
                f" (p = {_fmt(self.p_value)})</p>"
                + self.checks.to_html(index=False))


def _row(check, passed, required, detail, value=np.nan) -> dict:
    return {"check": check, "passed": bool(passed), "required": bool(required),
            "detail": detail, "value": value}


def _significance_check(result, d, claim, p_claim, alpha):
    sig = result.shape == claim and p_claim <= alpha
    return _row("significance", sig, True,
                f"the fitted verdict is {result.shape}; p of {claim} = "
                f"{_fmt(p_claim)} with the {len(d.y)} models as the unit of inference "
                f"(gate and shape test, Knapp-Hartung, {d.k - d.n_groups - 1} df).", p_claim)


def _null_check(null, alpha):
    return _row("null_calibration", null["p_value"] <= alpha, True,
                f"parametric bootstrap under the {null['null']} null with the estimated "
                f"model-level and example-level noise: p = {_fmt(null['p_value'])} "
                f"({null['n_sim']} simulated datasets).", null["p_value"])


def _stability_check(ev, claim, min_stability):
    st = ev.stability[ev.main_label]
    share = st["counts"].get(claim, 0) / st["n"]
    return _row("stability", share >= min_stability, True,
                f"{share:.1%} of {st['n']} replicates (new examples by paired bootstrap and new "
                f"model-level deviations from the fitted curve) give {claim}; needs "
                f">= {min_stability:.0%}.", share)


def _influence_check(ev, claim, n_models):
    infl = pd.DataFrame(ev.influence)
    if infl.empty:
        return _row("influence", False, True, "no leave-one-model-out refits available.")
    off = infl[infl["shape"] != claim]
    full = str(infl["shape_full"].iloc[0])
    if full != claim:
        hits = len(infl) - len(off)
        return _row("influence", False, True,
                    f"the verdict with all models is {full}, not {claim}; dropping one model "
                    f"gives {claim} in {hits} of {len(infl)} cases.", int(len(off)))
    if not len(off):
        return _row("influence", True, True,
                    f"the verdict stays {claim} whichever single model of the {n_models} is "
                    "dropped (the largest included).", 0)
    big = off[off["largest"].astype(bool)]
    parts = [f"without {r.dropped}{' (largest)' if r.largest else ''}: {r.shape}"
             for r in pd.concat([big, off[~off["largest"].astype(bool)]]).itertuples()]
    shown = "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")
    return _row("influence", False, True,
                f"dropping {len(off)} of {len(infl)} single models changes the verdict from "
                f"{claim} ({shown}).", int(len(off)))


def _generality_check(gen, claim):
    """Fails when a family contradicts the claim: it shows the opposite shape, its effect lies
    outside the prediction interval from the other families, or leaving it out turns the pooled
    verdict into another trend. A pooled verdict that merely becomes inconclusive without one
    family (fewer models, less power) is reported, not failed."""
    fams = gen[gen["family"] != "pooled"]
    n = len(fams)
    if n < 2:
        return _row("generality", False, False,
                    "one family only: generality across model families is untested.", 1)
    shown = int(fams["shows_claim"].sum())
    loo = fams["loo_shape"].astype(str)
    other_trend = fams[loo.isin(list(TREND_SHAPES)) & (loo != claim)]
    weaker = fams[~loo.isin([claim]) & ~fams.index.isin(other_trend.index)]
    opp = SHAPES[claim].opposite
    opposite = fams[fams["shape"] == opp] if opp else fams.iloc[:0]
    outside = fams[fams["in_prediction_interval"] == False]  # noqa: E712
    detail = f"{shown} of {n} families show {claim} on their own (Holm across families)"
    problems = []
    if len(opposite):
        problems.append(", ".join(opposite["family"]) + f" shows {opp}")
    if len(outside):
        problems.append(", ".join(outside["family"]) + " lies outside the prediction interval "
                        "from the other families")
    if len(other_trend):
        problems.append("without " + ", ".join(f"{r.family} the pooled verdict is {r.loo_shape}"
                                               for r in other_trend.itertuples()))
    passed = not problems
    if len(weaker):
        problems.append("without " + ", ".join(f"{r.family} it is {r.loo_shape}"
                                               for r in weaker.itertuples())
                        + " (not counted: fewer models)")
    detail += ("; " + "; ".join(problems)) if problems else (
        "; every family is inside the others' prediction interval and the pooled verdict holds "
        "without each")
    return _row("generality", passed, True, detail + ".", shown)


def _u_power_check(pw, claim):
    """Power row of a U-type claim: the simulated power of the two-lines verdict itself."""
    need = pw["examples_needed_u_verdict"]
    ex = (f"{need} examples per model would give {pw['target']:.0%}" if need is not None
          else "no number of examples up to 10,000x the current one reaches "
               f"{pw['target']:.0%} (model-level noise dominates)")
    return _row("power", pw["power_u_verdict"] >= pw["target"], False,
                f"power {pw['power_u_verdict']:.0%} to recover this {claim} curve (curvature "
                f"{_fmt(pw['effect'])}) with the two-lines test, by simulation; {ex} (the "
                f"curvature coefficient alone would have {pw['power']:.0%} power: a U needs "
                "both arms significant).", float(pw["power_u_verdict"]))


def _power_check(pw, claim):
    what = "slope" if pw["kind"] == "slope" else "curvature"
    if not np.isfinite(pw.get("power", np.nan)):
        return _row("power", False, False, "too few models to compute power.")
    if pw.get("power_u_verdict") is not None:
        return _u_power_check(pw, claim)
    need = pw["examples_needed"]
    ex = (f"{need} examples per model would give {pw['target']:.0%}" if need is not None
          else "examples needed unknown (no example counts)" if pw["n_examples"] is None
          else "no number of examples reaches 80% (model-level noise dominates)")
    mods = pw.get("models_needed")
    mod = f"; or {mods} models per family" if mods else ""
    return _row("power", pw["power"] >= pw["target"], False,
                f"power {pw['power']:.0%} to detect a {what} of {_fmt(pw['effect'])} "
                f"(minimum detectable now: slope {_fmt(pw['mde_slope'])}, curvature "
                f"{_fmt(pw['mde_curvature'])}); {ex}{mod}.", float(pw["power"]))


def _floor_check(fc):
    k = fc["n_models"]
    near, ceil = len(fc["near_chance"]), len(fc["near_ceiling"])
    bits = []
    if fc["chance"] is not None:
        bits.append(f"{near} of {k} models within noise of chance")
    if ceil:
        bits.append(f"{ceil} of {k} within noise of 100%")
    if fc["chance_to_below_chance"]:
        bits.append("from chance to below chance in " + ", ".join(fc["chance_to_below_chance"]))
    passed = near < k and ceil < k
    return _row("floor_ceiling", passed, False, "; ".join(bits) + ".", near)


def _informative_check(degenerate, n_families):
    """Required: some family's scores vary. A family at a floor or ceiling (one score on every
    example of every model) says nothing about the curve; if every family is, no claim can be
    shown -- 'flat' least of all (the task is too hard or too easy at every size)."""
    passed = len(degenerate) < n_families
    detail = (f"{', '.join(map(str, degenerate))} score{'s' if len(degenerate) == 1 else ''} "
              "the same on every example of every model (a floor or ceiling)"
              + ("; left out of the pooled verdict." if passed else
                 ": the data carry no information about the shape."))
    return _row("informative", passed, True, detail, len(degenerate))


def _metric_check(sens, main):
    lab = sens["labels"].get(main)
    if lab is None:
        return None
    agree = lab["continuous"] == lab["score"]
    return _row("metric_sensitivity", agree, False,
                f"on the continuous metric {sens['column']!r} the verdict is "
                f"{lab['continuous']} (score: {lab['score']}).", float(agree))


def _bayes_significance(bayes, claim, p_boot):
    """The significance row of a Bayesian check: the verdict needs posterior probability of the
    claim >= decision_threshold; the bootstrap engine's p of the claim is quoted beside it."""
    b, pooled = bayes.meta["bayes"], bayes.pooled
    p_post = float(pooled.get(f"p_{claim}", np.nan))
    detail = (f"the Bayesian verdict is {bayes.shape}; posterior P({claim}) = {_fmt(p_post)} "
              f"(a verdict needs >= {b['decision_threshold']}, {b['model']} model)")
    if bayes.meta["n_families"] > 1:
        detail += (f"; P(every family {claim}) = "
                   f"{_fmt(float(pooled.get(f'p_all_{claim}', np.nan)))}, P(a new family "
                   f"{claim}) = {_fmt(float(pooled.get(f'p_new_{claim}', np.nan)))}")
    detail += (f". The other checks use the bootstrap engine's fit of the same data (its p of "
               f"{claim}: {_fmt(p_boot)}).")
    return _row("significance", bayes.shape == claim, True, detail, p_post)


def _claim_evidence(ev, claim):
    """Null calibration and power of ``claim`` from the evidence record."""
    null, pw = ev.claim_null, ev.claim_power
    if (null is None or null.get("claim") != claim) and ev.claim == claim:
        null, pw = ev.null, ev.power[ev.main_label]
    if null is None or pw is None or null.get("claim") != claim:
        raise DataValidationError(
            f"the noise evidence holds no null calibration and power of {claim!r} (it tests "
            f"{ev.claim!r}); build it with scalingfit.evidence.evidence_for_claim.")
    return null, pw


def claim_p_of(result, claim, alpha) -> float:
    """The bootstrap engine's p-value of ``claim`` for the pooled verdict of ``result``."""
    sign = 1 if result.meta["higher_is_better"] else -1
    return claim_p(result.pooled, claim, sign, alpha)


def claim_checks(result, ms, claim, evidence=None, *, alpha=None, min_stability: float = 0.8,
                 bayes=None) -> pd.DataFrame:
    """The table of checks of ``claim`` on a fit and its evidence (see the module docstring).

    Parameters
    ----------
    result : TrendResult
        The bootstrap engine's fit, with its evidence
        (:func:`scalingfit.evidence.evidence_for_claim` adds the claim's null calibration and
        power).
    ms : ModelScores
        The model scores of the fit (generality re-runs the pooled verdict without each family).
    claim : str
    evidence : NoiseEvidence or mapping, optional
        The evidence (default ``result.meta['noise']``).
    alpha : float, optional
        Level of the tests (default ``result.meta['alpha']``).
    min_stability : float
        Share of replicates that must reproduce the claim.
    bayes : TrendResult, optional
        A Bayesian fit of the same data: the significance row is then its posterior verdict.

    Returns
    -------
    pandas.DataFrame
        One row per check, columns :data:`CHECK_COLUMNS`: significance, null_calibration,
        influence, stability, generality, power, and when known floor_ceiling and
        metric_sensitivity.
    """
    ev = NoiseEvidence.from_mapping(result.meta["noise"] if evidence is None else evidence)
    alpha = result.meta["alpha"] if alpha is None else alpha
    null, pw = _claim_evidence(ev, claim)
    d = label_data(result, ms, ev.main_label)
    p_claim = claim_p_of(result, claim, alpha)
    rows = [_significance_check(result, d, claim, p_claim, alpha) if bayes is None
            else _bayes_significance(bayes, claim, p_claim),
            _null_check(null, alpha),
            _influence_check(ev, claim, len(d.y)),
            _stability_check(ev, claim, min_stability),
            _generality_check(generality_table(result, ms, claim), claim),
            _power_check(pw, claim)]
    degenerate = result.meta.get("degenerate_families") or []
    if degenerate:
        rows.append(_informative_check(degenerate, result.meta["n_families"]))
    fc, sens = ev.floor_ceiling, ev.metric_sensitivity
    if fc["chance"] is not None or fc["near_ceiling"]:
        rows.append(_floor_check(fc))
    if sens is not None:
        mrow = _metric_check(sens, ev.main_label)
        if mrow is not None:
            rows.append(mrow)
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


# ---------------------------------------------------------------------------- check_claim
def _validate(results, claim, alpha, min_stability, fit_kwargs, effect=None):
    check_claim_name(claim)
    if effect is not None and not (isinstance(effect, numbers.Real) and not isinstance(
            effect, bool) and math.isfinite(effect) and effect != 0):
        raise OptionError(f"effect must be a finite, non-zero number (a slope per decade, or a "
                          f"curvature for U-type claims) or None for the observed one; got "
                          f"{effect!r}.")
    if not 0 < alpha < 1:
        raise DataValidationError(f"alpha must lie in (0, 1); got {alpha!r}.")
    if not 0 < min_stability <= 1:
        raise DataValidationError(f"min_stability must lie in (0, 1]; got {min_stability!r}.")
    if "confidence_level" in fit_kwargs:
        raise DataValidationError(
            "check_claim takes alpha, not confidence_level (the fit uses 1 - alpha); got "
            f"confidence_level={fit_kwargs['confidence_level']!r}.")
    if not isinstance(results, (pd.DataFrame, str)) and not hasattr(results, "__fspath__"):
        raise DataValidationError(
            f"check_claim needs the results table (it refits without each model and resamples "
            f"examples); got {type(results).__name__}. Pass the DataFrame or file you fitted.")


def _load(results, claim, fit_kwargs):
    """The validated table, its model scores, and the fit options with the scale direction."""
    load_kw = {k: fit_kwargs[k] for k in LoadOptions.names() if k in fit_kwargs}
    fit_kwargs = {k: v for k, v in fit_kwargs.items() if k not in load_kw}
    table = load_results(results, **load_kw)
    fit_kwargs["higher_is_better"] = table.attrs["scalingfit"]["higher_is_better"]
    ms = model_scores(table, x=fit_kwargs.get("x", "n_params"))
    if claim in SHAPES and SHAPES[claim].kind == "u":
        sizes = ms.models.groupby("family", sort=False)["x"].nunique()
        few = sizes[sizes < U_MIN_SIZES]
        if len(few):
            raise DataValidationError(
                f"claim {claim!r} needs at least {U_MIN_SIZES} model sizes per family (two lines "
                f"of at least 2 models each); family {few.index[0]!r} has {int(few.iloc[0])}. "
                "Add models, or drop the family.")
    return table, ms, fit_kwargs


def _fit(table, claim, *, n_boot, alpha, rng, fit_kwargs):
    """The bootstrap engine's fit (and the Bayesian fit for ``method='bayes'``)."""
    bayes = None
    if fit_kwargs.get("method") == "bayes":
        # the checks are frequentist: they run on the bootstrap engine's fit, the one the
        # Bayesian fit starts from (fitted once); only the significance row is Bayesian
        given = {k: v for k, v in fit_kwargs.items() if k != "method"}
        load_kw, fit_kw, bayes_kw = split_options(given, LoadOptions, FitOptions, BayesOptions,
                                                  where="check_claim")
        fit_gen, fit_seed = as_generator(rng)
        _, ms_fit, result = run_bootstrap(
            table, fit_gen, fit_seed, load=LoadOptions(**load_kw),
            options=FitOptions(n_boot=n_boot, confidence_level=1 - alpha, **fit_kw))
        bayes = fit_bayes(table, ms_fit, result, rng=fit_gen, options=BayesOptions(**bayes_kw))
    else:
        result = fit_trend(table, n_boot=n_boot, confidence_level=1 - alpha, rng=rng,
                           **fit_kwargs)
    if claim not in result.meta["shapes"]:
        raise DataValidationError(
            f"claim {claim!r} is not among the shapes considered {result.meta['shapes']}; add "
            "it to shapes=.")
    return result, bayes


def check_claim(results, claim: str = "inverse", *, alpha: float = 0.05, n_boot: int = 2000,
                rng=None, effect: float | None = None, chance: float | None = None,
                min_stability: float = 0.8, **fit_kwargs) -> ClaimCheck:
    """Does a claimed shape (inverse scaling, U-shape, ...) survive noise?

    Parameters
    ----------
    results : pandas.DataFrame or path-like
        Per-example or aggregated results (see :func:`scalingfit.load_results`); the checks
        refit the data, so a fitted TrendResult is not enough.
    claim : {'inverse', 'positive', 'u_shaped', 'inverted_u', 'flat'}
    alpha : float
        Level of every test (the fit uses ``confidence_level = 1 - alpha``).
    n_boot : int
        Bootstrap replicates of the fit; stability uses ``min(n_boot, 400)`` and the null
        calibration ``min(n_boot, 1000)`` (recorded in ``meta``).
    rng : None, int or numpy.random.Generator
    effect : float, optional
        Effect for the power check (slope per decade, or quadratic coefficient per decade^2 for
        U-type claims), in score units; default the observed one.
    chance : float, optional
        Chance-level score for the floor check (default: a ``chance`` or ``n_classes`` column).
    min_stability : float
        Share of replicates that must reproduce the claim.
    **fit_kwargs
        Passed to :func:`scalingfit.fit_trend` (``x``, ``method``, ``flat_margin``, ``shapes``,
        ``task``, ``metric``, ``higher_is_better``).

    Returns
    -------
    ClaimCheck

    Raises
    ------
    DataValidationError
        Unknown claim, bad ``alpha``, a TrendResult instead of data, or the fit's own errors.

    Notes
    -----
    The steps: validate the options, load the table, fit (:func:`scalingfit.fit_trend`, or the
    bootstrap stage and :func:`scalingfit.bayes.fit_bayes`), add the claim's evidence
    (:func:`scalingfit.evidence.evidence_for_claim`), tabulate the checks
    (:func:`claim_checks`).

    Examples
    --------
    >>> from scalingfit.claims import check_claim
    >>> check = check_claim("data/synthetic_families.csv", "inverse", rng=0)  # doctest: +SKIP
    >>> check.survives  # doctest: +SKIP
    True
    """
    _validate(results, claim, alpha, min_stability, fit_kwargs, effect)
    table, ms, fit_kwargs = _load(results, claim, fit_kwargs)
    generator, seed = as_generator(rng)
    fit_rng = generator if seed == "generator" else seed
    extra_rng = generator if seed == "generator" else generator.spawn(1)[0]
    fitted, bayes = _fit(table, claim, n_boot=n_boot, alpha=alpha, rng=fit_rng,
                         fit_kwargs=fit_kwargs)
    result = evidence_for_claim(fitted, ms, claim, rng=extra_rng, alpha=alpha, table=table,
                                chance=chance, effect=effect)
    checks = claim_checks(result, ms, claim, alpha=alpha, min_stability=min_stability,
                          bayes=bayes)
    ev = result.meta["noise"]
    survives = bool(checks.loc[checks["required"], "passed"].all())
    p_value = float(max(claim_p_of(result, claim, alpha), ev.claim_null["p_value"]))
    meta = {"seed": result.meta.get("seed"), "n_boot": int(n_boot), "alpha": alpha,
            "min_stability": min_stability, "n_stability": ev.n_stability,
            "n_null": ev.claim_null["n_sim"], "main_label": ev.main_label}
    if bayes is not None:               # the Bayesian result, with the checks' diagnostics
        meta["method"] = "bayes"
        added = result.diagnostics.iloc[len(fitted.diagnostics):]
        result = bayes.replace(meta={**bayes.meta, "noise": ev})
        if len(added):
            result = result.with_diagnostics(added)
    return ClaimCheck(claim=claim, survives=survives, p_value=p_value, checks=checks,
                      result=result, alpha=alpha, meta=meta)
