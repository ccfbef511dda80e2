"""The ``scalingfit`` command line: ``fit``, ``check``, ``report`` and ``run`` (runner extra).

The CLI contains no statistics: each subcommand parses options, calls the Python API and prints.
"""

from __future__ import annotations

import argparse
import json
import sys

from .exceptions import ScalingFitError

__all__ = ["main", "build_parser"]


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results table: CSV, Parquet, JSONL, or a runner output dir")
    p.add_argument("--x", default="n_params", choices=["n_params", "flops"],
                   help="scale variable (log10): parameters or training FLOPs")
    p.add_argument("--task", help="task to analyse when the table holds several")
    p.add_argument("--metric", help="metric to analyse when the table holds several")
    p.add_argument("--format", dest="fmt", choices=["csv", "parquet", "jsonl", "lm-eval"],
                   help="input format (default: from the file suffix)")
    p.add_argument("--lower-is-better", action="store_true",
                   help="treat lower scores as better (default: guessed from the metric name)")
    p.add_argument("--method", default="bootstrap", choices=["bootstrap", "bayes"],
                   help="engine: 'bootstrap' (random-effects meta-regression over models with "
                        "paired-bootstrap covariance; default) or 'bayes' (PyMC posterior shape "
                        "probabilities)")
    p.add_argument("--n-boot", type=int, default=2000,
                   help="paired-bootstrap replicates (default: 2000; at least 100)")
    p.add_argument("--confidence-level", type=float, default=0.95,
                   help="interval level; tests run at alpha = 1 - level (default: 0.95)")
    p.add_argument("--flat-margin", type=float, default=None,
                   help="equivalence margin for 'flat', in score units")
    p.add_argument("--seed", type=int, default=None, help="random seed (recorded in the output)")


def _load(args):
    from .data import load_results

    return load_results(args.results, format=args.fmt, task=args.task, metric=args.metric,
                        higher_is_better=False if args.lower_is_better else None)


def _fit_kwargs(args) -> dict:
    return {"x": args.x, "method": args.method, "n_boot": args.n_boot,
            "confidence_level": args.confidence_level, "flat_margin": args.flat_margin,
            "rng": args.seed, "chance": getattr(args, "chance", None)}


def _cmd_fit(args) -> int:
    from .fit import fit_trend

    result = fit_trend(_load(args), **_fit_kwargs(args))
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.report("text"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``scalingfit`` command."""
    parser = argparse.ArgumentParser(
        prog="scalingfit", description="Shape verdicts for language-model scaling curves.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fit", help="fit the scaling curve and print the shape verdict")
    add_data_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--chance", type=float, default=None,
                   help="chance-level score for the floor diagnostics (default: from a chance "
                        "or n_classes column)")
    p.set_defaults(func=_cmd_fit)
    for module in ("claims", "criteria_report", "runner.cli"):
        _register(module, sub)
    return parser


def _register(module: str, sub) -> None:
    """Let a module add its subcommand. These modules import only light dependencies (the
    runner imports torch when a model is scored), so an import error is a real bug and raises."""
    import importlib

    importlib.import_module(f"scalingfit.{module}").register(sub)


def main(argv=None) -> int:
    """Entry point of the ``scalingfit`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ScalingFitError as err:
        print(f"scalingfit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
