"""Reading lm-evaluation-harness sample logs, checked against the runner on the same model.

Fixture ``data/lmeval/tiny-gpt2``: lm-eval 0.4.13 (transformers 5.23.0, CPU, float32) run as
``lm-eval run --model hf --model_args pretrained=DIR,dtype=float32 --include_path TASKDIR
--tasks tiny_mc --device cpu --log_samples --output_path OUT`` on the conftest model
``gpt2-32`` (``save_model(DIR, "gpt2", 32, train_tokenizer(), seed=32)``) and the conftest
``classification_rows()``, with the YAML task ``dataset_path: json``, ``doc_to_text: prompt``,
``doc_to_choice: classes``, ``doc_to_target: answer_index``, ``target_delimiter: ""``,
``output_type: multiple_choice``. The results file was trimmed to the keys read here.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import classification_rows, write_jsonl

from scalingfit.exceptions import DataValidationError
from scalingfit.lmeval import read_lm_eval_samples

DATA = Path(__file__).parent / "data" / "lmeval"


def test_reads_canonical_table():
    table = read_lm_eval_samples(DATA)
    assert len(table) == 7
    assert set(table["model"]) == {"tiny-gpt2"}
    assert set(table["task"]) == {"tiny_mc"}
    assert table["example_id"].tolist() == [str(i) for i in range(7)]
    assert table["n_params"].iat[0] == 43904 and table["n_params_source"].iat[0] == "lm-eval"
    assert set(table["metric"]) == {"accuracy"}
    first = json.loads(table["class_logprobs"].iat[0])
    assert first == pytest.approx([-17.15878677368164, -5.785349369049072])
    assert table["loss"].iat[0] == pytest.approx(np.logaddexp(*first) - first[0])


def test_single_file_and_overrides():
    path = next(DATA.rglob("samples_*.jsonl"))
    table = read_lm_eval_samples(path, model="m", family="fam", n_params=123)
    assert set(table["model"]) == {"m"} and set(table["family"]) == {"fam"}
    assert set(table["n_params"]) == {123} and set(table["n_params_source"]) == {"argument"}


def test_harness_agrees_with_runner(model_dirs, tmp_path):
    """Same model, same items: per-example acc equal, class log-likelihoods within 1e-4."""
    from scalingfit.runner import evaluate

    harness = read_lm_eval_samples(DATA)
    task = write_jsonl(tmp_path / "tiny_mc.jsonl", classification_rows())
    ours = evaluate(task, [model_dirs["gpt2-32"]], progress=False, device="cpu")
    assert ours["correct"].tolist() == harness["correct"].tolist()
    for a, b in zip(ours["class_logprobs"], harness["class_logprobs"]):
        np.testing.assert_allclose(json.loads(a), json.loads(b), atol=1e-4, rtol=0)


def test_missing_logs_message(tmp_path):
    with pytest.raises(DataValidationError) as info:
        read_lm_eval_samples(tmp_path)
    assert str(info.value) == (
        f"no lm-eval sample logs (samples_*.jsonl) under {str(tmp_path)!r}; run the harness "
        "with --log_samples --output_path DIR and pass DIR.")


def test_generation_task_is_refused(tmp_path):
    sample = {"doc_id": 0, "target": "4", "resps": [["4"]], "filtered_resps": ["4"],
              "metrics": ["exact_match"], "exact_match": 1.0}
    path = write_jsonl(tmp_path / "samples_gen_2024-01-01T00-00-00.jsonl", [sample])
    with pytest.raises(DataValidationError, match="line 1: only multiple-choice samples"):
        read_lm_eval_samples(path, n_params=1)
