"""``fit_trend``: wire data -> shape tests -> bootstrap -> result. No statistics live here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._version import __version__
from .bayes import fit_bayes
from .bootstrap import as_generator, replicate_scores
from .curves import design_matrix
from .data import ModelScores, degenerate_families, load_results, model_scores
from .exceptions import DataValidationError, OptionError
from .metareg import batched_gls
from .options import BayesOptions, FitOptions, LoadOptions
from .results import TrendResult
from .shapes import ShapeAnalysis, analyse_shape, default_flat_margin
from .evidence import add_noise_diagnostics
from .verdicts import MIN_SIZES, U_MIN_SIZES, U_SHAPES, VERDICTS

__all__ = ["fit_trend", "analyse", "run_bootstrap", "default_flat_margin",
           "degenerate_families", "pooled_index"]


#: the narrowest scale range (in decades) a family may span: 1% of a decade (~2.3%)
MIN_DECADES = 0.01


def _check_shapes(shapes, ms: ModelScores):
    if isinstance(shapes, str) and shapes == "auto":
        return set(VERDICTS)
    shapes = {shapes} if isinstance(shapes, str) else set(shapes)
    unknown = shapes - set(VERDICTS)
    if unknown:
        raise DataValidationError(
            f"shapes holds unknown names {sorted(unknown)}; choose from {list(VERDICTS)} or "
            "'auto'.")
    return shapes | {"flat", "inconclusive"}


def _check_family_sizes(ms: ModelScores, shapes: set, explicit: bool):
    need_u = explicit and bool(shapes & set(U_SHAPES))
    for fam in ms.families:
        sub = ms.models[ms.models["family"] == fam]
        n = sub["x"].nunique()
        if n < MIN_SIZES:
            raise DataValidationError(
                f"family {fam!r} has {n} model size{'s' if n != 1 else ''} "
                f"({list(sub['model'])}); a trend needs at least {MIN_SIZES} models of different "
                "sizes (2 points leave no room for model-level noise). Add models, or drop the "
                "family.")
        span = float(np.ptp(np.log10(sub["x"].to_numpy(dtype=float))))
        if span < MIN_DECADES:
            raise DataValidationError(
                f"family {fam!r} spans only {10 ** span:.6g}x in {ms.meta['x']} "
                f"({sub['x'].min():.6g} to {sub['x'].max():.6g}); a trend over log scale needs "
                f"sizes at least {10 ** MIN_DECADES:.3g}x apart. Check the size column (are "
                "these one model's variants?), or drop the family.")
        if need_u and n < U_MIN_SIZES:
            raise DataValidationError(
                f"family {fam!r} has {n} model sizes; U-shaped / inverted-U tests need at least "
                f"{U_MIN_SIZES} (two lines of at least 2 models each). Add models, or leave "
                "'u_shaped' and 'inverted_u' out of shapes.")


def _analyse_all(ms: ModelScores, *, alpha, confidence_level, flat_margin, allow_u, sign):
    y_all = ms.models["score"].to_numpy(dtype=float)
    lx_all = ms.models["log10_x"].to_numpy(dtype=float)
    out = {}
    for fam in ms.families:
        idx = ms.family_index(fam)
        out[fam] = analyse_shape(fam, y_all[idx], ms.cov[np.ix_(idx, idx)], lx_all[idx],
                                 np.zeros(len(idx), dtype=int), alpha=alpha,
                                 confidence_level=confidence_level, flat_margin=flat_margin,
                                 allow_u=allow_u, sign=sign)
        out[fam].idx = idx
    if len(ms.families) > 1:
        idx = pooled_index(ms)
        fams = ms.models["family"].to_numpy()[idx]
        groups = pd.Categorical(fams, categories=pd.unique(fams)).codes
        out["pooled"] = analyse_shape("pooled", y_all[idx], ms.cov[np.ix_(idx, idx)],
                                      lx_all[idx], groups, alpha=alpha,
                                      confidence_level=confidence_level,
                                      flat_margin=flat_margin, allow_u=allow_u, sign=sign)
        out["pooled"].idx = idx
    return out


def pooled_index(ms: ModelScores) -> np.ndarray:
    """Positions of the models behind the pooled verdict: every family but the degenerate ones
    (:func:`degenerate_families`), unless no other family is left."""
    left_out = set(degenerate_families(ms))
    keep = [f for f in ms.families if f not in left_out] or list(ms.families)
    return np.flatnonzero(ms.models["family"].isin(keep).to_numpy())


def _bootstrap_slopes(ms: ModelScores, analyses: dict, n_boot: int, rng) -> dict:
    """Replicate linear slopes per family and pooled, from one shared set of replicates."""
    tau2 = np.zeros(len(ms.models))
    for fam in ms.families:
        tau2[ms.family_index(fam)] = analyses[fam].linear.tau2
    Y = replicate_scores(ms, n_boot, rng, tau2)
    out = {}
    for label, a in analyses.items():
        X = design_matrix("linear", a.z, a.groups)
        idx = a.idx
        beta, _, _ = batched_gls(Y[:, idx], X, a.linear.sigma)
        out[label] = beta[:, -1]
    return out


def analyse(ms: ModelScores, table: pd.DataFrame, *, confidence_level: float = 0.95,
            flat_margin: float | None = None, shapes="auto"):
    """The deterministic core of :func:`fit_trend`: shape analyses without bootstrap or notes.

    Simulation studies call this directly (it is what decides every verdict).

    Returns
    -------
    analyses : dict
        Family name (and 'pooled' when there are several) -> :class:`ShapeAnalysis`.
    shapes : set
        The shapes considered.
    flat_margin : float or None
        The margin used.
    """
    explicit = not (isinstance(shapes, str) and shapes == "auto")
    wanted = _check_shapes(shapes, ms)
    _check_family_sizes(ms, wanted, explicit)
    margin = default_flat_margin(table, ms) if flat_margin is None else float(flat_margin)
    sign = 1 if ms.meta["higher_is_better"] else -1
    analyses = _analyse_all(ms, alpha=1 - confidence_level, confidence_level=confidence_level,
                            flat_margin=margin, allow_u=bool(wanted & set(U_SHAPES)), sign=sign)
    for a in analyses.values():
        a.verdict = a.verdict if a.verdict in wanted else "inconclusive"
    return analyses, wanted, margin


def fit_trend(results, *, x: str = "n_params", method: str = "bootstrap", n_boot: int = 2000,
              confidence_level: float = 0.95, flat_margin: float | None = None,
              shapes="auto", task: str | None = None, metric: str | None = None,
              higher_is_better: bool | None = None, proportion: bool | None = None,
              chance: float | None = None, rng=None,
              **bayes_options):
    """Fit flat, monotone and U-type curves to a scaling curve and return a shape verdict.

    Parameters
    ----------
    results : pandas.DataFrame or path-like
        Per-example or aggregated results (see :func:`scalingfit.load_results`).
    x : {'n_params', 'flops'}
        Scale variable, used on log10 scale.
    method : {'bootstrap', 'bayes'}
        ``'bootstrap'``: random-effects meta-regression over models with paired-bootstrap
        covariance and Knapp-Hartung tests (default, calibrated). ``'bayes'``: the PyMC model of
        :mod:`scalingfit.bayes`.
    n_boot : int
        Paired-bootstrap replicates (for the bootstrap slope distribution and intervals).
    confidence_level : float
        Interval level; tests run at ``alpha = 1 - confidence_level``.
    flat_margin : float, optional
        Equivalence margin for "flat", in score units over the observed range (default: see
        :func:`scalingfit.shapes.default_flat_margin`).
    shapes : 'auto' or list of str
        Shapes to consider. 'auto' considers U-type shapes only for families with >= 5 sizes;
        naming them explicitly makes fewer models an error.
    task, metric, higher_is_better, proportion : optional
        Passed to :func:`scalingfit.load_results` (a table it returned keeps its choices).
    chance : float, optional
        Chance-level score (e.g. 0.5 for two classes), for the floor diagnostics and the chance
        line of the plots. Default: from a ``chance`` or ``n_classes`` column when present.
    rng : None, int or numpy.random.Generator
        Randomness; the seed used is recorded in ``result.meta['seed']``.
    **bayes_options
        Options of the Bayesian engine when ``method='bayes'``: the fields of
        :class:`scalingfit.options.BayesOptions`.

    Returns
    -------
    TrendResult
        ``meta['options']`` records the option records the fit ran with.

    Raises
    ------
    OptionError
        A bad option value or type, or an option of the Bayesian engine without
        ``method='bayes'``.
    DataValidationError
        Bad input (see :func:`load_results`), fewer than 3 model sizes in a family, or fewer
        than 5 when U-type shapes are requested explicitly.

    Examples
    --------
    >>> from scalingfit import fit_trend
    >>> result = fit_trend("data/synthetic_families.csv", rng=0)
    >>> result.shape
    'inverse'
    """
    opts = FitOptions(x=x, method=method, n_boot=n_boot, confidence_level=confidence_level,
                      flat_margin=flat_margin, shapes=shapes, chance=chance)
    bayes = bayes_options_of(opts, bayes_options)
    load = LoadOptions(task=task, metric=metric, higher_is_better=higher_is_better,
                       proportion=proportion)
    generator, seed = as_generator(rng)
    table, ms, result = run_bootstrap(results, generator, seed, load=load, options=opts)
    if bayes is not None:
        result = fit_bayes(table, ms, result, rng=generator, options=bayes)
        result = _record_options(result, load, opts, bayes)
    return result


def bayes_options_of(opts: FitOptions, given: dict) -> BayesOptions | None:
    """The Bayesian engine's option record for ``method='bayes'`` (None for the bootstrap).

    Raises
    ------
    OptionError
        Options of the Bayesian engine given with the bootstrap engine, or an unknown keyword.
    """
    if opts.method != "bayes":
        if given:
            raise OptionError(
                f"{', '.join(sorted(given))}: not an option of fit_trend with "
                f"method={opts.method!r} (only the Bayesian engine takes extra options: "
                "scalingfit.bayes.fit_bayes). Pass method='bayes', or check the spelling.")
        return None
    unknown = sorted(set(given) - set(BayesOptions.names()))
    if unknown:
        raise OptionError(
            f"{', '.join(unknown)}: not an option of fit_trend; the Bayesian engine takes "
            f"{list(BayesOptions.names())}. Check the spelling.")
    return BayesOptions(**given)


def run_bootstrap(results, generator, seed, *, load: LoadOptions, options: FitOptions):
    """The bootstrap engine's fit, with its noise diagnostics: ``(table, ms, result)``.

    What :func:`fit_trend` computes before the Bayesian engine starts from it, drawing from
    ``generator`` (``seed`` is recorded); :func:`scalingfit.claims.check_claim` runs its
    frequentist checks on it and hands it on to :func:`scalingfit.bayes.fit_bayes`, so the
    Bayesian check does not fit the bootstrap engine twice.
    """
    table = load_results(results, **load.to_dict())
    ms = model_scores(table, x=options.x)
    analyses, wanted, margin = analyse(ms, table, confidence_level=options.confidence_level,
                                       flat_margin=options.flat_margin, shapes=options.shapes)
    boot = _bootstrap_slopes(ms, analyses, options.n_boot, generator)
    meta = {**ms.meta, "method": "bootstrap", "n_boot": options.n_boot,
            "confidence_level": options.confidence_level, "alpha": options.alpha,
            "flat_margin": margin, "shapes": sorted(wanted), "seed": seed,
            "version": __version__, "n_families": len(ms.families),
            "degenerate_families": degenerate_families(ms),
            "left_out_of_pooled": _left_out(ms, analyses),
            "n_models": len(ms.models), "n_examples": _n_examples(ms)}
    result = TrendResult.from_analyses(ms, analyses, boot, meta)
    result = _add_noise(result, ms, generator, table=table, chance=options.chance)
    return table, ms, _record_options(result, load, options, None)


def _record_options(result, load, opts, bayes):
    """``meta['options']``: the option records as plain values (what the reproducing command
    and the reports read)."""
    recorded = {"load": load.to_dict(), "fit": opts.to_dict(),
                "bayes": bayes.to_dict() if bayes is not None else None}
    return result.replace(meta={**result.meta, "options": recorded})


def _add_noise(result, ms, generator, *, table, chance):
    """Trend strength, generality and noise diagnostics (:mod:`scalingfit.evidence`), and the
    chance level in ``meta['chance']`` when one level holds for every model."""
    if chance is not None and ms.meta["proportion"] and not 0 <= chance <= 1:
        raise DataValidationError(
            f"chance must lie in [0, 1] for the proportion metric "
            f"{ms.meta.get('metric') or 'score'!r}; got {chance!r} (e.g. 0.5 for two classes, "
            "0.25 for four).")
    result = add_noise_diagnostics(result, ms, rng=generator, table=table, chance=chance)
    levels = ((result.meta.get("noise") or {}).get("floor_ceiling") or {}).get("chance")
    if levels and np.allclose(levels, levels[0]):
        result = result.replace(meta={**result.meta, "chance": float(levels[0])})
    return result


def _left_out(ms: ModelScores, analyses: dict) -> list:
    """Families the pooled verdict leaves out (degenerate: one score everywhere)."""
    if "pooled" not in analyses:
        return []
    kept = set(ms.models["family"].to_numpy()[analyses["pooled"].idx])
    return [f for f in ms.families if f not in kept]


def _n_examples(ms: ModelScores):
    n = ms.models["n_examples"]
    return int(n.max()) if n.notna().all() else None
