"""Baselines, patterns and scans: validation with hints, ordering, and JSON round trips."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from fleetops.common.errors import InvalidInput, SelectorError
from fleetops.controller.patching.models import (
    BUILTIN_BASELINES,
    ApprovalRule,
    AvailableUpdate,
    Baseline,
    BaselineAssignment,
    Classification,
    ComplianceLevel,
    PatchPattern,
    PatchScan,
    PatchState,
    RejectedAction,
    Severity,
    check_assignments,
)


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


# -- enums -------------------------------------------------------------------------------------------


def test_severities_and_levels_are_ordered_lowest_first() -> None:
    assert Severity.UNSPECIFIED < Severity.LOW < Severity.MODERATE < Severity.IMPORTANT < Severity.CRITICAL
    assert max([Severity.LOW, Severity.CRITICAL, Severity.MODERATE]) is Severity.CRITICAL
    assert sorted([ComplianceLevel.CRITICAL, ComplianceLevel.UNSPECIFIED, ComplianceLevel.HIGH]) == [
        ComplianceLevel.UNSPECIFIED,
        ComplianceLevel.HIGH,
        ComplianceLevel.CRITICAL,
    ]
    assert ComplianceLevel.INFORMATIONAL < ComplianceLevel.LOW
    assert Classification.SECURITY > Classification.BUGFIX > Classification.OTHER


def test_enums_of_different_kinds_do_not_compare() -> None:
    with pytest.raises(TypeError):
        _ = Severity.LOW < ComplianceLevel.HIGH  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Critical", Severity.CRITICAL),
        ("high", Severity.IMPORTANT),
        ("Medium", Severity.MODERATE),
        ("", Severity.UNSPECIFIED),
    ],
)
def test_severity_parses_case_insensitively_with_aliases(text: str, expected: Severity) -> None:
    assert Severity.parse(text) is expected


def test_unknown_enum_words_are_refused_with_the_choices() -> None:
    with pytest.raises(InvalidInput) as info:
        Classification.parse("securityupdates")
    assert "securityupdates" in info.value.message
    assert "security, " in info.value.hint or "security" in info.value.hint.split(": ")[1]


def test_patch_state_compliance() -> None:
    assert {s for s in PatchState if s.compliant} == {PatchState.INSTALLED, PatchState.INSTALLED_OTHER}
    assert {s for s in PatchState if s.non_compliant} == {
        PatchState.INSTALLED_PENDING_REBOOT,
        PatchState.INSTALLED_REJECTED,
        PatchState.MISSING,
        PatchState.FAILED,
    }
    assert not PatchState.NOT_APPLICABLE.compliant and not PatchState.NOT_APPLICABLE.non_compliant


# -- patterns ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "version", "expected"),
    [
        ("openssl", "openssl", "3.0.2", True),
        ("openssl", "openssl-dev", "3.0.2", False),
        ("openssl*", "openssl-dev", "3.0.2", True),
        ("lib*ssl[0-9]*", "libssl3", "3.0.2", True),
        ("libssl[!0-9]*", "libssl3", "3.0.2", False),
        ("libssl?", "libssl3", "3.0.2", True),
        ("openssl=3.0.*", "openssl", "3.0.13-0ubuntu3", True),
        ("openssl=3.0.*", "openssl", "3.1.0", False),
        ("*=1:2.38*", "bsdutils", "1:2.38.1-5+deb12u3", True),
        ("OpenSSL", "openssl", "3.0.2", False),  # package names are case-sensitive
    ],
)
def test_pattern_matches_packages(pattern: str, name: str, version: str, expected: bool) -> None:
    assert PatchPattern.parse(pattern).matches_package(name, version) is expected


def test_pattern_without_version_matches_update_ids_case_insensitively() -> None:
    update = AvailableUpdate(
        name="Security Update for Windows", candidate_version="1", kb="KB5034441", advisory_ids=("CVE-2024-20666",)
    )
    assert PatchPattern.parse("kb5034441").matches_update(update)
    assert PatchPattern.parse("CVE-2024-*").matches_update(update)
    assert not PatchPattern.parse("KB5034440").matches_update(update)
    assert not PatchPattern.parse("KB5034441=1").matches_update(update)  # a version only applies to names


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("lib[ssl", "unclosed '['"),
        ("libssl]", "']' without '['"),
        ("lib[]ssl", "bad character class"),
        ("lib[!]ssl", "bad character class"),
        ("lib[a[b]ssl", "bad character class"),
        ("open ssl", "' ' is not allowed"),
        ("openssl=", "the version is empty"),
        ("=3.0", "the name is empty"),
        ("a=b=c", "more than one '='"),
        ("!openssl", "outside '[...]'"),
        ("   ", "empty patch pattern"),
    ],
)
def test_bad_patterns_are_refused_with_a_hint(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Baseline(name="b", os_family="linux", rejected_patches=(text,))
    assert problem in info.value.message
    assert "rejected_patches" in info.value.message or "empty" in info.value.message
    assert "openssl*" in info.value.hint


def test_literal_patterns() -> None:
    assert PatchPattern.parse("nginx").is_literal
    assert PatchPattern.parse("KB5034441").is_literal
    assert not PatchPattern.parse("nginx*").is_literal
    assert not PatchPattern.parse("nginx=1.24").is_literal


# -- baselines -----------------------------------------------------------------------------------------


def test_baseline_round_trips_through_json() -> None:
    baseline = full_baseline()
    data = json.loads(json.dumps(baseline.to_dict()))
    again = Baseline.from_dict(data)
    assert again == baseline
    assert again.to_dict() == baseline.to_dict()
    assert again.digest() == baseline.digest()
    assert again.rules[1].compliance_level is None  # inherits the baseline's, stays unset


def test_baseline_from_an_operators_file_takes_words_and_defaults() -> None:
    baseline = Baseline.from_dict(
        {
            "name": "web",
            "os_family": "linux",
            "rules": [{"classifications": "Security", "severities": ["Critical", "high"], "approve_after_days": 0}],
            "rejected_action": "BLOCK",
        }
    )
    rule = baseline.rules[0]
    assert rule.classifications == {Classification.SECURITY}
    assert rule.severities == {Severity.CRITICAL, Severity.IMPORTANT}
    assert rule.approve_after_days == 0
    assert baseline.rejected_action is RejectedAction.BLOCK
    assert baseline.compliance_level is ComplianceLevel.UNSPECIFIED
    assert not baseline.is_default


def test_digest_changes_with_content() -> None:
    baseline = full_baseline()
    assert dataclasses.replace(baseline, rejected_patches=("telnet*",)).digest() != baseline.digest()


@pytest.mark.parametrize("days", [-1, 361, 7.5, "7", True])
def test_approve_after_days_must_be_0_to_360(days: object) -> None:
    with pytest.raises(InvalidInput) as info:
        ApprovalRule(approve_after_days=days)  # type: ignore[arg-type]
    assert "0 to 360" in info.value.hint


@pytest.mark.parametrize("days", [0, 360])
def test_approve_after_days_limits_are_allowed(days: int) -> None:
    assert ApprovalRule(approve_after_days=days).approve_after_days == days


def test_unknown_classification_in_a_rule_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        Baseline.from_dict({"name": "b", "os_family": "linux", "rules": [{"classifications": ["securty"]}]})
    assert "securty" in info.value.message
    assert "security" in info.value.hint


def test_duplicate_patterns_are_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        Baseline(name="b", os_family="linux", approved_patches=("nginx", " nginx "))
    assert "given twice in approved_patches" in info.value.message
    assert info.value.hint == "list each pattern once"


def test_a_pattern_may_be_both_approved_and_rejected() -> None:
    baseline = Baseline(name="b", os_family="linux", approved_patches=("nginx",), rejected_patches=("nginx",))
    assert baseline.approved_patches == baseline.rejected_patches == ("nginx",)


def test_unknown_keys_in_a_baseline_file_are_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        Baseline.from_dict({"name": "b", "os_family": "linux", "aprove_after_days": 3})
    assert "aprove_after_days" in info.value.message
    assert "rules" in info.value.hint
    with pytest.raises(InvalidInput) as info:
        Baseline.from_dict({"name": "b", "os_family": "linux", "rules": [{"approve_after": 3}]})
    assert "rules[0]" in info.value.message and "approve_after_days" in info.value.hint


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "a baseline needs a name"),
        ({"name": "-x"}, "bad baseline name"),
        ({"name": "a" * 129}, "bad baseline name"),
        ({"os_family": "freebsd"}, "unknown os_family"),
        ({"rejected_action": "reject"}, "unknown rejected_action"),
        ({"compliance_level": "severe"}, "unknown compliance_level"),
    ],
)
def test_bad_baselines_are_refused_with_a_hint(changes: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Baseline(**{"name": "b", "os_family": "linux", **changes})  # type: ignore[arg-type]
    assert message in info.value.message
    assert info.value.hint


def test_missing_name_or_family_in_a_file() -> None:
    with pytest.raises(InvalidInput) as info:
        Baseline.from_dict({"name": "b"})
    assert "no os_family" in info.value.message


def test_builtin_defaults_cover_every_family() -> None:
    assert set(BUILTIN_BASELINES) == {"linux", "windows", "darwin"}
    for family, baseline in BUILTIN_BASELINES.items():
        assert baseline.os_family == family and baseline.is_default
        assert Baseline.from_dict(baseline.to_dict()) == baseline


def test_baselines_are_immutable() -> None:
    baseline = full_baseline()
    with pytest.raises(dataclasses.FrozenInstanceError):
        baseline.name = "other"  # type: ignore[misc]
    assert isinstance(baseline.approved_patches, tuple) and isinstance(baseline.rules, tuple)


# -- patch groups -------------------------------------------------------------------------------------


def test_assignment_parses_its_selector() -> None:
    a = BaselineAssignment("web-prod", "env=prod,role in (web,api)", full_baseline(), priority=10)  # type: ignore[arg-type]
    assert a.selector.matches({"env": "prod", "role": "api"})
    assert a.os_family == "linux"
    with pytest.raises(SelectorError):
        BaselineAssignment("web", "env=", full_baseline())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        BaselineAssignment("web", "env=prod", full_baseline(), priority=-1)  # type: ignore[arg-type]


def test_check_assignments_refuses_a_group_twice_and_shared_priorities() -> None:
    linux = full_baseline()
    other = dataclasses.replace(linux, name="other-linux")
    windows = Baseline(name="win", os_family="windows")
    ok = [
        BaselineAssignment("web", "role=web", linux, 10),  # type: ignore[arg-type]
        BaselineAssignment("web", "role=web", windows, 10),  # type: ignore[arg-type]
        BaselineAssignment("db", "role=db", other, 20),  # type: ignore[arg-type]
    ]
    check_assignments(ok)
    with pytest.raises(InvalidInput) as info:
        check_assignments([*ok, BaselineAssignment("web", "role=web", other, 30)])  # type: ignore[arg-type]
    assert "registered twice for linux" in info.value.message
    with pytest.raises(InvalidInput) as info:
        check_assignments([*ok, BaselineAssignment("cache", "role=cache", other, 20)])  # type: ignore[arg-type]
    assert "both have priority 20" in info.value.message and "own priority" in info.value.hint


# -- scans ----------------------------------------------------------------------------------------------


AGENT_SCAN = {
    "os_family": "linux",
    "provider": "apt",
    "installed": [
        {"name": "bash", "version": "5.2.15-2+b7", "arch": "amd64"},
        {"name": "tzdata", "version": "2024a-0+deb12u1", "arch": "all"},
    ],
    "updates": [
        {
            "name": "bash",
            "installed_version": "5.2.15-2+b7",
            "candidate_version": "5.2.15-2+b8",
            "arch": "amd64",
            "repository": "bookworm-security",
            "classification": "security",
            "severity": "high",
            "release_date": "2025-11-01T00:00:00Z",
            "advisory_ids": ["DSA-5800-1", "CVE-2025-0001"],
            "kb": "",
            "future_field": "ignored",
        },
        {
            "name": "tzdata",
            "installed_version": "2024a-0+deb12u1",
            "candidate_version": "2025b-0+deb12u1",
            "classification": "timezone-data",
            "severity": None,
            "release_date": None,
        },
    ],
    "reboot_pending": True,
    "reboot_reasons": ["linux-image-6.1.0-18-amd64"],
    "brand_new_key": {"anything": 1},
}


def test_scan_from_an_agents_dict() -> None:
    scan = PatchScan.from_dict(AGENT_SCAN, host_id="h-1")
    assert scan.host_id == "h-1" and scan.provider == "apt" and scan.reboot_pending
    bash, tzdata = scan.updates
    assert bash.classification is Classification.SECURITY and bash.severity is Severity.IMPORTANT
    assert bash.release_date == datetime(2025, 11, 1, tzinfo=UTC)
    assert bash.advisory_ids == ("DSA-5800-1", "CVE-2025-0001")
    # words a newer agent may send become the neutral values instead of failing the scan
    assert tzdata.classification is Classification.OTHER and tzdata.severity is Severity.UNSPECIFIED
    assert tzdata.release_date is None
    assert PatchScan.from_dict(json.loads(json.dumps(scan.to_dict()))) == scan


@pytest.mark.parametrize(
    ("scan", "message"),
    [
        ({"installed": "bash"}, "'installed' must be a list"),
        ({"installed": [{"name": "bash", "version": 5}]}, "installed[0].version"),
        ({"updates": [{"name": ""}]}, "updates[0].name' is empty"),
        ({"updates": [{"name": "x", "release_date": "last tuesday"}]}, "release_date"),
        ({"reboot_pending": "yes"}, "reboot_pending"),
        ({"reboot_reasons": "kernel"}, "reboot_reasons"),
    ],
)
def test_malformed_scans_are_refused(scan: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        PatchScan.from_dict({"os_family": "linux", **scan})
    assert message in info.value.message


def test_release_dates_accept_dates_and_epoch_seconds() -> None:
    assert AvailableUpdate(name="a", candidate_version="1", release_date="2025-11-09").release_date == datetime(  # type: ignore[arg-type]
        2025, 11, 9, tzinfo=UTC
    )
    epoch = AvailableUpdate.from_dict({"name": "a", "release_date": 1762710000}).release_date
    assert epoch == datetime.fromtimestamp(1762710000, UTC)
    naive = AvailableUpdate(name="a", candidate_version="1", release_date=datetime(2025, 11, 9, 18))
    assert naive.release_date == datetime(2025, 11, 9, 18, tzinfo=UTC)
