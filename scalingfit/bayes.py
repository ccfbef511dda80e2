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
diverge in, and a 7-dimensional posterior samples in seconds.

``model="crossed"`` -- the likelihood at the level of the data: per-example Bernoulli-logit for
0/1 scores (Gaussian for continuous per-example scores, binomial for aggregated proportions with
``n``) with crossed example effects ``d_i`` shared by all models, a model effect ``u_m`` and the
hierarchical family curves on the link scale::

    logit P(score_im = 1) = a_f + d_i + b_f t_m + c_f t_m^2 + u_m.

``d_i`` is centred (500 examples identify its scale), ``b, c, u`` non-centred. The score-scale
curve of a family is the average over its examples of ``invlogit(a_f + d_i + g_f(t))``.

Priors (standardised score units for the model-level model, logits for the crossed model)::

    mu = (mu_a, mu_b, mu_c) ~ N(0, 1)         (crossed: N(0, 1.5), N(0, 1), N(0, 1))
    sd_a ~ HalfNormal(1), sd_b ~ HalfNormal(0.5), sd_c ~ HalfNormal(0.5)
    tau_f ~ HalfNormal(0.5)                    (crossed: also sd_d ~ HalfNormal(2))

They are weakly informative: over ``t in [-1, 1]`` they allow changes of several standard
deviations of the observed scores in either direction, and every shape has prior probability
of at least several percent (``tests/test_bayes.py::test_prior_predictive_allows_every_shape``).

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
that a new family shows the pooled shape.

Slopes are chords: ``(f(x_max) - f(x_min)) / (log10 x_max - log10 x_min)`` on the score scale
(score per 10x), which equals the linear slope when the truth is a line; ``ci_lower/ci_upper`` are
equal-tailed credible intervals at ``confidence_level`` and ``p_value`` is the two-sided posterior
tail probability ``2 min(P(slope > 0), P(slope < 0))``.

