"""Inputs are checked before the first model loads; every failure is a ScalingFitError that
the CLI prints as ``scalingfit: error: ...`` with exit code 2."""

import os
import shutil

import pytest
from conftest import classification_rows, write_jsonl

from scalingfit.exceptions import DataValidationError
from scalingfit.runner import evaluate
from scalingfit.runner.cli import main


@pytest.fixture
def no_load(monkeypatch):
    """Fail the test if any model's weights are loaded."""
    from scalingfit.runner import models

    def fail(*args, **kwargs):
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(models, "load_model", fail)


def _message(task, models, **kwargs):
    with pytest.raises(DataValidationError) as info:
        evaluate(task, models, progress=False, device=kwargs.pop("device", "cpu"), **kwargs)
    return str(info.value)


@pytest.mark.parametrize("path", ["./gpt2-3", "/no/such/model", "models/org/pythia"])
def test_misspelt_local_path_is_named(path, model_dirs, classification_task, no_load):
    message = _message(classification_task, [model_dirs["gpt2-32"], path])
    assert message == (f"model path {path!r} does not exist; check the spelling, or give a "
                       "hub id such as 'EleutherAI/pythia-70m'.")


def test_folder_without_tokenizer_is_refused(model_dirs, tmp_path, classification_task,
                                             no_load):
    folder = tmp_path / "weights-only"
    folder.mkdir()
    for name in os.listdir(model_dirs["gpt2-32"]):
        if name.startswith(("config", "model", "generation")):
            shutil.copy(os.path.join(model_dirs["gpt2-32"], name), folder)
    message = _message(classification_task, [model_dirs["gpt2-32"], str(folder)])
    assert message.startswith(f"model directory {str(folder)!r} has no tokenizer files")
    assert message.endswith("save the tokenizer next to the weights "
                            "(tokenizer.save_pretrained(DIR)).")


def test_not_a_hub_id(classification_task, no_load):
    message = _message(classification_task, ["org/na me"])
    assert message == ("model 'org/na me' is neither an existing directory nor a Hugging Face "
                       "hub id (owner/name, letters, digits, '-', '_', '.').")


def test_cuda_without_cuda(model_dirs, classification_task, no_load):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    message = _message(classification_task, [model_dirs["gpt2-32"]], device="cuda")
    assert message == (f"device 'cuda' was asked for, but torch finds no CUDA device (torch "
                       f"{torch.__version__}); use --device cpu, or a CUDA build of torch.")


def test_out_is_a_file(model_dirs, tmp_path, classification_task, no_load):
    target = tmp_path / "out.txt"
    target.write_text("x")
    message = _message(classification_task, [model_dirs["gpt2-32"]], out=target)
    assert message == (f"--out {str(target)!r} is a file; give a directory (it is created if "
                       "missing).")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_not_writable(model_dirs, tmp_path, classification_task, no_load):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        message = _message(classification_task, [model_dirs["gpt2-32"]], out=locked / "o")
    finally:
        locked.chmod(0o700)
    assert "is not writable" in message


def test_jsonl_array_line_names_its_line(tmp_path, no_load):
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "a", "classes": [" b"], "answer_index": 0}\n\n'
                    '["a", [" b"], 0]\n')
    message = _message(path, ["org/m"])
    assert message == (
        f"task file {str(path)!r} line 3: expected a JSON object ({{\"prompt\": ...}}); got a "
        "JSON array. Each line must be one object with the task's columns as keys.")


def test_jsonl_broken_line_names_line_and_column(tmp_path, no_load):
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "a", "classes": [" b"], "answer_index": 0}\n{"prompt": }\n')
    message = _message(path, ["org/m"])
    assert message.startswith(f"task file {str(path)!r} line 2, column 12: not valid JSON")


def test_whitespace_only_class_names_its_row(tmp_path, no_load):
    rows = classification_rows()
    rows[3] = {**rows[3], "classes": [" a", "  "]}
    task = write_jsonl(tmp_path / "t.jsonl", rows)
    assert _message(task, ["org/m"]) == (
        "task row 3: class 1 is only whitespace ('  '); a class must hold text to score (the "
        "leading space goes in front of it, e.g. \" yes\").")


def test_class_longer_than_the_context_names_its_row(model_dirs, tmp_path, no_load):
    rows = classification_rows()
    rows[4] = {**rows[4], "classes": [" cat" * 300, " dog"]}
    task = write_jsonl(tmp_path / "t.jsonl", rows)
    message = _message(task, [model_dirs["gpt2-32"]])
    assert message.startswith(
        f"task 't' row 4 (example_id '4'), model {model_dirs['gpt2-32']!r}: a class of ")
    assert message.endswith("does not fit the model's context of 256 tokens (with at least "
                            "one prompt token); shorten the class, or raise --max-length if "
                            "the model takes longer inputs.")


def test_local_directory_with_revision_is_refused(model_dirs, classification_task, no_load):
    message = _message(classification_task, [model_dirs["gpt2-32"] + "@step1"])
    assert "is a local directory, which has no revisions" in message


@pytest.mark.parametrize("extra, expected", [
    (["--models", "./nope"], "model path './nope' does not exist"),
    (["--models", "org/m", "--shard", "2/2"], "--shard must be i/N with 0 <= i < N"),
])
def test_cli_prints_error_and_exits_2(extra, expected, tmp_path, capsys, no_load):
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    code = main(["run", "--task", str(task), "--out", str(tmp_path / "o"), "--device", "cpu",
                 "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("scalingfit: error: ") and expected in err
    assert "Traceback" not in err
