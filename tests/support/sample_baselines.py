"""A baseline that sets every field, shared by the baseline and patch-group unit tests."""

from __future__ import annotations

from fleetops.common.baselines import ApprovalRule, Baseline
from fleetops.common.patching import Classification, ComplianceLevel, RejectedAction, Severity


def full_baseline() -> Baseline:
    return Baseline(
        name="prod-linux",
        os_family="linux",
        description="production",
        rules=(
            ApprovalRule(
                classifications=frozenset({Classification.SECURITY}),
                severities=frozenset({Severity.CRITICAL, Severity.IMPORTANT}),
                approve_after_days=3,
                compliance_level=ComplianceLevel.CRITICAL,
            ),
            ApprovalRule(classifications=frozenset({Classification.BUGFIX}), approve_after_days=14),
        ),
        approved_patches=("nginx", "openssl=3.0.*", "KB5034441"),
        rejected_patches=("telnet*", "kernel=6.1.0-9*"),
        rejected_action=RejectedAction.BLOCK,
        compliance_level=ComplianceLevel.MEDIUM,
        is_default=True,
    )
