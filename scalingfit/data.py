"""Data in: read and validate a results table, and reduce it to per-model scores.

Two input forms are accepted (see :func:`load_results`):

* **per-example** -- one row per model x example: ``family, model, n_params, example_id, score``;
* **aggregated** -- one row per model: ``family, model, n_params, score`` and ``n`` and/or ``se``.

Everything downstream works on a :class:`ModelScores`: one score per model, the within-model
sampling covariance of those scores across models, and (per-example input) the example x model
score matrix that the paired bootstrap resamples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import DataValidationError
from .options import LoadOptions
from .readers import read_path

__all__ = ["load_results", "ModelScores", "model_scores", "metric_base", "degenerate_families",
           "PROPORTION_METRICS"]

REQUIRED_PER_EXAMPLE = ("model", "n_params", "example_id", "score")
REQUIRED_AGGREGATED = ("model", "n_params", "score")
#: metric names read as proportions in [0, 1] (checked) unless ``proportion=False`` is given
PROPORTION_METRICS = ("accuracy", "acc", "acc_norm", "exact_match", "em", "correct", "f1",
                      "pass@1", "pass_at_1", "win_rate", "label_prob_coverage", "coverage",
                      "mc1", "mc2", "mc3", "acc_mutual_info", "prompt_level_strict_acc",
                      "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")
#: example ids that name a summary row (a per-model mean appended to per-example rows)
_SUMMARY_IDS = ("mean", "average", "avg", "total", "all", "overall", "summary")
# a "neg_" prefix (neg_loss = -loss, as the runner writes for sequence_prob) means higher is better
_LOWER_IS_BETTER = re.compile(
    r"^(?!neg)(.*(loss|nll|error|perplexity|ppl|bpb|bits_per|brier).*"
    r"|(.*[_\-])?(ece|mse|rmse|mae|wer|cer)([_\-@].*)?)$", re.I)
_MAX_LISTED = 5


def _rows(index) -> str:
    """Format offending row labels: at most five, then a count of the rest."""
    index = list(index)
    shown = ", ".join(str(i) for i in index[:_MAX_LISTED])
    more = len(index) - _MAX_LISTED
    return f"{shown} (and {more} more)" if more > 0 else shown


def _val(v):
    """A numpy scalar as its plain Python value, so messages read ``0.0`` not ``np.float64``."""
    return v.item() if hasattr(v, "item") else v


def _require(df: pd.DataFrame, columns, hint: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"results is missing column {missing[0]!r}; got {list(map(str, df.columns))}. {hint}")


def _check_no_nan(df: pd.DataFrame, columns) -> None:
    for col in columns:
        bad = df.index[df[col].isna()]
        if len(bad):
            raise DataValidationError(
                f"column {col!r} has missing values (NaN) in rows {_rows(bad)}; drop or fill "
                "those rows before fitting.")


def _check_finite(df: pd.DataFrame, columns) -> None:
    for col in columns:
        bad = df.index[np.isinf(df[col].to_numpy(dtype=float))]   # NaN: reported before
        if len(bad):
            raise DataValidationError(
                f"column {col!r} has infinite values in rows {_rows(bad)} (e.g. "
                f"{_val(df.loc[bad[0], col])!r}); a log-prob of -inf or a loss of inf cannot be "
                "fitted. Clip or drop those rows before fitting.")


_MAX_MAGNITUDE = 1e100   # scores / SEs at or above this overflow when squared (covariances)


def _check_magnitude(df: pd.DataFrame, columns) -> None:
    for col in columns:
        bad = df.index[np.abs(df[col].to_numpy(dtype=float)) >= _MAX_MAGNITUDE]
        if len(bad):
            raise DataValidationError(
                f"column {col!r} holds values of magnitude >= {_MAX_MAGNITUDE:g} in rows "
                f"{_rows(bad)} (e.g. {_val(df.loc[bad[0], col])!r}); their squares overflow. "
                "Rescale the scores (every verdict is scale-free), e.g. divide by 1e100.")


def _to_numeric(df: pd.DataFrame, col: str) -> None:
    kind = df[col].dtype.kind
    if kind in "mMc" or (kind == "O" and df[col].map(
            lambda v: isinstance(v, (complex, pd.Timestamp, pd.Timedelta))).any()):
        what = {"m": "durations", "M": "dates", "c": "complex numbers"}.get(kind, "dates, "
                                                                           "durations or complex numbers")
        raise DataValidationError(
            f"column {col!r} holds {what} (dtype {df[col].dtype}), not plain numbers; convert "
            "it to a float column (e.g. sizes in parameters, scores in [0, 1]) before fitting.")
    values = pd.to_numeric(df[col], errors="coerce")
    bad = df.index[values.isna() & df[col].notna()]
    if len(bad):
        raise DataValidationError(
            f"column {col!r} must be numeric; rows {_rows(bad)} hold "
            f"{_val(df.loc[bad[0], col])!r}. Give plain numbers (e.g. 1.3e9, not '1.3B').")
    df[col] = values.astype(float)


def _check_sizes(df: pd.DataFrame, col: str) -> None:
    bad = df.index[df[col] <= 0]
    if len(bad):
        raise DataValidationError(
            f"column {col!r} must be positive (it is put on a log scale); rows {_rows(bad)} hold "
            f"{_val(df.loc[bad[0], col])!r}. Give the size in parameters (e.g. 1.3e9), or "
            "drop those rows.")
    sizes = df.groupby(["family", "model"], sort=False)[col].nunique()
    two = sizes[sizes > 1]
    if len(two):
        fam, model = two.index[0]
        vals = sorted(df.loc[(df.family == fam) & (df.model == model), col].unique())
        rows = df.index[(df.family == fam) & (df.model == model)]
        raise DataValidationError(
            f"model {model!r} (family {fam!r}) has {len(vals)} different values of {col!r}: "
            f"{[_val(v) for v in vals[:4]]} in rows {_rows(rows)}; each model must have one "
            "size. Fix the size, or give the variants different model names.")


def _check_duplicates(df: pd.DataFrame, keys: list[str]) -> None:
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        rows = df.index[dup]
        first = df.loc[rows[0], keys].to_dict()
        raise DataValidationError(
            f"duplicate rows for the same {' x '.join(keys[1:])}: rows {_rows(rows)} "
            f"(e.g. {first}). Each model x example must appear once; drop duplicates or average "
            "repeated runs first.")


#: columns whose levels are prompt variants / sub-tasks of one task (the report refits each)
VARIANT_COLUMNS = ("subtask", "variant")


def _qualify_example_ids(df: pd.DataFrame) -> None:
    """Prefix example ids with their ``subtask`` / ``variant`` level when the same ids recur
    across levels (each level a prompt variant of the same items): ``'v1/e7'``. Every
    (level, example) pair is then one item of the task."""
    levels = [c for c in VARIANT_COLUMNS if c in df.columns]
    keys = ["family", "model", "example_id"]
    if not levels or not df.duplicated(keys).any():
        return
    if df.duplicated([*keys[:2], *levels, "example_id"]).any():
        return                                      # real duplicates: reported by the caller
    df["example_id"] = df[levels].astype(str).agg("/".join, axis=1) + "/" + df["example_id"]


def _check_example_sets(df: pd.DataFrame) -> None:
    # (rows are unique by now) the sets agree iff each model has its family's number of ids
    fam, model, ex = (pd.factorize(df[c])[0].astype(np.int64)
                      for c in ("family", "model", "example_id"))
    n_fam, n_ex = fam.max() + 1, ex.max() + 1
    pairs, rows = np.unique(model * n_fam + fam, return_counts=True)
    if np.all(rows == np.bincount(np.unique(fam * n_ex + ex) // n_ex, minlength=n_fam)[
            pairs % n_fam]):
        return
    for fam, sub in df.groupby("family", sort=False):
        sets = sub.groupby("model", sort=False)["example_id"].agg(frozenset)
        union = frozenset().union(*sets)
        for model, ids in sets.items():
            missing = union - ids
            if missing:
                raise DataValidationError(
                    f"in family {fam!r}, model {model!r} lacks {len(missing)} of the "
                    f"{len(union)} example ids the other models have (e.g. "
                    f"{sorted(map(str, missing))[:3]}). Paired analysis needs every model scored "
                    "on the same examples: re-run the missing examples or drop them for all "
                    "models.")


def _check_proportion(df: pd.DataFrame, metric: str | None) -> None:
    bad = df.index[(df["score"] < 0) | (df["score"] > 1)]
    if len(bad):
        raise DataValidationError(
            f"column 'score' must lie in [0, 1] for the proportion metric {metric!r}; rows "
            f"{_rows(bad)} hold {_val(df.loc[bad[0], 'score'])!r}. Rescale percentages to [0, 1], or "
            "pass proportion=False if the metric is not a proportion.")


def _single_value(df: pd.DataFrame, col: str, chosen, argname: str):
    """Filter ``df`` to one value of ``col`` (task, metric), or fail naming the choices."""
    if col not in df.columns:
        if chosen is not None:
            raise DataValidationError(
                f"{argname}={chosen!r} was given but results has no {col!r} column.")
        return df, None
    values = list(pd.unique(df[col].dropna()))
    if chosen is None:
        if len(values) > 1:
            raise DataValidationError(
                f"results holds {len(values)} values of {col!r}: {values[:6]}; pass "
                f"{argname}=<one of them> (--{argname} on the command line) to choose which to "
                "fit, or fit them all with fit_many (scalingfit screen).")
        return df, (values[0] if values else None)
    if chosen not in values:
        raise DataValidationError(
            f"{argname}={chosen!r} not found in column {col!r}; choose one of {values[:10]}.")
    return df[df[col] == chosen], chosen


def load_results(source, *, format: str | None = None, task: str | None = None,
                 metric: str | None = None, higher_is_better: bool | None = None,
                 proportion: bool | None = None) -> pd.DataFrame:
    """Read and validate a results table.

    Parameters
    ----------
    source : pandas.DataFrame or path-like
        A DataFrame, or a path to a CSV, Parquet or JSONL file, or a directory of Parquet files
        written by ``scalingfit run``.
    format : {None, 'csv', 'parquet', 'jsonl', 'lm-eval'}
        File format; by default read from the suffix. ``'lm-eval'`` reads
        lm-evaluation-harness ``--log_samples`` output.
    task, metric : str, optional
        Keep only this task / metric when the table holds several.
    higher_is_better : bool, optional
        Whether larger scores are better. Default: False when the metric name looks like a loss
        (loss, nll, error, perplexity, ...), True otherwise.
    proportion : bool, optional
        Whether scores are proportions (checked to lie in [0, 1]). Default: True for metrics
        named like accuracy, or when every score is 0 or 1.

    Returns
    -------
    pandas.DataFrame
        The validated long table, with canonical columns (``family`` filled with ``"all"`` when
        absent) and ``attrs["scalingfit"]`` recording the form (``"per_example"`` or
        ``"aggregated"``), ``task``, ``metric``, ``higher_is_better`` and ``proportion``.

    Raises
    ------
    DataValidationError
        Naming the column, the offending rows and the fix: missing columns, NaN, non-numeric or
        non-positive sizes, two sizes for one model, duplicate model x example rows, models of
        one family scored on different examples, proportions outside [0, 1].

    Examples
    --------
    >>> from scalingfit import load_results
    >>> table = load_results("data/synthetic_families.csv")
    >>> table.attrs["scalingfit"]["form"]
    'per_example'
    """
    LoadOptions(format=format, task=task, metric=metric, higher_is_better=higher_is_better,
                proportion=proportion)          # types and choices, before anything is read
    df, higher_is_better, proportion = _read_source(source, format, higher_is_better,
                                                    proportion)
    df, task = _single_value(df, "task", task, "task")
    df, metric = _single_value(df, "metric", metric, "metric")
    df = df.reset_index(drop=True)
    per_example = "example_id" in df.columns
    _check_columns(df, per_example)
    _coerce_and_check(df, per_example)
    metric_name = metric if metric is not None else (
        "accuracy" if df["score"].isin([0.0, 1.0]).all() and per_example else None)
    base = metric_base(metric_name)
    if per_example and proportion is None:
        _check_binary_typos(df)
    if higher_is_better is None:
        higher_is_better = not (base and _LOWER_IS_BETTER.search(base))
    if proportion is None:
        proportion = bool(base and base.lower() in PROPORTION_METRICS) or (
            per_example and df["score"].isin([0.0, 1.0]).all()) or _looks_like_accuracy(df)
    if proportion:
        _check_proportion(df, metric_name)
    df.attrs["scalingfit"] = {
        "form": "per_example" if per_example else "aggregated", "task": task,
        "metric": metric_name, "higher_is_better": bool(higher_is_better),
        "proportion": bool(proportion)}
    return df


def metric_base(metric) -> str | None:
    """The metric's own name without an lm-evaluation-harness filter suffix: 'acc,none' ->
    'acc', 'exact_match,strict-match' -> 'exact_match' (None stays None)."""
    return None if metric is None else str(metric).split(",")[0].strip()


def _check_binary_typos(df: pd.DataFrame) -> None:
    """Per-example scores that are 0/1 but for a few rows: a typo, not a continuous metric.

    Read as continuous, one stray ``2`` would silently change the analysis (no proportion
    margin, no binomial errors); at most 1% of the rows (and at most 5) off {0, 1} is read as
    a typo to fix, more as a real continuous score.
    """
    off = ~df["score"].isin([0.0, 1.0])
    n_off = int(off.sum())
    if 0 < n_off <= min(5, 0.01 * len(df)):
        rows = df.index[off]
        raise DataValidationError(
            f"column 'score' is 0/1 in all but rows {_rows(rows)} (e.g. "
            f"{_val(df.loc[rows[0], 'score'])!r}): a typo? Fix those rows, or pass "
            "proportion=False if the score really is continuous.")


def _check_summary_rows(df: pd.DataFrame) -> None:
    """An appended per-model mean ('mean', 'average', ...) is not one more example."""
    ids = df["example_id"].astype(str).str.strip().str.lower()
    bad = df.index[ids.isin(_SUMMARY_IDS)]
    if len(bad):
        raise DataValidationError(
            f"rows {_rows(bad)} have example_id {df.loc[bad[0], 'example_id']!r}: a summary row "
            "(a per-model mean), not an example. Drop those rows: the per-model means are "
            "computed from the examples.")


def _family_signature(sub: pd.DataFrame, per_example: bool, example_code=None):
    """What a family's evidence is: its sizes and scores (per example, in example order)."""
    if per_example:   # ids as their ranks among all ids: one numeric array, hashed as bytes
        rows = np.column_stack([sub["n_params"], example_code, sub["score"]]).astype(float)
        rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
        return rows.shape, hash(rows.tobytes())
    cols = ["n_params", "score", *[c for c in ("n", "se") if c in sub.columns]]
    rows = sub[cols].sort_values(cols[:2]).to_numpy()
    return rows.shape, hash(rows.tobytes()) if rows.dtype != object else hash(
        tuple(map(tuple, rows)))


