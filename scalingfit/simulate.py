"""Simulate per-example results with a known true shape (for tests, calibration and examples).

Each example ``i`` has its own difficulty and each model ``m`` its own deviation from the smooth
curve (model-level noise), so the data have the structure that makes example-level tests
anti-conservative (METHODS section 1)::

    link(p_im) = a_f + d_i + g(t_m) + u_m,   score_im ~ Bernoulli(p_im),

with ``t_m`` in [-1, 1] the family's log size rescaled, ``u_m ~ N(0, model_sd^2)`` and
``g`` one of the shapes below. With ``link='identity'`` the curve is linear in the score itself,
so the true slope per decade is known exactly (``result.attrs['true_slope']``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .exceptions import OptionError

__all__ = ["simulate_results", "TRUE_SHAPES"]


def _g(shape: str, t: np.ndarray, effect: float) -> np.ndarray:
    if shape == "flat":
        return np.zeros_like(t)
    if shape == "positive":
        return effect * t / 2
    if shape == "inverse":
        return -effect * t / 2
    if shape == "u_shaped":
        return effect * t**2
    if shape == "inverted_u":
        return -effect * t**2
    raise OptionError(f"shape must be one of {TRUE_SHAPES}; got {shape!r}")


TRUE_SHAPES = ("flat", "positive", "inverse", "u_shaped", "inverted_u")


def simulate_results(shape: str = "flat", *, n_families: int = 1, n_models: int = 8,
                     n_examples: int = 400, effect: float = 1.0, model_sd: float = 0.1,
                     item_sd: float = 1.0, base: float = 0.6, link: str = "logit",
                     log10_range=(8.0, 11.0), rng=None) -> pd.DataFrame:
    """Per-example 0/1 results of ``n_families`` families with a known true shape.

    Parameters
    ----------
    shape : {'flat', 'positive', 'inverse', 'u_shaped', 'inverted_u'}
        True curve ``g``: monotone shapes change by ``effect`` from the smallest to the largest
        model; U shapes have ends ``effect`` above (or below) the middle.
    n_families, n_models, n_examples : int
        Families share the example set (one task); models are log-spaced over ``log10_range``.
    effect : float
        Size of the shape, in link units (logits, or score units for ``link='identity'``).
    model_sd : float
        SD of each model's deviation from the curve, in link units.
    item_sd : float
        SD of example difficulty (logit link) or of example base rates (identity link).
    base : float
        Typical probability of a correct answer at the middle of the range.
    link : {'logit', 'identity'}
    log10_range : (float, float)
    rng : None, int or numpy.random.Generator

    Returns
    -------
    pandas.DataFrame
        ``family, model, n_params, example_id, score`` with ``attrs`` holding the truth:
        ``shape``, and for the identity link ``true_slope`` (score per decade).
    """
    rng = np.random.default_rng(rng)
    lx = np.linspace(*log10_range, n_models)
    t = (lx - lx.mean()) / ((lx.max() - lx.min()) / 2)
    g = _g(shape, t, effect)
    if link == "logit":
        d = rng.normal(np.log(base / (1 - base)), item_sd, n_examples)
    elif link == "identity":
        d = np.clip(rng.normal(base, item_sd * 0.2, n_examples), 0.02, 0.98)
    else:
        raise OptionError(f"link must be 'logit' or 'identity'; got {link!r}")
    frames = []
    for f in range(n_families):
        a = rng.normal(0, 0.3 if link == "logit" else 0.03) if f else 0.0
        u = rng.normal(0, model_sd, n_models)
        eta = a + d[:, None] + (g + u)[None, :]
        p = 1 / (1 + np.exp(-eta)) if link == "logit" else np.clip(eta, 0, 1)
        scores = (rng.random(p.shape) < p).astype(float)
        n_params = np.round(10**lx).astype(np.int64)
        frames.append(pd.DataFrame({
            "family": f"fam{f}", "model": np.tile([f"fam{f}-{m}" for m in range(n_models)],
                                                  n_examples),
            "n_params": np.tile(n_params, n_examples),
            "example_id": np.repeat([f"ex{i}" for i in range(n_examples)], n_models),
            "score": scores.ravel()}))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["shape"] = shape
    if link == "identity" and shape in ("flat", "positive", "inverse"):
        out.attrs["true_slope"] = float(_g(shape, np.array([1.0]), effect)[0] * 2
                                        / (lx.max() - lx.min()))
    return out
