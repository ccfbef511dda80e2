"""Criterion report for reviewers: one page per task answering the prize's questions in numbers.

The report has four criteria, each a traffic light with a one-line reason and a section of
evidence: **trend strength**, **generality across families**, **noise / does the claim survive**,
and **coverage & reproducibility** (agreement across ``subtask`` / ``variant`` levels when the
results carry such a column). Then come the plots of :mod:`scalingfit.plotting`, the tables of the
result, and a reproducibility section with versions, seed, options and the exact Python call and
CLI command.

The module works in three steps, kept apart: *assess* (numbers from the result, from
:func:`scalingfit.claims.check_claim` when it exists, and from per-variant refits), *build*
(a list of format-neutral blocks), *write* (self-contained HTML with base64 PNGs and inline CSS,
or Markdown with PNG files beside it). Every number shown is read from the result; in HTML each
carries its full-precision value in a ``data-value`` attribute so tests can check it.
"""

from __future__ import annotations

import base64
import html
import io
import math
import platform
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .report import verdict_sentence

__all__ = ["render_document", "report_tasks", "assess_criteria", "claim_p_value", "read_raw",
           "CRITERIA"]

#: criterion key -> title, in report order
CRITERIA = {"trend_strength": "Trend strength",
            "generality": "Generality across families",
            "noise": "Noise: does the claim survive?",
            "coverage": "Coverage & reproducibility"}
#: status -> (symbol, word)
STATUS = {"pass": ("\u25cf", "pass"), "warn": ("\u25cf", "caution"),
          "fail": ("\u25cf", "fails"), "na": ("\u25cb", "not assessed")}
TREND_SHAPES = ("positive", "inverse", "u_shaped", "inverted_u", "flat")
VARIANT_COLUMNS = ("subtask", "variant")
_PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "seaborn")


# =============================================================================== assess
def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _perf_sign(result) -> int:
    return 1 if result.meta.get("higher_is_better", True) else -1


def claim_p_value(row: dict, claim: str, perf_sign: int = 1) -> float:
    """p-value of ``claim`` from one row of estimates (a family row or ``result.pooled``).

    The p-value of the gated verdict procedure of :mod:`scalingfit.shapes` for this shape, as an
    intersection-union test: the claim is shown at level alpha exactly when every step rejects,
    so ``p = max(p_gate, p_step)`` and ``p <= alpha`` matches the verdict. Monotone claims: the
    step is the two-sided Knapp-Hartung slope test when the estimate points the claimed way
    (performance orientation), else ``1 - p/2``. U-type claims: the two-lines p
    (``p_u_shaped`` / ``p_inverted_u``). 'flat': the equivalence (TOST) p alone. Posterior
    probabilities (``method='bayes'``) are not p-values and are not read here.
    """
    gate = row.get("p_gate")
    gate = float(gate) if _finite(gate) else 0.0
    if claim in ("positive", "inverse"):
        b, p = row.get("slope"), row.get("p_value")
        if not (_finite(b) and _finite(p)):
            return float("nan")
        want = 1 if claim == "positive" else -1
        agrees = np.sign(float(b)) * perf_sign == want
        return max(gate, float(p)) if agrees else 1 - float(p) / 2
    key = {"u_shaped": "p_u_shaped", "inverted_u": "p_inverted_u", "flat": "p_flat"}.get(claim)
    v = row.get(key) if key else None
    if not _finite(v):
        return float("nan")
    return float(v) if claim == "flat" else max(gate, float(v))


def _direction_agrees(row, claim, perf_sign) -> bool:
    if claim in ("positive", "inverse") and _finite(row.get("slope")):
        return np.sign(float(row["slope"])) * perf_sign == (1 if claim == "positive" else -1)
    return row.get("shape") == claim


@dataclass
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


def family_claim_table(result, claim: str) -> pd.DataFrame:
    """Per family: verdict, slope with interval, p of the claim (:func:`claim_p_value`) and its
    Holm adjustment across families (statsmodels ``multipletests``)."""
    from statsmodels.stats.multitest import multipletests

    fam = result.families
    p = np.array([claim_p_value(r, claim, _perf_sign(result))
                  for r in fam.to_dict(orient="records")])
    holm = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        holm[ok] = multipletests(p[ok], method="holm")[1]
    return pd.DataFrame({"family": fam["family"], "shape": fam["shape"], "slope": fam["slope"],
                         "ci_lower": fam["ci_lower"], "ci_upper": fam["ci_upper"],
                         "p_claim": p, "p_holm": holm,
                         "supports": ok & (holm <= result.meta["alpha"])})


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return "\u2013"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}g}"
    return str(v)


def _fmt_p(p) -> str:
    return _fmt(p, 2)


def _fmt_size(v) -> str:
    if not _finite(v):
        return "\u2013"
    v = float(v)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def _is_bayes(result) -> bool:
    return result.meta.get("method") == "bayes"


def decision_threshold(result=None, *, meta=None) -> float:
    """Posterior probability a Bayesian verdict needs (``meta['bayes']['decision_threshold']``)."""
    meta = result.meta if meta is None else meta
    v = (meta.get("bayes") or {}).get("decision_threshold")
    return float(v) if _finite(v) else 0.95


def posterior_probability(row: dict, claim: str) -> float:
    """Posterior probability of ``claim`` in one row of a Bayesian result (``p_<claim>``)."""
    v = row.get(f"p_{claim}")
    return float(v) if _finite(v) else float("nan")


def _strength(result, claim) -> Criterion:
    from .report import slope_words

    p, a = result.pooled, result.meta["alpha"]
    unit = slope_words(result)
    bayes = _is_bayes(result)
    interval = (f", {result.meta['confidence_level']:.0%} credible interval" if bayes else "")
    desc = (f"pooled slope {_fmt(p['slope'])} {unit}{interval} [{_fmt(p['ci_lower'])}, "
            f"{_fmt(p['ci_upper'])}], change over the range {_fmt(p.get('total_change'))}")
    if claim is None:
        return Criterion("trend_strength", "na", f"no trend claimed or found "
                         f"(verdict {result.shape}); {desc}.", result.strength)
    tp = (f"turning point {_fmt_size(p.get('turning_point'))} "
          f"[{_fmt_size(p.get('tp_ci_lower'))}, {_fmt_size(p.get('tp_ci_upper'))}]")
    if bayes:
        # posterior probabilities are not p-values: judge the claim by P(claim) >= threshold
        pp, thr = posterior_probability(p, claim), decision_threshold(result)
        head = f"posterior P({claim}) = {_fmt(pp)} (a verdict needs >= {_fmt(thr)}); "
        desc = head + (tp if claim in ("u_shaped", "inverted_u") else desc)
        shown = _finite(pp) and pp >= thr
        weak = not _finite(pp) or pp < 0.5
    else:
        pc = claim_p_value(p, claim, _perf_sign(result))
        if claim in ("u_shaped", "inverted_u"):
            desc = f"two-lines p = {_fmt_p(pc)}; " + tp
        elif claim == "flat":
            desc = f"equivalence p = {_fmt_p(pc)}; " + desc
        else:
            desc += f", p of the claim = {_fmt_p(pc)}"
        shown = _finite(pc) and pc <= a
        weak = not _finite(pc) or pc >= 0.5
    if shown and result.shape == claim:
        status = "pass"
    elif weak or (result.shape in TREND_SHAPES and result.shape != claim):
        status = "fail"
    else:
        status = "warn"
    return Criterion("trend_strength", status, desc + ".", result.strength)