def _check_copied_families(df: pd.DataFrame, per_example: bool) -> None:
    """A family that repeats another's sizes and scores exactly is the same evidence twice
    (pseudo-replication): it would tighten the pooled interval for nothing."""
    seen = {}
    code = pd.factorize(df["example_id"], sort=True)[0] if per_example else None
    for fam, pos in df.groupby("family", sort=False).indices.items():   # positions, in order
        if (sub := df.iloc[pos])["score"].nunique() == 1:
            continue          # one score everywhere (a floor or ceiling): degenerate, not a copy
        key = _family_signature(sub, per_example, None if code is None else code[pos])
        if key in seen:
            raise DataValidationError(
                f"family {fam!r} repeats family {seen[key]!r} exactly (the same sizes and "
                f"{'per-example scores' if per_example else 'scores'}): a copied family counts "
                "the same evidence twice. Drop one of them, or fix the copy.")
        seen[key] = fam


def _read_source(source, format, higher_is_better, proportion):
    """The raw table of ``source`` with string column names and a fresh index; a table
    validated before keeps the choices made then (``fit_trend(load_results(df,
    higher_is_better=False))`` must not guess the direction again from the metric name)."""
    if isinstance(source, pd.DataFrame):
        before = dict(source.attrs.get("scalingfit") or {})
        higher_is_better = before.get("higher_is_better") if higher_is_better is None \
            else higher_is_better
        proportion = before.get("proportion") if proportion is None else proportion
        df = source.copy()
    elif isinstance(source, (str, Path)):
        df = read_path(Path(source), format)
    else:
        raise DataValidationError(
            f"results must be a pandas DataFrame or a path; got {type(source).__name__}.")
    if len(df) == 0:
        raise DataValidationError("results is empty: it has no rows.")
    df.columns = [str(c) for c in df.columns]
    return df.reset_index(drop=True), higher_is_better, proportion


