"""Readers of harness outputs: lm-eval results_*.json (v0.3, v0.4) and Inspect AI logs, on small
files the tests write (the Inspect logs by inspect_ai itself)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalingfit import DataValidationError, OptionError, load_results
from scalingfit.harness import read_inspect_logs, read_lm_eval_results
from scalingfit.many import fit_many

PYTHIA = {"EleutherAI/pythia-70m": 70426624, "EleutherAI/pythia-160m": 162322944,
          "EleutherAI/pythia-410m": 405334016}


def _v04(model, acc, n=500, *, num_params=None):
    """A results file as lm-eval 0.4 writes it (trimmed to the keys the reader uses, plus the
    ones it must ignore: alias, groups, configs, versions, n-shot)."""
    def task(a):
        return {"alias": "  - x", "acc,none": a, "acc_stderr,none": math.sqrt(a * (1 - a) / n),
                "acc_norm,none": a + 0.01, "acc_norm_stderr,none": "N/A"}
    return {
        "results": {"mmlu": {"acc,none": 0.3, "acc_stderr,none": 0.01, "alias": "mmlu"},
                    "arc_easy": task(acc[0]), "lambada_openai": {
                        "alias": "lambada_openai", "perplexity,none": 30.0 - 5 * acc[1],
                        "perplexity_stderr,none": 0.5, "acc,none": acc[1],
                        "acc_stderr,none": 0.006}},
        "groups": {"mmlu": {"acc,none": 0.3, "acc_stderr,none": 0.01}},
        "group_subtasks": {"mmlu": ["mmlu_abstract_algebra"], "arc_easy": [],
                           "lambada_openai": []},
        "configs": {"arc_easy": {"task": "arc_easy", "num_fewshot": 0}},
        "versions": {"arc_easy": 1.0, "lambada_openai": 1.0},
        "n-shot": {"arc_easy": 0, "lambada_openai": 0},
        "higher_is_better": {"arc_easy": {"acc": True, "acc_norm": True},
                             "lambada_openai": {"perplexity": False, "acc": True}},
        "n-samples": {"arc_easy": {"original": 2376, "effective": n},
                      "lambada_openai": {"original": 5153, "effective": 5153}},
        "config": {"model": "hf", "model_args": f"pretrained={model},dtype=float32",
                   "model_num_parameters": num_params, "batch_size": 8},
        "model_name": model, "date": 1715000000.0,
    }


def _v03(model, acc):
    return {"results": {"hellaswag": {"acc": acc, "acc_stderr": 0.005, "acc_norm": acc + 0.02,
                                      "acc_norm_stderr": 0.005}},
            "versions": {"hellaswag": 0},
            "config": {"model": "hf-causal", "model_args": f"pretrained={model}",
                       "num_fewshot": 0, "batch_size": None, "limit": None}}


def _write(folder, model, data, stamp="2024-05-01T10-00-00.000000"):
    d = folder / model.replace("/", "__")
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"results_{stamp}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def v04_dir(tmp_path):
    accs = {"EleutherAI/pythia-70m": (0.60, 0.30), "EleutherAI/pythia-160m": (0.55, 0.40),
            "EleutherAI/pythia-410m": (0.50, 0.50)}
    for model, acc in accs.items():
        _write(tmp_path, model, _v04(model, acc))
    return tmp_path


def test_v04_layout_reads_one_row_per_model_task_metric(v04_dir):
    t = read_lm_eval_results(v04_dir)
    assert set(t["task"]) == {"arc_easy", "lambada_openai"}       # the mmlu group is dropped
    assert sorted(t.loc[t.task == "arc_easy", "metric"].unique()) == ["acc", "acc_norm"]
    row = t[(t.model == "EleutherAI/pythia-70m") & (t.task == "arc_easy") & (t.metric == "acc")]
    assert row.iloc[0].to_dict() == {
        "family": "pythia", "model": "EleutherAI/pythia-70m", "n_params": 70426624.0,
        "n_params_source": "registry", "flops": 1.267e20, "task": "arc_easy", "metric": "acc",
        "score": 0.6, "se": math.sqrt(0.6 * 0.4 / 500), "n": 500.0, "higher_is_better": True,
        "source": "results_2024-05-01T10-00-00.000000.json"}
    norm = t[(t.task == "arc_easy") & (t.metric == "acc_norm")]
    assert norm["se"].isna().all()                                 # 'N/A' stderr
    ppl = t[t.metric == "perplexity"]
    assert (ppl["higher_is_better"] == False).all() and (ppl["n"] == 5153).all()  # noqa: E712


def test_v04_groups_kept_on_request(v04_dir):
    t = read_lm_eval_results(v04_dir, include_groups=True)
    assert "mmlu" in set(t["task"])


def test_v04_table_loads_and_screens(v04_dir):
    table = load_results(v04_dir, format="lm-eval-results", task="arc_easy", metric="acc")
    assert table.attrs["scalingfit"]["form"] == "aggregated"
    assert table.attrs["scalingfit"]["proportion"] is True
    many = fit_many(v04_dir, format="lm-eval-results", by=["task", "metric"], n_boot=200,
                    rng=0, progress=False)
    s = many.summary().set_index(["task", "metric"])
    assert s.loc[("arc_easy", "acc"), "verdict"] in ("inverse", "inconclusive")
    assert s.loc[("arc_easy", "acc"), "slope"] < 0 and s.loc[("lambada_openai", "acc"),
                                                             "slope"] > 0
    # the harness says lower perplexity is better: the fit is told so
    assert many[("lambada_openai", "perplexity")].meta["higher_is_better"] is False
    # acc_norm has no stderr but n: binomial errors from n
    assert many[("arc_easy", "acc_norm")].meta["n_models"] == 3


def test_v03_layout_and_sizes_from_argument_registry_or_harness(tmp_path):
    _write(tmp_path, "EleutherAI/pythia-70m", _v03("EleutherAI/pythia-70m", 0.3))
    _write(tmp_path, "my/model-a", _v03("my/model-a", 0.35))
    v4 = _v04("my/model-b", (0.5, 0.5), num_params=1_000_000_000)
    _write(tmp_path, "my/model-b", v4)
    t = read_lm_eval_results(tmp_path, sizes={"my/model-a": 5e8}, family="mine")
    by = t.drop_duplicates("model").set_index("model")
    assert by.loc["EleutherAI/pythia-70m", "n_params_source"] == "registry"
    assert by.loc["my/model-a", ["n_params", "n_params_source"]].tolist() == [5e8, "argument"]
    assert by.loc["my/model-b", ["n_params", "n_params_source"]].tolist() == [1e9, "harness"]
    assert set(t["family"]) == {"mine"}
    hs = t[(t.task == "hellaswag") & (t.metric == "acc")].set_index("model")
    assert hs.loc["my/model-a", "score"] == 0.35 and hs.loc["my/model-a", "se"] == 0.005
    assert hs["n"].isna().all()                                    # v0.3 records no n


def test_unknown_size_names_the_model_and_the_fix(tmp_path):
    path = _write(tmp_path, "my/unknown", _v03("my/unknown", 0.3))
    with pytest.raises(DataValidationError) as err:
        read_lm_eval_results(tmp_path)
    assert str(err.value) == (
        f"lm-eval results file {str(path)!r}: the size of model 'my/unknown' is unknown (not "
        "in sizes=, not in the model registry, and the file records no parameter count); pass "
        "sizes={'my/unknown': <parameters>}.")


@pytest.mark.parametrize("text, message", [
    ('{"results": {"arc": {"acc": 0.5', "line 1: not valid JSON (Expecting ',' delimiter at "
                                        "column 32); the file may be truncated."),
    ('[1, 2]', "has no 'results' object (got list); expected the harness's "
               'results_<timestamp>.json: {"results": {task: {"acc,none": ...}}, "config": '
               '{"model_args": "pretrained=...", ...}}.'),
    ('{"results": {"arc": {"acc": 0.5}}, "config": {"model_args": "dtype=float"}}',
     "cannot tell the model (no 'model_name', and 'config.model_args' = 'dtype=float' has no "
     "pretrained=...). Pass one file per model as the harness writes them."),
    ('{"results": {"arc": {"acc": [0.5]}}, "config": {"model_args": "pretrained=EleutherAI/'
     'pythia-70m"}}', "key 'results.arc.acc': expected a number, got [0.5]."),
    ('{"results": {"arc": 0.5}, "config": {"model_args": "pretrained=EleutherAI/pythia-70m"}}',
     "key 'results.arc': expected an object of metrics, got float."),
])
def test_malformed_results_files_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "results_2024-01-01T00-00-00.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataValidationError) as err:
        read_lm_eval_results(path)
    assert str(err.value) == f"lm-eval results file {str(path)!r}" + (
        ", " if message.startswith(("line", "key")) else " " if message.startswith("has")
        else ": ") + message


def test_no_results_files(tmp_path):
    with pytest.raises(DataValidationError) as err:
        read_lm_eval_results(tmp_path)
    assert str(err.value) == (
        f"no lm-eval results files (results_*.json) under {str(tmp_path)!r}; run the harness "
        "with --output_path DIR and pass DIR (or one results file).")


def test_a_later_run_of_the_same_model_and_task_wins(tmp_path):
    model = "EleutherAI/pythia-70m"
    _write(tmp_path, model, _v03(model, 0.30), stamp="2024-01-01T00-00-00")
    _write(tmp_path, model, _v03(model, 0.40), stamp="2024-02-01T00-00-00")
    with pytest.warns(UserWarning, match="kept the later file"):
        t = read_lm_eval_results(tmp_path)
    assert t[t.metric == "acc"]["score"].tolist() == [0.40]


# ------------------------------------------------------------------------------ Inspect AI
#: per model: (size, share of the 20 samples answered correctly)
INSPECT_MODELS = {"tiny-a": (1e8, 0.9), "tiny-b": (1e9, 0.7), "tiny-c": (1e10, 0.5),
                  "tiny-d": (1e11, 0.3)}


def _answers(share):
    """The mock model's answer to question ``q<i>``: right for the first ``share`` of them."""
    def respond(input, tools, tool_choice, config):
        from inspect_ai.model import ModelOutput, ModelUsage

        i = int(str(input[-1].text).strip().lstrip("q"))
        out = ModelOutput.from_content(model="mockllm", content="A" if i < 20 * share else "B")
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out
    return respond


