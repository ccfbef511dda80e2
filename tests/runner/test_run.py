"""``evaluate``'s model list (empty, colliding names) and the chance level it passes on."""

import shutil
from pathlib import Path

import pytest
from conftest import classification_rows, write_jsonl

from scalingfit.exceptions import DataValidationError
from scalingfit.runner import evaluate


def test_empty_model_list_is_refused(tmp_path):
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    with pytest.raises(DataValidationError) as info:
        evaluate(task, [], progress=False)
    assert str(info.value) == (
        "models is empty: give at least one hub id or local model directory "
        "(models=['EleutherAI/pythia-70m', './ckpt']), or models=None with family=NAME.")


def test_two_directories_with_one_folder_name_are_refused(model_dirs, tmp_path):
    """``a/ckpt`` and ``b/ckpt`` would share ``ckpt.parquet``: the second would be skipped as
    done. Refused before any model loads, naming both paths and the fix."""
    a, b = tmp_path / "a" / "ckpt", tmp_path / "b" / "ckpt"
    for path in (a, b):
        shutil.copytree(model_dirs["gpt2-32"], path)
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    with pytest.raises(DataValidationError) as info:
        evaluate(task, [str(a), str(b)], out=tmp_path / "out", progress=False, device="cpu")
    assert str(info.value) == (
        f"models {str(a)!r} and {str(b)!r} would both be stored as model 'ckpt' (output files "
        "ckpt+<task>.parquet), so the second would be skipped as already done. The model column "
        "takes a local directory's folder name: rename or symlink one directory to a distinct "
        "name (e.g. a-ckpt, b-ckpt) and pass that path instead.")
    assert not list((tmp_path / "out").glob("*.parquet"))


def test_names_that_collide_only_as_file_names_are_refused(tmp_path):
    """A hub id ``org/m`` and a local folder ``org__m`` would write the same file."""
    (tmp_path / "org__m").mkdir()
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    with pytest.raises(DataValidationError, match=r"output files org__m\+<task>.parquet"):
        evaluate(task, ["org/m", str(tmp_path / "org__m")], progress=False)


def test_same_model_twice_is_refused(tmp_path):
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    with pytest.raises(DataValidationError) as info:
        evaluate(task, ["org/m", "org/m"], progress=False)
    assert str(info.value) == "model 'org/m' is listed twice in models; list each model once."


def test_cli_reports_colliding_names(tmp_path, capsys):
    from scalingfit.runner.cli import main

    for sub in ("a", "b"):
        (tmp_path / sub / "ckpt").mkdir(parents=True)
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    code = main(["run", "--task", str(task), "--models", str(tmp_path / "a" / "ckpt"),
                 str(tmp_path / "b" / "ckpt"), "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2
    assert "would both be stored as model 'ckpt'" in capsys.readouterr().err


def test_n_classes_per_row(model_dirs, tmp_path):
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    got = evaluate(task, [model_dirs["gpt2-32"]], progress=False, device="cpu")
    assert got["n_classes"].tolist() == [len(r["classes"]) for r in classification_rows()]


def test_n_classes_gives_fit_trend_the_chance_level(model_dirs, tmp_path):
    """``fit_trend(load_results(out))`` finds chance = 1 / n_classes with no ``chance=``."""
    from scalingfit import fit_trend, load_results

    rows = [dict(r, classes=r["classes"][:2] + [" Paris"])
            for r in classification_rows()] * 2
    task = write_jsonl(tmp_path / "t.jsonl", rows)
    models = [model_dirs[k] for k in ("gpt2-32", "gpt2-64", "gpt2-96")]
    evaluate(task, models, out=tmp_path / "out", progress=False, device="cpu")
    table = load_results(tmp_path / "out")
    assert table["n_classes"].eq(3).all()
    result = fit_trend(table, rng=0, n_boot=200)
    assert result.meta["chance"] == pytest.approx(1 / 3)
    assert {Path(m).name for m in models} == set(table["model"])
