"""Maintenance-windows room: when windows open, after AWS Systems Manager Maintenance Windows.

Schedules are pure domain logic (docs/maintenance-windows.md); no wire types, no I/O, no clock:
callers pass the moment they ask about. ``service`` (definitions), ``store`` (rows <-> windows,
tasks, executions), ``scheduler`` (claims each occurrence once across replicas), ``executor`` (one
execution's tasks until the cutoff) and ``authority`` (whose rights each task runs with: its
author's, decided at each run; who may change a window) are imported from their modules.

``schedule``  ``Schedule`` (``cron()``/``rate()``/``at()`` in an IANA time zone, start/end dates,
              schedule offset; ``next_after``, ``upcoming``, ``preview``, ``describe``,
              ``to_dict``/``from_dict``), ``CronSpec`` (a parsed five-field cron expression),
              ``Occurrence`` (one coming run with its DST note)
"""

from __future__ import annotations

from fleetops.controller.windows.schedule import (
    MAX_OFFSET_DAYS,
    SEARCH_YEARS,
    CronSpec,
    Occurrence,
    Schedule,
    ScheduleKind,
)

__all__ = [
    "MAX_OFFSET_DAYS",
    "SEARCH_YEARS",
    "CronSpec",
    "Occurrence",
    "Schedule",
    "ScheduleKind",
]