def _check_columns(df: pd.DataFrame, per_example: bool) -> None:
    """The columns the form needs; ``family`` is added (``"all"``) when absent."""
    if per_example:
        _require(df, REQUIRED_PER_EXAMPLE,
                 "Per-example results need model, n_params, example_id and score.")
    else:
        _require(df, REQUIRED_AGGREGATED,
                 "Add the model size in parameters as 'n_params'." if "n_params" not in df
                 else "Aggregated results need model, n_params, score and n or se.")
        if "n" not in df.columns and "se" not in df.columns:
            raise DataValidationError(
                "aggregated results (no 'example_id' column) need column 'n' (examples behind "
                "each mean) or 'se' (its standard error); got "
                f"{list(df.columns)}. Add one, or give per-example rows with 'example_id'.")
    if "family" not in df.columns:
        df.insert(0, "family", "all")


def _coerce_and_check(df: pd.DataFrame, per_example: bool) -> None:
    """NaN, numeric types, finite values, sizes, duplicates and example sets, in place."""
    required = ["family", *(REQUIRED_PER_EXAMPLE if per_example else REQUIRED_AGGREGATED)]
    required += [c for c in ("n", "se") if c in df.columns and not per_example]
    _check_no_nan(df, required)
    numeric = ("n_params", "score", *[c for c in ("n", "se", "flops") if c in df.columns])
    for col in numeric:
        _to_numeric(df, col)
    _check_finite(df, numeric)
    _check_magnitude(df, [c for c in ("score", "se") if c in df.columns])
    df["family"] = df["family"].astype(str)
    df["model"] = df["model"].astype(str)
    _check_sizes(df, "n_params")
    if "flops" in df.columns and df["flops"].notna().all():
        _check_sizes(df, "flops")
    if per_example:
        df["example_id"] = df["example_id"].astype(str)
        _check_summary_rows(df)
        _qualify_example_ids(df)
        _check_duplicates(df, ["family", "model", "example_id"])
        _check_example_sets(df)
    else:
        _check_duplicates(df, ["family", "model"])
        _check_aggregated(df)
    _check_copied_families(df, per_example)


