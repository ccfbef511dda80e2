"""Loading options (device_map, dtype, revision, trust_remote_code, chat templates) and the
out-of-memory back-off."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import assert_same_scores, classification_rows, cli, fake_hub, write_jsonl

from scalingfit.runner import evaluate, read_results_dir


@pytest.fixture
def captured(monkeypatch):
    """Records the keyword arguments of every ``AutoModelForCausalLM.from_pretrained`` call
    (the real loader still runs)."""
    from transformers import AutoModelForCausalLM

    calls, real = [], AutoModelForCausalLM.from_pretrained

    def spy(name, *args, **kwargs):
        calls.append((name, kwargs))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    return calls


def test_device_map_goes_through_from_pretrained(model_dirs, classification_task, captured):
    """device_map="auto" (accelerate) reaches the same from_pretrained call and scores the
    same; trust_remote_code is passed as False unless asked."""
    pytest.importorskip("accelerate")
    mapped = evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False,
                      device="cpu", device_map="auto")
    (_, kwargs), = captured
    assert kwargs["device_map"] == "auto" and kwargs["trust_remote_code"] is False
    plain = evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False,
                     device="cpu")
    pd.testing.assert_frame_equal(mapped, plain, check_exact=False, atol=1e-9)
    assert mapped["devices"].eq("cpu").all()


def test_bfloat16_scores_close_to_float32(model_dirs, classification_task, captured):
    import torch

    bf16 = evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False,
                    device="cpu", dtype="bfloat16")
    assert captured[0][1]["dtype"] is torch.bfloat16
    assert bf16["dtype"].eq("bfloat16").all()
    fp32 = evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False,
                    device="cpu")
    a = np.concatenate([json.loads(x) for x in bf16["class_logprobs"]])
    b = np.concatenate([json.loads(x) for x in fp32["class_logprobs"]])
    np.testing.assert_allclose(a, b, rtol=0.05, atol=0.5)


def test_hub_id_at_revision_reaches_from_pretrained(model_dirs, tmp_path, monkeypatch):
    """``org/tiny@step64000`` -> from_pretrained("org/tiny", revision="step64000") for the
    tokenizer, the config and the weights (all redirected to a local folder: no network)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    calls = []

    def redirect(cls):
        real = cls.from_pretrained

        def load(name, *args, **kwargs):
            if name == "org/tiny":
                calls.append((cls.__name__, kwargs.pop("revision", None)))
                name = model_dirs["gpt2-32"]
            return real(name, *args, **kwargs)
        return load

    for cls in (AutoConfig, AutoModelForCausalLM, AutoTokenizer):
        monkeypatch.setattr(cls, "from_pretrained", redirect(cls))
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    got = evaluate(task, ["org/tiny@step64000"], out=tmp_path / "o", progress=False,
                   device="cpu")
    assert set(calls) == {("AutoConfig", "step64000"), ("AutoTokenizer", "step64000"),
                          ("AutoModelForCausalLM", "step64000")}
    assert got["model"].eq("org/tiny@step64000").all()
    assert got["revision"].eq("step64000").all()


def test_two_revisions_from_a_hub_cache(model_dirs, tmp_path):
    """Two checkpoint folders as two revisions of one hub repo (an offline hub cache): each
    revision is its own model, its resolved commit is recorded, and its scores equal those
    of its folder."""
    cache, commits = fake_hub(tmp_path, {"step1": model_dirs["gpt2-32"],
                                         "step2": model_dirs["gpt2-64"]})
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    out = tmp_path / "out"
    proc = cli(["--task", task, "--models", "org/tiny@step1", "org/tiny@step2", "--out", out,
                "--device", "cpu", "--no-progress"], {"HF_HUB_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = read_results_dir(out)
    for revision, folder in (("step1", "gpt2-32"), ("step2", "gpt2-64")):
        rows = table[table["model"] == f"org/tiny@{revision}"].reset_index(drop=True)
        assert len(rows) == 7 and rows["revision"].eq(revision).all()
        assert rows["model_commit"].eq(commits[revision]).all()
        ref = evaluate(task, [model_dirs[folder]], progress=False, device="cpu")
        np.testing.assert_allclose(rows["loss"], ref["loss"], atol=1e-6)


def test_oom_halves_the_budget_and_retries(model_dirs, classification_task, monkeypatch):
    """A simulated CUDA out-of-memory on every batch of more than one example: the run
    finishes at a lower budget with the same scores, recorded in ``batch_tokens``."""
    import torch

    from scalingfit.runner import scoring

    real, sizes = scoring._score_batch, []

    def tight(model, batch, *args, **kwargs):
        size = scoring._padded_size(batch)
        sizes.append(size)
        if len(batch) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return real(model, batch, *args, **kwargs)

    monkeypatch.setattr(scoring, "_score_batch", tight)
    got = evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False,
                   device="cpu", batch_tokens=4096)
    monkeypatch.setattr(scoring, "_score_batch", real)
    ref = evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False,
                   device="cpu", batch_tokens=4096)
    assert_same_scores(got, ref)
    assert len(sizes) > len(ref) and got["batch_tokens"].max() < 4096
    assert ref["batch_tokens"].eq(4096).all()


def test_oom_on_one_example_names_it(model_dirs, classification_task, monkeypatch):
    import torch

    from scalingfit.runner import scoring
    from scalingfit.runner.scoring import BatchMemoryError

    def never(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(scoring, "_score_batch", never)
    with pytest.raises(BatchMemoryError, match=r"out of memory scoring task 'cls' example "
                                               r"'\d' \(row \d\) on its own"):
        evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False, device="cpu")


def test_other_errors_are_not_retried(model_dirs, classification_task, monkeypatch):
    from scalingfit.runner import scoring

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(scoring, "_score_batch", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False, device="cpu")


CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def test_chat_template_renders_prompts_and_drops_the_delimiter(model_dirs, tmp_path):
    """With chat_template=True the prompt is the user turn and each class loses its leading
    space (the harness's target delimiter is dropped under a chat template); recorded."""
    import shutil

    from naive import naive_logprob_ids
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "chat-32"
    shutil.copytree(model_dirs["gpt2-32"], folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = CHAT
    tok.save_pretrained(folder)
    rows = classification_rows()[:2]
    task = write_jsonl(tmp_path / "t.jsonl", rows)
    got = evaluate(task, [str(folder)], progress=False, device="cpu", chat_template=True)
    assert got["chat_template"].eq(True).all()
    model = AutoModelForCausalLM.from_pretrained(folder)
    for row, logprobs in zip(rows, got["class_logprobs"]):
        context = f"<|user|>{row['prompt']}\n<|assistant|>"
        ids = tok(context, add_special_tokens=False)["input_ids"]
        ref = []
        for cls in row["classes"]:
            whole = tok(context + cls.lstrip(), add_special_tokens=False)["input_ids"]
            ref.append(naive_logprob_ids(model, ids, whole[len(ids):])[0])
        np.testing.assert_allclose(json.loads(logprobs), ref, atol=1e-5)


def test_chat_template_without_template_is_refused(model_dirs, classification_task):
    from scalingfit.exceptions import DataValidationError

    with pytest.raises(DataValidationError) as info:
        evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False, device="cpu",
                 chat_template=True)
    assert str(info.value) == (
        f"chat_template=True, but the tokenizer of model {model_dirs['gpt2-32']!r} has no chat "
        "template; drop --chat-template for base models.")
