"""U-shape tests against R reference values (tests/data/reference, made by make_reference.R).

Provenance: R 4.2.2, mgcv 1.8-41, sandwich 3.0-2; Simonsohn's ``twolines`` code (app 0.52) and
``lm`` + ``vcov`` for Lind-Mehlum, cross-checked against Stata ``utest.ado`` v1.3's Fieller
formula. With known sampling variance V = 0 the meta-regression reduces to OLS (REML tau^2 is the
residual variance and the Knapp-Hartung scale is 1), so conventional ``lm`` standard errors are
the right reference for our line slopes. The smoother step (mgcv GAM) is replaced in scalingfit by
the model-level quadratic, so the flat region and Robin Hood steps are tested by feeding them R's
own GAM output.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from scalingfit.curves import design_matrix
from scalingfit.metareg import fit_metareg
from scalingfit.shapes import (flat_region, interrupted_regression, lind_mehlum_test,
                               robin_hood_breakpoint)

REF = json.loads((Path(__file__).parent / "data/reference/reference_values.json").read_text())
DATASETS = ["u_shape", "log_monotone"]
# the REML optimiser stops at a relative tolerance of 1e-8 on tau^2; SEs inherit ~1e-8
RTOL = 1e-6


def _data(name):
    d = REF["datasets"][name]
    return np.array(d["x"], float), np.array(d["y"], float), d


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("where", ["final_interrupted_regression_all_se_types",
                                   "interrupted_regression_at_data_point"])
def test_interrupted_regression_matches_lm(name, where):
    x, y, d = _data(name)
    ref = d["twolines"].get(where)
    if ref is None:
        pytest.skip("no such reference for this dataset")
    _, left, right = interrupted_regression(y, np.zeros((len(y), len(y))), x,
                                            np.zeros(len(x), int), ref["xc"])
    np.testing.assert_allclose(left[0], ref["slope1"]["estimate"], rtol=1e-10)
    np.testing.assert_allclose(right[0], ref["slope2"]["estimate"], rtol=1e-10)
    np.testing.assert_allclose(left[1], ref["slope1"]["const"]["se"], rtol=RTOL)
    np.testing.assert_allclose(right[1], ref["slope2"]["const"]["se"], rtol=RTOL)
    np.testing.assert_allclose(left[3], ref["slope1"]["const"]["p_t_two_sided"], rtol=1e-4)
    np.testing.assert_allclose(right[3], ref["slope2"]["const"]["p_t_two_sided"], rtol=1e-4)


@pytest.mark.parametrize("name", DATASETS)
def test_flat_region_and_robin_hood_match_twolines(name):
    x, _, d = _data(name)
    inter = d["twolines"]["intermediate"]
    fitted = np.array(inter["gam"]["fitted"])
    se = np.array(inter["gam"]["se_fit"])
    direction = 1 if inter["quadratic_for_direction"]["shape"] == "ushape" else -1
    region = flat_region(x, fitted, se, direction)
    np.testing.assert_allclose(region, np.sort(inter["x_flat"]), rtol=1e-12)
    assert np.median(region) == pytest.approx(inter["midflat"], rel=1e-12)
    mid = inter["midpoint_regression"]
    xc = robin_hood_breakpoint(region, mid["z1"], mid["z2"])
    assert xc == pytest.approx(d["twolines"]["xc"], rel=1e-10)


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("block", ["conventional_se", "conventional_se_fieller90"])
def test_lind_mehlum_matches_r(name, block):
    x, y, d = _data(name)
    ref = d["lind_mehlum"][block]
    quad = fit_metareg(y, design_matrix("quadratic", x, np.zeros(len(x), int)),
                       np.zeros((len(y), len(y))))
    out = lind_mehlum_test(quad, x.min(), x.max(), confidence_level=ref["fieller_level"])
    for key in ("slope_min", "slope_max"):
        assert out[key] == pytest.approx(ref[key], rel=1e-9)
    for key in ("se_min", "se_max"):
        assert out[key] == pytest.approx(ref[key], rel=RTOL)
    assert out["turning_point"] == pytest.approx(ref["turning_point"], rel=1e-9)
    if ref["U_signed_statistic"] is not None and out["direction"] == 1:
        assert out["t_stat"] == pytest.approx(ref["U_signed_statistic"], rel=RTOL)
        assert out["p_value"] == pytest.approx(ref["U_signed_p"], rel=1e-4)
    if ref["fieller"]["type"] == "bounded":
        assert out["tp_ci_lower"] == pytest.approx(ref["fieller"]["lower"], rel=1e-6)
        assert out["tp_ci_upper"] == pytest.approx(ref["fieller"]["upper"], rel=1e-6)

