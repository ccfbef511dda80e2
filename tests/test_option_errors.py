"""Every bad option is a ScalingFitError naming the option, in Python and on the CLI.

Python: wrong types and values of each ``fit_trend`` option raise an ``OptionError`` (a
``DataValidationError``, so ``except ValueError`` still works) whose message starts with the
option's name. CLI: the same through ``scalingfit fit`` exit with status 2 and one
``scalingfit: error:`` line, never a traceback.
"""

import pytest

from scalingfit import OptionError, ScalingFitError, fit_trend
from scalingfit.cli import main

DATA = "data/synthetic_families.csv"

PY_CASES = [
    ("n_boot", "2000"), ("n_boot", 2000.5), ("n_boot", 10), ("n_boot", True),
    ("confidence_level", 1.5), ("confidence_level", "0.95"), ("confidence_level", float("nan")),
    ("flat_margin", -0.1), ("flat_margin", float("nan")), ("flat_margin", "5"),
    ("chance", float("inf")), ("chance", "half"),
    ("x", "tokens_typo"), ("method", "mcmc"),
    ("higher_is_better", "no"), ("proportion", "yes"),
    ("rng", -1), ("rng", 1.5), ("rng", "seed"),
]


@pytest.mark.parametrize("option, value", PY_CASES)
def test_bad_options_name_themselves(option, value):
    with pytest.raises(OptionError) as err:
        fit_trend(DATA, **{option: value})
    name = "rng" if option == "rng" else option
    assert str(err.value).startswith(name), str(err.value)


def test_report_format_is_an_option_error():
    result = fit_trend(DATA, rng=0, n_boot=200)
    with pytest.raises(OptionError, match=r"^format must be"):
        result.report("pdf")
    assert issubclass(OptionError, ScalingFitError) and issubclass(OptionError, ValueError)


CLI_CASES = [
    ["--confidence-level", "1.5"], ["--flat-margin", "-1"], ["--chance", "nan"],
    ["--n-boot", "5"], ["--seed", "-1"], ["--task", "no-such-task"],
    ["--metric", "no-such-metric"], ["--x", "flops"],
]


@pytest.mark.parametrize("argv", CLI_CASES, ids=[" ".join(a) for a in CLI_CASES])
def test_cli_option_errors_are_one_line(argv, capsys):
    assert main(["fit", DATA, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalingfit: error: ") and "Traceback" not in err
    assert err.count("\n") == 1
