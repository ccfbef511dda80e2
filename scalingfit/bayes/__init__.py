"""Bayesian shape analysis with PyMC: posterior shape probabilities, per family, pooled and for a
new family.

``fit_trend(..., method="bayes")`` calls :func:`fit_bayes` with the bootstrap engine's result for
the same data and returns the same :class:`~scalingfit.results.TrendResult`, with the verdicts,
slope intervals and shape probabilities replaced by posterior quantities. This package is the
only place that imports PyMC, ArviZ, nutpie or numba, and only when a fit runs: importing it
imports none of them.

The rooms, in the order a fit passes through them:

* :mod:`~scalingfit.bayes.models` -- the priors (:data:`PRIORS`, written once), the design both
  models share and the PyMC model definitions (model-level and crossed);
* :mod:`~scalingfit.bayes.kernels` -- the same log densities as numba kernels with analytic
  gradients (cached on disk; no BLAS, so a seed gives the same draws on every CPU), their prior
  constants derived from :data:`PRIORS` by :func:`~scalingfit.bayes.models.kernel_constants`;
* :mod:`~scalingfit.bayes.sampling` -- nutpie / PyMC sampling, start points, the default
  ``target_accept`` and the sampler's convergence notes;
* :mod:`~scalingfit.bayes.engines` -- each model's data, compiled model and posterior curve
  draws (coefficients integrated out and drawn exactly from their conditional);
* :mod:`~scalingfit.bayes.summaries` -- the shape rule (:func:`classify_curves`), shape
  probabilities, verdict rows, slopes and turning points;
* :mod:`~scalingfit.bayes.loo` -- grouped PSIS-LOO of linear against quadratic curves with
  exact refits;
* :mod:`~scalingfit.bayes.pipeline` -- :func:`fit_bayes`, which only wires them.

References
----------
Vehtari, A. et al. (2021). Rank-normalization, folding, and localization: an improved R-hat.
Bayesian Analysis 16(2):667-718.
Betancourt, M. (2016). Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte
Carlo (E-BFMI). arXiv:1604.00695.
Seyboldt, A. et al. (2024). nutpie; Carpenter et al. (2017) Stan, for the NUTS variant.
"""

from .models import PRIORS
from .pipeline import fit_bayes
from .summaries import SHAPE_NAMES, classify_curves, shape_probabilities

__all__ = ["fit_bayes", "classify_curves", "shape_probabilities", "SHAPE_NAMES", "PRIORS"]
