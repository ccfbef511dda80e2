"""Options in: frozen records of what the user asked for, built once and passed on unchanged.

:func:`scalingfit.fit_trend` builds a :class:`LoadOptions`, a :class:`FitOptions` and (with
``method='bayes'``) a :class:`BayesOptions` from its keywords; every stage reads them, the
result records them (``result.meta['options']``), the CLI generates its flags from the fields'
metadata and the reports rebuild the reproducing command from them. Adding an option is one
field here (with its flag and help) plus its tests.

Each record validates its values when it is built, so a bad option is a
:class:`~scalingfit.exceptions.OptionError` naming the option, the allowed values and the bad
value, before any data is read.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

from .exceptions import OptionError

__all__ = ["LoadOptions", "FitOptions", "BayesOptions", "option_fields", "split_options"]


def _opt(default, flag=None, help="", **cli):
    """A dataclass field with its command-line flag and help (``flag=None``: Python only).

    Provenance metadata read by the reproducing command (:mod:`scalingfit.repro`):
    ``recorded_default`` is the value the engine records in ``result.meta`` when the option is
    left at a default it resolves (``'auto'`` -> ``'model_level'``), so a recorded value equal
    to it is not repeated; ``reproduce=False`` marks a resource setting that does not change
    the numbers (not repeated, not listed)."""
    return field(default=default, metadata={"flag": flag, "help": help, **cli})


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _int_at_least(name, v, low):
    if not _is_int(v) or v < low:
        raise OptionError(f"{name} must be a whole number of at least {low}; got {v!r}.")


def _real_between(name, v, low, high, *, optional=False, closed_high=False):
    if v is None and optional:
        return
    ok = _is_real(v) and math.isfinite(v) and low < v and (v <= high if closed_high else v < high)
    if not ok:
        right = "]" if closed_high else ")"
        raise OptionError(f"{name} must lie in ({low}, {high}{right}; got {v!r}.")


def _bool_or_none(name, v):
    if v is not None and not isinstance(v, bool):
        raise OptionError(
            f"{name} must be True, False or None; got {v!r} ({type(v).__name__}). Strings such "
            "as 'no' are not booleans.")


def _choice(name, v, allowed):
    if not isinstance(v, str) or v not in allowed:
        raise OptionError(f"{name} must be one of {list(allowed)}; got {v!r}.")


class _Options:
    """Shared behaviour of the option records."""

    @classmethod
    def names(cls) -> tuple:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict:
        """Every option as plain Python values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def changed(self) -> dict:
        """The options that differ from their defaults (what a reproducing command must say)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default}

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


#: input formats of :func:`scalingfit.load_results` (``None``: from the file suffix)
FORMATS = ("csv", "parquet", "jsonl", "lm-eval", "lm-eval-results", "inspect")


@dataclass(frozen=True)
class LoadOptions(_Options):
    """How the results table is read (:func:`scalingfit.load_results`)."""

    format: str | None = _opt(None, "--format", "input format (default: from the file suffix)",
                              choices=FORMATS)
    task: str | None = _opt(None, "--task", "task to analyse when the table holds several")
    metric: str | None = _opt(None, "--metric",
                              "metric to analyse when the table holds several")
    higher_is_better: bool | None = _opt(
        None, "--lower-is-better", "treat lower scores as better (default: guessed from the "
        "metric name)", action="store_false")
    proportion: bool | None = _opt(None)

    def __post_init__(self):
        if self.format is not None:
            _choice("format", self.format, FORMATS)
        _bool_or_none("higher_is_better", self.higher_is_better)
        _bool_or_none("proportion", self.proportion)


@dataclass(frozen=True)
class FitOptions(_Options):
    """What is fitted and how (:func:`scalingfit.fit_trend`)."""

    x: str = _opt("n_params", "--x", "scale variable (log10): parameters or training FLOPs",
                  choices=("n_params", "flops"))
    method: str = _opt("bootstrap", "--method",
                       "engine: 'bootstrap' (random-effects meta-regression over models with "
                       "paired-bootstrap covariance; default) or 'bayes' (PyMC posterior shape "
                       "probabilities)", choices=("bootstrap", "bayes"))
    n_boot: int = _opt(2000, "--n-boot", "paired-bootstrap replicates (default: 2000; at "
                       "least 100)", type=int)
    confidence_level: float = _opt(0.95, "--confidence-level", "interval level; tests run at "
                                   "alpha = 1 - level (default: 0.95)", type=float)
    flat_margin: float | None = _opt(None, "--flat-margin",
                                     "equivalence margin for 'flat', in score units", type=float)
    shapes: object = _opt("auto")
    chance: float | None = _opt(None, "--chance", "chance-level score for the floor diagnostics "
                                "and the chance line of the plots (default: from a chance or "
                                "n_classes column)", type=float)

    def __post_init__(self):
        _choice("x", self.x, ("n_params", "flops"))
        _choice("method", self.method, ("bootstrap", "bayes"))
        if not _is_int(self.n_boot) or self.n_boot < 100:
            raise OptionError(f"n_boot must be at least 100; got {self.n_boot!r}.")
        if not (_is_real(self.confidence_level) and 0 < self.confidence_level < 1):
            raise OptionError(
                f"confidence_level must lie in (0, 1); got {self.confidence_level!r}.")
        if self.flat_margin is not None and not (
                _is_real(self.flat_margin) and math.isfinite(self.flat_margin)
                and self.flat_margin > 0):
            raise OptionError(
                f"flat_margin must be a positive finite number in score units (or None for the "
                f"default); got {self.flat_margin!r}.")
        if self.chance is not None and not (_is_real(self.chance) and math.isfinite(self.chance)):
            raise OptionError(f"chance must be a finite score; got {self.chance!r}.")
        if not isinstance(self.shapes, str):
            object.__setattr__(self, "shapes", tuple(self.shapes))

    @property
    def alpha(self) -> float:
        return 1 - self.confidence_level


@dataclass(frozen=True)
class BayesOptions(_Options):
    """Options of the Bayesian engine (:func:`scalingfit.bayes.fit_bayes`)."""

    model: str = _opt("auto", "--bayes-model",
                      "'model_level' (the model is the unit of inference; 'auto' is the same) "
                      "or 'crossed' (per-example likelihood with crossed example effects)",
                      choices=("auto", "model_level", "crossed"), dest="bayes_model",
                      recorded_default="model_level")
    draws: int = _opt(1000, "--draws", "posterior draws per chain (at least 100)", type=int,
                      metavar="N")
    tune: int = _opt(1000, "--tune", "warm-up iterations per chain (at least 100)", type=int,
                     metavar="N")
    chains: int = _opt(4, "--chains", "number of chains", type=int, metavar="N")
    compare: bool = _opt(False, "--compare", "also compare linear against quadratic curves by "
                         "grouped LOO (slower)", action="store_true")
    target_accept: float | None = _opt(None, "--target-accept",
                                       "NUTS target acceptance rate (default: chosen from the "
                                       "model and data, recorded in the output)", type=float,
                                       metavar="P", recorded_default=0.95)
    decision_threshold: float = _opt(0.95, "--decision-threshold",
                                     "posterior probability a shape needs to be the verdict",
                                     type=float, metavar="P")
    cores: int | None = _opt(None, reproduce=False)
    sampler: str = _opt("auto", recorded_default="nutpie")
    max_refits: int = _opt(5)

    def __post_init__(self):
        _choice("model", self.model, ("auto", "model_level", "crossed"))
        _choice("sampler", self.sampler, ("auto", "nutpie", "pymc"))
        _real_between("decision_threshold", self.decision_threshold, 0.5, 1)
        _real_between("target_accept", self.target_accept, 0, 1, optional=True)
        for name, low in (("draws", 100), ("tune", 100), ("chains", 1), ("max_refits", 0)):
            _int_at_least(name, getattr(self, name), low)
        if self.cores is not None:
            _int_at_least("cores", self.cores, 1)
        if not isinstance(self.compare, bool):
            raise OptionError(f"compare must be True or False; got {self.compare!r}.")


def option_fields(cls, *, cli_only: bool = True) -> list:
    """The dataclass fields of an option record (those with a command-line flag by default)."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("flag") or not cli_only]


def split_options(kwargs: dict, *records, where: str = "fit_trend") -> list[dict]:
    """Split ``kwargs`` among option records; an unknown keyword is an error naming it.

    Returns one dict per record, in the order given.
    """
    out = [{} for _ in records]
    for key, value in kwargs.items():
        for i, cls in enumerate(records):
            if key in cls.names():
                out[i][key] = value
                break
        else:
            known = sorted(n for cls in records for n in cls.names())
            raise OptionError(f"{key}: not an option of {where}; options are {known}.")
    return out
