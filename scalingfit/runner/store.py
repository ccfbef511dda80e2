"""Resumable result storage: one Parquet file per model, written atomically.

Layout of an output directory ``OUT``::

    OUT/<safe-model-name>.parquet        finished rows of a model (any number of tasks)
    OUT/.partial/<safe-model-name>.jsonl rows of finished batches of a model still running

Every scored batch is appended to the partial file and flushed to disk, so a killed run loses at
most the batch in flight. A kill that lands mid-write leaves a torn last line without its newline;
the next append first cuts the file back to its last complete line, so the torn row (whose
example is re-scored) never swallows the rows after it. When a model finishes, its partial rows are
merged into its Parquet file (written to a temporary file, then ``os.replace``) and the partial
file is removed. Rows are keyed by ``(task, example_id)``: a re-run skips the keys already stored
and never duplicates them.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import pandas as pd

__all__ = ["ResultStore", "read_results_dir", "safe_name", "COLUMNS"]

#: canonical per-example columns and their dtypes, in output order
COLUMNS = {
    "family": "string", "model": "string", "n_params": "int64", "n_params_source": "string",
    "flops": "float64", "task": "string", "example_id": "string", "score": "float64",
    "metric": "string", "n_classes": "Int64", "loss": "float64", "logprob_correct": "float64",
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


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """A stored frame with the canonical columns (files written before a column was added get
    it as NA) in canonical order, then any others."""
    extra = [c for c in frame.columns if c not in COLUMNS]
    frame = frame.reindex(columns=list(COLUMNS) + extra)
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
        frames = [_conform(pd.read_parquet(final))] if final.exists() else []
        frames.append(to_frame(_read_jsonl(self.partial_path(model))))
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return frame.drop_duplicates(_KEY, keep="first").reset_index(drop=True)

    def done(self, model: str, task: str) -> set:
        """Example ids of ``task`` already stored for ``model``."""
        frame = self.read(model)
        return set(frame.loc[frame["task"] == task, "example_id"])

    def append(self, model: str, rows) -> None:
        """Append the rows of one finished batch to the model's partial file, durably.

        A torn last line (a run killed mid-write) is cut off first, so that the new rows start
        on a line of their own instead of joining it.
        """
        path = self.partial_path(model)
        _drop_torn_tail(path)
        with path.open("a", encoding="utf-8") as fh:
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


def _drop_torn_tail(path: Path) -> None:
    """Truncate a partial file back to its last newline-terminated line (no-op if it has none
    to drop). Only a kill mid-write leaves an unterminated last line."""
    if not path.exists():
        return
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        end, chunk = size, 1 << 16
        keep = 0
        while end > 0:  # search backwards for the last newline
            start = max(0, end - chunk)
            fh.seek(start)
            block = fh.read(end - start)
            at = block.rfind(b"\n")
            if at >= 0:
                keep = start + at + 1
                break
            end = start
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())


def _read_jsonl(path: Path) -> list:
    """Rows of a partial file. An unreadable line (a torn write) is skipped -- only that line,
    so the rows after it are kept -- and its example is scored again on the next run."""
    if not path.exists():
        return []
    rows, bad = [], []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append(row)
            elif line.endswith("\n"):  # an unterminated last line is a torn write: expected
                bad.append(number)
    if bad:
        warnings.warn(
            f"{path}: skipped {len(bad)} unreadable line(s) ({', '.join(map(str, bad[:5]))}"
            f"{', ...' if len(bad) > 5 else ''}), left by a run killed mid-write; their "
            "examples are not counted as done and are scored again.", UserWarning, stacklevel=3)
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
    frames = [_conform(pd.read_parquet(f)) for f in sorted(path.glob("*.parquet"))]
    if include_partial:
        frames += [to_frame(_read_jsonl(f)) for f in sorted(path.glob(".partial/*.jsonl"))]
    if not frames:
        return to_frame([])
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates(["model"] + _KEY, keep="first").reset_index(drop=True)
