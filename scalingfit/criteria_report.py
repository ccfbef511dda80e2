"""Transitional re-exports: the criterion report now lives in its rooms.

``render_document`` -> :mod:`scalingfit.report`; ``assess_criteria``, ``CRITERIA`` ->
:mod:`scalingfit.assessment`; ``report_tasks``, ``read_raw``, ``task_groups`` ->
:mod:`scalingfit.multitask`. This shim keeps ``scalingfit.cli`` working until it imports from
there; it holds no code of its own and is to be deleted.
"""

from .assessment import CRITERIA, assess_criteria
from .multitask import read_raw, report_tasks, task_groups
from .report import render_document

__all__ = ["render_document", "report_tasks", "assess_criteria", "read_raw", "task_groups",
           "CRITERIA"]
