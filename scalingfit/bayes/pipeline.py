"""``fit_bayes``: options -> design and engine -> sampling -> curve summaries -> LOO -> result.

Each step lives in its own module (:mod:`~scalingfit.bayes.models`,
:mod:`~scalingfit.bayes.engines`, :mod:`~scalingfit.bayes.sampling`,
:mod:`~scalingfit.bayes.summaries`, :mod:`~scalingfit.bayes.loo`); this one only wires them.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..data import ModelScores
from ..diagnostics import NOTE_COLUMNS, note
from ..exceptions import OptionError
from ..options import BayesOptions, split_options
from . import loo, sampling, summaries
from .engines import ENGINES
from .models import PRIORS, Design

__all__ = ["fit_bayes"]

#: draws per chain (2 chains) of an exact LOO refit
_REFIT_DRAWS = 500


def resolve_options(options, kwargs) -> BayesOptions:
    """The fit's :class:`~scalingfit.options.BayesOptions`: ``options`` as given, or built from
    the keyword options (an unknown keyword or both ways at once is an
    :class:`~scalingfit.exceptions.OptionError`)."""
    if options is not None and kwargs:
        raise OptionError(
            f"fit_bayes takes its options either as options=BayesOptions(...) or as keywords, "
            f"not both; got options= and {', '.join(sorted(kwargs))}.")
    if options is None:
        (given,) = split_options(kwargs, BayesOptions, where="fit_bayes")
        return BayesOptions(**given)
    if not isinstance(options, BayesOptions):
        raise OptionError(f"options must be a BayesOptions record or None; got "
                          f"{type(options).__name__}.")
    return options


class _Sampler:
    """Draws the engine's posterior with the fit's settings: one seed per call (from the fit's
    seed), compile and sampling time summed over calls."""

    def __init__(self, engine, options, *, sampler, cores, target_accept, seed):
        self.engine, self.options = engine, options
        self.sampler, self.cores, self.target_accept = sampler, cores, target_accept
        self._seeds = iter(np.random.SeedSequence(seed).generate_state(
            2 + options.max_refits * 2))
        self.timing = {"compile_s": 0.0, "sample_s": 0.0}

    def __call__(self, data, refit=False):
        # a LOO refit serves one model's term, computed on <= 1,000 draws (the crossed
        # model's terms are thinned to 1,000): 2 chains x 500 draws give them, at a third of
        # the cost; the warm-up stays full
        o = self.options
        n_draws, n_chains = ((min(int(o.draws), _REFIT_DRAWS), min(int(o.chains), 2)) if refit
                             else (int(o.draws), int(o.chains)))
        idata, t = sampling.sample(self.engine, data, sampler=self.sampler, draws=n_draws,
                                   tune=int(o.tune), chains=n_chains,
                                   cores=min(self.cores, n_chains), seed=int(next(self._seeds)),
                                   target_accept=self.target_accept)
        for key in self.timing:
            self.timing[key] += t[key]
        return idata, t

    def notes(self, idata, label):
        """Sampler notes of one fit: ``(notes, details)``."""
        return sampling.sampler_notes(idata, f"{self.engine.kind} {label}",
                                      list(self.engine.monitored), self.target_accept)


def _resolved(options: BayesOptions, kind: str) -> tuple:
    """``(sampler, cores)`` the fit uses: nutpie for 'auto' (a missing nutpie fails here,
    loudly); cores ``min(chains, 2)``, but 1 for the model-level kernel with nutpie (it is
    called through Python, and two threads contending for the interpreter were slower)."""
    sampler = options.sampler
    if sampler in ("auto", "nutpie"):
        sampler = "nutpie"
        sampling.require_nutpie()
    cores = options.cores
    if cores is None:
        cores = 1 if (kind == "model_level" and sampler == "nutpie") else min(options.chains, 2)
    return sampler, int(cores)


def _tables(result, rows, prow):
    """The result's family table and pooled row with the posterior columns."""
    fam_df = result.families.copy()
    for fam, row in rows.items():
        sel = fam_df["family"] == fam
        for col, val in row.items():
            if col not in fam_df.columns:
                fam_df[col] = np.nan if not isinstance(val, str) else None
            fam_df.loc[sel, col] = val
        fam_df.loc[sel, "p_gate"] = np.nan
    pooled = dict(result.pooled)
    pooled.update(prow)
    pooled["family"] = "pooled" if len(rows) > 1 else pooled.get("family")
    pooled["p_gate"] = np.nan
    return fam_df, pooled


