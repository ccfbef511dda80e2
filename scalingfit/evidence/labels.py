"""What one piece of evidence is about: the models behind a verdict, the main label, the claim.

A *label* is a family, or ``'pooled'`` (all families together, with family intercepts).
:class:`LabelData` holds the models of one label with the options of its verdict, so that the
batched engine (:mod:`scalingfit.evidence.replicates`) can re-run that verdict many times.
"""

from __future__ import annotations

import numpy as np

from ..verdicts import TREND_SHAPES, U_SHAPES, VERDICTS

__all__ = ["LabelData", "label_data", "main_label", "target_claim", "examples_per_model"]


class LabelData:
    """The models behind one verdict (a family, or all families pooled) and the test options.

    Attributes
    ----------
    label : str
    idx : ndarray of int
        Positions in ``ModelScores.models``.
    y, V, z, groups : per-model scores, sampling covariance, centred log10 scale, family codes.
    breakpoint : float or None
        Two-lines breakpoint of the observed data (z units); held fixed in replicates.
    allow_u : bool
        Whether U-type verdicts were requested (the engine also needs
        :data:`~scalingfit.verdicts.U_MIN_SIZES` scales).
    wanted : set of str
        Verdicts allowed by ``shapes=`` (others read 'inconclusive').
    sign : {+1, -1}; alpha : float; margin : float or None
    """

    def __init__(self, label, idx, y, V, z, groups, breakpoint, allow_u, wanted, sign, alpha,
                 margin, verdict=None):
        self.label, self.idx = label, np.asarray(idx)
        self.y, self.V = np.asarray(y, float), np.asarray(V, float)
        self.z, self.groups = np.asarray(z, float), np.asarray(groups, int)
        self.breakpoint, self.allow_u, self.wanted = breakpoint, allow_u, set(wanted)
        self.sign, self.alpha, self.margin, self.verdict = sign, alpha, margin, verdict

    @property
    def k(self) -> int:
        return len(self.y)

    @property
    def n_groups(self) -> int:
        return int(self.groups.max()) + 1

    def subset(self, keep, label=None) -> "LabelData":
        """The same options on a subset of models (family codes renumbered)."""
        keep = np.asarray(keep)
        g = self.groups[keep]
        _, codes = np.unique(g, return_inverse=True)
        return LabelData(label or self.label, self.idx[keep], self.y[keep],
                         self.V[np.ix_(keep, keep)], self.z[keep], codes, self.breakpoint,
                         self.allow_u, self.wanted, self.sign, self.alpha, self.margin)

    def with_scores(self, y, V) -> "LabelData":
        """The same models and options with other scores and sampling covariance."""
        return LabelData(self.label, self.idx, y, V, self.z, self.groups, self.breakpoint,
                         self.allow_u, self.wanted, self.sign, self.alpha, self.margin)


def label_data(result, ms, label) -> LabelData:
    """:class:`LabelData` of ``label`` (a family or 'pooled') from a result and its scores."""
    a = result.analyses[label]
    idx = np.arange(len(ms.models)) if label == "pooled" else ms.family_index(label)
    y = ms.models["score"].to_numpy(dtype=float)[idx]
    shapes = set(result.meta.get("shapes", VERDICTS))
    bp = a.two_lines.breakpoint if a.two_lines is not None else None
    return LabelData(label, idx, y, ms.cov[np.ix_(idx, idx)], a.z, a.groups, bp,
                     bool(shapes & set(U_SHAPES)), shapes | {"inconclusive"},
                     a.sign, result.meta["alpha"], result.meta.get("flat_margin"),
                     verdict=a.verdict)


def main_label(result) -> str:
    """The label the evidence is about: 'pooled' with several families, else the family."""
    return "pooled" if "pooled" in result.analyses else next(iter(result.analyses))


def target_claim(result) -> str:
    """The shape the diagnostics test: the verdict when it is a trend, else the slope direction."""
    if result.shape in TREND_SHAPES:
        return result.shape
    perf = result.pooled["slope"] * (1 if result.meta["higher_is_better"] else -1)
    return "positive" if perf > 0 else "inverse"


def examples_per_model(ms, idx) -> float | None:
    """Mean examples per model over ``idx`` (None when some model has no example count)."""
    n = ms.models["n_examples"].to_numpy(dtype=float)[idx]
    return float(np.mean(n)) if np.all(np.isfinite(n)) else None