@pytest.fixture(scope="module")
def inspect_logs(tmp_path_factory):
    """Real Inspect logs: ``inspect_ai.eval`` of a 20-question task on mock models."""
    pytest.importorskip("inspect_ai")
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import get_model
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    folder = tmp_path_factory.mktemp("inspect")
    task = Task(dataset=[Sample(input=f"q{i}", target="A", id=f"e{i}") for i in range(20)],
                solver=generate(), scorer=match(), name="toy_qa")
    models = [get_model(f"mockllm/{name}", custom_outputs=_answers(share))
              for name, (_, share) in INSPECT_MODELS.items()]
    logs = inspect_eval(task, model=models, log_dir=str(folder / "logs"), display="none")
    assert all(log.status == "success" for log in logs)
    return folder, logs


def test_inspect_logs_per_sample(inspect_logs):
    folder, _ = inspect_logs
    sizes = {name: size for name, (size, _) in INSPECT_MODELS.items()}
    t = read_inspect_logs(folder / "logs", sizes=sizes, family="mock")
    assert len(t) == 4 * 20
    assert set(t.columns) >= {"family", "model", "n_params", "task", "metric", "example_id",
                              "score"}
    means = t.groupby("model")["score"].mean().to_dict()
    assert means == {name: share for name, (_, share) in INSPECT_MODELS.items()}
    assert set(t["task"]) == {"toy_qa"} and set(t["metric"]) == {"match"}
    assert t[t.model == "tiny-a"].set_index("example_id").loc["e0", "score"] == 1.0
    table = load_results(t)
    assert table.attrs["scalingfit"]["form"] == "per_example"
    many = fit_many(t, n_boot=200, rng=0, progress=False)
    assert many["toy_qa"].shape == "inverse"


