"""The ``run`` subcommand: argparse registration, errors, and ``python -m`` execution."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import classification_rows, write_jsonl

from scalingfit.runner import family_models, load_model_families, read_results_dir
from scalingfit.runner.cli import register

ROOT = Path(__file__).resolve().parents[2]


def _parser():
    parser = argparse.ArgumentParser(prog="scalingfit")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_register_adds_run_with_defaults():
    args = _parser().parse_args(["run", "--task", "t.jsonl", "--family", "pythia",
                                 "--out", "r"])
    assert args.command == "run" and args.family == "pythia" and args.models is None
    assert args.device == "auto" and args.dtype is None and args.batch_tokens is None
    assert callable(args.func)


def test_family_and_models_are_exclusive(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--task", "t", "--family", "gpt2", "--models", "m",
                              "--out", "r"])


def test_run_through_parser(model_dirs, tmp_path, capsys):
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    args = _parser().parse_args(
        ["run", "--task", str(task), "--models", model_dirs["gpt2-32"], model_dirs["opt-32"],
         "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress",
         "--family-label", "tiny"])
    assert args.func(args) == 0
    assert "wrote 14 rows (2 models x 1 tasks)" in capsys.readouterr().out
    table = read_results_dir(tmp_path / "out")
    assert set(table["family"]) == {"tiny"} and set(table["n_params_source"]) == {"counted"}
    assert table["n_params"].gt(0).all() and table["flops"].isna().all()


def test_bad_task_exits_2_with_message(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "p", "classes": [" a"],
                                              "answer_index": 3}])
    args = _parser().parse_args(["run", "--task", str(bad), "--models", "x", "--out",
                                 str(tmp_path / "o")])
    assert args.func(args) == 2
    assert "task row 0: answer_index must be an integer in 0..0" in capsys.readouterr().err


def test_python_dash_m(model_dirs, tmp_path):
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "scalingfit.runner.cli", "run", "--task", str(task), "--models",
         model_dirs["neox-32"], "--out", str(tmp_path / "o"), "--device", "cpu",
         "--no-progress"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(pd.read_parquet(tmp_path / "o" / "neox-32+t.parquet")) == 7


def test_registry_families_smallest_first():
    registry = load_model_families()
    assert {"pythia", "gpt2", "opt", "smollm2", "qwen2.5"} <= set(registry["family"])
    models = family_models("pythia")
    assert models[0] == "EleutherAI/pythia-70m" and models[-1] == "EleutherAI/pythia-12b"
    sizes = registry.set_index("model").loc[models, "n_params"]
    assert sizes.is_monotonic_increasing
    est = registry[registry["train_flops_estimated"]]
    ratio = est["train_flops"] / (6 * est["n_params"] * est["train_tokens"])
    assert ratio.sub(1).abs().max() < 1e-3


def test_registry_reference_values():
    """Published counts: Pythia paper Table 1 / model cards; GPT-2 released checkpoint."""
    registry = load_model_families().set_index("model")
    assert registry.at["EleutherAI/pythia-70m", "n_params"] == 70_426_624
    assert registry.at["EleutherAI/pythia-70m", "train_tokens"] == 299_892_736_000
    assert registry.at["openai-community/gpt2", "n_params"] == 124_439_808
    assert not registry.at["facebook/opt-66b", "n_params_exact"]


def test_unknown_family_message():
    from scalingfit.exceptions import DataValidationError

    with pytest.raises(DataValidationError) as info:
        family_models("llama")
    assert str(info.value) == (
        "family must be one of ['gpt2', 'opt', 'pythia', 'qwen2.5', 'smollm2']; got 'llama'. "
        "Use models=[...] (--models) for models outside the registry.")
