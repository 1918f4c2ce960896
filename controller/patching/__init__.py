"""Patching room: patch baselines, patch groups, compliance evaluation and install snapshots.

Pure domain logic after AWS Systems Manager Patch Manager (docs/patching.md); no wire types, no I/O.

``models``      baselines and approval rules, the agent's scan, findings, summaries, snapshots
``evaluation``  ``decide``/``is_approved``, ``evaluate`` (the seven patch states), ``summarize``,
                ``pending_approval``/``summarize_pending`` (offered updates not approved yet),
                ``baseline_for_host`` (patch groups), ``snapshot`` (the approved set of one install)
"""

from __future__ import annotations

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
from fleetops.controller.patching.models import (
    BUILTIN_BASELINES,
    ApprovalRule,
    ApprovedPatch,
    ApprovedSnapshot,
    AvailableUpdate,
    Baseline,
    BaselineAssignment,
    Classification,
    ComplianceLevel,
    HostCompliance,
    InstalledPackage,
    InstallOutcome,
    InstallStatus,
    PatchFinding,
    PatchPattern,
    PatchScan,
    PatchState,
    PendingApproval,
    PendingUpdate,
    RejectedAction,
    Severity,
    check_assignments,
)

__all__ = [
    "BUILTIN_BASELINES",
    "ApprovalRule",
    "ApprovedPatch",
    "ApprovedSnapshot",
    "AvailableUpdate",
    "Baseline",
    "BaselineAssignment",
    "BaselineChoice",
    "Classification",
    "ComplianceLevel",
    "Decision",
    "HostCompliance",
    "InstallOutcome",
    "InstallStatus",
    "InstalledPackage",
    "PatchFinding",
    "PatchPattern",
    "PatchScan",
    "PatchState",
    "PendingApproval",
    "PendingUpdate",
    "RejectedAction",
    "Severity",
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
