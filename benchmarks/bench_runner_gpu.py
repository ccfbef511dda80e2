"""GPU benchmark: runner vs lm-evaluation-harness examples/s on Pythia-sized models, bf16.

Random-init GPT-NeoX models with Pythia's shapes (160M, 1.4B, 6.9B; vocab 50,304, context
2,048) are built on the GPU in bfloat16 and saved locally, so no weights are downloaded; the
tokenizer is a BPE trained on the items. For each size it prints, in one run:

* the runner CLI's examples/s (``scalingfit run --device cuda --dtype bfloat16``, process start
  and model load included) and the harness CLI's (``lm-eval run --model hf ... --batch_size
  auto``, same items as a custom multiple-choice task), and their ratio;
* the largest batch budget (padded tokens) that fits in memory, found by doubling the budget
  on the longest batch of the items until CUDA runs out of memory.

Usage (one GPU, unattended, about 5-10 minutes on an A100/H100 80GB)::

    python benchmarks/bench_runner_gpu.py                       # 160m 1.4b 6.9b, 200 items
    python benchmarks/bench_runner_gpu.py --sizes 160m --n 100 --lm-eval venv-lmeval/bin/lm-eval

Without a CUDA device it prints a note and exits 0. A size that does not fit the GPU is
skipped with a note; so are the sizes left when ``--time-budget`` seconds have passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

#: Pythia shapes (Biderman et al. 2023, Table 1): layers, width, heads
SIZES = {"160m": (12, 768, 12), "1.4b": (24, 2048, 16), "6.9b": (32, 4096, 32)}
VOCAB, CONTEXT = 50304, 2048


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--task", type=Path, default=None,
                        help="prize-format task (default: the CPU benchmark's task)")
    parser.add_argument("--n", type=int, default=200, help="number of items")
    parser.add_argument("--lm-eval", type=Path, default=None,
                        help="lm-eval executable (default: $SCALINGFIT_LM_EVAL, else PATH)")
    parser.add_argument("--harness-batch-size", default="auto")
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="runner batch budget (default: the runner's CUDA default)")
    parser.add_argument("--time-budget", type=float, default=540.0,
                        help="seconds after which the remaining sizes are skipped")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_model(layers: int, width: int, heads: int, tokenizer_dir: Path, directory: Path):
    """Random-init a Pythia-shaped GPT-NeoX in bf16 directly on the GPU; save it with the
    tokenizer (shards of 2GB); return the number of parameters."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    config = GPTNeoXConfig(vocab_size=VOCAB, hidden_size=width, num_hidden_layers=layers,
                           num_attention_heads=heads, intermediate_size=4 * width,
                           max_position_embeddings=CONTEXT, rotary_pct=0.25,
                           use_parallel_residual=True, bos_token_id=0, eos_token_id=0,
                           tie_word_embeddings=False)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = GPTNeoXForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(directory, max_shard_size="2GB")
    for f in tokenizer_dir.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "vocab", "merges")):
            shutil.copy(f, directory)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    torch.cuda.empty_cache()
    return n_params


def largest_budget(model_dir: Path, items, start: int = 2048, limit: int = 1 << 20):
    """Largest padded-token budget (doubling from ``start``) whose longest batch scores
    without CUDA out-of-memory; returns (budget or None, peak GiB at that budget)."""
    import torch

    from scalingfit.runner.models import load_model
    from scalingfit.runner.prepare import encode_task, prompt_prefix
    from scalingfit.runner.jobs import RunOptions
    from scalingfit.runner.scoring import plan_batches, score_batches
    from scalingfit.runner.tasks import load_task

    model, tok = load_model(str(model_dir), device="cuda", dtype="bfloat16")
    task = load_task(items)
    encoded = encode_task(tok, task, prefix=prompt_prefix(tok, RunOptions()),
                          max_length=CONTEXT)
    best, peak, budget = None, 0.0, start
    while budget <= limit:
        batch = plan_batches(encoded, budget)[0]
        try:
            torch.cuda.reset_peak_memory_stats()
            for _ in score_batches(model, encoded, [batch], pad_id=0):
                pass
            torch.cuda.synchronize()
        except torch.cuda.OutOfMemoryError:
            break
        best, peak = budget, torch.cuda.max_memory_allocated() / 2 ** 30
        if len(batch) == len(encoded):  # every item fits in one batch: no larger test
            break
        budget *= 2
    del model
    torch.cuda.empty_cache()
    return best, peak


def bench_size(name, args, items, items_path, tok_dir, workdir, env) -> None:
    import torch

    import bench_runner as cpu

    model_dir = workdir / f"pythia-{name}"
    try:
        n_params = build_model(*SIZES[name], tok_dir, model_dir)
    except torch.cuda.OutOfMemoryError:
        print(f"{name}: does not fit this GPU in bf16; skipped", flush=True)
        torch.cuda.empty_cache()
        return
    print(f"\n{name}: {n_params / 1e9:.2f}B parameters (random init, bf16)", flush=True)
    secs = cpu.time_runner_cli(items_path, model_dir, args.batch_tokens, env, device="cuda",
                               extra=["--dtype", "bfloat16"])
    runner = len(items) / secs
    print(f"  runner CLI   {secs:7.1f} s {runner:8.2f} examples/s", flush=True)
    if args.lm_eval.exists():
        secs, _ = cpu.time_harness(args.lm_eval, items_path, model_dir, workdir,
                                   args.harness_batch_size, env, device="cuda",
                                   dtype="bfloat16")
        harness = len(items) / secs
        print(f"  harness CLI  {secs:7.1f} s {harness:8.2f} examples/s "
              f"(batch_size={args.harness_batch_size})", flush=True)
        print(f"  runner / harness: {runner / harness:.2f}x", flush=True)
    budget, peak = largest_budget(model_dir, items)
    total = torch.cuda.get_device_properties(0).total_memory / 2 ** 30
    print(f"  largest batch budget that fits: {budget} padded tokens "
          f"(peak {peak:.1f} GiB of {total:.0f})", flush=True)
    shutil.rmtree(model_dir, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed; nothing to benchmark")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device: the GPU benchmark needs one GPU; nothing to do")
        return 0
    import bench_runner as cpu

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.lm_eval = args.lm_eval or cpu.default_lm_eval()
    started = time.monotonic()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_runner_gpu_"))
    workdir.mkdir(parents=True, exist_ok=True)
    items = cpu.load_items(args.task or cpu.DEFAULT_TASK, args.n, args.seed)
    items_path = workdir / "items.jsonl"
    items.to_json(items_path, orient="records", lines=True, force_ascii=False)
    tok_dir = workdir / "tokenizer"
    cpu.build_model(items, tok_dir)  # trains the tokenizer (and a small CPU model, unused)
    print(f"{len(items)} items; GPU {torch.cuda.get_device_name(0)}; torch {torch.__version__}"
          f"; harness {'at ' + str(args.lm_eval) if args.lm_eval.exists() else 'not found'}")
    for name in args.sizes:
        if time.monotonic() - started > args.time_budget:
            print(f"{name}: skipped (time budget of {args.time_budget:.0f} s used)")
            continue
        bench_size(name, args, items, items_path, tok_dir, workdir, dict(os.environ))
    print(f"\ntotal {time.monotonic() - started:.0f} s (work directory: {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
