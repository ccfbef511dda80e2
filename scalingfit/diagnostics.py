"""Diagnostics: numbered, machine-readable notes about how far a verdict can be trusted.

Each note is a row ``code, severity, message, details`` (severity ``info`` or ``warning``); the
report prints them numbered under "Notes", and a :class:`StatisticalWarning` is emitted once when
any note is a warning.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .exceptions import StatisticalWarning

__all__ = ["note", "core_notes", "warn_notes", "NOTE_COLUMNS"]

NOTE_COLUMNS = ["code", "severity", "message", "details"]


def note(code: str, severity: str, message: str, **details) -> dict:
    """One diagnostic note."""
    return {"code": code, "severity": severity, "message": message, "details": details}


def warn_notes(notes: pd.DataFrame) -> None:
    """Emit one StatisticalWarning summarising the warning-level notes, if any."""
    if len(notes) == 0:
        return
    bad = notes[notes["severity"] == "warning"]
    if len(bad):
        codes = ", ".join(pd.unique(bad["code"]))
        warnings.warn(f"{len(bad)} diagnostic warning(s): {codes}; see result.diagnostics.",
                      StatisticalWarning, stacklevel=4)


def core_notes(result, ms) -> pd.DataFrame:
    """Notes every fit gets: data too thin for a U test, no flat margin, model-level noise."""
    out = []
    for _, row in result.families.iterrows():
        n = int(ms.models.loc[ms.models["family"] == row["family"], "x"].nunique())
        if n < 5 and {"u_shaped", "inverted_u"} & set(result.meta["shapes"]):
            out.append(note(
                "too_few_models", "info",
                f"family {row['family']!r} has {n} model sizes: U-shaped and inverted-U were not "
                "tested (they need at least 5).", family=row["family"], n_models=n))
        mean_var = float(ms.models.loc[ms.models["family"] == row["family"], "se"].pow(2).mean())
        if row["tau2"] > mean_var:
            out.append(note(
                "model_level_noise", "info",
                f"family {row['family']!r}: models scatter around the curve more than their "
                f"example-level error explains (tau^2 = {row['tau2']:.3g} vs mean sampling "
                f"variance {mean_var:.3g}); intervals are widened accordingly.",
                family=row["family"], tau2=float(row["tau2"]), sampling_var=mean_var))
    if result.meta["flat_margin"] is None:
        out.append(note(
            "no_flat_margin", "info",
            "no equivalence margin is known for this metric, so 'flat' cannot be shown; pass "
            "flat_margin= in score units.", metric=result.meta.get("metric")))
    if result.meta["n_families"] == 1:
        out.append(note("single_family", "info",
                        "one family only: generality across model families is untested.",
                        family=str(result.families["family"].iloc[0])))
    return pd.DataFrame(out, columns=NOTE_COLUMNS)
