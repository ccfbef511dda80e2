"""Torch scoring: summed log-probabilities of continuations given a context.

Tokenisation follows lm-evaluation-harness: a trailing space on the context moves onto the
continuation, context + continuation is tokenised together and split at the context's token
length (never ``len(tok(continuation))``), and a tokenizer's leading special tokens (OPT's BOS)
are kept in front of the context. Scoring is batched by length: each batch runs its contexts
once (left-padded, with explicit position ids) and reuses their key/value cache for all of
their continuations (right-padded), so a prompt is computed once for all of its classes.

torch and transformers are imported inside functions only: ``import scalingfit`` stays light.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

__all__ = ["Encoded", "encode_request", "load_model", "score_batches", "plan_batches",
           "resolve_device", "resolve_dtype"]

_DTYPES = ("float32", "float16", "bfloat16", "float64")


@dataclass(frozen=True)
class Encoded:
    """One context and its continuations, as token ids.

    Attributes
    ----------
    context : tuple of int
        Context ids, including any leading special tokens; never empty.
    continuations : tuple of tuple of int
        Continuation ids, each split off the jointly tokenised context + continuation.
    """

    context: tuple
    continuations: tuple

    @property
    def cost(self) -> int:
        """Padded-token cost of scoring this request on its own."""
        longest = max(len(c) for c in self.continuations)
        return len(self.context) + len(self.continuations) * max(longest - 1, 0)


def resolve_device(device: str = "auto") -> str:
    """Return ``"cuda"``, ``"mps"`` or ``"cpu"`` for ``device="auto"``, else ``device``."""
    import torch

    if device not in ("auto", "cpu", "cuda", "mps") and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be one of 'auto', 'cpu', 'cuda', 'mps'; got {device!r}.")
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def resolve_dtype(dtype, device: str):
    """Return a torch dtype: ``dtype`` by name, or float32 on CPU and the checkpoint's otherwise."""
    import torch

    if dtype is None:
        return torch.float32 if device == "cpu" else "auto"
    if dtype == "auto" or not isinstance(dtype, str):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {list(_DTYPES) + ['auto']}; got {dtype!r}.")
    return getattr(torch, dtype)


def load_model(name_or_path: str, *, device: str = "cpu", dtype=None):
    """Load a causal LM and its tokenizer with ``from_pretrained`` (hub id or local path).

    Returns
    -------
    model, tokenizer
        The model is in eval mode on ``device``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(
        name_or_path, **{_dtype_keyword(): resolve_dtype(dtype, device)})
    return model.to(device).eval(), tokenizer


def _dtype_keyword() -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` from transformers 4.56 on (``torch_dtype``
    is deprecated there), ``torch_dtype`` before. The version decides, not a ``TypeError``: older
    releases take an unknown ``dtype=`` silently as a config attribute and load float32."""
    import transformers
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__).release >= (4, 56) else "torch_dtype"


def special_prefix(tokenizer) -> tuple:
    """The special tokens a tokenizer puts in front of any text (OPT: BOS; GPT-2: none)."""
    enc = tokenizer("a", add_special_tokens=True, return_special_tokens_mask=True)
    prefix = []
    for token, special in zip(enc["input_ids"], enc["special_tokens_mask"]):
        if not special:
            break
        prefix.append(token)
    return tuple(prefix)


def _fallback_context(tokenizer) -> tuple:
    """Context for an empty prompt: BOS, else EOS (the harness uses EOS; GPT-2-style
    tokenizers have one token for both)."""
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None \
        else tokenizer.eos_token_id
    if token is None:
        raise ValueError("an empty prompt needs a BOS or EOS token to condition on; "
                         "this tokenizer has neither.")
    return (token,)


def encode_request(tokenizer, context: str, continuations, *, prefix=None,
                   max_length: int | None = None) -> Encoded:
    """Tokenise one context with its continuations, as lm-evaluation-harness does.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    context : str
    continuations : list of str
    prefix : tuple of int, optional
        Leading special tokens; default :func:`special_prefix`.
    max_length : int, optional
        Model context size; the context is cut from the left to fit the longest continuation.

    Returns
    -------
    Encoded
    """
    prefix = special_prefix(tokenizer) if prefix is None else tuple(prefix)
    stripped = context.rstrip()
    moved = context[len(stripped):]
    ctx = prefix + tuple(_ids(tokenizer, stripped)) if stripped else prefix
    ctx = ctx or _fallback_context(tokenizer)
    conts = tuple(_continuation(tokenizer, prefix, stripped, moved + c, len(ctx))
                  for c in continuations)
    return _truncate(Encoded(ctx, conts), max_length)


def _ids(tokenizer, text: str) -> list:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _continuation(tokenizer, prefix, context: str, continuation: str, n_context: int) -> tuple:
    """Ids of ``continuation``: tokenise context + continuation, drop the context's length."""
    whole = prefix + tuple(_ids(tokenizer, context + continuation))
    if not context and not prefix:
        return whole
    return whole[n_context:]


def _truncate(enc: Encoded, max_length: int | None) -> Encoded:
    """Drop context tokens from the left so the longest continuation fits ``max_length``."""
    longest = max(len(c) for c in enc.continuations)
    if max_length is None or len(enc.context) + longest <= max_length:
        return enc
    room = max_length - longest
    if room < 1:
        raise ValueError(f"a continuation of {longest} tokens does not fit the model's "
                         f"context of {max_length} tokens.")
    return Encoded(enc.context[-room:], enc.continuations)


