"""The Bayesian engine's models: priors, the design they share, and their PyMC definitions.

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
(Rao-Blackwellised; :mod:`scalingfit.bayes.engines`). This is the limit of a non-centred
parameterisation: there is no funnel to diverge in.

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
``N(0, tau^2 I)`` alone, non-centred (``tau * z``), so a small ``tau`` makes no funnel.

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

The priors are written once, in :data:`PRIORS` (with :data:`GAMMA_SHAPE` and
:data:`GAUSSIAN_SD_D`): :func:`prior_constants` turns them into the numbers both the PyMC models
below and the numba kernels (:mod:`scalingfit.bayes.kernels`, through :func:`kernel_constants`)
read, so a prior change is one edit here, and the tests check that kernel and PyMC model agree.

References
----------
Chung, Y., Rabe-Hesketh, S., Dorie, V., Gelman, A. & Liu, J. (2013). A nondegenerate penalized
likelihood estimator for variance parameters in multilevel models. Psychometrika 78:685-709.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import ModelScores

__all__ = ["PRIORS", "GAMMA_SHAPE", "GAUSSIAN_SD_D", "GRID", "Design", "basis", "z_matrix",
           "prior_constants", "kernel_constants", "build_model_level", "build_crossed",
           "crossed_variables"]

#: prior scales (module docstring), per model kind
PRIORS = {
    "model_level": {"mu": (1.0, 1.0, 1.0), "sd": (1.0, 0.5, 0.5), "tau": 0.5},
    "crossed": {"mu": (1.5, 1.0, 1.0), "sd": (1.0, 0.5, 0.5), "tau": 0.3, "sd_d": 2.0,
                "sigma": 1.0},
}
#: shape of the crossed model's boundary-avoiding Gamma priors on ``sd`` and ``tau`` (their
#: rate is ``GAMMA_SHAPE / scale``, so the prior mean is the scale in :data:`PRIORS`)
GAMMA_SHAPE = 2.0
#: half-normal scale of ``sd_d`` for Gaussian per-example scores (standardised units)
GAUSSIAN_SD_D = 1.0
#: grid points a curve is evaluated on, from the smallest to the largest model
GRID = 33


def prior_constants(kind: str, likelihood: str | None = None) -> dict:
    """The numbers of :data:`PRIORS` as the models use them (one derivation for both).

    Model-level: ``g0`` (prior variances of ``mu``), ``sd`` and ``tau`` (half-normal scales).
    Crossed: ``g0``, ``sd_rate`` and ``tau_rate`` (Gamma rates, ``GAMMA_SHAPE / scale``),
    ``gamma_shape``, ``sd_d`` (half-normal scale; :data:`GAUSSIAN_SD_D` for Gaussian scores)
    and ``sigma``.
    """
    pr = PRIORS[kind]
    out = {"g0": np.square(pr["mu"])}
    if kind == "model_level":
        out.update(sd=np.asarray(pr["sd"], dtype=float), tau=float(pr["tau"]))
        return out
    out.update(sd_rate=GAMMA_SHAPE / np.asarray(pr["sd"], dtype=float),
               tau_rate=GAMMA_SHAPE / pr["tau"], gamma_shape=GAMMA_SHAPE,
               sd_d=pr["sd_d"] if likelihood != "normal" else GAUSSIAN_SD_D,
               sigma=float(pr["sigma"]))
    return out


def kernel_constants(kind: str, likelihood: str | None = None) -> tuple:
    """The trailing prior arguments of the numba kernel of ``kind``, from
    :func:`prior_constants`: ``(g0, s_sd, s_tau)`` for ``model_level_logp`` and
    ``(g0, beta_sd, beta_tau, s_sd_d, s_sigma, gamma_shape)`` for ``crossed_logp``."""
    c = prior_constants(kind, likelihood)
    if kind == "model_level":
        return c["g0"], c["sd"], c["tau"]
    return c["g0"], c["sd_rate"], c["tau_rate"], c["sd_d"], c["sigma"], c["gamma_shape"]


# --------------------------------------------------------------------------- layout
class Design:
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
        return np.linspace(t.min(), t.max(), GRID)

    def decades(self, f=None):
        g = self.grid(f)
        return (g[-1] - g[0]) * self.half

    def n_sizes(self, f=None):
        return len(np.unique(self.lx if f is None else self.lx[self.fam == f]))


def basis(g):
    """The quadratic's columns ``(1, t, t^2)`` on grid ``g``."""
    return np.column_stack([np.ones_like(g), g, g**2])


