"""Run models over a task and collect the canonical per-example table.

``evaluate`` validates the task first (so a malformed row fails before any model loads), then
scores each model in turn, smallest first for a registry family, writing each finished batch to
the output directory so that an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import pandas as pd

from ..exceptions import DataValidationError
from .families import family_models, load_model_families, lookup_model
from .store import ResultStore, safe_name, to_frame
from .tasks import load_task

__all__ = ["evaluate", "DEFAULT_BATCH_TOKENS"]

#: default padded-token budget of one forward batch: on CPU, and on CUDA / MPS
DEFAULT_BATCH_TOKENS = {"cpu": 1024, "accelerator": 8192}
#: testing hook: exit the process (as a kill would) after this many stored batches
_EXIT_AFTER_ENV = "SCALINGFIT_RUNNER_EXIT_AFTER_BATCHES"
_stored_batches = itertools.count(1)


def evaluate(task, models=None, *, family: str | None = None, out=None, device: str = "auto",
             dtype=None, batch_tokens: int | None = None, progress: bool = True,
             registry: pd.DataFrame | None = None) -> pd.DataFrame:
    """Score causal language models on a task; return one row per model x example.

    Parameters
    ----------
    task : str, pathlib.Path, pandas.DataFrame or Task
        Task file (CSV / JSONL), Hugging Face dataset id, table or :class:`Task`; see
        :func:`load_task`.
    models : str or list of str, optional
        Hub ids or local paths, run in the order given. Default: every model of ``family``
        in the registry, smallest first.
    family : str, optional
        Family name. With ``models=None`` it selects the registry family; otherwise it labels
        the models (default: the registry family, else ``"custom"``).
    out : str or pathlib.Path, optional
        Output directory: one Parquet file per model, resumable. Default: keep results in memory.
    device : {"auto", "cpu", "cuda", "mps"}, default "auto"
    dtype : str, optional
        ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"auto"`` (the checkpoint's). Default:
        float32 on CPU, the checkpoint's dtype elsewhere.
    batch_tokens : int, optional
        Padded tokens per forward batch; lower it if memory runs out. Default: 1024 on CPU
        (larger batches were slower there), 8192 on CUDA / MPS.
    progress : bool, default True
        Show tqdm bars per model and overall, with examples/s.
    registry : pandas.DataFrame, optional
        Model-family registry; default :func:`load_model_families`.

    Returns
    -------
    pandas.DataFrame
        The canonical per-example table (see :data:`scalingfit.runner.store.COLUMNS`).

    Raises
    ------
    DataValidationError
        The task is malformed (before any model is loaded), ``family`` is unknown, ``models``
        is empty, or two models would get the same name (two local directories with the same
        folder name).
    """
    task = load_task(task)
    registry = _registry(registry, required=models is None)
    names = _model_list(models, family, registry)
    label = family if models is not None else None  # registry runs keep its spelling
    store = ResultStore(out) if out is not None else None
    from tqdm.auto import tqdm

    overall = tqdm(total=len(task) * len(names), unit="ex", desc="all models",
                   disable=not progress)
    try:
        frames = [_run_model(task, name, label, store, registry, overall,
                             device=device, dtype=dtype, batch_tokens=batch_tokens,
                             progress=progress) for name in names]
    finally:
        overall.close()
    return pd.concat(frames, ignore_index=True)


def _registry(registry, *, required: bool) -> pd.DataFrame:
    """The given registry, else the default one; empty if absent and only used for lookups."""
    if registry is not None:
        return registry
    try:
        return load_model_families()
    except FileNotFoundError:
        if required:
            raise
        return pd.DataFrame(columns=["family", "model", "n_params", "train_flops"])


def _model_list(models, family, registry) -> list[str]:
    if models is None:
        if family is None:
            raise ValueError("give models=[...] (hub ids or local paths) or a registry family.")
        return family_models(family, registry)
    names = [str(models)] if isinstance(models, (str, Path)) else [str(m) for m in models]
    if not names:
        raise DataValidationError(
            "models is empty: give at least one hub id or local model directory "
            "(models=['EleutherAI/pythia-70m', './ckpt']), or models=None with family=NAME.")
    _check_distinct_names(names)
    return names


def _check_distinct_names(models) -> None:
    """Two models with one output name would share one Parquet file (the second skipped as
    done): refuse before anything loads."""
    seen: dict[str, str] = {}
    for model in models:
        name = model_name(model)
        key = safe_name(name)
        if key not in seen:
            seen[key] = model
            continue
        first = seen[key]
        if first == model:
            raise DataValidationError(
                f"model {model!r} is listed twice in models; list each model once.")
        raise DataValidationError(
            f"models {first!r} and {model!r} would both be stored as model {model_name(first)!r} "
            f"(output file {key}.parquet), so the second would be skipped as already done. "
            "The model column takes a local directory's folder name: rename or symlink one "
            "directory to a distinct name (e.g. a-ckpt, b-ckpt) and pass that path instead.")


def model_name(name_or_path) -> str:
    """Name in the ``model`` column: the hub id, or a local directory's name."""
    path = Path(name_or_path)
    return path.name if path.exists() else str(name_or_path)


def _run_model(task, name_or_path, family, store, registry, overall, *, device, dtype,
               batch_tokens, progress) -> pd.DataFrame:
    """Score the examples of ``task`` not yet stored for one model; return its task rows."""
    from tqdm.auto import tqdm

    name = model_name(name_or_path)
    done = store.done(name, task.name) if store else set()
    todo = task.examples[~task.examples["example_id"].isin(done)]
    overall.update(len(task) - len(todo))
    rows = []
    if len(todo):
        bar = tqdm(total=len(task), initial=len(task) - len(todo), unit="ex", desc=name,
                   leave=False, disable=not progress)
        with bar:
            for batch_rows in _score_model(task, todo, name_or_path, family, registry,
                                           device=device, dtype=dtype,
                                           batch_tokens=batch_tokens):
                _keep(store, name, rows, batch_rows)
                bar.update(len(batch_rows))
                overall.update(len(batch_rows))
    if store is None:
        return _ordered(to_frame(rows), task)
    order = {(task.name, eid): i for i, eid in enumerate(task.examples["example_id"])}
    frame = store.finalize(name, order)
    return frame[frame["task"] == task.name].reset_index(drop=True)


def _keep(store, name: str, rows: list, batch_rows: list) -> None:
    """Store one finished batch (durably when writing to disk); honour the test exit hook."""
    if store is None:
        rows.extend(batch_rows)
        return
    store.append(name, batch_rows)
    limit = os.environ.get(_EXIT_AFTER_ENV)
    if next(_stored_batches) >= int(limit or 0) > 0:
        os._exit(75)


def _ordered(frame: pd.DataFrame, task) -> pd.DataFrame:
    rank = {eid: i for i, eid in enumerate(task.examples["example_id"])}
    return frame.iloc[frame["example_id"].map(rank).argsort(kind="stable")].reset_index(
        drop=True)


def _score_model(task, todo, name_or_path, family, registry, *, device, dtype, batch_tokens):
    """Load one model and yield the canonical rows of each scored batch."""
    from .scoring import encode_request, load_model, plan_batches, resolve_device, \
        score_batches, special_prefix

    device = resolve_device(device)
    batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS["cpu" if device == "cpu"
                                                        else "accelerator"]
    model, tokenizer = load_model(str(name_or_path), device=device, dtype=dtype)
    meta = _model_meta(model, name_or_path, family, registry, task.name)
    prefix, max_length = special_prefix(tokenizer), _max_length(model)
    examples = list(todo.itertuples(index=False))
    items = [[encode_request(tokenizer, ctx, conts, prefix=prefix, max_length=max_length)
              for ctx, conts in task.spec.requests(ex)] for ex in examples]
    pad_id = _pad_id(tokenizer)
    for batch, results in score_batches(model, items, plan_batches(items, batch_tokens),
                                        pad_id=pad_id):
        yield [{**meta, "example_id": examples[i].example_id,
                **task.spec.metrics(examples[i], scored)} for i, scored in zip(batch, results)]


def _model_meta(model, name_or_path, family, registry, task_name: str) -> dict:
    """Family, size and FLOPs of a model: from the registry, else counted from its weights."""
    name = model_name(name_or_path)
    entry = lookup_model(str(name_or_path), registry)
    if entry is not None:
        n_params, source = int(entry["n_params"]), "registry"
        flops = float(entry["train_flops"]) if pd.notna(entry["train_flops"]) else math.nan
    else:
        n_params, source, flops = _count_params(model), "counted", math.nan
    label = family or (entry["family"] if entry is not None else "custom")
    return {"family": label, "model": name, "n_params": n_params, "n_params_source": source,
            "flops": flops, "task": task_name}


def _count_params(model) -> int:
    """Distinct parameters of the loaded weights (tied embeddings counted once)."""
    return int(sum(p.numel() for p in model.parameters()))


def _max_length(model) -> int | None:
    config = model.config
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions",
                                                                       None)


def _pad_id(tokenizer) -> int:
    """Any id works as padding (it is masked); prefer pad, then EOS, then 0."""
    for token in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token is not None:
            return int(token)
    return 0
