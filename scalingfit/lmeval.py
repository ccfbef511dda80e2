"""Read lm-evaluation-harness ``--log_samples`` output into the canonical per-example table.

The harness writes, per model, ``<output_path>/<model>/samples_<task>_<timestamp>.jsonl`` (one
line per document) next to ``results_<timestamp>.json`` (model name and parameter count). For
multiple-choice tasks each line holds ``doc_id``, ``target``, ``acc`` and, in
``filtered_resps``, one ``[loglikelihood, is_greedy]`` pair per choice. This module needs
neither torch, transformers nor the runner.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import pandas as pd

from .exceptions import DataValidationError
from .records import class_stats, to_frame
from .registry import load_model_families, lookup_model

__all__ = ["read_lm_eval_samples"]

_SAMPLES = re.compile(r"^samples_(?P<task>.+)_(?P<stamp>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")


def read_lm_eval_samples(path, *, model: str | None = None, family: str | None = None,
                         n_params=None, registry: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read harness per-sample logs of multiple-choice tasks as the canonical table.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``samples_*.jsonl`` file, or a directory searched recursively for them.
    model : str, optional
        Model name. Default: the harness's ``model_name`` (a local path becomes its directory
        name), else the samples file's directory name.
    family : str, optional
        Family label. Default: the registry family, else ``"custom"``.
    n_params : int or dict, optional
        Parameter count, or ``{model: count}``. Default: the registry's, else the harness's
        ``model_num_parameters``.
    registry : pandas.DataFrame, optional
        Model-family registry; default :func:`scalingfit.registry.load_model_families`.

    Returns
    -------
    pandas.DataFrame
        One row per model x task x document: ``score`` = ``acc``, ``metric`` = "accuracy",
        ``n_classes`` = the number of choices, ``loss`` / ``coverage`` / ``logprob_correct``
        from the per-choice log-likelihoods and ``class_logprobs`` (JSON). ``class_ntokens`` is
        NA: the harness does not log it. When several runs (sample files with different
        timestamps) hold the same model and task, only the newest is read, with a warning.

    Raises
    ------
    DataValidationError
        No samples file, a task that is not multiple-choice, or an unknown model size.
    """
    files = _sample_files(Path(path))
    registry = _registry(registry)
    runs = _newest_runs([_run_info(f, model) for f in files])
    frames = [_read_file(run, family, n_params, registry) for run in runs]
    return pd.concat(frames, ignore_index=True)


def _sample_files(path: Path) -> list[Path]:
    files = [path] if path.is_file() else sorted(path.rglob("samples_*.jsonl"))
    if not files:
        raise DataValidationError(
            f"no lm-eval sample logs (samples_*.jsonl) under {str(path)!r}; run the harness "
            "with --log_samples --output_path DIR and pass DIR.")
    return files


def _registry(registry) -> pd.DataFrame:
    if registry is not None:
        return registry
    try:
        return load_model_families()
    except FileNotFoundError:
        return pd.DataFrame(columns=["family", "model", "n_params", "train_flops"])


def _harness_meta(samples_file: Path) -> dict:
    """``results_<timestamp>.json`` of the same run (same directory and timestamp), if any."""
    match = _SAMPLES.match(samples_file.name)
    candidates = [samples_file.with_name(f"results_{match['stamp']}.json")] if match else []
    candidates += sorted(samples_file.parent.glob("results_*.json"))
    for candidate in candidates:
        if candidate.exists():
            return _results_json(candidate)
    return {}