def _looks_like_accuracy(df: pd.DataFrame) -> bool:
    """Aggregated means with ``n`` but no ``se``, all in [0, 1] and no metric name: read as
    proportions (binomial standard errors), the form ``family, model, n_params, score, n``."""
    return ("example_id" not in df.columns and "n" in df.columns and "se" not in df.columns
            and "metric" not in df.columns and bool(df["score"].between(0.0, 1.0).all()))


def _check_aggregated(df: pd.DataFrame) -> None:
    if "n" in df.columns:
        bad = df.index[df["n"] < 1]
        if len(bad):
            raise DataValidationError(
                f"column 'n' (examples behind each score) must be at least 1; rows {_rows(bad)} "
                f"hold {_val(df.loc[bad[0], 'n'])!r}. Give the number of examples each score "
                "averages, or drop those models.")
    if "se" in df.columns:
        bad = df.index[df["se"] < 0]
        if len(bad):
            raise DataValidationError(
                f"column 'se' must be non-negative; rows {_rows(bad)} hold "
                f"{_val(df.loc[bad[0], 'se'])!r}. Give the standard error of each model's mean.")


@dataclass
class ModelScores:
    """Per-model scores of one task, ready for fitting.

    Attributes
    ----------
    models : pandas.DataFrame
        One row per model, ordered by family then size: ``family, model, x, log10_x, score, se,
        n_examples``.
    cov : ndarray, shape (k, k)
        Within-model sampling covariance of the scores (paired across models: the closed-form
        limit of the paired bootstrap for per-example input; diagonal for aggregated input).
    matrix : ndarray, shape (n_examples, k), optional
        Example x model scores (per-example input only), in ``models`` order. Families that were
        scored on different example sets are padded with NaN (see ``blocks``).
    blocks : list of ndarray
        Column indices of models that share one example set (their covariance is estimated
        jointly; across blocks it is zero).
    meta : dict
        ``form, task, metric, higher_is_better, proportion, x``.
    """

    models: pd.DataFrame
    cov: np.ndarray
    matrix: np.ndarray | None
    blocks: list
    meta: dict = field(default_factory=dict)

    @property
    def families(self) -> list[str]:
        return list(pd.unique(self.models["family"]))

    def family_index(self, family: str) -> np.ndarray:
        return np.flatnonzero(self.models["family"].to_numpy() == family)