def _comparison(engine, draw, idata, fam_df, pooled, selection):
    """Fit the linear form and compare it with the quadratic by grouped LOO; sets
    ``best_curve``. Returns ``(selection, notes)``."""
    idata_lin, _ = draw(engine.data(curvature=False))
    notes, _ = draw.notes(idata_lin, "linear")

    def check(idata_m, label):
        return [n for n in draw.notes(idata_m, label)[0] if n["code"] != "bayes_low_ess"]

    selection, loo_notes = loo.compare(engine, {"linear": (idata_lin, False),
                                                "quadratic": (idata, True)},
                                       draw, int(draw.options.max_refits),
                                       int(draw.options.chains), check=check)
    notes += loo_notes
    for fam in engine.des.families:
        s = selection[selection["family"] == fam]
        fam_df.loc[fam_df["family"] == fam, "best_curve"] = s.loc[
            s["delta_elpd"].idxmax(), "curve"]
    s = selection[selection["family"] == "all"]
    pooled["best_curve"] = s.loc[s["delta_elpd"].idxmax(), "curve"]
    return selection, notes


def _fit_note(kind, sampler, options, seed, wall, timing):
    return note("bayes_fit", "info",
                f"Bayesian {kind} model, {sampler} sampler: {options.chains} chains x "
                f"{options.draws} draws ({options.tune} warm-up), seed {seed}; {wall:.1f} s "
                f"(compile {timing['compile_s']:.1f} s). Verdicts need posterior "
                f"probability >= {options.decision_threshold}.", model=kind, sampler=sampler,
                seed=seed, wall_s=wall)


def fit_bayes(table, ms: ModelScores, result, *, rng, options: BayesOptions | None = None,
              flat_margin: float | None = None, **kwargs):
    """Bayesian shape analysis of the same data as ``result`` (:mod:`scalingfit.bayes`).

    Parameters
    ----------
    table : pandas.DataFrame
        The validated results table (:func:`scalingfit.load_results`).
    ms : ModelScores
        Its per-model scores and paired covariance.
    result : TrendResult
        The bootstrap engine's result for the same data; fields not replaced here are kept.
    rng : numpy.random.Generator
        Seeds the sampler and the conditional draws; the seed is recorded in
        ``meta['bayes']['seed']``.
    options : BayesOptions, optional
        The engine's options (:class:`scalingfit.options.BayesOptions`: ``model, draws, tune,
        chains, compare, target_accept, decision_threshold, cores, sampler, max_refits``; its
        docstring and docs/bayes.md give their meaning and defaults). None: built from
        ``**kwargs``.
    flat_margin : float, optional
        Equivalence margin for "flat" in score units over the observed range (default: the
        bootstrap engine's, ``result.meta['flat_margin']``).
    **kwargs
        The options as keywords (``fit_bayes(..., draws=500)``), when ``options`` is None.

    Returns
    -------
    TrendResult
        ``meta['method'] == 'bayes'``; ``families`` and ``pooled`` carry posterior slopes with
        credible intervals and ``p_positive, p_inverse, p_u_shaped, p_inverted_u, p_flat``;
        ``pooled`` also ``p_new_<shape>``, ``p_new_family`` (a new family shows the pooled
        shape, or the most probable one when the pooled verdict is inconclusive:
        ``new_family_shape``), ``p_all_<shape>`` (every observed family shows the shape: the
        joint posterior probability, at most the smallest family's) and ``p_all_families``
        (that of ``new_family_shape``); ``posterior`` holds the ``arviz.InferenceData`` of the
        quadratic fit: the sampled parameters, the slope draws behind the slope columns
        (``slope`` with dims chain, draw, family and ``pooled_slope``; score units per 10x)
        and, for 'model_level' only, a ``log_likelihood`` group of per-model terms
        (``az.loo`` works on it); ``selection`` the LOO comparison; sampler diagnostics are
        notes. ``meta['bayes']`` records the options (``options.to_dict()``) with what was
        resolved (model kind, sampler, cores, target_accept), the seed, priors, timings and
        convergence figures.

    Raises
    ------
    OptionError
        Unknown or bad options, or both ``options`` and keywords.
    DataValidationError
        ``model='crossed'`` for data without per-example rows or counts.
    ConvergenceError
        The sampler could not run at all (the message lists what to try).
    """
    options = resolve_options(options, kwargs)
    kind = "model_level" if options.model == "auto" else options.model
    sampler, cores = _resolved(options, kind)
    margin = result.meta.get("flat_margin") if flat_margin is None else float(flat_margin)
    seed = int(rng.integers(2**31 - 1))
    t_start = time.perf_counter()
    engine = ENGINES[kind](ms, Design(ms), table)
    target_accept = (sampling.default_target_accept(engine) if options.target_accept is None
                     else options.target_accept)
    draw = _Sampler(engine, options, sampler=sampler, cores=cores, target_accept=target_accept,
                    seed=seed)
    return _posterior_result(engine, draw, result, ms, margin=margin, seed=seed,
                             t_start=t_start)


