"""The model-level meta-regression against closed forms and statsmodels."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from scalingfit.curves import design_matrix
from scalingfit.metareg import batched_gls, estimate_tau2, fit_metareg


@pytest.mark.parametrize("v", [0.001, 0.5])
def test_intercept_only_reml_closed_form(v):
    """Equal sampling variances v, intercept only: REML tau^2 = max(0, s^2 - v) (s^2 with
    ddof=1), and the Knapp-Hartung interval is the one-sample t interval when tau^2 > 0."""
    y = np.array([0.1, 0.4, 0.35, 0.8, 0.55, 0.2])
    k = len(y)
    s2 = y.var(ddof=1)
    fit = fit_metareg(y, np.ones((k, 1)), v * np.eye(k))
    assert fit.tau2 == pytest.approx(max(0.0, s2 - v), abs=1e-7)
    assert fit.params[0] == pytest.approx(y.mean())
    expected_se = np.sqrt(s2 / k) if s2 > v else np.sqrt(v / k)
    assert np.sqrt(fit.cov[0, 0]) == pytest.approx(expected_se, rel=1e-5)
    _, _, _, p = fit.contrast([1.0])
    t = y.mean() / expected_se
    assert p == pytest.approx(2 * stats.t.sf(t, k - 1), rel=1e-4)


def test_zero_sampling_variance_is_ols():
    rng = np.random.default_rng(3)
    z = np.linspace(-1, 1, 9)
    y = 0.5 - 0.2 * z + rng.normal(0, 0.05, 9)
    X = design_matrix("quadratic", z, np.zeros(9, int))
    fit = fit_metareg(y, X, np.zeros((9, 9)))
    ols = sm.OLS(y, X).fit()
    np.testing.assert_allclose(fit.params, ols.params, rtol=1e-9)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), ols.bse, rtol=1e-6)
    assert fit.df_resid == ols.df_resid


def test_known_tau2_zero_recovered_when_all_spread_is_sampling():
    # y exactly on a line: no residual spread, tau^2 must be 0 and the KH scale truncated at 1
    z = np.linspace(-1, 1, 6)
    V = np.diag(np.full(6, 0.01))
    fit = fit_metareg(0.3 + 0.1 * z, design_matrix("linear", z, np.zeros(6, int)), V)
    assert fit.tau2 == 0.0
    assert fit.kh_scale == 1.0
    assert np.sqrt(fit.cov[1, 1]) == pytest.approx(np.sqrt(0.01 / np.sum(z**2)), rel=1e-6)


def test_batched_gls_equals_refits():
    rng = np.random.default_rng(0)
    z = np.linspace(-1.5, 1.5, 8)
    X = design_matrix("linear", z, np.zeros(8, int))
    A = rng.normal(size=(8, 8))
    V = A @ A.T * 1e-3 + np.eye(8) * 1e-3
    Y = rng.normal(size=(50, 8))
    beta, scale, bread = batched_gls(Y, X, V)
    for b in (0, 17, 49):
        fit = fit_metareg(Y[b], X, V, tau2=0.0)
        np.testing.assert_allclose(beta[b], fit.params, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(scale[b] * bread, fit.cov, rtol=1e-5)


def test_ml_tau2_below_reml():
    rng = np.random.default_rng(1)
    z = np.linspace(-1, 1, 8)
    X = design_matrix("linear", z, np.zeros(8, int))
    y = 0.1 * z + rng.normal(0, 0.1, 8)
    V = np.eye(8) * 1e-4
    assert estimate_tau2(y, X, V, method="ML") < estimate_tau2(y, X, V)


@pytest.mark.parametrize("ps", [(0.01, 0.3), (0.2, 0.04), (0.7, float("nan")), (0.6, 0.9)])
def test_gate_is_holm(ps):
    from statsmodels.stats.multitest import multipletests

    from scalingfit.shapes import _gate

    finite = [p for p in ps if np.isfinite(p)]
    assert _gate(*ps)["p_value"] == pytest.approx(min(multipletests(finite, method="holm")[1]))
