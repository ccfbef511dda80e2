"""Benchmark: examples/s of the scalingfit runner vs a naive loop vs lm-evaluation-harness.

All three score the same items with the same local ~19M-parameter GPT-2-style model (random
init, BPE tokenizer trained on the items), on CPU, in the same run. The harness runs from its
own virtualenv as a subprocess on a custom multiple-choice task. Per-example accuracy of the
harness is checked against the runner's.

Usage::

    python benchmarks/bench_runner.py                      # 500 items of the default task
    python benchmarks/bench_runner.py --task my.csv --n 200 --lm-eval /path/to/bin/lm-eval
    SCALINGFIT_LM_EVAL=/path/to/bin/lm-eval python benchmarks/bench_runner.py

The default task is ``../shared/isp-task-data/python_builtins_swap.csv`` relative to the
repository root; the harness is ``--lm-eval``, else ``$SCALINGFIT_LM_EVAL``, else ``lm-eval`` on
the PATH (install it in its own virtualenv: ``python3 -m venv venv-lmeval &&
venv-lmeval/bin/pip install torch==2.13.0 'lm-eval[hf]'``).

The task file is prize-format CSV/JSONL (prompt, classes, answer_index); class order is shuffled
(seeded) since some files always put the answer in the same position. If the file is absent, a
synthetic task is generated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TASK = ROOT.parent / "shared" / "isp-task-data" / "python_builtins_swap.csv"
LM_EVAL_ENV = "SCALINGFIT_LM_EVAL"


def default_lm_eval() -> Path:
    """``$SCALINGFIT_LM_EVAL``, else ``lm-eval`` on the PATH (may not exist: then skipped)."""
    return Path(os.environ.get(LM_EVAL_ENV) or shutil.which("lm-eval") or "lm-eval")
TASK_NAME = "scalingfit_bench"
YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: prompt
doc_to_choice: classes
doc_to_target: answer_index
target_delimiter: ""
metric_list:
  - metric: acc
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=Path, default=DEFAULT_TASK)
    parser.add_argument("--n", type=int, default=500, help="number of items")
    parser.add_argument("--lm-eval", type=Path, default=None,
                        help=f"lm-eval executable of a separate virtualenv (default: "
                             f"${LM_EVAL_ENV}, else lm-eval on the PATH)")
    parser.add_argument("--harness-batch-size", type=int, nargs="+", default=[1])
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="runner batch budget (default: the runner's CPU default)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for all three")
    parser.add_argument("--naive-n", type=int, default=100,
                        help="items for the naive loop (its rate is per item; 0: all)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="time the runner CLI and the harness alternately this many times "
                             "(a shared machine's load drifts; the ratio uses the medians)")
    return parser.parse_args(argv)


def load_items(path: Path, n: int, seed: int) -> pd.DataFrame:
    """First ``n`` rows of a prize-format task with class order shuffled (seeded)."""
    sys.path.insert(0, str(ROOT))
    from scalingfit.runner import load_task

    if path.exists():
        examples = load_task(path).examples.head(n)
    else:
        print(f"note: {path} not found; using a synthetic task")
        examples = load_task(synthetic_task(n, seed)).examples
    rng = np.random.default_rng(seed)
    rows = []
    for ex in examples.itertuples():
        order = rng.permutation(len(ex.classes))
        rows.append({"prompt": ex.prompt, "classes": [ex.classes[i] for i in order],
                     "answer_index": int(np.argmax(order == ex.answer_index))})
    return pd.DataFrame(rows)


def synthetic_task(n: int, seed: int) -> pd.DataFrame:
    """Code-like items with two long classes, roughly the shape of the prize code tasks."""
    rng = np.random.default_rng(seed)
    names = ["alpha", "beta", "gamma", "delta", "value", "count", "items", "total", "index"]
    rows = []
    for _ in range(n):
        a, b = rng.choice(names, 2, replace=False)
        body = "\n".join(f"    {rng.choice(names)} = {rng.choice(names)} + {rng.integers(9)}"
                         for _ in range(rng.integers(3, 15)))
        prompt = f"def f({a}, {b}):\n    \"\"\"Combine {a} and {b}.\"\"\""
        good, bad = f" \n{body}\n    return {a}\n", f" \n{body}\n    return print({a})\n"
        rows.append({"prompt": prompt, "classes": [good, bad], "answer_index": 0})
    return pd.DataFrame(rows)


def build_model(items: pd.DataFrame, directory: Path) -> int:
    """Train a BPE tokenizer on the items, random-init a ~19M GPT-2, save both; return size."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=8192, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = list(items["prompt"]) + [c for cs in items["classes"] for c in cs]
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(fast), n_positions=1024, n_embd=384, n_layer=9,
                        n_head=6, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def time_runner(items: pd.DataFrame, model_dir: Path, batch_tokens: int):
    """In-process ``evaluate`` (model loading included); returns (seconds, table)."""
    from scalingfit.runner import evaluate

    start = time.perf_counter()
    table = evaluate(items, [str(model_dir)], progress=False, device="cpu",
                     batch_tokens=batch_tokens)
    return time.perf_counter() - start, table


