"""Task loading and validation: formats, inference, and row-numbered errors."""

import json
import sys

import pandas as pd
import pytest

from scalingfit.exceptions import DataValidationError
from scalingfit.runner import evaluate, load_task


def _csv(tmp_path, rows):
    path = tmp_path / "task.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_csv_classes_as_python_literal(tmp_path):
    path = _csv(tmp_path, [{"prompt": "Q: 2+2?", "classes": "[' 4', ' 5']", "answer_index": 0},
                           {"prompt": "Q: 1+1?", "classes": '[" 2", " 3"]', "answer_index": "1"}])
    task = load_task(path)
    assert task.type == "classification" and task.name == "task"
    assert task.examples["classes"].tolist() == [[" 4", " 5"], [" 2", " 3"]]
    assert task.examples["answer_index"].tolist() == [0, 1]
    assert task.examples["example_id"].tolist() == ["0", "1"]


def test_type_inferred_from_columns(tmp_path):
    seq = pd.DataFrame([{"prompt": "a", "completion": " b"}])
    lo = pd.DataFrame([{"prompt": "a", "other_prompt": "b", "classes": [" y", " n"],
                        "answer_index": 0}])
    assert load_task(seq).type == "sequence_prob"
    assert load_task(lo).type == "logodds"


def test_id_column_gives_example_ids(tmp_path):
    frame = pd.DataFrame([{"id": "q7", "prompt": "a", "completion": " b"}])
    assert load_task(frame).examples["example_id"].tolist() == ["q7"]


@pytest.mark.parametrize("row, message", [
    ({"prompt": "p", "classes": [" a", " b"], "answer_index": 2},
     "task row 1: answer_index must be an integer in 0..1 for its 2 classes; got 2."),
    ({"prompt": "p", "classes": [], "answer_index": 0},
     "task row 1: 'classes' must be a non-empty list of strings; got []."),
    ({"prompt": 3, "classes": [" a"], "answer_index": 0},
     "task row 1: 'prompt' must be text; got int 3."),
    ({"prompt": "p", "classes": [" a", ""], "answer_index": 0},
     "task row 1: every class must be a non-empty string; got [' a', ''].")])
def test_malformed_row_names_its_number(tmp_path, row, message):
    good = {"prompt": "p", "classes": [" a", " b"], "answer_index": 0}
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (good, row)) + "\n")
    with pytest.raises(DataValidationError) as info:
        load_task(path)
    assert str(info.value) == message


def test_missing_column_message(tmp_path):
    with pytest.raises(DataValidationError) as info:
        load_task(pd.DataFrame([{"prompt": "p", "answer_index": 0}]))
    assert str(info.value) == (
        "classification task is missing column 'classes'; got ['prompt', 'answer_index']. "
        "A classification task needs columns ['prompt', 'classes', 'answer_index'].")


def test_logodds_needs_two_classes():
    frame = pd.DataFrame([{"prompt": "a", "other_prompt": "b", "classes": [" x", " y", " z"],
                           "answer_index": 0}])
    with pytest.raises(DataValidationError, match="task row 0: a logodds task needs exactly"):
        load_task(frame)


def test_validation_fails_before_any_model_loads(tmp_path):
    """A bad row fails fast, and torch/transformers are not even imported for it."""
    bad = pd.DataFrame([{"prompt": "p", "classes": [" a"], "answer_index": 5}])
    with pytest.raises(DataValidationError, match="task row 0"):
        evaluate(bad, ["/nonexistent/model"], progress=False)


def test_leading_space_warning_counts_once(tmp_path):
    frame = pd.DataFrame([{"prompt": "Q:", "classes": ["yes", "no"], "answer_index": 0},
                          {"prompt": "Q: ", "classes": ["yes", "no"], "answer_index": 0},
                          {"prompt": "Q:", "classes": [" yes", "no"], "answer_index": 0}])
    with pytest.warns(UserWarning) as record:
        load_task(frame)
    assert len(record) == 1
    assert str(record[0].message).startswith("3 class string(s) do not start with a space")


def test_missing_file_message(tmp_path):
    with pytest.raises(DataValidationError) as info:
        load_task(tmp_path / "nope.csv")
    assert str(info.value) == (
        f"task file {str(tmp_path / 'nope.csv')!r} does not exist; give a .csv or .jsonl file, "
        "or a Hugging Face dataset id such as 'inverse-scaling/NeQA'.")


def test_import_scalingfit_runner_does_not_import_torch():
    import subprocess

    code = ("import sys, scalingfit.runner, scalingfit.lmeval; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False False"


def test_hub_dataset_id_goes_through_datasets(monkeypatch):
    """An ``owner/name`` that is not a file is loaded with ``datasets.load_dataset``."""
    import types

    calls = []

    class Split:
        def to_pandas(self):
            return pd.DataFrame([{"prompt": "Q", "classes": "[' a', ' b']",
                                  "answer_index": 1}])

    def load_dataset(name, split):
        calls.append((name, split))
        return Split()

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    task = load_task("inverse-scaling/NeQA", split="train")
    assert calls == [("inverse-scaling/NeQA", "train")]
    assert task.name == "NeQA" and task.examples["answer_index"].tolist() == [1]
