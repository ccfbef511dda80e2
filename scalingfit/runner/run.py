"""Run models over tasks and collect the canonical per-example table.

``evaluate`` checks every input first (so a malformed row, a misspelt model path or a missing
tokenizer fails before any model loads), builds the (model, task) jobs, keeps this shard's, and
runs them: in this process, or in one worker process per device (group). A worker loads a model
once and scores every task of it that it can claim, writing each finished batch to the output
directory so that an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import time
from pathlib import Path

import pandas as pd

from ..exceptions import DataValidationError
from ..records import to_frame
from ..registry import family_models, load_model_families, lookup_model
from . import models as _models
from .jobs import DEFAULT_LOCK_TIMEOUT, Job, JobLock, RunOptions, shard_jobs
from .models import (ModelSpec, fuse_activations, model_devices, parse_model, resolve_commit,
                     resolve_device, versions)
from .prepare import encode_task, job_keys, model_max_length, prepare, prompt_prefix
from .scoring import _free_memory, score_items
from .store import ResultStore, safe_name
from .tasks import load_tasks
from .workers import run_workers

__all__ = ["evaluate", "run_jobs", "DEFAULT_BATCH_TOKENS"]

#: default padded-token budget of one forward batch: on CPU, and on CUDA / MPS
DEFAULT_BATCH_TOKENS = {"cpu": 512, "accelerator": 8192}
#: testing hook: exit the process (as a kill would) after this many stored batches
_EXIT_AFTER_ENV = "SCALINGFIT_RUNNER_EXIT_AFTER_BATCHES"
_stored_batches = itertools.count(1)


def evaluate(task, models=None, *, family: str | None = None, out=None, device: str = "auto",
             devices=None, devices_per_model: int = 1, dtype=None,
             batch_tokens: int | None = None, device_map: str | None = None,
             trust_remote_code: bool = False, add_bos: bool | None = None,
             max_length: int | None = None, chat_template: bool = False, shard=None,
             lock_timeout: float = DEFAULT_LOCK_TIMEOUT, progress: bool = True,
             registry: pd.DataFrame | None = None) -> pd.DataFrame:
    """Score causal language models on tasks; return one row per model x task x example.

    Parameters
    ----------
    task : str, pathlib.Path, pandas.DataFrame, Task, or a list of them
        Task files (CSV / JSONL), directories of task files, Hugging Face dataset ids,
        tables or :class:`Task` objects; see :func:`load_tasks`. Each model is loaded once and
        scores every task.
    models : str or list of str, optional
        Hub ids (``org/name`` or ``org/name@revision``) or local directories, run in the
        order given. Default: every model of ``family`` in the registry, smallest first.
    family : str, optional
        Family name. With ``models=None`` it selects the registry family; otherwise it labels
        the models (default: the registry family, else ``"custom"``).
    out : str or pathlib.Path, optional
        Output directory: one Parquet table per (model, task), resumable, shareable by several
        workers and hosts. Default: keep results in memory (one process only).
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}, default "auto"
        Device of a single-process run.
    devices : list of str, optional
        One worker process per device (or per group of ``devices_per_model`` devices), e.g.
        ``["cuda:0", "cuda:1"]``; needs ``out``. ``["cpu", "cpu"]`` runs two CPU workers.
    devices_per_model : int, default 1
        Devices per worker: a model larger than one device takes a group of them (loaded
        with ``device_map="auto"`` over the group).
    dtype : str, optional
        ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"auto"`` (the checkpoint's). Default:
        float32 on CPU, the checkpoint's dtype elsewhere. Log-softmax is always float32.
    batch_tokens : int, optional
        Padded tokens per forward batch. Default: 512 on CPU, 8192 on CUDA / MPS. Out of
        memory halves it and retries.
    device_map : str, optional
        ``"auto"``: ``from_pretrained(device_map="auto")`` (accelerate) spreads a model over
        the visible devices.
    trust_remote_code : bool, default False
        Let checkpoints run their own modelling code.
    add_bos : bool, optional
        Force a BOS token in front of every prompt (True) or none (False). Default: what the
        tokenizer adds by itself.
    max_length : int, optional
        Context size (prompts are cut from the left to fit). Default: the model config's.
    chat_template : bool, default False
        Render each prompt as the user turn of the tokenizer's chat template (instruct
        families); the classes' leading whitespace is dropped, as the harness drops its
        target delimiter.
    shard : str or tuple, optional
        ``"i/N"``: score only the i-th of N contiguous blocks of the (model, task) jobs.
    lock_timeout : float, default 600
        Seconds without a heartbeat after which another worker takes over a job's lock.
    progress : bool, default True
        Show tqdm bars (examples/s).
    registry : pandas.DataFrame, optional
        Model-family registry; default :func:`scalingfit.registry.load_model_families`.

    Returns
    -------
    pandas.DataFrame
        The canonical per-example table (:data:`scalingfit.records.COLUMNS`) of this shard's
        jobs, with provenance columns on every row.

    Raises
    ------
    DataValidationError
        Any input is malformed (before any model loads): a task row, a model path or id, a
        model without tokenizer, a device this machine lacks, an unusable ``out``.
    """
    tasks = load_tasks(task)
    registry = _registry(registry, required=models is None)
    specs = _model_list(models, family, registry)
    label = family if models is not None else None  # registry runs keep its spelling
    options = RunOptions(device=device, dtype=dtype, batch_tokens=batch_tokens,
                         device_map=device_map, trust_remote_code=trust_remote_code,
                         add_bos=add_bos, max_length=max_length, chat_template=chat_template,
                         lock_timeout=lock_timeout, progress=progress, family=label)
    groups = _device_groups(devices, devices_per_model)
    if groups and out is None:
        raise DataValidationError("devices=[...] runs worker processes that share results "
                                  "through an output directory: give out=DIR (--out).")
    store = ResultStore(out) if out is not None else None
    jobs = shard_jobs([Job(spec, t) for spec in specs for t in tasks], shard)
    encoded = prepare(specs, tasks, options, [d for g in groups for d in g] or [device])
    if groups:
        run_workers(jobs, groups, store.path, options, registry, run_jobs)
        return _collect(store, jobs, options)
    return pd.concat(run_jobs(jobs, store, options, registry=registry, encoded=encoded),
                     ignore_index=True)


def _device_groups(devices, per_model: int) -> list[list[str]]:
    if not devices:
        return []
    devices = [d.strip() for d in (devices.split(",") if isinstance(devices, str) else devices)
               if d.strip()]
    if per_model < 1 or len(devices) % per_model:
        raise DataValidationError(
            f"devices_per_model must divide the {len(devices)} devices {devices}; got "
            f"{per_model}.")
    return [devices[i:i + per_model] for i in range(0, len(devices), per_model)]


def _collect(store, jobs, options) -> pd.DataFrame:
    """The finished tables of ``jobs`` from the store, in job order."""
    frames = [store.finalize(j.spec.name, j.task.name, job_keys(j.task, options),
                             resolve_commit(j.spec)) for j in jobs]
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


def _model_list(models, family, registry) -> list[ModelSpec]:
    if models is None:
        if family is None:
            raise DataValidationError(
                "give models=[...] (hub ids or local paths) or a registry family.")
        return [parse_model(m) for m in family_models(family, registry)]
    names = [str(models)] if isinstance(models, (str, Path)) else [str(m) for m in models]
    if not names:
        raise DataValidationError(
            "models is empty: give at least one hub id or local model directory "
            "(models=['EleutherAI/pythia-70m', './ckpt']), or models=None with family=NAME.")
    _check_distinct_names(names)
    return [parse_model(m) for m in names]


def _check_distinct_names(models) -> None:
    """Two models with one output name would share one table (the second skipped as done):
    refuse before anything loads."""
    seen: dict[str, str] = {}
    for model in models:
        name = parse_model(model).name
        key = safe_name(name)
        if key not in seen:
            seen[key] = model
            continue
        first = seen[key]
        if first == model:
            raise DataValidationError(
                f"model {model!r} is listed twice in models; list each model once.")
        raise DataValidationError(
            f"models {first!r} and {model!r} would both be stored as model "
            f"{parse_model(first).name!r} (output files {key}+<task>.parquet), so the second "
            "would be skipped as already done. The model column takes a local directory's "
            "folder name: rename or symlink one directory to a distinct name (e.g. a-ckpt, "
            "b-ckpt) and pass that path instead.")


def model_name(name_or_path) -> str:
    """Name in the ``model`` column: the hub id (with ``@revision``), or a directory's name."""
    return parse_model(name_or_path).name


