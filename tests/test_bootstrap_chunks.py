"""The paired bootstrap in chunks: bounded memory, identical replicates for the same seed."""

import numpy as np
import pytest

from scalingfit.bootstrap import multinomial_weights, paired_bootstrap_means


@pytest.mark.parametrize("chunk_bytes", [1, 24 * 37 * 5, 10**12])
def test_chunked_replicates_equal_the_whole_matrix(chunk_bytes):
    """One row per chunk, a few rows per chunk and one chunk give the same replicates, and
    leave the generator in the same state: the draws are taken in the same order, so the
    weights are identical. The means agree to rounding (rtol 1e-13): BLAS sums a product of
    1 or 5 rows with other kernels than one of 203 (measured differences <= 2 ulp); with one
    chunk -- every eval set below the 64 MiB budget -- they are bit-identical."""
    rng = np.random.default_rng(0)
    matrix = rng.random((37, 6))
    matrix[30:, 3:] = np.nan                       # a second block scored on fewer examples
    blocks = [np.arange(3), np.arange(3, 6)]
    g_whole, g_chunk = np.random.default_rng(11), np.random.default_rng(11)
    want = np.empty((203, 6))
    for idx in blocks:                             # the old way: one weight matrix per block
        rows = ~np.isnan(matrix[:, idx[0]])
        S = matrix[np.ix_(rows, idx)]
        want[:, idx] = multinomial_weights(S.shape[0], 203, g_whole) @ S / S.shape[0]
    got = paired_bootstrap_means(matrix, 203, g_chunk, blocks, chunk_bytes=chunk_bytes)
    if chunk_bytes >= 24 * 203 * 37:
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    assert g_whole.random() == g_chunk.random()