def time_runner_cli(items_path: Path, model_dir: Path, batch_tokens: int, env,
                    device: str = "cpu", extra=()) -> float:
    """``python -m scalingfit.runner.cli run`` wall time, startup included (like the harness)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "scalingfit.runner.cli", "run", "--task", str(items_path),
               "--models", str(model_dir), "--out", out, "--device", device, "--no-progress",
               *extra]
        cmd += ["--batch-tokens", str(batch_tokens)] if batch_tokens else []
        start = time.perf_counter()
        subprocess.run(cmd, env={**env, "PYTHONPATH": str(ROOT)}, check=True,
                       capture_output=True)
        return time.perf_counter() - start


def time_naive(items: pd.DataFrame, model_dir: Path):
    """One item, one class, one forward pass at a time (``tests/runner/naive.py``)."""
    sys.path.insert(0, str(ROOT / "tests" / "runner"))
    from naive import naive_logprob

    from scalingfit.runner.models import load_model

    start = time.perf_counter()
    model, tok = load_model(str(model_dir))
    logprobs = [[naive_logprob(model, tok, row.prompt, c)[0] for c in row.classes]
                for row in items.itertuples()]
    return time.perf_counter() - start, logprobs


def time_harness(lm_eval: Path, items_path: Path, model_dir: Path, workdir: Path,
                 batch_size, env, device: str = "cpu", dtype: str = "float32", run: int = 0):
    """Run lm-eval on the items as a custom task; returns (seconds, samples DataFrame)."""
    taskdir = workdir / "harness_task"
    taskdir.mkdir(exist_ok=True)
    (taskdir / f"{TASK_NAME}.yaml").write_text(YAML.format(name=TASK_NAME, data=items_path))
    out = workdir / f"harness_out_bs{batch_size}_run{run}"
    cmd = [str(lm_eval), "run", "--model", "hf", "--model_args",
           f"pretrained={model_dir},dtype={dtype}", "--include_path", str(taskdir),
           "--tasks", TASK_NAME, "--device", device, "--batch_size", str(batch_size),
           "--log_samples", "--output_path", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env={**env, "HF_DATASETS_OFFLINE": "1"}, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"lm-eval failed:\n{proc.stderr[-3000:]}")
    sys.path.insert(0, str(ROOT))
    from scalingfit.lmeval import read_lm_eval_samples

    return seconds, read_lm_eval_samples(out, n_params=1)


def compare(table: pd.DataFrame, harness: pd.DataFrame) -> str:
    """Agreement of per-example accuracy and class log-likelihoods, runner vs harness."""
    merged = table.merge(harness, on="example_id", suffixes=("", "_h"))
    agree = (merged["correct"].astype(bool) == merged["correct_h"].astype(bool)).mean()
    diffs = [np.max(np.abs(np.subtract(json.loads(a), json.loads(b))))
             for a, b in zip(merged["class_logprobs"], merged["class_logprobs_h"])]
    return (f"per-example acc agreement {agree:.4f} over {len(merged)} items; "
            f"max |class log-lik difference| {max(diffs):.2e}")


def main(argv=None) -> int:
    args = parse_args(argv)
    args.lm_eval = args.lm_eval or default_lm_eval()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    env = {**os.environ}
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_runner_"))
    workdir.mkdir(parents=True, exist_ok=True)
    items = load_items(args.task, args.n, args.seed)
    items_path = workdir / "items.jsonl"
    items.to_json(items_path, orient="records", lines=True, force_ascii=False)
    model_dir = workdir / "model"
    n_params = build_model(items, model_dir)
    print(f"{len(items)} items from {args.task.name if args.task.exists() else 'synthetic'}; "
          f"model {n_params / 1e6:.1f}M params; torch threads {args.threads}; CPU")

    results = {}

    def record(name, secs, n=len(items)):
        results[name] = secs * len(items) / n
        print(f"{name:45s} {secs:8.1f} s {n / secs:8.2f} examples/s", flush=True)

    secs, table = time_runner(items, model_dir, args.batch_tokens)
    record("runner (in-process, load included)", secs)
    naive_items = items.head(args.naive_n) if args.naive_n else items
    secs, _ = time_naive(naive_items, model_dir)
    record(f"naive loop (in-process, {len(naive_items)} items)", secs, len(naive_items))
    if not args.lm_eval.exists():
        print(f"note: {args.lm_eval} not found; harness skipped (python3 -m venv venv-lmeval "
              "&& venv-lmeval/bin/pip install torch==2.13.0 'lm-eval[hf]', then --lm-eval "
              "venv-lmeval/bin/lm-eval)")
    cli_times, harness_times = [], {bs: [] for bs in args.harness_batch_size}
    for run in range(args.repeat):  # alternate, so that both see the same drift in load
        cli_times.append(time_runner_cli(items_path, model_dir, args.batch_tokens, env))
        record("runner (CLI, process start included)", cli_times[-1])
        for bs in args.harness_batch_size if args.lm_eval.exists() else []:
            secs, samples = time_harness(args.lm_eval, items_path, model_dir, workdir, bs, env,
                                         run=run)
            harness_times[bs].append(secs)
            record(f"lm-eval harness (CLI, batch_size={bs})", secs)
            print(f"  harness vs runner: {compare(table, samples)}", flush=True)
    runner = results["runner (in-process, load included)"]
    naive = next(v for k, v in results.items() if k.startswith("naive"))
    print(f"\nspeed-up of the runner over the naive loop: {naive / runner:.1f}x")
    if any(harness_times.values()):
        runner_cli = float(np.median(cli_times))
        best = min(float(np.median(v)) for v in harness_times.values())
        pairs = [h / r for r, h in zip(cli_times, min(harness_times.values(), key=np.median))]
        print(f"speed-up of the runner CLI over the fastest harness run (medians of "
              f"{args.repeat}): {best / runner_cli:.2f}x; per repeat: "
              f"{', '.join(f'{x:.2f}x' for x in pairs)}")
    print(f"(work directory: {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
