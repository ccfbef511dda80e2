"""Many curves at once: :func:`fit_many` fits one scaling curve per task (or task x metric, or
any grouping columns) with :func:`scalingfit.fit_trend`, in parallel, and controls the false
discoveries of the sweep.

Each group is fitted by ``fit_trend`` itself, on that group's rows only, with a seed derived from
the user's seed and the group's key (:func:`group_seed`), so the answer does not depend on the
number of workers, on their order, or on which other groups are in the table. Parallelism is
joblib's: a local process pool by default (``n_jobs``), or any backend the caller activates with
``joblib.parallel_config`` (``backend="dask"`` for a Dask cluster, ``"ray"`` after
``ray.util.joblib.register_ray()``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._version import __version__
from .exceptions import DataValidationError, OptionError, ScalingFitError, StatisticalWarning
from .fit import bayes_options_of, fit_trend
from .multitest import adjust_p
from .options import BayesOptions, FitOptions, LoadOptions, split_options
from .readers import read_path
from .results import TrendResult, jsonable
from .verdicts import TREND_SHAPES, claim_p_value

__all__ = ["fit_many", "ManyResult", "group_seed", "split_groups", "robustness",
           "SUMMARY_COLUMNS"]

#: columns of :meth:`ManyResult.summary` after the grouping columns
SUMMARY_COLUMNS = ("verdict", "robustness", "slope", "ci_lower", "ci_upper", "p", "p_of",
                   "p_holm", "p_bh", "n_families", "n_models", "n_examples", "seed", "error")
#: optional columns dropped from a group's rows when they are empty for that whole group (a
#: task without standard errors in a table where other tasks have them)
_OPTIONAL = ("se", "n", "flops", "chance", "n_classes")
#: the share of bootstrap replicates that must reproduce the verdict for 'robust'
MIN_STABILITY = 0.8


# ----------------------------------------------------------------------------- groups, seeds
def _by_columns(by) -> tuple:
    cols = (by,) if isinstance(by, str) else tuple(by) if by is not None else ()
    if not cols or not all(isinstance(c, str) for c in cols):
        raise OptionError(f"by must be a column name or a list of column names (e.g. 'task' or "
                          f"['task', 'metric']); got {by!r}.")
    return cols


def _key(values: tuple, by: tuple):
    """A group's key: the grouping value as text (a tuple of them for several columns)."""
    key = tuple("" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v)
                for v in values)
    return key[0] if len(by) == 1 else key


def _label(key) -> str:
    return " \u00b7 ".join(key) if isinstance(key, tuple) else str(key)


def split_groups(results, by="task", *, format: str | None = None, task: str | None = None,
                 metric: str | None = None) -> dict:
    """The rows of each group, as :func:`fit_many` sends them to ``fit_trend``.

    Parameters
    ----------
    results : pandas.DataFrame or path-like
        A long table with the grouping columns (any reader of :func:`scalingfit.load_results`,
        including ``format='lm-eval-results'`` and ``'inspect'``).
    by : str or list of str
        Grouping columns.
    format : str, optional
        Input format of a path (see :class:`scalingfit.options.LoadOptions`).
    task, metric : str, optional
        Keep only this task / metric first.

    Returns
    -------
    dict
        Group key (the value as text; a tuple of texts for several columns) -> its rows, in
        table order, with a fresh index. Optional columns (``se``, ``n``, ``flops``, ``chance``,
        ``n_classes``) that are empty for a whole group are dropped from that group.

    Raises
    ------
    DataValidationError
        A grouping column is missing, or ``task`` / ``metric`` is not in the table.
    """
    cols = _by_columns(by)
    table = results.copy() if isinstance(results, pd.DataFrame) else read_path(Path(results),
                                                                                format)
    table.columns = [str(c) for c in table.columns]
    for col, chosen in (("task", task), ("metric", metric)):
        if chosen is None:
            continue
        if col not in table.columns or not (table[col] == chosen).any():
            values = list(pd.unique(table[col]))[:10] if col in table.columns else []
            raise DataValidationError(
                f"{col}={chosen!r} not found in column {col!r}; choose one of {values}.")
        table = table[table[col] == chosen]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"by={list(cols)!r}: results has no column {missing[0]!r}; got "
            f"{list(table.columns)}. Group by columns of the table (e.g. by='task').")
    out = {}
    for values, sub in table.groupby(list(cols), sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        empty = [c for c in _OPTIONAL if c in sub.columns and sub[c].isna().all()]
        out[_key(values, cols)] = sub.drop(columns=empty).reset_index(drop=True)
    return out


def _spawn_key(key) -> tuple:
    """A stable 128-bit hash of the group key (the same in every process and Python run)."""
    text = json.dumps(list(key) if isinstance(key, tuple) else [key], ensure_ascii=True)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))