def bayes_family_table(result, claim: str) -> pd.DataFrame:
    """Per family of a Bayesian result: verdict, slope with credible interval, posterior
    probability of the claim, and whether it reaches the decision threshold."""
    fam = result.families
    pp = np.array([posterior_probability(r, claim) for r in fam.to_dict(orient="records")])
    return pd.DataFrame({"family": fam["family"], "shape": fam["shape"], "slope": fam["slope"],
                         "ci_lower": fam["ci_lower"], "ci_upper": fam["ci_upper"],
                         "p_posterior": pp,
                         "supports": np.isfinite(pp) & (pp >= decision_threshold(result))})


def _generality(result, claim) -> Criterion:
    n = len(result.families)
    if claim is None:
        return Criterion("generality", "na", f"no trend to generalise (verdict {result.shape}).",
                         result.generality)
    bayes = _is_bayes(result)
    tab = bayes_family_table(result, claim) if bayes else family_claim_table(result, claim)
    k = int(tab["supports"].sum())
    same_dir = sum(_direction_agrees(r, claim, _perf_sign(result))
                   for r in result.families.to_dict(orient="records"))
    if n == 1:
        return Criterion("generality", "warn", "one family only: generality across model "
                         "families is untested.", tab)
    if bayes:
        reason = (f"{k} of {n} families have posterior P({claim}) >= "
                  f"{_fmt(decision_threshold(result))}; {same_dir} of {n} point in the claimed "
                  "direction")
        every = result.pooled.get(f"p_all_{claim}")
        if _finite(every):
            reason += f"; P(every family shows {claim}, jointly) = {_fmt(float(every))}"
        new = result.pooled.get(f"p_new_{claim}")
        if _finite(new):
            reason += f"; P(a new family shows {claim}) = {_fmt(float(new))}"
    else:
        reason = (f"{k} of {n} families show {claim} after Holm correction; {same_dir} of {n} "
                  "point in the claimed direction")
    status = "pass" if k == n else ("warn" if k >= 1 or same_dir == n else "fail")
    if result.shape != claim and status == "pass":
        status = "warn"
    return Criterion("generality", status, reason + ".", tab)


def _derived_checks(result, claim) -> pd.DataFrame:
    """Noise checks computed from the result alone (used when ``check_claim`` is absent)."""
    from .plotting import influence_table

    a, p = result.meta["alpha"], result.pooled
    if _is_bayes(result):
        pp, thr = posterior_probability(p, claim), decision_threshold(result)
        rows = [{"check": "significance", "passed": bool(_finite(pp) and pp >= thr
                                                         and result.shape == claim),
                 "detail": f"verdict {result.shape}; posterior P({claim}) = {_fmt(pp)} "
                           f"(threshold {_fmt(thr)})"}]
    else:
        pc = claim_p_value(p, claim, _perf_sign(result))
        rows = [{"check": "significance", "passed": bool(_finite(pc) and pc <= a
                                                         and result.shape == claim),
                 "detail": f"verdict {result.shape}; p of the claim = {_fmt_p(pc)} with the "
                           "model as the unit of inference"}]
    draws = result.boot.get("pooled", result.boot.get(result.families["family"].iloc[0]))
    if claim in ("positive", "inverse") and isinstance(draws, np.ndarray) and len(draws):
        want = 1 if claim == "positive" else -1
        share = float(np.mean(np.sign(draws) * _perf_sign(result) == want))
        rows.append({"check": "stability", "passed": share >= 1 - a,
                     "detail": f"{share:.1%} of {len(draws)} bootstrap replicates give a slope "
                               f"in the claimed direction"})
    infl = influence_table(result)
    if infl is not None:
        changed = infl[infl["shape"].astype(str) != result.shape]
        rows.append({"check": "influence", "passed": len(changed) == 0,
                     "detail": f"dropping any single model changes the verdict in {len(changed)} "
                               f"of {len(infl)} cases"
                               + (f" ({', '.join(map(str, changed['dropped']))})"
                                  if len(changed) else "")})
    warn = result.diagnostics[result.diagnostics["severity"] == "warning"]
    rows.append({"check": "diagnostics", "passed": len(warn) == 0,
                 "detail": f"{len(warn)} warning-level diagnostic notes"
                           + (f": {', '.join(pd.unique(warn['code']))}" if len(warn) else "")})
    return pd.DataFrame(rows)


def run_check_claim(claim, *, data=None, result=None):
    """``scalingfit.claims.check_claim`` on the data (or the result) with the result's options
    (level, replicates, seed, scale variable, flat margin, chance level), or None when the
    claims module is not installed or cannot take this input (it needs the results table).
    The checks always use the bootstrap engine, also for a Bayesian result."""
    try:
        from .claims import check_claim
    except ImportError:
        return None
    from .exceptions import ScalingFitError

    kw = {}
    if result is not None:
        m = result.meta
        seed = m.get("seed")
        kw = {"alpha": m["alpha"], "n_boot": m["n_boot"],
              "rng": seed if isinstance(seed, int) else None, "x": m.get("x", "n_params")}
        if m.get("flat_margin") is not None:
            kw["flat_margin"] = m["flat_margin"]
        if _finite(m.get("chance")):
            kw["chance"] = float(m["chance"])
    for source in (data, result):
        if source is None:
            continue
        try:
            return check_claim(source, claim=claim, **kw)
        except (ScalingFitError, TypeError):
            continue
    return None


def _claims_missing_why() -> str:
    import importlib.util

    if importlib.util.find_spec("scalingfit.claims") is None:
        return "scalingfit.claims is not installed"
    return ("scalingfit.claims did not run its checks: it needs the results table (data=) and "
            "refuses claims it cannot test on them, e.g. a U claim with fewer than 5 sizes")


