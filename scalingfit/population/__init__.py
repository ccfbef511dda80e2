"""Population-level inference: model families as a random effect on the curve's coefficients.

The pooled verdict of :mod:`scalingfit.shapes` fits family intercepts and *one common curve*:
it answers "do these families share one curve?", and differences between the families' slopes
never enter its standard error (METHODS section 8). A claim about families in general -- the
Inverse Scaling Prize's generality criterion -- treats the family as a level of the hierarchy::

    b_f = beta + delta_f + e_f,   delta_f ~ N(0, tau^2),   e_f ~ N(0, v_f),

where ``b_f`` is family ``f``'s coefficient (slope per decade, curvature, a two-lines slope)
estimated by the model-level engine (stage 1: :func:`scalingfit.shapes.analyse_shape`, its
Knapp-Hartung variance ``v_f``), ``beta`` the population mean and ``tau^2`` the between-family
variance. This module is stage 2 of a two-stage individual-participant-data meta-analysis
(Riley et al. 2021): univariate random-effects meta-analyses of the family coefficients with
REML ``tau^2`` and a Hartung-Knapp-Sidik-Jonkman (HKSJ) reference, t with ``F - 1`` degrees of
freedom -- the number of *families*, not of models.

Two questions are named apart:

* **these families** -- the common-effect (inverse-variance) average of the observed families'
  coefficients. It estimates a weighted average of *these* families' true slopes (Rice, Higgins &
  Lumley 2018) and ignores ``tau^2``: the answer for "do the families we looked at, on average,
  scale?".
* **a new family** -- the prediction interval ``beta +- t(F-2) sqrt(tau^2 + SE^2)`` (Higgins,
  Thompson & Spiegelhalter 2009): where the slope of a family not yet evaluated would fall.

The population verdict (:func:`population_verdict`) is about ``beta``, the mean over families in
general, with the HKSJ interval; it is the answer to the generality criterion. It follows the
gated procedure of :mod:`scalingfit.shapes` at the population level, with univariate
meta-analyses per coefficient and intersection-union rules instead of a multivariate
between-family covariance (with 2-8 families a 2 x 2 REML covariance is barely identified;
the calibration in ``docs/calibration.md`` shows the univariate rules hold their level).

References
----------
Hartung & Knapp (2001), Stat. Med. 20:3875. Sidik & Jonkman (2002), Stat. Med. 21:3153.
IntHout, Ioannidis & Borm (2014), BMC Med. Res. Methodol. 14:25 (HKSJ vs DerSimonian-Laird).
Rover, Knapp & Friede (2015), BMC Med. Res. Methodol. 15:99 (truncated HKSJ, few studies).
Viechtbauer (2007), Stat. Med. 26:37 (Q-profile interval of tau^2).
Higgins, Thompson & Spiegelhalter (2009), JRSS-A 172:137 (prediction interval).
Rice, Higgins & Lumley (2018), JRSS-A 181:205 (what a common-effect average estimates).
Riley, Tierney & Stewart (2021), Individual Participant Data Meta-Analysis, Wiley (two-stage).
"""

from __future__ import annotations

from .meta import NO_POPULATION, REFERENCES, RandomEffects, families_needed, random_effects
from .verdict import PopulationVerdict, population_verdict

__all__ = ["RandomEffects", "random_effects", "PopulationVerdict", "population_verdict",
           "families_needed", "REFERENCES", "NO_POPULATION"]