def group_seed(seed: int, key) -> int:
    """The seed of one group: ``SeedSequence(entropy=seed, spawn_key=hash(key))`` as an int.

    The first 63 bits of that sequence's state, so that ``fit_trend(rows, rng=group_seed(...))``
    reproduces the group's fit. It depends on the user's seed and the key only: not on the
    number of workers, the order of the groups, or which other groups there are.
    """
    state = np.random.SeedSequence(entropy=int(seed), spawn_key=_spawn_key(key)).generate_state(
        2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _user_seed(rng) -> int:
    if rng is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**63))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)) and rng >= 0:
        return int(rng)
    raise OptionError(f"rng must be None, a non-negative int seed or a numpy Generator; got "
                      f"{rng!r} ({type(rng).__name__}).")


# --------------------------------------------------------------------------------- robustness
def robustness(result: TrendResult) -> str:
    """'robust', 'fragile' or 'n/a': does the verdict survive the noise checks of the fit?

    Read from the noise evidence that :func:`scalingfit.fit_trend` records in
    ``result.meta['noise']`` and ``result.generality`` (nothing is refitted). A verdict is
    **robust** when all of these that apply hold:

    1. at least 80% of the bootstrap replicates (examples and models resampled) reproduce the
       verdict (``meta['noise']['stability']`` of the pooled curve, or of the single family);
    2. dropping any single model leaves the verdict unchanged (``meta['noise']['influence']``);
    3. with several families, leaving out any one family keeps it
       (``generality['loo_keeps_claim']``).

    It is **fragile** when one fails, and **n/a** for an 'inconclusive' verdict or when the fit
    holds no stability evidence (a Bayesian fit, a result read back without it).
    """
    noise = result.meta.get("noise") or {}
    label = noise.get("main_label") or "pooled"
    stab = (noise.get("stability") or {}).get(label)
    if result.shape == "inconclusive" or not stab or not stab.get("n"):
        return "n/a"
    ok = (stab.get("counts") or {}).get(result.shape, 0) / stab["n"] >= MIN_STABILITY
    influence = [r for r in noise.get("influence") or [] if r.get("label") == label]
    ok = ok and not any(bool(r.get("changed")) for r in influence)
    gen = result.generality
    if ok and gen is not None and len(gen) and "loo_keeps_claim" in gen and \
            result.meta.get("n_families", 1) > 1:
        keeps = gen["loo_keeps_claim"].dropna()
        ok = bool(keeps.astype(bool).all())
    return "robust" if ok else "fragile"


def _p_of(result: TrendResult) -> tuple:
    """(p, what it is): the verdict's own p for a trend, the gate's otherwise (NaN: Bayes)."""
    if result.meta.get("method") == "bayes":
        return float("nan"), "none (posterior)"
    pooled = result.pooled
    if result.shape in TREND_SHAPES:
        sign = 1 if result.meta.get("higher_is_better", True) else -1
        return claim_p_value(pooled, result.shape, sign, result.meta.get("alpha", 0.05)), \
            result.shape
    gate = pooled.get("p_gate")
    return (float(gate) if gate is not None else float("nan")), "gate"


def _summary_row(result: TrendResult) -> dict:
    p, of = _p_of(result)
    n_ex = result.meta.get("n_examples")
    return {"verdict": result.shape, "robustness": robustness(result),
            "slope": result.pooled.get("slope"), "ci_lower": result.pooled.get("ci_lower"),
            "ci_upper": result.pooled.get("ci_upper"), "p": p, "p_of": of,
            "n_families": result.meta.get("n_families"), "n_models": result.meta.get("n_models"),
            "n_examples": n_ex if n_ex is not None else np.nan, "error": ""}