def _noise(result, claim, check) -> Criterion:
    if claim is None:
        return Criterion("noise", "na", f"no claim to test (verdict {result.shape}).")
    if check is not None:
        checks = getattr(check, "checks", None)
        failed = [] if checks is None or "passed" not in checks else list(
            checks.loc[~checks["passed"].astype(bool)].iloc[:, 0].astype(str))
        status = "pass" if check.survives else ("warn" if result.shape == claim else "fail")
        reason = (f"the {claim} claim {'survives' if check.survives else 'does not survive'} "
                  f"(p = {_fmt_p(getattr(check, 'p_value', None))}"
                  + ("; scalingfit.claims checks with the bootstrap engine"
                     if _is_bayes(result) else "") + ")"
                  + (f"; failed checks: {', '.join(failed)}" if failed else ""))
        return Criterion("noise", status, reason + ".", checks)
    checks = _derived_checks(result, claim)
    failed = list(checks.loc[~checks["passed"], "check"])
    if not failed:
        status = "pass"
    elif "significance" in failed and result.shape in TREND_SHAPES and result.shape != claim:
        status = "fail"
    else:
        status = "warn" if "significance" not in failed or result.shape == claim else "fail"
    reason = ("all checks pass" if not failed else f"failed: {', '.join(failed)}") + \
        f" (derived from the fit; {_claims_missing_why()})"
    return Criterion("noise", status, reason + ".", checks)