def _x_column(df: pd.DataFrame, x: str) -> pd.Series:
    if x not in ("n_params", "flops"):
        raise DataValidationError(f"x must be 'n_params' or 'flops'; got {x!r}.")
    if x not in df.columns:
        raise DataValidationError(
            f"x='flops' needs a 'flops' column (training compute per model); got "
            f"{list(df.columns)}. Add it, or use x='n_params'.")
    bad = df.index[df[x].isna()]
    if len(bad):
        raise DataValidationError(
            f"column {x!r} has missing values in rows {_rows(bad)}; x={x!r} needs it for every "
            "model. Fill it, or use x='n_params'.")
    return df[x]


def model_scores(table: pd.DataFrame, *, x: str = "n_params") -> ModelScores:
    """Reduce a validated results table to per-model scores and their paired covariance.

    For per-example input the covariance of the model means is the plug-in covariance of the
    example scores divided by the number of examples, ``S_c' S_c / n^2`` -- the exact limit of the
    paired bootstrap that resamples example ids once and applies them to every model
    (Miller 2024, "Adding error bars to evals", arXiv:2411.00640). Models of families that share
    the example set are correlated; families with different example sets are independent.
    For aggregated input the covariance is diagonal: ``se**2``, or the binomial
    ``p (1 - p) / n`` for proportions (``score**2 / n`` is never used for other metrics: give
    ``se``).

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`load_results`.
    x : {'n_params', 'flops'}
        The scale variable (put on log10).

    Returns
    -------
    ModelScores
    """
    meta = dict(table.attrs.get("scalingfit") or load_results(table).attrs["scalingfit"])
    meta["x"] = x
    xs = _x_column(table, x)
    df = table.assign(_x=xs)
    df.attrs = {}           # else pandas deep-copies the table's attrs on every operation
    if meta["form"] == "per_example":
        return _per_example_scores(df, meta)
    return _aggregated_scores(df, meta)


