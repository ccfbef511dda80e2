"""Sampling the Bayesian engine's posteriors: nutpie through the numba kernels (or PyMC's NUTS),
start points, the default target acceptance, and the sampler's diagnostic notes.

nutpie samples the model-level posterior through :func:`scalingfit.bayes.kernels.model_level_logp`
and the crossed one through :func:`scalingfit.bayes.kernels.crossed_logp`, numba kernels that
numba caches on disk (nutpie's own compile of the PyMC models took 13-34 s in every new
process); the PyMC models of :mod:`scalingfit.bayes.models` are the definition, checked against
the kernels in the tests, and are what ``sampler='pymc'`` samples. Compiled models are cached per
process, keyed on the model kind and the data shapes (:data:`CACHE`), and new data reach them
through nutpie's ``with_data`` / PyMC's data containers, so nothing recompiles.

Diagnostics (:func:`sampler_notes`): rank-normalised R-hat (Vehtari et al. 2021), bulk and tail
ESS, divergences, E-BFMI (Betancourt 2016); each failed check is a numbered note whose message
lists what to try.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..diagnostics import note
from ..exceptions import ConvergenceError
from . import kernels
from .models import crossed_variables, kernel_constants

__all__ = ["CACHE", "sample", "default_target_accept", "sampler_notes", "require_nutpie",
           "model_level_nutpie_model", "crossed_nutpie_model", "crossed_expand",
           "RHAT_MAX", "ESS_MIN", "BFMI_MIN"]

RHAT_MAX, ESS_MIN, BFMI_MIN = 1.01, 400, 0.3
#: per-example rows per model from which the crossed model's default target_accept is 0.9
CROSSED_RICH = 200
#: compiled models, keyed on the model kind and the data shapes (one process)
CACHE: dict = {}


def default_target_accept(engine) -> float:
    """NUTS target acceptance when the caller gives none (measured; docs/bayes.md).

    Model-level 0.95 (one divergence in 4,000 draws on one of four seeds at 0.9). Crossed with
    >= 200 examples per model 0.9: no divergence on six such data sets, and 0.95 doubles the
    trajectories (15 -> 31 leapfrog steps per draw) and the sampling time of this, the costly
    case. Crossed with fewer examples or aggregated counts 0.99: at 0.9 divergences in 5 of 11
    fits, at 0.95 in 2 of 11, at 0.99 in none, and sampling takes seconds there anyway.
    """
    if engine.kind == "model_level":
        return 0.95
    return 0.9 if engine.n_ex and engine.min_examples >= CROSSED_RICH else 0.99


def require_nutpie():
    """Import nutpie (a core dependency); fail with what to do when it is missing."""
    try:
        import nutpie
    except ImportError as err:
        raise ImportError(
            "scalingfit's Bayesian engine needs nutpie, a dependency of scalingfit that is not "
            "installed in this environment. 1. Reinstall scalingfit (pip install scalingfit) "
            "or pip install nutpie; 2. or pass sampler='pymc' (PyMC's own NUTS, minutes per "
            "fit).") from err
    return nutpie


def sample(engine, data, *, sampler, draws, tune, chains, cores, seed, target_accept):
    """Sample ``engine``'s cached model (one per kind and data shapes) with ``data``; time it.

    Returns ``(idata, {'compile_s': ..., 'sample_s': ...})``.

    Raises
    ------
    ConvergenceError
        The sampler could not run (e.g. no finite start point), with what to try.
    """
    entry = CACHE.setdefault(engine.key(), {})
    t0 = time.perf_counter()
    try:
        if sampler == "nutpie":
            nutpie = require_nutpie()
            if "compiled" not in entry:
                entry["compiled"] = engine.nutpie_model()
            t1 = time.perf_counter()
            idata = nutpie.sample(entry["compiled"].with_data(**data), draws=draws, tune=tune,
                                  chains=chains, cores=cores, seed=seed, progress_bar=False,
                                  target_accept=target_accept)
        else:
            if "model" not in entry:
                entry["model"] = engine.build()
            t1 = time.perf_counter()
            idata = _pymc_sample(entry["model"], data, draws=draws, tune=tune, chains=chains,
                                 cores=cores, seed=seed, target_accept=target_accept)
    except (RuntimeError, FloatingPointError) as err:
        raise ConvergenceError(
            f"the {engine.kind} model's sampler ({sampler}) could not run: {err}. "
            "1. Check the data for a model or family far off the others (a wild point makes "
            "the hierarchy stiff); 2. raise target_accept (now "
            f"{target_accept}); 3. use model='model_level' (it samples only the 3 + F scale "
            "parameters); 4. try sampler='pymc'.") from err
    t2 = time.perf_counter()
    return idata, {"compile_s": t1 - t0, "sample_s": t2 - t1}


def _pymc_sample(model, data, *, draws, tune, chains, cores, seed, target_accept):
    import pymc as pm

    with model:
        pm.set_data(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                             random_seed=seed, progressbar=False, target_accept=target_accept,
                             compute_convergence_checks=False)


# --------------------------------------------------------------------------- nutpie models
def _guarded(kernel):
    """nutpie's ``make_logp_fn`` for ``kernel(x, **data) -> (logp, grad)``: where the kernel
    fails (a covariance not positive definite far out in warm-up) or returns a non-finite
    value, the callback returns -inf, which nutpie counts as a divergence; an exception would
    abort the sampler."""
    def make_logp():
        def logp(x, **data):
            try:
                lp, grad = kernel(x, **data)
            except Exception:
                return -np.inf, np.zeros_like(x)
            if not (np.isfinite(lp) and np.isfinite(grad).all()):
                return -np.inf, np.zeros_like(x)
            return float(lp), grad
        return logp
    return make_logp


def _jittered(start):
    """nutpie's initial-point function: ``start`` (PyMC's initial point on the unconstrained
    scale) jittered by U(-1, 1), as nutpie does for a PyMC model."""
    def initial_point(seed):
        return start + np.random.default_rng(seed).uniform(-1, 1, size=start.shape)
    return initial_point


def model_level_data_arrays(k, F):
    """Placeholder data of the model-level kernel's shapes (``y, V, Z, fam``)."""
    return {"y": np.zeros(k), "V": np.eye(k), "Z": np.zeros((k, 3 + 3 * F)),
            "fam": np.zeros(k, dtype=np.int64)}


