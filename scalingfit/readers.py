"""Reading results files: CSV, Parquet, JSON Lines, JSON, runner output directories.

Every way a file can be unreadable -- missing, empty, not a regular file (a FIFO would hang),
not UTF-8, ragged, truncated, compressed badly, corrupt Parquet, a JSON line that is not an
object -- is a :class:`~scalingfit.exceptions.DataValidationError` naming the file (and the line,
for text formats) and the fix, never a library traceback. Validation of the table's *content*
is :mod:`scalingfit.data`'s job.
"""

from __future__ import annotations

import gzip
import json
import stat
import zlib
from pathlib import Path

import pandas as pd

from .exceptions import DataValidationError
from .harness import read_inspect_logs, read_lm_eval_results
from .lmeval import read_lm_eval_samples

__all__ = ["read_path"]

_FORMATS = "format='csv'|'parquet'|'jsonl'|'lm-eval'|'lm-eval-results'|'inspect'"


def read_path(path, format: str | None = None) -> pd.DataFrame:
    """Read a CSV / Parquet / JSONL / JSON file, a runner output directory, or lm-eval logs.

    Raises
    ------
    DataValidationError
        The path is missing or unreadable, or its content is not a table of that format.
    """
    path = Path(path)
    if format == "lm-eval":
        return read_lm_eval_samples(path)
    if format == "lm-eval-results":
        return read_lm_eval_results(path)
    if format == "inspect":
        return read_inspect_logs(path)
    if not path.exists():
        raise DataValidationError(f"results path {str(path)!r} does not exist.")
    if path.is_dir():
        return _read_dir(path)
    _check_regular(path)
    suffix = "".join(path.suffixes[-2:]).lower() if format is None else "." + format
    if suffix.endswith((".csv", ".csv.gz")):
        return _guard(path, lambda: pd.read_csv(path), "CSV")
    if suffix.endswith((".parquet", ".pq")):
        return _read_parquet(path)
    if suffix.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return _read_jsonl(path)
    if suffix.endswith(".json"):
        return _read_json(path)
    raise DataValidationError(
        f"cannot tell the format of {str(path)!r}; use a .csv, .parquet or .jsonl file, or pass "
        f"{_FORMATS}.")


def _read_dir(path: Path) -> pd.DataFrame:
    files = sorted(path.glob("*.parquet"))
    if not files:
        raise DataValidationError(
            f"results directory {str(path)!r} holds no .parquet files; point at a CSV, "
            "Parquet or JSONL file, or at a directory written by `scalingfit run`.")
    return pd.concat([_read_parquet(f) for f in files], ignore_index=True)


def _check_regular(path: Path) -> None:
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise DataValidationError(
            f"results path {str(path)!r} is not a regular file (a pipe, socket or device); "
            "write the results to a file first.")
    if path.stat().st_size == 0:
        raise DataValidationError(f"results file {str(path)!r} is empty (0 bytes).")


def _guard(path: Path, read, kind: str):
    """Run ``read()``, turning the ways a text or compressed file fails into clear errors."""
    try:
        return read()
    except pd.errors.EmptyDataError:
        raise DataValidationError(
            f"results file {str(path)!r} has no columns: it is empty or holds only blank "
            "lines.") from None
    except pd.errors.ParserError as err:
        raise DataValidationError(
            f"results file {str(path)!r} is not a well-formed {kind} file: {_first_line(err)}. "
            "Every row needs as many fields as the header (quote fields that contain commas)."
        ) from None
    except UnicodeDecodeError as err:
        raise DataValidationError(
            f"results file {str(path)!r} is not UTF-8 text (byte {err.object[err.start]:#04x} "
            f"at offset {err.start}); it may be UTF-16, Latin-1 or binary. Save it as UTF-8 "
            "(e.g. `iconv -f latin1 -t utf-8`), or write Parquet.") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataValidationError(
            f"results file {str(path)!r} is a truncated or corrupt compressed file "
            f"({type(err).__name__}: {err}); write it again.") from None


def _first_line(err) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as err:   # pyarrow's ArrowInvalid is a ValueError
        raise DataValidationError(
            f"results file {str(path)!r} is not a readable Parquet file (truncated or corrupt: "
            f"{_first_line(err)}); write it again, or give a CSV.") from None


def _text_lines(path: Path):
    """The file's lines as text (gzip when the name ends in .gz), failures as clear errors."""
    def read():
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            return fh.read().splitlines()
    return _guard(path, read, "text")


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    for number, line in enumerate(_text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataValidationError(
                f"results file {str(path)!r}, line {number}: not valid JSON ({err.msg} at "
                f"column {err.colno}); the file may be truncated. Each line must be one JSON "
                "object.") from None
        if not isinstance(record, dict):
            raise DataValidationError(
                f"results file {str(path)!r}, line {number}: a JSON {type(record).__name__}, "
                "not an object; each line must be one object such as "
                '{"model": ..., "n_params": ..., "example_id": ..., "score": ...}.')
        records.append(record)
    if not records:
        raise DataValidationError(f"results file {str(path)!r} holds no JSON lines.")
    return pd.DataFrame.from_records(records)


def _read_json(path: Path) -> pd.DataFrame:
    text = "\n".join(_text_lines(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataValidationError(
            f"results file {str(path)!r}, line {err.lineno}: not valid JSON ({err.msg} at "
            f"column {err.colno}); the file may be truncated.") from None
    try:
        return pd.DataFrame(data)
    except (ValueError, TypeError) as err:
        raise DataValidationError(
            f"results file {str(path)!r} is JSON but not a table ({_first_line(err)}); give a "
            "list of row objects, or an object of equal-length columns.") from None
