"""fit_many: one fit_trend per group, the same answer at any parallelism, bad groups reported."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

import scalingfit.many as many_module
from scalingfit import DataValidationError, OptionError, StatisticalWarning, fit_trend
from scalingfit.many import (ManyResult, SUMMARY_COLUMNS, fit_many, group_seed, robustness,
                             split_groups)
from scalingfit.verdicts import claim_p_value

from _many_data import aggregated_tasks

N_BOOT = 200


def _bad_family(table: pd.DataFrame, task: str) -> pd.DataFrame:
    """Give one family of ``task`` only two sizes (a group fit_trend refuses)."""
    drop = (table["task"] == task) & (table["family"] == "fam0") & \
        table["model"].isin(["fam0-m2", "fam0-m3", "fam0-m4"])
    return table[~drop].reset_index(drop=True)


@pytest.fixture(scope="module")
def table():
    return _bad_family(aggregated_tasks(n_tasks=6, rng=3), "task05")


@pytest.fixture(scope="module")
def serial(table):
    with pytest.warns(StatisticalWarning, match=r"^5 of 6 groups have diagnostic warnings"):
        return fit_many(table, by="task", n_boot=N_BOOT, rng=11, n_jobs=1, progress=False)


def _same(a, b):
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


def test_two_workers_give_identical_results(table, serial):
    parallel = fit_many(table, by="task", n_boot=N_BOOT, rng=11, n_jobs=2, progress=False)
    assert parallel.groups == serial.groups
    _same(serial, parallel)
    pd.testing.assert_frame_equal(serial.summary(), parallel.summary())


def test_each_group_is_fit_trend_of_its_rows_with_its_recorded_seed(table, serial):
    rows = split_groups(table, "task")
    for key in ["task00", "task01", "task02"]:
        seed = serial.seeds[key]
        assert serial.summary().set_index("task").loc[key, "seed"] == seed
        assert seed == group_seed(11, key)
        alone = fit_trend(rows[key], n_boot=N_BOOT, rng=seed)
        assert alone.meta["seed"] == seed
        assert json.dumps(alone.to_dict(), sort_keys=True) == \
            json.dumps(serial[key].to_dict(), sort_keys=True)


def test_a_groups_answer_does_not_depend_on_the_other_groups(table, serial):
    subset = pd.concat([table[table["task"] == "task03"], table[table["task"] == "task00"]])
    alone = fit_many(subset, by="task", n_boot=N_BOOT, rng=11, progress=False)
    assert alone.groups == ("task03", "task00")
    for key in alone:
        assert json.dumps(alone[key].to_dict()) == json.dumps(serial[key].to_dict())


def test_group_seeds_are_spawned_from_the_user_seed_and_the_key():
    expected = np.random.SeedSequence(entropy=5, spawn_key=many_module._spawn_key("t"))
    state = expected.generate_state(2, np.uint32)
    assert group_seed(5, "t") == (int(state[0]) << 31) ^ int(state[1])
    assert group_seed(5, "t") != group_seed(6, "t") != group_seed(5, "u")
    assert group_seed(5, ("t", "acc")) != group_seed(5, ("t", "acc_norm"))
    assert 0 <= group_seed(2**63 - 1, "x") < 2**63


def test_a_bad_group_is_reported_not_raised(table, serial):
    s = serial.summary().set_index("task")
    assert s.loc["task05", "verdict"] == "error"
    with pytest.raises(DataValidationError) as err:
        fit_trend(split_groups(table, "task")["task05"], n_boot=N_BOOT, rng=0)
    assert s.loc["task05", "error"] == str(err.value) == serial.errors["task05"]
    assert np.isnan(s.loc["task05", "p"]) and np.isnan(s.loc["task05", "p_bh"])
    assert (s.drop(index="task05")["error"] == "").all()
    assert len(serial) == 5 and "task05" not in serial and "task05" in serial.groups
    with pytest.raises(KeyError, match="was not fitted: family 'fam0' has 2 model sizes"):
        serial["task05"]


def test_other_exceptions_propagate(table, monkeypatch):
    def broken(rows, **kw):
        raise RuntimeError("a bug, not bad data")

    monkeypatch.setattr(many_module, "fit_trend", broken)
    with pytest.raises(RuntimeError, match="a bug, not bad data"):
        fit_many(table, by="task", n_boot=N_BOOT, rng=0, progress=False)


def test_holm_and_bh_equal_statsmodels_multipletests(serial):
    s = serial.summary()
    ok = s["p"].notna()
    assert ok.sum() == 5
    for col, method in (("p_holm", "holm"), ("p_bh", "fdr_bh")):
        expected = multipletests(s.loc[ok, "p"], method=method)[1]
        np.testing.assert_allclose(s.loc[ok, col], expected, rtol=0, atol=1e-15)
        assert s.loc[~ok, col].isna().all()


def test_summary_columns_and_the_p_of_each_verdict(serial):
    s = serial.summary()
    assert list(s.columns) == ["task", *SUMMARY_COLUMNS]
    for _, row in s[s["verdict"] != "error"].iterrows():
        r = serial[row["task"]]
        assert row["slope"] == r.pooled["slope"]
        assert (row["ci_lower"], row["ci_upper"]) == (r.pooled["ci_lower"], r.pooled["ci_upper"])
        assert (row["n_families"], row["n_models"]) == (3, 15)
        assert row["n_examples"] == 1000
        if r.shape in ("inverse", "positive"):
            assert row["p_of"] == r.shape
            assert row["p"] == claim_p_value(r.pooled, r.shape, 1, 0.05)
        else:
            assert row["p_of"] == "gate" and row["p"] == r.pooled["p_gate"]
    verdicts = s.set_index("task")["verdict"]
    assert verdicts["task00"] == verdicts["task03"] == "inverse"
    assert verdicts["task01"] == verdicts["task04"] == "positive"


def test_headline_counts_inverse_verdicts_with_bh_q_at_most_alpha(serial):
    assert serial.headline() == "2 of 6 tasks show inverse scaling (BH q \u2264 0.05)"
    assert serial.headline("positive").startswith("2 of 6 tasks show positive scaling")


def test_round_trip_through_to_dict(serial):
    back = ManyResult.from_dict(json.loads(serial.to_json()))
    assert back.groups == serial.groups and back.errors == serial.errors
    pd.testing.assert_frame_equal(back.summary(), serial.summary())
    assert repr(back) == "<ManyResult by=['task'] groups=6 fitted=5 errors=1>"
    assert "<table" in serial._repr_html_()


def test_groups_of_several_columns(table):
    t = pd.concat([table.assign(metric="acc"), table.assign(metric="acc_norm")])
    m = fit_many(t[t["task"].isin(["task00", "task01"])], by=["task", "metric"],
                 n_boot=N_BOOT, rng=1, progress=False)
    assert m.groups == (("task00", "acc"), ("task01", "acc"), ("task00", "acc_norm"),
                        ("task01", "acc_norm"))
    assert list(m.summary().columns[:2]) == ["task", "metric"]
    assert m[("task00", "acc")].shape == "inverse"


def test_options_are_validated_before_anything_is_read():
    with pytest.raises(OptionError, match=r"^n_boot must be at least 100; got 5\.$"):
        fit_many("no/such/file.csv", n_boot=5)
    with pytest.raises(OptionError) as err:
        fit_many("no/such/file.csv", nboot=500)
    assert str(err.value).startswith("nboot: not an option of fit_many; options are [")
    with pytest.raises(OptionError, match="draws: not an option of fit_trend with "
                                          "method='bootstrap'"):
        fit_many("no/such/file.csv", draws=500)
    with pytest.raises(OptionError, match=r"n_jobs must be a non-zero whole number"):
        fit_many("no/such/file.csv", n_jobs=0)


def test_a_missing_grouping_column_is_an_error(table):
    with pytest.raises(DataValidationError) as err:
        fit_many(table, by="benchmark", n_boot=N_BOOT)
    assert str(err.value) == (
        "by=['benchmark']: results has no column 'benchmark'; got ['task', 'family', 'model', "
        "'n_params', 'metric', 'score', 'n']. Group by columns of the table (e.g. by='task').")


def test_task_filter_and_empty_optional_columns(table):
    t = table.assign(se=np.where(table["task"] == "task00", 0.015, np.nan))
    rows = split_groups(t, "task")
    assert "se" in rows["task00"] and "se" not in rows["task01"]
    m = fit_many(t, task="task01", n_boot=N_BOOT, rng=0, progress=False)
    assert m.groups == ("task01",)


def test_a_higher_is_better_column_sets_the_direction(table):
    t = table[table["task"] == "task00"].assign(metric="error_rate", higher_is_better=True)
    m = fit_many(t, n_boot=N_BOOT, rng=0, progress=False, proportion=True)
    assert m["task00"].meta["higher_is_better"] is True
    plain = fit_many(t.drop(columns="higher_is_better"), n_boot=N_BOOT, rng=0, progress=False,
                     proportion=True)
    assert plain["task00"].meta["higher_is_better"] is False


def test_progress_bar_over_groups(table, capsys):
    fit_many(table[table["task"] == "task00"], n_boot=N_BOOT, rng=0, progress=True)
    assert "fit_many" in capsys.readouterr().err


def test_dask_local_cluster_equals_the_local_run(table, serial):
    distributed = pytest.importorskip("distributed")
    import joblib

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster), joblib.parallel_config(backend="dask"):
        on_dask = fit_many(table, by="task", n_boot=N_BOOT, rng=11, progress=False)
    _same(serial, on_dask)


# ------------------------------------------------------------------------------ robustness
@pytest.fixture(scope="module")
def strong():
    return fit_trend("data/synthetic_families.csv", n_boot=N_BOOT, rng=0)


def test_robust_when_stable_uninfluenced_and_every_family_can_be_left_out(strong):
    assert strong.shape == "inverse" and robustness(strong) == "robust"


def _with_noise(result, **changes):
    noise = {**result.meta["noise"], **changes}
    return result.replace(meta={**result.meta, "noise": noise})


def test_fragile_when_bootstrap_stability_is_below_80_percent(strong):
    stab = dict(strong.meta["noise"]["stability"])
    stab["pooled"] = {**stab["pooled"], "counts": {"inverse": 79, "inconclusive": 21}, "n": 100}
    assert robustness(_with_noise(strong, stability=stab)) == "fragile"
    stab["pooled"] = {**stab["pooled"], "counts": {"inverse": 80, "inconclusive": 20}}
    assert robustness(_with_noise(strong, stability=stab)) == "robust"


def test_fragile_when_one_model_changes_the_verdict(strong):
    influence = [dict(r) for r in strong.meta["noise"]["influence"]]
    influence[0]["changed"] = True
    assert robustness(_with_noise(strong, influence=influence)) == "fragile"


def test_fragile_when_leaving_out_a_family_loses_the_verdict(strong):
    gen = strong.generality.copy()
    gen.loc[0, "loo_keeps_claim"] = False
    assert robustness(strong.replace(generality=gen)) == "fragile"


def test_not_applicable_without_a_verdict_or_evidence(strong):
    assert robustness(strong.replace(shape="inconclusive")) == "n/a"
    assert robustness(strong.replace(meta={**strong.meta, "noise": None})) == "n/a"
