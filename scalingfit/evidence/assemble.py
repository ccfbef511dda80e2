"""Assemble the evidence of a fit: run every room, word the notes, build the record.

:func:`add_noise_diagnostics` (called by :func:`scalingfit.fit_trend`) adds trend strength,
generality, the numbered notes and the :class:`~scalingfit.evidence.NoiseEvidence` record to a
fitted result; :func:`evidence_for_claim` adds what a claim check needs on top (the claim's own
null calibration and power, floor / ceiling with the caller's chance level).
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pandas as pd

from .. import diagnostics as dg
from ..diagnostics import NOTE_COLUMNS, records
from ..verdicts import U_SHAPES
from .floors import adjacent_differences, floor_ceiling, metric_sensitivity, model_noise_shares
from .generality import generality_table
from .labels import examples_per_model, label_data, main_label, target_claim
from .power import power_analysis
from .record import NoiseEvidence
from .robustness import influence_table, null_calibrated_p, shape_stability
from .strength import trend_strength

__all__ = ["noise_evidence", "add_noise_diagnostics", "evidence_for_claim", "claim_power"]


def claim_power(result, ms, label, claim, *, effect=None, rng=None, with_table=True) -> dict:
    """Power analysis of ``claim`` on ``label``: the curvature (and the simulated U verdict)
    for U-type claims when a quadratic was fitted, else the slope; ``effect`` defaults to the
    fitted coefficient."""
    a = result.analyses[label]
    d = label_data(result, ms, label)
    u = claim in U_SHAPES and a.quadratic is not None
    fit = a.quadratic if u else a.linear
    return power_analysis(d, effect=fit.params[-1] if effect is None else effect,
                          tau2=fit.tau2, n_examples=examples_per_model(ms, d.idx),
                          with_table=with_table, kind="curvature" if u else "slope",
                          u_curve=fit.params if u else None, claim=claim, rng=rng)


def noise_evidence(result, ms, *, claim, rng, n_stability=None, n_null=None, effect=None,
                   table=None, chance=None, stability=None, influence=None) -> dict:
    """Everything claim-specific: null-calibrated p and power for ``claim`` on the main label,
    plus (unless given) influence and stability, floor / ceiling and metric sensitivity.

    Returns the working dict (``stability`` with its raw replicate verdicts under ``'_raw'``,
    ``influence`` as a DataFrame of every label); :func:`add_noise_diagnostics` stores it as a
    :class:`NoiseEvidence`.
    """
    n_boot = int(result.meta.get("n_boot", 2000))
    n_stability = n_stability or min(n_boot, 400)
    n_null = n_null or min(n_boot, 1000)
    main = main_label(result)
    ev = {"claim": claim, "main_label": main}
    ev["influence"] = influence if influence is not None else influence_table(result, ms)
    ev["stability"] = stability if stability is not None else shape_stability(
        result, ms, n_boot=n_stability, rng=rng)
    ev["null"] = null_calibrated_p(label_data(result, ms, main), claim, n_sim=n_null, rng=rng)
    ev["power"] = {}
    for label in [main] + [lab for lab in result.analyses if lab != main]:
        is_main = label == main
        ev["power"][label] = claim_power(
            result, ms, label, claim if is_main else result.analyses[label].verdict,
            effect=effect if is_main else None, rng=rng, with_table=is_main)
    ev["floor_ceiling"] = floor_ceiling(ms, table=table, chance=chance,
                                        confidence_level=result.meta["confidence_level"])
    ev["metric_sensitivity"] = metric_sensitivity(result, table)
    return ev


def _record(ev, adjacent) -> NoiseEvidence:
    """The stored record of a :func:`noise_evidence` working dict (the one place it is built)."""
    main, infl = ev["main_label"], ev["influence"]
    stability = {k: v for k, v in ev["stability"].items() if not k.startswith("_")}
    return NoiseEvidence(
        claim=ev["claim"], main_label=main, stability=stability, null=ev["null"],
        power=ev["power"], influence=records(infl[infl["label"] == main]),
        influence_by_family=records(infl[infl["label"] != main]), adjacent=records(adjacent),
        floor_ceiling=ev["floor_ceiling"], metric_sensitivity=ev["metric_sensitivity"],
        n_stability=next(v["n"] for v in stability.values()), n_null=ev["null"]["n_sim"])


def _single_thread():
    """Limit BLAS to one thread: these are many tiny matrices, and on a shared 2-core machine
    threaded BLAS made them ~3x slower (measured). No-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def add_noise_diagnostics(result, ms, *, rng, table=None, chance=None, claim=None,
                          n_stability=None, n_null=None):
    """Add trend strength, generality and noise diagnostics to a fitted result.

    Parameters
    ----------
    result : TrendResult
        From the core fit (needs ``result.analyses``).
    ms : ModelScores
    rng : numpy.random.Generator
    table : pandas.DataFrame, optional
        The validated per-example table, for floor / ceiling (``chance`` / ``n_classes``
        columns) and metric sensitivity (``loss``, ``logprob_correct``, ... columns).
    chance : float, optional
        Chance-level score (overrides table columns).
    claim : str, optional
        Shape to test (default: the verdict when it is a trend, else the slope's direction).
    n_stability, n_null : int, optional
        Replicates for shape stability (default ``min(n_boot, 400)``) and the null-calibrated
        p-value (default ``min(n_boot, 1000)``); recorded in ``meta['noise']``.

    Returns
    -------
    TrendResult
        With ``strength``, ``generality``, new ``diagnostics`` rows and ``meta['noise']`` (a
        :class:`NoiseEvidence`).
    """
    if result.analyses is None:
        return result
    with _single_thread():
        return _add_noise_diagnostics(result, ms, rng=np.random.default_rng(rng), table=table,
                                      chance=chance, claim=claim, n_stability=n_stability,
                                      n_null=n_null)