def z_matrix(des: Design, curvature=True):
    """Population then per-family design columns (k, 3 + 3F); the curvature columns are zero
    for the linear form."""
    X = des.X.copy()
    if not curvature:
        X[:, 2] = 0.0
    blocks = [X * (des.fam == f)[:, None] for f in range(des.F)]
    return np.column_stack([X, *blocks])


# --------------------------------------------------------------------------- PyMC models
def build_model_level(k, F):
    """The collapsed model-level model (module docstring): the definition the kernel
    ``model_level_logp`` restates, and what ``sampler='pymc'`` samples."""
    import pymc as pm
    import pytensor.tensor as pt

    c = prior_constants("model_level")
    with pm.Model() as model:
        y = pm.Data("y", np.zeros(k))
        V = pm.Data("V", np.eye(k))
        Z = pm.Data("Z", np.zeros((k, 3 + 3 * F)))
        fam = pm.Data("fam", np.zeros(k, dtype="int64"))
        sd = pm.HalfNormal("sd", sigma=c["sd"], shape=3)
        tau = pm.HalfNormal("tau", sigma=c["tau"], shape=F)
        g = pt.concatenate([pt.as_tensor(c["g0"]), pt.tile(sd**2, F)])
        cov = (Z * g) @ Z.T + V + pt.diag(tau[fam] ** 2)
        pm.MvNormal("y_obs", mu=pt.zeros(k), cov=cov, observed=y)
    return model


def build_crossed(n_ex, k, F, likelihood):
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

    c = prior_constants("crossed", likelihood)
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
        sd = pm.Gamma("sd", alpha=c["gamma_shape"], beta=c["sd_rate"], shape=3)
        # one model-level SD shared by the families: a per-family tau with 8 models each
        # hugged 0 on some data sets and funnelled (divergences; docs/bayes.md)
        tau = pm.Gamma("tau", alpha=c["gamma_shape"], beta=c["tau_rate"], shape=1)
        g = pt.concatenate([pt.as_tensor(c["g0"]), pt.tile(sd**2, F)])
        ZU = U.T @ Z
        cov_a = (ZU * g) @ ZU.T + pt.diag(mask * tau[0] ** 2 + (1.0 - mask))
        a = pm.MvNormal("a", mu=pt.zeros(k), cov=cov_a)
        z = pm.Normal("z", 0.0, 1.0, shape=k)
        eta_m = pm.Deterministic("eta_m", U @ (mask * a + (1.0 - mask) * tau[0] * z))
        eta = eta_m[:, None]
        if n_ex:
            sd_d = pm.HalfNormal("sd_d", c["sd_d"])
            d = pm.ZeroSumNormal("d", sigma=sd_d, shape=n_ex)   # no ridge with a_f
            eta = eta + d[None, :]
        if likelihood == "normal":
            sigma = pm.HalfNormal("sigma", c["sigma"])
            ll = -0.5 * ((Y - eta) / sigma) ** 2 - pt.log(sigma)
        else:
            ll = Y * eta - T * pt.log1pexp(eta)
        pm.Potential("loglik", (W * ll).sum())
    return model


def crossed_variables(k, n_ex, normal):
    """Names and shapes of the crossed model's stored variables, in PyMC's order."""
    names = ["sd", "tau", "a", "z", "eta_m"] + (["sd_d", "d"] if n_ex else []) + (
        ["sigma"] if normal else [])
    shapes = [(3,), (1,), (k,), (k,), (k,)] + ([(), (n_ex,)] if n_ex else []) + (
        [()] if normal else [])
    return names, shapes