def degenerate_families(ms: ModelScores) -> list:
    """Families of ``ms`` that score the same on every example of every model (all 0, or all
    1): zero sampling variance and one distinct score, so no information about a trend. Left
    in the pooled verdict, such a family pins the common curve flat with a vanishing interval.
    """
    var = np.diag(ms.cov)
    y = ms.models["score"].to_numpy(dtype=float)
    out = []
    for fam in ms.families:
        idx = ms.family_index(fam)
        if np.all(var[idx] <= 0) and np.ptp(y[idx]) == 0:
            out.append(fam)
    return out


def _order_models(df: pd.DataFrame) -> pd.DataFrame:
    order = pd.unique(df["family"])
    rank = {f: i for i, f in enumerate(order)}
    return df.assign(_fam_rank=df["family"].map(rank)).sort_values(
        ["_fam_rank", "_x", "model"], kind="stable")


def _per_example_scores(df: pd.DataFrame, meta: dict) -> ModelScores:
    keys = _order_models(df.drop_duplicates(["family", "model"])[["family", "model", "_x"]])
    # pivot_table(index='example_id', columns=['family', 'model'], sort=False), from codes
    row, ids = pd.factorize(df["example_id"])
    S = np.full((len(ids), len(keys)), np.nan)
    S[row, pd.MultiIndex.from_frame(keys[["family", "model"]]).get_indexer(
        pd.MultiIndex.from_arrays([df["family"], df["model"]]))] = df["score"].to_numpy(float)
    k = S.shape[1]
    cov = np.zeros((k, k))
    blocks = []
    # models sharing an example set form one block (identical NaN pattern)
    patterns = {}
    for j in range(k):
        patterns.setdefault(np.isnan(S[:, j]).tobytes(), []).append(j)
    for cols_j in patterns.values():
        idx = np.array(cols_j)
        rows = ~np.isnan(S[:, idx[0]])
        block = S[np.ix_(rows, idx)]
        n = block.shape[0]
        centred = block - block.mean(axis=0)
        cov[np.ix_(idx, idx)] = centred.T @ centred / n**2
        blocks.append(idx)
    n_ex = (~np.isnan(S)).sum(axis=0)
    models = keys.rename(columns={"_x": "x"}).drop(columns="_fam_rank").reset_index(drop=True)
    models["log10_x"] = np.log10(models["x"].to_numpy(dtype=float))
    models["score"] = np.nanmean(S, axis=0)
    models["se"] = np.sqrt(np.diag(cov))
    models["n_examples"] = n_ex
    return ModelScores(models=models, cov=cov, matrix=S, blocks=blocks, meta=meta)


