"""The ``scalingfit run`` subcommand.

``scalingfit/cli.py`` calls :func:`register` on its subparsers; ``python -m
scalingfit.runner.cli run ...`` runs the subcommand on its own.
"""

from __future__ import annotations

import argparse
import sys

from ..exceptions import ScalingFitError

__all__ = ["register", "run_command", "main"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to an argparse subparsers object.

    Returns
    -------
    argparse.ArgumentParser
        The ``run`` parser; its ``func`` default is :func:`run_command`.
    """
    parser = subparsers.add_parser(
        "run", help="score causal LMs on a task and write per-example results",
        description="Score a model family or a list of models on a prize-format task; write "
                    "one Parquet file per model to --out (re-running resumes).")
    parser.add_argument("--task", required=True,
                        help="task file (.csv/.jsonl) or Hugging Face dataset id")
    parser.add_argument("--task-type", choices=["classification", "sequence_prob", "logodds"],
                        help="default: inferred from the columns")
    parser.add_argument("--task-name", help="value of the 'task' column (default: file stem)")
    parser.add_argument("--split", default="train", help="dataset split (hub datasets only)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--family", help="registry family, run smallest first (e.g. pythia)")
    which.add_argument("--models", nargs="+", metavar="MODEL",
                       help="hub ids or local model directories")
    parser.add_argument("--family-label", help="family name written for --models")
    parser.add_argument("--out", required=True, help="output directory (resumable)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16", "auto"],
                        help="default: float32 on CPU, the checkpoint's dtype elsewhere")
    parser.add_argument("--batch-tokens", type=int,
                        help="padded tokens per forward batch (default 1024 on CPU, 8192 on "
                             "CUDA/MPS)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run_command)
    return parser


def run_command(args: argparse.Namespace) -> int:
    """Run ``scalingfit run`` from parsed arguments; return the exit code."""
    from .run import evaluate
    from .tasks import load_task

    try:
        task = load_task(args.task, task_type=args.task_type, name=args.task_name,
                         split=args.split)
        frame = evaluate(task, args.models, family=args.family or args.family_label,
                         out=args.out, device=args.device, dtype=args.dtype,
                         batch_tokens=args.batch_tokens, progress=not args.no_progress)
    except (ScalingFitError, ValueError, FileNotFoundError) as err:
        print(f"scalingfit run: error: {err}", file=sys.stderr)
        return 2
    n_models = frame["model"].nunique()
    print(f"wrote {len(frame)} rows ({n_models} models x {len(task)} examples) to {args.out}")
    return 0


def main(argv=None) -> int:
    """Entry point for ``python -m scalingfit.runner.cli run ...``."""
    parser = argparse.ArgumentParser(prog="scalingfit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
