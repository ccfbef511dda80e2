"""Fixtures: tiny random-init causal LMs and a locally trained BPE tokenizer, saved to disk.

Everything is loaded back through ``from_pretrained(path)``, the same path a hub id takes, with
``HF_HUB_OFFLINE=1`` so nothing is fetched.
"""

import json
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# one intra-op thread: on a shared 2-core machine, tiny models run ~30x slower with two
# spinning OpenMP threads; subprocesses inherit this too
os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest.importorskip("torch")
pytest.importorskip("transformers")

SENTENCES = [
    "The cat sat on the mat.", "A dog is not a cat, and a cat is not a dog.",
    "Paris is the capital of France.", "Berlin is the capital of Germany.",
    "Question: Is the sky blue? Answer: yes", "Question: Is grass red? Answer: no",
    "def add(a, b):\n    return a + b\n", "print(range(10))",
]
SPECIAL = "<|endoftext|>"


def train_tokenizer(bos_prefix: bool = False):
    """A byte-level BPE tokenizer (GPT-2 style); ``bos_prefix`` prepends BOS like OPT's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=[SPECIAL],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES * 3, trainer)
    if bos_prefix:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{SPECIAL} $A", special_tokens=[(SPECIAL, tok.token_to_id(SPECIAL))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL, eos_token=SPECIAL)


def _config(kind: str, width: int, vocab: int):
    from transformers import GPT2Config, GPTNeoXConfig, OPTConfig

    common = {"vocab_size": vocab, "bos_token_id": 0, "eos_token_id": 0}
    if kind == "gpt2":
        return GPT2Config(n_layer=2, n_embd=width, n_head=2, n_positions=256, **common)
    if kind == "opt":
        return OPTConfig(num_hidden_layers=2, hidden_size=width, ffn_dim=2 * width,
                         num_attention_heads=2, word_embed_proj_dim=width,
                         max_position_embeddings=256, pad_token_id=0, **common)
    return GPTNeoXConfig(num_hidden_layers=2, hidden_size=width, intermediate_size=2 * width,
                         num_attention_heads=2, max_position_embeddings=256, **common)


def save_model(directory, kind: str, width: int, tokenizer, seed: int = 0):
    """Random-init a tiny model of ``kind``, save it with its tokenizer, return the path."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(kind, width, len(tokenizer)))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """Paths of tiny saved models: three GPT-2 widths, an OPT (BOS tokenizer), a GPT-NeoX."""
    root = tmp_path_factory.mktemp("models")
    plain, bos = train_tokenizer(), train_tokenizer(bos_prefix=True)
    dirs = {f"gpt2-{w}": save_model(root / f"gpt2-{w}", "gpt2", w, plain, seed=w)
            for w in (32, 64, 96)}
    dirs["opt-32"] = save_model(root / "opt-32", "opt", 32, bos, seed=1)
    dirs["neox-32"] = save_model(root / "neox-32", "neox", 32, plain, seed=2)
    return dirs


def classification_rows():
    """Varied lengths, multi-token classes, trailing-space prompts, three-class rows."""
    return [
        {"prompt": "Question: Is the sky blue? Answer:", "classes": [" yes", " no"],
         "answer_index": 0},
        {"prompt": "The cat sat on the", "classes": [" mat.", " dog, and a cat"],
         "answer_index": 0},
        {"prompt": "Paris is the capital of ", "classes": ["France.", "Germany.", "cats"],
         "answer_index": 0},
        {"prompt": "def add(a, b):\n    return", "classes": [" a + b\n", " a - b\n"],
         "answer_index": 1},
        {"prompt": "A", "classes": [" dog is not a cat, and a cat is not a dog.", " cat"],
         "answer_index": 1},
        {"prompt": "Question: Is grass red? Answer: ", "classes": ["yes", "no"],
         "answer_index": 1},
        {"prompt": "print(", "classes": ["range(10))", "10)"], "answer_index": 0},
    ]


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return path


@pytest.fixture
def classification_task(tmp_path):
    return write_jsonl(tmp_path / "cls.jsonl", classification_rows())


@pytest.fixture
def sequence_task(tmp_path):
    rows = [{"prompt": r["prompt"], "completion": r["classes"][0]}
            for r in classification_rows()]
    return write_jsonl(tmp_path / "seq.jsonl", rows)


@pytest.fixture
def logodds_task(tmp_path):
    rows = [{"prompt": "Question: Is the sky blue? Answer:",
             "other_prompt": "Question: Is grass red? Answer:", "classes": [" yes", " no"],
             "answer_index": 0},
            {"prompt": "The cat sat on the mat. Is it a cat?",
             "other_prompt": "A dog is not a cat. Is it a cat?", "classes": [" yes", " no"],
             "answer_index": 1},
            {"prompt": "Paris is the capital of", "other_prompt": "Berlin is the capital of",
             "classes": [" France.", " Germany."], "answer_index": 0}]
    return write_jsonl(tmp_path / "lo.jsonl", rows)


def cli(args, env_extra=None, wait=True, timeout=300):
    """``python -m scalingfit.runner.cli run ARGS`` in a subprocess (Popen if not ``wait``)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root), **(env_extra or {})}
    cmd = [sys.executable, "-m", "scalingfit.runner.cli", "run", *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def fake_hub(root, revisions):
    """A Hugging Face hub cache holding repo ``org/tiny`` with one snapshot per revision:
    ``{"step1": model_dir, ...}``; returns ``(cache_dir, {revision: commit})``."""
    import shutil
    from pathlib import Path

    repo = Path(root) / "hub" / "models--org--tiny"
    commits = {}
    for i, (revision, source) in enumerate(sorted(revisions.items()), start=1):
        commit = f"{i:x}" * 40
        shutil.copytree(source, repo / "snapshots" / commit)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / revision).write_text(commit)
        commits[revision] = commit
    return Path(root) / "hub", commits


JSON_LISTS = ("class_logprobs", "other_class_logprobs")


def assert_same_scores(got, reference, tol=1e-5, ignore=("batch_tokens",)):
    """Same rows, same keys, same values; scores to ``tol`` (batch composition changes float32
    rounding), JSON log-prob lists parsed and compared to ``tol``."""
    import numpy as np
    import pandas as pd

    keys = ["model", "task", "example_id"]
    assert not got.duplicated(keys).any()
    a = got.sort_values(keys).reset_index(drop=True).drop(columns=list(ignore))
    b = reference.sort_values(keys).reset_index(drop=True).drop(columns=list(ignore))
    for col in JSON_LISTS:
        for x, y in zip(a.pop(col), b.pop(col)):
            if isinstance(x, str) or isinstance(y, str):
                np.testing.assert_allclose(json.loads(x), json.loads(y), atol=tol, rtol=0)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=tol)
