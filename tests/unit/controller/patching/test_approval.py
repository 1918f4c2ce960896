"""Which updates a baseline approves, and when (AWS Patch Manager's approval rules and lists)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetops.common.baselines import ApprovalRule, Baseline
from fleetops.common.patch_report import AvailableUpdate
from fleetops.common.patching import Classification, ComplianceLevel, RejectedAction, Severity
from fleetops.controller.patching.evaluation import decide, is_approved

NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)

SECURITY_7_DAYS = ApprovalRule(
    classifications=frozenset({Classification.SECURITY}),
    severities=frozenset({Severity.CRITICAL, Severity.IMPORTANT}),
    approve_after_days=7,
    compliance_level=ComplianceLevel.HIGH,
)


def baseline(**kw: object) -> Baseline:
    kw.setdefault("rules", (SECURITY_7_DAYS,))
    return Baseline(name="b", os_family="linux", **kw)  # type: ignore[arg-type]


def update(name: str = "openssl", *, days_old: float | None = 30, **kw: object) -> AvailableUpdate:
    kw.setdefault("classification", Classification.SECURITY)
    kw.setdefault("severity", Severity.CRITICAL)
    released = None if days_old is None else NOW - timedelta(days=days_old)
    return AvailableUpdate(
        name=name,
        installed_version=str(kw.pop("installed_version", "3.0.2-1")),
        candidate_version=str(kw.pop("candidate_version", "3.0.2-2")),
        release_date=released,
        **kw,  # type: ignore[arg-type]
    )


# -- rules ----------------------------------------------------------------------------------------------


def test_a_matching_rule_approves_after_the_delay() -> None:
    decision = decide(update(), baseline(), NOW)
    assert decision.approved and not decision.rejected
    assert decision.compliance_level is ComplianceLevel.HIGH
    assert "rule 1" in decision.reason


def test_approve_after_days_boundary_is_inclusive() -> None:
    b = baseline()
    released = NOW - timedelta(days=7)
    exactly = AvailableUpdate(
        name="openssl",
        candidate_version="2",
        classification=Classification.SECURITY,
        severity=Severity.CRITICAL,
        release_date=released,
    )
    assert is_approved(exactly, b, NOW)  # release + 7 days == now: approved
    assert not is_approved(exactly, b, NOW - timedelta(seconds=1))
    decision = decide(exactly, b, NOW - timedelta(seconds=1))
    assert decision.approvable_at == NOW
    assert "approves it at" in decision.reason


def test_zero_days_approves_at_release_but_not_before() -> None:
    b = baseline(rules=(ApprovalRule(approve_after_days=0),))
    assert is_approved(update(days_old=0), b, NOW)
    assert not is_approved(update(days_old=-1), b, NOW)  # released tomorrow (clock skew): not yet


@pytest.mark.parametrize(
    ("classification", "severity", "expected"),
    [
        (Classification.SECURITY, Severity.CRITICAL, True),
        (Classification.SECURITY, Severity.IMPORTANT, True),
        (Classification.SECURITY, Severity.MODERATE, False),
        (Classification.SECURITY, Severity.UNSPECIFIED, False),
        (Classification.BUGFIX, Severity.CRITICAL, False),
        (Classification.OTHER, Severity.CRITICAL, False),
    ],
)
def test_classification_and_severity_filters(
    classification: Classification, severity: Severity, expected: bool
) -> None:
    u = update(classification=classification, severity=severity)
    assert is_approved(u, baseline(), NOW) is expected


def test_empty_filters_mean_any() -> None:
    b = baseline(rules=(ApprovalRule(approve_after_days=7),))
    assert is_approved(update(classification=Classification.OTHER, severity=Severity.UNSPECIFIED), b, NOW)
    only_bugfix = baseline(rules=(ApprovalRule(classifications=frozenset({Classification.BUGFIX})),))
    assert is_approved(update(classification=Classification.BUGFIX, severity=Severity.LOW), only_bugfix, NOW)
    assert not is_approved(update(classification=Classification.SECURITY), only_bugfix, NOW)


def test_no_rules_and_no_lists_approve_nothing() -> None:
    decision = decide(update(), baseline(rules=()), NOW)
    assert not decision.approved and not decision.rejected
    assert decision.reason == "no approval rule or approved pattern matches"


def test_unknown_release_date_waits_unless_the_rule_has_no_delay() -> None:
    u = update(days_old=None)
    decision = decide(u, baseline(), NOW)
    assert not decision.approved and decision.approvable_at is None
    assert "release date is unknown" in decision.reason
    assert is_approved(u, baseline(rules=(ApprovalRule(approve_after_days=0),)), NOW)


def test_first_seen_stands_in_for_an_unknown_release_date() -> None:
    u = update(days_old=None)
    seen_8_days_ago = {("openssl", "3.0.2-2"): NOW - timedelta(days=8)}
    seen_6_days_ago = {("openssl", "3.0.2-2"): NOW - timedelta(days=6)}
    assert is_approved(u, baseline(), NOW, first_seen=seen_8_days_ago)
    assert not is_approved(u, baseline(), NOW, first_seen=seen_6_days_ago)
    # another version's sighting does not count
    assert not is_approved(u, baseline(), NOW, first_seen={("openssl", "3.0.2-1"): NOW - timedelta(days=30)})
    # a published release date wins over the sighting
    fresh = update(days_old=1)
    assert not is_approved(fresh, baseline(), NOW, first_seen={("openssl", "3.0.2-2"): NOW - timedelta(days=30)})


def test_the_highest_compliance_level_of_the_approving_rules_counts() -> None:
    b = baseline(
        rules=(
            ApprovalRule(approve_after_days=0, compliance_level=ComplianceLevel.LOW),
            ApprovalRule(approve_after_days=0, compliance_level=ComplianceLevel.CRITICAL),
            ApprovalRule(approve_after_days=0),  # takes the baseline's
        ),
        compliance_level=ComplianceLevel.MEDIUM,
    )
    assert decide(update(), b, NOW).compliance_level is ComplianceLevel.CRITICAL
    b2 = baseline(rules=(ApprovalRule(approve_after_days=0),), compliance_level=ComplianceLevel.MEDIUM)
    assert decide(update(), b2, NOW).compliance_level is ComplianceLevel.MEDIUM


# -- approved and rejected lists ------------------------------------------------------------------------


def test_the_approved_list_approves_at_once_whatever_the_rules() -> None:
    b = baseline(approved_patches=("nginx*",), compliance_level=ComplianceLevel.LOW)
    u = update("nginx-core", days_old=0, classification=Classification.ENHANCEMENT, severity=Severity.UNSPECIFIED)
    decision = decide(u, b, NOW)
    assert decision.approved and decision.compliance_level is ComplianceLevel.LOW
    assert decision.reason == "approved by 'nginx*'"
    assert is_approved(update("nginx", days_old=None), b, NOW)


def test_approved_by_version_only_at_that_version() -> None:
    b = baseline(rules=(), approved_patches=("openssl=3.0.2-*",))
    assert is_approved(update(candidate_version="3.0.2-2"), b, NOW)
    assert not is_approved(update(candidate_version="3.1.0-1"), b, NOW)


def test_approved_by_advisory_or_kb() -> None:
    b = baseline(rules=(), approved_patches=("CVE-2025-1234", "KB5034441"))
    assert is_approved(update(advisory_ids=("DSA-1-1", "CVE-2025-1234")), b, NOW)
    assert is_approved(update("Windows update", kb="KB5034441"), b, NOW)
    assert not is_approved(update(advisory_ids=("CVE-2025-9999",)), b, NOW)


def test_rejected_wins_over_rules() -> None:
    b = baseline(rejected_patches=("openssl",))
    decision = decide(update(), b, NOW)
    assert not decision.approved and decision.rejected
    assert decision.reason == "rejected by 'openssl'"


def test_a_patch_both_approved_and_rejected_is_rejected() -> None:
    b = baseline(rules=(), approved_patches=("openssl",), rejected_patches=("openssl",))
    assert not is_approved(update(), b, NOW)
    assert decide(update(), b, NOW).rejected
    b2 = baseline(approved_patches=("openssl*",), rejected_patches=("CVE-2025-0001",))
    assert not is_approved(update(advisory_ids=("CVE-2025-0001",)), b2, NOW)


def test_rejecting_one_version_leaves_others_approvable() -> None:
    b = baseline(rejected_patches=("openssl=3.0.2-2",))
    assert not is_approved(update(candidate_version="3.0.2-2"), b, NOW)
    assert is_approved(update(candidate_version="3.0.2-3"), b, NOW)


def test_rejected_globs() -> None:
    b = baseline(rejected_patches=("linux-image-*", "kernel*"))
    assert not is_approved(update("linux-image-6.1.0-19-amd64"), b, NOW)
    assert not is_approved(update("kernel-core"), b, NOW)
    assert is_approved(update("linux-base"), b, NOW)


# -- rejected dependencies ------------------------------------------------------------------------------


def test_block_keeps_an_update_that_needs_a_rejected_package_from_being_installable() -> None:
    u = update("curl", dependencies=("libcurl4", "libssh2-1"))
    blocking = baseline(rejected_patches=("libssh2*",), rejected_action=RejectedAction.BLOCK)
    decision = decide(u, blocking, NOW)
    assert decision.approved and decision.blocked_by == "libssh2-1" and not decision.installable
    allowing = baseline(rejected_patches=("libssh2*",), rejected_action=RejectedAction.ALLOW_AS_DEPENDENCY)
    decision = decide(u, allowing, NOW)
    assert decision.approved and decision.blocked_by == "" and decision.installable


def test_block_with_versioned_dependencies() -> None:
    blocking = baseline(rejected_patches=("libssh2-1=1.10.*",), rejected_action=RejectedAction.BLOCK)
    assert decide(update("curl", dependencies=("libssh2-1=1.10.0-3",)), blocking, NOW).blocked_by
    assert not decide(update("curl", dependencies=("libssh2-1=1.11.0-1",)), blocking, NOW).blocked_by
    # a versioned rejection cannot judge a dependency whose version is unknown
    assert not decide(update("curl", dependencies=("libssh2-1",)), blocking, NOW).blocked_by
