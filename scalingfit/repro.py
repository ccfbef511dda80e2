"""Reproducibility: the versions, the seed, the options, and the exact Python call and command
line that rebuild a report.

The flags and defaults come from the option records of :mod:`scalingfit.options` (each field's
``metadata['flag']`` and default), so a new option reaches the reproducing command without an
edit here. An option without a flag is reproduced by the Python call only, and the report says
so.
"""

from __future__ import annotations

import dataclasses
import platform
import shlex
from importlib import metadata

from ._version import __version__
from .blocks import Table
from .data import _LOWER_IS_BETTER
from .engines import engine_view
from .options import BayesOptions, FitOptions, LoadOptions
from .wording import finite, fmt

__all__ = ["versions", "call_options", "commands", "repro_blocks", "SEED_FLAG"]

#: the numerical stack whose versions a report records
PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "matplotlib", "seaborn")
#: the seed is not an option record's field (``rng`` takes a Generator too); its flag
SEED_FLAG = "--seed"
#: fit options with a rule of their own below (the margin, the shapes, the chance level)
_FIT_SPECIAL = ("flat_margin", "shapes", "chance")


def versions() -> dict:
    """scalingfit, Python and the numerical stack ('not installed' for a missing package)."""
    out = {"scalingfit": __version__, "python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _fields(record):
    return dataclasses.fields(record)


def _flag_fields() -> dict:
    """Option name -> dataclass field, for every option with a command-line flag."""
    return {f.name: f for rec in (LoadOptions, FitOptions, BayesOptions) for f in _fields(rec)
            if f.metadata.get("flag")}


def _engine_options(meta) -> dict:
    """The engine's own recorded options that differ from the defaults (in record order); a
    default the engine resolves counts as the value it records (``recorded_default``)."""
    engine = engine_view(meta=meta)
    record, recorded = engine.options_record(), meta.get(engine.meta_key or "")
    if record is None or not recorded:
        return {}
    opts = {}
    for f in _fields(record):
        if f.metadata.get("reproduce", True) is False:
            continue
        default = f.metadata.get("recorded_default", f.default)
        v = recorded.get(f.name)
        if f.name in recorded and v is not None and v != default:
            opts[f.name] = v
    return opts


def call_options(meta, load=None) -> dict:
    """Non-default options of the fit, as keyword arguments of :func:`load_results` (``task``,
    ``metric``, ``format``) and :func:`fit_trend` (the rest, the engine's options included).

    ``load`` holds what the caller knows beyond ``meta``: ``task``, ``metric``, the input
    ``format`` and ``chance`` as given on the command line."""
    load = dict(load or {})
    opts = {}
    if load.get("task") or meta.get("task"):
        opts["task"] = load.get("task") or meta.get("task")
    if load.get("metric"):
        opts["metric"] = load["metric"]
    elif meta.get("form") == "aggregated" and meta.get("metric"):
        opts["metric"] = meta["metric"]
    if load.get("format"):
        opts["format"] = load["format"]
    metric = str(meta.get("metric") or "")
    if not meta.get("higher_is_better", True) and not _LOWER_IS_BETTER.search(metric):
        opts["higher_is_better"] = False
    for f in _fields(FitOptions):
        if f.name not in _FIT_SPECIAL and f.name in meta and meta[f.name] != f.default:
            opts[f.name] = meta[f.name]
    margin = meta.get("flat_margin")
    if margin is not None and not (meta.get("proportion") and margin == 0.05):
        opts["flat_margin"] = margin
    shapes = [s for s in meta.get("shapes", []) if s not in ("flat", "inconclusive")]
    if shapes and len(shapes) < 4:
        opts["shapes"] = shapes
    # the chance level given, else the one in effect (passing it again changes nothing)
    chance = load.get("chance") if load.get("chance") is not None else meta.get("chance")
    if finite(chance):
        opts["chance"] = float(chance)
    opts.update(_engine_options(meta))
    if isinstance(meta.get("seed"), int):
        opts["rng"] = meta["seed"]
    return opts


def _cli_words(opts, flags) -> list:
    words = []
    for k, v in opts.items():
        if k == "rng":
            words += [SEED_FLAG, str(v)]
            continue
        f = flags.get(k)
        if f is None:
            continue
        action = f.metadata.get("action")
        if action in ("store_true", "store_false"):    # a switch: given when not the default
            words += [f.metadata["flag"]] if bool(v) == (action == "store_true") else []
        else:
            words += [f.metadata["flag"], str(v)]
    return words


def commands(opts, source, claim, out, fmt_, multi=False) -> tuple:
    """(Python call, shell command, options without a flag) that rebuild the report."""
    src = str(source) if source is not None else "results.csv"
    out_name = str(out) if out is not None else f"report.{'html' if fmt_ == 'html' else 'md'}"
    load_names = LoadOptions.names()
    if multi:
        args = ", ".join([repr(src)] + [f"{'input_format' if k == 'format' else k}={v!r}"
                                        for k, v in opts.items()])
        py = ("from scalingfit.multitask import report_tasks\n"
              f"report_tasks({args}, claim={claim!r}, format={fmt_!r}, out={out_name!r})")
    else:
        load = ", ".join([repr(src)] + [f"{k}={v!r}" for k, v in opts.items()
                                        if k in load_names])
        fit = ", ".join(["table"] + [f"{k}={v!r}" for k, v in opts.items()
                                     if k not in load_names])
        py = ("from scalingfit import fit_trend, load_results\n"
              f"table = load_results({load})\n"
              f"result = fit_trend({fit})\n"
              f"result.report(format={fmt_!r}, claim={claim!r}, data=table, out={out_name!r})")
    flags = _flag_fields()
    cli = ["scalingfit", "report", src, *_cli_words(opts, flags)]
    if claim:
        cli += ["--claim", claim]
    cli += ["-o", out_name]
    no_cli = [k for k in opts if k not in flags and k != "rng"]
    return py, " ".join(shlex.quote(c) for c in cli), no_cli


def _provenance_rows(meta) -> list:
    rows = [{"item": "seed", "value": str(meta.get("seed"))},
            {"item": "method", "value": str(meta.get("method"))},
            {"item": "bootstrap replicates", "value": str(meta.get("n_boot"))},
            {"item": "confidence level", "value": str(meta.get("confidence_level"))},
            {"item": "flat margin", "value": fmt(meta.get("flat_margin"), 4)},
            {"item": "shapes considered", "value": ", ".join(meta.get("shapes", []))},
            {"item": "scale variable", "value": str(meta.get("x"))},
            {"item": "chance level", "value": fmt(meta.get("chance"), 4)
             if finite(meta.get("chance")) else "not known"}]
    engine = engine_view(meta=meta)
    record, key = engine.options_record(), engine.meta_key
    if record is not None:
        shown = {f.name for f in _fields(record) if f.metadata.get("reproduce", True)}
        rows += [{"item": f"{key} {k.replace('_', ' ')}", "value": str(v)}
                 for k, v in (meta.get(key) or {}).items() if k in shown | {"seed"}]
    rows += [{"item": k, "value": v} for k, v in versions().items()]
    return rows + [{"item": "platform", "value": platform.platform(terse=True)}]


def repro_blocks(meta, opts, source, claim, out, fmt_, multi=False, prefix="") -> list:
    """The reproducibility section: versions, seed and options, the Python call and the
    command line."""
    py, cli, no_cli = commands(opts, source, claim, out, fmt_, multi)
    blocks = [("open", f"{prefix}reproducibility", "reproducibility", ""),
              ("h", 2, "Reproducibility", f"{prefix}reproducibility-h"),
              ("table", Table(f"{prefix}versions", "Versions, seed and options",
                              [("item", "item", "str"), ("value", "value", "str")],
                              _provenance_rows(meta))),
              ("p", ["Python:"]), ("code", py, "python"),
              ("p", ["Command line:"]), ("code", cli, "sh")]
    if not isinstance(meta.get("seed"), int):
        blocks.append(("p", ["No integer seed was recorded (a numpy Generator was passed), so "
                             "bootstrap numbers will differ slightly on a rerun."], "muted"))
    if no_cli:
        blocks.append(("p", [f"Options without a CLI flag ({', '.join(no_cli)}) are reproduced "
                             "by the Python call only."], "muted"))
    return blocks + [("close",)]
