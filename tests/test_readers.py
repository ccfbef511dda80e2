"""Unreadable files and silently-wrong tables: each is a named error, never a traceback.

Each case writes a small malformed file (or table) and checks the error class *and* that the
message names the culprit (file and line, or column and row) and the fix; the CLI runs every
file case and must print ``scalingfit: error: ...`` with exit status 2, no traceback.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd
import pytest

from scalingfit import DataValidationError, load_results
from scalingfit.cli import main
from scalingfit.simulate import simulate_results


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _gz(text: bytes) -> bytes:
    return gzip.compress(text)


FILE_CASES = {
    # name: (file name, bytes, words the message must contain)
    "empty csv": ("r.csv", b"", ["r.csv", "is empty"]),
    "blank csv": ("r.csv", b"\n\n", ["r.csv", "has no columns"]),
    "ragged csv": ("r.csv", b"model,score\na,1\nb,2,3\n", ["r.csv", "line 3", "fields"]),
    "latin-1 csv": ("r.csv", "model,score\nJos\u00e9,1\n".encode("latin-1"),
                    ["r.csv", "not UTF-8", "iconv"]),
    "utf-16 csv": ("r.csv", "model,score\nx,1\n".encode("utf-16"), ["r.csv", "UTF-16"]),
    "binary csv": ("r.csv", bytes(range(128, 256)) * 4, ["r.csv", "not UTF-8"]),
    "truncated gz": ("r.csv.gz", _gz(b"model,score\n" + b"a,1\n" * 500)[:25],
                     ["r.csv.gz", "truncated or corrupt compressed"]),
    "truncated jsonl": ("r.jsonl", b'{"model": "a"}\n{"model": \n', ["r.jsonl", "line 2",
                                                                    "not valid JSON"]),
    "array jsonl line": ("r.jsonl", b'{"model": "a"}\n[1, 2]\n', ["r.jsonl", "line 2",
                                                                  "list, not an object"]),
    "truncated json": ("r.json", b'[{"model": "a"},\n {"model": ', ["r.json", "line 2",
                                                                   "not valid JSON"]),
    "corrupt parquet": ("r.parquet", b"PAR1" + b"\x00" * 64, ["r.parquet", "Parquet"]),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_unreadable_files_are_named_errors(case, tmp_path):
    name, data, words = FILE_CASES[case]
    path = _write(tmp_path / name, data)
    with pytest.raises(DataValidationError) as err:
        load_results(path)
    for word in words:
        assert word in str(err.value), (case, str(err.value))


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_cli_prints_an_error_not_a_traceback(case, tmp_path, capsys):
    name, data, words = FILE_CASES[case]
    path = _write(tmp_path / name, data)
    assert main(["fit", str(path), "--n-boot", "100"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scalingfit: error: ") and "Traceback" not in err
    assert name in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a POSIX FIFO")
def test_a_fifo_is_refused_instead_of_hanging(tmp_path):
    fifo = tmp_path / "r.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataValidationError, match="is not a regular file"):
        load_results(fifo)


@pytest.fixture(scope="module")
def table():
    return simulate_results("inverse", n_models=5, n_examples=200, rng=1)


def test_a_stray_score_in_a_zero_one_column_is_a_typo(table):
    bad = table.copy()
    bad.loc[7, "score"] = 2
    with pytest.raises(DataValidationError) as err:
        load_results(bad)
    assert str(err.value) == ("column 'score' is 0/1 in all but rows 7 (e.g. 2.0): a typo? "
                              "Fix those rows, or pass proportion=False if the score really "
                              "is continuous.")
    # said explicitly, a continuous score is allowed
    assert load_results(bad, proportion=False).attrs["scalingfit"]["proportion"] is False


def test_an_appended_mean_row_is_not_an_example(table):
    bad = table.copy()
    bad["example_id"] = bad["example_id"].astype(str)
    bad.loc[3, "example_id"] = "Mean"
    with pytest.raises(DataValidationError, match=r"^rows 3 have example_id 'Mean': a summary "
                                                  r"row \(a per-model mean\), not an example"):
        load_results(bad)


@pytest.mark.parametrize("column, value, word", [
    ("n_params", pd.Timestamp("2024-01-01"), "dates"),
    ("score", pd.Timedelta("1s"), "durations"),
    ("score", 1 + 2j, "complex"),
])
def test_dates_durations_and_complex_numbers_are_not_numbers(table, column, value, word):
    bad = table.copy().astype({column: object})
    bad[column] = [value] * len(bad)
    with pytest.raises(DataValidationError) as err:
        load_results(bad)
    assert f"column {column!r} holds" in str(err.value) and word in str(err.value)


def test_infinite_flops_are_rejected(table):
    bad = table.assign(flops=6 * table["n_params"] * 2e10)
    bad.loc[bad.index[:3], "flops"] = np.inf
    with pytest.raises(DataValidationError, match=r"^column 'flops' has infinite values in "
                                                  r"rows 0, 1, 2"):
        load_results(bad)


@pytest.mark.parametrize("metric", ["acc,none", "acc_norm,none", "exact_match,strict-match",
                                    "mc1", "mc2"])
def test_lm_eval_metric_names_are_proportions(table, metric):
    scored = table.assign(metric=metric, score=np.clip(table["score"] * 0.8 + 0.1, 0, 1))
    attrs = load_results(scored).attrs["scalingfit"]
    assert attrs["proportion"] is True and attrs["higher_is_better"] is True


@pytest.mark.parametrize("option, value", [("higher_is_better", "no"), ("proportion", 1),
                                           ("format", "xlsx")])
def test_options_of_the_wrong_type_are_named(table, option, value):
    with pytest.raises(DataValidationError, match=rf"^{option} must be"):
        load_results(table, **{option: value})


def test_a_copied_family_is_pseudo_replication(table):
    two = simulate_results("inverse", n_families=2, n_models=5, n_examples=200, rng=2)
    copy = two[two["family"] == "fam0"].assign(family="copy", model=lambda d: "c-" + d["model"])
    with pytest.raises(DataValidationError) as err:
        load_results(pd.concat([two, copy], ignore_index=True))
    assert str(err.value) == ("family 'copy' repeats family 'fam0' exactly (the same sizes and "
                              "per-example scores): a copied family counts the same evidence "
                              "twice. Drop one of them, or fix the copy.")


def test_sizes_that_barely_differ_are_not_a_scale_range(table):
    from scalingfit import fit_trend

    narrow = table.assign(n_params=1e9 + table["n_params"].rank(method="dense") - 1)
    with pytest.raises(DataValidationError, match=r"^family 'fam0' spans only 1x in n_params "
                                                  r"\(1e\+09 to 1e\+09\)"):
        fit_trend(narrow, rng=0, n_boot=100)


@pytest.mark.parametrize("chance", [2.0, -1.0])
def test_chance_outside_a_proportion_is_an_error(table, chance):
    from scalingfit import fit_trend

    with pytest.raises(DataValidationError, match=rf"^chance must lie in \[0, 1\] for the "
                                                  rf"proportion metric 'accuracy'; got {chance}"):
        fit_trend(table, rng=0, n_boot=100, chance=chance)


def test_report_to_a_missing_folder_fails_before_fitting(tmp_path, capsys):
    out = tmp_path / "missing" / "r.html"
    assert main(["report", "data/synthetic_families.csv", "-o", str(out)]) == 2
    assert "does not exist; create it first" in capsys.readouterr().err
