"""Population-level inference over families (scalingfit.population).

Layers (STYLE section 10): (a) reference values from R's metafor 3.8.1
(``tests/data/reference/make_metafor_reference.R``: ``rma(yi, vi, method="REML",
test="knha")``, R 4.2.2); (b) closed forms; (c) a seeded simulation core (seconds); (d) the
population verdict on small constructed cases.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from scalingfit.curves import design_matrix
from scalingfit.data import load_results, model_scores
from scalingfit.exceptions import DataValidationError
from scalingfit.fit import analyse
from scalingfit.metareg import fit_metareg
from scalingfit.population import (NO_POPULATION, families_needed, population_verdict,
                                   random_effects)

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "tests/data/reference/metafor_reference.json").read_text())
SETS = REF["datasets"]

# Tolerances: both sides iterate REML to 1e-12 (metafor threshold=1e-12, ours 1e-12 relative),
# so estimates agree to ~1e-9 relative; the Q-profile bounds come from two root finders with
# tolerance 1e-12: rtol 1e-6 leaves room for their different stopping rules.
RTOL = 1e-7
RTOL_QPROFILE = 1e-6


@pytest.mark.parametrize("name", sorted(SETS))
def test_matches_metafor_reml_knha(name):
    s = SETS[name]
    r = random_effects(s["yi"], s["vi"])
    got = {"estimate": r.estimate, "se": r.se, "tval": r.t, "pval": r.p_value,
           "ci_lb": r.ci_lower, "ci_ub": r.ci_upper, "I2": r.i2, "QE": r.q,
           "QEp": r.p_heterogeneity, "s2w": r.hksj_scale, "fe_estimate": r.common_estimate,
           "fe_se": r.common_se, "df": r.df}
    for key, value in got.items():
        assert value == pytest.approx(s[key], rel=RTOL, abs=1e-12), key
    assert r.tau2 == pytest.approx(s["tau2"], rel=RTOL, abs=1e-10)
    dl = random_effects(s["yi"], s["vi"], method="DL")
    assert dl.tau2 == pytest.approx(s["dl_tau2"], rel=RTOL, abs=1e-12)
    if s["k"] >= 3:
        assert r.tau2_ci_lower == pytest.approx(s["tau2_ci_lb"], rel=RTOL_QPROFILE, abs=1e-10)
        assert r.tau2_ci_upper == pytest.approx(s["tau2_ci_ub"], rel=RTOL_QPROFILE)
        assert r.pi_lower == pytest.approx(s["pi_riley_lb"], rel=RTOL)
        assert r.pi_upper == pytest.approx(s["pi_riley_ub"], rel=RTOL)
    else:
        assert np.isnan(r.pi_lower) and "2 families" in r.note


def test_bcg_published_values():
    """dat.bcg, REML + Knapp-Hartung, as metafor's documentation prints it (4 decimals)."""
    s = SETS["bcg"]
    r = random_effects(s["yi"], s["vi"])
    assert (round(r.estimate, 4), round(r.se, 4), round(r.tau2, 4)) == (-0.7145, 0.1808, 0.3132)
    assert (round(r.ci_lower, 4), round(r.ci_upper, 4)) == (-1.1084, -0.3206)
    assert round(r.i2, 2) == 92.22 and round(r.q, 4) == 152.2330


def test_equal_variances_hksj_is_one_sample_t():
    b = np.array([0.12, -0.05, 0.31, 0.02, 0.18])
    for tau_like in (np.array([0.3, -0.2, 0.5, -0.4, 0.1]), np.zeros(5)):
        y = b + tau_like
        r = random_effects(y, np.full(5, 0.01))
        tt = stats.ttest_1samp(y, 0.0)
        assert r.estimate == pytest.approx(y.mean())
        assert r.se == pytest.approx(y.std(ddof=1) / np.sqrt(5))
        assert r.p_value == pytest.approx(tt.pvalue)
        lo, hi = tt.confidence_interval(0.95)
        assert (r.ci_lower, r.ci_upper) == (pytest.approx(lo), pytest.approx(hi))


def test_two_families_df_one_and_no_prediction_interval():
    r = random_effects([0.1, 0.4], [0.01, 0.02])
    assert r.df == 1 and r.n_families == 2
    assert np.isnan(r.pi_lower) and np.isnan(r.pi_upper)
    assert r.note.startswith("no prediction interval with 2 families")
    assert r.ci_upper - r.ci_lower == pytest.approx(2 * stats.t.ppf(0.975, 1) * r.se)


def test_tau2_boundary_and_truncation():
    s = SETS["four_homog"]
    r = random_effects(s["yi"], s["vi"])
    assert r.tau2 == 0.0 and r.tau2_ci_lower == 0.0 and r.i2 == 0.0
    assert r.estimate == pytest.approx(r.common_estimate)
    assert r.hksj_scale < 1                      # the untruncated interval is narrower ...
    tr = random_effects(s["yi"], s["vi"], reference="hksj_trunc")
    z = random_effects(s["yi"], s["vi"], reference="z")
    assert tr.se == pytest.approx(z.se) and r.se < z.se     # ... than the Wald interval
    assert z.df == np.inf


def test_one_family_is_no_population_inference():
    r = random_effects([0.2], [0.01])
    assert r.note == NO_POPULATION and np.isnan(r.estimate) and np.isnan(r.p_value)
    assert r.common_estimate == 0.2