def _add_noise_diagnostics(result, ms, *, rng, table, chance, claim, n_stability, n_null):
    claim = claim or target_claim(result)
    strength = trend_strength(result, ms)
    gen = generality_table(result, ms, claim)
    ev = noise_evidence(result, ms, claim=claim, rng=rng, table=table, chance=chance,
                        n_stability=n_stability, n_null=n_null)
    adj = adjacent_differences(ms, confidence_level=result.meta["confidence_level"])
    main = ev["main_label"]
    notes = (dg.notes_models(result, ms, adj, model_noise_shares(result, ms))
             + dg.notes_influence(ev["influence"]) + dg.notes_stability(ev["stability"])
             + dg.notes_null(ev["null"], result.analyses[main].verdict, result.meta["alpha"])
             + dg.notes_power(ev["power"][main])
             + dg.notes_floor(ev["floor_ceiling"]) + dg.notes_metric(ev["metric_sensitivity"])
             + dg.notes_generality(gen, result))
    out = result.replace(strength=strength, generality=gen,
                         meta={**result.meta, "noise": _record(ev, adj)})
    return out.with_diagnostics(pd.DataFrame(notes, columns=NOTE_COLUMNS))


def evidence_for_claim(result, ms, claim, *, rng, alpha, table=None, chance=None,
                       effect=None):
    """``result`` with the evidence a check of ``claim`` needs, and the notes it adds.

    Computes the noise evidence first when the result has none; then the null calibration of
    ``claim`` (reused when the stored evidence already tests it), its power (``effect``, default
    the fitted one), floor / ceiling (with ``chance``) and metric sensitivity on ``table``.
    Returns the result whose ``meta['noise']`` is a :class:`NoiseEvidence` with ``claim_null``
    and ``claim_power``; notes whose code is not yet among the diagnostics are appended.
    """
    if result.meta.get("noise") is None:   # a fit without diagnostics: compute them now
        result = add_noise_diagnostics(result, ms, rng=rng, claim=claim)
    noise = NoiseEvidence.from_mapping(result.meta["noise"])
    main = noise.main_label
    if noise.claim == claim:
        null = noise.null
    else:
        null = null_calibrated_p(label_data(result, ms, main), claim, n_sim=noise.n_null,
                                 rng=rng)
    pw = claim_power(result, ms, main, claim, effect=effect, rng=rng)
    fc = floor_ceiling(ms, table=table, chance=chance,
                       confidence_level=result.meta["confidence_level"])
    sens = metric_sensitivity(result, table)
    have = set(result.diagnostics["code"])
    extra = [n for n in dg.notes_floor(fc) + dg.notes_metric(sens)
             + dg.notes_null(null, result.analyses[main].verdict, alpha)
             if n["code"] not in have]
    result = result.replace(meta={**result.meta, "noise": noise.replace(
        floor_ceiling=fc, metric_sensitivity=sens, claim_null=null, claim_power=pw)})
    if extra:
        result = result.with_diagnostics(pd.DataFrame(extra, columns=list(extra[0])))
    return result
