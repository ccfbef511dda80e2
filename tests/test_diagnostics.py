"""The core notes every fit gets (scalingfit.diagnostics.core_notes): each code has a test that
triggers it and one that does not, on data built so the answer is known."""

import warnings

import numpy as np
import pandas as pd
import pytest

from scalingfit import StatisticalWarning, fit_trend
from scalingfit.simulate import simulate_results


def _fit(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return fit_trend(df, rng=0, n_boot=200, **kw)


def _codes(result) -> set:
    return set(result.diagnostics["code"])


def _aggregated_se(scores, se=0.01):
    """Aggregated continuous scores with a standard error and no n: no flat margin is known."""
    k = len(scores)
    return pd.DataFrame({"model": [f"m{i}" for i in range(k)],
                         "n_params": 10.0 ** (8 + np.arange(k) * 3 / (k - 1)),
                         "score": scores, "se": se})


def test_too_few_models_fires_below_five_sizes_only():
    four = _fit(simulate_results("inverse", n_models=4, n_examples=300, rng=1))
    row = four.diagnostics.set_index("code").loc["too_few_models"]
    assert row["details"] == {"family": "fam0", "n_models": 4}
    six = _fit(simulate_results("inverse", n_models=6, n_examples=300, rng=1))
    assert "too_few_models" not in _codes(six)


def test_model_level_noise_fires_when_models_scatter_beyond_sampling_error():
    # model-level SD 0.5 logits against the ~0.1-logit sampling SD of 1500 examples: tau^2
    # must exceed the mean sampling variance; with model SD 0 and a smooth curve it must not
    noisy = _fit(simulate_results("flat", n_models=8, n_examples=1500, model_sd=0.5, rng=2))
    d = noisy.diagnostics.set_index("code").loc["model_level_noise", "details"]
    assert d["tau2"] > d["sampling_var"] > 0
    smooth = _fit(simulate_results("inverse", n_models=8, n_examples=1500, model_sd=0.0,
                                   rng=2))
    assert "model_level_noise" not in _codes(smooth)


def test_no_flat_margin_fires_without_a_known_scale():
    r = _fit(_aggregated_se([1.2, 1.1, 1.15, 1.0, 0.95]))
    assert r.meta["flat_margin"] is None and "no_flat_margin" in _codes(r)
    # a margin given, or one derived from per-example rows: no note
    assert "no_flat_margin" not in _codes(_fit(_aggregated_se([1.2, 1.1, 1.15, 1.0, 0.95]),
                                               flat_margin=0.05))
    assert "no_flat_margin" not in _codes(_fit(simulate_results("flat", n_models=5, rng=3)))


@pytest.mark.parametrize("n_families, expected", [(1, True), (2, False)])
def test_single_family_note(n_families, expected):
    df = simulate_results("inverse", n_families=n_families, n_models=5, n_examples=200, rng=4)
    assert ("single_family" in _codes(_fit(df))) is expected
