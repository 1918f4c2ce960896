"""The patching room's own small records: a stored baseline and a patch group as the service returns them.

The documents and the report that cross process boundaries live in ``fleetops.common``
(``baselines``, ``patching``, ``patch_report``); findings and summaries in ``compliance``,
snapshots in ``snapshots``, patch-group rules in ``groups``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleetops.common.baselines import Baseline


@dataclass(frozen=True)
class StoredBaseline:
    """A baseline as the controller has it: built in, or stored (when and by whom)."""

    baseline: Baseline
    builtin: bool
    updated_at: datetime | None = None
    updated_by: str = ""


@dataclass(frozen=True)
class PatchGroup:
    """A patch group as stored: hosts whose tags match ``selector`` use ``baseline``."""

    name: str
    selector: str
    baseline: str
    priority: int