class _Loaded:
    """The model a worker holds: loaded on first use, replaced when a job needs another."""

    def __init__(self, options, registry, encoded=None, device=None, max_memory=None):
        self.options, self.registry, self.encoded = options, registry, encoded or {}
        self.device, self.max_memory = device, max_memory
        self.spec = self.model = None
        self.commits: dict = {}

    def commit(self, spec) -> str | None:
        if spec.name not in self.commits:
            self.commits[spec.name] = resolve_commit(spec)
        return self.commits[spec.name]

    def get(self, spec):
        if self.spec == spec:
            return self
        self.unload()
        options = self.options
        device = resolve_device(self.device or options.device)
        self.model, self.tokenizer = _models.load_model(
            spec, device=device, dtype=options.dtype, device_map=options.device_map,
            max_memory=self.max_memory, trust_remote_code=options.trust_remote_code)
        fuse_activations(self.model)
        self.spec, self.device_name = spec, model_devices(self.model, device)
        self.commits[spec.name] = resolve_commit(spec, self.model) or self.commits.get(
            spec.name)
        self.prefix = prompt_prefix(self.tokenizer, options)
        self.max_length = model_max_length(spec, options, self.model)
        self.batch_tokens = options.batch_tokens or DEFAULT_BATCH_TOKENS[
            "cpu" if self.device_name == "cpu" else "accelerator"]
        self.meta = {**_model_meta(self.model, spec, options.family, self.registry),
                     "revision": spec.revision, "model_commit": self.commits[spec.name],
                     "dtype": str(self.model.dtype).replace("torch.", ""),
                     "devices": self.device_name, "chat_template": options.chat_template,
                     **versions()}
        return self

    def items(self, task) -> list:
        key = (self.spec.name, task.name)
        if key not in self.encoded:
            self.encoded[key] = encode_task(self.tokenizer, task, prefix=self.prefix,
                                            max_length=self.max_length,
                                            chat=self.options.chat_template,
                                            model=str(self.spec))
        return self.encoded[key]

    def unload(self) -> None:
        if self.model is None:
            return
        self.spec = self.model = self.tokenizer = None
        _free_memory()


