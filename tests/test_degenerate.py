"""Families at a floor or ceiling, and options of the wrong kind in check_claim.

A family that scores the same on every example of every model (all 100%, all 0%) has zero
sampling variance: left in the pooled fit it pins the common curve flat with an interval of
+-1e-7 while another family is clearly inverse. It is flagged and left out of the pooled
verdict; when every family is degenerate, no claim survives (not even 'flat').
"""

import warnings

import pytest

from scalingfit import OptionError, check_claim, fit_trend
from scalingfit.simulate import simulate_results


@pytest.fixture(scope="module")
def two():
    return simulate_results("inverse", n_families=2, n_models=6, n_examples=300, effect=1.5,
                            rng=2)


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def test_a_family_at_the_ceiling_cannot_drive_the_pooled_verdict(two):
    ceiling = two.copy()
    ceiling.loc[ceiling["family"] == "fam0", "score"] = 1.0
    r = _quiet(fit_trend, ceiling, rng=0, n_boot=200)
    alone = _quiet(fit_trend, two[two["family"] == "fam1"], rng=0, n_boot=200)
    assert r.shape == "inverse" == alone.shape
    assert r.pooled["n_models"] == 6
    assert r.pooled["slope"] == pytest.approx(alone.pooled["slope"], rel=1e-9)
    assert r.pooled["ci_upper"] < 0
    assert r.meta["left_out_of_pooled"] == ["fam0"]
    (msg,) = r.diagnostics.loc[r.diagnostics["code"] == "degenerate_family", "message"]
    assert msg.startswith("family 'fam0' scores the same on every example of every model")


def test_all_families_at_the_floor_show_no_claim(two):
    floor = two.assign(score=0.0)
    r = _quiet(fit_trend, floor, rng=0, n_boot=200)
    assert "degenerate_family" in set(r.diagnostics["code"])
    check = _quiet(check_claim, floor, "flat", rng=0, n_boot=200)
    assert not check.survives
    row = check.checks.set_index("check").loc["informative"]
    assert bool(row["required"]) and not bool(row["passed"])


@pytest.mark.parametrize("effect", [float("nan"), float("inf"), 0.0, True, "big"])
def test_a_bad_effect_is_named(two, effect):
    with pytest.raises(OptionError, match=r"^effect must be a finite, non-zero number"):
        check_claim(two, "inverse", rng=0, n_boot=200, effect=effect)
