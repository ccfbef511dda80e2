"""Bayesian shape analysis with PyMC: posterior shape probabilities, per family, pooled and for a
new family.

``fit_trend(..., method="bayes")`` calls :func:`fit_bayes` with the bootstrap engine's result for
the same data and returns the same :class:`~scalingfit.results.TrendResult`, with the verdicts,
slope intervals and shape probabilities replaced by posterior quantities. This is the only
module that imports PyMC, ArviZ or nutpie, and only inside functions.

Models
------
Both models put a quadratic curve over ``t`` -- log10 scale centred on the mid-point of all
models and divided by half the overall range, so ``t`` lies in [-1, 1] -- with family
coefficients ``beta_f = (a_f, b_f, c_f)`` partially pooled across families:
``beta_f ~ N(mu, diag(sd^2))``.

``model="model_level"`` (the default, ``"auto"``) -- the model is the unit of inference
(METHODS section 1). Per-model scores ``y`` (standardised: ``(y - mean) / s_y``) with their
known paired sampling covariance ``V`` (``ms.cov``)::

    y_m = a_f + b_f t_m + c_f t_m^2 + u_m + e_m,  u_m ~ N(0, tau_f^2),  e ~ N(0, V).

Everything but the scale parameters is linear-Gaussian, so ``mu``, the family deviations and
``u`` are integrated out analytically and NUTS samples only ``sd`` (3) and ``tau`` (one per
family) from the collapsed likelihood ``y ~ MvNormal(0, Z G Z' + diag(tau^2) + V)``. The
coefficients are then drawn exactly from their Gaussian conditional for every posterior draw
(Rao-Blackwellised). This is the limit of a non-centred parameterisation: there is no funnel to
diverge in, and the 3 + F dimensional posterior (6 for three families) samples in seconds.
nutpie samples it through :func:`scalingfit._kernels.model_level_logp`, a numba kernel of this
log density and its gradient that numba caches on disk (nutpie's own compile of the PyMC model
below took 13-29 s in every new process); the PyMC model is the definition, checked against the
kernel in the tests, and is what ``sampler='pymc'`` samples.

``model="crossed"`` -- the likelihood at the level of the data: per-example Bernoulli-logit for
0/1 scores (Gaussian for continuous per-example scores, binomial for aggregated proportions with
``n``) with crossed example effects ``d_i`` (zero-sum, shared by all models) and the same
hierarchy on the link scale::

    logit P(score_im = 1) = eta_m + d_i,
    eta_m = a_f + b_f t_m + c_f t_m^2 + u_m,   u_m ~ N(0, tau^2),

with **one** model-level ``tau`` shared by the families (a per-family ``tau_f`` with 8 models
each hugged 0 on some data sets and funnelled). The coefficients are integrated out here too:
NUTS samples the latent link-scale model scores ``eta ~ MvNormal(0, Z G Z' + tau^2 I)``, the
example effects ``d``, their SD ``sd_d`` and the scales ``sd, tau``. The part of ``eta`` in the
span of the family curves is sampled centred and the part orthogonal to it, whose prior is
``N(0, tau^2 I)`` alone, non-centred (``tau * z``), so a small ``tau`` makes no funnel. ``mu``
and ``beta_f`` are then drawn exactly from their Gaussian conditional given each draw of
``eta`` (as in the model-level model, with ``V = 0``). The score-scale curve of a family is the
average over its examples of ``invlogit(a_f + d_i + b_f t + c_f t^2)``. nutpie samples it
through the numba kernel :func:`scalingfit._kernels.crossed_logp` (cached on disk, checked
against this PyMC model in the tests), as for the model-level model.

Priors (standardised score units for the model-level model, logits for the crossed model)::

    mu = (mu_a, mu_b, mu_c) ~ N(0, 1)         (crossed: N(0, 1.5), N(0, 1), N(0, 1))
    sd_a ~ HalfNormal(1), sd_b ~ HalfNormal(0.5), sd_c ~ HalfNormal(0.5)
                                               (crossed: Gamma(2, 2/s), mean s = 1, 0.5, 0.5)
    tau_f ~ HalfNormal(0.5), one per family    (crossed: one tau ~ Gamma(2, 2/0.3))
    crossed only: sd_d ~ HalfNormal(2)         (Gaussian scores: HalfNormal(1), sigma ~
                                                HalfNormal(1))

The Gamma(2) priors avoid the boundary (Chung et al. 2013). They are weakly informative: over
``t in [-1, 1]`` they allow changes of several standard deviations of the observed scores in
either direction, and every shape has prior probability of at least several percent
(``tests/test_bayes.py::test_prior_predictive_allows_every_shape``).

Shapes and the decision rule
----------------------------
Every posterior draw of a curve is evaluated on a grid over the family's observed range, put in
performance orientation (sign flipped for lower-is-better metrics) and labelled with exactly one
shape (:func:`classify_curves`):

* ``flat`` -- the curve's range ``max - min`` is below ``flat_margin`` (the bootstrap engine's
  margin: score units over the observed range; a ROPE in Kruschke's sense);
* ``u_shaped`` -- it falls from the smallest model to an interior minimum by at least the margin
  and rises again from there to the largest model by at least the margin (``inverted_u``
  mirrored); both arms must matter, as in the two-lines test, not just the curvature;
* ``positive`` / ``inverse`` -- otherwise, the sign of the change from the smallest to the
  largest model.

``p_<shape>`` is the fraction of draws with that label (they sum to one). The verdict is the
shape whose posterior probability is at least ``decision_threshold`` (0.95); otherwise
"inconclusive". U labels are only allowed for families with >= 5 sizes (as in the bootstrap
engine), and a shape not in ``shapes`` becomes "inconclusive". The pooled row describes the
population curve ``mu``; ``p_new_<shape>`` are the shape probabilities of the curve of a *new*
family drawn from the hierarchy (posterior predictive), and ``p_new_family`` is the probability
that a new family shows the pooled shape. ``p_all_<shape>`` is the joint posterior probability
that every observed family shows the shape (``p_all_families``: that of the pooled shape; the
fraction of draws in which all family curves carry the label): the generality of the trend over
the families at hand, where the pooled row speaks of the population of families (measured
against the pooled verdict in docs/bayes.md).

Slopes are chords: ``(f(x_max) - f(x_min)) / (log10 x_max - log10 x_min)`` on the score scale
(score per 10x), which equals the linear slope when the truth is a line; ``ci_lower/ci_upper`` are
equal-tailed credible intervals at ``confidence_level`` and ``p_value`` is the two-sided posterior
tail probability ``2 min(P(slope > 0), P(slope < 0))``.

Model comparison
----------------
Linear against quadratic curves by PSIS-LOO that leaves out one whole *model* at a time: for the
model-level likelihood the pointwise term is ``log p(y_m | y_-m, theta)`` of the non-factorised
Gaussian (Buerkner, Gabry & Vehtari 2021); for the crossed model it is the log-likelihood of all
of a model's examples given the other models, ``log p(y_m | eta_-m, theta, y_-m)``, with its
latent score ``eta_m`` (15-point Gauss-Hermite over its conditional given ``eta_-m``) and the
example effects ``d_i`` (32-point Gauss-Hermite over their conditional given the other models'
answers) integrated out, on 1,000 thinned draws. Conditioning on the sampled ``d`` instead gave
Pareto k of 1.0-1.9 for every model. Where the Pareto k exceeds 0.7, that model is held out and
the model refitted (exact LOO; the held-out model's data are switched off through data
containers, so nothing is recompiled), up to ``max_refits`` models. The linear form reuses the
same compiled model with the curvature column set to zero.

References
----------
Vehtari, A., Gelman, A. & Gabry, J. (2017). Practical Bayesian model evaluation using
leave-one-out cross-validation and WAIC. Statistics and Computing 27:1413-1432.
Buerkner, P.-C., Gabry, J. & Vehtari, A. (2021). Efficient leave-one-out cross-validation for
Bayesian non-factorized normal and Student-t models. Computational Statistics 36:1243-1261.
Kruschke, J. K. (2018). Rejecting or accepting parameter values in Bayesian estimation.
AMPPS 1(2):270-280.
Vehtari, A. et al. (2021). Rank-normalization, folding, and localization: an improved R-hat.
Bayesian Analysis 16(2):667-718.
Betancourt, M. (2016). Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte
Carlo (E-BFMI). arXiv:1604.00695.
Seyboldt, A. et al. (2024). nutpie; Carpenter et al. (2017) Stan, for the NUTS variant.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from scipy import special

from .data import ModelScores
from .diagnostics import NOTE_COLUMNS, note
from .exceptions import DataValidationError

__all__ = ["fit_bayes", "classify_curves", "shape_probabilities", "SHAPE_NAMES", "PRIORS"]

SHAPE_NAMES = ("positive", "inverse", "u_shaped", "inverted_u", "flat")
_POS, _INV, _U, _IU, _FLAT = range(5)
U_SHAPES = ("u_shaped", "inverted_u")

#: prior scales (see module docstring), per model kind
PRIORS = {
    "model_level": {"mu": (1.0, 1.0, 1.0), "sd": (1.0, 0.5, 0.5), "tau": 0.5},
    "crossed": {"mu": (1.5, 1.0, 1.0), "sd": (1.0, 0.5, 0.5), "tau": 0.3, "sd_d": 2.0,
                "sigma": 1.0},
}
_GRID = 33
_RHAT_MAX, _ESS_MIN, _BFMI_MIN, _K_MAX = 1.01, 400, 0.3, 0.7
#: draws per chain (2 chains) of an exact LOO refit
_REFIT_DRAWS = 500
#: per-example rows per model from which the crossed model's default target_accept is 0.9
_CROSSED_RICH = 200

#: compiled models, keyed on the model kind and the data shapes (one process)
_CACHE: dict = {}


def _default_target_accept(engine) -> float:
    """NUTS target acceptance when the caller gives none (measured; docs/bayes.md).

    Model-level 0.95 (one divergence in 4,000 draws on one of four seeds at 0.9). Crossed with
    >= 200 examples per model 0.9: no divergence on six such data sets, and 0.95 doubles the
    trajectories (15 -> 31 leapfrog steps per draw) and the sampling time of this, the costly
    case. Crossed with fewer examples or aggregated counts 0.99: at 0.9 divergences in 5 of 11
    fits, at 0.95 in 2 of 11, at 0.99 in none, and sampling takes seconds there anyway.
    """
    if engine.kind == "model_level":
        return 0.95
    return 0.9 if engine.n_ex and engine.min_examples >= _CROSSED_RICH else 0.99


# --------------------------------------------------------------------------- shapes
def classify_curves(curves, *, margin=None, allow_u=True, sign=1) -> np.ndarray:
    """Label each curve (a row of values on a grid from the smallest to the largest model).

    Parameters
    ----------
    curves : array_like, shape (n, G)
        Curve values on the score scale, on a grid over the observed range.
    margin : float or None
        ``flat_margin`` in score units. None: "flat" is impossible and each arm of a U must
        reach 20% of the curve's range instead.
    allow_u : bool
        Whether U / inverted-U labels are possible.
    sign : {1, -1}
        -1 for lower-is-better metrics (labels are in performance orientation).

    Returns
    -------
    ndarray of int, shape (n,)
        Indices into :data:`SHAPE_NAMES` (rule in the module docstring).
    """
    f = sign * np.atleast_2d(np.asarray(curves, dtype=float))
    lo, hi = f.min(axis=1), f.max(axis=1)
    rng_ = hi - lo
    use_margin = margin is not None and np.isfinite(margin) and margin > 0
    thr = np.full(len(f), float(margin)) if use_margin else 0.2 * rng_
    first, last = f[:, 0], f[:, -1]
    labels = np.where(last >= first, _POS, _INV)
    if allow_u:
        u_arm = np.minimum(first - lo, last - lo)
        iu_arm = np.minimum(hi - first, hi - last)
        is_u = (u_arm >= thr) & (u_arm > 0)
        is_iu = (iu_arm >= thr) & (iu_arm > 0)
        labels = np.where(is_u & (~is_iu | (u_arm >= iu_arm)), _U, labels)
        labels = np.where(is_iu & (~is_u | (iu_arm > u_arm)), _IU, labels)
    if use_margin:
        labels = np.where(rng_ < margin, _FLAT, labels)
    return labels


def shape_probabilities(labels) -> dict:
    """``{'p_positive': ..., ...}``: the fraction of draws with each label."""
    labels = np.asarray(labels)
    return {f"p_{name}": float(np.mean(labels == i)) for i, name in enumerate(SHAPE_NAMES)}


def _decide(probs: dict, threshold: float, wanted) -> str:
    name, p = max(((n, probs[f"p_{n}"]) for n in SHAPE_NAMES), key=lambda kv: kv[1])
    return name if p >= threshold and name in wanted else "inconclusive"


# --------------------------------------------------------------------------- layout
class _Design:
    """Scale, family indices and grids shared by both models."""

    def __init__(self, ms: ModelScores):
        m = ms.models
        self.families = ms.families
        self.fam = pd.Categorical(m["family"], categories=self.families).codes.astype(int)
        self.k, self.F = len(m), len(self.families)
        self.lx = m["log10_x"].to_numpy(dtype=float)
        self.center = 0.5 * (self.lx.max() + self.lx.min())
        self.half = max(0.5 * (self.lx.max() - self.lx.min()), 1e-9)
        self.t = (self.lx - self.center) / self.half
        self.X = np.column_stack([np.ones(self.k), self.t, self.t**2])
        y = m["score"].to_numpy(dtype=float)
        self.y = y
        self.ybar = float(y.mean())
        self.ys = float(max(y.std(), np.sqrt(np.mean(np.diag(ms.cov))), 1e-12))

    def grid(self, f=None):
        """t grid over family ``f``'s observed range (None: all models)."""
        t = self.t if f is None else self.t[self.fam == f]
        return np.linspace(t.min(), t.max(), _GRID)

    def decades(self, f=None):
        g = self.grid(f)
        return (g[-1] - g[0]) * self.half

    def n_sizes(self, f=None):
        return len(np.unique(self.lx if f is None else self.lx[self.fam == f]))


