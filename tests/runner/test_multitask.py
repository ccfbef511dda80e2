"""Many tasks per model load, the per-(model, task) tables, the content-hash resume key and
the provenance written with every table."""

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_same_scores, classification_rows, write_jsonl

from scalingfit.runner import evaluate, read_results_dir, read_run_info
from scalingfit.runner.store import job_name

KEYS = ["model", "task", "example_id"]


def _sorted(frame):
    return frame.sort_values(KEYS).reset_index(drop=True)


@pytest.fixture
def count_loads(monkeypatch):
    """Counts ``load_model`` calls per model (the real loader still runs)."""
    from scalingfit.runner import models

    calls, real = [], models.load_model

    def counting(spec, **kwargs):
        calls.append(str(spec))
        return real(spec, **kwargs)

    monkeypatch.setattr(models, "load_model", counting)
    return calls


def test_each_model_loads_once_for_all_tasks(model_dirs, tmp_path, count_loads,
                                             sequence_task, logodds_task):
    """Three tasks (one from a directory) and two models: two loads, six tables, and the
    same scores as one task at a time."""
    tdir = tmp_path / "tasks"
    tdir.mkdir()
    write_jsonl(tdir / "cls.jsonl", classification_rows())
    models = [model_dirs["gpt2-32"], model_dirs["opt-32"]]
    out = tmp_path / "out"
    got = evaluate([tdir, sequence_task, logodds_task], models, out=out, progress=False,
                   device="cpu")
    assert count_loads == models
    assert sorted(p.name for p in out.glob("*.parquet")) == sorted(
        f"{job_name(Path(m).name, t)}.parquet" for m in models for t in ("cls", "seq", "lo"))
    single = pd.concat([evaluate(t, [m], progress=False, device="cpu")
                        for m in models for t in (tdir / "cls.jsonl", sequence_task,
                                                  logodds_task)])
    assert_same_scores(got, single)
    pd.testing.assert_frame_equal(_sorted(read_results_dir(out)), _sorted(got))


def test_rerun_loads_nothing_and_returns_the_same(model_dirs, tmp_path, count_loads,
                                                  sequence_task, classification_task):
    models = [model_dirs["gpt2-32"]]
    first = evaluate([classification_task, sequence_task], models, out=tmp_path / "o",
                     progress=False, device="cpu")
    again = evaluate([classification_task, sequence_task], models, out=tmp_path / "o",
                     progress=False, device="cpu")
    assert len(count_loads) == 1
    pd.testing.assert_frame_equal(first, again)


def test_task_edited_in_place_rescores_exactly_the_changed_items(model_dirs, tmp_path):
    """Edit row 2 and drop the last row: the re-run scores one item, the table holds the
    current items only, equal to a clean run of the edited task."""
    rows = classification_rows()
    task = write_jsonl(tmp_path / "t.jsonl", rows)
    out, model = tmp_path / "out", model_dirs["gpt2-32"]
    evaluate(task, [model], out=out, progress=False, device="cpu")
    edited = [dict(r) for r in rows[:-1]]
    edited[2]["prompt"] = "Berlin is the capital of "
    write_jsonl(task, edited)
    got = evaluate(task, [model], out=out, progress=False, device="cpu")
    info = read_run_info(out).iloc[0]
    assert (info["n_examples"], info["n_scored"]) == (6, 1)
    assert got["example_id"].tolist() == [str(i) for i in range(6)]
    clean = evaluate(task, [model], out=tmp_path / "clean", progress=False, device="cpu")
    assert_same_scores(got, clean)
    assert_same_scores(read_results_dir(out), clean)


def test_provenance_on_every_row_and_per_table(model_dirs, tmp_path, classification_task):
    import torch
    import transformers

    got = evaluate(classification_task, [model_dirs["gpt2-32"]], out=tmp_path / "o",
                   progress=False, device="cpu", batch_tokens=64)
    assert got["dtype"].eq("float32").all() and got["devices"].eq("cpu").all()
    assert got["batch_tokens"].eq(64).all() and got["revision"].isna().all()
    assert got["torch_version"].eq(torch.__version__).all()
    assert got["transformers_version"].eq(transformers.__version__).all()
    assert got["chat_template"].eq(False).all() and got["item_hash"].str.len().eq(16).all()
    info = read_run_info(tmp_path / "o")
    assert len(info) == 1
    row = info.iloc[0]
    assert (row["model"], row["task"], row["n_scored"], row["batch_tokens"]) == (
        "gpt2-32", "cls", 7, 64)
    assert row["wall_seconds"] > 0 and row["examples_per_second"] > 0
    assert row["dtype"] == "float32" and row["torch_version"] == torch.__version__


def test_bos_and_max_length_overrides(model_dirs, tmp_path, classification_task):
    """add_bos=False drops OPT's BOS; add_bos=True adds one to GPT-2; max_length cuts the
    prompt from the left; each setting is its own resume key."""
    from scalingfit.runner.models import load_model
    from scalingfit.runner.scoring import encode_request

    _, tok = load_model(model_dirs["opt-32"])
    row = classification_rows()[0]
    bare = encode_request(tok, row["prompt"], row["classes"], prefix=())
    assert bare.context[0] != tok.bos_token_id
    out = tmp_path / "o"
    base = evaluate(classification_task, [model_dirs["opt-32"]], out=out, progress=False,
                    device="cpu")
    nobos = evaluate(classification_task, [model_dirs["opt-32"]], out=out, progress=False,
                     device="cpu", add_bos=False)
    assert not base["class_logprobs"].equals(nobos["class_logprobs"])
    assert set(base["item_hash"]).isdisjoint(nobos["item_hash"])
    gpt = evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False, device="cpu",
                   add_bos=True)
    ref = evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False, device="cpu")
    assert not gpt["class_logprobs"].equals(ref["class_logprobs"])
    short = evaluate(classification_task, [model_dirs["gpt2-32"]], progress=False,
                     device="cpu", max_length=20)
    assert not short["class_logprobs"].equals(ref["class_logprobs"])
    assert json.loads(short["class_ntokens"].iat[0]) == json.loads(ref["class_ntokens"].iat[0])
