"""Resumable result storage: one Parquet file per model, written atomically.

Layout of an output directory ``OUT``::

    OUT/<safe-model-name>.parquet        finished rows of a model (any number of tasks)
    OUT/.partial/<safe-model-name>.jsonl rows of finished batches of a model still running

Every scored batch is appended to the partial file and flushed to disk, so a killed run loses at
most the batch in flight. When a model finishes, its partial rows are merged into its Parquet file
(written to a temporary file, then ``os.replace``) and the partial file is removed. Rows are keyed
by ``(task, example_id)``: a re-run skips the keys already stored and never duplicates them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

__all__ = ["ResultStore", "read_results_dir", "safe_name", "COLUMNS"]

#: canonical per-example columns and their dtypes, in output order
COLUMNS = {
    "family": "string", "model": "string", "n_params": "int64", "n_params_source": "string",
    "flops": "float64", "task": "string", "example_id": "string", "score": "float64",
    "metric": "string", "loss": "float64", "logprob_correct": "float64",
    "coverage": "float64", "correct": "boolean", "correct_per_token": "boolean",
    "logodds_diff": "float64", "class_logprobs": "string", "class_ntokens": "string",
    "other_class_logprobs": "string", "other_class_ntokens": "string",
}
_KEY = ["task", "example_id"]


def safe_name(model: str) -> str:
    """File-name-safe model name: ``EleutherAI/pythia-70m`` -> ``EleutherAI__pythia-70m``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", model.replace("/", "__"))


def to_frame(rows) -> pd.DataFrame:
    """Canonical DataFrame from row dicts (missing columns become NA)."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(COLUMNS))
    return frame.astype(COLUMNS)


class ResultStore:
    """Per-model Parquet files plus append-only partial files in one directory.

    Parameters
    ----------
    path : str or pathlib.Path
        Output directory; created if missing.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.partial_dir = self.path / ".partial"
        self.partial_dir.mkdir(parents=True, exist_ok=True)

    def final_path(self, model: str) -> Path:
        return self.path / f"{safe_name(model)}.parquet"

    def partial_path(self, model: str) -> Path:
        return self.partial_dir / f"{safe_name(model)}.jsonl"

    def read(self, model: str) -> pd.DataFrame:
        """All stored rows of ``model``: finished first, then partial, without duplicate keys."""
        final = self.final_path(model)
        frames = [pd.read_parquet(final)] if final.exists() else []
        frames.append(to_frame(_read_jsonl(self.partial_path(model))))
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return frame.drop_duplicates(_KEY, keep="first").reset_index(drop=True)

    def done(self, model: str, task: str) -> set:
        """Example ids of ``task`` already stored for ``model``."""
        frame = self.read(model)
        return set(frame.loc[frame["task"] == task, "example_id"])

    def append(self, model: str, rows) -> None:
        """Append the rows of one finished batch to the model's partial file, durably."""
        with self.partial_path(model).open("a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(row) + "\n" for row in rows))
            fh.flush()
            os.fsync(fh.fileno())

    def finalize(self, model: str, order=None) -> pd.DataFrame:
        """Merge partial rows into the model's Parquet file atomically; return all its rows.

        Parameters
        ----------
        order : dict, optional
            ``{(task, example_id): position}`` used to sort rows (others keep their place).
        """
        frame = self.read(model)
        if not self.partial_path(model).exists():
            return frame  # nothing new: the Parquet file is already final
        if order:
            rank = [order.get(key, -1) for key in zip(frame["task"], frame["example_id"])]
            frame = (frame.assign(_rank=rank).sort_values(["task", "_rank"], kind="stable")
                     .drop(columns="_rank").reset_index(drop=True))
        final = self.final_path(model)
        tmp = final.with_name(final.name + ".tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, final)
        self.partial_path(model).unlink(missing_ok=True)
        return frame


def _read_jsonl(path: Path) -> list:
    """Rows of a partial file; a torn last line (killed mid-write) is ignored."""
    if not path.exists():
        return []
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


def read_results_dir(path, *, include_partial: bool = False) -> pd.DataFrame:
    """Read a runner output directory back into one per-example DataFrame.

    Parameters
    ----------
    path : str or pathlib.Path
        Directory written by :func:`scalingfit.runner.evaluate` or ``scalingfit run``.
    include_partial : bool, default False
        Also return rows of models whose run has not finished.

    Returns
    -------
    pandas.DataFrame
        The canonical columns (:data:`COLUMNS`), one row per model x task x example.
    """
    path = Path(path)
    frames = [pd.read_parquet(f) for f in sorted(path.glob("*.parquet"))]
    if include_partial:
        frames += [to_frame(_read_jsonl(f)) for f in sorted(path.glob(".partial/*.jsonl"))]
    if not frames:
        return to_frame([])
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates(["model"] + _KEY, keep="first").reset_index(drop=True)