def _basis(g):
    return np.column_stack([np.ones_like(g), g, g**2])


# --------------------------------------------------------------------------- sampling
def _nutpie():
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


def _sample(engine, data, *, sampler, draws, tune, chains, cores, seed, target_accept):
    """Sample ``engine``'s cached model (one per kind and data shapes) with ``data``; time it."""
    import pymc as pm

    entry = _CACHE.setdefault(engine.key(), {})
    t0 = time.perf_counter()
    if sampler == "nutpie":
        nutpie = _nutpie()
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
        with entry["model"]:
            pm.set_data(data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                                  random_seed=seed, progressbar=False,
                                  target_accept=target_accept,
                                  compute_convergence_checks=False)
    t2 = time.perf_counter()
    return idata, {"compile_s": t1 - t0, "sample_s": t2 - t1}


def _draws(idata, name):
    """Posterior draws of ``name`` stacked over chains: shape (n_draws, ...)."""
    v = idata.posterior[name].values
    return v.reshape((-1,) + v.shape[2:])


# --------------------------------------------------------------------------- model level
def _build_model_level(k, F):
    import pymc as pm
    import pytensor.tensor as pt

    pr = PRIORS["model_level"]
    with pm.Model() as model:
        y = pm.Data("y", np.zeros(k))
        V = pm.Data("V", np.eye(k))
        Z = pm.Data("Z", np.zeros((k, 3 + 3 * F)))
        fam = pm.Data("fam", np.zeros(k, dtype="int64"))
        sd = pm.HalfNormal("sd", sigma=np.array(pr["sd"]), shape=3)
        tau = pm.HalfNormal("tau", sigma=pr["tau"], shape=F)
        g = pt.concatenate([pt.as_tensor(np.square(pr["mu"])), pt.tile(sd**2, F)])
        cov = (Z * g) @ Z.T + V + pt.diag(tau[fam] ** 2)
        pm.MvNormal("y_obs", mu=pt.zeros(k), cov=cov, observed=y)
    return model