def model_level_nutpie_model(k, F):
    """nutpie model of the collapsed model-level posterior, its log density the numba kernel
    :func:`scalingfit.bayes.kernels.model_level_logp` (compiled once per machine, cached on
    disk; the PyMC model of :func:`~scalingfit.bayes.models.build_model_level` needs nutpie's
    per-process compile, 13-29 s)."""
    from nutpie.compiled_pyfunc import from_pyfunc

    model_level_logp = kernels.model_level_logp
    consts = kernel_constants("model_level")
    start = np.log(np.concatenate([consts[1], np.full(F, consts[2])]))    # PyMC's start

    def make_expand(seed1, seed2, chain):
        def expand(x, **shared):
            return {"sd": np.exp(x[:3]), "tau": np.exp(x[3:])}
        return expand

    empty = model_level_data_arrays(k, F)
    model_level_logp(start, *empty.values(), *consts)     # compile, or load numba's disk cache
    logp = _guarded(lambda x, y, V, Z, fam: model_level_logp(x, y, V, Z, fam, *consts))
    return from_pyfunc(3 + F, logp, make_expand, [np.dtype("float64")] * 2,
                       [(3,), (F,)], ["sd", "tau"], coords={"family_idx": np.arange(F)},
                       dims={"tau": ("family_idx",)}, shared_data=empty,
                       make_initial_point_fn=_jittered(start))


def crossed_nutpie_model(engine):
    """nutpie model of the crossed posterior, its log density the numba kernel
    :func:`scalingfit.bayes.kernels.crossed_logp` (cached on disk; nutpie's compile of the
    PyMC model took 13-34 s in every new process). The start is PyMC's initial point of the
    same model, jittered by U(-1, 1) on the unconstrained scale as nutpie does."""
    from nutpie.compiled_pyfunc import from_pyfunc

    crossed_logp = kernels.crossed_logp
    k, n_ex = engine.des.k, engine.n_ex
    normal = engine.likelihood == "normal"
    consts = kernel_constants("crossed", engine.likelihood)
    model = engine.build()
    point = model.initial_point()
    start = np.concatenate([np.ravel(point[v.name]) for v in model.value_vars])
    shared = {name: np.asarray(val, dtype=float) for name, val in engine.data().items()}
    shared.setdefault("T", np.ones_like(shared["Y"]))
    crossed_logp(start, shared["Y"], shared["T"], shared["W"], shared["Z"], shared["U"],
                 shared["mask"], n_ex, normal, *consts)    # compile, or load numba's cache

    def make_expand(seed1, seed2, chain):
        def expand(x, Y, T, W, Z, U, mask):
            return crossed_expand(x, U, mask, k, n_ex, normal)
        return expand

    logp = _guarded(lambda x, Y, T, W, Z, U, mask: crossed_logp(x, Y, T, W, Z, U, mask, n_ex,
                                                                normal, *consts))
    names, shapes = crossed_variables(k, n_ex, normal)
    return from_pyfunc(len(start), logp, make_expand, [np.dtype("float64")] * len(names),
                       shapes, names, shared_data=shared, make_initial_point_fn=_jittered(start))


