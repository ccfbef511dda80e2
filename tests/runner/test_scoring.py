"""The runner's metrics against the naive reference scorer, and tokenisation pitfalls."""

import json
import warnings

import numpy as np
import pytest
from conftest import classification_rows, write_jsonl
from naive import (naive_classification, naive_logodds_row, naive_logprob, naive_logprob_ids,
                   naive_sequence)

from scalingfit.runner import evaluate

TOL = 1e-5


@pytest.fixture(scope="module")
def loaded(model_dirs):
    """Models and tokenizers loaded once per module, by path."""
    from scalingfit.runner.models import load_model

    return {name: load_model(path) for name, path in model_dirs.items()}


def _run(task, path, **kwargs):
    return evaluate(task, [path], progress=False, device="cpu", **kwargs)


@pytest.mark.parametrize("name", ["gpt2-32", "opt-32", "neox-32"])
def test_classification_matches_naive(name, model_dirs, loaded, classification_task):
    """Every class log-prob, token count and derived metric, for three architectures."""
    model, tok = loaded[name]
    got = _run(classification_task, model_dirs[name])
    for row, (_, out) in zip(classification_rows(), got.iterrows()):
        ref = naive_classification(model, tok, row)
        np.testing.assert_allclose(json.loads(out.class_logprobs), ref["class_logprobs"],
                                   atol=TOL, rtol=0)
        assert json.loads(out.class_ntokens) == ref["class_ntokens"]
        for col in ("loss", "coverage", "logprob_correct"):
            assert out[col] == pytest.approx(ref[col], abs=TOL)
        assert bool(out.correct) == ref["correct"]
        assert out.score == float(ref["correct"])
        assert out.metric == "accuracy"


@pytest.mark.parametrize("name", ["gpt2-64", "opt-32"])
def test_sequence_prob_matches_naive(name, model_dirs, loaded, sequence_task):
    model, tok = loaded[name]
    got = _run(sequence_task, model_dirs[name])
    rows = [json.loads(line) for line in open(sequence_task)]
    for row, (_, out) in zip(rows, got.iterrows()):
        ref = naive_sequence(model, tok, row)
        assert out.loss == pytest.approx(ref["loss"], abs=TOL)
        assert out.score == pytest.approx(-ref["loss"], abs=TOL)
        assert json.loads(out.class_ntokens) == ref["class_ntokens"]
    assert set(got["metric"]) == {"neg_loss"}


@pytest.mark.parametrize("name", ["gpt2-96", "opt-32"])
def test_logodds_matches_naive(name, model_dirs, loaded, logodds_task):
    model, tok = loaded[name]
    got = _run(logodds_task, model_dirs[name])
    rows = [json.loads(line) for line in open(logodds_task)]
    for row, (_, out) in zip(rows, got.iterrows()):
        ref = naive_logodds_row(model, tok, row)
        assert out.logodds_diff == pytest.approx(ref["logodds_diff"], abs=TOL)
        assert out.score == float(ref["logodds_diff"] > 0)
        for col in ("class_logprobs", "other_class_logprobs"):
            np.testing.assert_allclose(json.loads(out[col]), ref[col], atol=TOL, rtol=0)
        for col in ("class_ntokens", "other_class_ntokens"):
            assert json.loads(out[col]) == ref[col]
        assert bool(out.correct) == ref["correct"]
        assert out.coverage == pytest.approx(ref["coverage"], abs=TOL)
        assert out.n_classes == 2


def test_scores_do_not_depend_on_batching(model_dirs, classification_task):
    """One item per batch, a mid-size budget and everything in one batch agree."""
    path = model_dirs["gpt2-32"]
    runs = [_run(classification_task, path, batch_tokens=b) for b in (1, 64, 100_000)]
    base = np.array([json.loads(v) for v in runs[0]["class_logprobs"]], dtype=object)
    for other in runs[1:]:
        for a, b in zip(base, other["class_logprobs"]):
            np.testing.assert_allclose(a, json.loads(b), atol=TOL, rtol=0)


def test_scores_do_not_depend_on_the_pad_id(loaded):
    """Prompts are left-padded and continuations right-padded in one batch: with masks and
    position ids right, the pad token's id reaches no score."""
    from scalingfit.runner.scoring import encode_request, plan_batches, score_batches

    model, tok = loaded["gpt2-32"]
    items = [[encode_request(tok, r["prompt"], r["classes"])] for r in classification_rows()]
    batches = plan_batches(items, 100_000)
    assert len(batches) == 1  # one batch, so the shorter prompts and classes are padded
    assert len({len(item[0].context) for item in items}) > 1
    assert len({len(c) for item in items for c in item[0].continuations}) > 1

    def scores(pad_id):
        return {i: res[0][0] for batch, results in score_batches(model, items, batches,
                                                                 pad_id=pad_id)
                for i, res in zip(batch, results)}

    eos, other = scores(tok.eos_token_id), scores(len(tok) - 1)
    assert eos.keys() == other.keys() == set(range(len(items)))
    for i in eos:
        np.testing.assert_allclose(eos[i], other[i], atol=TOL, rtol=0)