# ------------------------------------------------------------------------------ the result
@dataclass(frozen=True)
class ManyResult:
    """The fits of :func:`fit_many`: a read-only mapping of group -> :class:`TrendResult`.

    Attributes
    ----------
    by : tuple of str
        The grouping columns.
    groups : tuple
        Every group key, in table order (fitted or not). A key is the grouping value as text,
        a tuple of texts for several columns.
    results : dict
        Key -> TrendResult of the groups that were fitted (what indexing and iteration see).
    errors : dict
        Key -> message of the groups whose data could not be fitted (a
        :class:`~scalingfit.exceptions.ScalingFitError`).
    seeds : dict
        Key -> the group's seed (:func:`group_seed`); ``fit_trend(rows, rng=seed)`` repeats it.
    meta : dict
        ``seed`` (the user's), ``options`` (the option records, as plain values), ``alpha``,
        ``n_groups``, ``version``.
    """

    by: tuple
    groups: tuple
    results: dict
    errors: dict
    seeds: dict
    meta: dict = field(default_factory=dict)

    # mapping protocol over the fitted groups
    def __getitem__(self, key) -> TrendResult:
        try:
            return self.results[key]
        except KeyError:
            if key in self.errors:
                raise KeyError(f"group {key!r} was not fitted: {self.errors[key]}") from None
            raise KeyError(f"no group {key!r}; groups are {list(self.groups)[:10]}") from None

    def __iter__(self):
        return (k for k in self.groups if k in self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __contains__(self, key) -> bool:
        return key in self.results

    def keys(self):
        return list(iter(self))

    def items(self):
        return [(k, self.results[k]) for k in self]

    def __repr__(self) -> str:
        return (f"<ManyResult by={list(self.by)} groups={len(self.groups)} "
                f"fitted={len(self.results)} errors={len(self.errors)}>")

    def summary(self) -> pd.DataFrame:
        """One row per group (fitted or not), in table order.

        Columns: the grouping columns, then ``verdict`` ('error' for a group that could not be
        fitted), ``robustness`` (:func:`robustness`), the pooled ``slope`` (score change per 10x
        of scale) with ``ci_lower`` / ``ci_upper``, ``p``, ``p_of``, ``p_holm``, ``p_bh``,
        ``n_families``, ``n_models``, ``n_examples``, ``seed`` and ``error`` (the message).

        ``p`` is the p-value of the verdict's own shape for a trend verdict (positive, inverse,
        u_shaped, inverted_u: :func:`scalingfit.verdicts.claim_p_value`, gate and shape test as
        one intersection-union test; ``p_of`` names the shape), and the gate's p-value (the
        curve is not flat; ``p_of='gate'``) for 'flat' and 'inconclusive'. It is NaN for a
        Bayesian fit (a posterior probability is not a p-value) and for errors. ``p_holm`` and
        ``p_bh`` adjust ``p`` across the groups that have one (Holm's family-wise and
        Benjamini-Hochberg's false-discovery-rate step procedures, :func:`scalingfit.multitest.
        adjust_p`).
        """
        rows = []
        for key in self.groups:
            values = key if isinstance(key, tuple) else (key,)
            row = dict(zip(self.by, values))
            if key in self.results:
                row.update(_summary_row(self.results[key]))
            else:
                row.update({"verdict": "error", "robustness": "n/a", "p": np.nan,
                            "p_of": "none", "error": self.errors[key]})
            row["seed"] = self.seeds.get(key)
            rows.append(row)
        df = pd.DataFrame(rows, columns=[*self.by, *SUMMARY_COLUMNS])
        p = df["p"].to_numpy(dtype=float)
        df["p_holm"] = adjust_p(p, "holm")
        df["p_bh"] = adjust_p(p, "fdr_bh")
        for col in ("slope", "ci_lower", "ci_upper", "p"):
            df[col] = df[col].astype(float)
        for col in ("n_families", "n_models", "n_examples", "seed"):
            df[col] = pd.array([None if v is None or v != v else int(v) for v in df[col]],
                               dtype="Int64")
        return df

    def headline(self, shape: str = "inverse", *, q: float | None = None) -> str:
        """'k of T tasks show inverse scaling (BH q <= 0.05)': groups whose verdict is
        ``shape`` with Benjamini-Hochberg adjusted p at most ``q`` (default: the fits' alpha)."""
        q = self.meta.get("alpha", 0.05) if q is None else q
        s = self.summary()
        k = int(((s["verdict"] == shape) & (s["p_bh"] <= q)).sum())
        what = "tasks" if self.by == ("task",) else "groups"
        words = {"inverse": "inverse scaling", "positive": "positive scaling",
                 "u_shaped": "U-shaped scaling", "inverted_u": "inverted-U scaling"}
        return (f"{k} of {len(self.groups)} {what} show {words.get(shape, shape)} "
                f"(BH q \u2264 {q:.3g})")

    def to_dict(self) -> dict:
        """Plain JSON types; inverse of :meth:`from_dict`."""
        groups = []
        for key in self.groups:
            item = {"key": list(key) if isinstance(key, tuple) else key,
                    "seed": self.seeds.get(key)}
            if key in self.results:
                item["result"] = self.results[key].to_dict()
            else:
                item["error"] = self.errors[key]
            groups.append(item)
        return jsonable({"by": list(self.by), "meta": self.meta, "groups": groups,
                         "summary": self.summary()})

    def to_json(self, path=None, **kwargs) -> str:
        text = json.dumps(self.to_dict(), indent=kwargs.pop("indent", 2), **kwargs)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, d: dict) -> "ManyResult":
        """Rebuild from :meth:`to_dict` output (results without raw fits)."""
        by = tuple(d["by"])
        groups, results, errors, seeds = [], {}, {}, {}
        for item in d["groups"]:
            key = tuple(item["key"]) if len(by) > 1 else item["key"]
            groups.append(key)
            seeds[key] = item.get("seed")
            if "result" in item:
                results[key] = TrendResult.from_dict(item["result"])
            else:
                errors[key] = item["error"]
        return cls(by=by, groups=tuple(groups), results=results, errors=errors, seeds=seeds,
                   meta=dict(d.get("meta") or {}))

    def report(self, format: str = "html", out=None, **kwargs) -> str:
        """The screen document (:func:`scalingfit.screen.render_screen`): ``'html'`` or
        ``'markdown'``; written to ``out`` when given (with per-group reports beside HTML)."""
        from .screen import render_screen     # the renderer sits above the result (sanctioned)

        return render_screen(self, format=format, out=out, **kwargs)

    def _repr_html_(self) -> str:
        return self.summary().to_html(index=False, float_format=lambda v: f"{v:.4g}")

    def plot(self, axes=None, **kwargs):
        """Small multiples, one panel per fitted group; returns the Figure."""
        from .screen import plot_many         # the renderer sits above the result (sanctioned)

        return plot_many(self, axes=axes, **kwargs)


