"""Torch scoring: summed log-probabilities of continuations given a context.

Tokenisation follows lm-evaluation-harness: a trailing space on the context moves onto the
continuation, context + continuation is tokenised together and split at the context's token
length (never ``len(tok(continuation))``), and a tokenizer's leading special tokens (OPT's BOS)
are kept in front of the context. Scoring is batched by length: each batch runs its contexts
once, together with the leading tokens that all classes of a prompt share (left-padded, with
explicit position ids), and reuses their key/value cache for the rest of every continuation
(right-padded), so a prompt and the common start of its classes are computed once. Only the
positions that are scored go through a float32 log-softmax. Out of memory on a batch halves the
batch's token budget and retries (:func:`score_items`).

torch and transformers are imported inside functions only: ``import scalingfit`` stays light.
"""

from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass
from functools import cached_property

from ..exceptions import DataValidationError, ScalingFitError

__all__ = ["Encoded", "encode_request", "score_batches", "score_items", "plan_batches",
           "special_prefix", "BatchMemoryError"]


class BatchMemoryError(ScalingFitError, RuntimeError):
    """One example alone does not fit in memory; the message names it and what to try."""


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

    @cached_property
    def shared(self) -> tuple:
        """Leading tokens common to every continuation (all of a single continuation): they
        run once, in the context pass, instead of once per continuation."""
        conts = self.continuations
        n = min(len(c) for c in conts)
        for i in range(n):
            token = conts[0][i]
            if any(c[i] != token for c in conts[1:]):
                return conts[0][:i]
        return conts[0][:n]

    @cached_property
    def suffixes(self) -> tuple:
        """Each continuation after :attr:`shared`."""
        return tuple(c[len(self.shared):] for c in self.continuations)

    @property
    def cost(self) -> int:
        """Padded-token cost of scoring this request on its own."""
        return _padded_size([self])


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
        raise DataValidationError("an empty prompt needs a BOS or EOS token to condition on; "
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
    empty = [i for i, c in enumerate(conts) if not c]
    if empty:
        raise DataValidationError(
            f"class {empty[0]} ({continuations[empty[0]]!r}) tokenizes to 0 tokens; every "
            "class needs at least one token to be scored.")
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
        raise DataValidationError(
            f"a class of {longest} tokens does not fit the model's context of {max_length} "
            "tokens (with at least one prompt token); shorten the class, or raise "
            "--max-length if the model takes longer inputs.")
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
        return max(len(e.context) + len(e.shared) for e in item)

    def longest_continuation(item):
        return max(len(c) for e in item for c in e.suffixes)

    n_ctx = sum(len(e.context) + len(e.shared) for item in items for e in item)
    n_cont = sum(len(c) for item in items for e in item for c in e.suffixes)
    if n_cont > n_ctx:
        return lambda i: (longest_continuation(items[i]), longest_context(items[i]))
    return lambda i: (longest_context(items[i]), longest_continuation(items[i]))


def _padded_size(requests) -> int:
    """Tokens of one batch: contexts (with shared continuation prefixes) padded to the
    longest, plus the continuations' second-to-last suffix tokens padded to the longest."""
    n_ctx = max(len(e.context) + len(e.shared) for e in requests) * len(requests)
    long = [len(s) - 1 for e in requests for s in e.suffixes if len(s) > 1]
    return n_ctx + (len(long) * max(long) if long else 0)


def _is_oom(err: BaseException) -> bool:
    """An out-of-memory error of CUDA, MPS or the CPU allocator."""
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(err, oom) or (isinstance(err, RuntimeError)
                                    and "out of memory" in str(err).lower())


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def score_items(model, items, batch_tokens: int, *, pad_id: int = 0, describe=str):
    """Score items in planned batches, halving the token budget on out-of-memory.

    Parameters
    ----------
    model : transformers causal LM
    items : list of list of Encoded
        One entry per example (its requests).
    batch_tokens : int
        Initial padded-token budget of a batch.
    pad_id : int, default 0
    describe : callable, optional
        ``describe(index) -> str`` names an item in the error raised when it alone does not
        fit.

    Yields
    ------
    batch, results, budget
        Item indices, their results (as :func:`score_batches`), and the budget in force. After
        an out-of-memory error the batch and all later ones are re-planned at half the
        budget (sticky for the rest of ``items``) and retried.

    Raises
    ------
    BatchMemoryError
        One item alone runs out of memory.
    """
    budget = batch_tokens
    pending = deque(plan_batches(items, budget))
    while pending:
        batch = pending.popleft()
        try:
            (_, results), = score_batches(model, items, [batch], pad_id=pad_id)
        except Exception as err:  # noqa: BLE001 -- only out-of-memory errors are retried
            if not _is_oom(err):
                raise
            _free_memory()
            if len(batch) == 1:
                size = _padded_size(items[batch[0]])
                raise BatchMemoryError(
                    f"out of memory scoring {describe(batch[0])} on its own ({size} padded "
                    "tokens, batch budget already cut to one example). Try: 1. a smaller "
                    "--dtype (bfloat16); 2. --device-map auto over more devices; "
                    "3. --max-length to cut long prompts from the left.") from err
            budget = max(1, min(budget, _padded_size([e for i in batch for e in items[i]]))
                         // 2)
            rest = batch + [i for b in pending for i in b]
            sub = plan_batches([items[i] for i in rest], budget)
            pending = deque([[rest[j] for j in b] for b in sub])
            continue
        yield batch, results, budget


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
    device = model.get_input_embeddings().weight.device
    with torch.inference_mode():
        for batch in batches:
            requests = [e for i in batch for e in items[i]]
            scored = iter(_score_batch(model, requests, pad_id, device, keep, cache_arg))
            yield batch, [[next(scored) for _ in items[i]] for i in batch]


def _score_batch(model, batch, pad_id: int, device, keep: bool,
                 cache_arg: str = "past_key_values"):
    """Contexts and shared continuation prefixes once (left-padded, cache kept), then every
    continuation's remaining tokens on the cache."""
    import torch

    ids, mask = _left_pad([e.context + e.shared for e in batch], pad_id, device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    width = max(len(e.shared) for e in batch) + 1
    extra = {"logits_to_keep": width} if keep else {}
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                **extra)
    logits = out.logits[:, -width:]
    shared = _shared_logprobs(logits, batch, width)
    last = torch.log_softmax(logits[:, -1].float(), dim=-1)
    owner = [j for j, e in enumerate(batch) for _ in e.suffixes]
    suffixes = [s for e in batch for s in e.suffixes]
    totals = [shared[j] + (float(last[j, s[0]]) if s else 0.0)
              for j, s in zip(owner, suffixes)]
    long = [k for k, s in enumerate(suffixes) if len(s) > 1]
    if long:
        cache = out.get("cache", None) or out.get("past_key_values", None)
        rest = _continuation_logprobs(model, cache, mask, [owner[k] for k in long],
                                      [suffixes[k] for k in long], pad_id, cache_arg)
        for k, r in zip(long, rest):
            totals[k] += r
    return _regroup(batch, totals)


def _shared_logprobs(logits, batch, width: int) -> list:
    """Per request, the summed log-probs of its shared continuation prefix (float32
    log-softmax over only those positions)."""
    import torch

    rows, cols, targets = [], [], []
    for j, enc in enumerate(batch):
        n = len(enc.shared)
        rows += [j] * n
        cols += range(width - 1 - n, width - 1)
        targets += enc.shared
    if not rows:
        return [0.0] * len(batch)
    device = logits.device
    picked = logits[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
    logprobs = _gather_logprobs(picked, torch.tensor(targets, device=device))
    sums = torch.zeros(len(batch), dtype=torch.float64).index_add_(
        0, torch.tensor(rows), logprobs.double().cpu())
    return sums.tolist()


def _gather_logprobs(logits, targets):
    """log p(target) per row of a (N, vocab) logits matrix, in float32."""
    logits = logits.float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - _logsumexp(logits)


def _logsumexp(logits):
    import torch

    return torch.logsumexp(logits, dim=-1)


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
    """Summed log-probs of tokens 2..n of each suffix, run on the contexts' expanded cache."""
    import torch

    device = ctx_mask.device
    width = max(len(c) for c in conts) - 1
    ids = torch.full((len(conts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(conts), width), dtype=torch.long)
    for row, cont in enumerate(conts):
        n = len(cont) - 1
        ids[row, :n] = torch.tensor(cont[:n], dtype=torch.long)
        mask[row, :n] = 1
    index = torch.tensor(owner, device=device)
    cache.reorder_cache(index)
    ctx_mask = ctx_mask.index_select(0, index)
    positions = ctx_mask.sum(-1, keepdim=True) + torch.arange(width, device=device)
    out = model(input_ids=ids.to(device), **{cache_arg: cache}, use_cache=True,
                attention_mask=torch.cat([ctx_mask, mask.to(device)], dim=-1),
                position_ids=positions)
    return _target_logprobs(out.logits, conts, mask)


def _target_logprobs(logits, conts, mask) -> list:
    """Sum over each row of log p(next token) at its real (unpadded) positions only."""
    import torch

    valid = mask.bool().to(logits.device)
    targets = torch.tensor([t for c in conts for t in c[1:]], device=logits.device)
    logprobs = _gather_logprobs(logits[valid], targets)
    rows = torch.arange(len(conts)).repeat_interleave(mask.sum(-1))
    sums = torch.zeros(len(conts), dtype=torch.float64)
    return sums.index_add_(0, rows, logprobs.double().cpu()).tolist()


def _regroup(batch, totals) -> list:
    """Split the flat per-continuation totals back into per-request (logprobs, ntokens)."""
    results, start = [], 0
    for enc in batch:
        stop = start + len(enc.continuations)
        results.append((totals[start:stop], [len(c) for c in enc.continuations]))
        start = stop
    return results