def plan_batches(items, batch_tokens: int) -> list[list[int]]:
    """Group items into batches of similar length within a padded-token budget.

    Parameters
    ----------
    items : list of list of Encoded
        One entry per example: its requests (a logodds example has two), kept in one batch.
    batch_tokens : int
        Budget: contexts padded to the longest plus continuations padded to the longest.

    Returns
    -------
    list of list of int
        Item indices per batch, longest contexts first; a batch holds at least one item.
    """
    order = sorted(range(len(items)), key=_length_key(items), reverse=True)
    batches, current = [], []
    for i in order:
        if current and _padded_size([e for j in current + [i] for e in items[j]]) > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    return batches + [current] if current else batches


def _length_key(items):
    """Sort key: the longest continuation first when continuations hold most tokens (long
    classes), else the longest context, so the dominant pass is padded least."""
    def longest_context(item):
        return max(len(e.context) for e in item)

    def longest_continuation(item):
        return max(len(c) for e in item for c in e.continuations)

    n_ctx = sum(len(e.context) for item in items for e in item)
    n_cont = sum(len(c) for item in items for e in item for c in e.continuations)
    if n_cont > n_ctx:
        return lambda i: (longest_continuation(items[i]), longest_context(items[i]))
    return lambda i: (longest_context(items[i]), longest_continuation(items[i]))


def _padded_size(requests) -> int:
    n_ctx = max(len(e.context) for e in requests) * len(requests)
    rows = sum(len(e.continuations) for e in requests)
    longest = max(len(c) for e in requests for c in e.continuations)
    return n_ctx + rows * max(longest - 1, 0)


def score_batches(model, items, batches, *, pad_id: int = 0):
    """Score planned batches of items; yield ``(batch, results)`` per batch.

    ``results[j]`` belongs to item ``batch[j]``: per request, a pair of lists (summed
    natural-log probability, token count) over its continuations.
    """
    import torch

    params = inspect.signature(model.forward).parameters
    keep = "logits_to_keep" in params
    # transformers >= 5.2x renamed ``past_key_values`` (argument and output) to ``cache``
    cache_arg = "cache" if "cache" in params else "past_key_values"
    device = next(model.parameters()).device
    with torch.inference_mode():
        for batch in batches:
            requests = [e for i in batch for e in items[i]]
            scored = iter(_score_batch(model, requests, pad_id, device, keep, cache_arg))
            yield batch, [[next(scored) for _ in items[i]] for i in batch]


def _score_batch(model, batch, pad_id: int, device, keep: bool,
                 cache_arg: str = "past_key_values"):
    """Contexts once (left-padded, cache kept), then every continuation on the cache."""
    import torch

    ids, mask = _left_pad([e.context for e in batch], pad_id, device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    extra = {"logits_to_keep": 1} if keep else {}
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                **extra)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
    owner = [j for j, e in enumerate(batch) for _ in e.continuations]
    conts = [c for e in batch for c in e.continuations]
    totals = [float(first[j, c[0]]) if c else 0.0 for j, c in zip(owner, conts)]
    if max(len(c) for c in conts) > 1:
        cache = out.get("cache", None) or out.get("past_key_values", None)
        rest = _continuation_logprobs(model, cache, mask, owner, conts, pad_id, cache_arg)
        totals = [t + r for t, r in zip(totals, rest)]
    return _regroup(batch, totals)


def _left_pad(seqs, pad_id: int, device):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, width - len(seq):] = torch.tensor(seq)
        mask[row, width - len(seq):] = 1
    return ids.to(device), mask.to(device)


def _continuation_logprobs(model, cache, ctx_mask, owner, conts, pad_id: int,
                           cache_arg: str = "past_key_values") -> list:
    """Summed log-probs of continuation tokens 2..n, run on the contexts' expanded cache."""
    import torch

    device = ctx_mask.device
    width = max(len(c) for c in conts) - 1
    ids = torch.full((len(conts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(conts), width), dtype=torch.long)
    for row, cont in enumerate(conts):
        n = max(len(cont) - 1, 0)
        ids[row, :n] = torch.tensor(cont[:n], dtype=torch.long)
        mask[row, :n] = 1
    index = torch.tensor(owner, device=device)
    cache.reorder_cache(index)
    ctx_mask = ctx_mask.index_select(0, index)
    positions = ctx_mask.sum(-1, keepdim=True) + torch.arange(width, device=device)
    out = model(input_ids=ids.to(device), **{cache_arg: cache}, use_cache=True,
                attention_mask=torch.cat([ctx_mask, mask.to(device)], dim=-1),
                position_ids=positions)
    return _target_logprobs(out.logits, conts, width)


def _target_logprobs(logits, conts, width: int) -> list:
    """Sum over each row of log p(next token) at its real (unpadded) positions."""
    import torch

    targets = torch.zeros((len(conts), width), dtype=torch.long)
    valid = torch.zeros((len(conts), width), dtype=torch.bool)
    for row, cont in enumerate(conts):
        n = max(len(cont) - 1, 0)
        targets[row, :n] = torch.tensor(cont[1:], dtype=torch.long)
        valid[row, :n] = True
    logits = logits.float()
    picked = logits.gather(-1, targets.to(logits.device).unsqueeze(-1)).squeeze(-1)
    logprobs = (picked - torch.logsumexp(logits, dim=-1)).cpu()
    return logprobs.masked_fill(~valid, 0.0).double().sum(-1).tolist()


def _regroup(batch, totals) -> list:
    """Split the flat per-continuation totals back into per-request (logprobs, ntokens)."""
    results, start = [], 0
    for enc in batch:
        stop = start + len(enc.continuations)
        results.append((totals[start:stop], [len(c) for c in enc.continuations]))
        start = stop
    return results
