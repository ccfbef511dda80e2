"""The ``scalingfit`` command line: ``fit``, ``check``, ``report``, ``screen`` and ``run`` (runner
extra).

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
from .harness import read_inspect_logs, read_lm_eval_results
from .many import fit_many
from .multitask import read_raw, report_tasks, task_groups
from .options import BayesOptions, FitOptions, LoadOptions, option_fields
from .report import render_document
from .results import jsonable
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


def _screen_input(args):
    """The results to screen: the path, or the harness table read with ``--sizes``."""
    if args.sizes is None:
        return args.results, args.format
    readers = {"lm-eval-results": read_lm_eval_results, "inspect": read_inspect_logs}
    if args.format not in readers:
        raise DataValidationError(
            f"--sizes maps harness model names to sizes; it needs --format lm-eval-results or "
            f"--format inspect; got --format {args.format}.")
    try:
        sizes = json.loads(Path(args.sizes).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataValidationError(f"--sizes {args.sizes!r}: not a readable JSON file ({err}); "
                                  'give {"model": n_params, ...}.') from None
    if not isinstance(sizes, dict):
        raise DataValidationError(f"--sizes {args.sizes!r} must hold a JSON object "
                                  '{"model": n_params, ...}.')
    return readers[args.format](args.results, sizes=sizes), None


def _cmd_screen(args) -> int:
    out = Path(args.output)
    if out.suffix.lower() not in (".html", ".htm"):
        raise DataValidationError(f"output {args.output!r} must end in .html (a Markdown "
                                  "summary is written beside it).")
    _check_writable(out)
    results, fmt = _screen_input(args)
    kw = _fit_kwargs(args)
    many = fit_many(results, by=args.by, n_jobs=args.n_jobs, format=fmt, task=args.task,
                    metric=args.metric, higher_is_better=args.higher_is_better, **kw)
    summary = many.summary()
    if args.json:
        print(json.dumps({"headline": many.headline(), "seed": many.meta["seed"],
                          "summary": jsonable(summary)}, indent=2))
    else:
        shown = summary.drop(columns=["seed", "p_of"]).assign(
            error=summary["error"].str.slice(0, 60))
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(many.headline())
    many.report("html", out=out)
    many.report("markdown", out=out.with_suffix(".md"))
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr if args.json else
          sys.stdout)
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


def _add_screen(sub) -> None:
    p = sub.add_parser(
        "screen", help="fit every task (or task x metric) of a table and write an overview",
        description="Fit one scaling curve per group (by default per task) in parallel, adjust "
                    "the p-values across groups (Holm, Benjamini-Hochberg), print the summary "
                    "and write a self-contained HTML overview (sortable table, one small plot "
                    "and one full report per group) with a Markdown summary beside it.")
    add_data_options(p)
    p.add_argument("--by", nargs="+", default=["task"], metavar="COLUMN",
                   help="grouping columns (default: task; e.g. --by task metric)")
    p.add_argument("--n-jobs", type=int, default=1, dest="n_jobs",
                   help="worker processes (-1: all cores; default: 1); results do not depend "
                        "on it")
    p.add_argument("--sizes", default=None, metavar="JSON",
                   help='JSON file {"model": n_params} for harness outputs whose models are not '
                        "in the registry (with --format lm-eval-results or inspect)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-o", "--output", default="screen.html",
                   help="HTML overview (default: screen.html); the Markdown summary goes to the "
                        "same name with .md, the per-group reports to <name>_files/")
    p.set_defaults(func=_cmd_screen)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``scalingfit`` command."""
    parser = argparse.ArgumentParser(
        prog="scalingfit", description="Shape verdicts for language-model scaling curves.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_fit, _add_check, _add_report, _add_screen, register_run):
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
