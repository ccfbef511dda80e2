"""The model-family registry: public model families with sizes, training tokens and FLOPs.

A light module shared by the runner (``scalingfit.runner``) and the lm-eval log reader
(``scalingfit.lmeval``); it imports neither torch nor the runner.

The registry is ``data/model_families.csv`` (see ``data/README_model_families.md`` for every
number's source). Columns: ``family, model, n_params, n_params_exact, train_tokens,
train_flops, train_flops_estimated, source``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .exceptions import DataValidationError

__all__ = ["load_model_families", "family_models", "lookup_model", "REGISTRY_ENV"]

#: environment variable naming an alternative registry CSV
REGISTRY_ENV = "SCALINGFIT_MODEL_FAMILIES"
_COLUMNS = ("family", "model", "n_params", "n_params_exact", "train_tokens", "train_flops",
            "train_flops_estimated", "source")


def _default_path() -> Path:
    """The registry: ``$SCALINGFIT_MODEL_FAMILIES``, else the repository's ``data/`` file, else
    the copy installed with the package (``scalingfit/model_families.csv``, a symlink to the
    ``data/`` file in the source tree that wheels store as a file)."""
    if os.environ.get(REGISTRY_ENV):
        return Path(os.environ[REGISTRY_ENV])
    here = Path(__file__).parent
    candidates = [here.resolve().parent / "data" / "model_families.csv",
                  here / "model_families.csv"]
    return next((p for p in candidates if p.exists()), candidates[0])


def load_model_families(path=None) -> pd.DataFrame:
    """Read the model-family registry.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        Registry CSV. Default: ``$SCALINGFIT_MODEL_FAMILIES`` or ``data/model_families.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per model, sorted by family then ``n_params``.

    Raises
    ------
    DataValidationError
        The file lacks a registry column.
    """
    path = Path(path) if path is not None else _default_path()
    frame = pd.read_csv(path)
    missing = [c for c in _COLUMNS if c not in frame]
    if missing:
        raise DataValidationError(
            f"model registry {str(path)!r} is missing column {missing[0]!r}; got "
            f"{list(frame.columns)}. A registry needs columns {list(_COLUMNS)}.")
    frame = frame.astype({"n_params": "int64", "n_params_exact": bool,
                          "train_flops_estimated": bool})
    return frame.sort_values(["family", "n_params"], kind="stable").reset_index(drop=True)


def family_models(family: str, registry: pd.DataFrame | None = None) -> list[str]:
    """Hub ids of a family's models, smallest first.

    Raises
    ------
    DataValidationError
        ``family`` is not in the registry (the message lists the families that are).
    """
    registry = load_model_families() if registry is None else registry
    rows = registry[registry["family"].str.lower() == family.lower()]
    if rows.empty:
        raise DataValidationError(
            f"family must be one of {sorted(registry['family'].unique())}; got {family!r}. "
            "Use models=[...] (--models) for models outside the registry.")
    return rows.sort_values("n_params", kind="stable")["model"].tolist()


def lookup_model(model: str, registry: pd.DataFrame | None = None) -> dict | None:
    """The registry row of a hub id (case-insensitive) as a dict, or None."""
    registry = load_model_families() if registry is None else registry
    rows = registry[registry["model"].str.lower() == str(model).lower()]
    return None if rows.empty else rows.iloc[0].to_dict()