# ------------------------------------------------------------------------------- fitting
def _fit_group(key, rows: pd.DataFrame, kwargs: dict, seed: int):
    """One group's fit, on one BLAS / OpenMP thread (in a worker, or in this process for
    ``n_jobs=1``, so that both sum in the same order): ``(key, result or None, error or None,
    warning messages)``."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = fit_trend(rows, rng=seed, **kwargs), None
        except ScalingFitError as err:          # bad data: reported, not raised
            result, error = None, str(err)
    return key, result, error, [str(w.message) for w in caught
                                if issubclass(w.category, StatisticalWarning)]


def _check_options(kwargs: dict, n_jobs) -> dict:
    """Validate the options of ``fit_trend`` once (the same records, the same errors)."""
    if n_jobs is not None and (not isinstance(n_jobs, (int, np.integer))
                               or isinstance(n_jobs, bool) or n_jobs == 0):
        raise OptionError(f"n_jobs must be a non-zero whole number (-1: all cores); got "
                          f"{n_jobs!r}.")
    load_kw, fit_kw, bayes_kw = split_options(kwargs, LoadOptions, FitOptions, BayesOptions,
                                              where="fit_many")
    if "format" in load_kw:
        raise OptionError("format: pass it to fit_many itself (format=...), it says how to "
                          "read the path, before the table is grouped.")
    opts = FitOptions(**fit_kw)
    bayes_options_of(opts, bayes_kw)
    LoadOptions(**load_kw)
    return {**fit_kw, **bayes_kw, **{k: v for k, v in load_kw.items()
                                    if k in ("higher_is_better", "proportion")}}


def _group_kwargs(kwargs: dict, rows: pd.DataFrame) -> dict:
    """A ``higher_is_better`` column (lm-eval results record it per metric) sets the
    direction of its group when the caller did not."""
    if kwargs.get("higher_is_better") is None and "higher_is_better" in rows.columns:
        values = rows["higher_is_better"].dropna().unique()
        if len(values) == 1 and isinstance(values[0], (bool, np.bool_)):
            return {**kwargs, "higher_is_better": bool(values[0])}
    return kwargs


def _run(tasks: list, n_jobs, progress):
    """The group fits, through joblib (its active backend, or a local process pool)."""
    from joblib import Parallel, delayed, parallel_config
    from joblib.parallel import get_active_backend
    from tqdm.auto import tqdm

    backend, _ = get_active_backend()
    local = type(backend).__name__ in ("LokyBackend", "SequentialBackend")
    calls = (delayed(_fit_group)(*t) for t in tasks)
    bar = tqdm(total=len(tasks), desc="fit_many", unit="group",
               disable=None if progress is None else not progress)
    try:
        if local:
            with parallel_config(backend="loky", inner_max_num_threads=1):
                out = Parallel(n_jobs=n_jobs, return_as="generator")(calls)
                return [_tick(bar, o) for o in out]
        out = Parallel(n_jobs=n_jobs, return_as="generator")(calls)
        return [_tick(bar, o) for o in out]
    finally:
        bar.close()


def _collect(outputs, n_groups: int) -> tuple:
    """Fitted results and error messages by key; one warning naming the groups with notes."""
    fitted, errors, noted = {}, {}, []
    for key, result, error, caught in outputs:
        if error is None:
            fitted[key] = result
        else:
            errors[key] = error
        if caught:
            noted.append(_label(key))
    if noted:
        warnings.warn(f"{len(noted)} of {n_groups} groups have diagnostic warnings (e.g. "
                      f"{', '.join(noted[:3])}); see many[group].diagnostics.",
                      StatisticalWarning, stacklevel=3)
    return fitted, errors


def _tick(bar, item):
    bar.update(1)
    return item


def fit_many(results, *, by="task", n_jobs: int | None = None, progress: bool | None = None,
             format: str | None = None, task: str | None = None, metric: str | None = None,
             rng=None, **options) -> ManyResult:
    """Fit one scaling curve per group (task, task x metric, ...) and adjust across groups.

    Parameters
    ----------
    results : pandas.DataFrame or path-like
        A long table with the grouping columns: per-example or aggregated rows of many tasks
        (see :func:`scalingfit.load_results`; ``format='lm-eval-results'`` reads
        lm-evaluation-harness ``results_*.json`` files, ``'inspect'`` Inspect AI logs).
    by : str or list of str
        Grouping columns, e.g. ``'task'`` or ``['task', 'metric']``.
    n_jobs : int, optional
        Worker processes (joblib's ``n_jobs``: -1 for all cores). Default: 1, or the ``n_jobs``
        of an active ``joblib.parallel_config``. Each worker uses one BLAS / OpenMP / numba
        thread. The results do not depend on it.
    progress : bool, optional
        A tqdm progress bar over groups (default: when standard error is a terminal).
    format : str, optional
        Input format of a path.
    task, metric : str, optional
        Keep only this task / metric before grouping.
    rng : None, int or numpy.random.Generator
        The user's seed (a Generator draws one); each group's seed is :func:`group_seed` of it
        and the group's key. Recorded in ``meta['seed']`` and per group in ``seeds``.
    **options
        The keyword options of :func:`scalingfit.fit_trend` (``x``, ``method``, ``n_boot``,
        ``confidence_level``, ``flat_margin``, ``shapes``, ``chance``, ``higher_is_better``,
        ``proportion`` and the Bayesian engine's), validated once before any fit.

    Returns
    -------
    ManyResult

    Raises
    ------
    OptionError
        A bad option (before anything is read or fitted).
    DataValidationError
        The input cannot be read, or lacks a grouping column. A group whose own data is bad is
        not raised: it is a summary row with ``verdict='error'`` and the message.

    Notes
    -----
    To run on a cluster, activate a joblib backend around the call, e.g. with Dask::

        from dask.distributed import Client
        import joblib
        with Client(address), joblib.parallel_config(backend="dask"):
            many = fit_many(table, by="task", rng=0)

    Examples
    --------
    >>> from scalingfit.many import fit_many
    >>> many = fit_many("data/opt_isp_round1.csv", by="task", rng=0, progress=False)
    >>> many.headline()
    '0 of 4 tasks show inverse scaling (BH q \u2264 0.05)'
    >>> many.summary().loc[2, ["task", "verdict"]].tolist()
    ['redefine-math', 'error']
    """
    by, kwargs, seed = _by_columns(by), _check_options(options, n_jobs), _user_seed(rng)
    LoadOptions(format=format, task=task, metric=metric)
    tables = split_groups(results, by, format=format, task=task, metric=metric)
    seeds = {key: group_seed(seed, key) for key in tables}
    tasks = [(key, rows, _group_kwargs(kwargs, rows), seeds[key])
             for key, rows in tables.items()]
    fitted, errors = _collect(_run(tasks, n_jobs, progress), len(tables))
    meta = {"seed": seed, "by": list(by), "n_groups": len(tables),
            "alpha": 1 - kwargs.get("confidence_level", 0.95), "version": __version__,
            "options": {**kwargs, "format": format, "task": task, "metric": metric}}
    return ManyResult(by=by, groups=tuple(tables), results=fitted, errors=errors, seeds=seeds,
                      meta=meta)
