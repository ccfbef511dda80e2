"""Resumable result storage: one Parquet table per (model, task), written atomically.

Layout of an output directory ``OUT``::

    OUT/<model>+<task>.parquet        finished rows of one model on one task
    OUT/<model>+<task>.json           provenance of that table (commit, versions, wall time)
    OUT/.partial/<model>+<task>.jsonl rows of finished batches of a job still running
    OUT/.locks/<model>+<task>.lock    held by the worker scoring that job (see ``jobs.py``)

(``<model>`` and ``<task>`` are file-name-safe spellings; ``+`` never occurs in them.) Every
scored batch is appended to the partial file and flushed to disk, so a killed run loses at most
the batch in flight. A kill mid-write leaves a torn last line without its newline; the next
append first cuts the file back to its last complete line. When a job finishes, its partial rows
are merged into its Parquet file (written to a temporary file with a name unique to the
process, then ``os.replace``) and the partial file is removed.

Rows are keyed by ``(example_id, item_hash)``, where ``item_hash`` is a hash of the item's
content, and carry the model's resolved commit: a re-run skips the keys already stored with the
same commit, scores an item edited in place again, and drops the rows of items that left the
task when the table is written.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
import warnings
from pathlib import Path

import pandas as pd

from ..exceptions import DataValidationError
from ..records import COLUMNS, conform, to_frame

__all__ = ["ResultStore", "read_results_dir", "read_run_info", "safe_name", "job_name",
           "COLUMNS"]

_KEY = ["example_id", "item_hash"]


def safe_name(model: str) -> str:
    """File-name-safe name: ``EleutherAI/pythia-70m`` -> ``EleutherAI__pythia-70m``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", model.replace("/", "__"))


def job_name(model: str, task: str) -> str:
    """File stem of a (model, task) table; ``+`` separates the two safe names."""
    return f"{safe_name(model)}+{safe_name(task)}"


def _unique_tmp(path: Path) -> Path:
    """A temporary name next to ``path`` that no other process uses."""
    tag = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    return path.with_name(f".{path.name}.{tag}.tmp")


def _write_atomic(path: Path, write) -> None:
    tmp = _unique_tmp(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ResultStore:
    """Per-(model, task) Parquet tables plus append-only partial files in one directory.

    Parameters
    ----------
    path : str or pathlib.Path
        Output directory; created if missing.

    Raises
    ------
    DataValidationError
        ``path`` is a file, or a directory this process cannot write to.
    """

    def __init__(self, path):
        self.path = Path(path)
        check_out(self.path)
        self.partial_dir = self.path / ".partial"
        self.lock_dir = self.path / ".locks"
        for folder in (self.path, self.partial_dir, self.lock_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def final_path(self, model: str, task: str) -> Path:
        return self.path / f"{job_name(model, task)}.parquet"

    def info_path(self, model: str, task: str) -> Path:
        return self.path / f"{job_name(model, task)}.json"

    def partial_path(self, model: str, task: str) -> Path:
        return self.partial_dir / f"{job_name(model, task)}.jsonl"

    def lock_path(self, model: str, task: str) -> Path:
        return self.lock_dir / f"{job_name(model, task)}.lock"

    def read(self, model: str, task: str, commit: str | None = None) -> pd.DataFrame:
        """Stored rows of one job (finished, then partial; the newest of a key wins). With
        ``commit``, only rows scored with that model commit."""
        final = self.final_path(model, task)
        frames = [conform(pd.read_parquet(final))] if final.exists() else []
        frames.append(to_frame(_read_jsonl(self.partial_path(model, task))))
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        if commit is not None:
            frame = frame[frame["model_commit"].fillna("") == commit]
        return frame.drop_duplicates(_KEY, keep="last").reset_index(drop=True)

    def done(self, model: str, task: str, commit: str | None = None) -> set:
        """``(example_id, item_hash)`` keys stored for one job (with ``commit``, if given)."""
        frame = self.read(model, task, commit)
        return set(zip(frame["example_id"], frame["item_hash"]))

    def append(self, model: str, task: str, rows) -> None:
        """Append the rows of one finished batch to the job's partial file, durably.

        A torn last line (a run killed mid-write) is cut off first, so that the new rows start
        on a line of their own instead of joining it.
        """
        path = self.partial_path(model, task)
        _drop_torn_tail(path)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(row) + "\n" for row in rows))
            fh.flush()
            os.fsync(fh.fileno())

    def finalize(self, model: str, task: str, keys, commit: str | None = None,
                 info: dict | None = None) -> pd.DataFrame:
        """Write the job's table atomically: the rows of ``keys`` (in that order) only.

        Parameters
        ----------
        keys : list of (example_id, item_hash)
            The task's current items; stored rows of other keys (edited or removed items)
            are dropped.
        commit : str, optional
            Keep only rows scored with this model commit.
        info : dict, optional
            Provenance, written to the job's ``.json`` file.
        """
        stored = self.read(model, task, commit)
        rank = {key: i for i, key in enumerate(keys)}
        position = [rank.get(k, -1) for k in zip(stored["example_id"], stored["item_hash"])]
        frame = (stored.assign(_rank=position).query("_rank >= 0").sort_values("_rank")
                 .drop(columns="_rank").reset_index(drop=True))
        final, partial = self.final_path(model, task), self.partial_path(model, task)
        if partial.exists() or not final.exists() or len(frame) != len(stored):
            _write_atomic(final, lambda tmp: frame.to_parquet(tmp, index=False))
        if info is not None:
            _write_atomic(self.info_path(model, task),
                          lambda tmp: tmp.write_text(json.dumps(info, indent=1, default=str)))
        partial.unlink(missing_ok=True)
        return frame


def check_out(path: Path) -> None:
    """Refuse an output path that is a file or cannot be written."""
    if path.exists() and not path.is_dir():
        raise DataValidationError(
            f"--out {str(path)!r} is a file; give a directory (it is created if missing).")
    existing = next((p for p in [path, *path.parents] if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise DataValidationError(
            f"--out {str(path)!r} is not writable ({str(existing)!r} does not allow this user "
            "to create files); choose another directory.")


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
        Also return rows of jobs whose run has not finished.

    Returns
    -------
    pandas.DataFrame
        The canonical columns (:data:`COLUMNS`), one row per model x task x example.
    """
    path = Path(path)
    frames = [conform(pd.read_parquet(f)) for f in sorted(path.glob("*.parquet"))]
    if include_partial:
        frames += [to_frame(_read_jsonl(f)) for f in sorted(path.glob(".partial/*.jsonl"))]
    if not frames:
        return to_frame([])
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates(["model", "task", "example_id"], keep="first").reset_index(
        drop=True)


def read_run_info(path) -> pd.DataFrame:
    """Provenance of every finished (model, task) table of an output directory.

    Returns
    -------
    pandas.DataFrame
        One row per table: ``model``, ``task``, ``revision``, ``model_commit``, ``dtype``,
        ``devices``, ``batch_tokens``, ``batch_tokens_final``, ``torch_version``,
        ``transformers_version``, ``chat_template``, ``n_examples``, ``n_scored``,
        ``wall_seconds``, ``examples_per_second``, ``host``, ``finished_at``.
    """
    records = [json.loads(f.read_text()) for f in sorted(Path(path).glob("*+*.json"))]
    return pd.DataFrame.from_records(records)