def test_tokenizer_pad_token_and_side_are_irrelevant(model_dirs, tmp_path, loaded):
    """The runner pads itself: a tokenizer saved with left padding and its own pad token (so
    the runner pads with another id) gives the same scores as one without a pad token."""
    from transformers import AutoTokenizer

    from scalingfit.runner.run import _pad_id

    src = model_dirs["gpt2-32"]
    tok = AutoTokenizer.from_pretrained(src)
    assert tok.pad_token is None  # the missing-pad-token pitfall: the runner must cope
    padded = AutoTokenizer.from_pretrained(src)
    padded.pad_token = padded.convert_ids_to_tokens(len(padded) - 1)
    padded.padding_side = "left"
    assert _pad_id(padded) != _pad_id(tok)
    model, _ = loaded["gpt2-32"]
    model.save_pretrained(tmp_path / "m")
    padded.save_pretrained(tmp_path / "m")
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    a, b = _run(task, src, batch_tokens=100_000), _run(task, str(tmp_path / "m"),
                                                       batch_tokens=100_000)
    for x, y in zip(a["class_logprobs"], b["class_logprobs"]):
        np.testing.assert_allclose(json.loads(x), json.loads(y), atol=TOL, rtol=0)


def test_trailing_space_moves_onto_the_continuation(model_dirs, loaded, tmp_path):
    """'Answer: ' + 'yes' scores exactly like 'Answer:' + ' yes'."""
    rows = [{"prompt": "Question: Is the sky blue? Answer: ", "classes": ["yes", "no"],
             "answer_index": 0},
            {"prompt": "Question: Is the sky blue? Answer:", "classes": [" yes", " no"],
             "answer_index": 0}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the moved space counts: no leading-space warning
        got = _run(write_jsonl(tmp_path / "t.jsonl", rows), model_dirs["gpt2-32"])
    spaces = [str(w.message) for w in caught if "do not start with a space" in str(w.message)]
    assert spaces == []
    assert got.class_logprobs[0] == got.class_logprobs[1]
    assert got.class_ntokens[0] == got.class_ntokens[1]


def test_bos_tokenizer_class_length_is_not_len_tok_class(model_dirs, loaded):
    """OPT-style BOS: the class's token count excludes BOS, unlike ``len(tok(class))``."""
    from scalingfit.runner.scoring import encode_request

    _, tok = loaded["opt-32"]
    assert tok(" yes")["input_ids"][0] == tok.bos_token_id
    enc = encode_request(tok, "Question: Is the sky blue? Answer:", [" yes", " no"])
    assert enc.context[0] == tok.bos_token_id
    whole = tok("Question: Is the sky blue? Answer: yes")["input_ids"]
    assert enc.context + enc.continuations[0] == tuple(whole)
    assert len(enc.continuations[0]) == len(tok(" yes")["input_ids"]) - 1


def test_split_at_prompt_length_not_class_length(loaded):
    """Continuation ids come from the joint tokenisation, split at the prompt's length."""
    from scalingfit.runner.scoring import encode_request

    _, tok = loaded["gpt2-32"]
    prompt, cls = "The cat sat on the", " mat."
    enc = encode_request(tok, prompt, [cls])
    whole = tok(prompt + cls)["input_ids"]
    assert enc.continuations[0] == tuple(whole[len(tok(prompt)["input_ids"]):])


def test_empty_prompt_conditions_on_bos(model_dirs, loaded, tmp_path):
    model, tok = loaded["gpt2-32"]
    row = {"prompt": "", "completion": "The cat sat on the mat."}
    got = _run(write_jsonl(tmp_path / "t.jsonl", [row]), model_dirs["gpt2-32"])
    assert got.loss[0] == pytest.approx(-naive_logprob(model, tok, "", row["completion"])[0],
                                        abs=TOL)


def test_long_prompt_is_cut_from_the_left(model_dirs, loaded, tmp_path):
    """A prompt longer than the model's context keeps exactly its last tokens that leave room
    for the longest class, and scores as the naive scorer does on those kept tokens."""
    model, tok = loaded["gpt2-32"]
    prompt = "The cat sat on the mat. " * 200 + "Question: Is the sky blue? Answer:"
    classes = [" yes", " no, and a cat is not a dog"]
    row = {"prompt": prompt, "classes": classes, "answer_index": 0}
    got = _run(write_jsonl(tmp_path / "t.jsonl", [row]), model_dirs["gpt2-32"])
    context = tok(prompt)["input_ids"]
    conts = [tok(prompt + c)["input_ids"][len(context):] for c in classes]
    room = model.config.n_positions - max(len(c) for c in conts)
    assert len(context) > room
    ref = [naive_logprob_ids(model, context[-room:], c) for c in conts]
    np.testing.assert_allclose(json.loads(got.class_logprobs[0]), [r[0] for r in ref],
                               atol=TOL, rtol=0)
    assert json.loads(got.class_ntokens[0]) == [r[1] for r in ref]
    assert got.loss[0] == pytest.approx(np.logaddexp(*[r[0] for r in ref]) - ref[0][0],
                                        abs=TOL)
