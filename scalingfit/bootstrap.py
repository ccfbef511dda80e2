"""Paired bootstrap of per-model scores, vectorised.

A replicate resamples example ids once and applies the draw to every model (examples are shared
by all models, so their scores are paired). A replicate is a row of multinomial example weights,
so all replicates of all models are one matrix product ``W @ S / n``; fitting every replicate is
one more product (:func:`scalingfit.metareg.batched_gls`). Model-level deviation, which
resampling examples cannot reproduce, is added as ``u ~ N(0, tau^2)`` per model and replicate.

References
----------
Miller, E. (2024). Adding error bars to evals: a statistical approach to language model
evaluations. arXiv:2411.00640.
Field, C. A. & Welsh, A. H. (2007). Bootstrapping clustered data. JRSS-B 69(3):369-390.
"""

from __future__ import annotations

import numpy as np

from .data import ModelScores
from .exceptions import OptionError

__all__ = ["as_generator", "paired_bootstrap_means", "replicate_scores"]


def as_generator(rng) -> tuple[np.random.Generator, object]:
    """Normalise ``rng`` (None, int seed or Generator) and return it with a recordable seed.

    With ``None`` a fresh seed is drawn from the OS and recorded, so that every result can be
    reproduced by passing ``rng=result.meta['seed']``.
    """
    if isinstance(rng, np.random.Generator):
        return rng, "generator"
    if rng is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
        return np.random.default_rng(seed), seed
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise OptionError(f"rng (the seed) must be a non-negative whole number; got {rng!r}.")
        return np.random.default_rng(int(rng)), int(rng)
    raise OptionError(f"rng must be None, a non-negative int seed or a numpy Generator; got "
                      f"{rng!r} ({type(rng).__name__}).")


def multinomial_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of each of ``n`` examples in ``n_boot`` resamples of size ``n``, shape (n_boot, n).

    Equivalent to ``rng.multinomial(n, [1/n] * n, size=n_boot)`` but several times faster: draw
    the resampled ids and count them with one ``bincount``.
    """
    ids = rng.integers(0, n, size=(n_boot, n))
    ids += np.arange(n_boot)[:, None] * n
    return np.bincount(ids.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


#: memory the replicate weights of one chunk may take (bytes); see :func:`paired_bootstrap_means`
CHUNK_BYTES = 64 * 2**20


def paired_bootstrap_means(matrix: np.ndarray, n_boot: int, rng: np.random.Generator,
                           blocks=None, *, chunk_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """Replicate per-model means under the paired (example-id) bootstrap.

    The replicates x examples weight matrix is built ``chunk_bytes`` at a time (its integer
    draws and counts), so peak memory stays bounded for large eval sets; the draws are taken in
    the same order as for one whole matrix, so the result is identical for the same seed
    (tested), whatever the chunk size.

    Parameters
    ----------
    matrix : ndarray, shape (n_examples, k)
        Example x model scores; models of a block share non-NaN rows.
    n_boot : int
    rng : numpy.random.Generator
    blocks : list of index arrays, optional
        Groups of columns scored on the same examples; each block is resampled independently.
    chunk_bytes : int
        Memory budget of one chunk of weights (default :data:`CHUNK_BYTES`, 64 MiB).

    Returns
    -------
    ndarray, shape (n_boot, k)
    """
    n_ex, k = matrix.shape
    blocks = blocks if blocks is not None else [np.arange(k)]
    out = np.empty((n_boot, k))
    for idx in blocks:
        rows = ~np.isnan(matrix[:, idx[0]])
        S = matrix[np.ix_(rows, idx)]
        n = S.shape[0]
        step = max(1, int(chunk_bytes // (24 * n)))     # int64 draws, int64 and float64 counts
        for start in range(0, n_boot, step):
            stop = min(start + step, n_boot)
            out[start:stop, idx] = (multinomial_weights(n, stop - start, rng) @ S) / n
    return out


def replicate_scores(ms: ModelScores, n_boot: int, rng: np.random.Generator,
                     tau2: np.ndarray | float = 0.0) -> np.ndarray:
    """Bootstrap replicates of all per-model scores, with model-level deviation added.

    Per-example input: the paired bootstrap. Aggregated input: a parametric draw from
    ``N(score, cov)``. Then ``N(0, tau2)`` model-level noise (``tau2`` scalar or per model).

    Returns
    -------
    ndarray, shape (n_boot, k)
    """
    y = ms.models["score"].to_numpy(dtype=float)
    if ms.matrix is not None:
        Y = paired_bootstrap_means(ms.matrix, n_boot, rng, ms.blocks)
    else:
        Y = y + rng.standard_normal((n_boot, len(y))) * np.sqrt(np.diag(ms.cov))
    tau = np.sqrt(np.broadcast_to(np.asarray(tau2, dtype=float), y.shape))
    return Y + rng.standard_normal(Y.shape) * tau
