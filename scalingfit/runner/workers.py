"""One worker process per device (or device group), sharing jobs through the output directory.

Workers are started with the ``spawn`` context (safe with CUDA and threads). Each receives the
whole job list and claims jobs through their lock files (:mod:`scalingfit.runner.jobs`), so
the order of the list is the queue: a worker keeps its model loaded while it finds more tasks of
that model to claim. A worker on a group of CUDA devices sees only its group
(``CUDA_VISIBLE_DEVICES``) and loads with ``device_map="auto"`` over it. A worker that dies
leaves its job's lock to go stale; the others take the job over, and the parent reports the
death (an error only if some job was left unfinished).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import warnings
from dataclasses import replace

from ..exceptions import ScalingFitError
from .models import resolve_commit
from .prepare import job_keys
from .store import ResultStore

__all__ = ["run_workers", "WorkerError"]


class WorkerError(ScalingFitError, RuntimeError):
    """A worker process failed and left jobs unfinished; the message names it."""


def _worker_env(group: list[str]) -> tuple[str, str | None]:
    """Device and device_map of a worker on ``group``; sets ``CUDA_VISIBLE_DEVICES``."""
    cuda = [d for d in group if d.startswith("cuda")]
    if not cuda:
        return group[0], None
    ids = [d.split(":")[1] if ":" in d else "0" for d in cuda]
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
    return ("cuda", "auto") if len(cuda) > 1 else ("cuda", None)


def _worker_main(group, jobs, out, options, registry, run_jobs) -> None:
    """Entry point of one worker process (``run_jobs`` is :func:`scalingfit.runner.run.run_jobs`,
    passed in by reference so that this module does not import the one that starts it)."""
    device, device_map = _worker_env(group)
    if device_map and not options.device_map:
        options = replace(options, device_map=device_map)
    try:
        run_jobs(jobs, ResultStore(out), options, registry=registry, device=device)
    except ScalingFitError as err:
        print(f"scalingfit: error: worker on {','.join(group)}: {err}", file=sys.stderr)
        sys.exit(2)


def run_workers(jobs, groups, out, options, registry, run_jobs) -> None:
    """Run ``jobs`` with one process per device group; wait for all of them.

    Raises
    ------
    WorkerError
        A worker failed and some job is unfinished (re-run the same command to finish it).
    """
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, name=f"scalingfit worker {','.join(g)}",
                         args=(g, jobs, out, options, registry, run_jobs)) for g in groups]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    failed = [(p.name, p.exitcode) for p in procs if p.exitcode != 0]
    if not failed:
        return
    missing = _unfinished(jobs, out, options)
    text = "; ".join(f"{name} exited with code {code}" for name, code in failed)
    if missing:
        raise WorkerError(
            f"{text}; {len(missing)} job(s) unfinished, e.g. model {missing[0][0]!r} on task "
            f"{missing[0][1]!r}. Re-run the same command to finish them (finished rows are "
            "kept).")
    warnings.warn(f"{text}; its jobs were taken over by the other workers.", UserWarning,
                  stacklevel=2)


def _unfinished(jobs, out, options) -> list[tuple[str, str]]:
    store = ResultStore(out)
    return [j.key for j in jobs
            if not set(job_keys(j.task, options)) <= store.done(j.spec.name, j.task.name,
                                                                resolve_commit(j.spec))]
