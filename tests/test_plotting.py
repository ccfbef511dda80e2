"""Structural tests of :mod:`scalingfit.plotting` with the Agg backend.

The plots only draw numbers of the result, so each test checks that the drawn data equal the
result's numbers (points, curves, bands, reference lines) and that labels are present.
"""

import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from scalingfit import StatisticalWarning, TrendResult, fit_trend  # noqa: E402
from scalingfit import plotting  # noqa: E402
from scalingfit.simulate import simulate_results  # noqa: E402

N_BOOT = 200


@pytest.fixture(scope="module")
def result():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return fit_trend("data/synthetic_families.csv", n_boot=N_BOOT, rng=0)


@pytest.fixture(scope="module")
def u_result():
    data = simulate_results("u_shaped", n_families=2, n_models=9, effect=1.5, model_sd=0.02,
                            rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        res = fit_trend(data, n_boot=N_BOOT, rng=0)
    assert res.shape == "u_shaped"
    return res


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _by_gid(ax, gid):
    return [a for a in ax.get_children() if a.get_gid() == gid]


def test_import_scalingfit_does_not_import_matplotlib():
    code = ("import sys, scalingfit, scalingfit.plotting, scalingfit.report; "
            "assert 'matplotlib' not in sys.modules and 'seaborn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plot_trend_points_and_intervals_equal_result(result):
    ax = plotting.plot_trend(result, dodge=0.0)
    for fam in result.families["family"]:
        (pts,) = _by_gid(ax, f"models:{fam}")
        m = result.models[result.models["family"] == fam]
        np.testing.assert_array_equal(pts.get_xdata(), m["x"].to_numpy())
        np.testing.assert_array_equal(pts.get_ydata(), m["score"].to_numpy())
    # error bars span each model's interval
    segs = [c for c in ax.containers if c.get_label() == "fam0"][0].lines[2][0].get_segments()
    m0 = result.models[result.models["family"] == "fam0"]
    np.testing.assert_allclose([s[0][1] for s in segs], m0["ci_lower"])
    np.testing.assert_allclose([s[1][1] for s in segs], m0["ci_upper"])


def test_plot_trend_draws_verdict_curve_with_band(result):
    ax = plotting.plot_trend(result)
    assert result.shape == "inverse"
    for fam in result.families["family"]:
        (line,) = _by_gid(ax, f"curve:{fam}:linear")
        c = result.curves[(result.curves.family == fam) & (result.curves.curve == "linear")]
        np.testing.assert_array_equal(line.get_xdata(), c["x"].to_numpy())
        np.testing.assert_array_equal(line.get_ydata(), c["fitted"].to_numpy())
        assert len(_by_gid(ax, f"band:{fam}:linear")) == 1
        assert not _by_gid(ax, f"curve:{fam}:two_lines")


def test_plot_trend_labels_scale_and_legend(result):
    ax = plotting.plot_trend(result)
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "Parameters (log scale)"
    assert ax.get_ylabel() == "accuracy (higher is better)"
    assert ax.get_title() == "synthetic-inverse: verdict inverse"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fam0", "fam1", "fam2"]


def test_plot_trend_uses_given_axes_and_optional_curve(result):
    fig, ax = plt.subplots()
    assert plotting.plot_trend(result, ax=ax, curve="quadratic") is ax
    assert len(_by_gid(ax, "curve:fam0:quadratic")) == 1
    ax2 = plotting.plot_trend(result, curve=None, band=False, legend=False)
    assert not [a for a in ax2.get_children() if str(a.get_gid()).startswith("curve:")]
    with pytest.raises(ValueError, match="curve must be 'auto', None or one of"):
        plotting.plot_trend(result, curve="cubic")


def test_chance_line_only_when_known(result):
    ax = plotting.plot_trend(result)
    assert not _by_gid(ax, "chance")
    with_chance = result.replace(meta={**result.meta, "chance": 0.25})
    ax = plotting.plot_trend(with_chance)
    (line,) = _by_gid(ax, "chance")
    assert list(line.get_ydata()) == [0.25, 0.25]
    assert not _by_gid(plotting.plot_trend(with_chance, chance=False), "chance")


def test_u_shape_draws_two_lines_and_turning_point(u_result):
    ax = plotting.plot_trend(u_result)
    for fam in u_result.families["family"]:
        (line,) = _by_gid(ax, f"curve:{fam}:two_lines")
        y = np.asarray(line.get_ydata(), dtype=float)
        assert np.isnan(y).sum() == 1  # the two lines are not joined at the breakpoint
    (tp,) = _by_gid(ax, "turning_point")
    assert tp.get_xdata()[0] == u_result.pooled["turning_point"]
    (span,) = _by_gid(ax, "turning_point_ci")
    if hasattr(span, "get_width"):  # matplotlib >= 3.9: a Rectangle
        xs = np.array([span.get_x(), span.get_x() + span.get_width()])
    else:  # older: a Polygon
        xs = np.asarray(span.get_xy())[:, 0]
    assert np.isclose(xs.min(), u_result.pooled["tp_ci_lower"])
    assert np.isclose(xs.max(), u_result.pooled["tp_ci_upper"])


def test_plot_families_one_panel_per_family(result):
    fig = plotting.plot_families(result)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 3
    assert [a.get_title() for a in visible] == ["fam0: inverse", "fam1: inverse",
                                                "fam2: inverse"]
    for a, fam in zip(visible, result.families["family"]):
        (pts,) = _by_gid(a, f"models:{fam}")
        assert len(pts.get_xdata()) == 8
        assert len(_by_gid(a, f"curve:{fam}:linear")) == 1
        assert a.get_xscale() == "log"


def test_plot_families_accepts_axes_and_checks_their_number(result):
    fig, axes = plt.subplots(1, 3)
    assert plotting.plot_families(result, ax=axes) is fig
    with pytest.raises(ValueError, match=r"^ax holds 2 Axes; plot_families needs one per family "
                                         r"\(3\)\.$"):
        plotting.plot_families(result, ax=axes[:2])


def test_slope_distribution_draws_the_bootstrap_replicates(result):
    ax = plotting.plot_slope_distribution(result)
    for lab in ("fam0", "fam1", "fam2", "pooled"):
        patches = _by_gid(ax, f"slopes:{lab}")
        assert len(patches) == 1
    (zero,) = _by_gid(ax, "zero")
    assert list(zero.get_xdata()) == [0.0, 0.0]
    assert ax.get_xlabel() == "slope (accuracy per 10\u00d7 parameters)"
    assert "200 replicates" in ax.get_title()
    # the histogram covers the replicates' range
    lo, hi = ax.get_xlim()
    assert lo <= min(v.min() for v in result.boot.values())
    assert hi >= max(v.max() for v in result.boot.values())


def test_slope_distribution_needs_replicates(result):
    rebuilt = TrendResult.from_dict(result.to_dict())
    with pytest.raises(ValueError, match="result holds no replicate slopes"):
        plotting.plot_slope_distribution(rebuilt)


def test_influence_plot_from_table(result):
    models = result.models["model"].tolist()
    table = pd.DataFrame({"dropped": models, "shape": ["inverse"] * (len(models) - 1) +
                          ["inconclusive"], "slope": np.linspace(-0.08, -0.06, len(models)),
                          "ci_lower": -0.1, "ci_upper": -0.04})
    fig, ax = plt.subplots()
    assert plotting.plot_influence(result, ax=ax, table=table) is ax
    lines = _by_gid(ax, "influence")
    assert sum(len(line.get_xdata()) for line in lines) == len(models)
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == f"- {models[-1]}"
    assert "1 of 24 change it" in ax.get_title()


def test_power_plot_from_table(result):
    table = pd.DataFrame({"effect": [0.01, 0.02, 0.05, 0.1], "n_examples": [8000, 2000, 320, 80]})
    ax = plotting.plot_power(result, table=table)
    (line,) = _by_gid(ax, "power")
    np.testing.assert_array_equal(line.get_xdata(), table["effect"])
    np.testing.assert_array_equal(line.get_ydata(), table["n_examples"].astype(float))
    (obs,) = _by_gid(ax, "observed_effect")
    assert obs.get_xdata()[0] == abs(result.pooled["slope"])
    (cur,) = _by_gid(ax, "current_n")
    assert cur.get_ydata()[0] == 400
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_noise_plots_explain_a_missing_table(result):
    meta = {k: v for k, v in result.meta.items() if k != "noise"}
    bare = result.replace(diagnostics=result.diagnostics.iloc[0:0], meta=meta)
    with pytest.raises(ValueError, match="result holds no influence table"):
        plotting.plot_influence(bare)
    with pytest.raises(ValueError, match="result holds no power table"):
        plotting.plot_power(bare)


def test_result_plot_returns_axes(result):
    ax = result.plot()
    assert isinstance(ax, matplotlib.axes.Axes)


def test_noise_tables_are_found_in_meta_noise(result):
    # the keys scalingfit.evidence stores (NoiseEvidence): plotting reads them, it no longer
    # guesses at aliases ('model', 'verdict', 'n_needed', ...)
    meta = {**result.meta, "noise": {
        "main_label": "pooled",
        "influence": [{"dropped": "fam0-7", "shape": "inconclusive", "slope": -0.05},
                      {"dropped": "fam1-7", "shape": "inverse", "slope": -0.07}],
        "power": {"pooled": {"target": 0.8, "table": [{"effect": 0.01, "n_examples": 4000},
                                                      {"effect": 0.1, "n_examples": 40}]}}}}
    res = result.replace(meta=meta)
    infl = plotting.influence_table(res)
    assert list(infl["dropped"]) == ["fam0-7", "fam1-7"]
    assert list(infl["shape"]) == ["inconclusive", "inverse"]
    power = plotting.power_table(res)
    assert list(power["effect"]) == [0.01, 0.1] and list(power["n_examples"]) == [4000, 40]
    ax = plotting.plot_influence(res)
    assert "1 of 2 change it" in ax.get_title()


# ------------------------------------------------------------------ noise plots from real fits
def _power_line_data(tab_records):
    tab = pd.DataFrame(tab_records)
    tab = tab.assign(effect=tab["effect"].abs()).sort_values("effect")
    return tab["effect"].to_numpy(dtype=float), tab["n_examples"].astype(float).to_numpy()


def test_power_plot_of_a_u_shape_is_about_curvature(u_result):
    noise = u_result.meta["noise"]
    entry = noise["power"][noise["main_label"]]
    assert entry["kind"] == "curvature" and entry["table"]
    ax = plotting.plot_power(u_result)
    (line,) = _by_gid(ax, "power")
    x, y = _power_line_data(entry["table"])
    np.testing.assert_array_equal(line.get_xdata(), x)
    np.testing.assert_array_equal(line.get_ydata(), y)
    # the marked effect is the observed curvature the power was computed at, not the slope
    (obs,) = _by_gid(ax, "observed_effect")
    assert obs.get_xdata()[0] == abs(entry["effect"])
    assert not np.isclose(obs.get_xdata()[0], abs(u_result.pooled["slope"]))
    assert obs.get_label() == "observed |curvature|"
    assert ax.get_xlabel() == "|curvature| (accuracy per decade\u00b2 of parameters)"
    assert "slope" not in ax.get_xlabel() and "curvature" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["examples for 80% power", "observed |curvature|", "examples now"]


def test_power_plot_of_a_monotone_claim_is_about_the_slope(result):
    noise = result.meta["noise"]
    entry = noise["power"][noise["main_label"]]
    assert entry["kind"] == "slope"
    ax = plotting.plot_power(result)
    (line,) = _by_gid(ax, "power")
    x, y = _power_line_data(entry["table"])
    np.testing.assert_array_equal(line.get_xdata(), x)
    np.testing.assert_array_equal(line.get_ydata(), y)
    (obs,) = _by_gid(ax, "observed_effect")
    assert obs.get_xdata()[0] == abs(entry["effect"]) == abs(result.pooled["slope"])
    assert ax.get_xlabel() == "|slope| (accuracy per 10\u00d7 parameters)"
    (cur,) = _by_gid(ax, "current_n")
    assert cur.get_ydata()[0] == result.meta["n_examples"]


@pytest.mark.parametrize("which", ["result", "u_result"])
def test_influence_plot_draws_the_noise_leave_one_out_fits(which, request):
    res = request.getfixturevalue(which)
    records = res.meta["noise"]["influence"]
    assert len(records) == len(res.models)
    ax = plotting.plot_influence(res)
    changed = np.array([r["shape"] != res.shape for r in records])
    slopes = np.array([r["slope"] for r in records])
    y = np.arange(len(records))[::-1]
    drawn = {}
    for line in _by_gid(ax, "influence"):
        for xv, yv in zip(line.get_xdata(), line.get_ydata()):
            drawn[int(yv)] = float(xv)
    assert sorted(drawn) == sorted(y)
    np.testing.assert_array_equal([drawn[int(v)] for v in y], slopes)
    ticks = {round(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels()}
    assert [ticks[int(v)] for v in y] == [f"- {r['dropped']}" for r in records]
    assert f"({int(changed.sum())} of {len(records)} change it)" in ax.get_title()
    assert res.shape in ax.get_title()