def _ml_nutpie_model(k, F):
    """nutpie model of the collapsed model-level posterior, its log density the numba kernel
    :func:`scalingfit._kernels.model_level_logp` (compiled once per machine, cached on disk;
    the PyMC model of :func:`_build_model_level` needs nutpie's per-process compile, 13-29 s)."""
    from nutpie.compiled_pyfunc import from_pyfunc

    from ._kernels import model_level_logp

    pr = PRIORS["model_level"]
    consts = (np.square(pr["mu"]), np.asarray(pr["sd"], dtype=float), float(pr["tau"]))
    start = np.log(np.concatenate([pr["sd"], np.full(F, pr["tau"])]))    # PyMC's start

    def make_expand(seed1, seed2, chain):
        def expand(x, **shared):
            return {"sd": np.exp(x[:3]), "tau": np.exp(x[3:])}
        return expand

    empty = _ml_data_arrays(k, F)
    model_level_logp(start, *empty.values(), *consts)     # compile, or load numba's disk cache
    logp = _guarded(lambda x, y, V, Z, fam: model_level_logp(x, y, V, Z, fam, *consts))
    return from_pyfunc(3 + F, logp, make_expand, [np.dtype("float64")] * 2,
                       [(3,), (F,)], ["sd", "tau"], coords={"family_idx": np.arange(F)},
                       dims={"tau": ("family_idx",)}, shared_data=empty,
                       make_initial_point_fn=_jittered(start))


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


def _ml_data_arrays(k, F):
    return {"y": np.zeros(k), "V": np.eye(k), "Z": np.zeros((k, 3 + 3 * F)),
            "fam": np.zeros(k, dtype=np.int64)}


def _z_matrix(des: _Design, curvature=True):
    X = des.X.copy()
    if not curvature:
        X[:, 2] = 0.0
    blocks = [X * (des.fam == f)[:, None] for f in range(des.F)]
    return np.column_stack([X, *blocks])


def _ml_data(des: _Design, ms: ModelScores, curvature=True, hold_out=None):
    y = (des.y - des.ybar) / des.ys
    V = ms.cov / des.ys**2
    V = V + 1e-9 * np.mean(np.diag(V)) * np.eye(des.k)
    if hold_out is not None:
        y, V = y.copy(), V.copy()
        V[hold_out, :] = V[:, hold_out] = 0.0
        V[hold_out, hold_out] = 1e8
        y[hold_out] = 0.0
    return {"y": y, "V": V, "Z": _z_matrix(des, curvature), "fam": des.fam.astype(np.int64)}


def _ml_sigma(des, data, sd, tau, kind="model_level"):
    """Marginal covariance of the (standardised or link-scale) model scores per draw: (n, k, k)."""
    pr = PRIORS[kind]
    G = np.concatenate([np.broadcast_to(np.square(pr["mu"]), (len(sd), 3)),
                        np.tile(sd**2, des.F)], axis=1)
    Z = data["Z"]
    S = np.einsum("ip,np,jp->nij", Z, G, Z) + data["V"][None]
    S[:, np.arange(des.k), np.arange(des.k)] += tau[:, des.fam] ** 2
    return S, G


def _ml_coefficients(des, data, sd, tau, rng, kind="model_level"):
    """Exact conditional draws of (mu, family coefficients) given each (sd, tau) draw.

    ``data['y']`` is the vector of model scores, shape (k,), or one vector per draw, (n, k)
    (the crossed model's latent link-scale model scores).
    """
    S, G = _ml_sigma(des, data, sd, tau, kind)
    Z = data["Z"]
    ZG = Z[None] * G[:, None, :]                                # (n, k, p)
    A = np.linalg.solve(S, ZG)                                  # Sigma^-1 Z G
    mean = np.einsum("nkp,nk->np", A, np.broadcast_to(data["y"], (len(sd), des.k)))
    C = G[:, :, None] * np.eye(G.shape[1])[None] - np.einsum("nkp,nkq->npq", ZG, A)
    C = 0.5 * (C + np.swapaxes(C, 1, 2))
    jitter = 1e-10 * (1 + np.einsum("npp->np", C))
    L = np.linalg.cholesky(C + jitter[:, :, None] * np.eye(G.shape[1])[None])
    gamma = mean + np.einsum("npq,nq->np", L, rng.standard_normal(mean.shape))
    mu = gamma[:, :3]
    beta = mu[:, None, :] + gamma[:, 3:].reshape(len(sd), des.F, 3)
    return mu, beta


def _ml_pointwise(des, data_eval, sd, tau):
    """log p(y_m | y_-m, theta) per draw and model (Buerkner et al. 2021), score units."""
    S, _ = _ml_sigma(des, data_eval, sd, tau)
    P = np.linalg.inv(S)
    g = np.einsum("nij,j->ni", P, data_eval["y"])
    pmm = np.einsum("nii->ni", P)
    return -0.5 * np.log(2 * np.pi) + 0.5 * np.log(pmm) - 0.5 * g**2 / pmm - np.log(des.ys)


class _ModelLevel:
    kind = "model_level"

    def __init__(self, ms, des, table):
        self.ms, self.des = ms, des

    def key(self):
        return ("model_level", self.des.k, self.des.F)

    def build(self):
        return _build_model_level(self.des.k, self.des.F)

    def nutpie_model(self):
        return _ml_nutpie_model(self.des.k, self.des.F)

    def data(self, curvature=True, hold_out=None):
        return _ml_data(self.des, self.ms, curvature, hold_out)

    def extract(self, idata, rng, curvature=True):
        sd, tau = _draws(idata, "sd"), _draws(idata, "tau")
        mu, beta = _ml_coefficients(self.des, self.data(curvature), sd, tau, rng)
        new = mu + sd * rng.standard_normal(mu.shape)
        if not curvature:
            mu[:, 2] = beta[:, :, 2] = new[:, 2] = 0.0
        return {"mu": mu, "beta": beta, "new": new, "sd": sd, "tau": tau,
                "tau2_score": tau**2 * self.des.ys**2}

    def score_curve(self, coef, g, f=None):
        """Score-scale curve for coefficient draws (n, 3) on grid ``g``: (n, G)."""
        return self.des.ybar + self.des.ys * (coef @ _basis(g).T)

    def pointwise(self, idata, curvature=True):
        return _ml_pointwise(self.des, self.data(curvature), _draws(idata, "sd"),
                             _draws(idata, "tau"))


