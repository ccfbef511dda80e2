"""Tests of scalingfit.claims: check_claim calibration, the real-data regression, API and CLI."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from scalingfit import DataValidationError, fit_trend
from scalingfit.claims import ClaimCheck, check_claim
from scalingfit.cli import main
from scalingfit.simulate import simulate_results


def _aggregated(scores, *, n=2000):
    scores = np.asarray(scores, dtype=float)
    return pd.DataFrame({"family": "fam0", "model": [f"m{i}" for i in range(len(scores))],
                         "n_params": np.round(np.logspace(8, 11, len(scores))),
                         "score": scores, "n": n, "metric": "accuracy"})


# ------------------------------------------------------------------------ calibration
@pytest.mark.slow
def test_flat_truth_with_model_noise_rarely_survives():
    """Flat truth, model-level SD 0.3 logits, 8 models x 400 examples, one family.

    Requirement: survives False in >= 95% of seeds. 60 seeds; we allow at most 3 survivals
    (if the true survival rate were 5%, P(<= 3 of 60) = 0.65, so the bound does not reject a
    procedure at the limit; the gate alone keeps the rate at <= alpha / 2 = 2.5% for 'inverse'
    and the other checks only lower it). Measured: 0 of 60.
    """
    survived = 0
    for seed in range(60):
        df = simulate_results("flat", n_models=8, n_examples=400, model_sd=0.3, rng=seed)
        survived += check_claim(df, "inverse", rng=seed, n_boot=200).survives
    assert survived <= 3


@pytest.mark.slow
def test_strong_inverse_survives():
    """Strong inverse truth (2 logits over the range), model SD 0.1, 8 models x 400 examples.

    Requirement: survives True in >= 90% of seeds. 60 seeds; we require >= 54 (90%); the
    binomial SE at a true rate of 0.97 is 0.022, so a procedure that survives 97% of the time
    passes with probability > 0.99. Measured: 60 of 60 (no required check failed).
    """
    survived = 0
    for seed in range(60):
        df = simulate_results("inverse", n_models=8, n_examples=400, effect=2.0, model_sd=0.1,
                              rng=seed)
        survived += check_claim(df, "inverse", rng=seed, n_boot=200).survives
    assert survived >= 54


# ------------------------------------------------------------------------ real-data regression
JUMPS = [0.02, 0.97, 0.05, 0.93, 0.96, 0.04, 0.91, 0.03]   # near 0 / near 1, no order


@pytest.mark.parametrize("n", [300, 3000, 30000])
def test_jumping_single_checkpoints_are_not_a_trend(n):
    """A family whose accuracies jump between near 0 and near 1 from one size to the next (as
    single final checkpoints of a public family do on some prize tasks) is noise at the model
    level; more examples per model must not turn it into a trend."""
    df = _aggregated(JUMPS, n=n)
    result = fit_trend(df, rng=0, n_boot=200)
    assert result.shape not in ("inverse", "positive")
    for claim in ("inverse", "positive"):
        check = check_claim(df, claim, rng=0, n_boot=200)
        assert not check.survives
    assert "spread_is_model_noise" in set(result.diagnostics["code"])


@pytest.mark.slow
def test_jumping_checkpoints_in_every_jumpy_order():
    """Every arrangement of four near-0 and four near-1 accuracies (20000 examples each) that
    jumps between the two levels at 4 or more of the 7 steps from one size to the next (44 of
    the 70 arrangements): none is called inverse or positive, and the claim never survives.
    (Arrangements with one jump are step functions -- a genuine trend, e.g. emergence -- and
    are rightly called one; with 3 jumps 1 of 18 is, e.g. high-high-low-high-low-low-low-low.)
    Measured: 0 of 44 trend verdicts, 0 survivals."""
    import itertools

    rng = np.random.default_rng(0)
    n_jumpy = 0
    for i, high in enumerate(itertools.combinations(range(8), 4)):
        is_high = np.isin(np.arange(8), high)
        if np.sum(is_high[1:] != is_high[:-1]) < 4:
            continue
        n_jumpy += 1
        scores = np.where(is_high, rng.uniform(0.9, 1.0, 8), rng.uniform(0.0, 0.1, 8))
        claim = "inverse" if i % 2 else "positive"
        check = check_claim(_aggregated(scores, n=20000), claim, rng=i, n_boot=200)
        assert check.result.shape not in ("inverse", "positive")
        assert not check.survives
    assert n_jumpy == 44


# ------------------------------------------------------------------------ API
@pytest.fixture(scope="module")
def inverse_check():
    df = simulate_results("inverse", n_families=2, n_models=8, n_examples=500, effect=2.0,
                          model_sd=0.05, rng=3)
    return check_claim(df, "inverse", rng=0, n_boot=300)


def test_claim_check_fields(inverse_check):
    c = inverse_check
    assert isinstance(c, ClaimCheck) and c.survives
    assert list(c.checks.columns) == ["check", "passed", "required", "detail", "value"]
    assert list(c.checks["check"][:6]) == ["significance", "null_calibration", "influence",
                                           "stability", "generality", "power"]
    assert c.p_value == pytest.approx(max(c.checks.set_index("check").loc[
        ["significance", "null_calibration"], "value"]))
    assert c.result.shape == "inverse"
    assert repr(c).startswith("<ClaimCheck claim='inverse' survives=True")
    d = json.loads(c.to_json())
    assert d["survives"] is True and d["checks"][0]["check"] == "significance"
    assert d["result"]["shape"] == "inverse"


def test_report_explains_in_words(inverse_check):
    text = inverse_check.report()
    assert "Claim: inverse" in text and "SURVIVES" in text and "Why it survives:" in text
    md = inverse_check.report("markdown")
    assert md.startswith("## Claim: inverse") and "| significance | pass | yes |" in md
    with pytest.raises(ValueError, match="format must be 'text' or 'markdown'; got 'html'"):
        inverse_check.report("html")


def test_wrong_claim_fails_with_reasons(inverse_check):
    df = simulate_results("inverse", n_families=2, n_models=8, n_examples=500, effect=2.0,
                          model_sd=0.05, rng=3)
    c = check_claim(df, "positive", rng=0, n_boot=300)
    assert not c.survives and c.p_value == 1.0
    assert "DOES NOT SURVIVE" in c.report()
    assert any(r.startswith("significance: the fitted verdict is inverse") for r in c.reasons())


def test_bayesian_check_is_the_bootstrap_check_with_a_posterior_significance(inverse_check):
    """check_claim(method='bayes'): the significance row is the posterior verdict (value
    P(claim), with P(every family) and P(a new family)); every other row is the bootstrap
    engine's on the same data and seed, identical to the bootstrap check; p_value stays the
    frequentist one; the result is the Bayesian fit."""
    df = simulate_results("inverse", n_families=2, n_models=8, n_examples=500, effect=2.0,
                          model_sd=0.05, rng=3)
    fast = {"draws": 500, "tune": 500, "chains": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = check_claim(df, "inverse", rng=0, n_boot=300, method="bayes", **fast)
        wrong = check_claim(df, "positive", rng=0, n_boot=300, method="bayes", **fast)
    assert c.survives and c.meta["method"] == "bayes" and c.result.meta["method"] == "bayes"
    sig = c.checks.set_index("check").loc["significance"]
    assert sig["value"] == pytest.approx(c.result.pooled["p_inverse"])
    assert "posterior P(inverse)" in sig["detail"] and "P(every family inverse)" in sig["detail"]
    pd.testing.assert_frame_equal(c.checks.iloc[1:].reset_index(drop=True),
                                  inverse_check.checks.iloc[1:].reset_index(drop=True))
    assert c.p_value == pytest.approx(inverse_check.p_value)
    assert not wrong.survives and not wrong.checks.loc[0, "passed"]
    assert "the Bayesian verdict is inverse" in wrong.checks.loc[0, "detail"]


def test_bayesian_options_need_the_bayesian_engine():
    with pytest.raises(DataValidationError, match=r"draws: not an option of fit_trend with "
                       r"method='bootstrap'.*Pass method='bayes'"):
        fit_trend(simulate_results("inverse", rng=1), draws=500)


def test_seeded_checks_are_reproducible():
    df = simulate_results("inverse", n_models=6, n_examples=300, effect=1.5, rng=9)
    a = check_claim(df, "inverse", rng=5, n_boot=200)
    b = check_claim(df, "inverse", rng=5, n_boot=200)
    pd.testing.assert_frame_equal(a.checks, b.checks)
    assert a.meta["seed"] == 5


@pytest.mark.parametrize("kwargs, message", [
    ({"claim": "down"}, "claim must be one of ['positive', 'inverse', 'u_shaped', 'inverted_u', "
                        "'flat']; got 'down'."),
    ({"alpha": 1.5}, "alpha must lie in (0, 1); got 1.5."),
    ({"confidence_level": 0.9}, "check_claim takes alpha, not confidence_level (the fit uses "
                                "1 - alpha); got confidence_level=0.9."),
])
def test_bad_arguments_name_the_fix(kwargs, message):
    df = simulate_results("inverse", n_models=6, n_examples=100, rng=1)
    with pytest.raises(DataValidationError) as err:
        check_claim(df, **kwargs)
    assert str(err.value) == message


def test_a_fitted_result_is_not_enough():
    df = simulate_results("inverse", n_models=6, n_examples=100, rng=1)
    result = fit_trend(df, rng=0, n_boot=100)
    with pytest.raises(DataValidationError) as err:
        check_claim(result)
    assert str(err.value) == (
        "check_claim needs the results table (it refits without each model and resamples "
        "examples); got TrendResult. Pass the DataFrame or file you fitted.")


def test_u_claim_needs_five_sizes():
    df = simulate_results("inverse", n_models=4, n_examples=100, rng=1)
    with pytest.raises(DataValidationError) as err:
        check_claim(df, "u_shaped", rng=0, n_boot=100)
    assert str(err.value) == (
        "claim 'u_shaped' needs at least 5 model sizes per family (two lines of at least 2 "
        "models each); family 'fam0' has 4. Add models, or drop the family.")


def test_u_claim_checks_curvature_power():
    df = simulate_results("u_shaped", n_families=1, n_models=9, n_examples=3000, effect=1.5,
                          model_sd=0.02, rng=5)
    c = check_claim(df, "u_shaped", rng=0, n_boot=300)
    assert c.checks.set_index("check").loc["significance", "passed"]
    assert "curvature" in c.checks.set_index("check").loc["power", "detail"]


# ------------------------------------------------------------------------ CLI
def test_cli_check_exit_codes(tmp_path, capsys):
    path = tmp_path / "res.csv"
    simulate_results("inverse", n_models=6, n_examples=300, effect=2.0, model_sd=0.05,
                     rng=2).to_csv(path, index=False)
    assert main(["check", str(path), "--claim", "inverse", "--seed", "1", "--n-boot",
                 "200"]) == 0
    assert "Claim: inverse" in capsys.readouterr().out
    assert main(["check", str(path), "--claim", "positive", "--seed", "1", "--n-boot", "200",
                 "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["claim"] == "positive" and out["survives"] is False
    assert main(["check", str(tmp_path / "missing.csv")]) == 2


# ------------------------------------------------------------------------ generality check
def _renamed(df, fam):
    df = df.copy()
    df["model"] = df["model"].str.replace("fam0", fam)
    df["family"] = fam
    return df


def test_a_contradicting_family_fails_generality():
    kw = dict(n_models=8, n_examples=1000, model_sd=0.02, effect=1.5)
    df = pd.concat([_renamed(simulate_results(s, rng=40 + i, **kw), f"f{i}") for i, s in
                    enumerate(["inverse", "inverse", "inverse", "positive"])])
    c = check_claim(df, "inverse", rng=0, n_boot=200)
    row = c.checks.set_index("check").loc["generality"]
    assert not row["passed"] and row["required"] and not c.survives
    assert "f3 shows positive" in row["detail"]


def test_consistent_families_pass_generality_even_when_each_is_weak():
    # two 3-model families: each alone has 1 df and is rarely significant, but they agree
    df = pd.concat([_renamed(simulate_results("inverse", n_models=3, n_examples=200, rng=1),
                             "a"),
                    _renamed(simulate_results("inverse", n_models=3, n_examples=200, rng=2),
                             "b")])
    c = check_claim(df, "inverse", rng=0, n_boot=200)
    assert c.checks.set_index("check").loc["generality", "passed"]
