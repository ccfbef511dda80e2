"""Task loading: Inverse Scaling Prize formats, validated before any model is loaded.

Three task types are read from a CSV or JSONL file, or from a Hugging Face dataset id:

* ``classification`` -- ``prompt``, ``classes``, ``answer_index``;
* ``sequence_prob`` -- ``prompt``, ``completion``;
* ``logodds`` -- ``prompt``, ``other_prompt``, ``classes`` (two), ``answer_index``.

Every row is checked at the door; a malformed row fails with its row number (counted from 0,
the same number that becomes its ``example_id`` unless the task has an ``id`` column).
"""

from __future__ import annotations

import ast
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import DataValidationError
from ..records import class_stats

__all__ = ["Task", "TaskType", "load_task", "load_tasks", "item_hashes", "TASK_TYPES"]


def _classification_requests(ex) -> list[tuple[str, list[str]]]:
    return [(ex.prompt, list(ex.classes))]


def _sequence_requests(ex) -> list[tuple[str, list[str]]]:
    return [(ex.prompt, [ex.completion])]


def _logodds_requests(ex) -> list[tuple[str, list[str]]]:
    return [(ex.prompt, list(ex.classes)), (ex.other_prompt, list(ex.classes))]


def _classification_metrics(ex, scored) -> dict:
    (logprobs, ntokens), = scored
    per_token = np.asarray(logprobs) / np.maximum(np.asarray(ntokens), 1)
    stats = class_stats(logprobs, ex.answer_index)
    return {"score": float(stats["correct"]), "metric": "accuracy",
            "n_classes": len(logprobs), **stats,
            "correct_per_token": bool(np.argmax(per_token) == ex.answer_index),
            "class_logprobs": json.dumps(logprobs), "class_ntokens": json.dumps(ntokens)}


def _sequence_metrics(ex, scored) -> dict:
    ([logprob], [ntokens]), = scored
    return {"score": float(logprob), "metric": "neg_loss", "loss": -float(logprob),
            "logprob_correct": float(logprob), "class_logprobs": json.dumps([logprob]),
            "class_ntokens": json.dumps([ntokens])}


def _logodds_metrics(ex, scored) -> dict:
    (logprobs, ntokens), (other_logprobs, other_ntokens) = scored
    diff = (logprobs[0] - logprobs[1]) - (other_logprobs[0] - other_logprobs[1])
    diff = -diff if ex.answer_index == 1 else diff
    stats = class_stats(other_logprobs, ex.answer_index)
    return {"score": float(diff > 0), "metric": "accuracy", "n_classes": len(logprobs),
            "logodds_diff": float(diff),
            "correct": stats["correct"], "coverage": stats["coverage"],
            "class_logprobs": json.dumps(logprobs), "class_ntokens": json.dumps(ntokens),
            "other_class_logprobs": json.dumps(other_logprobs),
            "other_class_ntokens": json.dumps(other_ntokens)}


@dataclass(frozen=True)
class TaskType:
    """One task format: its columns, what to score, and how scores become metrics.

    Attributes
    ----------
    name : str
    columns : tuple of str
        Required columns.
    requests : callable
        ``requests(example) -> [(context, [continuation, ...]), ...]``.
    metrics : callable
        ``metrics(example, scored) -> dict`` where ``scored`` holds, per request,
        ``(summed log-probs, token counts)`` of its continuations.
    """

    name: str
    columns: tuple
    requests: object
    metrics: object


#: the task formats of the Inverse Scaling Prize, one record each
TASK_TYPES = {t.name: t for t in (
    TaskType("classification", ("prompt", "classes", "answer_index"),
             _classification_requests, _classification_metrics),
    TaskType("sequence_prob", ("prompt", "completion"), _sequence_requests, _sequence_metrics),
    TaskType("logodds", ("prompt", "other_prompt", "classes", "answer_index"),
             _logodds_requests, _logodds_metrics),
)}
_FILE_SUFFIXES = (".csv", ".jsonl", ".json")


