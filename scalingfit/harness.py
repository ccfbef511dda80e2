"""Read what evaluation harnesses write into the canonical long table.

* :func:`read_lm_eval_results` -- lm-evaluation-harness aggregated ``results_*.json`` (one file
  per model, many tasks per file), in the v0.4 layout (``"acc,none"`` / ``"acc_stderr,none"``,
  ``"n-samples"``, ``"higher_is_better"``, ``"config": {"model_args": ...,
  "model_num_parameters": ...}``) and the v0.3 layout (``"acc"`` / ``"acc_stderr"``);
* :func:`read_inspect_logs` -- Inspect AI eval logs (``.eval`` or ``.json``), through
  ``inspect_ai``'s own log reader (the ``inspect`` extra): one row per sample and scorer where
  the log holds samples, else the scorer's aggregate with its stderr.

Both return rows :func:`scalingfit.load_results` validates (``family, model, n_params, task,
metric, score`` with ``se`` / ``n`` for aggregates, ``example_id`` per sample). A model's size
comes from a user mapping (``sizes={"model": n_params}``), else the model-family registry, else
the harness's own parameter count; an unknown size is an error naming the model. A malformed
file is a :class:`~scalingfit.exceptions.DataValidationError` naming the file and the key.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from pathlib import Path

import pandas as pd

from .exceptions import DataValidationError, OptionError
from .registry import load_model_families, lookup_model

__all__ = ["read_lm_eval_results", "read_inspect_logs"]

#: keys of a task's entry in lm-eval ``results`` that are not metrics
_NOT_METRICS = {"alias", "name", "sample_len", "sample_count", "samples", " ", ""}


# ------------------------------------------------------------------------------ model sizes
def _registry(registry) -> pd.DataFrame:
    if registry is not None:
        return registry
    try:
        return load_model_families()
    except FileNotFoundError:
        return pd.DataFrame(columns=["family", "model", "n_params", "train_flops"])


def _model_info(name: str, candidates, sizes, family, registry, harness_count, where) -> dict:
    """Family, size (user mapping > registry > the harness's count) and FLOPs of one model."""
    if sizes is not None and not isinstance(sizes, dict):
        raise OptionError(f"sizes must be a dict {{model: n_params}}; got {type(sizes).__name__}.")
    entry = next((e for e in (lookup_model(c, registry) for c in candidates) if e is not None),
                 None)
    given = (sizes or {}).get(name)
    if given is not None:
        size, source = given, "argument"
    elif entry is not None:
        size, source = entry["n_params"], "registry"
    elif harness_count:
        size, source = harness_count, "harness"
    else:
        raise DataValidationError(
            f"{where}: the size of model {name!r} is unknown (not in sizes=, not in the model "
            "registry, and the file records no parameter count); pass sizes={"
            f"{name!r}: <parameters>}}.")
    flops = math.nan
    if entry is not None and pd.notna(entry.get("train_flops")):
        flops = float(entry["train_flops"])
    label = (family.get(name) if isinstance(family, dict) else family) or (
        entry["family"] if entry is not None else "custom")
    return {"family": str(label), "model": name, "n_params": float(size),
            "n_params_source": source, "flops": flops}


# ------------------------------------------------------------------------------ lm-eval
def _results_files(path: Path) -> list[Path]:
    if not path.exists():
        raise DataValidationError(f"results path {str(path)!r} does not exist.")
    files = [path] if path.is_file() else sorted(path.rglob("results_*.json"))
    if not files:
        raise DataValidationError(
            f"no lm-eval results files (results_*.json) under {str(path)!r}; run the harness "
            "with --output_path DIR and pass DIR (or one results file).")
    return files


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataValidationError(f"lm-eval results file {str(path)!r} is not UTF-8 "
                                  "text.") from None
    except json.JSONDecodeError as err:
        raise DataValidationError(
            f"lm-eval results file {str(path)!r}, line {err.lineno}: not valid JSON ({err.msg} "
            f"at column {err.colno}); the file may be truncated.") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        got = list(data)[:8] if isinstance(data, dict) else type(data).__name__
        raise DataValidationError(
            f"lm-eval results file {str(path)!r} has no 'results' object (got {got}); expected "
            'the harness\'s results_<timestamp>.json: {"results": {task: {"acc,none": ...}}, '
            '"config": {"model_args": "pretrained=...", ...}}.')
    return data


def _model_name(data: dict, path: Path) -> str:
    """The model's hub id: ``model_name`` (v0.4), else ``pretrained=`` of ``model_args``."""
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise DataValidationError(f"lm-eval results file {str(path)!r}: key 'config' is not an "
                                  f"object (got {type(config).__name__}).")
    args = config.get("model_args")
    if isinstance(args, dict):
        args = ",".join(f"{k}={v}" for k, v in args.items())
    parsed = dict(part.split("=", 1) for part in str(args or "").split(",") if "=" in part)
    name = data.get("model_name") or parsed.get("pretrained") or parsed.get("model") or \
        parsed.get("engine")
    if not name:
        raise DataValidationError(
            f"lm-eval results file {str(path)!r}: cannot tell the model (no 'model_name', and "
            f"'config.model_args' = {args!r} has no pretrained=...). Pass one file per model "
            "as the harness writes them.")
    return str(name)


def _number(value, path, where):
    """A metric value as float; 'N/A' (the harness's missing stderr) and None are NaN."""
    if value is None or (isinstance(value, str) and value.strip().upper() in ("N/A", "NAN", "")):
        return math.nan
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise DataValidationError(
        f"lm-eval results file {str(path)!r}, key {where!r}: expected a number, got "
        f"{value!r}.")


def _split_metric(key: str) -> tuple:
    name, _, filt = key.partition(",")
    return name, filt


def _metric_rows(task: str, entry, data: dict, path: Path) -> list[dict]:
    if not isinstance(entry, dict):
        raise DataValidationError(
            f"lm-eval results file {str(path)!r}, key 'results.{task}': expected an object of "
            f"metrics, got {type(entry).__name__}.")
    n = (data.get("n-samples") or {}).get(task) or {}
    n = n.get("effective", n.get("original")) if isinstance(n, dict) else None
    if n is None:
        n = entry.get("sample_len") if isinstance(entry.get("sample_len"), int) else None
    hib = (data.get("higher_is_better") or {}).get(task) or {}
    rows = []
    for key, value in entry.items():
        name, filt = _split_metric(key)
        if key in _NOT_METRICS or name in _NOT_METRICS or name.endswith("_stderr"):
            continue
        score = _number(value, path, f"results.{task}.{key}")
        if math.isnan(score):
            continue
        stderr_key = f"{name}_stderr,{filt}" if filt else f"{name}_stderr"
        se = _number(entry.get(stderr_key), path, f"results.{task}.{stderr_key}")
        rows.append({"task": task, "metric": name if filt in ("", "none") else key,
                     "score": score, "se": se, "n": float(n) if n else math.nan,
                     "higher_is_better": hib.get(name) if isinstance(hib, dict) else None})
    return rows


def _group_names(data: dict) -> set:
    groups = set(data.get("groups") or {})
    groups |= {g for g, subs in (data.get("group_subtasks") or {}).items() if subs}
    return groups


def read_lm_eval_results(path, *, sizes: dict | None = None, family=None,
                         registry: pd.DataFrame | None = None,
                         include_groups: bool = False) -> pd.DataFrame:
    """Read lm-evaluation-harness aggregated results (``results_*.json``) as aggregated rows.

    Parameters
    ----------
    path : str or pathlib.Path
        One results file, or a directory searched recursively for ``results_*.json`` (the
        harness writes one per model and run under ``--output_path``).
    sizes : dict, optional
        ``{model: n_params}``; wins over the registry and the harness's
        ``config.model_num_parameters``.
    family : str or dict, optional
        Family label, or ``{model: family}``. Default: the registry family, else ``"custom"``.
    registry : pandas.DataFrame, optional
        Model-family registry (default :func:`scalingfit.runner.load_model_families`).
    include_groups : bool
        Keep group aggregates (``mmlu`` beside its subtasks). Default False: a group would count
        its subtasks' evidence twice in a screen.

    Returns
    -------
    pandas.DataFrame
        One row per model x task x metric: ``family, model, n_params, n_params_source, flops,
        task, metric, score, se, n, higher_is_better, source``. ``metric`` is the harness's name
        (``acc``, ``acc_norm``, ...; ``exact_match,strict-match`` keeps a filter other than
        ``none``); ``se`` is its ``_stderr`` (NaN when the harness wrote ``N/A``); ``n`` the
        task's effective sample count (v0.4; NaN in v0.3). When two files hold the same model
        and task, the later file (by name: the harness's timestamps sort as text) is kept, with
        a warning.

    Raises
    ------
    DataValidationError
        No results file; a file that is not JSON, lacks ``results`` or the model's name, holds
        a metric that is not a number; or a model of unknown size.
    """
    files = _results_files(Path(path))
    registry = _registry(registry)
    rows, seen, replaced = [], {}, []
    for file in files:
        data = _load_json(file)
        name = _model_name(data, file)
        count = (data.get("config") or {}).get("model_num_parameters")
        info = _model_info(name, [name], sizes, family, registry, count,
                           f"lm-eval results file {str(file)!r}")
        groups = set() if include_groups else _group_names(data)
        for task, entry in data["results"].items():
            if task in groups:
                continue
            for row in _metric_rows(task, entry, data, file):
                key = (name, task, row["metric"])
                if key in seen:
                    replaced.append(f"{name} / {task} ({seen[key][1].name} -> {file.name})")
                    rows[seen[key][0]] = None
                seen[key] = (len(rows), file)
                rows.append({**info, **row, "source": file.name})
    if replaced:
        warnings.warn(f"lm-eval results hold {len(replaced)} model x task x metric more than "
                      f"once; kept the later file: {'; '.join(replaced[:3])}.", UserWarning,
                      stacklevel=2)
    rows = [r for r in rows if r is not None]
    if not rows:
        raise DataValidationError(f"lm-eval results under {str(path)!r} hold no numeric "
                                  "metrics.")
    return _frame(rows)


def _frame(rows: list) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows)
    if "higher_is_better" in df and df["higher_is_better"].isna().all():
        df = df.drop(columns="higher_is_better")
    for col in ("se", "n"):
        if col in df and df[col].isna().all():
            df = df.drop(columns=col)
    return df


