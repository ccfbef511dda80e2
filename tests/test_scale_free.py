"""Numerics are scale-free: rescaling every score (and so every variance) changes no verdict.

The ridge that keeps ``V + tau^2 I`` invertible and the REML search bounds are relative to the
data's own variances; an absolute ridge (1e-14) used to swamp the sampling variances of
scores rescaled by 1e-7 (variances ~1e-18) and change the verdicts. Scores so large that their
squares overflow are an error naming the column.
"""

import warnings

import numpy as np
import pytest

from scalingfit import DataValidationError, fit_trend, load_results
from scalingfit.simulate import simulate_results


@pytest.mark.parametrize("shape", ["inverse", "flat", "u_shaped"])
def test_rescaled_scores_give_the_same_verdict(shape):
    df = simulate_results(shape, n_families=2, n_models=7, n_examples=300, effect=1.0,
                          model_sd=0.05, rng=4)
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in (1.0, 1e-7, 1e7):
            fits[c] = fit_trend(df.assign(score=df["score"] * c), rng=0, n_boot=200,
                                proportion=False)
    base = fits[1.0]
    for c, r in fits.items():
        assert r.shape == base.shape
        # same arithmetic up to the REML search's stopping rule (Brent's method stops at 1e-8
        # of its range): p-values and slopes (in units of the scale) agree to 1e-5 relative
        # (measured <= 1.4e-6, the U gate p at scale 1e-7; before the fix, verdicts changed)
        np.testing.assert_allclose([r.pooled["p_value"], r.pooled["p_gate"],
                                    r.pooled["slope"] / c],
                                   [base.pooled["p_value"], base.pooled["p_gate"],
                                    base.pooled["slope"]], rtol=1e-5)


@pytest.mark.parametrize("column", ["score", "se"])
def test_scores_whose_squares_overflow_are_an_error(column):
    agg = simulate_results("inverse", n_models=5, n_examples=100, rng=1).groupby(
        ["family", "model", "n_params"], as_index=False)["score"].agg(["mean", "sem"])
    agg = agg.rename(columns={"mean": "score", "sem": "se"})
    agg[column] = agg[column] * 1e160
    with pytest.raises(DataValidationError, match=rf"^column {column!r} holds values of "
                                                  r"magnitude >= 1e\+100"):
        load_results(agg, proportion=False)