@dataclass(frozen=True)
class Task:
    """A validated task, ready to score.

    Attributes
    ----------
    name : str
        Task name written to the ``task`` column (default: the file's stem).
    type : str
        One of :data:`TASK_TYPES`.
    examples : pandas.DataFrame
        One row per example: ``example_id`` (str) plus the type's columns; ``classes`` holds
        Python lists of str and ``answer_index`` ints.
    """

    name: str
    type: str
    examples: pd.DataFrame

    @property
    def spec(self) -> TaskType:
        """The :class:`TaskType` record of this task."""
        return TASK_TYPES[self.type]

    def __len__(self) -> int:
        return len(self.examples)

    def __repr__(self) -> str:
        return f"<Task name={self.name!r} type={self.type!r} examples={len(self)}>"


def load_task(source, *, task_type: str | None = None, name: str | None = None,
              split: str = "train") -> Task:
    """Read and validate a task.

    Parameters
    ----------
    source : str, pathlib.Path, pandas.DataFrame or Task
        A ``.csv`` / ``.jsonl`` / ``.json`` (JSON lines) file, a Hugging Face dataset id
        (``owner/name``, needs the ``datasets`` package and a network), a DataFrame, or a
        :class:`Task` (returned unchanged).
    task_type : {"classification", "sequence_prob", "logodds"}, optional
        Default: inferred from the columns (``completion`` -> sequence_prob,
        ``other_prompt`` -> logodds, else classification).
    name : str, optional
        Task name for the ``task`` column. Default: the file stem or dataset id.
    split : str, default "train"
        Dataset split, for Hugging Face dataset ids only.

    Returns
    -------
    Task

    Raises
    ------
    DataValidationError
        A required column is missing, or a row is malformed (the message gives the row number).
    """
    if isinstance(source, Task):
        return source
    frame, default_name = _read_source(source, split)
    if len(frame) == 0:
        where = "table" if isinstance(source, pd.DataFrame) else f"{str(source)!r}"
        raise DataValidationError(f"task {where} has no rows; give at least one example.")
    task_type = task_type or _infer_type(frame)
    if task_type not in TASK_TYPES:
        raise DataValidationError(
            f"task_type must be one of {sorted(TASK_TYPES)}; got {task_type!r}.")
    examples = _validate(frame, task_type)
    if "classes" in examples:
        _warn_leading_space(examples)
    return Task(name=name or default_name, type=task_type, examples=examples)


def load_tasks(sources, *, task_type: str | None = None, split: str = "train") -> list[Task]:
    """Read and validate several tasks: files, directories of task files, tables or ids.

    Parameters
    ----------
    sources : str, pathlib.Path, pandas.DataFrame, Task, or a list of them
        A directory stands for every ``.csv`` / ``.jsonl`` / ``.json`` file directly in it, in
        name order.
    task_type, split
        As in :func:`load_task`, for every task.

    Returns
    -------
    list of Task
        In the order given. Every task is validated before this returns.

    Raises
    ------
    DataValidationError
        A task is malformed, a directory holds no task file, or two tasks share a name.
    """
    if isinstance(sources, (str, Path, pd.DataFrame, Task)):
        sources = [sources]
    tasks = [load_task(s, task_type=task_type, split=split) for s in _expand(sources)]
    if not tasks:
        raise DataValidationError("no tasks given; pass at least one task file or directory.")
    seen: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if task.name in seen:
            raise DataValidationError(
                f"two tasks are both named {task.name!r} (task {seen[task.name]} and task {i}): "
                "task names key the output tables; rename one file.")
        seen[task.name] = i
    return tasks


def _expand(sources) -> list:
    """Sources with each directory replaced by its task files, in name order."""
    out = []
    for source in sources:
        if isinstance(source, (str, Path)) and Path(source).is_dir():
            files = sorted(p for p in Path(source).iterdir()
                           if p.is_file() and p.suffix.lower() in _FILE_SUFFIXES)
            if not files:
                raise DataValidationError(
                    f"task directory {str(source)!r} holds no task file "
                    f"({', '.join(_FILE_SUFFIXES)}); give files or a directory of them.")
            out += files
        else:
            out.append(source)
    return out