def crossed_expand(x, U, mask, k, n_ex, normal):
    """The crossed model's variables from an unconstrained point (PyMC's transforms)."""
    tau = np.exp(x[3:4])
    a, z = x[4:4 + k], x[4 + k:4 + 2 * k]
    out = {"sd": np.exp(x[:3]), "tau": tau, "a": a.copy(), "z": z.copy(),
           "eta_m": kernels.matvec(U, mask * a + (1.0 - mask) * tau[0] * z, False)}
    if n_ex:
        pos = 4 + 2 * k
        v = x[pos + 1:pos + n_ex]
        n, sv = float(n_ex), v.sum()
        out["sd_d"] = np.asarray(np.exp(x[pos]))
        out["d"] = np.append(v - sv / (np.sqrt(n) + n), -sv / np.sqrt(n))
    if normal:
        out["sigma"] = np.asarray(np.exp(x[-1]))
    return out


# --------------------------------------------------------------------------- diagnostics
def _divergence_note(label, div, target_accept, details):
    third = ("" if label.startswith("model_level") else
             "; 3. use model='model_level' (it samples only the 3 + F scale parameters)")
    return note("bayes_divergences", "warning",
                f"{label}: {div} divergent transitions; the posterior may be biased. "
                f"1. Raise target_accept (now {target_accept}) to "
                f"{0.99 if (target_accept or 0) < 0.99 else 0.995}; 2. check the "
                "data for a model or family far off the others (a wild point makes "
                f"the hierarchy stiff){third}.", **details)


def sampler_notes(idata, label, var_names, target_accept=None) -> tuple:
    """Convergence notes of one fit and their figures: ``(notes, details)``.

    ``details`` holds ``fit, max_rhat, min_ess_bulk, min_ess_tail, divergences, min_bfmi``
    over ``var_names``; a note fires for R-hat > :data:`RHAT_MAX`, bulk or tail ESS <
    :data:`ESS_MIN`, any divergence, and E-BFMI < :data:`BFMI_MIN` in a chain.
    """
    import arviz as az

    notes = []
    post = idata.posterior[var_names]
    rhat = float(az.rhat(post).to_array().max())
    ess_b = float(az.ess(post, method="bulk").to_array().min())
    ess_t = float(az.ess(post, method="tail").to_array().min())
    ss = idata.sample_stats
    div = int(ss["diverging"].sum()) if "diverging" in ss else 0
    bfmi = np.atleast_1d(az.bfmi(idata)) if "energy" in ss else np.array([np.nan])
    details = {"fit": label, "max_rhat": rhat, "min_ess_bulk": ess_b, "min_ess_tail": ess_t,
               "divergences": div,
               "min_bfmi": float(np.nanmin(bfmi)) if np.isfinite(bfmi).any() else np.nan}
    if not rhat <= RHAT_MAX:
        notes.append(note("bayes_rhat", "warning",
                          f"{label}: max R-hat {rhat:.3f} > {RHAT_MAX}: chains disagree; run "
                          "longer (draws=, tune=) before trusting the probabilities.", **details))
    if not min(ess_b, ess_t) >= ESS_MIN:
        notes.append(note("bayes_low_ess", "warning",
                          f"{label}: effective sample size {min(ess_b, ess_t):.0f} < {ESS_MIN} "
                          "(bulk or tail); increase draws=.", **details))
    if div:
        notes.append(_divergence_note(label, div, target_accept, details))
    if details["min_bfmi"] < BFMI_MIN:          # NaN (no energy recorded) is not low
        notes.append(note("bayes_low_bfmi", "warning",
                          f"{label}: E-BFMI {details['min_bfmi']:.2f} < {BFMI_MIN} in some chain: "
                          "the sampler explores the energy distribution poorly.", **details))
    return notes, details


def draws(idata, name):
    """Posterior draws of ``name`` stacked over chains: shape (n_draws, ...)."""
    v = idata.posterior[name].values
    return v.reshape((-1,) + v.shape[2:])
