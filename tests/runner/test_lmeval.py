"""Reading lm-evaluation-harness sample logs, checked against the runner on the same model.

Fixture ``data/lmeval/tiny-gpt2``: lm-eval 0.4.13 (transformers 5.23.0, CPU, float32) run as
``lm-eval run --model hf --model_args pretrained=DIR,dtype=float32 --include_path TASKDIR
--tasks tiny_mc --device cpu --log_samples --output_path OUT`` on the conftest model
``gpt2-32`` (``save_model(DIR, "gpt2", 32, train_tokenizer(), seed=32)``) and the conftest
``classification_rows()``, with the YAML task ``dataset_path: json``, ``doc_to_text: prompt``,
``doc_to_choice: classes``, ``doc_to_target: answer_index``, ``target_delimiter: ""``,
``output_type: multiple_choice``. The results file was trimmed to the keys read here.
"""

import contextlib
import io
import json
import shutil
import warnings
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
    assert table["n_classes"].tolist() == [len(r["classes"]) for r in classification_rows()]
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


def _copy_run(dst: Path, stamp: str = "2026-11-22T07-38-42.082854", model_name=None,
              n_params=None, edit=None) -> Path:
    """Copy the committed run into ``dst`` under timestamp ``stamp``, optionally renaming the
    model, changing its size or editing its samples; return the samples file."""
    dst.mkdir(parents=True, exist_ok=True)
    src = DATA / "tiny-gpt2"
    meta = json.loads(next(src.glob("results_*.json")).read_text())
    if model_name is not None:
        meta["model_name"] = model_name
    if n_params is not None:
        meta["config"]["model_num_parameters"] = n_params
    (dst / f"results_{stamp}.json").write_text(json.dumps(meta))
    samples = [json.loads(line) for line in next(src.glob("samples_*.jsonl")).open()]
    if edit is not None:
        samples = [edit(s) for s in samples]
    return write_jsonl(dst / f"samples_tiny_mc_{stamp}.jsonl", samples)


def test_two_runs_of_one_model_keep_the_newest(tmp_path):
    """Re-running the harness adds a second samples file of the same model and task; reading
    both would duplicate every document, so only the newest is read, with one warning."""
    run = tmp_path / "out" / "tiny-gpt2"
    shutil.copytree(DATA / "tiny-gpt2", run)

    def flip(sample):  # make the newer run tell itself apart: doc 0 answered correctly
        return {**sample, "acc": 1.0} if sample["doc_id"] == 0 else sample

    newer = _copy_run(run, stamp="2026-11-23T09-00-00.000001", edit=flip)
    with pytest.warns(UserWarning) as record:
        table = read_lm_eval_samples(tmp_path / "out")
    messages = [str(w.message) for w in record if "more than one run" in str(w.message)]
    assert len(messages) == 1
    assert "ignored 1 older samples file(s)" in messages[0]
    assert f"(kept {newer.name})" in messages[0]
    assert len(table) == 7 and not table.duplicated(["model", "task", "example_id"]).any()
    assert table["score"].iat[0] == 1.0 and bool(table["correct"].iat[0])

    from scalingfit import load_results

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(load_results(tmp_path / "out", format="lm-eval")) == 7


def test_load_results_format_lm_eval():
    from scalingfit import load_results

    table = load_results(DATA, format="lm-eval")
    assert table.attrs["scalingfit"]["form"] == "per_example"
    assert table.attrs["scalingfit"]["task"] == "tiny_mc"
    assert table.attrs["scalingfit"]["metric"] == "accuracy"
    assert len(table) == 7 and set(table["model"]) == {"tiny-gpt2"}
    harness = json.loads(next(DATA.rglob("results_*.json")).read_text())
    assert table["score"].mean() == pytest.approx(harness["results"]["tiny_mc"]["acc,none"])


def test_cli_fit_format_lm_eval(tmp_path):
    """``scalingfit fit DIR --format lm-eval`` on three copies of the committed run, as three
    model sizes; the chance level comes from the number of choices per document."""
    from scalingfit.cli import main

    for i, size in enumerate((1_000, 10_000, 100_000)):
        _copy_run(tmp_path / f"m{i}", model_name=f"org/m{i}", n_params=size)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["fit", str(tmp_path), "--format", "lm-eval", "--json", "--n-boot", "200",
                     "--seed", "0"])
    assert code == 0
    result = json.loads(out.getvalue())
    assert result["meta"]["n_models"] == 3 and result["meta"]["n_examples"] == 7
    assert result["shape"] == "flat"  # the three copies score identically
    n = [len(r["classes"]) for r in classification_rows()]
    assert result["meta"]["chance"] == pytest.approx(sum(1 / k for k in n) / len(n))


def test_cli_fit_format_lm_eval_one_model_is_an_error(capsys):
    from scalingfit.cli import main

    assert main(["fit", str(DATA), "--format", "lm-eval"]) == 2
    assert "tiny-gpt2" in capsys.readouterr().err


def test_lmeval_imports_neither_the_runner_nor_torch():
    """The log reader is part of the light core: a fresh interpreter importing it loads no
    ``scalingfit.runner`` module, no torch and no transformers."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = ("import sys, scalingfit.lmeval, scalingfit.registry, scalingfit.records; "
            "print(sorted(m for m in sys.modules if m.startswith('scalingfit.runner') "
            "or m.split('.')[0] in ('torch', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_registry_lives_outside_the_runner():
    from scalingfit import registry
    from scalingfit.runner import family_models, load_model_families

    assert load_model_families is registry.load_model_families
    assert family_models("gpt2")[0] == "openai-community/gpt2"
