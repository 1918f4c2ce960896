"""Patching room: patch baselines, patch groups, compliance evaluation and install snapshots.

After AWS Systems Manager Patch Manager (docs/patching.md); no wire types.

``evaluation``  ``decide``/``is_approved``, ``evaluate`` (the seven patch states), ``summarize``,
                ``pending_approval``/``summarize_pending`` (offered updates not approved yet),
                ``baseline_for_host`` (patch groups), ``snapshot`` (the approved set of one install)
``groups``      the built-in baselines and patch groups (which baseline a host uses)
``compliance``  findings, compliance summaries, pending approvals (kept in report rows)
``snapshots``   the approved set fixed when an install starts
``store``       rows -> domain objects, in one place
``service``     baselines, groups, scan/install fan-outs, report intake

The baseline document, the patch vocabulary and the agent's report live in ``fleetops.common``
(``baselines``, ``patching``, ``patch_report``), shared by agent, controller and opsctl; import
them from there.
"""

from __future__ import annotations

from fleetops.controller.patching.compliance import HostCompliance, PatchFinding, PendingApproval, PendingUpdate
from fleetops.controller.patching.evaluation import (
    BaselineChoice,
    Decision,
    baseline_for_host,
    decide,
    default_baselines,
    evaluate,
    is_approved,
    pending_approval,
    snapshot,
    summarize,
    summarize_pending,
)
from fleetops.controller.patching.groups import BUILTIN_BASELINES, BaselineAssignment, check_assignments
from fleetops.controller.patching.snapshots import ApprovedPatch, ApprovedSnapshot

__all__ = [
    "BUILTIN_BASELINES",
    "ApprovedPatch",
    "ApprovedSnapshot",
    "BaselineAssignment",
    "BaselineChoice",
    "Decision",
    "HostCompliance",
    "PatchFinding",
    "PendingApproval",
    "PendingUpdate",
    "baseline_for_host",
    "check_assignments",
    "decide",
    "default_baselines",
    "evaluate",
    "is_approved",
    "pending_approval",
    "snapshot",
    "summarize",
    "summarize_pending",
]