# --------------------------------------------------------------------------- crossed
def _build_crossed(n_ex, k, F, likelihood):
    """Crossed model with the family coefficients integrated out (module docstring).

    NUTS samples the latent link-scale model scores ``eta_m`` (k), the example effects ``d``
    and the scale parameters; ``eta ~ MvNormal(0, Z G Z' + tau^2 I)`` is the Gaussian hierarchy
    with ``mu``, the family deviations and ``u`` integrated out. ``eta`` is split along a fixed
    orthonormal basis ``U`` (data): its part in the column space of ``Z`` (``mask == 1``) is
    sampled centred, ``a ~ MvNormal(0, U'ZGZ'U + tau^2 I)``; its part orthogonal to the curves,
    which has prior covariance ``tau^2 I`` only, is non-centred, ``tau * z``, so small ``tau``
    makes no funnel. (Centred throughout, the tail ESS of ``tau`` was 276 and 647 of 4,000 draws
    on ``synthetic_families.csv``, two seeds.) The unused coordinates of ``a`` and ``z`` are
    standard normal. The likelihood is a dense (model x example) matrix
    ``eta[:, None] + d[None, :]`` (no per-row gathers); missing cells and held-out models have
    weight 0.
    """
    import pymc as pm
    import pytensor.tensor as pt

    pr = PRIORS["crossed"]
    E = max(n_ex, 1)
    with pm.Model() as model:
        Y = pm.Data("Y", np.zeros((k, E)))
        T = pm.Data("T", np.ones((k, E)))
        W = pm.Data("W", np.ones((k, E)))
        Z = pm.Data("Z", np.zeros((k, 3 + 3 * F)))
        U = pm.Data("U", np.eye(k))
        mask = pm.Data("mask", np.ones(k))
        # boundary-avoiding Gamma(2, 2/scale) (mean = scale): with 3-5 families a HalfNormal
        # puts mass at sd -> 0 (Chung et al. 2013)
        sd = pm.Gamma("sd", alpha=2.0, beta=2.0 / np.array(pr["sd"]), shape=3)
        # one model-level SD shared by the families: a per-family tau with 8 models each
        # hugged 0 on some data sets and funnelled (divergences; docs/bayes.md)
        tau = pm.Gamma("tau", alpha=2.0, beta=2.0 / pr["tau"], shape=1)
        g = pt.concatenate([pt.as_tensor(np.square(pr["mu"])), pt.tile(sd**2, F)])
        ZU = U.T @ Z
        cov_a = (ZU * g) @ ZU.T + pt.diag(mask * tau[0] ** 2 + (1.0 - mask))
        a = pm.MvNormal("a", mu=pt.zeros(k), cov=cov_a)
        z = pm.Normal("z", 0.0, 1.0, shape=k)
        eta_m = pm.Deterministic("eta_m", U @ (mask * a + (1.0 - mask) * tau[0] * z))
        eta = eta_m[:, None]
        if n_ex:
            sd_d = pm.HalfNormal("sd_d", pr["sd_d"] if likelihood != "normal" else 1.0)
            d = pm.ZeroSumNormal("d", sigma=sd_d, shape=n_ex)   # no ridge with a_f
            eta = eta + d[None, :]
        if likelihood == "normal":
            sigma = pm.HalfNormal("sigma", pr["sigma"])
            ll = -0.5 * ((Y - eta) / sigma) ** 2 - pt.log(sigma)
        else:
            ll = Y * eta - T * pt.log1pexp(eta)
        pm.Potential("loglik", (W * ll).sum())
    return model


def _crossed_nutpie_model(engine):
    """nutpie model of the crossed posterior, its log density the numba kernel
    :func:`scalingfit._kernels.crossed_logp` (cached on disk; nutpie's compile of the PyMC
    model took 13-34 s in every new process). The start is PyMC's initial point of the same
    model, jittered by U(-1, 1) on the unconstrained scale as nutpie does."""
    from nutpie.compiled_pyfunc import from_pyfunc

    from ._kernels import crossed_logp

    pr, k, n_ex = PRIORS["crossed"], engine.des.k, engine.n_ex
    normal = engine.likelihood == "normal"
    consts = (np.square(pr["mu"]), 2.0 / np.asarray(pr["sd"], dtype=float), 2.0 / pr["tau"],
              pr["sd_d"] if not normal else 1.0, float(pr["sigma"]))
    model = engine.build()
    point = model.initial_point()
    start = np.concatenate([np.ravel(point[v.name]) for v in model.value_vars])
    shared = {name: np.asarray(val, dtype=float) for name, val in engine.data().items()}
    shared.setdefault("T", np.ones_like(shared["Y"]))
    crossed_logp(start, shared["Y"], shared["T"], shared["W"], shared["Z"], shared["U"],
                 shared["mask"], n_ex, normal, *consts)    # compile, or load numba's cache

    def make_expand(seed1, seed2, chain):
        def expand(x, Y, T, W, Z, U, mask):
            return _crossed_expand(x, U, mask, k, n_ex, normal)
        return expand

    logp = _guarded(lambda x, Y, T, W, Z, U, mask: crossed_logp(x, Y, T, W, Z, U, mask, n_ex,
                                                                normal, *consts))
    names, shapes = _crossed_variables(k, n_ex, normal)
    return from_pyfunc(len(start), logp, make_expand, [np.dtype("float64")] * len(names),
                       shapes, names, shared_data=shared, make_initial_point_fn=_jittered(start))


def _crossed_variables(k, n_ex, normal):
    names = ["sd", "tau", "a", "z", "eta_m"] + (["sd_d", "d"] if n_ex else []) + (
        ["sigma"] if normal else [])
    shapes = [(3,), (1,), (k,), (k,), (k,)] + ([(), (n_ex,)] if n_ex else []) + (
        [()] if normal else [])
    return names, shapes


def _crossed_expand(x, U, mask, k, n_ex, normal):
    """The crossed model's variables from an unconstrained point (PyMC's transforms)."""
    from ._kernels import _matvec

    tau = np.exp(x[3:4])
    a, z = x[4:4 + k], x[4 + k:4 + 2 * k]
    out = {"sd": np.exp(x[:3]), "tau": tau, "a": a.copy(), "z": z.copy(),
           "eta_m": _matvec(U, mask * a + (1.0 - mask) * tau[0] * z, False)}
    if n_ex:
        pos = 4 + 2 * k
        v = x[pos + 1:pos + n_ex]
        n, sv = float(n_ex), v.sum()
        out["sd_d"] = np.asarray(np.exp(x[pos]))
        out["d"] = np.append(v - sv / (np.sqrt(n) + n), -sv / np.sqrt(n))
    if normal:
        out["sigma"] = np.asarray(np.exp(x[-1]))
    return out


def _split_basis(Z):
    """Orthonormal basis ``U`` (k, k) of R^k whose first ``rank(Z)`` columns span Z's columns,
    and their mask (:func:`scalingfit._kernels.split_basis`: fixed-order loops, so the basis
    is the same on every CPU)."""
    from ._kernels import split_basis

    return split_basis(np.ascontiguousarray(Z, dtype=float), 1e-8)


