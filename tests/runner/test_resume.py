"""Resumability: a run killed partway (a real separate process) completes on re-run with
exactly the rows of an uninterrupted run, and nothing is duplicated."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import classification_rows, write_jsonl

from scalingfit.runner import evaluate, read_results_dir
from scalingfit.runner.store import job_name

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["model", "task", "example_id"]


def _cli(task, models, out, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
           **(env_extra or {})}
    cmd = [sys.executable, "-m", "scalingfit.runner.cli", "run", "--task", str(task),
           "--models", *models, "--out", str(out), "--batch-tokens", "1", "--device", "cpu",
           "--no-progress"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _sorted(frame):
    return frame.sort_values(KEYS).reset_index(drop=True)


def _assert_same_rows(resumed, reference):
    assert not resumed.duplicated(KEYS).any()
    pd.testing.assert_frame_equal(_sorted(resumed), _sorted(reference), check_exact=False,
                                  rtol=0, atol=1e-9)


@pytest.fixture
def three_models(model_dirs):
    return [model_dirs[k] for k in ("gpt2-32", "gpt2-64", "gpt2-96")]


def test_exit_mid_model_resumes_exactly(three_models, tmp_path):
    """The process dies (os._exit, as a kill) after 10 stored batches: model 1 (7 batches)
    is final, model 2 holds 3 partial rows, model 3 nothing; the re-run completes."""
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    out = tmp_path / "out"
    proc = _cli(task, three_models, out, {"SCALINGFIT_RUNNER_EXIT_AFTER_BATCHES": "10"})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err.decode()[-2000:]
    names = [Path(m).name for m in three_models]
    assert (out / f"{job_name(names[0], 't')}.parquet").exists()
    assert not (out / f"{job_name(names[1], 't')}.parquet").exists()
    partial = out / ".partial" / f"{job_name(names[1], 't')}.jsonl"
    assert len(partial.read_text().splitlines()) == 3
    assert len(read_results_dir(out)) == 7
    assert len(read_results_dir(out, include_partial=True)) == 10

    proc = _cli(task, three_models, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert not partial.exists()
    reference = evaluate(task, three_models, out=tmp_path / "ref", batch_tokens=1,
                         progress=False, device="cpu")
    _assert_same_rows(read_results_dir(out), reference)


def test_sigkill_then_rerun_matches_uninterrupted(three_models, tmp_path):
    """SIGKILL as soon as the first model's Parquet file appears, then re-run."""
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows() * 20)
    out = tmp_path / "out"
    proc = _cli(task, three_models, out)
    first = out / f"{job_name(Path(three_models[0]).name, 't')}.parquet"
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert len(read_results_dir(out, include_partial=True)) < 3 * 140

    proc = _cli(task, three_models, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    reference = evaluate(task, three_models, batch_tokens=1, progress=False, device="cpu")
    _assert_same_rows(read_results_dir(out), reference)


def test_rerun_of_finished_run_loads_nothing(three_models, tmp_path, monkeypatch):
    """A finished model is skipped without loading it; its rows are returned unchanged."""
    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    first = evaluate(task, three_models[:1], out=tmp_path, progress=False, device="cpu")
    from scalingfit.runner import models

    def fail(*args, **kwargs):
        raise AssertionError("model loaded although all its examples are stored")

    monkeypatch.setattr(models, "load_model", fail)
    again = evaluate(task, three_models[:1], out=tmp_path, progress=False, device="cpu")
    pd.testing.assert_frame_equal(first, again)


def test_torn_partial_line_is_ignored(tmp_path):
    from scalingfit.runner.store import ResultStore

    store = ResultStore(tmp_path)
    store.append("m", "t", [{"task": "t", "example_id": "0", "item_hash": "h", "model": "m",
                             "n_params": 1}])
    with store.partial_path("m", "t").open("a") as fh:
        fh.write('{"task": "t", "exam')
    assert store.done("m", "t") == {("0", "h")}


def test_append_after_torn_line_keeps_every_row(tmp_path):
    """A kill mid-write leaves a line without its newline: the next append must not join it
    (the joined line would be unreadable and take the new row with it)."""
    from scalingfit.runner.store import ResultStore

    store = ResultStore(tmp_path)
    row = {"task": "t", "model": "m", "n_params": 1, "score": 1.0, "item_hash": "h"}
    store.append("m", "t", [{**row, "example_id": "0"}])
    with store.partial_path("m", "t").open("a") as fh:
        fh.write('{"task": "t", "example_id": "1", "mod')  # killed mid-write
    assert store.done("m", "t") == {("0", "h")}  # the torn row is not done: scored again
    store.append("m", "t", [{**row, "example_id": "1"}, {**row, "example_id": "2"}])
    assert store.partial_path("m", "t").read_text().count("\n") == 3
    final = store.finalize("m", "t", [("0", "h"), ("1", "h"), ("2", "h")])
    assert final["example_id"].tolist() == ["0", "1", "2"]
    assert not store.partial_path("m", "t").exists()
    assert read_results_dir(tmp_path)["example_id"].tolist() == ["0", "1", "2"]


def test_unreadable_middle_line_costs_only_that_line(tmp_path):
    """A partial file already holding a bad line (written by an older version) loses only that
    line's row, with a warning, not every row after it."""
    from scalingfit.runner.store import ResultStore

    store = ResultStore(tmp_path)
    good = '{"task": "t", "example_id": "%s", "item_hash": "h", "model": "m", "n_params": 1}\n'
    store.partial_path("m", "t").write_text(
        good % 0 + '{"task": "t", "exa' + good % 1 + good % 2)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable line\(s\) \(2\)"):
        assert store.done("m", "t") == {("0", "h"), ("2", "h")}


def test_kill_mid_write_then_rerun_matches_uninterrupted(model_dirs, tmp_path, monkeypatch):
    """The third batch is half-written when the run dies; the re-run scores the torn example
    and the rest, and the output holds exactly the rows of an uninterrupted run."""
    import itertools
    import json

    from scalingfit.runner.store import ResultStore

    class Killed(BaseException):
        pass

    task = write_jsonl(tmp_path / "t.jsonl", classification_rows())
    model, out = model_dirs["gpt2-32"], tmp_path / "out"
    append, calls = ResultStore.append, itertools.count(1)

    def dying_append(self, name, task_name, rows):
        if next(calls) < 3:
            return append(self, name, task_name, rows)
        payload = "".join(json.dumps(r) + "\n" for r in rows)
        with self.partial_path(name, task_name).open("a", encoding="utf-8") as fh:
            fh.write(payload[:len(payload) // 2])
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(ResultStore, "append", dying_append)
        with pytest.raises(Killed):
            evaluate(task, [model], out=out, batch_tokens=1, progress=False, device="cpu")
    partial = out / ".partial" / f"{job_name(Path(model).name, 't')}.jsonl"
    assert not partial.read_text().endswith("\n")
    assert len(read_results_dir(out, include_partial=True)) == 2

    resumed = evaluate(task, [model], out=out, batch_tokens=1, progress=False, device="cpu")
    reference = evaluate(task, [model], batch_tokens=1, progress=False, device="cpu")
    _assert_same_rows(resumed, reference)
    _assert_same_rows(read_results_dir(out), reference)
    assert not partial.exists()


def test_parquet_of_an_older_version_gets_new_columns(tmp_path):
    """A finished file written before a column existed (here ``n_classes``) reads back with
    the canonical columns, so old and new models mix in one directory."""
    from scalingfit.runner.store import COLUMNS, ResultStore, to_frame

    old = to_frame([{"task": "t", "example_id": "0", "item_hash": "h", "model": "m",
                     "n_params": 1}])
    old.drop(columns="n_classes").to_parquet(tmp_path / "m+t.parquet")
    store = ResultStore(tmp_path)
    store.append("m", "t", [{"task": "t", "example_id": "1", "item_hash": "h", "model": "m",
                             "n_params": 1, "n_classes": 2}])
    frame = store.finalize("m", "t", [("0", "h"), ("1", "h")])
    assert list(frame.columns) == list(COLUMNS)
    assert frame["n_classes"].tolist()[1] == 2 and frame["n_classes"].isna().tolist()[0]
    assert list(read_results_dir(tmp_path).columns) == list(COLUMNS)
