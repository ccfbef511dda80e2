"""Jobs, shards and lock files: how several workers and hosts share one output directory.

A job is one (model, task) pair. ``--shard i/N`` keeps the i-th of N contiguous blocks of the
job list (model-major, so a shard loads as few models as it can), which is the same on every
host given the same command. Within a run, every worker walks the same job list and claims a
job by creating its lock file atomically (``O_CREAT | O_EXCL``); the file holds the owner's pid,
host and start time, and a heartbeat thread refreshes its modification time while the job runs.
A lock is stale when its heartbeat is older than the timeout, or when it belongs to a process
of this host that is gone; a stale lock is broken (renamed away, then checked) and the job
taken over, so a worker killed mid-job delays its job by at most the timeout.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import DataValidationError

__all__ = ["Job", "RunOptions", "JobLock", "parse_shard", "shard_jobs",
           "DEFAULT_LOCK_TIMEOUT"]

#: seconds without a heartbeat after which a job's lock counts as abandoned
DEFAULT_LOCK_TIMEOUT = 600.0


@dataclass(frozen=True)
class RunOptions:
    """How models are loaded and scored; picklable, so worker processes receive it whole."""

    device: str = "auto"
    dtype: str | None = None
    batch_tokens: int | None = None
    device_map: str | None = None
    trust_remote_code: bool = False
    add_bos: bool | None = None
    max_length: int | None = None
    chat_template: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    progress: bool = True
    family: str | None = None


@dataclass(frozen=True)
class Job:
    """One model on one task."""

    spec: object          # ModelSpec
    task: object          # Task
    label: str | None = field(default=None)  # family label for --models runs

    @property
    def key(self) -> tuple:
        return (self.spec.name, self.task.name)


def parse_shard(text) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``; shards count from 0 (``$SLURM_ARRAY_TASK_ID/N``).

    Raises
    ------
    DataValidationError
        Not ``i/N`` with ``0 <= i < N``.
    """
    if isinstance(text, tuple):
        index, count = text
    else:
        try:
            index, count = (int(p) for p in str(text).split("/"))
        except ValueError:
            index, count = -1, 0
    if not 0 <= index < count:
        raise DataValidationError(
            f"--shard must be i/N with 0 <= i < N (shards count from 0, as Slurm array ids "
            f"do); got {text!r}.")
    return index, count


def shard_jobs(jobs: list, shard) -> list:
    """The jobs of shard ``(i, N)``: the i-th of N contiguous blocks of ``jobs``."""
    if shard is None:
        return list(jobs)
    index, count = parse_shard(shard)
    lo, hi = index * len(jobs) // count, (index + 1) * len(jobs) // count
    return list(jobs[lo:hi])


def _pid_alive(pid: int) -> bool:
    """Whether a process of this host runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class JobLock:
    """An atomic lock file with a heartbeat; use as ``if lock.acquire(): ... lock.release()``.

    Parameters
    ----------
    path : pathlib.Path
    timeout : float
        Seconds without a heartbeat after which another worker may break the lock.
    """

    def __init__(self, path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.path, self.timeout = Path(path), float(timeout)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = None

    def _payload(self) -> str:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.time(), "token": self.token})

    def acquire(self) -> bool:
        """Create the lock file, breaking a stale one; False when a live worker holds it."""
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._break_stale():
                    return False
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(self._payload())
            self._start_heartbeat()
            return True
        return False

    def holder(self) -> dict | None:
        """The lock file's content (pid, host, started, token) and ``age`` in seconds."""
        try:
            text, mtime = self.path.read_text(), self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            info = json.loads(text)
        except json.JSONDecodeError:  # being written right now, or torn: judge by age only
            info = {}
        return {**info, "age": time.time() - mtime}

    def _stale(self, info: dict) -> bool:
        if info["age"] > self.timeout:
            return True
        same_host = info.get("host") == socket.gethostname()
        return bool(same_host and info.get("pid") and not _pid_alive(int(info["pid"])))

    def _break_stale(self) -> bool:
        """Remove a stale lock (only the one judged stale); True if the caller may retry."""
        info = self.holder()
        if info is None:
            return True
        if not self._stale(info):
            return False
        moved = self.path.with_name(f"{self.path.name}.stale.{self.token}")
        try:
            os.rename(self.path, moved)
        except FileNotFoundError:
            return True
        try:
            taken = json.loads(moved.read_text()).get("token")
        except (OSError, json.JSONDecodeError):
            taken = info.get("token")
        if taken != info.get("token"):  # a fresh lock was renamed by mistake: put it back
            try:
                os.link(moved, self.path)
            except FileExistsError:
                pass
            moved.unlink(missing_ok=True)
            return False
        moved.unlink(missing_ok=True)
        return True

    def owned(self) -> bool:
        info = self.holder()
        return bool(info) and info.get("token") == self.token

    def _start_heartbeat(self) -> None:
        interval = max(0.05, min(30.0, self.timeout / 4))

        def beat():
            while not self._stop.wait(interval):
                try:
                    os.utime(self.path)
                except FileNotFoundError:
                    return

        self._stop.clear()
        self._thread = threading.Thread(target=beat, name=f"heartbeat {self.path.name}",
                                        daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if this lock still owns it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.owned():
            self.path.unlink(missing_ok=True)