def _results_json(path: Path) -> dict:
    """A harness ``results_*.json``: a JSON object, or a clear error naming the file."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataValidationError(f"{str(path)!r} is not UTF-8 text; it is not an lm-eval "
                                  "results file.") from None
    except json.JSONDecodeError as err:
        raise DataValidationError(
            f"{str(path)!r}, line {err.lineno}: not valid JSON ({err.msg}); the file may be "
            "truncated. Re-run the harness, or remove the file.") from None
    if not isinstance(meta, dict):
        raise DataValidationError(
            f"{str(path)!r} holds a JSON {type(meta).__name__}, not the object an lm-eval "
            "results file is ({'results': ..., 'config': ...}).")
    return meta


def _run_info(path: Path, model) -> dict:
    """Which model, task and run (timestamp) one samples file belongs to."""
    meta = _harness_meta(path)
    match = _SAMPLES.match(path.name)
    task = match["task"] if match else path.stem
    hub_id = meta.get("model_name") or path.parent.name
    name = model or (Path(hub_id).name if Path(hub_id).exists() or hub_id.startswith("/")
                     else hub_id)
    return {"path": path, "meta": meta, "task": task, "hub_id": hub_id, "name": name,
            "stamp": match["stamp"] if match else ""}


def _newest_runs(runs: list) -> list:
    """One run per (model, task): the newest timestamp (the harness's stamps sort as text);
    warn once, naming the files left out, when a model was run on a task more than once."""
    newest: dict = {}
    for run in runs:
        key = (run["name"], run["task"])
        if key not in newest or (run["stamp"], str(run["path"])) > (
                newest[key]["stamp"], str(newest[key]["path"])):
            newest[key] = run
    kept = {id(run) for run in newest.values()}
    dropped = [run for run in runs if id(run) not in kept]
    if dropped:
        lines = [f"{r['path']} (kept {newest[(r['name'], r['task'])]['path'].name})"
                 for r in dropped[:5]]
        more = f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""
        warnings.warn(
            f"lm-eval logs hold more than one run of the same model and task; read only the "
            f"newest of each and ignored {len(dropped)} older samples file(s): "
            f"{'; '.join(lines)}{more}. To use another run, pass its samples file, or move the "
            "other logs out of the directory.", UserWarning, stacklevel=3)
    return [run for run in runs if id(run) in kept]


def _read_file(run: dict, family, n_params, registry) -> pd.DataFrame:
    path, task, name = run["path"], run["task"], run["name"]
    info = _model_info(name, run["hub_id"], family, n_params, registry, run["meta"])
    rows, seen = [], set()
    for line, sample in _samples(path):
        doc = _field(sample, "doc_id", path, line)
        if doc in seen:  # another filter of the same document
            continue
        seen.add(doc)
        rows.append({**info, "task": task, **_row(sample, path, line)})
    return to_frame(rows)


def _samples(path: Path):
    """(line number, sample object) of a samples file; failures name the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataValidationError(f"{str(path)!r} is not UTF-8 text; it is not an lm-eval "
                                  "samples file.") from None
    out = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            sample = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataValidationError(
                f"{path.name} line {number}: not valid JSON ({err.msg} at column {err.colno}); "
                "the file may be truncated. Re-run the harness for this task.") from None
        if not isinstance(sample, dict):
            raise DataValidationError(
                f"{path.name} line {number}: a JSON {type(sample).__name__}, not a sample "
                "object (lm-eval writes one object per line).")
        out.append((number, sample))
    if not out:
        raise DataValidationError(
            f"{str(path)!r} holds no samples (the file is empty): its model would silently "
            "drop out of the fit. Re-run the harness for this task, or remove the file.")
    return out


def _field(sample: dict, key: str, path: Path, line: int):
    if key not in sample:
        raise DataValidationError(
            f"{path.name} line {line}: the sample has no {key!r} (keys: {sorted(sample)[:8]}); "
            "this is not an lm-eval --log_samples file.")
    return sample[key]


def _model_info(name, hub_id, family, n_params, registry, meta) -> dict:
    """Family, size (argument > registry > harness count) and FLOPs of one model."""
    entry = lookup_model(hub_id, registry)
    count = n_params.get(name) if isinstance(n_params, dict) else n_params
    if count is not None:
        size, source = int(count), "argument"
    elif entry is not None:
        size, source = int(entry["n_params"]), "registry"
    elif meta.get("config", {}).get("model_num_parameters"):
        size, source = int(meta["config"]["model_num_parameters"]), "lm-eval"
    else:
        raise DataValidationError(
            f"the size of model {name!r} is unknown (not in the registry, not in the harness "
            "results file); pass n_params={...} with its parameter count.")
    flops = math.nan
    if entry is not None and pd.notna(entry.get("train_flops")):
        flops = float(entry["train_flops"])
    label = family or (entry["family"] if entry is not None else "custom")
    return {"family": label, "model": name, "n_params": size, "n_params_source": source,
            "flops": flops}


def _row(sample: dict, path: Path, line: int) -> dict:
    """Canonical metric columns of one multiple-choice sample."""
    if "acc" not in sample or not sample.get("filtered_resps"):
        raise DataValidationError(
            f"{path.name} line {line}: only multiple-choice samples (with 'acc' and "
            f"per-choice log-likelihoods) can be read; got metrics {sample.get('metrics')}.")
    logliks = _logliks(sample["filtered_resps"], path, line)
    answer = _answer(_field(sample, "target", path, line), len(logliks), path, line)
    stats = class_stats(logliks, answer)
    return {"example_id": str(sample["doc_id"]), "score": float(sample["acc"]),
            "metric": "accuracy", "n_classes": len(logliks), "loss": stats["loss"],
            "logprob_correct": stats["logprob_correct"], "coverage": stats["coverage"],
            "correct": bool(sample["acc"]), "class_logprobs": json.dumps(logliks)}


def _logliks(resps, path: Path, line: int) -> list:
    try:
        values = [float(_first(r)) for r in resps]
    except (TypeError, ValueError, IndexError):
        raise DataValidationError(
            f"{path.name} line {line}: 'filtered_resps' holds {str(resps)[:80]!r}, not "
            "per-choice log-likelihoods ([[loglik, is_greedy], ...]).") from None
    if not all(math.isfinite(v) or v == -math.inf for v in values):
        raise DataValidationError(
            f"{path.name} line {line}: 'filtered_resps' holds a NaN log-likelihood.")
    return values


def _answer(target, n_choices: int, path: Path, line: int) -> int:
    """The index of the correct choice: an int (or a digit string) within the choices."""
    if isinstance(target, bool) or not (
            isinstance(target, int) or (isinstance(target, str) and target.strip().isdigit())):
        raise DataValidationError(
            f"{path.name} line {line}: target {target!r} is not the index of a choice; "
            "only multiple-choice tasks whose target is the answer's index can be read.")
    answer = int(target)
    if not 0 <= answer < n_choices:
        raise DataValidationError(
            f"{path.name} line {line}: target {answer} is out of range for {n_choices} "
            "choices.")
    return answer


def _first(resp):
    """The log-likelihood of one response: ``[ll, greedy]``, ``[[ll, greedy]]`` or ``ll``."""
    while isinstance(resp, (list, tuple)):
        resp = resp[0]
    return resp
