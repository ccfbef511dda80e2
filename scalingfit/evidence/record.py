"""The noise-evidence record: what ``result.meta['noise']`` holds, typed and read-only."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

__all__ = ["NoiseEvidence"]

#: fields present only once :func:`scalingfit.claims.check_claim` has tested a claim
_CLAIM_FIELDS = ("claim_null", "claim_power")


def _read_only(self, *args, **kwargs):
    raise TypeError("NoiseEvidence is read-only; build a changed copy with "
                    "dataclasses.replace(evidence, ...)")


@dataclass(frozen=True, eq=False)
class NoiseEvidence(dict):
    """Noise evidence of one fit, as stored in ``result.meta['noise']``.

    A frozen record with typed attributes that is also a read-only mapping with exactly the
    keys of the stored evidence (``evidence.null`` is ``evidence['null']``). Values are plain
    Python / numpy types and lists of row dicts, so :meth:`TrendResult.to_dict` serialises it
    like any dict; a result rebuilt from JSON holds a plain dict with the same keys
    (:meth:`from_mapping` turns it back into a record).

    It subclasses ``dict`` (with every mutator disabled) rather than only
    ``collections.abc.Mapping`` so that every reader of ``meta`` -- ``jsonable``, ``json``,
    ``isinstance(..., dict)`` checks -- keeps working unchanged.

    Attributes
    ----------
    claim : str
        The shape the evidence tests (the verdict when it is a trend, else the slope direction).
    main_label : str
        'pooled' with several families, else the family.
    stability : dict
        Label -> ``{'verdict', 'share', 'n', 'counts'}``
        (:func:`~scalingfit.evidence.shape_stability`).
    null : dict
        Null-calibrated p of ``claim`` on the main label
        (:func:`~scalingfit.evidence.null_calibrated_p`).
    power : dict
        Label -> power analysis (:func:`~scalingfit.evidence.power_analysis`); the main
        label's carries the table of examples needed.
    influence, influence_by_family : list of dict
        Leave-one-model-out rows of the main label, and of the other labels
        (:func:`~scalingfit.evidence.influence_table`).
    adjacent : list of dict
        Paired differences of neighbouring models
        (:func:`~scalingfit.evidence.adjacent_differences`).
    floor_ceiling : dict
        :func:`~scalingfit.evidence.floor_ceiling`.
    metric_sensitivity : dict or None
        :func:`~scalingfit.evidence.metric_sensitivity`.
    n_stability, n_null : int
        Replicates of the stability and null-calibration simulations.
    claim_null, claim_power : dict or None
        Null calibration and power of the claim tested by
        :func:`scalingfit.claims.check_claim` (absent from the mapping until then).
    """

    claim: str
    main_label: str
    stability: dict
    null: dict
    power: dict
    influence: list
    influence_by_family: list
    adjacent: list
    floor_ceiling: dict
    metric_sensitivity: dict | None
    n_stability: int
    n_null: int
    claim_null: dict | None = None
    claim_power: dict | None = None

    def __post_init__(self):
        dict.update(self, ((f.name, getattr(self, f.name)) for f in fields(self)
                           if not (f.name in _CLAIM_FIELDS and getattr(self, f.name) is None)))

    __setitem__ = __delitem__ = __ior__ = _read_only
    update = pop = popitem = clear = setdefault = _read_only

    def __reduce__(self):
        # rebuilt from the fields (the dict items follow), also by copy and pickle
        return (type(self), tuple(getattr(self, f.name) for f in fields(self)))

    def replace(self, **changes) -> "NoiseEvidence":
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """A plain dict of the stored keys (values shared, not copied)."""
        return dict(self)

    @classmethod
    def from_mapping(cls, mapping) -> "NoiseEvidence":
        """The record of a stored mapping (e.g. ``meta['noise']`` of a result read from JSON)."""
        if isinstance(mapping, cls):
            return mapping
        return cls(**{f.name: mapping.get(f.name) for f in fields(cls)})
