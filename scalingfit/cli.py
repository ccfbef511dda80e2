"""The ``scalingfit`` command line: ``fit``, ``check``, ``report`` and ``run`` (runner extra).

The CLI is the only module of the statistics side that knows about argparse, and no module of
the library imports it. It contains no statistics: each subcommand parses options, calls the
Python API and prints. Its data and engine flags are generated from the option records of
:mod:`scalingfit.options` (flag, help, type and choices live there, once).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .claims import check_claim
from .data import load_results
from .exceptions import DataValidationError, ScalingFitError
from .fit import fit_trend
from .multitask import read_raw, report_tasks, task_groups
from .options import BayesOptions, FitOptions, LoadOptions, option_fields
from .report import render_document
from .runner.cli import register as register_run
from .verdicts import CLAIMS

__all__ = ["main", "build_parser"]

#: options of :func:`scalingfit.bayes.fit_bayes` on the command line: (keyword, flag, dest)
BAYES_FLAGS = tuple((f.name, f.metadata["flag"], f.metadata.get("dest", f.name))
                    for f in option_fields(BayesOptions))


def _add_field(group, f, *, default=None, help_suffix="") -> None:
    """One flag from an option field's metadata."""
    md = f.metadata
    kw = {"dest": md.get("dest", f.name), "default": default,
          "help": md["help"] + help_suffix}
    for key in ("choices", "type", "metavar", "action"):
        if key in md:
            kw[key] = list(md[key]) if key == "choices" else md[key]
    group.add_argument(md["flag"], **kw)


def add_data_options(p: argparse.ArgumentParser, *, chance: bool = True) -> None:
    """The input, fit and Bayesian-engine flags shared by ``fit``, ``check`` and ``report``."""
    p.add_argument("results", help="results table: CSV, Parquet, JSONL, or a runner output dir")
    for f in option_fields(LoadOptions):
        _add_field(p, f)
    for f in option_fields(FitOptions):
        if f.name != "chance" or chance:
            _add_field(p, f, default=f.default)
    p.add_argument("--seed", type=int, default=None, help="random seed (recorded in the output)")
    add_bayes_options(p)


def add_bayes_options(p: argparse.ArgumentParser) -> None:
    """Options of the Bayesian engine, in their own help group. Each defaults to None (not
    given), so :func:`scalingfit.bayes.fit_bayes` keeps its own default (quoted in the help)."""
    g = p.add_argument_group(
        "Bayesian engine (with --method bayes; an option not given keeps fit_bayes's default)")
    for f in option_fields(BayesOptions):
        shown = "chosen from the model and data" if f.default is None else f.default
        suffix = "" if f.name in ("target_accept", "compare") else f" (default: {shown})"
        _add_field(g, f, help_suffix=suffix)


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


def _load_kwargs(args) -> dict:
    return {f.name: getattr(args, f.metadata.get("dest", f.name))
            for f in option_fields(LoadOptions)}


def _load(args):
    return load_results(args.results, **_load_kwargs(args))


def _fit_kwargs(args) -> dict:
    kw = {f.name: getattr(args, f.name, None) for f in option_fields(FitOptions)}
    return {**kw, "rng": args.seed, **_bayes_kwargs(args)}


# ----------------------------------------------------------------------------- subcommands
def _cmd_fit(args) -> int:
    result = fit_trend(_load(args), **_fit_kwargs(args))
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.report("text"))
    return 0


def _cmd_check(args) -> int:
    kw = _fit_kwargs(args)
    kw.pop("confidence_level")
    check = check_claim(args.results, args.claim, alpha=round(1 - args.confidence_level, 12),
                        n_boot=kw.pop("n_boot"), rng=kw.pop("rng"), effect=args.effect,
                        min_stability=args.min_stability, **kw, **_load_kwargs(args))
    if args.json:
        print(check.to_json())
    else:
        print(check.report("markdown" if args.markdown else "text"))
    return 0 if check.survives else 1


def _format_from_suffix(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix in (".md", ".markdown"):
        return "markdown"
    raise DataValidationError(f"output {str(path)!r} must end in .html or .md (the report "
                              f"format is read from the suffix); got {suffix or 'no suffix'!r}.")


def _check_writable(path) -> None:
    """The report's folder exists and is writable: said before the fit runs, not after."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise DataValidationError(
            f"output {str(path)!r}: folder {str(folder)!r} does not exist; create it first, or "
            "give another -o.")
    if not os.access(folder, os.W_OK):
        raise DataValidationError(
            f"output {str(path)!r}: folder {str(folder)!r} is not writable; give another -o.")


def _cmd_report(args) -> int:
    fmt = _format_from_suffix(args.output)
    _check_writable(args.output)
    raw = read_raw(args.results, args.format)
    groups = task_groups(raw, task=args.task, metric=args.metric)
    kw = _fit_kwargs(args)
    if len(groups) > 1:
        report_tasks(raw, claim=args.claim, format=fmt, out=args.output, source=args.results,
                     task=args.task, metric=args.metric, higher_is_better=args.higher_is_better,
                     input_format=args.format, **kw)
    else:
        table = _load(args)
        result = fit_trend(table, **kw)
        render_document(result, format=fmt, claim=args.claim, out=args.output, data=table,
                        source=args.results, options={"task": args.task, "metric": args.metric,
                                                      "format": args.format,
                                                      "chance": args.chance})
    print(f"wrote {args.output}")
    return 0


# ---------------------------------------------------------------------------------- parser
def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="fit the scaling curve and print the shape verdict")
    add_data_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_fit)


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check", help="does a claimed trend survive noise? (exit 0 if it does, 1 if not)",
        description="Check whether a claimed shape survives noise: significance with the model "
                    "as the unit, null calibration, influence of single models, bootstrap "
                    "stability, generality across families; power, floor/ceiling and metric "
                    "sensitivity reported. Exit code 0 when the claim survives, 1 when not.")
    add_data_options(p)
    p.add_argument("--claim", default="inverse", choices=list(CLAIMS),
                   help="the claimed shape (default: inverse)")
    p.add_argument("--effect", type=float, default=None,
                   help="effect for the power check (slope per decade; default: observed)")
    p.add_argument("--min-stability", type=float, default=0.8)
    p.add_argument("--json", action="store_true", help="print the check as JSON")
    p.add_argument("--markdown", action="store_true", help="print a Markdown report")
    p.set_defaults(func=_cmd_check)


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="write the criterion report (HTML or Markdown) for reviewers",
        description="Fit the scaling curve and write a report that answers the criteria: trend "
                    "strength, generality across families, noise (does the claim survive), "
                    "coverage & reproducibility. Several tasks in one table give one report "
                    "with a multiplicity-adjusted summary.")
    add_data_options(p)
    p.add_argument("--claim", choices=list(CLAIMS),
                   help="the claimed shape (default: judge the verdict itself)")
    p.add_argument("-o", "--output", default="report.html",
                   help="output file; .html (self-contained) or .md (PNGs written beside it)")
    p.set_defaults(func=_cmd_report)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``scalingfit`` command."""
    parser = argparse.ArgumentParser(
        prog="scalingfit", description="Shape verdicts for language-model scaling curves.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_fit, _add_check, _add_report, register_run):
        add(sub)
    return parser


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
