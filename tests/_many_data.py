"""Simulated many-task tables for the tests of fit_many and the screen (not a test module)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: score change per decade of each true shape (performance scale, accuracy metric)
SLOPES = {"positive": 0.06, "inverse": -0.06, "flat": 0.0}


def aggregated_tasks(n_tasks=6, n_families=3, n_models=5, n=1000, *, shapes=None, rng=0,
                     model_sd=0.01) -> pd.DataFrame:
    """Aggregated accuracy rows ``task, family, model, n_params, metric, score, n``: task ``i``
    has true shape ``shapes[i % len(shapes)]`` in every family."""
    rng = np.random.default_rng(rng)
    shapes = shapes or ["inverse", "positive", "flat"]
    lx = np.linspace(8.0, 11.0, n_models)
    rows = []
    for t in range(n_tasks):
        slope = SLOPES[shapes[t % len(shapes)]]
        for f in range(n_families):
            base = rng.uniform(0.45, 0.65)
            p = base + slope * (lx - lx.mean()) + rng.normal(0, model_sd, n_models)
            acc = rng.binomial(n, np.clip(p, 0.02, 0.98)) / n
            for j in range(n_models):
                rows.append({"task": f"task{t:02d}", "family": f"fam{f}",
                             "model": f"fam{f}-m{j}", "n_params": float(10 ** lx[j]),
                             "metric": "accuracy", "score": acc[j], "n": n})
    return pd.DataFrame(rows)