class _Crossed:
    kind = "crossed"

    def __init__(self, ms, des, table):
        self.ms, self.des = ms, des
        k = des.k
        if ms.matrix is not None:
            S = ms.matrix.T                                          # (k, n_ex)
            self.mask = ~np.isnan(S)
            self.Y = np.where(self.mask, S, 0.0)
            self.n_ex = S.shape[1]
            obs = S[self.mask]
            binary = bool(ms.meta.get("proportion")) and np.isin(obs, (0.0, 1.0)).all()
            self.likelihood = "bernoulli" if binary else "normal"
            self.T = np.ones_like(self.Y)
        else:
            n = ms.models["n_examples"].to_numpy(dtype=float)
            if not ms.meta.get("proportion") or not np.all(np.isfinite(n)):
                raise DataValidationError(
                    "model='crossed' needs per-example rows (with 'example_id') or aggregated "
                    "proportions with column 'n'; these results have neither. Use "
                    "model='model_level'.")
            self.T = n[:, None]
            self.Y = np.round(ms.models["score"].to_numpy(dtype=float) * n)[:, None]
            self.mask = np.ones((k, 1), dtype=bool)
            self.n_ex = 0
            self.likelihood = "binomial"
        if self.likelihood == "normal":
            obs = self.Y[self.mask]
            self.loc, self.scale = float(np.mean(obs)), float(np.std(obs) or 1.0)
        else:
            self.loc, self.scale = 0.0, 1.0
        self.min_examples = int(self.mask.sum(axis=1).min()) if self.n_ex else 0
        # example columns of each family (its example set)
        self.fam_examples = [np.flatnonzero(self.mask[des.fam == f].any(axis=0))
                             for f in range(des.F)]

    def key(self):
        return ("crossed", self.likelihood, self.Y.shape, self.des.k, self.des.F)

    def build(self):
        return _build_crossed(self.n_ex, self.des.k, self.des.F, self.likelihood)

    def nutpie_model(self):
        return _crossed_nutpie_model(self)

    def data(self, curvature=True, hold_out=None):
        W = self.mask.astype(float)
        if hold_out is not None:
            W[hold_out] = 0.0
        Y = np.where(self.mask, (self.Y - self.loc) / self.scale, 0.0)
        Z = _z_matrix(self.des, curvature)
        U, mask = _split_basis(Z)
        out = {"Y": Y, "W": W, "Z": Z, "U": U, "mask": mask}
        if self.likelihood != "normal":          # unused by the Gaussian likelihood
            out["T"] = self.T
        return out

    def extract(self, idata, rng, curvature=True):
        sd, tau, eta = _draws(idata, "sd"), self._tau(idata), _draws(idata, "eta_m")
        cond = {"y": eta, "Z": _z_matrix(self.des, curvature),
                "V": np.zeros((self.des.k, self.des.k))}
        mu, beta = _ml_coefficients(self.des, cond, sd, tau, rng, kind="crossed")
        new = mu + sd * rng.standard_normal(mu.shape)
        if not curvature:
            mu[:, 2] = beta[:, :, 2] = new[:, 2] = 0.0
        self._d = _draws(idata, "d") if self.n_ex else None
        p = float(np.clip(np.mean(self.des.y), 0.01, 0.99))
        scale2 = (p * (1 - p)) ** 2 if self.likelihood != "normal" else self.scale**2
        return {"mu": mu, "beta": beta, "new": new, "sd": sd, "tau": tau,
                "tau2_score": tau**2 * scale2}

    def _tau(self, idata):
        """The shared model-level SD as one column per family: (n, F)."""
        return np.repeat(_draws(idata, "tau"), self.des.F, axis=1)

    def score_curve(self, coef, g, f=None, chunk=250):
        eta = coef @ _basis(g).T                                     # (n, G)
        if self.likelihood == "normal":
            d_mean = 0.0 if self._d is None else self._d.mean(axis=1)[:, None]
            return self.loc + self.scale * (eta + d_mean)
        if self._d is None:
            return special.expit(eta)
        cols = np.arange(self.n_ex) if f is None else self.fam_examples[f]
        out = np.empty_like(eta)
        for s in range(0, len(eta), chunk):
            d = self._d[s:s + chunk, cols]                           # (c, E)
            out[s:s + chunk] = special.expit(eta[s:s + chunk, :, None]
                                             + d[:, None, :]).mean(axis=2)
        return out

    def pointwise(self, idata, curvature=True, max_draws=1000, n_nodes=15, n_d=32, chunk=50):
        """Log-lik of each model's data given the other models' (grouped LOO terms).

        The term for model m is ``log p(y_m | eta_-m, sd, tau, sd_d, y_-m)``, with both of
        what model m's data inform integrated out: its latent score ``eta_m`` (Gaussian
        conditional of the hierarchy given the other models, ``n_nodes``-point Gauss-Hermite;
        integrated LOO for latent Gaussian models, the identity of Buerkner et al. 2021) and
        the example effects ``d_i`` (given the other models' answers to example i: a
        ``n_d``-point Gauss-Hermite grid over the ``N(0, sd_d^2)`` prior for 0/1 scores, exact
        for Gaussian scores). Conditioning on the sampled ``d`` instead leaves every ``d_i``
        (informed by 1/k of its data through model m) in the importance ratio: all Pareto k
        were 1.0-1.9 on ``synthetic_families.csv``.

        Returns the (n_draws, k) matrix and the indices of the (thinned) draws used.
        """
        data = self.data(curvature)
        sd, tau, eta = _draws(idata, "sd"), self._tau(idata), _draws(idata, "eta_m")
        keep = np.linspace(0, len(sd) - 1, min(max_draws, len(sd))).astype(int)
        sd, tau, eta = sd[keep], tau[keep], eta[keep]
        S, _ = _ml_sigma(self.des, {"Z": data["Z"], "V": np.zeros((self.des.k,) * 2)}, sd,
                         tau, "crossed")
        P = np.linalg.inv(S)
        pmm = np.einsum("nii->ni", P)
        cmean = eta - np.einsum("nij,nj->ni", P, eta) / pmm          # E[eta_m | eta_-m]
        csd = 1.0 / np.sqrt(pmm)
        x1, w1 = np.polynomial.hermite.hermgauss(n_nodes)
        logw1 = np.log(w1) - 0.5 * np.log(np.pi)
        out = np.empty((len(keep), self.des.k))
        Y, W = data["Y"], self.mask.astype(float)
        if not self.n_ex:                                            # binomial counts, no d
            for m in range(self.des.k):
                em = cmean[:, m, None] + np.sqrt(2) * csd[:, m, None] * x1[None, :]
                ll = Y[m, 0] * em - data["T"][m, 0] * np.logaddexp(0, em)
                out[:, m] = special.logsumexp(ll + logw1[None, :], axis=1)
            return out, keep
        sdd = _draws(idata, "sd_d")[keep]
        if self.likelihood == "normal":
            sigma = _draws(idata, "sigma")[keep]
            s2 = sigma[:, None] ** 2
            prec_all = 1.0 / sdd[:, None] ** 2 + W.sum(axis=0)[None, :] / s2       # (n, E)
            r_all = np.einsum("ki,nki->ni", W, Y[None] - eta[:, :, None]) / s2
            for m in range(self.des.k):
                sel = self.mask[m]
                prec = prec_all[:, sel] - 1.0 / s2
                r = r_all[:, sel] - (Y[m, sel][None, :] - eta[:, m, None]) / s2
                v = s2 + 1.0 / prec                                  # (n, Em)
                em = cmean[:, m, None] + np.sqrt(2) * csd[:, m, None] * x1[None, :]   # (n, Q)
                res = Y[m, sel][None, None, :] - em[:, :, None] - (r / prec)[:, None, :]
                ll = (-0.5 * res**2 / v[:, None, :] - 0.5 * np.log(2 * np.pi * v[:, None, :])
                      ).sum(axis=2) - sel.sum() * np.log(self.scale)
                out[:, m] = special.logsumexp(ll + logw1[None, :], axis=1)
            return out, keep
        x2, w2 = np.polynomial.hermite.hermgauss(n_d)
        logw2 = np.log(w2) - 0.5 * np.log(np.pi)
        WY, WN = (W * Y).T, (W * (1.0 - Y)).T                                   # (E, k)
        for s in range(0, len(keep), chunk):
            sl = slice(s, s + chunk)
            dn = np.sqrt(2) * sdd[sl, None] * x2[None, :]                         # (c, Q2)
            arg = eta[sl, :, None] + dn[:, None, :]                              # (c, k, Q2)
            # log p(d_i = node | all models' answers to example i), up to a constant: (c, E, Q2)
            L = (WY @ special.log_expit(arg) + WN @ special.log_expit(-arg)
                 + logw2[None, None, :])
            R = np.exp(L - L.max(axis=2, keepdims=True))
            for m in range(self.des.k):
                # p(d_i | answers of the other models) = R / p(y_mi | eta_m + d_i), normalised;
                # both sums over the d nodes are matrix products, by the answer y_mi
                em = cmean[sl, m, None] + np.sqrt(2) * csd[sl, m, None] * x1[None, :]
                e2 = em[:, :, None] + dn[:, None, :]                             # (c, Q1, Q2)
                A = []
                for sgn in (1.0, -1.0):                                          # y = 1, y = 0
                    g = 1.0 / special.expit(sgn * arg[:, m, :])                  # (c, Q2)
                    P = special.expit(sgn * e2).transpose(0, 2, 1)               # (c, Q2, Q1)
                    M = np.concatenate([g[:, :, None] * P, g[:, :, None]], axis=2)
                    A.append(R @ M)                                              # (c, E, Q1+1)
                A = np.where(Y[m][None, :, None] > 0.5, A[0], A[1])
                logA = np.log(A) * W[m][None, :, None]
                ll = logA[:, :, :-1].sum(axis=1) - logA[:, :, -1:].sum(axis=1)   # (c, Q1)
                out[sl, m] = special.logsumexp(ll + logw1[None, :], axis=1)
        return out, keep


