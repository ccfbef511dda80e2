"""fit_trend options that reach the noise diagnostics and the report: chance level, metric
sensitivity from extra columns, and the method-aware verdict sentence."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from scalingfit import DataValidationError, fit_trend
from scalingfit.cli import main
from scalingfit.plotting import plot_trend
from scalingfit.report import verdict_sentence

DATA = "data/synthetic_families.csv"
N_BOOT = 200  # the options under test do not depend on the number of replicates


@pytest.fixture(scope="module")
def table():
    return pd.read_csv(DATA)


def test_chance_option_reaches_meta_notes_and_plot(table):
    res = fit_trend(table, rng=0, n_boot=N_BOOT, chance=0.5)
    assert res.meta["chance"] == 0.5
    assert res.meta["noise"]["floor_ceiling"]["chance"] == [0.5] * 24
    ax = plot_trend(res)
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "chance"]
    assert line.get_ydata()[0] == 0.5


def test_chance_from_n_classes_column(table):
    res = fit_trend(table.assign(n_classes=4), rng=0, n_boot=N_BOOT)
    assert res.meta["chance"] == 0.25
    # every model of the shipped data lies between 0.4 and 0.7: none is within noise of 0.25
    assert res.meta["noise"]["floor_ceiling"]["near_chance"] == []


def test_without_chance_no_chance_is_invented(table):
    res = fit_trend(table, rng=0, n_boot=N_BOOT)
    assert "chance" not in res.meta
    assert res.meta["noise"]["floor_ceiling"]["chance"] is None


def test_bad_chance_is_an_error(table):
    with pytest.raises(DataValidationError, match="chance"):
        fit_trend(table, rng=0, n_boot=N_BOOT, chance=float("nan"))


def test_continuous_column_feeds_metric_sensitivity(table):
    # a loss that disagrees with accuracy: it rises with accuracy's *opposite*, i.e. it falls
    # for larger models (lower loss is better -> a positive trend on the loss scale)
    rng = np.random.default_rng(1)
    log_x = np.log10(table["n_params"].to_numpy())
    loss = 3.0 - 0.4 * (log_x - log_x.mean()) + rng.normal(0, 0.3, len(table))
    res = fit_trend(table.assign(loss=loss), rng=0, n_boot=N_BOOT)
    sens = res.meta["noise"]["metric_sensitivity"]
    assert sens["column"] == "loss"
    assert sens["labels"]["pooled"] == {"score": "inverse", "continuous": "positive",
                                        "agree": False}
    assert "metric_disagreement" in set(res.diagnostics["code"])


def test_cli_fit_takes_chance(capsys):
    assert main(["fit", DATA, "--seed", "0", "--n-boot", str(N_BOOT), "--chance", "0.5",
                 "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["meta"]["chance"] == 0.5


def test_bayes_verdict_sentence_quotes_posterior_probabilities(table):
    """A Bayesian result's p_* columns are posterior probabilities: the sentence must say so
    and never print them as p-values. (The sentence is built from the result's numbers; the
    Bayesian engine itself is tested in test_bayes.py.)"""
    res = fit_trend(table, rng=0, n_boot=N_BOOT)
    pooled = {**res.pooled, "p_positive": 0.001, "p_inverse": 0.987, "p_u_shaped": 0.0,
              "p_inverted_u": 0.002, "p_flat": 0.004, "p_new_inverse": 0.81, "p_all_inverse": 0.93,
              "p_gate": np.nan}
    bayes = res.replace(pooled=pooled, meta={**res.meta, "method": "bayes"})
    text = verdict_sentence(bayes)
    assert "posterior P(inverse) = 0.987" in text
    assert "P(a new family shows inverse) = 0.81" in text
    assert "P(every family shows inverse) = 0.93" in text
    assert "credible interval" in text and "p =" not in text
    assert "p = " in verdict_sentence(res)
