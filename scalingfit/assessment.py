"""Everything a report shows, computed: the criteria, the claim check and the coverage refits.

:func:`assess` turns a fitted result (and, when given, the results table it was fitted on) into
an :class:`Assessment`: four criteria, each a traffic light with a one-line reason and its
evidence table -- **trend strength**, **generality across families**, **noise / does the claim
survive** (the checks of :func:`scalingfit.claims.check_claim`) and **coverage &
reproducibility** (refits per ``subtask`` / ``variant`` level). This is the only step that
fits: the documents of :mod:`scalingfit.documents` render an assessment and never fit.

What differs between the engines (p-values or posterior probabilities) is asked of the result's
:class:`~scalingfit.engines.EngineView`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .claims import check_claim
from .engines import EngineView, engine_view, perf_sign
from .exceptions import ScalingFitError
from .fit import fit_trend
from .verdicts import CLAIMS, SHAPES, check_claim_name, claim_p_value
from .wording import finite, fmt, fmt_p, slope_words

__all__ = ["assess", "Assessment", "Criterion", "CRITERIA", "assess_criteria",
           "coverage_table", "run_check_claim", "effective_claim", "VARIANT_COLUMNS"]

#: criterion key -> title, in report order
CRITERIA = {"trend_strength": "Trend strength",
            "generality": "Generality across families",
            "noise": "Noise: does the claim survive?",
            "coverage": "Coverage & reproducibility"}
#: columns whose levels are refitted one by one for the coverage criterion
VARIANT_COLUMNS = ("subtask", "variant")
#: replicates of a coverage refit (at most; the result's own when fewer)
COVERAGE_N_BOOT = 500


@dataclass(frozen=True)
class Criterion:
    """One traffic light: ``status`` in pass / warn / fail / na, a one-line ``reason``."""

    key: str
    status: str
    reason: str
    table: pd.DataFrame | None = None
    notes: list = field(default_factory=list)

    @property
    def title(self) -> str:
        return CRITERIA[self.key]


@dataclass(frozen=True)
class Assessment:
    """What a report of one fitted task shows, computed.

    Attributes
    ----------
    result : TrendResult
    claim : str or None
        The claim judged: the one given, else the verdict when it is claimable.
    asked : str or None
        The claim as given (None: the verdict is judged), for the reproducing command.
    criteria : tuple of Criterion
        In the order of :data:`CRITERIA`.
    check : ClaimCheck or None
        :func:`scalingfit.claims.check_claim` of the claim on the data (None without data, or
        when it refused the claim).
    coverage : pandas.DataFrame or None
        :func:`coverage_table`.
    evidence : tuple or None
        (lead text, value, field, kind) of the claim's evidence quoted after the verdict.
    engine : EngineView
    """

    result: object
    claim: str | None
    asked: str | None
    criteria: tuple
    check: object = None
    coverage: pd.DataFrame | None = None
    evidence: tuple | None = None
    engine: EngineView = field(default=None, repr=False)

    def criterion(self, key: str) -> Criterion:
        return next(c for c in self.criteria if c.key == key)


def effective_claim(result, claim):
    """``claim`` when it is a claimable shape (else an error naming them); without one, the
    verdict when it is claimable, else None."""
    if claim is None:
        return result.shape if result.shape in CLAIMS else None
    return check_claim_name(claim)


def _direction_agrees(row, claim, sign) -> bool:
    s = SHAPES[claim]
    if s.kind == "monotone" and finite(row.get("slope")):
        return np.sign(float(row["slope"])) * sign == s.direction
    return row.get("shape") == claim


# ------------------------------------------------------------------------- the criteria
def _strength(result, claim, engine) -> Criterion:
    p = result.pooled
    desc = (f"pooled slope {fmt(p['slope'])} {slope_words(result)}"
            f"{engine.interval_words(result.meta)} [{fmt(p['ci_lower'])}, "
            f"{fmt(p['ci_upper'])}], change over the range {fmt(p.get('total_change'))}")
    if claim is None:
        return Criterion("trend_strength", "na", f"no trend claimed or found "
                         f"(verdict {result.shape}); {desc}.", result.strength)
    desc, shown, weak = engine.strength(result, claim, desc)
    if shown and result.shape == claim:
        status = "pass"
    elif weak or (result.shape in CLAIMS and result.shape != claim):
        status = "fail"
    else:
        status = "warn"
    return Criterion("trend_strength", status, desc + ".", result.strength)


def _generality(result, claim, engine) -> Criterion:
    n = len(result.families)
    if claim is None:
        return Criterion("generality", "na", f"no trend to generalise (verdict {result.shape}).",
                         result.generality)
    tab = engine.family_claims(result, claim)
    k = int(tab["supports"].sum())
    same_dir = sum(_direction_agrees(r, claim, perf_sign(result))
                   for r in result.families.to_dict(orient="records"))
    if n == 1:
        return Criterion("generality", "warn", "one family only: generality across model "
                         "families is untested.", tab)
    reason = engine.generality_reason(result, claim, k, n, same_dir)
    status = "pass" if k == n else ("warn" if k >= 1 or same_dir == n else "fail")
    if result.shape != claim and status == "pass":
        status = "warn"
    return Criterion("generality", status, reason + ".", tab)


_CLAIMS_MISSING = ("scalingfit.claims did not run its checks: it needs the results table "
                   "(data=) and refuses claims it cannot test on them, e.g. a U claim with "
                   "fewer than 5 sizes")


def _noise(result, claim, check, engine) -> Criterion:
    if claim is None:
        return Criterion("noise", "na", f"no claim to test (verdict {result.shape}).")
    if check is not None:
        checks = getattr(check, "checks", None)
        failed = [] if checks is None or "passed" not in checks else list(
            checks.loc[~checks["passed"].astype(bool)].iloc[:, 0].astype(str))
        status = "pass" if check.survives else ("warn" if result.shape == claim else "fail")
        reason = (f"the {claim} claim {'survives' if check.survives else 'does not survive'} "
                  f"(p = {fmt_p(getattr(check, 'p_value', None))}{engine.checks_note})"
                  + (f"; failed checks: {', '.join(failed)}" if failed else ""))
        return Criterion("noise", status, reason + ".", checks)
    # without the claim check only its significance row can be read off the fit
    checks = pd.DataFrame([engine.significance_row(result, claim)])
    if checks["passed"].iloc[0]:
        return Criterion("noise", "na", "significance passes; the other checks did not run "
                         f"(derived from the fit; {_CLAIMS_MISSING}).", checks)
    return Criterion("noise", "fail", f"failed: significance (derived from the fit; "
                     f"{_CLAIMS_MISSING}).", checks)


def _coverage(result, claim, cov, engine=None) -> Criterion:
    engine = engine or engine_view(result)
    m = result.meta
    n_ex = m.get("n_examples")
    ex = f"{n_ex} examples per model" if n_ex else "aggregated scores"
    seed = m.get("seed")
    rep = (f"seed {seed} recorded" if isinstance(seed, int)
           else "no integer seed (a Generator was passed): rerun with rng=<int>")
    if cov is None or not len(cov):
        return Criterion("coverage", "na", f"no subtask or variant column, so agreement across "
                         f"prompt variants is untested; {ex}; {rep}.")
    fitted = cov[cov["shape"] != "not fitted"]
    col = ", ".join(pd.unique(cov["column"]))
    same = int((fitted["shape"] == claim).sum()) if claim else 0
    agree = int(fitted["agrees"].sum()) if claim else 0
    n = len(fitted)
    reason = (f"{same} of {n} {col} levels show {claim}, {agree} of {n} point the same way"
              if claim else f"{n} {col} levels fitted, no claim to compare")
    if not claim or n == 0:
        status = "na"
    elif same == n:
        status = "pass"
    elif agree == n or same >= 1:
        status = "warn"
    else:
        status = "fail"
    return Criterion("coverage", status, f"{reason}{engine.refit_note}; {ex}; {rep}.", cov)


def assess_criteria(result, claim=None, *, check=None, coverage=None) -> list:
    """The four criteria of the report, each a :class:`Criterion` (compute only, no drawing).

    ``claim`` defaults to the verdict when it is a claimable shape. ``check`` is a
    ``ClaimCheck`` (from :func:`scalingfit.claims.check_claim`) or None, in which case only the
    significance row of the claim check is read off the fit; ``coverage`` is the output of
    :func:`coverage_table`.
    """
    claim = effective_claim(result, claim)
    engine = engine_view(result)
    return [_strength(result, claim, engine), _generality(result, claim, engine),
            _noise(result, claim, check, engine), _coverage(result, claim, coverage, engine)]


# ------------------------------------------------------------------------- the refits
def run_check_claim(claim, *, data=None, result=None):
    """:func:`scalingfit.claims.check_claim` on ``data`` with the result's options (level,
    replicates, seed, scale variable, flat margin, chance level), or None without data or when
    it cannot take this input (e.g. a U claim with fewer than 5 sizes). The checks always use
    the bootstrap engine, also for a Bayesian result."""
    if data is None:
        return None
    kw = {}
    if result is not None:
        m = result.meta
        seed = m.get("seed")
        kw = {"alpha": m["alpha"], "n_boot": m["n_boot"],
              "rng": seed if isinstance(seed, int) else None, "x": m.get("x", "n_params")}
        if m.get("flat_margin") is not None:
            kw["flat_margin"] = m["flat_margin"]
        if finite(m.get("chance")):
            kw["chance"] = float(m["chance"])
    try:
        return check_claim(data, claim=claim, **kw)
    except (ScalingFitError, TypeError):
        return None


def coverage_table(data, result, claim, *, column=None) -> pd.DataFrame | None:
    """Refit each level of the ``subtask`` / ``variant`` column with the result's options.

    Returns one row per level (``column, level, shape, slope, ci_lower, ci_upper, p_claim,
    agrees``), or None when the data carry no such column with at least two levels.
    """
    if data is None:
        return None
    cols = [column] if column else [c for c in VARIANT_COLUMNS if c in data.columns]
    cols = [c for c in cols if c in data.columns and data[c].nunique() > 1]
    if not cols:
        return None
    m = result.meta
    opts = {"x": m["x"], "n_boot": min(int(m["n_boot"]), COVERAGE_N_BOOT),
            "confidence_level": m["confidence_level"], "flat_margin": m["flat_margin"],
            "higher_is_better": m["higher_is_better"],
            "rng": m["seed"] if isinstance(m["seed"], int) else None}
    rows = []
    for col in cols:
        for level, sub in data.groupby(col, sort=True):
            row = {"column": col, "level": str(level)}
            try:
                r = fit_trend(sub.drop(columns=[col]), **opts)
            except ScalingFitError as err:
                rows.append({**row, "shape": "not fitted", "error": str(err)})
                continue
            p = r.pooled
            pc = claim_p_value(p, claim, perf_sign(r), r.meta["alpha"]) if claim else np.nan
            rows.append({**row, "shape": r.shape, "slope": p["slope"],
                         "ci_lower": p["ci_lower"], "ci_upper": p["ci_upper"], "p_claim": pc,
                         "agrees": bool(claim and _direction_agrees(p, claim, perf_sign(r)))})
    return pd.DataFrame(rows)


def assess(result, claim=None, *, data=None, check=None, coverage=None,
           check_claims: bool = True) -> Assessment:
    """Compute everything the report of ``result`` shows.

    Parameters
    ----------
    result : TrendResult
    claim : {'positive', 'inverse', 'u_shaped', 'inverted_u', 'flat'}, optional
        The claimed shape; default: the verdict, when it is claimable.
    data : pandas.DataFrame, optional
        The results table the result was fitted on: ``check_claim`` runs on it and each
        ``subtask`` / ``variant`` level is refitted (coverage).
    check : ClaimCheck, optional
        A precomputed :func:`scalingfit.claims.check_claim` (not rerun).
    coverage : pandas.DataFrame, optional
        A precomputed :func:`coverage_table` (not refitted).
    check_claims : bool
        Run ``check_claim`` when no ``check`` is given (the multi-task report runs it only for
        a claim given by the user).

    Returns
    -------
    Assessment

    Raises
    ------
    DataValidationError
        ``claim`` is not a claimable shape.
    """
    eff = effective_claim(result, claim)
    if check is None and eff is not None and check_claims:
        check = run_check_claim(eff, data=data, result=result)
    if coverage is None:
        coverage = coverage_table(data, result, eff)
    engine = engine_view(result)
    return Assessment(result=result, claim=eff, asked=claim,
                      criteria=tuple(assess_criteria(result, eff, check=check,
                                                     coverage=coverage)),
                      check=check, coverage=coverage,
                      evidence=engine.verdict_evidence(result, eff) if eff else None,
                      engine=engine)
