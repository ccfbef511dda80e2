"""Input validation: every bad input gets a DataValidationError naming column, rows and fix."""

import numpy as np
import pandas as pd
import pytest

from scalingfit import DataValidationError, fit_trend, load_results
from scalingfit.data import model_scores


def per_example(n_models=4, n_examples=5, families=("a",)):
    rows = []
    for f in families:
        for m in range(n_models):
            for i in range(n_examples):
                rows.append({"family": f, "model": f"{f}{m}", "n_params": 10 ** (8 + m),
                             "example_id": f"e{i}", "score": float((i + m) % 2)})
    return pd.DataFrame(rows)


def aggregated():
    return pd.DataFrame({"model": ["s", "m", "l", "xl"], "n_params": [1e8, 1e9, 1e10, 1e11],
                         "score": [0.7, 0.6, 0.55, 0.5], "n": [300] * 4})


def test_per_example_is_validated_and_described():
    t = load_results(per_example())
    assert t.attrs["scalingfit"] == {"form": "per_example", "task": None, "metric": "accuracy",
                                     "higher_is_better": True, "proportion": True}


def test_missing_column_message():
    with pytest.raises(DataValidationError) as e:
        load_results(per_example().drop(columns="n_params"))
    assert str(e.value) == (
        "results is missing column 'n_params'; got ['family', 'model', 'example_id', 'score']. "
        "Per-example results need model, n_params, example_id and score.")


def test_nan_names_rows():
    df = per_example()
    df.loc[[3, 7], "score"] = np.nan
    with pytest.raises(DataValidationError) as e:
        load_results(df)
    assert str(e.value) == ("column 'score' has missing values (NaN) in rows 3, 7; drop or fill "
                            "those rows before fitting.")


def test_non_positive_size():
    df = per_example()
    df.loc[df.model == "a0", "n_params"] = 0
    with pytest.raises(DataValidationError, match=r"column 'n_params' must be positive \(it is "
                       r"put on a log scale\); rows 0, 1, 2, 3, 4 hold 0.0."):
        load_results(df)


def test_text_size_is_rejected_with_hint():
    df = per_example().astype({"n_params": object})
    df.loc[0, "n_params"] = "1.3B"
    with pytest.raises(DataValidationError, match=r"rows 0 hold '1.3B'. Give plain numbers"):
        load_results(df)


def test_duplicate_rows():
    df = per_example()
    df = pd.concat([df, df.iloc[[2]]], ignore_index=True)
    with pytest.raises(DataValidationError) as e:
        load_results(df)
    assert str(e.value).startswith("duplicate rows for the same model x example_id: rows 2, 20")


def test_mismatched_example_sets():
    df = per_example().drop(index=[6])  # model a1 loses example e1
    with pytest.raises(DataValidationError) as e:
        load_results(df)
    assert str(e.value) == (
        "in family 'a', model 'a1' lacks 1 of the 5 example ids the other models have (e.g. "
        "['e1']). Paired analysis needs every model scored on the same examples: re-run the "
        "missing examples or drop them for all models.")


def test_proportion_out_of_range():
    df = aggregated().assign(score=[70, 60, 55, 50], metric="accuracy")
    with pytest.raises(DataValidationError, match=r"must lie in \[0, 1\] for the proportion "
                                                  r"metric 'accuracy'; rows 0, 1, 2, 3 hold 70"):
        load_results(df)


def test_aggregated_needs_n_or_se():
    with pytest.raises(DataValidationError, match="need column 'n'"):
        load_results(aggregated().drop(columns="n"))


def test_single_model_and_two_models_are_rejected():
    for n in (1, 2):
        with pytest.raises(DataValidationError) as e:
            fit_trend(per_example(n_models=n), rng=0)
        assert "a trend needs at least 3 models of different sizes" in str(e.value)


