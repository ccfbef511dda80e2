"""Tests of scalingfit.evidence: the batched verdict engine, strength, generality, power, notes.

Layers (STYLE section 10): closed forms (Holm vs statsmodels, Cochran's Q by hand, paired SE by
hand, power vs the noncentral t), agreement with the core procedure, a power calculation checked
by simulation, and for every diagnostic code one dataset that triggers it and one that does not.
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scalingfit import StatisticalWarning, TrendResult, fit_trend
from scalingfit.claims import check_claim
from scalingfit.data import load_results, model_scores
from scalingfit import evidence
from scalingfit.diagnostics import NOTE_CODES
from scalingfit.evidence import generality
from scalingfit.multitest import adjust_p
from scalingfit.shapes import analyse_shape
from scalingfit.simulate import simulate_results

ALL = {"positive", "inverse", "u_shaped", "inverted_u", "flat", "inconclusive"}


def _codes(result):
    return set(result.diagnostics["code"])


def _single_label(ms, *, alpha=0.05, margin=0.05):
    """LabelData of a one-family ModelScores (no breakpoint: U verdicts impossible)."""
    lx = ms.models["log10_x"].to_numpy()
    return evidence.LabelData("fam0", np.arange(len(lx)), ms.models["score"].to_numpy(), ms.cov,
                           lx - lx.mean(), np.zeros(len(lx), int), None, True, ALL, 1, alpha,
                           margin)


def _aggregated(scores, *, n=2000, family="fam0", sizes=None):
    scores = np.asarray(scores, dtype=float)
    sizes = sizes if sizes is not None else np.round(np.logspace(8, 11, len(scores)))
    return pd.DataFrame({"family": family, "model": [f"{family}-{i}" for i in range(len(scores))],
                         "n_params": sizes, "score": scores, "n": n,
                         "metric": "accuracy"})


def _families(*parts):
    """Concatenate single-family simulations under new family names (shared example ids)."""
    frames = []
    for i, df in enumerate(parts):
        df = df.copy()
        df["family"] = f"f{i}"
        df["model"] = df["model"].str.replace("fam0", f"f{i}")
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------ closed forms
def test_holm_equals_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for m in (1, 2, 3, 7):
        p = rng.uniform(0, 0.2, m)
        np.testing.assert_allclose(adjust_p(p, "holm"), multipletests(p, method="holm")[1])


def test_power_at_is_noncentral_t_without_the_floor():
    # floor = 0 removes the Knapp-Hartung truncation: the statistic is then noncentral t
    df, crit = 6, stats.t.ppf(0.975, 6)
    for delta in (0.5, 2.0, 3.5):
        exact = stats.nct.sf(crit, df, delta) + stats.nct.cdf(-crit, df, delta)
        assert evidence.power_at(delta, df, crit, floor=0.0, n_q=4000) == pytest.approx(
            exact, abs=2e-3)


def test_cochran_q_and_i2_by_hand():
    b, s = np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 1.0])
    mean, se, tau2, Q, i2 = generality._dl(b, s)
    # equal weights: Q = sum (b - mean)^2 = 1.778 + 0.111 + 2.778 = 4.667; I2 = (Q - 2) / Q
    assert Q == pytest.approx(14 / 3)
    assert i2 == pytest.approx((14 / 3 - 2) / (14 / 3))
    assert tau2 == pytest.approx((14 / 3 - 2) / (3 - 1))    # DL: (Q - df) / (sum w - sum w2/sum w)
    assert mean == pytest.approx(7 / 3)


def test_paired_change_matches_a_hand_computation():
    df = simulate_results("inverse", n_models=5, n_examples=300, rng=4)
    result = fit_trend(df, rng=0, n_boot=200)
    st = result.strength.set_index(["family", "quantity"])
    wide = df.pivot(index="example_id", columns="model", values="score")
    d = wide["fam0-4"] - wide["fam0-0"]
    row = st.loc[("fam0", "change_smallest_to_largest")]
    assert row["estimate"] == pytest.approx(d.mean())
    # paired SE: population SD of the per-example differences over sqrt(n) (bootstrap limit)
    assert row["se"] == pytest.approx(d.std(ddof=0) / np.sqrt(len(d)))
    slope = st.loc[("fam0", "slope_per_decade")]
    assert slope["estimate"] == pytest.approx(result.families["slope"].iloc[0])
    assert "per 10x parameters" in slope["units"]


# ------------------------------------------------------------------------ engine vs core
@pytest.mark.parametrize("shape", ["flat", "inverse", "u_shaped", "inverted_u"])
def test_batched_verdict_reproduces_the_core(shape):
    for seed in range(6):
        df = simulate_results(shape, n_families=1 + seed % 2, n_models=6 + seed % 3,
                              n_examples=300, effect=0.6, model_sd=0.15, rng=seed)
        result = fit_trend(df, rng=0, n_boot=100, flat_margin=0.08)
        ms = model_scores(load_results(df))
        for label, a in result.analyses.items():
            out = evidence.batched_verdicts(evidence.label_data(result, ms, label))
            # tau^2 from a 40-point grid + parabola vs Brent: p-values agree to ~1e-3, so a
            # verdict may differ only when one of the deciding p-values sits at alpha
            if out["verdict"][0] != a.verdict:
                ps = [a.gate["p_value"], a.tost["p_value"], a.slope[3]]
                assert min(abs(p - 0.05) for p in ps if np.isfinite(p)) < 0.005
            assert out["p_gate"][0] == pytest.approx(a.gate["p_value"], abs=0.01)
            assert out["p_linear"][0] == pytest.approx(a.slope[3], abs=0.01)


def test_dropping_by_indicator_equals_deleting_the_model():
    df = simulate_results("u_shaped", n_families=2, n_models=7, n_examples=300, rng=2)
    result = fit_trend(df, rng=0, n_boot=100)
    ms = model_scores(load_results(df))
    d = evidence.label_data(result, ms, "pooled")
    out = evidence.batched_verdicts(d, np.repeat(d.y[None], d.k, 0), drop=np.arange(d.k))
    for j in range(d.k):
        sub = evidence.batched_verdicts(d.subset(np.delete(np.arange(d.k), j)))
        assert out["slope"][j] == pytest.approx(sub["slope"][0], rel=1e-3, abs=1e-6)
        assert out["verdict"][j] == sub["verdict"][0]


# ------------------------------------------------------------------------ result fields
def test_strength_generality_and_meta_survive_json():
    df = simulate_results("inverse", n_families=3, n_models=8, n_examples=500, rng=1)
    result = fit_trend(df, rng=0, n_boot=200)
    assert {"slope_per_decade", "change_fitted", "change_smallest_to_largest", "snr",
            "snr_examples_only"} <= set(result.strength["quantity"])
    assert set(result.strength["family"]) == {"fam0", "fam1", "fam2", "pooled"}
    # every strength number has an interval; the SNR's is the change's interval in SE units,
    # so (ci / snr) * change reproduces the change interval
    st = result.strength.set_index(["family", "quantity"])
    assert st[["ci_lower", "ci_upper"]].notna().all().all()
    snr, ch = st.loc[("pooled", "snr")], st.loc[("pooled", "change_fitted")]
    assert snr["estimate"] == pytest.approx(ch["estimate"] / ch["se"])
    assert snr["ci_lower"] * ch["se"] == pytest.approx(ch["ci_lower"])
    assert snr["ci_upper"] * ch["se"] == pytest.approx(ch["ci_upper"])
    gen = result.generality
    assert list(gen["family"]) == ["fam0", "fam1", "fam2", "pooled"]
    assert gen.loc[gen["family"] == "pooled", "n_showing"].iloc[0] == gen["shows_claim"].sum()
    nm = result.meta["noise"]
    assert nm["n_stability"] == 200 and nm["n_null"] == 200   # min(n_boot, 400 / 1000)
    assert {r["label"] for r in nm["influence"]} == {"pooled"}
    back = TrendResult.from_dict(json.loads(result.to_json()))
    pd.testing.assert_frame_equal(back.strength, result.strength, check_dtype=False)
    assert back.meta["noise"]["null"]["p_value"] == nm["null"]["p_value"]


def test_u_shape_strength_reports_depth_and_location():
    df = simulate_results("u_shaped", n_families=1, n_models=9, n_examples=3000, effect=1.5,
                          model_sd=0.02, rng=5)
    result = fit_trend(df, rng=0, n_boot=200)
    assert result.shape == "u_shaped"
    st = result.strength.set_index("quantity")
    assert st.loc["trough_depth", "estimate"] > 0
    assert st.loc["left_arm_change", "estimate"] < 0 < st.loc["right_arm_change", "estimate"]
    assert 1e8 < st.loc["extremum_location", "estimate"] < 1e11
    assert result.meta["noise"]["power"]["fam0"]["kind"] == "curvature"


def test_u_claim_generality_compares_curvatures():
    df = simulate_results("u_shaped", n_families=2, n_models=7, n_examples=2000, effect=1.5,
                          model_sd=0.02, rng=6)
    result = fit_trend(df, rng=0, n_boot=200)
    gen = evidence.generality_table(result, model_scores(load_results(df)), "u_shaped")
    assert set(gen["effect"]) == {"curvature"}
    assert (gen.loc[gen["family"] != "pooled", "estimate"] > 0).all()


# ------------------------------------------------------------------------ power by simulation
@pytest.mark.slow
def test_power_examples_needed_detects_80_percent():
    """At the reported examples-needed the claimed slope is detected in 80% +- 5% of datasets.

    Truth: identity link (score-scale slope known exactly), 8 models, model-level SD 0.02.
    The examples needed come from ``examples_for_power`` with the true tau^2 and the sampling
    covariance of a 20000-example pilot (rescaled). 300 datasets: binomial SE of the rate at 0.8
    is 0.023, so +-0.05 is +-2.2 SE. Detection = the gated verdict 'inverse' (batched engine,
    which reproduces the core verdict; cross-checked on the first 30 datasets).
    Measured: 0.803 (and 0.813 at SD 0.01, 0.83 at SD 0 -- the quadratic half of the gate
    adds a little power the slope-only calculation ignores).
    """
    kw = dict(n_models=8, link="identity", base=0.6, item_sd=1.0, model_sd=0.02, effect=0.12)
    pilot = simulate_results("inverse", n_examples=20000, rng=123, **kw)
    slope = pilot.attrs["true_slope"]
    d = _single_label(model_scores(load_results(pilot)))
    pw = evidence.power_analysis(d, effect=slope, tau2=0.02**2, n_examples=20000)
    n_star = pw["examples_needed"]
    assert 100 < n_star < 5000
    hits, agree = [], []
    for s in range(300):
        ms = model_scores(load_results(simulate_results("inverse", n_examples=n_star,
                                                        rng=1000 + s, **kw)))
        d2 = _single_label(ms)
        verdict = evidence.batched_verdicts(d2)["verdict"][0]
        hits.append(verdict == "inverse")
        if s < 30:
            core = analyse_shape("fam0", d2.y, d2.V, ms.models["log10_x"].to_numpy(),
                                 np.zeros(8, int), flat_margin=0.05)
            agree.append(core.verdict == verdict)
    assert np.mean(agree) >= 0.95
    assert 0.75 <= np.mean(hits) <= 0.85


@pytest.mark.slow
def test_u_power_examples_needed_by_simulation():
    """U claims: the power of the two-lines verdict itself, simulated, at the reported examples.

    Truth: a quadratic U over 9 models (ends 0.0675 above the middle), model-level SD 0.005,
    binomial-like sampling error p(1-p)/n. ``examples_needed_u_verdict`` comes from the batched
    engine with the breakpoint held at its observed value. Checked two ways at that n:
    (1) fresh batched simulations (1000 studies, another seed): 80% +- 5% (SE 1.3%, plus the
    2% SE of the 400-study search); (2) the full core procedure, which re-chooses the
    breakpoint in every study, on 300 studies: measured 71-72% here (the fixed breakpoint makes
    the batched figure a few points optimistic), accepted in [0.64, 0.86] (80% +- 2.7 SE of
    300 studies, wide enough for that known bias). The curvature-coefficient proxy claims far
    more power than the U test has: asserted too.
    """
    from scalingfit.curves import design_matrix
    from scalingfit.shapes import analyse_shape

    k, p0, n_now, tau2 = 9, 0.6, 300, 0.005**2
    lx = np.linspace(8, 11, k)
    params = np.array([0.55, 0.0, 0.03])
    y0 = design_matrix("quadratic", lx - lx.mean(), np.zeros(k, int)) @ params
    V = np.eye(k) * p0 * (1 - p0) / n_now
    core = analyse_shape("fam0", y0, V, lx, np.zeros(k, int), flat_margin=0.05)
    d = evidence.LabelData("fam0", np.arange(k), y0, V, core.z, np.zeros(k, int),
                        core.two_lines.breakpoint, True, ALL, 1, 0.05, 0.05)
    pw = evidence.power_analysis(d, effect=0.03, tau2=tau2, n_examples=n_now, kind="curvature",
                              u_curve=params, claim="u_shaped", rng=1)
    n_star = pw["examples_needed_u_verdict"]
    assert pw["power_u_verdict"] < 0.2 < 0.4 < pw["power"]     # proxy: ~48%; U test: ~4%
    assert 1000 < n_star < 5000
    fresh = evidence.u_verdict_power(d, params, "u_shaped", tau2=tau2, n_examples=n_now,
                                  n_values=n_star, n_sim=1000, rng=99)[0]
    assert abs(fresh - 0.80) <= 0.05, fresh
    rng = np.random.default_rng(8)
    VN = np.eye(k) * p0 * (1 - p0) / n_star
    hits = [analyse_shape("fam0", y0 + rng.normal(0, np.sqrt(tau2), k)
                          + rng.normal(0, np.sqrt(VN[0, 0]), k), VN, lx, np.zeros(k, int),
                          flat_margin=0.05).verdict == "u_shaped" for _ in range(300)]
    assert 0.64 <= np.mean(hits) <= 0.86, np.mean(hits)


@pytest.mark.slow
def test_models_needed_detects_80_percent():
    """At the reported models-needed (evenly spread over the same range) the claimed slope is
    detected in 80% +- 4% of 2000 simulated studies (SE 0.9%), and one model fewer falls short
    of 80%: the bisection stops at the first count that reaches the target. Aggregated scores,
    SE 0.01, model-level SD 0.02, slope -0.02 per decade; 5 models now (power ~17%).
    Measured: 17 models, 80.3%; 16 models, 76.4%."""
    se, tau, slope = 0.01, 0.02, -0.02
    lx = np.linspace(8, 11, 5)
    d = _label_diag(lx, 0.6 + slope * (lx - lx.mean()), se)
    k = evidence.power_analysis(d, effect=slope, tau2=tau**2)["models_needed"]
    assert 10 < k < 30
    rng = np.random.default_rng(0)
    rates = []
    for kk in (k - 1, k):
        lxk = np.linspace(8, 11, kk)
        Y = (0.6 + slope * (lxk - lxk.mean()) + rng.normal(0, tau, (2000, kk))
             + rng.normal(0, se, (2000, kk)))
        rates.append(np.mean(evidence.batched_verdicts(_label_diag(lxk, Y[0], se), Y)["verdict"]
                             == "inverse"))
    assert abs(rates[1] - 0.80) <= 0.04 and rates[0] < 0.80, rates


def _label_diag(lx, y, se):
    return evidence.LabelData("fam0", np.arange(len(lx)), y, np.eye(len(lx)) * se**2,
                           lx - lx.mean(), np.zeros(len(lx), int), None, True, ALL, 1, 0.05,
                           0.05)


def test_power_needs_models_when_model_noise_dominates():
    df = _aggregated([0.5, 0.52, 0.47, 0.55, 0.49, 0.53, 0.46, 0.51], n=100000)
    result = fit_trend(df, rng=0, n_boot=200)
    pw = result.meta["noise"]["power"]["fam0"]
    assert pw["examples_needed"] is None          # tau^2 does not shrink with examples
    assert pw["mde_slope"] > 0
    small = evidence.power_analysis(evidence.label_data(result, model_scores(load_results(df)),
                                                  "fam0"), effect=1.0, tau2=0.0,
                                 n_examples=100000)
    assert small["power"] > 0.99


# ------------------------------------------------------------------------ notes: clean data
@pytest.fixture(scope="module")
def clean():
    """Strong, smooth inverse trend in three families, many examples, chance 0.25 far below,
    a continuous metric that agrees: no noise note should fire."""
    df = simulate_results("inverse", n_families=3, n_models=8, n_examples=1500, effect=1.2,
                          model_sd=0.02, base=0.6, rng=11)
    rng = np.random.default_rng(0)
    df["logprob_correct"] = np.log(np.clip(0.55 - 0.1 * np.log10(df["n_params"] / 1e8)
                                           + rng.normal(0, 0.05, len(df)), 0.05, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return check_claim(df, "inverse", rng=0, n_boot=500, chance=0.25).result


@pytest.mark.parametrize("code", sorted(NOTE_CODES))
def test_clean_data_trigger_no_noise_note(clean, code):
    assert clean.shape == "inverse"
    assert code not in _codes(clean)


# ------------------------------------------------------------------------ notes: triggers
def test_small_eval_set_and_imprecise_models():
    df = simulate_results("inverse", n_models=6, n_examples=120, effect=2.0, rng=3)
    codes = _codes(fit_trend(df, rng=0, n_boot=200))
    assert {"small_eval_set", "imprecise_models"} <= codes


ZIGZAG = [0.04, 0.96, 0.10, 0.90, 0.03, 0.97, 0.08, 0.93]


def test_zigzag_triggers_reversals_and_model_noise():
    result = fit_trend(_aggregated(ZIGZAG, n=5000), rng=0, n_boot=200)
    assert result.shape not in ("inverse", "positive")
    assert {"adjacent_reversals", "spread_is_model_noise", "underpowered"} <= _codes(result)


def test_largest_model_drives_the_verdict():
    # Wei et al. 2022 in miniature: a clean inverse run that the largest model breaks
    scores = [0.80, 0.75, 0.70, 0.65, 0.60, 0.55, 0.50, 0.75]
    result = fit_trend(_aggregated(scores, n=3000), rng=0, n_boot=200)
    assert "verdict_depends_on_largest_model" in _codes(result)
    infl = pd.DataFrame(result.meta["noise"]["influence"]).set_index("dropped")
    assert result.shape != "inverse" and infl.loc["fam0-7", "shape"] == "inverse"


def test_a_single_middle_model_drives_the_verdict():
    scores = [0.60, 0.61, 0.60, 0.30, 0.59, 0.60, 0.61, 0.60]
    result = fit_trend(_aggregated(scores, n=3000), rng=0, n_boot=200, shapes=[
        "positive", "inverse", "u_shaped", "inverted_u"])
    infl = pd.DataFrame(result.meta["noise"]["influence"])
    changed = infl[infl["changed"]]
    assert "influential_model" in _codes(result)
    assert not changed["largest"].any()


def test_borderline_trend_is_unstable():
    # a just-significant slope: about half of repeat studies would reach it
    hits = 0
    for seed in range(20):
        df = simulate_results("inverse", n_models=8, n_examples=400, effect=0.45,
                              model_sd=0.1, rng=seed)
        result = fit_trend(df, rng=0, n_boot=200)
        if result.shape == "inverse":
            share = result.meta["noise"]["stability"]["fam0"]["share"]
            assert ("unstable_shape" in _codes(result)) == (share < 0.8)
            hits += "unstable_shape" in _codes(result)
    assert hits >= 1


def test_too_few_null_simulations_cannot_confirm():
    # with 10 null datasets the smallest possible p is 1/11 > alpha: the note must fire
    df = simulate_results("inverse", n_models=8, n_examples=800, effect=2.0, rng=2)
    result = fit_trend(df, rng=0, n_boot=200)
    ms = model_scores(load_results(df))
    bare = result.replace(diagnostics=result.diagnostics.iloc[:0])
    again = evidence.add_noise_diagnostics(bare, ms, rng=0, n_null=10)
    assert result.shape == "inverse"
    assert "null_calibration_disagrees" in _codes(again)
    assert again.meta["noise"]["null"]["p_value"] == pytest.approx(1 / 11)


def test_floor_notes_from_chance():
    # identity link: accuracy falls from about 0.5 to 0.2 over the range; chance is 0.5
    df = simulate_results("inverse", n_models=8, n_examples=2000, link="identity", base=0.35,
                          effect=0.3, model_sd=0.005, rng=7)
    check = check_claim(df, "inverse", rng=0, n_boot=200, chance=0.5)
    codes = _codes(check.result)
    assert {"near_chance", "chance_to_below_chance"} <= codes
    df["n_classes"] = 2                        # the same from a column
    check2 = check_claim(df, "inverse", rng=0, n_boot=200)
    assert "chance_to_below_chance" in _codes(check2.result)


def test_ceiling_note():
    df = _aggregated([0.997, 0.998, 0.999, 0.998, 0.999, 1.0, 0.999, 1.0], n=1000)
    check = check_claim(df, "positive", rng=0, n_boot=200)
    assert "near_ceiling" in _codes(check.result)


def test_metric_disagreement():
    df = simulate_results("inverse", n_models=8, n_examples=1500, effect=1.2, model_sd=0.02,
                          rng=8)
    rng = np.random.default_rng(1)
    # the continuous metric improves with scale while accuracy falls
    df["logprob_correct"] = -1.0 + 0.1 * np.log10(df["n_params"] / 1e8) + rng.normal(
        0, 0.3, len(df))
    check = check_claim(df, "inverse", rng=0, n_boot=200)
    assert "metric_disagreement" in _codes(check.result)
    row = check.checks.set_index("check").loc["metric_sensitivity"]
    assert not row["passed"] and not row["required"]


def test_missing_continuous_values_drop_the_example_for_every_model():
    """A NaN log-prob (a class the runner could not score) drops that example for all models
    of the family in the metric comparison, instead of failing the whole fit."""
    df = simulate_results("inverse", n_models=6, n_examples=300, effect=1.2, rng=9)
    df["logprob_correct"] = -1.0 - 0.1 * np.log10(df["n_params"] / 1e8)
    models, examples = df["model"].unique(), df["example_id"].unique()
    for m, e in ((models[0], examples[0]), (models[3], examples[5])):   # two examples
        df.loc[(df["model"] == m) & (df["example_id"] == e), "logprob_correct"] = np.nan
    result = fit_trend(df, rng=0, n_boot=200)
    ms_ = result.meta["noise"]["metric_sensitivity"]
    assert ms_["column"] == "logprob_correct" and ms_["n_examples_dropped"] == 2
    assert ms_["labels"]["fam0"]["continuous"] == "inverse"


@pytest.fixture(scope="module")
def mixed():
    """Three families clearly inverse, a fourth clearly positive."""
    kw = dict(n_models=8, n_examples=1500, model_sd=0.02, effect=1.5)
    parts = [simulate_results(shape, rng=20 + i, **kw)
             for i, shape in enumerate(["inverse", "inverse", "inverse", "positive"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return fit_trend(_families(*parts), rng=0, n_boot=200)


@pytest.mark.parametrize("code", ["heterogeneous_families", "family_outside_prediction",
                                  "families_disagree"])
def test_family_notes(mixed, code):
    assert code in _codes(mixed)


def test_pooled_verdict_depends_on_one_family():
    kw = dict(n_models=8, n_examples=1500, model_sd=0.02)
    result = fit_trend(_families(simulate_results("inverse", rng=30, effect=2.5, **kw),
                                 simulate_results("flat", rng=31, **kw),
                                 simulate_results("flat", rng=32, **kw)), rng=0, n_boot=200)
    gen = result.generality.set_index("family")
    assert result.shape == "inverse"
    assert gen.loc["f0", "loo_shape"] != "inverse"
    assert "pooled_verdict_depends_on_family" in _codes(result)


def test_every_code_is_tested_here():
    import pathlib

    text = pathlib.Path(__file__).read_text()
    for code in NOTE_CODES:
        assert text.count(f'"{code}"') >= 1, code