# ------------------------------------------------------------------------------ Inspect AI
def _inspect_log_api():
    try:
        from inspect_ai.log import list_eval_logs, read_eval_log
        from inspect_ai.scorer import value_to_float
    except ImportError:
        raise OptionError(
            "format='inspect' reads Inspect AI logs with inspect_ai's own reader, which is not "
            "installed; install the extra: pip install 'scalingfit[inspect]'.") from None
    return list_eval_logs, read_eval_log, value_to_float()


def _inspect_files(path: Path, list_eval_logs) -> list:
    if not path.exists():
        raise DataValidationError(f"results path {str(path)!r} does not exist.")
    if path.is_file():
        return [path]
    files = sorted(str(info.name) for info in list_eval_logs(str(path)))
    if not files:
        raise DataValidationError(
            f"no Inspect AI logs (.eval or .json) under {str(path)!r}; pass the --log-dir of "
            "`inspect eval`, or one log file.")
    return files


def _read_log(file, read_eval_log):
    try:
        return read_eval_log(file)
    except Exception as err:        # inspect_ai raises bare exceptions on a corrupt log
        raise DataValidationError(
            f"Inspect AI log {str(file)!r} cannot be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); it may be truncated or not an "
            "Inspect log.") from None


def _sample_rows(log, info, task, to_float, where) -> list[dict]:
    """One row per sample and scorer (epochs averaged)."""
    acc: dict = {}
    for sample in log.samples:
        for scorer, score in (sample.scores or {}).items():
            try:
                value = to_float(score.value)
            except (TypeError, ValueError):
                raise DataValidationError(
                    f"{where}, sample {sample.id!r}: scorer {scorer!r} gave {score.value!r}, "
                    "which is not a number or a correct/incorrect grade.") from None
            acc.setdefault((scorer, str(sample.id)), []).append(float(value))
    return [{**info, "task": task, "metric": scorer, "example_id": sid,
             "score": sum(v) / len(v)} for (scorer, sid), v in acc.items()]


