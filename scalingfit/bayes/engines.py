"""The two model kinds as engines: the data each model sees, its compiled model, and the
posterior draws of the curves (:mod:`scalingfit.bayes.models` defines the models).

An engine (:class:`ModelLevel`, :class:`Crossed`) knows its data layout (``data(curvature,
hold_out)``: the arrays of the model's data containers, with a LOO hold-out switched off), how
to build and compile its model (``build``, ``nutpie_model``, ``key`` for the compile cache) and
how to turn posterior draws into curve coefficients (``extract``: ``mu`` and ``beta_f`` drawn
exactly from their Gaussian conditional given each draw, Rao-Blackwellised) and score-scale
curves (``score_curve``). For the crossed model the score-scale curve of a family is the
average over its examples of ``invlogit(a_f + d_i + b_f t + c_f t^2)``.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ..exceptions import DataValidationError
from . import kernels, sampling
from .models import PRIORS, basis, build_crossed, build_model_level, z_matrix
from .sampling import draws

__all__ = ["ModelLevel", "Crossed", "ENGINES", "model_level_data", "marginal_cov",
           "coefficient_draws"]


def model_level_data(des, ms, curvature=True, hold_out=None):
    """The model-level model's data: standardised scores, their covariance, Z and families.
    A held-out model's variance is inflated to 1e8 (its score carries no information)."""
    y = (des.y - des.ybar) / des.ys
    V = ms.cov / des.ys**2
    V = V + 1e-9 * np.mean(np.diag(V)) * np.eye(des.k)
    if hold_out is not None:
        y, V = y.copy(), V.copy()
        V[hold_out, :] = V[:, hold_out] = 0.0
        V[hold_out, hold_out] = 1e8
        y[hold_out] = 0.0
    return {"y": y, "V": V, "Z": z_matrix(des, curvature), "fam": des.fam.astype(np.int64)}


def marginal_cov(des, data, sd, tau, kind="model_level"):
    """Marginal covariance of the (standardised or link-scale) model scores per draw: (n, k, k)."""
    pr = PRIORS[kind]
    G = np.concatenate([np.broadcast_to(np.square(pr["mu"]), (len(sd), 3)),
                        np.tile(sd**2, des.F)], axis=1)
    Z = data["Z"]
    S = np.einsum("ip,np,jp->nij", Z, G, Z) + data["V"][None]
    S[:, np.arange(des.k), np.arange(des.k)] += tau[:, des.fam] ** 2
    return S, G


def coefficient_draws(des, data, sd, tau, rng, kind="model_level"):
    """Exact conditional draws of (mu, family coefficients) given each (sd, tau) draw.

    ``data['y']`` is the vector of model scores, shape (k,), or one vector per draw, (n, k)
    (the crossed model's latent link-scale model scores).
    """
    S, G = marginal_cov(des, data, sd, tau, kind)
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


class ModelLevel:
    """The collapsed model-level model: NUTS samples ``sd`` (3) and ``tau`` (F)."""

    kind = "model_level"
    likelihood = "mvnormal"
    #: the sampled parameters R-hat and ESS are taken over
    monitored = ("sd", "tau")

    def __init__(self, ms, des, table):
        self.ms, self.des = ms, des

    def key(self):
        return ("model_level", self.des.k, self.des.F)

    def build(self):
        return build_model_level(self.des.k, self.des.F)

    def nutpie_model(self):
        return sampling.model_level_nutpie_model(self.des.k, self.des.F)

    def data(self, curvature=True, hold_out=None):
        return model_level_data(self.des, self.ms, curvature, hold_out)

    def extract(self, idata, rng, curvature=True):
        sd, tau = draws(idata, "sd"), draws(idata, "tau")
        mu, beta = coefficient_draws(self.des, self.data(curvature), sd, tau, rng)
        new = mu + sd * rng.standard_normal(mu.shape)
        if not curvature:
            mu[:, 2] = beta[:, :, 2] = new[:, 2] = 0.0
        return {"mu": mu, "beta": beta, "new": new, "sd": sd, "tau": tau,
                "tau2_score": tau**2 * self.des.ys**2}

    def score_curve(self, coef, g, f=None):
        """Score-scale curve for coefficient draws (n, 3) on grid ``g``: (n, G)."""
        return self.des.ybar + self.des.ys * (coef @ basis(g).T)


