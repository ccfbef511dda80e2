"""Everything checked before the first model loads, and the token ids every job scores.

:func:`prepare` validates the models (paths, hub ids, tokenizer files), the devices and the
output directory, then loads each model's tokenizer and config (not its weights) and encodes
every item of every task: a class that tokenizes to nothing or does not fit the model's context
fails here, naming the task and row, before anything is scored. Models that share a tokenizer
(a family) are encoded once.
"""

from __future__ import annotations

import hashlib
import json

from ..exceptions import DataValidationError
from .models import check_devices, check_model, load_tokenizer, parse_model
from .scoring import encode_request, special_prefix

__all__ = ["prepare", "encode_task", "prompt_prefix", "model_max_length", "job_keys",
           "settings_tag"]


def settings_tag(options) -> str:
    """The scoring settings that change scores; folded into every row's ``item_hash``."""
    return f"chat={bool(options.chat_template)};bos={options.add_bos};max={options.max_length}"


def job_keys(task, options) -> list[tuple[str, str]]:
    """``(example_id, item_hash)`` of every item of ``task``, in task order: the resume key.
    ``item_hash`` hashes the item's content and the scoring settings."""
    tag = settings_tag(options)
    return [(eid, hashlib.sha256(f"{h};{tag}".encode()).hexdigest()[:16])
            for eid, h in zip(task.examples["example_id"], task.examples["item_hash"])]


def model_max_length(spec, options, model=None) -> int | None:
    """Context size: ``options.max_length``, else the model config's position limit."""
    if options.max_length:
        return int(options.max_length)
    if model is not None:
        config = model.config
    else:
        from transformers import AutoConfig

        kwargs = {"revision": spec.revision} if spec.revision else {}
        config = AutoConfig.from_pretrained(spec.source,
                                            trust_remote_code=options.trust_remote_code,
                                            **kwargs)
    text = getattr(config, "get_text_config", lambda: config)()
    return (getattr(text, "max_position_embeddings", None)
            or getattr(text, "n_positions", None))


def prompt_prefix(tokenizer, options) -> tuple:
    """Special tokens in front of every prompt: the tokenizer's own (OPT's BOS; none for GPT-2
    or under a chat template, which carries its own), forced on with ``add_bos=True`` or off
    with ``add_bos=False``."""
    if options.add_bos is False:
        return ()
    prefix = () if options.chat_template else special_prefix(tokenizer)
    if options.add_bos and tokenizer.bos_token_id is not None \
            and prefix[:1] != (tokenizer.bos_token_id,):
        prefix = (tokenizer.bos_token_id,) + prefix
    return prefix


def _chat(tokenizer, prompt: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)


def _requests(task, example, tokenizer, chat: bool):
    """The (context, continuations) of one example; under a chat template the prompt is the
    user turn, and the classes lose their leading whitespace (the prize format's target
    delimiter), as lm-evaluation-harness drops ``target_delimiter`` with
    ``--apply_chat_template``."""
    requests = task.spec.requests(example)
    if not chat:
        return requests
    return [(_chat(tokenizer, ctx), [c.lstrip() for c in conts]) for ctx, conts in requests]


def encode_task(tokenizer, task, *, prefix, max_length, chat: bool = False,
                model: str = "") -> list:
    """Encoded requests of every example of ``task`` (one list per example).

    Raises
    ------
    DataValidationError
        A class tokenizes to 0 tokens or does not fit ``max_length``; the message names the
        model, task, row and example id.
    """
    items = []
    for row, example in enumerate(task.examples.itertuples(index=False)):
        try:
            items.append([encode_request(tokenizer, ctx, conts, prefix=prefix,
                                         max_length=max_length)
                          for ctx, conts in _requests(task, example, tokenizer, chat)])
        except DataValidationError as err:
            raise DataValidationError(
                f"task {task.name!r} row {row} (example_id {example.example_id!r}), "
                f"model {model!r}: {err}") from err
    return items


def _fingerprint(tokenizer, prefix, max_length, chat) -> str:
    """Identity of a tokenizer and encoding settings: models of one family share it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else repr(tokenizer.get_vocab())
    extra = json.dumps([list(prefix), max_length, chat,
                        getattr(tokenizer, "chat_template", None) if chat else None])
    return hashlib.sha256((body + extra).encode("utf-8")).hexdigest()


def _check_chat(tokenizer, spec) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise DataValidationError(
            f"chat_template=True, but the tokenizer of model {str(spec)!r} has no chat "
            "template; drop --chat-template for base models.")


def prepare(specs, tasks, options, devices) -> dict:
    """Check every input and encode every (model, task) pair, before any weights load.

    Returns
    -------
    dict
        ``{(model name, task name): encoded items}``.
    """
    for spec in specs:
        check_model(spec)
    check_devices(devices)
    encoded, shared = {}, {}
    for spec in map(parse_model, specs):
        tokenizer = load_tokenizer(spec, trust_remote_code=options.trust_remote_code)
        if options.chat_template:
            _check_chat(tokenizer, spec)
        prefix = prompt_prefix(tokenizer, options)
        max_length = model_max_length(spec, options)
        mark = _fingerprint(tokenizer, prefix, max_length, options.chat_template)
        for task in tasks:
            key = (mark, task.name)
            if key not in shared:
                shared[key] = encode_task(tokenizer, task, prefix=prefix, max_length=max_length,
                                          chat=options.chat_template, model=str(spec))
            encoded[(spec.name, task.name)] = shared[key]
    return encoded