def test_explicit_u_shapes_need_five_models():
    with pytest.raises(DataValidationError, match="U-shaped / inverted-U tests need at least 5"):
        fit_trend(per_example(n_models=4), shapes=["u_shaped"], rng=0)


def test_several_tasks_need_a_choice(data_dir):
    with pytest.raises(DataValidationError, match=r"results holds 4 values of 'task'"):
        load_results(f"{data_dir}/opt_isp_round1.csv")
    t = load_results(f"{data_dir}/opt_isp_round1.csv", task="NeQA")
    assert t.attrs["scalingfit"]["higher_is_better"] is True
    t = load_results(f"{data_dir}/isp_pilot.csv", task="all_gpt_sentiment_nyu", metric="loss")
    assert t.attrs["scalingfit"]["higher_is_better"] is False


def test_flops_requested_but_absent():
    with pytest.raises(DataValidationError, match=r"x='flops' needs a 'flops' column"):
        fit_trend(per_example(), x="flops", rng=0)


def test_file_formats_round_trip(tmp_path):
    df = per_example()
    df.to_csv(tmp_path / "r.csv", index=False)
    df.to_parquet(tmp_path / "r.parquet")
    df.to_json(tmp_path / "r.jsonl", orient="records", lines=True)
    a = model_scores(load_results(tmp_path / "r.csv")).models
    for name in ("r.parquet", "r.jsonl"):
        pd.testing.assert_frame_equal(a, model_scores(load_results(tmp_path / name)).models)


def test_paired_covariance_is_the_bootstrap_limit():
    """cov = S_c'S_c/n^2 is what the paired bootstrap converges to (closed form vs 20k draws)."""
    from scalingfit.bootstrap import paired_bootstrap_means

    rng = np.random.default_rng(0)
    S = (rng.random((200, 4)) < [0.3, 0.5, 0.6, 0.8]).astype(float)
    S[:, 1] = np.where(rng.random(200) < 0.8, S[:, 0], S[:, 1])  # correlated models
    df = pd.DataFrame([{"model": f"m{j}", "n_params": 10 ** (8 + j), "example_id": i,
                        "score": S[i, j]} for i in range(200) for j in range(4)])
    ms = model_scores(load_results(df))
    draws = paired_bootstrap_means(ms.matrix, 20000, np.random.default_rng(1))
    # Monte Carlo SE of a covariance estimate from 20k draws is about 1% of the variance scale
    np.testing.assert_allclose(np.cov(draws.T, ddof=0), ms.cov, atol=0.03 * ms.cov.max())
    assert ms.cov[0, 1] > 0.5 * np.sqrt(ms.cov[0, 0] * ms.cov[1, 1])


def test_infinite_scores_name_rows():
    df = per_example().assign(score=lambda d: d["score"] - 2.0)   # continuous, not a proportion
    df.loc[[4, 9], "score"] = -np.inf
    with pytest.raises(DataValidationError) as e:
        load_results(df)
    assert str(e.value) == (
        "column 'score' has infinite values in rows 4, 9 (e.g. -inf); a log-prob of -inf or a "
        "loss of inf cannot be fitted. Clip or drop those rows before fitting.")


def test_two_sizes_message_names_rows_and_plain_values():
    df = per_example()
    df.loc[5, "n_params"] = 123
    with pytest.raises(DataValidationError) as e:
        load_results(df)
    assert str(e.value) == (
        "model 'a1' (family 'a') has 2 different values of 'n_params': [123.0, 1000000000.0] in "
        "rows 5, 6, 7, 8, 9; each model must have one size. Fix the size, or give the variants "
        "different model names.")


def test_validated_table_keeps_its_choices():
    """fit_trend(load_results(df, higher_is_better=False)) must not guess the direction again."""
    df = per_example().assign(score=lambda d: d["score"] * 0.5 + 0.1)  # continuous values
    t = load_results(df, higher_is_better=False, proportion=True)
    r = fit_trend(t, rng=0, n_boot=200)
    assert r.meta["higher_is_better"] is False and r.meta["proportion"] is True
    # an explicit argument still wins over what the table recorded
    assert load_results(t, higher_is_better=True).attrs["scalingfit"]["higher_is_better"]