def test_inspect_log_without_samples_gives_the_aggregate(inspect_logs, tmp_path):
    from inspect_ai.log import write_eval_log

    _, logs = inspect_logs
    for log in logs:                    # the same logs, as JSON and without their samples
        name = Path(log.location).with_suffix(".json").name
        write_eval_log(log.model_copy(update={"samples": None}), str(tmp_path / name))
    t = read_inspect_logs(tmp_path, sizes={f"mockllm/{k}": v[0]
                                           for k, v in INSPECT_MODELS.items()})
    assert len(t) == 4 and "example_id" not in t
    row = t.set_index("model").loc["tiny-b"]
    score = logs[1].results.scores[0].metrics
    assert (row["score"], row["se"], row["n"]) == (score["accuracy"].value,
                                                   score["stderr"].value, 20.0)
    assert row["metric"] == "match" and row["family"] == "custom"


def test_inspect_unknown_size_and_unreadable_log(inspect_logs, tmp_path):
    folder, _ = inspect_logs
    with pytest.raises(DataValidationError, match="the size of model 'tiny-[abcd]' is unknown"):
        read_inspect_logs(folder / "logs")
    bad = tmp_path / "broken.eval"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataValidationError, match=r"Inspect AI log .*broken\.eval' cannot be "
                                                  r"read \("):
        read_inspect_logs(bad)


def test_inspect_extra_missing_is_a_clear_error(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_inspect(name, *args, **kwargs):
        if name.startswith("inspect_ai"):
            raise ImportError("No module named 'inspect_ai'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_inspect)
    with pytest.raises(OptionError) as err:
        read_inspect_logs(tmp_path)
    assert str(err.value) == (
        "format='inspect' reads Inspect AI logs with inspect_ai's own reader, which is not "
        "installed; install the extra: pip install 'scalingfit[inspect]'.")


def test_load_results_dispatches_inspect(inspect_logs):
    folder, logs = inspect_logs
    with pytest.raises(DataValidationError, match="is unknown"):
        load_results(folder / "logs", format="inspect")
    assert np.isfinite(logs[0].results.scores[0].metrics["accuracy"].value)
    assert isinstance(read_inspect_logs(logs[0].location, sizes={"tiny-a": 1e8}), pd.DataFrame)