# --------------------------------------------------------------------------- diagnostics
def _sampler_notes(idata, label, var_names, target_accept=None) -> tuple:
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
    if not rhat <= _RHAT_MAX:
        notes.append(note("bayes_rhat", "warning",
                          f"{label}: max R-hat {rhat:.3f} > {_RHAT_MAX}: chains disagree; run "
                          "longer (draws=, tune=) before trusting the probabilities.", **details))
    if not min(ess_b, ess_t) >= _ESS_MIN:
        notes.append(note("bayes_low_ess", "warning",
                          f"{label}: effective sample size {min(ess_b, ess_t):.0f} < {_ESS_MIN} "
                          "(bulk or tail); increase draws=.", **details))
    if div:
        third = ("" if label.startswith("model_level") else
                 "; 3. use model='model_level' (it samples only the 3 + F scale parameters)")
        notes.append(note("bayes_divergences", "warning",
                          f"{label}: {div} divergent transitions; the posterior may be biased. "
                          f"1. Raise target_accept (now {target_accept}) to "
                          f"{0.99 if (target_accept or 0) < 0.99 else 0.995}; 2. check the "
                          "data for a model or family far off the others (a wild point makes "
                          f"the hierarchy stiff){third}.", **details))
    if details["min_bfmi"] < _BFMI_MIN:          # NaN (no energy recorded) is not low
        notes.append(note("bayes_low_bfmi", "warning",
                          f"{label}: E-BFMI {details['min_bfmi']:.2f} < {_BFMI_MIN} in some chain: "
                          "the sampler explores the energy distribution poorly.", **details))
    return notes, details


