"""Several workers on one output directory: per-device worker processes (two CPU workers
stand in for two GPUs), shards, lock files, and kill -9 of one worker."""

import json
import os
import signal
import time

import pytest
from conftest import assert_same_scores, classification_rows, cli, write_jsonl

from scalingfit.exceptions import DataValidationError
from scalingfit.runner import evaluate, read_results_dir, read_run_info
from scalingfit.runner.jobs import JobLock, parse_shard, shard_jobs

KEYS = ["model", "task", "example_id"]
#: provenance that legitimately differs between runs (who scored it, at which budget)
VOLATILE = ["batch_tokens"]


def _same(got, reference):
    assert_same_scores(got, reference, ignore=VOLATILE)


@pytest.fixture
def setup(model_dirs, tmp_path):
    """Three models x two tasks, and the reference table of a clean single-process run."""
    rows = classification_rows()
    tasks = [write_jsonl(tmp_path / "a.jsonl", rows * 4),
             write_jsonl(tmp_path / "b.jsonl", rows[::-1] * 4)]
    models = [model_dirs[k] for k in ("gpt2-32", "gpt2-64", "opt-32")]
    reference = evaluate(tasks, models, progress=False, device="cpu", batch_tokens=64)
    return tasks, models, reference


def _args(tasks, models, out, *extra):
    return ["--task", *tasks, "--models", *models, "--out", out, "--device", "cpu",
            "--batch-tokens", "64", "--no-progress", *extra]


def test_two_cpu_workers_match_one_process(setup, tmp_path):
    tasks, models, reference = setup
    out = tmp_path / "out"
    got = evaluate(tasks, models, out=out, progress=False, devices="cpu,cpu",
                   batch_tokens=64)
    _same(got, reference)
    _same(read_results_dir(out), reference)
    info = read_run_info(out)
    assert len(info) == 6 and info["n_scored"].eq(info["n_examples"]).all()
    assert info["pid"].nunique() == 2, "both workers should have claimed jobs"
    assert not list((out / ".locks").iterdir())


def test_devices_need_out(setup):
    tasks, models, _ = setup
    with pytest.raises(DataValidationError, match="give out=DIR"):
        evaluate(tasks, models, progress=False, devices=["cpu", "cpu"])


def test_two_shards_into_one_out(setup, tmp_path):
    """``--shard 0/2`` and ``--shard 1/2`` at the same time: disjoint jobs, one table."""
    tasks, models, reference = setup
    out = tmp_path / "out"
    procs = [cli(_args(tasks, models, out, "--shard", f"{i}/2"), wait=False) for i in (0, 1)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    _same(read_results_dir(out), reference)
    assert read_run_info(out)["n_scored"].sum() == len(reference)


def test_two_runners_on_one_out_never_score_a_job_twice(setup, tmp_path):
    """The same command twice at once: every job is scored by exactly one of them (its lock),
    both finish with the whole table."""
    tasks, models, reference = setup
    out = tmp_path / "out"
    procs = [cli(_args(tasks, models, out), wait=False) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    _same(read_results_dir(out), reference)
    info = read_run_info(out)
    assert len(info) == 6 and info["n_scored"].eq(info["n_examples"]).all()
    assert not list((out / ".locks").iterdir()) and not list((out / ".partial").iterdir())


def test_kill_9_of_one_worker_then_rerun_matches_clean(setup, tmp_path):
    """SIGKILL one of two workers once rows are flushed; the other takes its job over after
    the lock goes stale (or the re-run does); the final table equals a clean run."""
    tasks, models, reference = setup
    out = tmp_path / "out"
    proc = cli(_args(tasks, models, out, "--devices", "cpu,cpu", "--lock-timeout", "3"),
               wait=False)
    victim, deadline = None, time.monotonic() + 120
    while victim is None and proc.poll() is None and time.monotonic() < deadline:
        partial = [p for p in (out / ".partial").glob("*.jsonl") if p.stat().st_size]
        locks = {p.stem: p for p in (out / ".locks").glob("*.lock")}
        for p in partial:
            lock = locks.get(p.stem)
            try:
                victim = json.loads(lock.read_text())["pid"] if lock else None
            except (OSError, ValueError, KeyError):
                victim = None
            if victim:
                break
        time.sleep(0.01)
    assert victim, "the run finished before a worker could be killed"
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 2), err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    rerun = cli(_args(tasks, models, out))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    _same(read_results_dir(out), reference)


def test_both_workers_die_mid_job_then_rerun_matches_clean(setup, tmp_path):
    """Each of two workers exits (as a kill) after 3 stored batches: the run fails naming the
    workers and the unfinished jobs; the re-run completes exactly."""
    tasks, models, reference = setup
    out = tmp_path / "out"
    proc = cli(_args(tasks, models, out, "--devices", "cpu,cpu"),
               {"SCALINGFIT_RUNNER_EXIT_AFTER_BATCHES": "3"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "exited with code 75" in proc.stderr and "job(s) unfinished" in proc.stderr
    assert 0 < len(read_results_dir(out, include_partial=True)) < len(reference)
    rerun = cli(_args(tasks, models, out, "--devices", "cpu,cpu"))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    _same(read_results_dir(out), reference)
    assert not list((out / ".partial").iterdir())


def test_temporary_names_are_unique_per_process(tmp_path):
    from scalingfit.runner.store import _unique_tmp

    final = tmp_path / "m+t.parquet"
    names = {_unique_tmp(final).name for _ in range(3)}
    assert len(names) == 3 and all(f".{os.getpid()}." in n for n in names)


def test_lock_is_exclusive_and_released(tmp_path):
    a, b = JobLock(tmp_path / "j.lock", 60), JobLock(tmp_path / "j.lock", 60)
    assert a.acquire() and not b.acquire()
    info = a.holder()
    assert info["pid"] == os.getpid() and info["token"] == a.token
    a.release()
    assert not (tmp_path / "j.lock").exists() and b.acquire()
    b.release()


def test_lock_heartbeat_keeps_it_fresh_and_stale_lock_is_taken_over(tmp_path):
    a = JobLock(tmp_path / "j.lock", timeout=0.4)
    assert a.acquire()
    time.sleep(1.0)  # more than the timeout: the heartbeat keeps it fresh
    assert not JobLock(tmp_path / "j.lock", timeout=0.4).acquire()
    a._stop.set()
    a._thread.join()  # the holder stops beating, as a frozen worker would
    time.sleep(0.6)
    b = JobLock(tmp_path / "j.lock", timeout=0.4)
    assert b.acquire() and b.owned() and not a.owned()
    a.release()  # the old holder must not remove the new lock
    assert b.owned()
    b.release()


def test_lock_of_a_dead_process_is_taken_over_at_once(tmp_path):
    path = tmp_path / "j.lock"
    import socket

    path.write_text(json.dumps({"pid": 2 ** 22 + 17, "host": socket.gethostname(),
                                "started": time.time(), "token": "x"}))
    lock = JobLock(path, timeout=3600)
    assert lock.acquire()
    lock.release()


def test_shards_partition_the_jobs():
    jobs = list(range(11))
    parts = [shard_jobs(jobs, f"{i}/3") for i in range(3)]
    assert sum(parts, []) == jobs and all(parts)
    assert shard_jobs(jobs, None) == jobs
    for bad in ("3/3", "-1/2", "a/b", "1"):
        with pytest.raises(DataValidationError) as info:
            parse_shard(bad)
        assert str(info.value) == (
            "--shard must be i/N with 0 <= i < N (shards count from 0, as Slurm array ids "
            f"do); got {bad!r}.")