def run_jobs(jobs, store, options, *, registry, encoded=None, device=None, max_memory=None,
             poll: float | None = None) -> list[pd.DataFrame]:
    """Run jobs in this process; return their tables in job order.

    With a store, a job is claimed through its lock file; a job another live worker holds is
    revisited until it is finished or its lock goes stale (then taken over), so this returns
    only when every job is done.
    """
    from tqdm.auto import tqdm

    loaded = _Loaded(options, registry, encoded, device, max_memory)
    poll = poll if poll is not None else min(1.0, options.lock_timeout / 4)
    frames, pending = {}, list(jobs)
    total = sum(len(j.task) for j in jobs)
    overall = tqdm(total=total, unit="ex", desc="all jobs", disable=not options.progress)
    try:
        while pending:
            waiting = []
            for job in pending:
                frame = _run_job(job, store, loaded, overall)
                if frame is None:
                    waiting.append(job)
                else:
                    frames[job.key] = frame
            pending = waiting
            if pending:
                time.sleep(poll)
    finally:
        overall.close()
        loaded.unload()
    return [frames[j.key] for j in jobs]


def _run_job(job, store, loaded, overall) -> pd.DataFrame | None:
    """Score one job's missing items; None when another live worker holds its lock."""
    options, spec, task = loaded.options, job.spec, job.task
    keys = job_keys(task, options)
    if store is None:
        rows = []
        _score_job(job, loaded.get(spec), list(range(len(keys))), keys, rows.extend, overall)
        return _ordered(to_frame(rows), keys)
    if set(keys) <= store.done(spec.name, task.name, loaded.commit(spec)):
        overall.update(len(keys))
        return store.finalize(spec.name, task.name, keys, loaded.commit(spec))
    lock = JobLock(store.lock_path(spec.name, task.name), options.lock_timeout)
    if not lock.acquire():
        return None
    try:
        state = loaded.get(spec)
        commit = state.commits[spec.name]
        done = store.done(spec.name, task.name, commit)
        todo = [i for i, key in enumerate(keys) if key not in done]
        overall.update(len(keys) - len(todo))
        start = time.perf_counter()
        budget = _score_job(job, state, todo, keys, _sink(store, spec.name, task.name),
                            overall)
        seconds = time.perf_counter() - start
        info = _info(state, job, len(keys), len(todo), seconds, budget)
        return store.finalize(spec.name, task.name, keys, commit, info)
    finally:
        lock.release()


