"""Tests of the command line: the Bayesian engine's options on ``fit``, ``check`` and ``report``.

The options reach :func:`scalingfit.fit_trend` only with ``--method bayes``; with the bootstrap
engine they are an error (exit status 2) rather than silently ignored. One Bayesian fit, small
(2 chains x 200 draws), checks that they arrive.
"""

import json
import warnings

import pytest

from scalingfit.cli import BAYES_FLAGS, _bayes_kwargs, _fit_kwargs, build_parser, main
from scalingfit.results import TrendResult

DATA = "data/synthetic_families.csv"
ALL_FLAGS = ["--bayes-model", "crossed", "--draws", "200", "--tune", "300", "--chains", "2",
             "--compare", "--target-accept", "0.9", "--decision-threshold", "0.9"]
ALL_KWARGS = {"model": "crossed", "draws": 200, "tune": 300, "chains": 2, "compare": True,
              "target_accept": 0.9, "decision_threshold": 0.9}
BAYES_KEYS = [key for key, _, _ in BAYES_FLAGS]


@pytest.mark.parametrize("command", ["fit", "check", "report"])
def test_bayes_options_parse_into_fit_kwargs(command):
    args = build_parser().parse_args([command, DATA, "--method", "bayes", *ALL_FLAGS])
    assert _bayes_kwargs(args) == ALL_KWARGS
    kw = _fit_kwargs(args)
    assert {k: kw[k] for k in BAYES_KEYS} == ALL_KWARGS and kw["method"] == "bayes"


@pytest.mark.parametrize("method", ["bayes", "bootstrap"])
def test_options_not_given_leave_fit_bayes_defaults(method):
    args = build_parser().parse_args(["fit", DATA, "--method", method])
    assert _bayes_kwargs(args) == {}
    assert not set(_fit_kwargs(args)) & set(BAYES_KEYS)


def test_each_option_alone_reaches_the_fit():
    parser = build_parser()
    for (key, flag, _), value, want in zip(
            BAYES_FLAGS, ["model_level", "150", "120", "3", None, "0.8", "0.99"],
            ["model_level", 150, 120, 3, True, 0.8, 0.99]):
        argv = ["fit", DATA, "--method", "bayes", flag] + ([value] if value else [])
        assert _bayes_kwargs(parser.parse_args(argv)) == {key: want}


def test_unknown_bayes_model_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(["fit", DATA, "--method", "bayes", "--bayes-model", "big"])
    assert err.value.code == 2
    assert "argument --bayes-model: invalid choice: 'big'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["fit", "check", "report"])
def test_bayes_option_with_bootstrap_is_an_error(command, capsys):
    # the check runs before anything is read or fitted: a missing file is not reached
    assert main([command, "missing.csv", "--draws", "200"]) == 2
    assert capsys.readouterr().err.strip() == (
        "scalingfit: error: --draws is an option of the Bayesian engine; got --method "
        "bootstrap. Add --method bayes, or drop --draws.")


def test_several_bayes_options_with_bootstrap_are_all_named(capsys):
    assert main(["fit", DATA, "--method", "bootstrap", "--chains", "2", "--compare",
                 "--bayes-model", "crossed"]) == 2
    assert capsys.readouterr().err.strip() == (
        "scalingfit: error: --bayes-model, --chains, --compare are options of the Bayesian "
        "engine; got --method bootstrap. Add --method bayes, or drop --bayes-model, --chains, "
        "--compare.")


def test_fit_method_bayes_records_the_options(capsys):
    """End to end: the options given on the command line are the ones the sampler used."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", DATA, "--method", "bayes", "--draws", "200", "--tune", "200",
                     "--chains", "2", "--seed", "0", "--n-boot", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    bayes = out["meta"]["bayes"]
    assert out["meta"]["method"] == "bayes" and out["meta"]["seed"] == 0
    assert {k: bayes[k] for k in ("draws", "tune", "chains", "model")} == {
        "draws": 200, "tune": 200, "chains": 2, "model": "model_level"}
    assert bayes["decision_threshold"] == 0.95 and bayes["compare"] is False  # the defaults
    # the text report states the same settings in its header
    text = TrendResult.from_dict(out).report("text")
    head = text.splitlines()[0]
    assert head.endswith(f"method = bayes (model_level model, 2 chains x 200 draws, 200 "
                         f"warm-up, target_accept {bayes['target_accept']:.3g})")
    assert "not a frequentist p-value" in text