def _posterior_result(engine, draw, result, ms, *, margin, seed, t_start):
    """Sample the quadratic fit, summarise its curves, compare forms when asked, and return
    ``result`` with the posterior quantities (:func:`fit_bayes`)."""
    options, des = draw.options, engine.des
    idata, _ = draw(engine.data(curvature=True))
    post = engine.extract(idata, np.random.default_rng(seed))
    notes, diag = draw.notes(idata, "quadratic")

    kw = dict(margin=margin, sign=1 if ms.meta["higher_is_better"] else -1,
              wanted=set(result.meta["shapes"]), threshold=options.decision_threshold,
              confidence_level=result.meta["confidence_level"])
    rows, bands, slopes, fam_labels = summaries.family_rows(engine, post, **kw)
    prow, pslope = summaries.pooled_row(engine, post, rows, slopes, fam_labels, **kw)
    fam_df, pooled = _tables(result, rows, prow)
    selection = result.selection
    if options.compare:
        selection, cmp_notes = _comparison(engine, draw, idata, fam_df, pooled, selection)
        notes += cmp_notes
    else:
        fam_df["best_curve"] = None
        pooled["best_curve"] = None

    summaries.attach_slopes(idata, des.families, slopes, pslope)
    loo.attach_loglik(engine, idata)
    wall = time.perf_counter() - t_start
    bayes_meta = {**options.to_dict(), "model": engine.kind, "sampler": draw.sampler,
                  "cores": draw.cores, "seed": seed, "flat_margin": margin,
                  "target_accept": draw.target_accept, "priors": PRIORS[engine.kind],
                  "likelihood": engine.likelihood, "wall_s": wall, **draw.timing, **diag}
    notes.append(_fit_note(engine.kind, draw.sampler, options, seed, wall, draw.timing))
    curves = pd.concat([result.curves, *bands], ignore_index=True)
    meta = {**result.meta, "method": "bayes", "bayes": bayes_meta}
    out = result.replace(shape=pooled["shape"], families=fam_df, pooled=pooled,
                         selection=selection, curves=curves, meta=meta, posterior=idata)
    return out.with_diagnostics(pd.DataFrame(notes, columns=NOTE_COLUMNS))
