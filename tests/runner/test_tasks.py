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


def test_missing_answer_index_names_its_row(tmp_path):
    """A JSONL row without ``answer_index`` must not turn the other rows' ints into floats
    (the error used to blame row 0 with "got 0.0")."""
    rows = [{"prompt": "p", "classes": [" a", " b"], "answer_index": 0},
            {"prompt": "p", "classes": [" a", " b"], "answer_index": 1},
            {"prompt": "p", "classes": [" a", " b", " c"]}]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataValidationError) as info:
        load_task(path)
    assert str(info.value) == (
        "task row 2: 'answer_index' is missing; give the 0-based index (0..2) of the correct "
        "one of its 3 classes.")


def test_answer_index_in_a_float_column_is_read(tmp_path):
    """A table whose ``answer_index`` column became float (NaN elsewhere, or a HF dataset with
    nulls) still reads; the missing row is the one reported."""
    frame = pd.DataFrame({"prompt": ["p", "q", "r"], "classes": [[" a", " b"]] * 3,
                          "answer_index": [1.0, 0.0, None]})
    with pytest.raises(DataValidationError, match="^task row 2: 'answer_index' is missing"):
        load_task(frame)
    assert load_task(frame.iloc[:2]).examples["answer_index"].tolist() == [1, 0]
    with pytest.raises(DataValidationError, match="task row 0: .* got 1.5"):
        load_task(frame.assign(answer_index=[1.5, 0, 0]))


def test_missing_prompt_and_classes_name_their_row(tmp_path):
    rows = [{"prompt": "p", "classes": [" a", " b"], "answer_index": 0},
            {"classes": [" a", " b"], "answer_index": 0},
            {"prompt": "p", "answer_index": 0}]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataValidationError) as info:
        load_task(path)
    assert str(info.value) == (
        "task row 1: 'prompt' is missing; give it as text (\"\" if it is empty).")
    path.write_text("\n".join(json.dumps(r) for r in (rows[0], rows[2])) + "\n")
    with pytest.raises(DataValidationError) as info:
        load_task(path)
    assert str(info.value) == (
        "task row 1: 'classes' is missing; give a non-empty list of strings, "
        "e.g. [\" yes\", \" no\"].")


def test_empty_task_is_refused(tmp_path):
    frame = pd.DataFrame(columns=["prompt", "classes", "answer_index"])
    with pytest.raises(DataValidationError) as info:
        load_task(frame)
    assert str(info.value) == "task table has no rows; give at least one example."


def test_leading_space_warning_counts_other_prompt():
    """logodds scores the classes after ``other_prompt`` too: 'Q:' + 'yes' there is as bare
    as after ``prompt``. Each class string counts once."""
    frame = pd.DataFrame([{"prompt": "Q: ", "other_prompt": "R:", "classes": ["yes", "no"],
                           "answer_index": 0},
                          {"prompt": "Q:", "other_prompt": "R:", "classes": ["yes", " no"],
                           "answer_index": 0},
                          {"prompt": "Q: ", "other_prompt": "R: ", "classes": ["yes", "no"],
                           "answer_index": 0}])
    with pytest.warns(UserWarning) as record:
        load_task(frame)
    assert len(record) == 1
    assert str(record[0].message).startswith("3 class string(s) do not start with a space")
