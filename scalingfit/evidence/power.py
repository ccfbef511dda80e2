"""Power: could the data have shown the shape, and what would it take (examples, models)?

References
----------
Knapp, G. & Hartung, J. (2003). Statistics in Medicine 22:2693-2710 (the test whose power this is).
Miller, E. (2024). Adding error bars to evals. arXiv:2411.00640.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import special, stats
from scipy.optimize import brentq
from scipy.special import ndtr

from ..bootstrap import as_generator
from ..curves import design_matrix
from ..diagnostics import POWER_TARGET
from ..metareg import eigen_basis
from ..verdicts import U_MIN_SIZES, U_SHAPES
from .labels import LabelData
from .replicates import batched_verdicts

__all__ = ["power_at", "examples_for_power", "u_verdict_power", "power_analysis", "MAX_MODELS"]

#: the largest number of models per family :func:`power_analysis` searches
MAX_MODELS = 1000


def power_at(delta, df, crit, floor=1.0, n_q: int = 256):
    """Power of the Knapp-Hartung t test of one coefficient.

    With known weights the estimate is ``N(effect, var)`` and the Knapp-Hartung scale is
    ``S = chi^2_df / df`` (independent of it); the REML / truncated scale used by the core is
    ``max(floor, S)`` with ``floor = var_sampling / (var_sampling + tau^2 part)`` (exact when all
    models have the same sampling variance). So the test rejects when
    ``|Z + delta| > crit * sqrt(max(floor, S))``; the expectation over ``S`` is taken on
    ``n_q`` quantiles. With ``floor=0`` this is the noncentral t power.

    Parameters
    ----------
    delta : float or array
        Effect over its true standard error (noncentrality).
    df : int; crit : float (two-sided critical value); floor : float or array in [0, 1].
    """
    S = _chi2_quantiles(int(df), n_q)
    floor = np.asarray(floor, dtype=float)[..., None]
    c = crit * np.sqrt(np.maximum(floor, S))
    delta = np.asarray(delta, dtype=float)[..., None]
    return np.mean(ndtr(delta - c) + ndtr(-c - delta), axis=-1)


@lru_cache(maxsize=256)
def _chi2_quantiles(df: int, n_q: int) -> np.ndarray:
    return stats.chi2.ppf((np.arange(n_q) + 0.5) / n_q, df) / df


def _coef_var(X, V, tau2, a, col):
    """``[(X' (a V + tau^2 I)^-1 X)^-1]_{col,col}`` for an array of ``a`` (via V's eigenvectors)."""
    lam, Q, jit = _basis(V)
    Xt = Q.T @ X
    a = np.atleast_1d(np.asarray(a, dtype=float))
    w = 1.0 / (a[:, None] * lam[None, :] + tau2 + jit + 1e-300)
    A = np.einsum("kp,ak,kq->apq", Xt, w, Xt)
    return np.linalg.inv(A)[:, col, col]


def _basis(V):
    """:func:`~scalingfit.metareg.eigen_basis` of ``V``, the last one reused (a power analysis
    asks for the same covariance a dozen times)."""
    entry = _BASIS.get("last")
    if entry is not None and entry[0].shape == V.shape and np.array_equal(entry[0], V):
        return entry[1]
    basis = eigen_basis(V)
    _BASIS["last"] = (np.array(V, dtype=float), basis)    # one tuple: swapped atomically
    return basis


_BASIS: dict = {}


def _solve_delta(df, crit, floor, target):
    return float(brentq(lambda dl: power_at(dl, df, crit, floor) - target, 0.0, 60.0,
                        xtol=1e-4))


def _coef_test(d: LabelData, kind: str = "slope", k_models=None):
    """Design, tested column, df and two-sided critical value of the verdict's test.

    ``kind='slope'``: the linear slope. With U-type shapes in play the gate is the Holm minimum
    of two tests, so a slope is detected at two-sided level alpha / 2; otherwise at alpha.
    ``kind='curvature'``: the quadratic coefficient at level alpha (a proxy for the two-lines
    test, which needs both arms).
    """
    G = d.n_groups
    n_scales = len(np.unique(d.z)) if k_models is None else k_models
    k = d.k if k_models is None else G * k_models
    if kind == "curvature":
        X = design_matrix("quadratic", d.z, d.groups) if k_models is None else None
        df = k - G - 2
        return X, G + 1, df, float(special.stdtrit(max(df, 1), 1 - d.alpha / 2))
    X = design_matrix("linear", d.z, d.groups) if k_models is None else None
    df = k - G - 1
    two_tests = d.allow_u and n_scales >= U_MIN_SIZES and k - (G + 3) >= 1
    level = d.alpha / 2 if two_tests else d.alpha
    return X, G, df, float(special.stdtrit(max(df, 1), 1 - level / 2))


def _resid_ss(X, col):
    """Sum of squares of column ``col`` after regressing it on the other columns."""
    other = np.delete(X, col, axis=1)
    beta = np.linalg.lstsq(other, X[:, col], rcond=None)[0]
    r = X[:, col] - other @ beta
    return float(r @ r)


def _design_k(d: LabelData, kk: int, kind: str):
    """``kk`` models per family, evenly spread in log scale over the label's range."""
    G = d.n_groups
    z = np.tile(np.linspace(d.z.min(), d.z.max(), kk), G)
    groups = np.repeat(np.arange(G), kk)
    return design_matrix("quadratic" if kind == "curvature" else "linear", z, groups)


def examples_for_power(d: LabelData, effect, *, tau2: float, n_examples: float,
                       target: float = POWER_TARGET, kind: str = "slope"):
    """Examples per model at which ``effect`` reaches ``target`` power.

    The sampling covariance scales as ``V * n_examples / n``; ``tau^2`` does not shrink with
    more examples, so the answer is None when even infinitely many examples fall short.
    Power is evaluated on a log grid of ``n`` (10 decades either way) and the crossing is
    interpolated in log ``n``. ``effect`` may be an array (one answer per effect); ``kind`` is
    'slope' (per decade) or 'curvature' (quadratic coefficient per decade^2).
    """
    X, col, df, crit = _coef_test(d, kind)
    eff = np.abs(np.atleast_1d(np.asarray(effect, dtype=float)))
    if df < 1 or n_examples is None or not np.isfinite(n_examples):
        out = [None] * len(eff)
        return out if np.ndim(effect) else out[0]
    a = np.geomspace(1e4, 1e-6, 201)                 # a = n_now / n: n grows along the grid
    var = _coef_var(X, d.V, tau2, a, col)
    floor = _coef_var(X, d.V, 0.0, a, col) / var if tau2 > 0 else np.ones_like(a)
    sd = np.sqrt(var)
    out = []
    for e in eff:
        hit = None if e == 0 else _first_crossing(e / sd, df, crit, floor, target)
        if hit is None:
            out.append(None)
            continue
        i, before, at = hit
        if i == 0:
            out.append(1)
            continue
        f = (target - before) / (at - before)
        log_a = np.log(a[i - 1]) + f * (np.log(a[i]) - np.log(a[i - 1]))
        out.append(int(np.ceil(n_examples / np.exp(log_a))))
    return out if np.ndim(effect) else out[0]


def _first_crossing(delta, df, crit, floor, target, block: int = 25):
    """``(i, power[i - 1], power[i])`` at the first grid point whose :func:`power_at` reaches
    ``target`` (None if none does). The grid is scanned block by block from its start and each
    point's power does not depend on the others, so the answer is the whole grid's, bit for
    bit, with the points after the crossing never computed."""
    before = np.nan
    for start in range(0, len(delta), block):
        pw = power_at(delta[start:start + block], df, crit, floor[start:start + block])
        hit = np.flatnonzero(pw >= target)
        if len(hit):
            j = hit[0]
            return start + j, (pw[j - 1] if j else before), pw[j]
        before = pw[-1]
    return None


def u_verdict_power(d: LabelData, params, claim: str, *, tau2: float, n_examples: float,
                    n_values, n_sim: int = 400, rng=None) -> np.ndarray:
    """Simulated power of the actual U verdict (gate + two-lines test) at each ``n``.

    A study is simulated from the quadratic curve ``params`` (on ``d``'s quadratic design) with
    model-level deviations ``N(0, tau2)`` and sampling error ``N(0, V * n_examples / n)``; the
    power is the share of ``n_sim`` studies whose batched gated verdict is ``claim``. The same
    normal draws serve every ``n`` (common random numbers), so power is smooth in ``n``.
    """
    X = design_matrix("quadratic", d.z, d.groups)
    mean = X @ np.asarray(params, dtype=float)
    gen = as_generator(rng)[0]
    L = np.linalg.cholesky(d.V + 1e-15 * np.eye(d.k) * max(np.trace(d.V), 1e-300))
    e1, e2 = gen.standard_normal((2, int(n_sim), d.k))
    out = []
    for n in np.atleast_1d(np.asarray(n_values, dtype=float)):
        a = float(n_examples) / n
        Y = mean + np.sqrt(a) * e1 @ L.T + np.sqrt(max(tau2, 0.0)) * e2
        out.append(float(np.mean(batched_verdicts(d.with_scores(Y[0], d.V * a), Y)["verdict"]
                                 == claim)))
    return np.array(out)


def _u_examples_needed(d, params, claim, *, tau2, n_now, target, rng, n_sim=400):
    """(power now, examples needed) of the simulated U verdict; None when 10^4 x n_now is not
    enough. Bisection in log n on common random numbers (12 steps: n within ~0.3%)."""
    gen = as_generator(rng)[0]
    seed = int(gen.integers(2**63))                      # one seed, reused: the same draws

    def power(n):
        return float(u_verdict_power(d, params, claim, tau2=tau2, n_examples=n_now,
                                     n_values=n, n_sim=n_sim, rng=seed)[0])

    now = power(n_now)
    if now >= target:
        return now, int(round(n_now))
    if power(n_now * 1e4) < target:
        return now, None
    lo, hi = np.log(n_now), np.log(n_now * 1e4)
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if power(np.exp(mid)) >= target else (mid, hi)
    return now, int(np.ceil(np.exp(hi)))


def _variances(X, d, tau2, col):
    """Coefficient variance now and its floor (sampling share), as :func:`power_at` takes."""
    var = float(_coef_var(X, d.V, tau2, 1.0, col)[0])
    floor = float(_coef_var(X, d.V, 0.0, 1.0, col)[0]) / var if tau2 > 0 else 1.0
    return var, floor


def _minimum_detectable(d, tau2, target) -> dict:
    """``mde_slope`` and ``mde_curvature``: effects detected with ``target`` power now."""
    out = {}
    for k2 in ("slope", "curvature"):
        X2, c2, df2, cr2 = _coef_test(d, k2)
        if df2 >= 1 and (k2 == "slope" or len(np.unique(d.z)) >= 3):
            v2, f2 = _variances(X2, d, tau2, c2)
            out[f"mde_{k2}"] = _solve_delta(df2, cr2, f2, target) * float(np.sqrt(v2))
    return out


def _models_needed(d, X, col, var, *, tau2, effect, kind, target):
    """Models per family (evenly spread over the same range) for ``target`` power, or None
    above :data:`MAX_MODELS`: compound symmetry calibrated to the current design."""
    v_eff = max(var * _resid_ss(X, col) - tau2, 1e-300)
    fl = v_eff / (v_eff + tau2)

    def power_k(kk):
        _, ck_col, dfk, ck = _coef_test(d, kind, k_models=kk)
        if dfk < 1:
            return 0.0
        S = _resid_ss(_design_k(d, kk, kind), ck_col)
        return float(power_at(abs(effect) / np.sqrt((v_eff + tau2) / S), dfk, ck, fl))

    lo, hi = 3 if kind == "slope" else 4, MAX_MODELS   # bisection: power grows with models
    if not (effect != 0 and power_k(hi) >= target):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power_k(mid) >= target else (mid + 1, hi)
    return int(lo)


def _power_curve(d, out, var, floor, *, df, crit, tau2, n_now, target, kind) -> list:
    """Effects from 0.5x to 3x the MDE, the power of each now and the examples each needs."""
    effects = np.array([0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0]) * out[f"mde_{kind}"]
    needed = examples_for_power(d, effects, tau2=tau2, n_examples=n_now, target=target,
                                kind=kind) if np.isfinite(n_now) else [None] * len(effects)
    return [{"effect": float(e), "power": float(p_), "n_examples": n}
            for e, p_, n in zip(effects, power_at(effects / np.sqrt(var), df, crit, floor),
                                needed)]


def power_analysis(d: LabelData, *, effect=None, tau2: float, n_examples=None,
                   target: float = POWER_TARGET, with_table: bool = True,
                   kind: str = "slope", u_curve=None, claim=None, rng=None) -> dict:
    """Power of the verdict's test and what it would take to reach ``target``.

    Parameters
    ----------
    d : LabelData
    effect : float, optional
        Effect to detect: slope per decade (``kind='slope'``) or quadratic coefficient per
        decade^2 (``kind='curvature'``, for U-type claims), in score units; default observed.
    tau2 : float
        Between-model variance (REML, from the fit of the curve being tested).
    n_examples : int, optional
        Examples per model now (per-example or aggregated-with-n input).

    Returns
    -------
    dict
        ``kind``, ``effect``, ``se`` of the coefficient, ``power`` (at ``effect``),
        ``mde_slope`` and ``mde_curvature`` (effects detected with ``target`` power now),
        ``examples_needed`` for ``effect`` (None: unreachable by examples alone),
        ``models_needed`` (per family, evenly spread over the same range, at the current
        examples; None above 1000 or when ``with_table`` is False), ``table`` (effects from
        0.5x to 3x the MDE and the examples each needs). For U-type claims with ``u_curve``
        (the quadratic fit's coefficients) and a two-lines breakpoint: ``power_u_verdict``
        and ``examples_needed_u_verdict``, the simulated power of the actual U verdict
        (:func:`u_verdict_power`), which needs both arms significant and so has less power
        than the curvature-coefficient proxy.

    Notes
    -----
    Coefficient variance ``[(X' (a V + tau^2 I)^-1 X)^-1]`` exactly, with ``a = n_now / n``;
    the test's power from :func:`power_at`. Models needed uses compound symmetry calibrated to
    the current design: ``var = (v_eff + tau^2) / S`` with ``S`` the residual sum of squares of
    the tested column and ``v_eff`` matched to the exact current variance. Verified by
    simulation in ``tests/test_noise.py`` (monotone claims at the reported examples needed).
    """
    X, col, df, crit = _coef_test(d, kind)
    if effect is None:
        effect = float(batched_verdicts(d)["slope"][0])
    out = {"label": d.label, "kind": kind, "effect": float(effect), "tau2": float(tau2),
           "df": int(df), "target": target,
           "n_examples": None if n_examples is None else int(round(n_examples)),
           "power": np.nan, "se": np.nan, "mde_slope": np.nan, "mde_curvature": np.nan,
           "examples_needed": None, "models_needed": None, "table": [],
           "power_u_verdict": None, "examples_needed_u_verdict": None}
    if df < 1:
        return out
    if (kind == "curvature" and u_curve is not None and claim in U_SHAPES
            and d.breakpoint is not None and n_examples is not None):
        params = np.array(u_curve, dtype=float)
        params[-1] = effect
        now, need = _u_examples_needed(d, params, claim, tau2=tau2, n_now=float(n_examples),
                                       target=target, rng=rng)
        out["power_u_verdict"], out["examples_needed_u_verdict"] = now, need
    var, floor = _variances(X, d, tau2, col)
    out["se"] = float(np.sqrt(var))
    out["power"] = float(power_at(abs(effect) / np.sqrt(var), df, crit, floor))
    out.update(_minimum_detectable(d, tau2, target))
    n_now = n_examples if n_examples is not None else np.nan
    if np.isfinite(n_now):
        out["examples_needed"] = examples_for_power(d, effect, tau2=tau2, n_examples=n_now,
                                                    target=target, kind=kind)
    if with_table:
        out["models_needed"] = _models_needed(d, X, col, var, tau2=tau2, effect=effect,
                                              kind=kind, target=target)
        out["table"] = _power_curve(d, out, var, floor, df=df, crit=crit, tau2=tau2,
                                    n_now=n_now, target=target, kind=kind)
    return out