def _aggregate_rows(log, info, task, where) -> list[dict]:
    """The scorers' aggregate (accuracy or mean) with its stderr, when there are no samples."""
    scores = getattr(log.results, "scores", None) if log.results is not None else None
    if not scores:
        raise DataValidationError(
            f"{where}: the log holds neither samples nor scores (status {log.status!r}); was the "
            "evaluation run to the end?")
    n = log.results.completed_samples or log.results.total_samples
    rows = []
    for s in scores:
        metrics = {k: m.value for k, m in s.metrics.items()}
        name = next((k for k in ("accuracy", "mean") if k in metrics),
                    next((k for k in metrics if k != "stderr"), None))
        if name is None:
            continue
        rows.append({**info, "task": task, "metric": s.name, "score": float(metrics[name]),
                     "se": float(metrics["stderr"]) if "stderr" in metrics else math.nan,
                     "n": float(n) if n else math.nan})
    return rows


def read_inspect_logs(path, *, sizes: dict | None = None, family=None,
                      registry: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read Inspect AI eval logs (``inspect_ai.log.read_eval_log``) as the canonical table.

    Parameters
    ----------
    path : str or pathlib.Path
        One log file (``.eval`` or ``.json``) or a log directory (``list_eval_logs``).
    sizes, family, registry
        As in :func:`read_lm_eval_results`. The model is the log's ``eval.model`` without the
        provider prefix (``hf/EleutherAI/pythia-70m`` -> ``EleutherAI/pythia-70m``); ``sizes``
        may use either spelling.

    Returns
    -------
    pandas.DataFrame
        Per sample where the log holds samples: ``family, model, n_params, ..., task, metric
        (the scorer's name), example_id, score`` (epochs averaged; 'C'/'I' grades as 1/0 by
        ``inspect_ai.scorer.value_to_float``). Otherwise one aggregated row per scorer with
        ``score`` (its accuracy or mean), ``se`` (its stderr) and ``n`` (samples completed).

    Raises
    ------
    OptionError
        ``inspect_ai`` is not installed (the ``inspect`` extra).
    DataValidationError
        No log, an unreadable log, a log with neither samples nor scores, a score that is not a
        number, or a model of unknown size.
    """
    list_eval_logs, read_eval_log, to_float = _inspect_log_api()
    registry = _registry(registry)
    rows = []
    for file in _inspect_files(Path(path), list_eval_logs):
        log = _read_log(file, read_eval_log)
        where = f"Inspect AI log {str(file)!r}"
        full = str(log.eval.model)
        short = full.split("/", 1)[1] if "/" in full else full
        lookup = dict(sizes or {})
        if full in lookup and short not in lookup:
            lookup[short] = lookup[full]
        fam = {short: family.get(full, family.get(short))} if isinstance(family, dict) \
            else family
        info = _model_info(short, [short, full], lookup, fam, registry, None, where)
        task = str(log.eval.task).split("/")[-1]
        rows += (_sample_rows(log, info, task, to_float, where) if log.samples
                 else _aggregate_rows(log, info, task, where))
    if not rows:
        raise DataValidationError(f"Inspect AI logs under {str(path)!r} hold no scores.")
    return _frame(rows)