def _read_source(source, split: str) -> tuple[pd.DataFrame, str]:
    """Return the raw table and a default task name."""
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), "task"
    path = Path(source)
    if path.exists():
        return _read_file(path), path.name.split(".")[0]
    if path.suffix.lower() in _FILE_SUFFIXES or str(source).count("/") != 1:
        raise DataValidationError(
            f"task file {str(source)!r} does not exist; give a .csv or .jsonl file, or a "
            "Hugging Face dataset id such as 'inverse-scaling/NeQA'.")
    return _read_hub_dataset(str(source), split), str(source).split("/")[-1]


def _read_file(path: Path) -> pd.DataFrame:
    """Read a CSV or JSON-lines file, keeping every cell as read (no type guessing)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=object, keep_default_na=False)
    if suffix in (".jsonl", ".json"):
        # object columns: a row missing a key must not turn the others' ints into floats
        return pd.DataFrame(_read_json_lines(path), dtype=object)
    raise DataValidationError(
        f"task file {str(path)!r} has suffix {suffix!r}; expected one of {list(_FILE_SUFFIXES)}.")


def _read_json_lines(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; a line that is not one object is an error."""
    records = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataValidationError(
                    f"task file {str(path)!r} line {number}, column {err.colno}: not valid "
                    f"JSON ({err.msg}); each line must be one JSON object such as "
                    '{"prompt": "...", "classes": [" a", " b"], "answer_index": 0}.') from err
            if not isinstance(record, dict):
                raise DataValidationError(
                    f"task file {str(path)!r} line {number}: expected a JSON object "
                    f"({{\"prompt\": ...}}); got a JSON {_json_kind(record)}. Each line must be "
                    "one object with the task's columns as keys.")
            records.append(record)
    return records


def _json_kind(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _read_hub_dataset(dataset_id: str, split: str) -> pd.DataFrame:
    """Load a Hugging Face dataset split as a DataFrame (needs ``datasets`` and a network)."""
    try:
        import datasets
    except ImportError as err:
        raise ImportError(
            f"loading the Hugging Face dataset {dataset_id!r} needs the 'datasets' package: "
            "pip install datasets (or download the task as CSV/JSONL).") from err
    return datasets.load_dataset(dataset_id, split=split).to_pandas()


def _infer_type(frame: pd.DataFrame) -> str:
    if "completion" in frame:
        return "sequence_prob"
    if "other_prompt" in frame:
        return "logodds"
    return "classification"


def _validate(frame: pd.DataFrame, task_type: str) -> pd.DataFrame:
    """Check columns and every row; return the canonical examples table."""
    required = TASK_TYPES[task_type].columns
    missing = [c for c in required if c not in frame]
    if missing:
        raise DataValidationError(
            f"{task_type} task is missing column {missing[0]!r}; got {list(frame.columns)}. "
            f"A {task_type} task needs columns {list(required)}.")
    out = pd.DataFrame({"example_id": _example_ids(frame)})
    for col in ("prompt", "other_prompt", "completion"):
        if col in required:
            out[col] = [_text(v, col, i) for i, v in enumerate(frame[col])]
    if "classes" in required:
        out["classes"] = [_classes(v, i, task_type) for i, v in enumerate(frame["classes"])]
        out["answer_index"] = [_answer_index(v, len(c), i) for i, (v, c) in
                               enumerate(zip(frame["answer_index"], out["classes"]))]
    out["item_hash"] = item_hashes(out, task_type)
    return out


def item_hashes(examples: pd.DataFrame, task_type: str) -> list[str]:
    """Content hash of each example (its type's columns), part of the runner's resume key: an
    item edited in place gets a new hash and is scored again."""
    columns = [c for c in TASK_TYPES[task_type].columns if c in examples]
    hashes = []
    for values in zip(*(examples[c] for c in columns)):
        payload = json.dumps([task_type, *values], ensure_ascii=False)
        hashes.append(hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16])
    return hashes