def _info(state, job, n_examples: int, n_scored: int, seconds: float, budget) -> dict:
    """Provenance of one finished (model, task) table."""
    keep = ("model", "revision", "model_commit", "dtype", "devices", "chat_template",
            "torch_version", "transformers_version")
    return {**{k: state.meta[k] for k in keep}, "task": job.task.name,
            "batch_tokens": state.batch_tokens, "batch_tokens_final": budget,
            "n_examples": n_examples, "n_scored": n_scored, "wall_seconds": round(seconds, 3),
            "examples_per_second": round(n_scored / seconds, 3) if seconds > 0 else None,
            "host": socket.gethostname(), "pid": os.getpid(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _sink(store, model: str, task: str):
    """Store one finished batch durably; honour the test exit hook."""
    def keep(rows):
        store.append(model, task, rows)
        limit = os.environ.get(_EXIT_AFTER_ENV)
        if next(_stored_batches) >= int(limit or 0) > 0:
            os._exit(75)
    return keep


def _score_job(job, state, todo, keys, sink, overall) -> int:
    """Score items ``todo`` of a job, passing each batch's rows to ``sink``; return the final
    batch budget (lower than the initial one after an out-of-memory back-off)."""
    from tqdm.auto import tqdm

    task = job.task
    items = state.items(task)
    examples = list(task.examples.itertuples(index=False))
    meta = {**state.meta, "task": task.name}
    budget = state.batch_tokens
    if not todo:
        return budget

    def describe(j):
        return f"task {task.name!r} example {examples[todo[j]].example_id!r} (row {todo[j]})"

    bar = tqdm(total=len(keys), initial=len(keys) - len(todo), unit="ex", leave=False,
               desc=f"{job.spec.name} / {task.name}", disable=not state.options.progress)
    with bar:
        for batch, results, budget in score_items(
                state.model, [items[i] for i in todo], state.batch_tokens,
                pad_id=_pad_id(state.tokenizer), describe=describe):
            rows = []
            for j, scored in zip(batch, results):
                i = todo[j]
                rows.append({**meta, "batch_tokens": budget, "example_id": keys[i][0],
                             "item_hash": keys[i][1],
                             **task.spec.metrics(examples[i], scored)})
            sink(rows)
            bar.update(len(rows))
            overall.update(len(rows))
    return budget


def _ordered(frame: pd.DataFrame, keys) -> pd.DataFrame:
    rank = {eid: i for i, (eid, _) in enumerate(keys)}
    return frame.iloc[frame["example_id"].map(rank).argsort(kind="stable")].reset_index(
        drop=True)


def _model_meta(model, spec, family, registry) -> dict:
    """Family, size and FLOPs of a model: from the registry, else counted from its weights."""
    entry = lookup_model(spec.source, registry)
    if entry is not None:
        n_params, source = int(entry["n_params"]), "registry"
        flops = float(entry["train_flops"]) if pd.notna(entry["train_flops"]) else math.nan
    else:
        n_params, source, flops = _count_params(model), "counted", math.nan
    label = family or (entry["family"] if entry is not None else "custom")
    return {"family": label, "model": spec.name, "n_params": n_params,
            "n_params_source": source, "flops": flops}


def _count_params(model) -> int:
    """Distinct parameters of the loaded weights (tied embeddings counted once)."""
    return int(sum(p.numel() for p in model.parameters()))


def _pad_id(tokenizer) -> int:
    """Any id works as padding (it is masked); prefer pad, then EOS, then 0."""
    for token in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token is not None:
            return int(token)
    return 0
