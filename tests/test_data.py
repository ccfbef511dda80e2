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


def test_two_sizes_for_one_model():
    df = per_example()
    df.loc[5, "n_params"] = 123
    with pytest.raises(DataValidationError, match=r"model 'a1' \(family 'a'\) has 2 different "
                                                  r"values of 'n_params'"):
        load_results(df)


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