class Crossed:
    """The crossed per-example model: NUTS samples ``eta_m``, ``d`` and the scales."""

    kind = "crossed"

    def __init__(self, ms, des, table):
        self.ms, self.des = ms, des
        if ms.matrix is not None:
            self._per_example(ms.matrix.T)                          # (k, n_ex)
        else:
            self._aggregated(ms)
        if self.likelihood == "normal":
            obs = self.Y[self.mask]
            self.loc, self.scale = float(np.mean(obs)), float(np.std(obs) or 1.0)
        else:
            self.loc, self.scale = 0.0, 1.0
        self.min_examples = int(self.mask.sum(axis=1).min()) if self.n_ex else 0
        # example columns of each family (its example set)
        self.fam_examples = [np.flatnonzero(self.mask[des.fam == f].any(axis=0))
                             for f in range(des.F)]
        self.monitored = ("sd", "tau", "eta_m") + (("sd_d",) if self.n_ex else ())
        self._d = None

    def _per_example(self, S):
        self.mask = ~np.isnan(S)
        self.Y = np.where(self.mask, S, 0.0)
        self.n_ex = S.shape[1]
        obs = S[self.mask]
        binary = bool(self.ms.meta.get("proportion")) and np.isin(obs, (0.0, 1.0)).all()
        self.likelihood = "bernoulli" if binary else "normal"
        self.T = np.ones_like(self.Y)

    def _aggregated(self, ms):
        n = ms.models["n_examples"].to_numpy(dtype=float)
        if not ms.meta.get("proportion") or not np.all(np.isfinite(n)):
            raise DataValidationError(
                "model='crossed' needs per-example rows (with 'example_id') or aggregated "
                "proportions with column 'n'; these results have neither. Use "
                "model='model_level'.")
        self.T = n[:, None]
        self.Y = np.round(ms.models["score"].to_numpy(dtype=float) * n)[:, None]
        self.mask = np.ones((self.des.k, 1), dtype=bool)
        self.n_ex = 0
        self.likelihood = "binomial"

    def key(self):
        return ("crossed", self.likelihood, self.Y.shape, self.des.k, self.des.F)

    def build(self):
        return build_crossed(self.n_ex, self.des.k, self.des.F, self.likelihood)

    def nutpie_model(self):
        return sampling.crossed_nutpie_model(self)

    def data(self, curvature=True, hold_out=None):
        W = self.mask.astype(float)
        if hold_out is not None:
            W[hold_out] = 0.0
        Y = np.where(self.mask, (self.Y - self.loc) / self.scale, 0.0)
        Z = z_matrix(self.des, curvature)
        # the basis is data of the sampled model: fixed-order loops, the same on every CPU
        U, mask = kernels.split_basis(np.ascontiguousarray(Z, dtype=float), 1e-8)
        out = {"Y": Y, "W": W, "Z": Z, "U": U, "mask": mask}
        if self.likelihood != "normal":          # unused by the Gaussian likelihood
            out["T"] = self.T
        return out

    def extract(self, idata, rng, curvature=True):
        sd, tau, eta = draws(idata, "sd"), self.tau(idata), draws(idata, "eta_m")
        cond = {"y": eta, "Z": z_matrix(self.des, curvature),
                "V": np.zeros((self.des.k, self.des.k))}
        mu, beta = coefficient_draws(self.des, cond, sd, tau, rng, kind="crossed")
        new = mu + sd * rng.standard_normal(mu.shape)
        if not curvature:
            mu[:, 2] = beta[:, :, 2] = new[:, 2] = 0.0
        self._d = draws(idata, "d") if self.n_ex else None
        p = float(np.clip(np.mean(self.des.y), 0.01, 0.99))
        scale2 = (p * (1 - p)) ** 2 if self.likelihood != "normal" else self.scale**2
        return {"mu": mu, "beta": beta, "new": new, "sd": sd, "tau": tau,
                "tau2_score": tau**2 * scale2}

    def tau(self, idata):
        """The shared model-level SD as one column per family: (n, F)."""
        return np.repeat(draws(idata, "tau"), self.des.F, axis=1)

    def score_curve(self, coef, g, f=None, chunk=250):
        eta = coef @ basis(g).T                                      # (n, G)
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


#: engine class per model kind
ENGINES = {"model_level": ModelLevel, "crossed": Crossed}