def test_cli_lower_is_better_reaches_the_fit(tmp_path, capsys):
    import json

    from scalingfit.cli import main

    per_example().to_csv(tmp_path / "r.csv", index=False)
    assert main(["fit", str(tmp_path / "r.csv"), "--lower-is-better", "--json", "--n-boot",
                 "200", "--seed", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["higher_is_better"] is False


def test_aggregated_accuracy_with_n_is_a_proportion():
    """family, model, n_params, score, n (the issue's aggregated form): binomial SEs."""
    t = load_results(aggregated())
    assert t.attrs["scalingfit"]["proportion"] is True
    ms = model_scores(t)
    p = np.array([0.7, 0.6, 0.55, 0.5])
    np.testing.assert_allclose(ms.models["se"], np.sqrt(p * (1 - p) / 300))
    r = fit_trend(aggregated(), rng=0, n_boot=200)
    # near-equal binomial SEs: the weighted slope is close to OLS on the four means, -0.065 per
    # decade (sum of cross-products -0.325 over sum of squares 5); weights move it < 0.002
    assert r.families["slope"].iloc[0] == pytest.approx(-0.065, abs=0.002)
    assert r.shape == "inverse"
    # the same numbers outside [0, 1] are not guessed to be proportions
    with pytest.raises(DataValidationError, match=r"pass proportion=True if the scores are "):
        fit_trend(aggregated().assign(score=[70.0, 60.0, 55.0, 50.0]), rng=0, n_boot=200)


def test_variant_levels_may_share_example_ids():
    """Prompt variants of the same items (ids repeat across 'variant'): each (variant, id) is
    one item, and the ids are prefixed with the level; a real duplicate still fails."""
    df = pd.concat([per_example().assign(variant=v) for v in ("v1", "v2")], ignore_index=True)
    t = load_results(df)
    assert len(t) == len(df) and t["example_id"].nunique() == 10
    assert set(t.loc[t["variant"] == "v2", "example_id"]) == {f"v2/e{i}" for i in range(5)}
    with pytest.raises(DataValidationError, match="duplicate rows for the same model x "):
        load_results(pd.concat([df, df.iloc[[3]]], ignore_index=True))


def test_flops_as_x():
    """x='flops': the same fit over log10 training compute. With D = 20 N tokens, flops =
    120 N^2, so a decade of parameters is two decades of compute: the slope per decade halves."""
    df = per_example(n_models=5, n_examples=40)
    df["score"] = ((df["example_id"].str[1:].astype(int) * 7 + df["n_params"].map(np.log10)
                    .astype(int)) % 3 == 0).astype(float)
    df["flops"] = 120.0 * df["n_params"] ** 2
    a = fit_trend(df, rng=0, n_boot=200)
    b = fit_trend(df, x="flops", rng=0, n_boot=200)
    assert b.meta["x"] == "flops"
    assert b.families["slope"].iloc[0] == pytest.approx(a.families["slope"].iloc[0] / 2)


@pytest.mark.parametrize("metric, higher", [
    ("accuracy", True), ("loss", False), ("neg_loss", True), ("val_nll", False),
    ("perplexity", False), ("wer", False), ("test_cer", False), ("mse", False),
    ("rmse_norm", False), ("ece", False), ("answer_rate", True), ("certainty", True),
    ("exact_match", True), ("error_rate", False), ("loss_per_token", False)])
def test_direction_from_metric_name(metric, higher):
    df = aggregated().assign(score=[0.7, 0.6, 0.55, 0.5], se=0.01, metric=metric)
    assert load_results(df).attrs["scalingfit"]["higher_is_better"] is higher