def coverage_table(data, result, claim, *, column=None) -> pd.DataFrame | None:
    """Refit each level of the ``subtask`` / ``variant`` column with the result's options.

    Returns one row per level (``column, level, shape, slope, ci_lower, ci_upper, p_claim,
    agrees``), or None when the data carry no such column with at least two levels.
    """
    from .exceptions import ScalingFitError
    from .fit import fit_trend

    if data is None:
        return None
    cols = [column] if column else [c for c in VARIANT_COLUMNS if c in data.columns]
    cols = [c for c in cols if c in data.columns and data[c].nunique() > 1]
    if not cols:
        return None
    m = result.meta
    opts = {"x": m["x"], "n_boot": min(int(m["n_boot"]), 500),
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
            pc = claim_p_value(p, claim, _perf_sign(r)) if claim else np.nan
            rows.append({**row, "shape": r.shape, "slope": p["slope"],
                         "ci_lower": p["ci_lower"], "ci_upper": p["ci_upper"], "p_claim": pc,
                         "agrees": bool(claim and _direction_agrees(p, claim, _perf_sign(r)))})
    return pd.DataFrame(rows)


def _coverage(result, claim, cov) -> Criterion:
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
    if _is_bayes(result):
        reason += " (levels refitted with the bootstrap engine)"
    return Criterion("coverage", status, f"{reason}; {ex}; {rep}.", cov)


def assess_criteria(result, claim=None, *, check=None, coverage=None) -> list:
    """The four criteria of the report, each a :class:`Criterion` (compute only, no drawing).

    ``claim`` defaults to the verdict when it is a trend shape. ``check`` is a
    ``ClaimCheck`` (from :func:`scalingfit.claims.check_claim`) or None to derive the noise
    checks from the result; ``coverage`` is the output of :func:`coverage_table`.
    """
    claim = _effective_claim(result, claim)
    return [_strength(result, claim), _generality(result, claim), _noise(result, claim, check),
            _coverage(result, claim, coverage)]


def _effective_claim(result, claim):
    if claim is None:
        return result.shape if result.shape in TREND_SHAPES else None
    if claim not in TREND_SHAPES:
        from .exceptions import DataValidationError

        raise DataValidationError(f"claim must be one of {list(TREND_SHAPES)}; got {claim!r}.")
    return claim


# =============================================================================== build
@dataclass
class Num:
    """A number in running text; ``field`` names where it comes from (e.g. 'pooled.slope')."""

    value: object
    field: str
    kind: str = "num"

    def text(self) -> str:
        return {"p": _fmt_p, "size": _fmt_size}.get(self.kind, _fmt)(self.value)


@dataclass
class Table:
    """A table: ``columns`` is a list of (key, header, kind); ``source`` names the result
    attribute the rows come from and ``key`` the column that identifies a row."""

    id: str
    caption: str
    columns: list
    rows: list
    source: str = ""
    key: str | None = None


def _table(id, caption, df, columns, source="", key=None) -> Table:
    cols = [c for c in columns if c[0] in df.columns]
    return Table(id, caption, cols, df.to_dict(orient="records"), source, key)


def _cell_text(v, kind) -> str:
    if kind == "p":
        return _fmt_p(v)
    if kind == "size":
        return _fmt_size(v)
    return _fmt(v, 4 if kind == "num4" else 3)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _plots(result, prefix, which=("trend", "families", "slopes", "influence", "power")):
    """(name, png, alt, caption) per plot; a plot whose table is missing yields a text note."""
    from . import plotting

    out = []
    level = f"{result.meta['confidence_level']:.0%}"
    if "trend" in which:
        fig = _figure((7.6, 4.6))
        plotting.plot_trend(result, ax=fig.subplots())
        drawn = {plotting._trend_curve(result, f) for f in result.families["family"]}
        what = (f"the posterior median curve per family with its {level} credible band"
                if "posterior" in drawn else "the fitted curve of the verdict with its band")
        out.append((f"{prefix}trend", _png(fig), "score against model size",
                    "Score against model size (log scale) per family; bars are "
                    f"{level} intervals per model, lines {what}."))
    n = len(result.families)
    if "families" in which and n > 1:
        ncol = min(3, n)
        nrow = int(np.ceil(n / ncol))
        fig = _figure((3.3 * ncol, 2.7 * nrow))
        axes = fig.subplots(nrow, ncol, squeeze=False, sharex=True, sharey=True)
        plotting.plot_families(result, ax=axes)
        out.append((f"{prefix}families", _png(fig), "one panel per family",
                    "Each family with its own verdict curve."))
    if "slopes" in which:
        fig = _figure((6.4, 3.8))
        try:
            plotting.plot_slope_distribution(result, ax=fig.subplots())
            out.append((f"{prefix}slopes", _png(fig), "distribution of the slope",
                        "Replicate slopes per family and pooled; mass away from zero in the "
                        "claimed direction is evidence for the trend."))
        except ValueError as err:
            out.append((f"{prefix}slopes", None, str(err), ""))
    entry = plotting.power_entry(result)
    kind = entry.get("kind", "slope")
    target = f"{entry.get('target', 0.8):.0%}"
    power_cap = (f"Examples per model needed for {target} power against the size of the "
                 "curvature (quadratic coefficient per decade\u00b2, the effect the U-shape "
                 "test needs); the dashed line marks the observed curvature."
                 if kind == "curvature" else
                 f"Examples per model needed for {target} power against the size of the slope; "
                 "the dashed line marks the observed pooled slope.")
    for name, fn, size, cap in (
            ("influence", plotting.plot_influence, (6.4, 4.2),
             "Pooled slope and verdict when each model is dropped."),
            ("power", plotting.plot_power, (6.4, 3.8), power_cap)):
        if name in which:
            fig = _figure(size)
            try:
                fn(result, ax=fig.subplots())
                out.append((f"{prefix}{name}", _png(fig), f"{name} plot", cap))
            except ValueError as err:
                out.append((f"{prefix}{name}", None, str(err), ""))
    return out


_FAMILY_COLS = [("family", "family", "str"), ("n_models", "models", "str"),
                ("shape", "verdict", "str"), ("slope", "slope / 10\u00d7", "num"),
                ("ci_lower", "CI lower", "num"), ("ci_upper", "CI upper", "num"),
                ("p_value", "p (slope)", "p"), ("p_gate", "p (gate)", "p"),
                ("total_change", "total change", "num"), ("tau2", "\u03c4\u00b2", "num"),
                ("turning_point", "turning point", "size"), ("best_curve", "best curve", "str")]
#: a Bayesian result: p_value is the two-sided posterior tail 2 min(P(slope > 0), P(slope < 0)),
#: labelled as such; p_gate is empty (dropped); the posterior shape probabilities are added
_BAYES_FAMILY_COLS = [("family", "family", "str"), ("n_models", "models", "str"),
                      ("shape", "verdict", "str"), ("slope", "slope / 10\u00d7", "num"),
                      ("ci_lower", "CrI lower", "num"), ("ci_upper", "CrI upper", "num"),
                      ("p_value", "posterior tail (slope), not a p-value", "p"),
                      *((f"p_{s}", f"P({s})", "num") for s in TREND_SHAPES),
                      ("total_change", "total change", "num"), ("tau2", "\u03c4\u00b2", "num"),
                      ("turning_point", "turning point", "size"),
                      ("best_curve", "best curve", "str")]


def _family_cols(result):
    return _BAYES_FAMILY_COLS if _is_bayes(result) else _FAMILY_COLS


_MODEL_COLS = [("family", "family", "str"), ("model", "model", "str"), ("x", "size", "size"),
               ("score", "score", "num4"), ("se", "SE", "num"), ("ci_lower", "CI lower", "num4"),
               ("ci_upper", "CI upper", "num4"), ("n_examples", "examples", "str")]
_SELECTION_COLS = [("family", "family", "str"), ("curve", "curve", "str"),
                   ("n_params", "parameters", "str"), ("loglik", "log-lik", "num"),
                   ("aicc", "AICc", "num"), ("delta_aicc", "\u0394AICc", "num"),
                   ("weight", "weight", "num")]
def _selection_table(result, prefix):
    """AICc table (bootstrap engine) or grouped-LOO table (Bayesian engine, compare=True)."""
    sel = result.selection
    if sel is not None and "elpd_loo" in sel.columns:
        return _table(f"{prefix}selection", "Model selection (grouped LOO: each model left out "
                      "in turn, exact refits where Pareto k > 0.7)", sel, _LOO_COLS,
                      "selection")
    return _table(f"{prefix}selection", "Model selection (AICc on the model-level likelihood)",
                  sel, _SELECTION_COLS, "selection")


_LOO_COLS = [("family", "family", "str"), ("curve", "curve", "str"),
             ("elpd_loo", "elpd (LOO)", "num"), ("se", "SE", "num"),
             ("delta_elpd", "\u0394elpd", "num"), ("dse", "SE of \u0394", "num"),
             ("weight", "weight", "num"), ("max_pareto_k", "max Pareto k", "num"),
             ("n_refits", "exact refits", "str")]
_CLAIM_COLS = [("family", "family", "str"), ("shape", "verdict", "str"),
               ("slope", "slope / 10\u00d7", "num"), ("ci_lower", "CI lower", "num"),
               ("ci_upper", "CI upper", "num"), ("p_claim", "p (claim)", "p"),
               ("p_holm", "p (Holm)", "p"), ("supports", "supports claim", "str")]
_BAYES_CLAIM_COLS = [("family", "family", "str"), ("shape", "verdict", "str"),
                     ("slope", "slope / 10\u00d7", "num"), ("ci_lower", "CrI lower", "num"),
                     ("ci_upper", "CrI upper", "num"),
                     ("p_posterior", "posterior P(claim)", "num"),
                     ("supports", "supports claim", "str")]
_COVERAGE_COLS = [("column", "column", "str"), ("level", "level", "str"),
                  ("shape", "verdict", "str"), ("slope", "slope / 10\u00d7", "num"),
                  ("ci_lower", "CI lower", "num"), ("ci_upper", "CI upper", "num"),
                  ("p_claim", "p (claim)", "p"), ("agrees", "same direction", "str"),
                  ("error", "why not fitted", "str")]


def _generic_cols(df):
    return [(c, c, "p" if str(c).startswith("p_") else "num" if pd.api.types.is_float_dtype(
        df[c]) else "str") for c in df.columns if c != "details"]


def _task_blocks(result, criteria, claim, plots, prefix="", level=2):
    """Blocks of one task: header, lights, plots, criterion sections, tables."""
    m, p = result.meta, result.pooled
    h = level
    fig = {name: (png, alt, cap) for name, png, alt, cap in plots}
    fams = ", ".join(map(str, result.families["family"]))
    facts = [("task", [str(m.get("task") or "(unnamed)")]),
             ("metric", [f"{m.get('metric') or 'score'} "
                         f"({'higher' if m['higher_is_better'] else 'lower'} is better)"]),
             ("families", [Num(m["n_families"], "meta.n_families"), f" ({fams})"]),
             ("models", [Num(m["n_models"], "meta.n_models")]),
             ("examples", [Num(m["n_examples"], "meta.n_examples"), " per model"]
              if m.get("n_examples") else ["aggregated scores"]),
             ("claim", [claim or "none (the verdict is judged)"])]
    blocks = [("facts", facts)]
    ev = []
    if claim and _is_bayes(result):     # no p-value of the claim: its posterior probability
        ev = [f" Posterior probability of the {claim} claim: ",
              Num(posterior_probability(p, claim), f"pooled.p_{claim}"), "."]
    elif claim:
        ev = [f" p of the {claim} claim (gate and shape test together): ",
              Num(claim_p_value(p, claim, _perf_sign(result)), "claim.p_value", "p"), "."]
    blocks.append(("verdict", result.shape, ["Verdict: ", Num(result.shape, "shape"), " — ",
                                              verdict_sentence(result), *ev]))
    blocks.append(("lights", [(c.key, c.title, c.status, c.reason) for c in criteria], prefix))
    if fig.get(f"{prefix}trend"):
        blocks.append(("fig", f"{prefix}trend", *fig[f"{prefix}trend"]))
    sections = {c.key: c for c in criteria}

    def open_(c):
        return [("open", f"{prefix}crit-{c.key}", c.key, c.status),
                ("h", h, f"{c.title} \u2014 {STATUS[c.status][1]}", f"{prefix}{c.key}"),
                ("p", [c.reason])]

    c = sections["trend_strength"]
    blocks += open_(c)
    if fig.get(f"{prefix}slopes"):
        blocks.append(("fig", f"{prefix}slopes", *fig[f"{prefix}slopes"]))
    if c.table is not None and len(c.table):
        blocks.append(("table", _table(f"{prefix}strength", "Trend strength (scalingfit.noise)",
                                       c.table, _generic_cols(c.table), "strength")))
    blocks.append(("close",))
    c = sections["generality"]
    blocks += open_(c)
    if fig.get(f"{prefix}families"):
        blocks.append(("fig", f"{prefix}families", *fig[f"{prefix}families"]))
    if c.table is not None and len(c.table) and "p_holm" in c.table:
        blocks.append(("table", _table(f"{prefix}claim_families", "Claim per family (p of the "
                                       "claim, Holm-adjusted across families)", c.table,
                                       _CLAIM_COLS, "claim_families", "family")))
    elif c.table is not None and len(c.table) and "p_posterior" in c.table:
        blocks.append(("table", _table(
            f"{prefix}claim_families", "Claim per family (posterior probability of the claim; "
            f"a family supports it at >= {_fmt(decision_threshold(result))})", c.table,
            _BAYES_CLAIM_COLS, "claim_families", "family")))
    if result.generality is not None and len(result.generality):
        blocks.append(("table", _table(f"{prefix}generality", "Generality (scalingfit.noise)",
                                       result.generality, _generic_cols(result.generality),
                                       "generality")))
    blocks.append(("close",))
    c = sections["noise"]
    blocks += open_(c)
    if c.table is not None and len(c.table):
        blocks.append(("table", _table(f"{prefix}checks", "Checks", c.table,
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
    blocks.append(("close",))
    c = sections["coverage"]
    blocks += open_(c)
    if c.table is not None and len(c.table):
        blocks.append(("table", _table(f"{prefix}coverage", "Refit per level", c.table,
                                       _COVERAGE_COLS, "coverage", "level")))
    blocks.append(("close",))
    blocks.append(("open", f"{prefix}tables", "tables", ""))
    blocks.append(("h", h, "Tables", f"{prefix}tables-h"))
    fam_rows = result.families if len(result.families) == 1 else pd.concat(
        [result.families, pd.DataFrame([p])], ignore_index=True)
    blocks += [("table", _table(f"{prefix}families", "Per-family estimates (slope per 10\u00d7 "
                                f"{'parameters' if m['x'] == 'n_params' else 'FLOPs'})",
                                fam_rows, _family_cols(result), "families", "family")),
               ("table", _selection_table(result, prefix)),
               ("table", _table(f"{prefix}models", "Per-model scores", result.models,
                                _MODEL_COLS, "models", "model")),
               ("close",)]
    return blocks


# ------------------------------------------------------------------- reproducibility
def _versions() -> dict:
    from importlib import metadata

    from . import __version__

    out = {"scalingfit": __version__, "python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


#: options of :func:`scalingfit.bayes.fit_bayes` recorded in ``meta['bayes']``, with defaults
_BAYES_DEFAULTS = {"model": "model_level", "sampler": "nutpie", "draws": 1000, "tune": 1000,
                   "chains": 4, "decision_threshold": 0.95, "compare": False,
                   "target_accept": 0.95}


def _call_options(meta, load=None) -> dict:
    """Non-default options of the fit, as keyword arguments of :func:`load_results` (``task``,
    ``metric``, ``format``) and :func:`fit_trend` (the rest, Bayesian options included).

    ``load`` holds what the caller knows beyond ``meta``: ``task``, ``metric``, the input
    ``format`` and ``chance`` as given on the command line."""
    from .data import _LOWER_IS_BETTER

    load = dict(load or {})
    opts = {}
    if load.get("task") or meta.get("task"):
        opts["task"] = load.get("task") or meta.get("task")
    if load.get("metric"):
        opts["metric"] = load["metric"]
    elif meta.get("form") == "aggregated" and meta.get("metric"):
        opts["metric"] = meta["metric"]
    if load.get("format"):
        opts["format"] = load["format"]
    metric = str(meta.get("metric") or "")
    if not meta.get("higher_is_better", True) and not _LOWER_IS_BETTER.search(metric):
        opts["higher_is_better"] = False
    for key, default in (("x", "n_params"), ("method", "bootstrap"), ("n_boot", 2000),
                         ("confidence_level", 0.95)):
        if key in meta and meta[key] != default:
            opts[key] = meta[key]
    margin = meta.get("flat_margin")
    if margin is not None and not (meta.get("proportion") and margin == 0.05):
        opts["flat_margin"] = margin
    shapes = [s for s in meta.get("shapes", []) if s not in ("flat", "inconclusive")]
    if shapes and len(shapes) < 4:
        opts["shapes"] = shapes
    # the chance level given, else the one in effect (passing it again changes nothing)
    chance = load.get("chance") if load.get("chance") is not None else meta.get("chance")
    if _finite(chance):
        opts["chance"] = float(chance)
    if meta.get("method") == "bayes":
        bayes = meta.get("bayes") or {}
        for key, default in _BAYES_DEFAULTS.items():
            if key in bayes and bayes[key] is not None and bayes[key] != default:
                opts[key] = bayes[key]
    if isinstance(meta.get("seed"), int):
        opts["rng"] = meta["seed"]
    return opts


_LOAD = ("task", "metric", "higher_is_better", "format")
_CLI_FLAGS = {"task": "--task", "metric": "--metric", "format": "--format", "x": "--x",
              "method": "--method", "n_boot": "--n-boot",
              "confidence_level": "--confidence-level", "flat_margin": "--flat-margin",
              "chance": "--chance", "rng": "--seed", "model": "--bayes-model",
              "draws": "--draws", "tune": "--tune", "chains": "--chains",
              "compare": "--compare", "target_accept": "--target-accept",
              "decision_threshold": "--decision-threshold"}


def _commands(opts, source, claim, out, fmt, multi=False):
    src = str(source) if source is not None else "results.csv"
    out_name = str(out) if out is not None else f"report.{'html' if fmt == 'html' else 'md'}"
    if multi:
        args = ", ".join([repr(src)] + [f"{'input_format' if k == 'format' else k}={v!r}"
                                        for k, v in opts.items()])
        py = ("from scalingfit.criteria_report import report_tasks\n"
              f"report_tasks({args}, claim={claim!r}, format={fmt!r}, out={out_name!r})")
    else:
        load = ", ".join([repr(src)] + [f"{k}={v!r}" for k, v in opts.items() if k in _LOAD])
        fit = ", ".join(["table"] + [f"{k}={v!r}" for k, v in opts.items() if k not in _LOAD])
        py = ("from scalingfit import fit_trend, load_results\n"
              f"table = load_results({load})\n"
              f"result = fit_trend({fit})\n"
              f"result.report(format={fmt!r}, claim={claim!r}, data=table, out={out_name!r})")
    cli = ["scalingfit", "report", src]
    for k, v in opts.items():
        if k == "higher_is_better":
            cli.append("--lower-is-better")
        elif k == "compare":            # a switch: recorded only when True (not the default)
            cli += [_CLI_FLAGS[k]] if v else []
        elif k in _CLI_FLAGS:
            cli += [_CLI_FLAGS[k], str(v)]
    if claim:
        cli += ["--claim", claim]
    cli += ["-o", out_name]
    return py, " ".join(shlex.quote(c) for c in cli), [k for k in opts if k not in _CLI_FLAGS
                                                        and k != "higher_is_better"]


def _repro_blocks(meta, opts, source, claim, out, fmt, multi=False, prefix=""):
    py, cli, no_cli = _commands(opts, source, claim, out, fmt, multi)
    vers = _versions()
    seed = meta.get("seed")
    rows = [{"item": "seed", "value": str(seed)},
            {"item": "method", "value": str(meta.get("method"))},
            {"item": "bootstrap replicates", "value": str(meta.get("n_boot"))},
            {"item": "confidence level", "value": str(meta.get("confidence_level"))},
            {"item": "flat margin", "value": _fmt(meta.get("flat_margin"), 4)},
            {"item": "shapes considered", "value": ", ".join(meta.get("shapes", []))},
            {"item": "scale variable", "value": str(meta.get("x"))},
            {"item": "chance level", "value": _fmt(meta.get("chance"), 4)
             if _finite(meta.get("chance")) else "not known"},
            *({"item": f"bayes {k.replace('_', ' ')}", "value": str(v)}
              for k, v in (meta.get("bayes") or {}).items()
              if meta.get("method") == "bayes" and k in (*_BAYES_DEFAULTS, "seed")),
            *({"item": k, "value": v} for k, v in vers.items()),
            {"item": "platform", "value": platform.platform(terse=True)}]
    blocks = [("open", f"{prefix}reproducibility", "reproducibility", ""),
              ("h", 2, "Reproducibility", f"{prefix}reproducibility-h"),
              ("table", Table(f"{prefix}versions", "Versions, seed and options",
                              [("item", "item", "str"), ("value", "value", "str")], rows)),
              ("p", ["Python:"]), ("code", py, "python"),
              ("p", ["Command line:"]), ("code", cli, "sh")]
    if not isinstance(seed, int):
        blocks.append(("p", ["No integer seed was recorded (a numpy Generator was passed), so "
                             "bootstrap numbers will differ slightly on a rerun."], "muted"))
    if no_cli:
        blocks.append(("p", [f"Options without a CLI flag ({', '.join(no_cli)}) are reproduced "
                             "by the Python call only."], "muted"))
    return blocks + [("close",)]


# =============================================================================== write
_CSS = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--pass:#1a7f37;--warn:#9a6700;
--fail:#cf222e;--na:#6e7781}
*{box-sizing:border-box}
body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--ink);
margin:0;background:#fff}
main{max-width:1080px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;padding-bottom:4px;
border-bottom:1px solid var(--line)}h3{font-size:16px;margin:20px 0 6px}
.subtitle{color:var(--muted);margin:0 0 16px}
dl.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:8px 20px;
margin:12px 0 16px;padding:12px 16px;background:var(--bg);border-radius:6px}
dl.facts dt{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
dl.facts dd{margin:0;font-weight:600}
.verdict{border-left:5px solid #0969da;background:#ddf4ff;padding:10px 14px;border-radius:4px;
margin:12px 0 18px;font-size:16px}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px;width:auto;max-width:100%}
caption{text-align:left;font-weight:600;padding:4px 0;color:var(--ink)}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}td.num{text-align:right;
font-variant-numeric:tabular-nums}
table.lights{width:100%;font-size:14px}table.lights td{padding:8px 10px}
.light{font-size:22px;line-height:1;width:30px;text-align:center}
.st-pass .light,.st-pass .word{color:var(--pass)}.st-warn .light,.st-warn .word{color:var(--warn)}
.st-fail .light,.st-fail .word{color:var(--fail)}.st-na .light,.st-na .word{color:var(--na)}
.word{font-weight:700;white-space:nowrap;font-size:12px;text-transform:uppercase;
letter-spacing:.03em}
table.lights .word span{display:inline-block;min-width:92px;text-align:center;padding:2px 8px;
border-radius:10px;color:#fff;background:var(--na)}
table.lights .st-pass .word span{background:var(--pass)}
table.lights .st-warn .word span{background:var(--warn)}
table.lights .st-fail .word span{background:var(--fail)}
a{color:inherit;text-decoration:none;border-bottom:1px dotted var(--muted)}
section.criterion{border-left:4px solid var(--na);padding-left:14px;margin-top:10px}
section.st-pass{border-color:var(--pass)}section.st-warn{border-color:var(--warn)}
section.st-fail{border-color:var(--fail)}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;border:1px solid var(--line);
border-radius:4px}figcaption{color:var(--muted);font-size:13px;margin-top:4px}
ol.notes li{margin:2px 0}.sev{font-size:11px;text-transform:uppercase;padding:1px 5px;
border-radius:3px;background:var(--bg);color:var(--muted);margin-right:6px}
.sev-warning{background:#fff8c5;color:var(--warn)}
pre{background:var(--bg);padding:10px 12px;border-radius:6px;overflow-x:auto;font-size:13px}
.muted{color:var(--muted);font-size:13px}.tablewrap{overflow-x:auto}
footer{color:var(--muted);font-size:12px;margin-top:36px}
@media print{main{max-width:none;padding:0}body{font-size:11pt}h2{break-after:avoid}
figure,table,section.criterion{break-inside:avoid}pre{white-space:pre-wrap}
.tablewrap{overflow:visible}}
"""


def _inline_html(parts) -> str:
    out = []
    for part in parts:
        if isinstance(part, Num):
            v = part.value
            val = repr(float(v)) if isinstance(v, (float, np.floating)) else html.escape(str(v))
            out.append(f'<span class="num" data-field="{html.escape(part.field)}" '
                       f'data-value="{val}">{html.escape(part.text())}</span>')
        else:
            out.append(html.escape(str(part)))
    return "".join(out)


def _inline_md(parts) -> str:
    return "".join(p.text() if isinstance(p, Num) else str(p) for p in parts)


def _cell_value(v) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    return html.escape(str(v))


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in t.columns)
    body = []
    for r in t.rows:
        key = f' data-key="{html.escape(str(r.get(t.key)))}"' if t.key else ""
        cells = []
        for col, _, kind in t.columns:
            v = r.get(col)
            cls = ' class="num"' if kind in ("num", "num4", "p", "size") else ""
            cells.append(f'<td{cls} data-col="{html.escape(col)}" data-value="{_cell_value(v)}">'
                         f"{html.escape(_cell_text(v, kind))}</td>")
        body.append(f"<tr{key}>{''.join(cells)}</tr>")
    src = f' data-source="{html.escape(t.source)}"' if t.source else ""
    return (f'<div class="tablewrap"><table id="{html.escape(t.id)}"{src}><caption>'
            f"{html.escape(t.caption)}</caption><thead><tr>{head}</tr></thead><tbody>"
            f"{''.join(body)}</tbody></table></div>")


def _to_html(blocks, title, subtitle) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out.append(f'<h{b[1]} id="{html.escape(b[3])}">{html.escape(b[2])}</h{b[1]}>')
        elif kind == "p":
            cls = f' class="{b[2]}"' if len(b) > 2 else ""
            out.append(f"<p{cls}>{_inline_html(b[1])}</p>")
        elif kind == "facts":
            items = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{_inline_html(v)}</dd></div>"
                            for k, v in b[1])
            out.append(f'<dl class="facts">{items}</dl>')
        elif kind == "verdict":
            out.append(f'<div class="verdict" data-shape="{html.escape(b[1])}">'
                       f"{_inline_html(b[2])}</div>")
        elif kind == "lights":
            rows = "".join(
                f'<tr class="criterion st-{st}" data-criterion="{key}" data-status="{st}">'
                f'<td class="light" aria-hidden="true">{STATUS[st][0]}</td>'
                f'<td><a href="#{html.escape(b[2])}crit-{key}">{html.escape(title)}'
                f'</a></td><td class="word"><span>{STATUS[st][1]}</span></td>'
                f"<td>{html.escape(reason)}</td>"
                "</tr>" for key, title, st, reason in b[1])
            out.append(f'<table class="lights" id="{html.escape(b[2])}criteria"><caption>'
                       'Criteria</caption><tbody>'
                       f"{rows}</tbody></table>")
        elif kind == "fig":
            _, name, png, alt, cap = b
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<figure id="fig-{html.escape(name)}"><img alt="{html.escape(alt)}" '
                       f'src="data:image/png;base64,{data}"><figcaption>{html.escape(cap)}'
                       "</figcaption></figure>")
        elif kind == "table":
            out.append(_html_table(b[1]))
        elif kind == "notes":
            items = "".join(f'<li data-code="{html.escape(str(code))}"><span class="sev '
                            f'sev-{html.escape(str(sev))}">{html.escape(str(sev))}</span>'
                            f"{html.escape(str(msg))}</li>" for code, sev, msg in b[1])
            out.append(f'<ol class="notes">{items}</ol>')
        elif kind == "code":
            out.append(f'<pre><code class="language-{b[2]}">{html.escape(b[1])}</code></pre>')
        elif kind == "open":
            _, sid, key, st = b
            cls = f"criterion st-{st}" if st else key
            attr = f' data-criterion="{key}"' if st else ""
            out.append(f'<section id="{html.escape(sid)}" class="{cls}"{attr}>')
        elif kind == "close":
            out.append("</section>")
    body = "\n".join(out)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>"
            f'<h1>{html.escape(title)}</h1><p class="subtitle">{html.escape(subtitle)}</p>\n'
            f"{body}\n<footer>Generated by scalingfit {html.escape(_versions()['scalingfit'])}. "
            "Self-contained: no external resources.</footer></main></body></html>\n")


def _md_table(t: Table) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    lines = [f"**{esc(t.caption)}**", "",
             "| " + " | ".join(esc(h) for _, h, _ in t.columns) + " |",
             "|" + "|".join("---:" if k in ("num", "num4", "p", "size") else "---"
                            for _, _, k in t.columns) + "|"]
    lines += ["| " + " | ".join(esc(_cell_text(r.get(c), k)) for c, _, k in t.columns) + " |"
              for r in t.rows]
    return "\n".join(lines)


def _to_markdown(blocks, title, subtitle, image_dir=None, image_link=None) -> str:
    out = [f"# {title}", "", f"*{subtitle}*", ""]
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out += [f"{'#' * b[1]} {b[2]}", ""]
        elif kind == "p":
            out += [_inline_md(b[1]), ""]
        elif kind == "facts":
            out += [" \u00b7 ".join(f"**{k}**: {_inline_md(v)}" for k, v in b[1]), ""]
        elif kind == "verdict":
            out += [f"> **{_inline_md(b[2])}**", ""]
        elif kind == "lights":
            out += ["| | criterion | status | reason |", "|---|---|---|---|"]
            out += [f"| {STATUS[st][0]} | {title} | **{STATUS[st][1]}** | {reason} |"
                    for _, title, st, reason in b[1]]
            out.append("")
        elif kind == "fig":
            _, name, png, alt, cap = b
            if image_dir is not None:
                Path(image_dir).mkdir(parents=True, exist_ok=True)
                (Path(image_dir) / f"{name}.png").write_bytes(png)
                src = f"{image_link}/{name}.png"
            else:
                src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            out += [f"![{alt}]({src})", "", f"*{cap}*", ""]
        elif kind == "table":
            out += [_md_table(b[1]), ""]
        elif kind == "notes":
            out += [f"{i}. ({sev}) {msg}" for i, (_, sev, msg) in enumerate(b[1], 1)] + [""]
        elif kind == "code":
            out += [f"```{b[2]}", b[1], "```", ""]
    return "\n".join(out)


def _write(blocks, title, subtitle, format, out) -> str:
    if format == "html":
        text = _to_html(blocks, title, subtitle)
    elif format == "markdown":
        image_dir = link = None
        if out is not None:
            out = Path(out)
            image_dir, link = out.parent / f"{out.stem}_files", f"{out.stem}_files"
        text = _to_markdown(blocks, title, subtitle, image_dir, link)
    else:
        from .exceptions import DataValidationError

        raise DataValidationError(f"format must be 'html' or 'markdown'; got {format!r}.")
    if out is not None:
        Path(out).write_text(text, encoding="utf-8")
    return text


# =============================================================================== public
def render_document(result, format="html", claim=None, out=None, *, data=None, source=None,
                    options=None, check=None, title=None, plots=True) -> str:
    """Criterion report of one fitted task, as self-contained HTML or Markdown.

    Parameters
    ----------
    result : TrendResult
    format : {'html', 'markdown'}
        HTML embeds the plots as base64 PNG with inline CSS (no network requests); Markdown
        writes the PNGs into ``<out stem>_files/`` beside ``out`` (or inlines them as data URIs
        when ``out`` is None).
    claim : {'inverse', 'positive', 'u_shaped', 'inverted_u', 'flat'}, optional
        The shape the submission claims; default: the verdict, when it is a trend.
    out : path, optional
        File to write.
    data : pandas.DataFrame, optional
        The results table the result was fitted on. Needed to refit per ``subtask`` /
        ``variant`` level (coverage criterion) and lets ``check_claim`` rerun on the data.
    source : str, optional
        Path of the results file, quoted in the reproducibility section.
    options : dict, optional
        Loading options used (``task``, ``metric``) for the reproducing command.
    check : ClaimCheck, optional
        A precomputed :func:`scalingfit.claims.check_claim` result (else it is run when the
        claims module exists, or the noise checks are derived from the result).
    title : str, optional
    plots : bool

    Returns
    -------
    str
        The document.
    """
    eff = _effective_claim(result, claim)
    if check is None and eff is not None:
        check = run_check_claim(eff, data=data, result=result)
    cov = coverage_table(data, result, eff)
    criteria = assess_criteria(result, eff, check=check, coverage=cov)
    figs = _plots(result, "") if plots else []
    m = result.meta
    title = title or f"Scaling report: {m.get('task') or 'results'}"
    subtitle = (f"{m.get('metric') or 'score'} against "
                f"{'parameters' if m['x'] == 'n_params' else 'training FLOPs'}; "
                + _engine_words(m))
    blocks = _task_blocks(result, criteria, eff, figs)
    blocks += _repro_blocks(m, _call_options(m, options), source, claim, out, format)
    return _write(blocks, title, subtitle, format, out)


def _engine_words(meta) -> str:
    level = f"{meta['confidence_level']:.0%}"
    if meta.get("method") == "bayes":
        b = meta.get("bayes") or {}
        return (f"Bayesian {str(b.get('model', 'model_level')).replace('_', '-')} model, "
                f"{b.get('chains')} chains \u00d7 {b.get('draws')} draws, {level} credible "
                f"intervals; verdicts need posterior probability \u2265 "
                f"{_fmt(decision_threshold(meta=meta))}")
    return f"{meta['method']} with {meta['n_boot']} replicates, {level} intervals"


def read_raw(results, fmt=None) -> pd.DataFrame:
    if isinstance(results, pd.DataFrame):
        return results.copy()
    from .data import _read_path

    return _read_path(Path(results), fmt)


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


def posterior_evidence(result, claim=None) -> tuple:
    """(shape, posterior probability) that a Bayesian result's summary row quotes.

    With a claim: the claim and its pooled ``p_<claim>``. Without: the verdict and its
    probability, or for an 'inconclusive' verdict the most probable shape and its probability.
    (None, NaN) when the pooled row carries no shape probabilities.
    """
    p = result.pooled
    shape = claim if claim is not None else result.shape
    if shape not in TREND_SHAPES:
        probs = {s: posterior_probability(p, s) for s in TREND_SHAPES}
        probs = {s: v for s, v in probs.items() if np.isfinite(v)}
        if not probs:
            return None, float("nan")
        shape = max(probs, key=probs.get)
    return shape, posterior_probability(p, shape)


def _summary_row(r, claim, check) -> dict:
    """Verdict, size, slope and evidence of one fitted task in the multi-task summary.

    ``p``: the claim's p-value of ``check_claim`` (which refits with the bootstrap engine), else
    :func:`claim_p_value`; without a claim, the gate's p-value. A Bayesian result has no p-value
    of its own: its ``p`` is ``check_claim``'s when that ran, else NaN, and ``p_posterior`` /
    ``posterior_of`` quote :func:`posterior_evidence` (a posterior probability is not a
    p-value and is never multiplicity-adjusted).
    """
    row = {"verdict": r.shape, "n_families": r.meta["n_families"],
           "n_models": r.meta["n_models"], "slope": r.pooled["slope"]}
    checked = check is not None and _finite(getattr(check, "p_value", None))
    if _is_bayes(r):
        shape, prob = posterior_evidence(r, claim)
        return {**row, "p": float(check.p_value) if checked else np.nan,
                "p_posterior": prob, "posterior_of": shape}
    p = (float(check.p_value) if checked
         else claim_p_value(r.pooled, claim, _perf_sign(r)) if claim else r.pooled["p_gate"])
    return {**row, "p": p}


def _adjust(summary, alpha):
    """Holm and Benjamini-Hochberg adjustments across the tasks with a finite p (in place);
    'holds (Holm)' is empty for a fitted task without one (a Bayesian task without a claim).
    Returns the number of tasks adjusted."""
    from statsmodels.stats.multitest import multipletests

    tested = summary["p"].notna() if "p" in summary else pd.Series(False, index=summary.index)
    for col, method in (("p_holm", "holm"), ("p_bh", "fdr_bh")):
        summary[col] = np.nan
        if tested.any():
            summary.loc[tested, col] = multipletests(summary.loc[tested, "p"], method=method)[1]
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
            f"Bayesian verdict needs posterior probability >= {_fmt(threshold)} "
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


def report_tasks(results_table, *, claim=None, format="html", out=None, source=None,
                 task=None, metric=None, higher_is_better=None, input_format=None,
                 plots=True, **fit_kwargs) -> str:
    """One report for a table with several tasks (and/or metrics).

    Each (task, metric) is fitted with :func:`scalingfit.fit_trend` (same options and seed);
    the summary table lists every task with its verdict and the p-value of the claim, adjusted
    across tasks by Holm (family-wise) and Benjamini-Hochberg (false discovery rate) with
    statsmodels ``multipletests``; tasks that cannot be fitted are listed with the reason.
    Without a claim the p-value is the gate's (the curve is not flat). A section per task
    follows.

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
    from .bootstrap import as_generator
    from .exceptions import ScalingFitError
    from .fit import fit_trend

    if claim is not None and claim not in TREND_SHAPES:
        _effective_claim(None, claim)
    table = read_raw(results_table, input_format)
    gen, seed = as_generator(fit_kwargs.pop("rng", None))
    rng = seed if isinstance(seed, int) else gen
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
        check = run_check_claim(claim, data=sub, result=r) if claim else None
        rows.append({**row, **_summary_row(r, claim, check)})
        sections.append((row["anchor"], label, r, sub, check))
    summary = pd.DataFrame(rows)
    alpha = 1 - fit_kwargs.get("confidence_level", 0.95)
    n_tested = _adjust(summary, alpha)
    bayes = [r for _, _, r, _, _ in sections if _is_bayes(r)]
    threshold = decision_threshold(bayes[0]) if bayes else None
    blocks = _summary_blocks(summary, claim, seed, alpha, n_tested, threshold)
    for anchor, label, r, sub, check in sections:
        eff = _effective_claim(r, claim)
        crit = assess_criteria(r, eff, check=check, coverage=coverage_table(sub, r, eff))
        figs = _plots(r, anchor) if plots else []
        blocks += [("open", f"{anchor}task", "task", ""), ("h", 2, label, f"{anchor}h")]
        blocks += [b if b[0] != "h" else ("h", b[1] + 1, *b[2:])
                   for b in _task_blocks(r, crit, eff, figs, prefix=anchor, level=3)]
        blocks.append(("close",))
    meta0 = sections[0][2].meta if sections else {"seed": seed}
    # per-task options (a chance level read from each task's column) are not repeated
    opts = {k: v for k, v in _call_options(meta0).items()
            if k not in ("task", "metric", "chance")}
    opts.update({k: v for k, v in (("task", task), ("metric", metric),
                                   ("format", input_format),
                                   ("chance", fit_kwargs.get("chance"))) if v is not None})
    opts["rng"] = seed
    blocks += _repro_blocks(meta0, opts, source, claim, out, format, multi=True)
    title = f"Scaling report: {len(summary)} tasks"
    subtitle = ("one section per task; summary first (posterior probabilities, multiplicity "
                "adjustment for bootstrap p-values only)" if bayes else
                "one section per task; multiplicity-adjusted summary first")
    return _write(blocks, title, subtitle, format, out)


# =============================================================================== CLI
