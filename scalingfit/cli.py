"""The ``scalingfit`` command line: ``fit``, ``check``, ``report`` and ``run`` (runner extra).

The CLI contains no statistics: each subcommand parses options, calls the Python API and prints.
"""

from __future__ import annotations

import argparse
import json
import sys

from .exceptions import DataValidationError, ScalingFitError

__all__ = ["main", "build_parser"]

#: options of :func:`scalingfit.bayes.fit_bayes` on the command line: (keyword, flag, dest)
BAYES_FLAGS = (("model", "--bayes-model", "bayes_model"), ("draws", "--draws", "draws"),
               ("tune", "--tune", "tune"), ("chains", "--chains", "chains"),
               ("compare", "--compare", "compare"),
               ("target_accept", "--target-accept", "target_accept"),
               ("decision_threshold", "--decision-threshold", "decision_threshold"))


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
    add_bayes_options(p)


def add_bayes_options(p: argparse.ArgumentParser) -> None:
    """Options of the Bayesian engine, in their own help group. Each defaults to None (not
    given), so :func:`scalingfit.bayes.fit_bayes` keeps its own default (quoted in the help)."""
    d = _fit_bayes_defaults()
    g = p.add_argument_group(
        "Bayesian engine (with --method bayes; an option not given keeps fit_bayes's default)")
    g.add_argument("--bayes-model", dest="bayes_model", default=None,
                   choices=["auto", "model_level", "crossed"],
                   help="'model_level' (the model is the unit of inference; 'auto' is the same) "
                        "or 'crossed' (per-example likelihood with crossed example effects; "
                        f"default: {d['model']})")
    g.add_argument("--draws", type=int, default=None, metavar="N",
                   help=f"posterior draws per chain (default: {d['draws']}; at least 100)")
    g.add_argument("--tune", type=int, default=None, metavar="N",
                   help=f"warm-up iterations per chain (default: {d['tune']}; at least 100)")
    g.add_argument("--chains", type=int, default=None, metavar="N",
                   help=f"number of chains (default: {d['chains']})")
    g.add_argument("--compare", action="store_true", default=None,
                   help="also compare linear against quadratic curves by grouped LOO (slower)")
    g.add_argument("--target-accept", type=float, default=None, metavar="P",
                   help="NUTS target acceptance rate (default: chosen from the model and data, "
                        "recorded in the output)")
    g.add_argument("--decision-threshold", type=float, default=None, metavar="P",
                   help="posterior probability a shape needs to be the verdict (default: "
                        f"{d['decision_threshold']})")


def _fit_bayes_defaults() -> dict:
    """Keyword defaults of :func:`scalingfit.bayes.fit_bayes` (the module imports PyMC only
    inside functions, so this is cheap)."""
    import inspect

    from .bayes import fit_bayes

    return {k: v.default for k, v in inspect.signature(fit_bayes).parameters.items()
            if v.default is not inspect.Parameter.empty}


def _bayes_kwargs(args) -> dict:
    """The Bayesian options given on the command line, as keywords of ``fit_trend``.

    Raises
    ------
    DataValidationError
        A Bayesian option was given without ``--method bayes``.
    """
    given = {key: getattr(args, dest) for key, _, dest in BAYES_FLAGS
             if getattr(args, dest, None) is not None}
    if given and getattr(args, "method", "bootstrap") != "bayes":
        flags = ", ".join(flag for key, flag, _ in BAYES_FLAGS if key in given)
        raise DataValidationError(
            f"{flags} {'is an option' if len(given) == 1 else 'are options'} of the Bayesian "
            f"engine; got --method {args.method}. Add --method bayes, or drop {flags}.")
    return given


def _load(args):
    from .data import load_results

    return load_results(args.results, format=args.fmt, task=args.task, metric=args.metric,
                        higher_is_better=False if args.lower_is_better else None)


def _fit_kwargs(args) -> dict:
    return {"x": args.x, "method": args.method, "n_boot": args.n_boot,
            "confidence_level": args.confidence_level, "flat_margin": args.flat_margin,
            "rng": args.seed, "chance": getattr(args, "chance", None), **_bayes_kwargs(args)}


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
        _bayes_kwargs(args)          # a Bayesian option without --method bayes: fail first
        return int(args.func(args) or 0)
    except ScalingFitError as err:
        print(f"scalingfit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
