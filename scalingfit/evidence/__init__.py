"""Evidence: is a scaling trend real, strong and general, and could the data have shown it?

The rooms, in the order a fit passes through them:

* :mod:`~scalingfit.evidence.labels` -- the models behind one verdict (:class:`LabelData`);
* :mod:`~scalingfit.evidence.replicates` -- the batched verdict engine (:func:`batched_verdicts`)
  that re-runs the gated verdict of :mod:`scalingfit.shapes` on many replicate datasets;
* :mod:`~scalingfit.evidence.strength` -- trend strength (:func:`trend_strength`);
* :mod:`~scalingfit.evidence.generality` -- generality across families
  (:func:`generality_table`);
* :mod:`~scalingfit.evidence.robustness` -- influence of each model, shape stability and the
  null-calibrated p-value;
* :mod:`~scalingfit.evidence.power` -- power, minimum detectable effects, examples and models
  needed;
* :mod:`~scalingfit.evidence.floors` -- neighbouring models, chance / ceiling, metric
  sensitivity;
* :mod:`~scalingfit.evidence.record` -- :class:`NoiseEvidence`, the record stored in
  ``result.meta['noise']``;
* :mod:`~scalingfit.evidence.assemble` -- :func:`add_noise_diagnostics` (called by
  :func:`scalingfit.fit_trend`) and :func:`evidence_for_claim` (called by
  :func:`scalingfit.check_claim`).

The notes these numbers give rise to are worded in :mod:`scalingfit.diagnostics`
(:data:`~scalingfit.diagnostics.NOTE_CODES`).

References
----------
Wei, J. et al. (2022). Inverse scaling can become U-shaped. arXiv:2211.02011.
Schaeffer, R., Miranda, B. & Koyejo, S. (2023). Are emergent abilities of large language models a
mirage? NeurIPS.
Higgins, J. P. T. & Thompson, S. G. (2002). Statistics in Medicine 21:1539-1558.
Knapp, G. & Hartung, J. (2003). Statistics in Medicine 22:2693-2710.
MacKinnon, J. G., Nielsen, M. O. & Webb, M. D. (2023). J. Econometrics 232:272-299.
Miller, E. (2024). Adding error bars to evals. arXiv:2411.00640.
"""

from .labels import LabelData, examples_per_model, label_data, main_label, target_claim
from .replicates import batched_verdicts
from .strength import trend_strength
from .generality import claim_p, family_effects, generality_table
from .robustness import influence_table, null_calibrated_p, reference_fit, shape_stability
from .power import examples_for_power, power_analysis, power_at, u_verdict_power
from .floors import adjacent_differences, floor_ceiling, metric_sensitivity, model_noise_shares
from .record import NoiseEvidence
from .assemble import add_noise_diagnostics, claim_power, evidence_for_claim, noise_evidence

__all__ = ["LabelData", "label_data", "main_label", "target_claim", "examples_per_model",
           "batched_verdicts", "trend_strength", "generality_table", "family_effects", "claim_p",
           "influence_table", "reference_fit", "shape_stability", "null_calibrated_p",
           "power_at", "examples_for_power", "u_verdict_power", "power_analysis",
           "adjacent_differences", "floor_ceiling", "metric_sensitivity", "model_noise_shares",
           "NoiseEvidence", "noise_evidence", "add_noise_diagnostics", "evidence_for_claim",
           "claim_power"]