# --------------------------------------------------------------------------- LOO
def _psis_loo(ll, n_chains):
    """Pointwise PSIS-LOO elpd and Pareto k from an (n_draws, k) log-lik matrix (ArviZ)."""
    import arviz as az
    import xarray as xr

    n, k = ll.shape
    draws = n // n_chains
    ll = ll[: draws * n_chains].reshape(n_chains, draws, k)
    idata = az.InferenceData(
        posterior=xr.Dataset({"dummy": (("chain", "draw"), np.zeros((n_chains, draws)))}),
        log_likelihood=xr.Dataset({"model_score": (("chain", "draw", "model"), ll)}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = az.loo(idata, pointwise=True)
    return np.asarray(res.loo_i), np.asarray(res.pareto_k)


def _model_label(des, m):
    """Label of model ``m`` (its family and index) for messages."""
    return f"{m} (family {des.families[des.fam[m]]})"


def _compare(engine, fits, sample, max_refits, n_chains, rng, check=None):
    """Grouped LOO of each curve form, exact refits for high Pareto k; the selection table.

    ``sample(data, refit=True)`` draws a refit; ``check(idata, label)`` returns its sampler
    warnings (a refit that did not converge must not pass unseen)."""
    des = engine.des
    pointwise, notes = {}, []
    for form, (idata, curvature) in fits.items():
        ll = engine.pointwise(idata, curvature)
        ll = ll[0] if isinstance(ll, tuple) else ll
        elpd, kk = _psis_loo(ll, n_chains)
        refit = []
        for m in np.argsort(-kk):
            if kk[m] <= _K_MAX or len(refit) >= max_refits:
                break
            idata_m, _ = sample(engine.data(curvature, hold_out=int(m)), refit=True)
            if check is not None:
                notes += check(idata_m, f"{form} fit without model {_model_label(des, m)}")
            ll_m = engine.pointwise(idata_m, curvature)
            ll_m = ll_m[0] if isinstance(ll_m, tuple) else ll_m
            elpd[m] = special.logsumexp(ll_m[:, m]) - np.log(len(ll_m))
            refit.append(int(m))
        left = int(np.sum(np.delete(kk, refit) > _K_MAX))
        if left:
            notes.append(note("bayes_loo_high_k", "warning",
                              f"LOO ({form}): {left} model(s) with Pareto k > {_K_MAX} were not "
                              f"refitted (max_refits={max_refits}); their elpd is approximate.",
                              form=form, n_high_k=left))
        pointwise[form] = (elpd, kk, refit)
    rows = []
    labels = [("all", np.arange(des.k))] + [(f, np.flatnonzero(des.fam == i))
                                            for i, f in enumerate(des.families)]
    for label, idx in labels:
        best = max(pointwise, key=lambda fm: pointwise[fm][0][idx].sum())
        total = {fm: pointwise[fm][0][idx].sum() for fm in pointwise}
        w = np.exp(np.array(list(total.values())) - max(total.values()))
        for (form, (elpd, kk, refit)), wi in zip(pointwise.items(), w / w.sum()):
            diff = elpd[idx] - pointwise[best][0][idx]
            rows.append({"family": label, "curve": form, "elpd_loo": total[form],
                         "se": float(np.sqrt(len(idx) * np.var(elpd[idx]))),
                         "delta_elpd": total[form] - total[best],
                         "dse": float(np.sqrt(len(idx) * np.var(diff))),
                         "weight": float(wi), "max_pareto_k": float(kk[idx].max()),
                         "n_refits": int(np.isin(refit, idx).sum())})
    return pd.DataFrame(rows), notes


# --------------------------------------------------------------------------- summaries
def _summarise(engine, draws, f, *, margin, sign, allow_u, confidence_level):
    """Slope interval, total change, shape probabilities, vertex, band and slope draws of one
    curve's draws."""
    des = engine.des
    coef = draws["mu"] if f == "pooled" else (draws["new"] if f == "new"
                                              else draws["beta"][:, f])
    g = des.grid(None if f in ("pooled", "new") else f)
    curves = engine.score_curve(coef, g, None if f in ("pooled", "new") else f)
    labels = classify_curves(curves, margin=margin, allow_u=allow_u, sign=sign)
    change = curves[:, -1] - curves[:, 0]
    slope = change / ((g[-1] - g[0]) * des.half)
    lo, hi = np.quantile(slope, [(1 - confidence_level) / 2, (1 + confidence_level) / 2])
    tail = 2 * min(np.mean(slope > 0), np.mean(slope < 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = des.center + des.half * (-coef[:, 1] / (2 * coef[:, 2]))
    row = {"slope": float(np.median(slope)), "se": float(np.std(slope)),
           "ci_lower": float(lo), "ci_upper": float(hi), "p_value": float(tail),
           "total_change": float(np.median(change)), **shape_probabilities(labels)}
    q = np.quantile(curves, [(1 - confidence_level) / 2, 0.5, (1 + confidence_level) / 2],
                    axis=0)
    band = pd.DataFrame({"x": 10.0 ** (des.center + des.half * g), "fitted": q[1],
                         "ci_lower": q[0], "ci_upper": q[2]})
    return row, labels, vertex, band, slope


def _turning_point(row, labels, vertex, confidence_level):
    out = {"turning_point": np.nan, "tp_ci_lower": np.nan, "tp_ci_upper": np.nan}
    if row["shape"] in U_SHAPES:
        v = vertex[labels == SHAPE_NAMES.index(row["shape"])]
        v = v[np.isfinite(v)]
        if len(v):
            lo, mid, hi = np.quantile(v, [(1 - confidence_level) / 2, 0.5,
                                          (1 + confidence_level) / 2])
            out = {"turning_point": float(10**mid), "tp_ci_lower": float(10**lo),
                   "tp_ci_upper": float(10**hi)}
    return out


# --------------------------------------------------------------------------- entry point
def fit_bayes(table, ms: ModelScores, result, *, rng, model: str = "auto", draws: int = 1000,
              tune: int = 1000, chains: int = 4, cores: int | None = None,
              sampler: str = "auto", flat_margin: float | None = None,
              decision_threshold: float = 0.95, compare: bool = False,
              max_refits: int = 5, target_accept: float | None = None):
    """Bayesian shape analysis of the same data as ``result`` (module docstring).

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
    model : {'auto', 'model_level', 'crossed'}
        'auto' is 'model_level' (fast; the model is the unit of inference). 'crossed' fits the
        per-example likelihood with crossed example effects (one shared model-level ``tau``,
        coefficients integrated out; module docstring).
    draws, tune, chains : int
        Posterior draws and warm-up iterations per chain, number of chains.
    cores : int, optional
        Chains run in parallel. Default ``min(chains, 2)``, but 1 for the model-level model with
        nutpie: its log density is called through Python, and two threads contending for the
        interpreter were slower than one (4.3-4.8 s against 3.3 s; docs/bayes.md).
    sampler : {'auto', 'nutpie', 'pymc'}
        'auto' and 'nutpie' use nutpie (a core dependency: an ImportError says what to do when
        it is missing); 'pymc' uses PyMC's own NUTS (much slower here).
    flat_margin : float, optional
        Equivalence margin for "flat" in score units over the observed range (default: the
        bootstrap engine's, ``result.meta['flat_margin']``).
    decision_threshold : float
        A shape is the verdict when its posterior probability is at least this.
    compare : bool
        Also fit the linear curve and compare it with the quadratic by grouped LOO, with exact
        refits for high Pareto k (``selection``, ``best_curve``). Off by default: it adds a
        second (linear) fit and the LOO terms; measured on cached calls, ~3 s more for the
        model-level fit of ``synthetic_families.csv`` and ~38 s more for the crossed 3 x 8 x
        500 benchmark set (docs/bayes.md).
    max_refits : int
        At most this many exact refits for models with Pareto k > 0.7, per curve form. A refit
        serves one model's LOO term, computed on at most 1,000 draws, so it runs 2 chains x
        ``min(draws, 500)`` draws with the full warm-up; its R-hat, divergence and E-BFMI
        warnings become notes.
    target_accept : float, optional
        NUTS target acceptance rate. Default 0.95 for 'model_level' (a rare divergence at 0.9
        on typical data); for 'crossed' 0.9 with >= 200 examples per model (no divergence
        measured there, and 0.95 doubles the leapfrog steps per draw, 15 -> 31, and the
        sampling time), else 0.99 (fewer examples or aggregated counts: divergences at 0.9 and
        0.95, and sampling takes seconds). The value used is in ``meta['bayes']``.

    Returns
    -------
    TrendResult
        ``meta['method'] == 'bayes'``; ``families`` and ``pooled`` carry posterior slopes with
        credible intervals and ``p_positive, p_inverse, p_u_shaped, p_inverted_u, p_flat``;
        ``pooled`` also ``p_new_<shape>``, ``p_new_family`` (a new family shows the pooled
        shape, or the most probable one when the pooled verdict is inconclusive:
        ``new_family_shape``), ``p_all_<shape>`` (every observed family shows the shape: the
        joint posterior probability, at most the smallest family's) and ``p_all_families``
        (that of ``new_family_shape``); ``posterior`` holds the
        ``arviz.InferenceData`` of the quadratic fit: the sampled parameters, the slope draws
        behind the slope columns (``slope`` with dims chain, draw, family and
        ``pooled_slope``; score units per 10x) and, for 'model_level' only, a
        ``log_likelihood`` group of per-model terms (``az.loo`` works on it); ``selection``
        the LOO comparison; sampler diagnostics are notes.

    Raises
    ------
    DataValidationError
        Unknown options, or ``model='crossed'`` for data without per-example rows or counts.
    """
    kind = "model_level" if model == "auto" else model
    _check_option("model", model, ("auto", "model_level", "crossed"))
    _check_option("sampler", sampler, ("auto", "nutpie", "pymc"))
    if sampler in ("auto", "nutpie"):
        sampler = "nutpie"
        _nutpie()                       # a missing nutpie fails here, loudly
    if not 0.5 < decision_threshold < 1:
        raise DataValidationError(
            f"decision_threshold must lie in (0.5, 1); got {decision_threshold!r}.")
    for name, value, low in (("draws", draws, 100), ("tune", tune, 100), ("chains", chains, 1)):
        if int(value) < low:
            raise DataValidationError(f"{name} must be at least {low}; got {value!r}.")
    compare = bool(compare)
    if cores is None:   # the model-level kernel is called through Python: threads contend
        cores = 1 if (kind == "model_level" and sampler == "nutpie") else min(int(chains), 2)
    cores = int(cores)
    margin = result.meta.get("flat_margin") if flat_margin is None else float(flat_margin)
    cl = result.meta["confidence_level"]
    sign = 1 if ms.meta["higher_is_better"] else -1
    wanted = set(result.meta["shapes"])
    seed = int(rng.integers(2**31 - 1))
    t_start = time.perf_counter()

    des = _Design(ms)
    engine = (_ModelLevel if kind == "model_level" else _Crossed)(ms, des, table)
    if target_accept is None:
        target_accept = _default_target_accept(engine)
    seeds = iter(np.random.SeedSequence(seed).generate_state(2 + max_refits * 2))
    timing = {"compile_s": 0.0, "sample_s": 0.0}

    def sample(data, refit=False):
        # a LOO refit serves one model's term, computed on <= 1,000 draws (the crossed
        # model's terms are thinned to 1,000): 2 chains x 500 draws give them, at a third of
        # the cost; the warm-up stays full
        n_draws, n_chains = ((min(int(draws), _REFIT_DRAWS), min(int(chains), 2)) if refit
                             else (int(draws), int(chains)))
        idata, t = _sample(engine, data, sampler=sampler, draws=n_draws, tune=int(tune),
                           chains=n_chains, cores=min(cores, n_chains),
                           seed=int(next(seeds)), target_accept=target_accept)
        for key_ in timing:
            timing[key_] += t[key_]
        return idata, t

    idata, _ = sample(engine.data(curvature=True))
    post_rng = np.random.default_rng(seed)
    post = engine.extract(idata, post_rng)
    hyper = ["sd", "tau"] if kind == "model_level" else (
        ["sd", "tau", "eta_m"] + (["sd_d"] if engine.n_ex else []))
    notes, diag = _sampler_notes(idata, f"{kind} quadratic", hyper, target_accept)

    # per-family and pooled summaries
    rows, bands, fam_df, slopes, fam_labels = {}, [], result.families.copy(), [], []
    for i, fam in enumerate(des.families):
        allow_u = bool(wanted & set(U_SHAPES)) and des.n_sizes(i) >= 5
        row, labels, vertex, band, slope = _summarise(engine, post, i, margin=margin, sign=sign,
                                                      allow_u=allow_u, confidence_level=cl)
        row["shape"] = _decide(row, decision_threshold, wanted)
        row.update(_turning_point(row, labels, vertex, cl))
        row["tau2"] = float(np.mean(post["tau2_score"][:, i]))
        rows[fam] = row
        bands.append(band.assign(family=fam, curve="posterior"))
        slopes.append(slope)
        fam_labels.append(labels)
    if des.F > 1:
        allow_u = bool(wanted & set(U_SHAPES)) and des.n_sizes() >= 5
        prow, plabels, pvertex, _, pslope = _summarise(
            engine, post, "pooled", margin=margin, sign=sign, allow_u=allow_u,
            confidence_level=cl)
        prow["shape"] = _decide(prow, decision_threshold, wanted)
        prow.update(_turning_point(prow, plabels, pvertex, cl))
        prow["tau2"] = float(np.mean(post["tau2_score"]))
        nrow, nlabels, _, _, _ = _summarise(engine, post, "new", margin=margin, sign=sign,
                                            allow_u=allow_u, confidence_level=cl)
        target = prow["shape"] if prow["shape"] in SHAPE_NAMES else max(
            SHAPE_NAMES, key=lambda n: prow[f"p_{n}"])
        prow.update({f"p_new_{n}": nrow[f"p_{n}"] for n in SHAPE_NAMES})
        prow["p_new_family"] = nrow[f"p_{target}"]
        prow["new_family_shape"] = target
        # generality over the families at hand: every observed curve has the shape, jointly
        joint = np.stack(fam_labels)
        prow.update({f"p_all_{n}": float(np.mean((joint == i).all(axis=0)))
                     for i, n in enumerate(SHAPE_NAMES)})
        prow["p_all_families"] = prow[f"p_all_{target}"]
    else:
        prow, pslope = dict(rows[des.families[0]]), slopes[0]
        prow.update({f"p_new_{n}": np.nan for n in SHAPE_NAMES})
        prow.update({f"p_all_{n}": np.nan for n in SHAPE_NAMES})
        prow.update({"p_new_family": np.nan, "new_family_shape": None,
                     "p_all_families": np.nan})

    for fam, row in rows.items():
        sel = fam_df["family"] == fam
        for col, val in row.items():
            if col not in fam_df.columns:
                fam_df[col] = np.nan if not isinstance(val, str) else None
            fam_df.loc[sel, col] = val
        fam_df.loc[sel, "p_gate"] = np.nan
    pooled = dict(result.pooled)
    pooled.update(prow)
    pooled["family"] = "pooled" if des.F > 1 else pooled.get("family")
    pooled["p_gate"] = np.nan

    # grouped LOO comparison of curve forms
    selection = result.selection
    if compare:
        idata_lin, _ = sample(engine.data(curvature=False))
        lin_notes, _ = _sampler_notes(idata_lin, f"{kind} linear", hyper, target_accept)
        notes += lin_notes
        selection, loo_notes = _compare(engine, {"linear": (idata_lin, False),
                                                 "quadratic": (idata, True)},
                                        sample, int(max_refits), int(chains), post_rng,
                                        check=lambda idata_m, label: [
                                            n for n in _sampler_notes(
                                                idata_m, f"{kind} {label}", hyper,
                                                target_accept)[0]
                                            if n["code"] != "bayes_low_ess"])
        notes += loo_notes
        for fam in des.families:
            s = selection[selection["family"] == fam]
            fam_df.loc[fam_df["family"] == fam, "best_curve"] = s.loc[
                s["delta_elpd"].idxmax(), "curve"]
        s = selection[selection["family"] == "all"]
        pooled["best_curve"] = s.loc[s["delta_elpd"].idxmax(), "curve"]
    else:
        fam_df["best_curve"] = None
        pooled["best_curve"] = None

    _attach_slopes(idata, des.families, slopes, pslope)
    _attach_loglik(engine, idata)
    wall = time.perf_counter() - t_start
    bayes_meta = {"model": kind, "sampler": sampler, "draws": int(draws), "tune": int(tune),
                  "chains": int(chains), "cores": cores, "seed": seed,
                  "decision_threshold": decision_threshold, "flat_margin": margin,
                  "target_accept": target_accept, "priors": PRIORS[kind],
                  "likelihood": getattr(engine, "likelihood", "mvnormal"),
                  "compare": compare, "wall_s": wall, **timing, **diag}
    notes.append(note("bayes_fit", "info",
                      f"Bayesian {kind} model, {sampler} sampler: {chains} chains x {draws} "
                      f"draws ({tune} warm-up), seed {seed}; {wall:.1f} s "
                      f"(compile {timing['compile_s']:.1f} s). Verdicts need posterior "
                      f"probability >= {decision_threshold}.", model=kind, sampler=sampler,
                      seed=seed, wall_s=wall))
    curves = pd.concat([result.curves, *bands], ignore_index=True)
    meta = {**result.meta, "method": "bayes", "bayes": bayes_meta}
    out = result.replace(shape=pooled["shape"], families=fam_df, pooled=pooled,
                         selection=selection, curves=curves, meta=meta, posterior=idata)
    return out.with_diagnostics(pd.DataFrame(notes, columns=NOTE_COLUMNS))


def _attach_slopes(idata, families, slopes, pooled):
    """Add the slope draws (score units per 10x): ``slope`` (chain, draw, family) and
    ``pooled_slope`` (chain, draw), the draws behind the ``slope``/``ci_*`` columns."""
    import xarray as xr

    post = idata.posterior
    shape = (post.sizes["chain"], post.sizes["draw"])
    post["slope"] = xr.DataArray(np.stack(slopes, axis=-1).reshape(shape + (len(families),)),
                                 dims=("chain", "draw", "family"),
                                 coords={"family": list(families)})
    post["pooled_slope"] = xr.DataArray(np.asarray(pooled).reshape(shape), dims=("chain", "draw"))


def _attach_loglik(engine, idata):
    """Add the per-model (grouped) log-likelihood so ``az.loo(result.posterior)`` works."""
    import xarray as xr

    if engine.kind != "model_level":    # crossed: thinned, costly draws; not attached
        return
    try:
        ll = engine.pointwise(idata, True)
        n_chains = idata.posterior.sizes["chain"]
        ll = ll.reshape(n_chains, -1, ll.shape[-1])
        idata.add_groups(log_likelihood=xr.Dataset(
            {"model_score": (("chain", "draw", "model"), ll)},
            coords={"chain": idata.posterior["chain"].values,
                    "draw": idata.posterior["draw"].values}))
    except Exception:  # pragma: no cover - diagnostics only
        pass


def _check_option(name, value, allowed):
    if value not in allowed:
        raise DataValidationError(f"{name} must be one of {list(allowed)}; got {value!r}.")
