"""The canonical per-example record: its columns, the frame builder and class statistics.

A light module shared by the runner (``scalingfit.runner``) and the lm-eval log reader
(``scalingfit.lmeval``); it imports neither torch nor the runner.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "PROVENANCE_COLUMNS", "to_frame", "conform", "class_stats"]

#: canonical per-example columns and their dtypes, in output order
COLUMNS = {
    "family": "string", "model": "string", "n_params": "int64", "n_params_source": "string",
    "flops": "float64", "task": "string", "example_id": "string", "score": "float64",
    "metric": "string", "n_classes": "Int64", "loss": "float64", "logprob_correct": "float64",
    "coverage": "float64", "correct": "boolean", "correct_per_token": "boolean",
    "logodds_diff": "float64", "class_logprobs": "string", "class_ntokens": "string",
    "other_class_logprobs": "string", "other_class_ntokens": "string",
    # provenance (the runner writes them; NA for other sources)
    "item_hash": "string", "revision": "string", "model_commit": "string", "dtype": "string",
    "devices": "string", "batch_tokens": "Int64", "chat_template": "boolean",
    "torch_version": "string", "transformers_version": "string",
}
#: the provenance columns of :data:`COLUMNS`, written on every row by the runner
PROVENANCE_COLUMNS = ("item_hash", "revision", "model_commit", "dtype", "devices",
                      "batch_tokens", "chat_template", "torch_version", "transformers_version")


def to_frame(rows) -> pd.DataFrame:
    """Canonical DataFrame from row dicts (missing columns become NA)."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(COLUMNS))
    return frame.astype(COLUMNS)


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """A stored frame with the canonical columns (files written before a column was added get
    it as NA) in canonical order, then any others."""
    extra = [c for c in frame.columns if c not in COLUMNS]
    frame = frame.reindex(columns=list(COLUMNS) + extra)
    return frame.astype(COLUMNS)


def class_stats(logprobs, answer: int) -> dict:
    """Prize classification metrics from summed class log-probs (natural log).

    Returns
    -------
    dict
        ``loss`` = -log p(answer) renormalised over the classes, ``logprob_correct``,
        ``coverage`` = sum of the class probabilities, ``correct`` (argmax is the answer).
    """
    lp = np.asarray(logprobs, dtype=float)
    total = np.logaddexp.reduce(lp)
    correct = bool(np.argmax(lp) == answer)
    return {"loss": float(total - lp[answer]), "logprob_correct": float(lp[answer]),
            "coverage": float(np.exp(total)), "correct": correct}