def _example_ids(frame: pd.DataFrame) -> list[str]:
    """Stable example ids: the ``id`` column when present (must be unique), else the row index."""
    if "id" not in frame:
        return [str(i) for i in range(len(frame))]
    ids = [str(v) for v in frame["id"]]
    seen: dict[str, int] = {}
    for i, v in enumerate(ids):
        if v in seen:
            raise DataValidationError(
                f"task row {i}: id {v!r} repeats row {seen[v]}; ids must be unique.")
        seen[v] = i
    return ids


def _missing(value) -> bool:
    """A cell left out of a JSON row, null, NaN, or an empty CSV cell."""
    if isinstance(value, str):
        return not value.strip()
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _text(value, column: str, row: int) -> str:
    if not isinstance(value, str) and _missing(value):
        raise DataValidationError(
            f"task row {row}: {column!r} is missing; give it as text (\"\" if it is empty).")
    if not isinstance(value, str):
        raise DataValidationError(
            f"task row {row}: {column!r} must be text; got {type(value).__name__} {value!r}.")
    return value


def _classes(value, row: int, task_type: str) -> list[str]:
    """Parse a classes cell (list, or a string holding a Python/JSON list) and check it."""
    if _missing(value):
        raise DataValidationError(
            f"task row {row}: 'classes' is missing; give a non-empty list of strings, "
            "e.g. [\" yes\", \" no\"].")
    parsed = value
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError) as err:
            raise DataValidationError(
                f"task row {row}: 'classes' must be a list of strings; could not parse "
                f"{value[:60]!r}.") from err
    if hasattr(parsed, "tolist"):
        parsed = parsed.tolist()
    if not isinstance(parsed, (list, tuple)) or not parsed:
        raise DataValidationError(
            f"task row {row}: 'classes' must be a non-empty list of strings; got {value!r}.")
    if not all(isinstance(c, str) and c for c in parsed):
        raise DataValidationError(
            f"task row {row}: every class must be a non-empty string; got {list(parsed)!r}.")
    blank = [i for i, c in enumerate(parsed) if not c.strip()]
    if blank:
        raise DataValidationError(
            f"task row {row}: class {blank[0]} is only whitespace ({parsed[blank[0]]!r}); "
            "a class must hold text to score (the leading space goes in front of it, e.g. "
            "\" yes\").")
    if task_type == "logodds" and len(parsed) != 2:
        raise DataValidationError(
            f"task row {row}: a logodds task needs exactly 2 classes; got {len(parsed)}.")
    return list(parsed)


def _answer_index(value, n_classes: int, row: int) -> int:
    if _missing(value):
        raise DataValidationError(
            f"task row {row}: 'answer_index' is missing; give the 0-based index "
            f"(0..{n_classes - 1}) of the correct one of its {n_classes} classes.")
    index = None
    if not isinstance(value, bool):
        try:
            index = int(str(value).strip())
        except ValueError:
            # an integral float (3.0: a column that held a missing value elsewhere) is an index
            try:
                number = float(str(value).strip())
                index = int(number) if number.is_integer() else None
            except (ValueError, OverflowError):
                index = None
    if index is None or not 0 <= index < n_classes:
        raise DataValidationError(
            f"task row {row}: answer_index must be an integer in 0..{n_classes - 1} "
            f"for its {n_classes} classes; got {value!r}.")
    return index


def _warn_leading_space(examples: pd.DataFrame) -> None:
    """Warn once, with a count, about classes with no space between them and a prompt they
    follow (for logodds, ``prompt`` or ``other_prompt``); each class string counts once."""
    prompts = [examples[c] for c in ("prompt", "other_prompt") if c in examples]
    bare = sum(not c[0].isspace()
               for ps, cs in zip(zip(*prompts), examples["classes"])
               if any(not p[-1:].isspace() for p in ps) for c in cs)
    if bare:
        warnings.warn(
            f"{bare} class string(s) do not start with a space; with most tokenizers "
            "' Paris' and 'Paris' are different tokens. Prize-format classes usually start "
            "with a space (a trailing space on the prompt is moved onto the class).",
            UserWarning, stacklevel=3)
