"""A deliberately naive reference scorer: one prompt + one continuation per forward pass.

No batching, no padding, no cache, the tokenizer's default special tokens, float64 log-softmax.
The runner must agree with it to 1e-5. Used by the tests and by ``benchmarks/bench_runner.py``.
"""

import math


def naive_logprob(model, tokenizer, prompt: str, continuation: str):
    """Summed log p(continuation | prompt) and its token count, as lm-evaluation-harness does.

    A trailing space on the prompt moves onto the continuation; prompt + continuation is
    tokenised together and split at the prompt's token length.
    """
    import torch

    stripped = prompt.rstrip()
    continuation = prompt[len(stripped):] + continuation
    context = tokenizer(stripped)["input_ids"] if stripped else []
    whole = tokenizer(stripped + continuation)["input_ids"]
    if context:
        cont = whole[len(context):]
    else:
        context, cont = [tokenizer.bos_token_id], whole
        if whole[:1] == context:
            cont = whole[1:]
    return naive_logprob_ids(model, context, cont)


def naive_logprob_ids(model, context, cont):
    """Summed log p(cont | context) and its token count, for token ids: one unpadded forward
    pass over context + cont, float64 log-softmax."""
    import torch

    ids = torch.tensor([list(context) + list(cont)])
    with torch.no_grad():
        logits = model(ids).logits[0].double()
    logprobs = torch.log_softmax(logits, dim=-1)
    total = sum(float(logprobs[len(context) - 1 + j, t]) for j, t in enumerate(cont))
    return total, len(cont)


def naive_classification(model, tokenizer, row: dict) -> dict:
    """Prize classification metrics of one row, computed from scratch."""
    scored = [naive_logprob(model, tokenizer, row["prompt"], c) for c in row["classes"]]
    logprobs = [s[0] for s in scored]
    answer = row["answer_index"]
    top = max(logprobs)
    log_total = top + math.log(sum(math.exp(lp - top) for lp in logprobs))
    return {"class_logprobs": logprobs, "class_ntokens": [s[1] for s in scored],
            "loss": log_total - logprobs[answer], "coverage": math.exp(log_total),
            "logprob_correct": logprobs[answer],
            "correct": logprobs.index(top) == answer}


def naive_sequence(model, tokenizer, row: dict) -> dict:
    logprob, n = naive_logprob(model, tokenizer, row["prompt"], row["completion"])
    return {"loss": -logprob, "score": logprob, "class_ntokens": [n]}


def naive_logodds_row(model, tokenizer, row: dict) -> dict:
    """Every logodds column, from scratch: class log-probs and token counts after both
    prompts, the logodds difference, and ``correct`` / ``coverage`` on ``other_prompt``."""
    def classes_after(prompt):
        scored = [naive_logprob(model, tokenizer, prompt, c) for c in row["classes"]]
        return [s[0] for s in scored], [s[1] for s in scored]

    logprobs, ntokens = classes_after(row["prompt"])
    other, other_ntokens = classes_after(row["other_prompt"])
    answer = row["answer_index"]
    return {"class_logprobs": logprobs, "class_ntokens": ntokens,
            "other_class_logprobs": other, "other_class_ntokens": other_ntokens,
            "logodds_diff": naive_logodds(model, tokenizer, row),
            "correct": other.index(max(other)) == answer,
            "coverage": sum(math.exp(lp) for lp in other)}


def naive_logodds(model, tokenizer, row: dict) -> float:
    """ISP logodds difference: log-odds(prompt) - log-odds(other), flipped if answer is 1."""
    def logodds(prompt):
        a, b = (naive_logprob(model, tokenizer, prompt, c)[0] for c in row["classes"])
        return a - b

    diff = logodds(row["prompt"]) - logodds(row["other_prompt"])
    return -diff if row["answer_index"] == 1 else diff