def _aggregated_scores(df: pd.DataFrame, meta: dict) -> ModelScores:
    df = _order_models(df).reset_index(drop=True)
    p = df["score"].to_numpy(dtype=float)
    if "se" in df.columns and df["se"].notna().all():
        se = df["se"].to_numpy(dtype=float)
    elif meta["proportion"]:
        n = df["n"].to_numpy(dtype=float)
        # binomial SE, floored at half an example so a 0% or 100% model keeps a non-zero SE
        se = np.sqrt(np.clip(p * (1 - p), 0.5 / n, None) / n)
    else:
        raise DataValidationError(
            f"aggregated scores of the non-proportion metric {meta['metric']!r} need column "
            "'se' (standard error of each model's mean); 'n' alone is enough only for "
            "proportions. Add 'se', or pass proportion=True if the scores are accuracies.")
    models = df[["family", "model", "_x"]].rename(columns={"_x": "x"})
    models["log10_x"] = np.log10(models["x"].to_numpy(dtype=float))
    models["score"] = p
    models["se"] = se
    models["n_examples"] = df["n"].to_numpy() if "n" in df.columns else np.nan
    blocks = [np.array([j]) for j in range(len(df))]
    return ModelScores(models=models, cov=np.diag(se**2), matrix=None, blocks=blocks, meta=meta)

