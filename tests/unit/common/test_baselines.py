"""Unit tests of the baseline document (fleetops.common.baselines)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fleetops.common.baselines import ApprovalRule, Baseline, PatchPattern
from fleetops.common.errors import InvalidInput
from fleetops.common.patch_report import AvailableUpdate
from fleetops.common.patching import Classification, ComplianceLevel, RejectedAction, Severity
from fleetops.controller.patching.groups import BUILTIN_BASELINES

from sample_baselines import full_baseline

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
