"""The ``scalingfit run`` subcommand.

``scalingfit/cli.py`` calls :func:`register` on its subparsers; ``python -m
scalingfit.runner.cli run ...`` runs the subcommand on its own.
"""

from __future__ import annotations

import argparse
import sys

from ..exceptions import DataValidationError, ScalingFitError
from .run import evaluate
from .tasks import load_task, load_tasks

__all__ = ["register", "run_command", "main"]


def _add_what(parser) -> None:
    parser.add_argument("--task", required=True, nargs="+", metavar="TASK",
                        help="task files (.csv/.jsonl), directories of them, or Hugging Face "
                             "dataset ids; each model is loaded once for all of them")
    parser.add_argument("--task-type", choices=["classification", "sequence_prob", "logodds"],
                        help="default: inferred from the columns")
    parser.add_argument("--task-name", help="value of the 'task' column, for a single task "
                                            "(default: file stem)")
    parser.add_argument("--split", default="train", help="dataset split (hub datasets only)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--family", help="registry family, run smallest first (e.g. pythia)")
    which.add_argument("--models", nargs="+", metavar="MODEL",
                       help="hub ids (org/name or org/name@revision) or local directories")
    parser.add_argument("--family-label", help="family name written for --models")
    parser.add_argument("--out", required=True,
                        help="output directory: one resumable table per model and task")


def _add_how(parser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto, cpu, cuda, cuda:N or mps (single process)")
    parser.add_argument("--devices", metavar="LIST",
                        help="comma-separated devices, one worker process each "
                             "(e.g. cuda:0,cuda:1; cpu,cpu)")
    parser.add_argument("--devices-per-model", type=int, default=1, metavar="K",
                        help="devices per worker, for models larger than one device")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16", "auto"],
                        help="default: float32 on CPU, the checkpoint's dtype elsewhere")
    parser.add_argument("--batch-tokens", type=int,
                        help="padded tokens per forward batch (default 512 on CPU, 8192 on "
                             "CUDA/MPS); halved automatically on out-of-memory")
    parser.add_argument("--device-map", choices=["auto"],
                        help="spread each model over the visible devices (accelerate)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow checkpoints to run their own modelling code")
    bos = parser.add_mutually_exclusive_group()
    bos.add_argument("--add-bos", dest="add_bos", action="store_true", default=None,
                     help="put BOS in front of every prompt")
    bos.add_argument("--no-add-bos", dest="add_bos", action="store_false",
                     help="no special tokens in front of prompts")
    parser.add_argument("--max-length", type=int, help="context size (default: the model's)")
    parser.add_argument("--chat-template", action="store_true",
                        help="render prompts with the tokenizer's chat template")
    parser.add_argument("--shard", metavar="I/N",
                        help="score only shard I of N (from 0) of the (model, task) jobs")
    parser.add_argument("--lock-timeout", type=float, default=600.0, metavar="SECONDS",
                        help="take over a job whose lock has no heartbeat for this long")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to an argparse subparsers object.

    Returns
    -------
    argparse.ArgumentParser
        The ``run`` parser; its ``func`` default is :func:`run_command`.
    """
    parser = subparsers.add_parser(
        "run", help="score causal LMs on tasks and write per-example results",
        description="Score a model family or a list of models on prize-format tasks; write "
                    "one Parquet table per model and task to --out (re-running resumes; "
                    "several workers or hosts can share one --out).")
    _add_what(parser)
    _add_how(parser)
    parser.set_defaults(func=run_command)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run ``scalingfit run`` from parsed arguments; return the exit code."""
    try:
        if args.task_name and len(args.task) > 1:
            raise DataValidationError("--task-name names a single task; got "
                                      f"{len(args.task)} tasks (their names are file stems).")
        tasks = ([load_task(args.task[0], task_type=args.task_type, name=args.task_name,
                            split=args.split)] if args.task_name else
                 load_tasks(args.task, task_type=args.task_type, split=args.split))
        frame = evaluate(tasks, args.models, family=args.family or args.family_label,
                         out=args.out, device=args.device, devices=args.devices,
                         devices_per_model=args.devices_per_model, dtype=args.dtype,
                         batch_tokens=args.batch_tokens, device_map=args.device_map,
                         trust_remote_code=args.trust_remote_code, add_bos=args.add_bos,
                         max_length=args.max_length, chat_template=args.chat_template,
                         shard=args.shard, lock_timeout=args.lock_timeout,
                         progress=not args.no_progress)
    except ScalingFitError as err:
        print(f"scalingfit: error: {err}", file=sys.stderr)
        return 2
    n_models, n_tasks = frame["model"].nunique(), frame["task"].nunique()
    print(f"wrote {len(frame)} rows ({n_models} models x {n_tasks} tasks) to {args.out}")
    return 0


def main(argv=None) -> int:
    """Entry point for ``python -m scalingfit.runner.cli run ...``."""
    parser = argparse.ArgumentParser(prog="scalingfit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
