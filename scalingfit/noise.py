"""Deprecated location of the evidence rooms: everything moved to :mod:`scalingfit.evidence`
(note builders and :data:`NOTE_CODES` to :mod:`scalingfit.diagnostics`).

This thin module re-exports the public names so that code written against it keeps working
while the refactor is merged; it will be removed.
"""

from .diagnostics import NOTE_CODES  # noqa: F401
from .evidence import *  # noqa: F401,F403
from .evidence import __all__ as _evidence_all

__all__ = list(_evidence_all) + ["NOTE_CODES"]