Model comparison
----------------
Linear against quadratic curves by PSIS-LOO that leaves out one whole *model* at a time: for the
model-level likelihood the pointwise term is ``log p(y_m | y_-m, theta)`` of the non-factorised
Gaussian (Buerkner, Gabry & Vehtari 2021); for the crossed model it is the log-likelihood of all
of a model's examples with its model effect integrated out by Gauss-Hermite quadrature. Where the
Pareto k exceeds 0.7, that model is held out and the model refitted (exact LOO; the held-out
model's data are switched off through data containers, so nothing is recompiled), up to
``max_refits`` models. The linear form reuses the same compiled model with the curvature column
set to zero.

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
CROSSED_CENTRED = True
_RHAT_MAX, _ESS_MIN, _BFMI_MIN, _K_MAX = 1.01, 400, 0.3, 0.7

#: compiled models, keyed on the model kind and the data shapes (one process)
_CACHE: dict = {}


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
    try:
        import nutpie
    except ImportError:
        return None
    return nutpie


def _sample(key, build, data, *, sampler, draws, tune, chains, cores, seed, target_accept):
    """Sample the cached model ``key`` (built by ``build()``) with ``data``; time it."""
    import pymc as pm

    entry = _CACHE.get(key)
    t0 = time.perf_counter()
    if entry is None:
        entry = _CACHE[key] = {"model": build()}
    if sampler == "nutpie":
        nutpie = _nutpie()
        if "compiled" not in entry:
            entry["compiled"] = nutpie.compile_pymc_model(entry["model"])
        t1 = time.perf_counter()
        idata = nutpie.sample(entry["compiled"].with_data(**data), draws=draws, tune=tune,
                              chains=chains, cores=cores, seed=seed, progress_bar=False,
                              target_accept=target_accept)
    else:
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
    return {"y": y, "V": V, "Z": _z_matrix(des, curvature), "fam": des.fam}


def _ml_sigma(des, data, sd, tau):
    """Marginal covariance of the standardised scores for each draw: (n, k, k)."""
    pr = PRIORS["model_level"]
    G = np.concatenate([np.broadcast_to(np.square(pr["mu"]), (len(sd), 3)),
                        np.tile(sd**2, des.F)], axis=1)
    Z = data["Z"]
    S = np.einsum("ip,np,jp->nij", Z, G, Z) + data["V"][None]
    S[:, np.arange(des.k), np.arange(des.k)] += tau[:, des.fam] ** 2
    return S, G


def _ml_coefficients(des, data, sd, tau, rng):
    """Exact conditional draws of (mu, family coefficients) given each (sd, tau) draw."""
    S, G = _ml_sigma(des, data, sd, tau)
    Z = data["Z"]
    ZG = Z[None] * G[:, None, :]                                # (n, k, p)
    A = np.linalg.solve(S, ZG)                                  # Sigma^-1 Z G
    mean = np.einsum("nkp,k->np", A, data["y"])
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
def _build_crossed(n_obs, n_ex, k, F, likelihood):
    import pymc as pm
    import pytensor.tensor as pt

    pr = PRIORS["crossed"]
    with pm.Model() as model:
        y = pm.Data("y", np.zeros(n_obs))
        trials = pm.Data("trials", np.ones(n_obs))
        ex = pm.Data("ex", np.zeros(n_obs, dtype="int64"))
        mod = pm.Data("mod", np.zeros(n_obs, dtype="int64"))
        X = pm.Data("X", np.zeros((k, 3)))
        fam = pm.Data("fam", np.zeros(k, dtype="int64"))
        w = pm.Data("w", np.ones(k))
        mu = pm.Normal("mu", 0.0, np.array(pr["mu"]), shape=3)
        # boundary-avoiding Gamma(2, 2/scale) (mean = scale): with 3-5 families a HalfNormal
        # puts mass at sd -> 0, where the hierarchy funnels (Chung et al. 2013)
        sd = pm.Gamma("sd", alpha=2.0, beta=2.0 / np.array(pr["sd"]), shape=3)
        if CROSSED_CENTRED:
            coef = pm.Normal("coef", mu[:, None], sd[:, None], shape=(3, F))
        else:
            z_coef = pm.Normal("z_coef", 0.0, 1.0, shape=(3, F))
            coef = pm.Deterministic("coef", mu[:, None] + sd[:, None] * z_coef)
        beta = pm.Deterministic("beta", coef.T)
        tau = pm.Gamma("tau", alpha=2.0, beta=2.0 / pr["tau"], shape=F)
        z_u = pm.Normal("z_u", 0.0, 1.0, shape=k)
        u = tau[fam] * z_u
        eta_m = (X * beta[fam]).sum(axis=1) + u
        if n_ex:
            sd_d = pm.HalfNormal("sd_d", pr["sd_d"] if likelihood != "normal" else 1.0)
            d = pm.ZeroSumNormal("d", sigma=sd_d, shape=n_ex)   # no ridge with a_f
            eta = eta_m[mod] + d[ex]
        else:
            eta = eta_m[mod]
        if likelihood == "normal":
            sigma = pm.HalfNormal("sigma", pr["sigma"])
            ll = -0.5 * ((y - eta) / sigma) ** 2 - pt.log(sigma)
        else:
            ll = y * eta - trials * pt.log1pexp(eta)
        pm.Potential("loglik", (w[mod] * ll).sum())
    return model


class _Crossed:
    kind = "crossed"

    def __init__(self, ms, des, table):
        self.ms, self.des = ms, des
        k = des.k
        if ms.matrix is not None:
            S = ms.matrix
            rows, cols = np.nonzero(~np.isnan(S))
            self.y_raw = S[rows, cols]
            self.ex, self.mod = rows.astype("int64"), cols.astype("int64")
            self.n_ex = S.shape[0]
            binary = bool(ms.meta.get("proportion")) and np.isin(self.y_raw, (0.0, 1.0)).all()
            self.likelihood = "bernoulli" if binary else "normal"
            self.trials = np.ones(len(self.y_raw))
        else:
            n = ms.models["n_examples"].to_numpy(dtype=float)
            if not ms.meta.get("proportion") or not np.all(np.isfinite(n)):
                raise DataValidationError(
                    "model='crossed' needs per-example rows (with 'example_id') or aggregated "
                    "proportions with column 'n'; these results have neither. Use "
                    "model='model_level'.")
            self.trials = n
            self.y_raw = np.round(ms.models["score"].to_numpy(dtype=float) * n)
            self.ex = np.zeros(k, dtype="int64")
            self.mod = np.arange(k, dtype="int64")
            self.n_ex = 0
            self.likelihood = "binomial"
        if self.likelihood == "normal":
            self.loc, self.scale = float(np.mean(self.y_raw)), float(np.std(self.y_raw) or 1.0)
        else:
            self.loc, self.scale = 0.0, 1.0
        # example rows of each family (its example set)
        self.fam_examples = [np.unique(self.ex[np.isin(self.mod, np.flatnonzero(des.fam == f))])
                             for f in range(des.F)]

    def key(self):
        return ("crossed", self.likelihood, len(self.y_raw), self.n_ex, self.des.k, self.des.F)

    def build(self):
        return _build_crossed(len(self.y_raw), self.n_ex, self.des.k, self.des.F,
                              self.likelihood)

    def data(self, curvature=True, hold_out=None):
        X = self.des.X.copy()
        if not curvature:
            X[:, 2] = 0.0
        w = np.ones(self.des.k)
        if hold_out is not None:
            w[hold_out] = 0.0
        return {"y": (self.y_raw - self.loc) / self.scale, "trials": self.trials, "ex": self.ex,
                "mod": self.mod, "X": X, "fam": self.des.fam, "w": w}

    def extract(self, idata, rng, curvature=True):
        mu, sd = _draws(idata, "mu"), _draws(idata, "sd")
        beta, tau = _draws(idata, "beta"), _draws(idata, "tau")
        new = mu + sd * rng.standard_normal(mu.shape)
        if not curvature:
            mu, beta, new = mu.copy(), beta.copy(), new.copy()
            mu[:, 2] = beta[:, :, 2] = new[:, 2] = 0.0
        self._d = _draws(idata, "d") if self.n_ex else None
        p = float(np.clip(np.mean(self.des.y), 0.01, 0.99))
        scale2 = (p * (1 - p)) ** 2 if self.likelihood != "normal" else self.scale**2
        return {"mu": mu, "beta": beta, "new": new, "sd": sd, "tau": tau,
                "tau2_score": tau**2 * scale2}

    def score_curve(self, coef, g, f=None, chunk=250):
        eta = coef @ _basis(g).T                                     # (n, G)
        if self.likelihood == "normal":
            d_mean = 0.0 if self._d is None else self._d.mean(axis=1)[:, None]
            return self.loc + self.scale * (eta + d_mean)
        if self._d is None:
            return special.expit(eta)
        rows = np.arange(self.n_ex) if f is None else self.fam_examples[f]
        out = np.empty_like(eta)
        for s in range(0, len(eta), chunk):
            d = self._d[s:s + chunk, rows]                           # (c, E)
            out[s:s + chunk] = special.expit(eta[s:s + chunk, :, None]
                                             + d[:, None, :]).mean(axis=2)
        return out

    def pointwise(self, idata, curvature=True, max_draws=1000, n_nodes=15):
        """Grouped log-lik of each model's data, its model effect integrated (Gauss-Hermite)."""
        data = self.data(curvature)
        beta, tau = _draws(idata, "beta"), _draws(idata, "tau")
        keep = np.linspace(0, len(beta) - 1, min(max_draws, len(beta))).astype(int)
        beta, tau = beta[keep], tau[keep]
        d = _draws(idata, "d")[keep] if self.n_ex else None
        sigma = _draws(idata, "sigma")[keep] if self.likelihood == "normal" else None
        X, fam = data["X"], self.des.fam
        nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
        logw = np.log(weights) - 0.5 * np.log(np.pi)
        out = np.empty((len(beta), self.des.k))
        for m in range(self.des.k):
            sel = self.mod == m
            yy, nn = data["y"][sel], data["trials"][sel]
            eta0 = beta[:, fam[m], :] @ X[m]                          # (n,)
            if d is not None:
                eta0 = eta0[:, None] + d[:, self.ex[sel]]             # (n, E)
            else:
                eta0 = eta0[:, None] * np.ones((1, sel.sum()))
            uq = np.sqrt(2) * tau[:, fam[m]][:, None] * nodes[None, :]   # (n, Q)
            eta = eta0[:, None, :] + uq[:, :, None]                       # (n, Q, E)
            if self.likelihood == "normal":
                s = sigma[:, None, None]
                ll = (-0.5 * ((yy - eta) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
                      - np.log(self.scale)).sum(axis=2)
            else:
                ll = (yy * eta - nn * np.logaddexp(0, eta)).sum(axis=2)
            out[:, m] = special.logsumexp(ll + logw[None, :], axis=1)
        return out, keep


# --------------------------------------------------------------------------- diagnostics
def _sampler_notes(idata, label, var_names) -> list:
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
               "divergences": div, "min_bfmi": float(np.nanmin(bfmi))}
    if not rhat <= _RHAT_MAX:
        notes.append(note("bayes_rhat", "warning",
                          f"{label}: max R-hat {rhat:.3f} > {_RHAT_MAX}: chains disagree; run "
                          "longer (draws=, tune=) before trusting the probabilities.", **details))
    if not min(ess_b, ess_t) >= _ESS_MIN:
        notes.append(note("bayes_low_ess", "warning",
                          f"{label}: effective sample size {min(ess_b, ess_t):.0f} < {_ESS_MIN} "
                          "(bulk or tail); increase draws=.", **details))
    if div:
        notes.append(note("bayes_divergences", "warning",
                          f"{label}: {div} divergent transitions; the posterior may be biased. "
                          "Try target_accept=0.95 or model='model_level'.", **details))
    if np.nanmin(bfmi) < _BFMI_MIN:
        notes.append(note("bayes_low_bfmi", "warning",
                          f"{label}: E-BFMI {np.nanmin(bfmi):.2f} < {_BFMI_MIN} in some chain: "
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


def _compare(engine, fits, sample, max_refits, n_chains, rng):
    """Grouped LOO of each curve form, exact refits for high Pareto k; the selection table."""
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
            idata_m, _ = sample(engine.data(curvature, hold_out=int(m)))
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
    """Slope interval, total change, shape probabilities and vertex of one curve's draws."""
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
    return row, labels, vertex, band


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
        per-example likelihood with crossed example effects.
    draws, tune, chains : int
        Posterior draws and warm-up iterations per chain, number of chains.
    cores : int, optional
        Chains run in parallel (default ``min(chains, 2)``).
    sampler : {'auto', 'nutpie', 'pymc'}
        'auto' uses nutpie when installed (``pip install scalingfit[fast]``), else PyMC's NUTS.
    flat_margin : float, optional
        Equivalence margin for "flat" in score units over the observed range (default: the
        bootstrap engine's, ``result.meta['flat_margin']``).
    decision_threshold : float
        A shape is the verdict when its posterior probability is at least this.
    compare : bool
        Also fit the linear curve and compare it with the quadratic by grouped LOO, with exact
        refits for high Pareto k (``selection``, ``best_curve``). Off by default: it doubles the
        sampling time (model-level ~5 s more, crossed ~50 s more).
    max_refits : int
        At most this many exact refits for models with Pareto k > 0.7.
    target_accept : float, optional
        NUTS target acceptance rate (default 0.95: a rare divergence at 0.9 on typical data).

    Returns
    -------
    TrendResult
        ``meta['method'] == 'bayes'``; ``families`` and ``pooled`` carry posterior slopes with
        credible intervals and ``p_positive, p_inverse, p_u_shaped, p_inverted_u, p_flat``;
        ``pooled`` also ``p_new_<shape>`` and ``p_new_family``; ``posterior`` holds the
        ``arviz.InferenceData`` (with a ``log_likelihood`` group of per-model terms);
        ``selection`` the LOO comparison; sampler diagnostics are notes.

    Raises
    ------
    DataValidationError
        Unknown options, or ``model='crossed'`` for data without per-example rows or counts.
    """
    kind = "model_level" if model == "auto" else model
    _check_option("model", model, ("auto", "model_level", "crossed"))
    _check_option("sampler", sampler, ("auto", "nutpie", "pymc"))
    if sampler == "auto":
        sampler = "nutpie" if _nutpie() is not None else "pymc"
    elif sampler == "nutpie" and _nutpie() is None:
        raise DataValidationError(
            "sampler='nutpie' but nutpie is not installed; pip install 'scalingfit[fast]' or "
            "use sampler='pymc'.")
    if not 0.5 < decision_threshold < 1:
        raise DataValidationError(
            f"decision_threshold must lie in (0.5, 1); got {decision_threshold!r}.")
    for name, value, low in (("draws", draws, 100), ("tune", tune, 100), ("chains", chains, 1)):
        if int(value) < low:
            raise DataValidationError(f"{name} must be at least {low}; got {value!r}.")
    compare = bool(compare)
    cores = min(int(chains), 2) if cores is None else int(cores)
    if target_accept is None:
        target_accept = 0.95
    margin = result.meta.get("flat_margin") if flat_margin is None else float(flat_margin)
    cl = result.meta["confidence_level"]
    sign = 1 if ms.meta["higher_is_better"] else -1
    wanted = set(result.meta["shapes"])
    seed = int(rng.integers(2**31 - 1))
    t_start = time.perf_counter()

    des = _Design(ms)
    engine = (_ModelLevel if kind == "model_level" else _Crossed)(ms, des, table)
    seeds = iter(np.random.SeedSequence(seed).generate_state(2 + max_refits * 2))
    timing = {"compile_s": 0.0, "sample_s": 0.0}

    def sample(data):
        idata, t = _sample(engine.key(), engine.build, data, sampler=sampler, draws=int(draws),
                           tune=int(tune), chains=int(chains), cores=cores,
                           seed=int(next(seeds)), target_accept=target_accept)
        for key_ in timing:
            timing[key_] += t[key_]
        return idata, t

    idata, _ = sample(engine.data(curvature=True))
    post_rng = np.random.default_rng(seed)
    post = engine.extract(idata, post_rng)
    hyper = ["sd", "tau"] if kind == "model_level" else ["mu", "sd", "beta", "tau"]
    notes, diag = _sampler_notes(idata, f"{kind} quadratic", hyper)

    # per-family and pooled summaries
    rows, bands, fam_df = {}, [], result.families.copy()
    for i, fam in enumerate(des.families):
        allow_u = bool(wanted & set(U_SHAPES)) and des.n_sizes(i) >= 5
        row, labels, vertex, band = _summarise(engine, post, i, margin=margin, sign=sign,
                                               allow_u=allow_u, confidence_level=cl)
        row["shape"] = _decide(row, decision_threshold, wanted)
        row.update(_turning_point(row, labels, vertex, cl))
        row["tau2"] = float(np.mean(post["tau2_score"][:, i]))
        rows[fam] = row
        bands.append(band.assign(family=fam, curve="posterior"))
    if des.F > 1:
        allow_u = bool(wanted & set(U_SHAPES)) and des.n_sizes() >= 5
        prow, plabels, pvertex, _ = _summarise(engine, post, "pooled", margin=margin, sign=sign,
                                               allow_u=allow_u, confidence_level=cl)
        prow["shape"] = _decide(prow, decision_threshold, wanted)
        prow.update(_turning_point(prow, plabels, pvertex, cl))
        prow["tau2"] = float(np.mean(post["tau2_score"]))
        nrow, nlabels, _, _ = _summarise(engine, post, "new", margin=margin, sign=sign,
                                         allow_u=allow_u, confidence_level=cl)
        target = prow["shape"] if prow["shape"] in SHAPE_NAMES else max(
            SHAPE_NAMES, key=lambda n: prow[f"p_{n}"])
        prow.update({f"p_new_{n}": nrow[f"p_{n}"] for n in SHAPE_NAMES})
        prow["p_new_family"] = nrow[f"p_{target}"]
        prow["new_family_shape"] = target
    else:
        prow = dict(rows[des.families[0]])
        prow.update({f"p_new_{n}": np.nan for n in SHAPE_NAMES})
        prow.update({"p_new_family": np.nan, "new_family_shape": None})

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
        lin_notes, _ = _sampler_notes(idata_lin, f"{kind} linear", hyper)
        notes += lin_notes
        selection, loo_notes = _compare(engine, {"linear": (idata_lin, False),
                                                 "quadratic": (idata, True)},
                                        sample, int(max_refits), int(chains), post_rng)
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


def _attach_loglik(engine, idata):
    """Add the per-model (grouped) log-likelihood so ``az.loo(result.posterior)`` works."""
    import xarray as xr

    try:
        ll = engine.pointwise(idata, True)
        if isinstance(ll, tuple):       # crossed: thinned draws; skip (too large to keep)
            return
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
