"""Property test of the table validator: any table is either valid or a named error.

hypothesis builds per-example tables with random edits (NaN, inf, strings, negative sizes,
duplicated rows, dropped examples, extra columns, odd dtypes) and checks that
:func:`load_results` either returns a table whose invariants hold or raises a
:class:`DataValidationError` -- never another exception, never a silently wrong table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalingfit import DataValidationError, load_results

EDITS = ["nan_score", "inf_score", "text_score", "neg_size", "text_size", "dup_row",
         "drop_example", "two_sizes", "bool_score", "huge_size", "object_ids", "none"]


def _base(n_models, n_examples, seed):
    rng = np.random.default_rng(seed)
    rows = [{"family": "f", "model": f"m{i}", "n_params": 10.0 ** (7 + i),
             "example_id": j, "score": float(rng.integers(0, 2))}
            for i in range(n_models) for j in range(n_examples)]
    return pd.DataFrame(rows)


def _edit(df, edit, row):
    df = df.copy()
    if len(df) == 0:
        return df
    row = row % len(df)
    if edit in ("nan_score", "inf_score") and df["score"].dtype == bool:
        df = df.astype({"score": object})
    if edit == "nan_score":
        df.loc[row, "score"] = np.nan
    elif edit == "inf_score":
        df.loc[row, "score"] = np.inf
    elif edit == "text_score":
        df = df.astype({"score": object})
        df.loc[row, "score"] = "0.5x"
    elif edit == "neg_size":
        df.loc[df["model"] == df.loc[row, "model"], "n_params"] = -1.0
    elif edit == "text_size":
        df = df.astype({"n_params": object})
        df.loc[row, "n_params"] = "1.3B"
    elif edit == "dup_row":
        df = pd.concat([df, df.iloc[[row]]], ignore_index=True)
    elif edit == "drop_example":
        df = df.drop(index=row).reset_index(drop=True)
    elif edit == "two_sizes":
        df.loc[row, "n_params"] = df.loc[row, "n_params"] * 2
    elif edit == "bool_score":
        df["score"] = df["score"].astype(bool)
    elif edit == "huge_size":
        df.loc[df["model"] == df.loc[row, "model"], "n_params"] = 1e300
    elif edit == "object_ids":
        df["example_id"] = df["example_id"].astype(str) + "-" + df["example_id"].astype(str)
    return df


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_models=st.integers(1, 5), n_examples=st.integers(1, 12), seed=st.integers(0, 99),
       edits=st.lists(st.tuples(st.sampled_from(EDITS), st.integers(0, 10**6)), max_size=3))
def test_any_table_is_valid_or_a_named_error(n_models, n_examples, seed, edits):
    df = _base(n_models, n_examples, seed)
    for edit, row in edits:
        df = _edit(df, edit, row)
    try:
        out = load_results(df)
    except DataValidationError as err:
        assert str(err) and "\n" not in str(err).strip()[:1]
        return
    # a table that passes holds what every later stage assumes
    assert np.isfinite(out["score"].to_numpy(dtype=float)).all()
    assert (out["n_params"].to_numpy(dtype=float) > 0).all()
    assert not out.duplicated(["family", "model", "example_id"]).any()
    sets = out.groupby("model")["example_id"].agg(frozenset)
    assert sets.nunique() == 1
    assert (out.groupby("model")["n_params"].nunique() == 1).all()