def test_bad_inputs_name_the_problem():
    with pytest.raises(DataValidationError) as err:
        random_effects([0.1, 0.2], [0.01, 0.0])
    assert str(err.value) == (
        "random_effects needs finite estimates and finite, positive variances; got estimates "
        "[0.1, 0.2] and variances [0.01, 0.0]. Leave out a family whose coefficient has no "
        "sampling error (a floor or ceiling).")
    with pytest.raises(DataValidationError) as err:
        random_effects([0.1, 0.2], [0.01, 0.02], reference="kh")
    assert str(err.value) == "reference must be one of ['ols', 'hksj', 'hksj_trunc', 'z']; got 'kh'."


def test_simulation_core_fpr_and_coverage():
    """Seeded: 600 sets of F = 4 family slopes from the random-effects model itself
    (tau = 0.1, within SDs 0.03-0.12), mean 0. With 600 sets the binomial SE of a 5% rate is
    0.9 points and of 95% coverage 0.9 points: FPR must be <= 5% + 2.5 SE (7.2%), coverage
    within 95% +- 2.5 SE ([92.8, 97.2]%). The Wald (z) reference is shown to fail the same
    bound (it ignores that tau^2 is estimated from 4 families)."""
    rng = np.random.default_rng(20261202)
    n, F = 600, 4
    hits = {"hksj": 0, "z": 0}
    for _ in range(n):
        sd = rng.uniform(0.03, 0.12, F)
        y = rng.normal(0, 0.1, F) + rng.normal(0, sd)
        for ref in hits:
            r = random_effects(y, sd**2, reference=ref)
            hits[ref] += r.ci_lower <= 0 <= r.ci_upper
    assert 0.928 <= hits["hksj"] / n <= 0.972
    assert hits["z"] / n < 0.928


def test_families_needed_grows_with_spread():
    small = families_needed(0.05, 0.0, 0.0004)
    big = families_needed(0.05, 0.01, 0.0004)
    assert small is not None and big is not None and big > small >= 2
    assert families_needed(0.0, 0.01, 0.0004) is None


# ---------- population verdict on small constructed cases ----------------------------------

def _aggregated(slopes, n_models=8, seed=0, n=2000):
    """Aggregated accuracies (binomial, n examples) with one true slope per family."""
    rng = np.random.default_rng(seed)
    lx = np.linspace(8, 11, n_models)
    rows = []
    for f, b in enumerate(slopes):
        p = np.clip(0.55 + b * (lx - 9.5) + rng.normal(0, 0.005, n_models), 0.01, 0.99)
        acc = rng.binomial(n, p) / n
        rows += [{"family": f"f{f}", "model": f"f{f}-{m}", "n_params": int(10**x),
                  "score": a, "n": n, "metric": "accuracy"} for m, (x, a) in
                 enumerate(zip(lx, acc))]
    table = load_results(pd.DataFrame(rows))
    ms = model_scores(table)
    an, _, margin = analyse(ms, table)
    return an, margin


def test_mixed_when_families_disagree_in_direction():
    an, margin = _aggregated([0.06, 0.05, -0.06, -0.05])
    pv = population_verdict(an, flat_margin=margin)
    assert pv.verdict == "mixed"
    assert pv.sides == {"positive": ("f0", "f1"), "inverse": ("f2", "f3")}
    assert pv.slope.p_heterogeneity < 0.001
    assert pv.sentence.startswith("Families disagree in direction: f0, f1 scale positively, "
                                  "f2, f3 inversely")
    json.dumps(pv.to_dict())


def test_agreeing_families_give_the_population_direction():
    an, margin = _aggregated([-0.05, -0.045, -0.055])
    pv = population_verdict(an, flat_margin=margin)
    assert pv.verdict == "inverse"
    assert pv.slope.ci_upper < 0 and pv.slope.df == 2
    assert pv.these_families["ci_upper"] < 0
    assert pv.slope.pi_lower < pv.slope.ci_lower       # a new family is less certain


def test_one_family_has_no_population_verdict():
    an, margin = _aggregated([-0.05])
    pv = population_verdict(an, flat_margin=margin)
    assert pv.verdict == "inconclusive" and NO_POPULATION in pv.sentence


def test_common_origin_reexpression_matches_a_refit():
    """A family's quadratic is centred on its own mean; re-expressed on the common origin
    (slope b - 2 q d) it equals a refit of the same models on the common centring."""
    an, _ = _aggregated([0.02, -0.01], n_models=6)
    origin = np.mean(np.concatenate([an[f].z + an[f].z_center for f in ("f0", "f1")]))
    a = an["f1"]
    lin = a.linear
    V = lin.sigma - lin.tau2 * np.eye(len(lin.y))
    refit = fit_metareg(lin.y, design_matrix("quadratic", a.z + a.z_center - origin,
                                             np.zeros(len(lin.y), int)), V,
                        tau2=a.quadratic.tau2)
    b, q = a.quadratic.params[-2:]
    d = a.z_center - origin
    assert refit.params[-2] == pytest.approx(b - 2 * q * d, rel=1e-6, abs=1e-10)
    assert refit.params[-1] == pytest.approx(q, rel=1e-6)


def test_ols_reference_is_the_one_sample_t_test_of_the_family_slopes():
    """reference='ols' (summary statistics) is scipy's one-sample t test on the estimates,
    whatever their variances: the closed form it must equal."""
    b = [0.12, -0.03, 0.07, 0.01]
    v = [0.0004, 0.01, 0.002, 0.0009]
    r = random_effects(b, v, reference="ols")
    t = stats.ttest_1samp(b, 0.0)
    assert r.estimate == pytest.approx(sum(b) / 4, rel=1e-12)
    assert r.p_value == pytest.approx(t.pvalue, rel=1e-10)
    assert r.df == 3
    ci = t.confidence_interval(0.95)
    assert (r.ci_lower, r.ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-10)
