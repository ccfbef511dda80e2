"""HF-transformers runner: score causal LMs on prize-format tasks, per example.

Needs the ``runner`` extra (``pip install 'scalingfit[runner]'``); torch and transformers are
imported only when a model is scored, so importing this package stays light.

Examples
--------
>>> from scalingfit.runner import evaluate, read_results_dir      # doctest: +SKIP
>>> evaluate(["a.jsonl", "tasks/"], family="pythia", out="results/")  # doctest: +SKIP
>>> table = read_results_dir("results/")                           # doctest: +SKIP
"""

from ..records import COLUMNS
from ..registry import family_models, load_model_families, lookup_model
from .jobs import RunOptions, parse_shard
from .models import ModelSpec, parse_model
from .run import DEFAULT_BATCH_TOKENS, evaluate
from .store import read_results_dir, read_run_info
from .tasks import TASK_TYPES, Task, load_task, load_tasks

__all__ = ["evaluate", "load_task", "load_tasks", "load_model_families", "family_models",
           "lookup_model", "read_results_dir", "read_run_info", "Task", "TASK_TYPES",
           "COLUMNS", "DEFAULT_BATCH_TOKENS", "ModelSpec", "parse_model", "RunOptions",
           "parse_shard"]
