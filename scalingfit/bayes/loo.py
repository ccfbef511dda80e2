"""Model comparison: linear against quadratic curves by PSIS-LOO that leaves out one whole
*model* at a time, with exact refits where the Pareto k is high.

For the model-level likelihood the pointwise term is ``log p(y_m | y_-m, theta)`` of the
non-factorised Gaussian (Buerkner, Gabry & Vehtari 2021); for the crossed model it is the
log-likelihood of all of a model's examples given the other models, ``log p(y_m | eta_-m,
theta, y_-m)``, with its latent score ``eta_m`` (15-point Gauss-Hermite over its conditional
given ``eta_-m``) and the example effects ``d_i`` (32-point Gauss-Hermite over their conditional
given the other models' answers) integrated out, on 1,000 thinned draws. Conditioning on the
sampled ``d`` instead gave Pareto k of 1.0-1.9 for every model. Where the Pareto k exceeds 0.7,
that model is held out and the model refitted (exact LOO; the held-out model's data are switched
off through data containers, so nothing is recompiled), up to ``max_refits`` models. The linear
form reuses the same compiled model with the curvature column set to zero.

References
----------
Vehtari, A., Gelman, A. & Gabry, J. (2017). Practical Bayesian model evaluation using
leave-one-out cross-validation and WAIC. Statistics and Computing 27:1413-1432.
Buerkner, P.-C., Gabry, J. & Vehtari, A. (2021). Efficient leave-one-out cross-validation for
Bayesian non-factorized normal and Student-t models. Computational Statistics 36:1243-1261.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special

from ..diagnostics import note
from .engines import marginal_cov
from .sampling import draws

__all__ = ["pointwise", "psis_loo", "compare", "attach_loglik"]

#: Pareto k above which a model's PSIS term is replaced by an exact refit
_K_MAX = 0.7


# --------------------------------------------------------------------------- pointwise terms
def pointwise(engine, idata, curvature=True):
    """Grouped log-likelihood terms, one per model and draw: (n_draws, k).

    Crossed: on at most 1,000 thinned draws (:func:`_crossed_pointwise`).
    """
    if engine.kind == "model_level":
        return _model_level_pointwise(engine.des, engine.data(curvature), draws(idata, "sd"),
                                      draws(idata, "tau"))
    return _crossed_pointwise(engine, idata, curvature)[0]


def _model_level_pointwise(des, data_eval, sd, tau):
    """log p(y_m | y_-m, theta) per draw and model (Buerkner et al. 2021), score units."""
    S, _ = marginal_cov(des, data_eval, sd, tau)
    P = np.linalg.inv(S)
    g = np.einsum("nij,j->ni", P, data_eval["y"])
    pmm = np.einsum("nii->ni", P)
    return -0.5 * np.log(2 * np.pi) + 0.5 * np.log(pmm) - 0.5 * g**2 / pmm - np.log(des.ys)


def _crossed_pointwise(engine, idata, curvature=True, max_draws=1000, n_nodes=15, n_d=32):
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
    des = engine.des
    data = engine.data(curvature)
    sd, tau, eta = draws(idata, "sd"), engine.tau(idata), draws(idata, "eta_m")
    keep = np.linspace(0, len(sd) - 1, min(max_draws, len(sd))).astype(int)
    sd, tau, eta = sd[keep], tau[keep], eta[keep]
    S, _ = marginal_cov(des, {"Z": data["Z"], "V": np.zeros((des.k,) * 2)}, sd, tau,
                        "crossed")
    P = np.linalg.inv(S)
    pmm = np.einsum("nii->ni", P)
    cmean = eta - np.einsum("nij,nj->ni", P, eta) / pmm          # E[eta_m | eta_-m]
    csd = 1.0 / np.sqrt(pmm)
    x1, w1 = np.polynomial.hermite.hermgauss(n_nodes)
    logw1 = np.log(w1) - 0.5 * np.log(np.pi)

    def nodes(m, sl=slice(None)):
        """Gauss-Hermite nodes of ``eta_m`` given the other models, per draw: (n, Q1)."""
        return cmean[sl, m, None] + np.sqrt(2) * csd[sl, m, None] * x1[None, :]

    if not engine.n_ex:                                           # binomial counts, no d
        return _counts_terms(data, nodes, logw1, des.k), keep
    sdd = draws(idata, "sd_d")[keep]
    if engine.likelihood == "normal":
        sigma = draws(idata, "sigma")[keep]
        return _gaussian_terms(engine, data, eta, sdd, sigma, nodes, logw1), keep
    return _bernoulli_terms(engine, data, eta, sdd, nodes, logw1, n_d), keep


def _counts_terms(data, nodes, logw1, k):
    out = np.empty((len(nodes(0)), k))
    Y = data["Y"]
    for m in range(k):
        em = nodes(m)
        ll = Y[m, 0] * em - data["T"][m, 0] * np.logaddexp(0, em)
        out[:, m] = special.logsumexp(ll + logw1[None, :], axis=1)
    return out


def _gaussian_terms(engine, data, eta, sdd, sigma, nodes, logw1):
    """Gaussian per-example scores: the example effects integrated out exactly."""
    Y, W = data["Y"], engine.mask.astype(float)
    out = np.empty((len(eta), engine.des.k))
    s2 = sigma[:, None] ** 2
    prec_all = 1.0 / sdd[:, None] ** 2 + W.sum(axis=0)[None, :] / s2       # (n, E)
    r_all = np.einsum("ki,nki->ni", W, Y[None] - eta[:, :, None]) / s2
    for m in range(engine.des.k):
        sel = engine.mask[m]
        prec = prec_all[:, sel] - 1.0 / s2
        r = r_all[:, sel] - (Y[m, sel][None, :] - eta[:, m, None]) / s2
        v = s2 + 1.0 / prec                                  # (n, Em)
        em = nodes(m)                                        # (n, Q)
        res = Y[m, sel][None, None, :] - em[:, :, None] - (r / prec)[:, None, :]
        ll = (-0.5 * res**2 / v[:, None, :] - 0.5 * np.log(2 * np.pi * v[:, None, :])
              ).sum(axis=2) - sel.sum() * np.log(engine.scale)
        out[:, m] = special.logsumexp(ll + logw1[None, :], axis=1)
    return out


def _bernoulli_terms(engine, data, eta, sdd, nodes, logw1, n_d, chunk=50):
    """0/1 scores: the example effects integrated out on an ``n_d``-point grid."""
    Y, W = data["Y"], engine.mask.astype(float)
    out = np.empty((len(eta), engine.des.k))
    x2, w2 = np.polynomial.hermite.hermgauss(n_d)
    logw2 = np.log(w2) - 0.5 * np.log(np.pi)
    WY, WN = (W * Y).T, (W * (1.0 - Y)).T                                   # (E, k)
    for s in range(0, len(eta), chunk):
        sl = slice(s, s + chunk)
        dn = np.sqrt(2) * sdd[sl, None] * x2[None, :]                         # (c, Q2)
        arg = eta[sl, :, None] + dn[:, None, :]                              # (c, k, Q2)
        # log p(d_i = node | all models' answers to example i), up to a constant: (c, E, Q2)
        L = (WY @ special.log_expit(arg) + WN @ special.log_expit(-arg)
             + logw2[None, None, :])
        R = np.exp(L - L.max(axis=2, keepdims=True))
        for m in range(engine.des.k):
            # p(d_i | answers of the other models) = R / p(y_mi | eta_m + d_i), normalised;
            # both sums over the d nodes are matrix products, by the answer y_mi
            em = nodes(m, sl)
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
    return out


# --------------------------------------------------------------------------- PSIS and refits
def psis_loo(ll, n_chains):
    """Pointwise PSIS-LOO elpd and Pareto k from an (n_draws, k) log-lik matrix (ArviZ)."""
    import arviz as az
    import xarray as xr

    n, k = ll.shape
    n_draws = n // n_chains
    ll = ll[: n_draws * n_chains].reshape(n_chains, n_draws, k)
    idata = az.InferenceData(
        posterior=xr.Dataset({"dummy": (("chain", "draw"), np.zeros((n_chains, n_draws)))}),
        log_likelihood=xr.Dataset({"model_score": (("chain", "draw", "model"), ll)}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = az.loo(idata, pointwise=True)
    return np.asarray(res.loo_i), np.asarray(res.pareto_k)


def _model_label(des, m):
    """Label of model ``m`` (its family and index) for messages."""
    return f"{m} (family {des.families[des.fam[m]]})"


def _form_terms(engine, form, idata, curvature, sample, max_refits, n_chains, check):
    """PSIS terms of one curve form, the high-k models refitted exactly:
    ``(elpd, pareto_k, refitted models, notes)``."""
    notes = []
    elpd, kk = psis_loo(pointwise(engine, idata, curvature), n_chains)
    refit = []
    for m in np.argsort(-kk):
        if kk[m] <= _K_MAX or len(refit) >= max_refits:
            break
        idata_m, _ = sample(engine.data(curvature, hold_out=int(m)), refit=True)
        if check is not None:
            notes += check(idata_m, f"{form} fit without model {_model_label(engine.des, m)}")
        ll_m = pointwise(engine, idata_m, curvature)
        elpd[m] = special.logsumexp(ll_m[:, m]) - np.log(len(ll_m))
        refit.append(int(m))
    left = int(np.sum(np.delete(kk, refit) > _K_MAX))
    if left:
        notes.append(note("bayes_loo_high_k", "warning",
                          f"LOO ({form}): {left} model(s) with Pareto k > {_K_MAX} were not "
                          f"refitted (max_refits={max_refits}); their elpd is approximate.",
                          form=form, n_high_k=left))
    return elpd, kk, refit, notes


def compare(engine, fits, sample, max_refits, n_chains, check=None):
    """Grouped LOO of each curve form, exact refits for high Pareto k; the selection table.

    ``fits`` maps a form ('linear', 'quadratic') to ``(idata, curvature)``;
    ``sample(data, refit=True)`` draws a refit; ``check(idata, label)`` returns its sampler
    warnings (a refit that did not converge must not pass unseen). Returns ``(selection,
    notes)``: per family and for all models (``family='all'``) ``elpd_loo, se, delta_elpd,
    dse, weight`` (pseudo-BMA), ``max_pareto_k, n_refits``.
    """
    des = engine.des
    pointwise_, notes = {}, []
    for form, (idata, curvature) in fits.items():
        elpd, kk, refit, form_notes = _form_terms(engine, form, idata, curvature, sample,
                                                  max_refits, n_chains, check)
        notes += form_notes
        pointwise_[form] = (elpd, kk, refit)
    rows = []
    labels = [("all", np.arange(des.k))] + [(f, np.flatnonzero(des.fam == i))
                                            for i, f in enumerate(des.families)]
    for label, idx in labels:
        best = max(pointwise_, key=lambda fm: pointwise_[fm][0][idx].sum())
        total = {fm: pointwise_[fm][0][idx].sum() for fm in pointwise_}
        w = np.exp(np.array(list(total.values())) - max(total.values()))
        for (form, (elpd, kk, refit)), wi in zip(pointwise_.items(), w / w.sum()):
            diff = elpd[idx] - pointwise_[best][0][idx]
            rows.append({"family": label, "curve": form, "elpd_loo": total[form],
                         "se": float(np.sqrt(len(idx) * np.var(elpd[idx]))),
                         "delta_elpd": total[form] - total[best],
                         "dse": float(np.sqrt(len(idx) * np.var(diff))),
                         "weight": float(wi), "max_pareto_k": float(kk[idx].max()),
                         "n_refits": int(np.isin(refit, idx).sum())})
    return pd.DataFrame(rows), notes


def attach_loglik(engine, idata):
    """Add the per-model (grouped) log-likelihood so ``az.loo(result.posterior)`` works."""
    import xarray as xr

    if engine.kind != "model_level":    # crossed: thinned, costly draws; not attached
        return
    try:
        ll = pointwise(engine, idata, True)
        n_chains = idata.posterior.sizes["chain"]
        ll = ll.reshape(n_chains, -1, ll.shape[-1])
        idata.add_groups(log_likelihood=xr.Dataset(
            {"model_score": (("chain", "draw", "model"), ll)},
            coords={"chain": idata.posterior["chain"].values,
                    "draw": idata.posterior["draw"].values}))
    except Exception:  # pragma: no cover - diagnostics only
        pass
