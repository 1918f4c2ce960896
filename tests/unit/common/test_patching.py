"""Unit tests of the shared patch vocabulary (fleetops.common.patching)."""

from __future__ import annotations

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.patching import (
    Classification,
    ComplianceLevel,
    InstallStatus,
    PatchState,
    Severity,
    most_urgent_classification,
    worst_severity,
)


def test_worst_severity_and_most_urgent_classification() -> None:
    assert worst_severity([Severity.LOW, Severity.UNSPECIFIED, Severity.IMPORTANT, Severity.MODERATE]) is (
        Severity.IMPORTANT
    )
    assert worst_severity([]) is Severity.UNSPECIFIED
    assert most_urgent_classification([Classification.ENHANCEMENT, Classification.BUGFIX, Classification.OTHER]) is (
        Classification.BUGFIX
    )
    assert most_urgent_classification([]) is Classification.OTHER


def test_words_parse_case_insensitively_with_aliases() -> None:
    assert Severity.parse("High") is Severity.IMPORTANT
    assert Severity.parse("unknown") is Severity.UNSPECIFIED
    assert Classification.parse(" SECURITY ") is Classification.SECURITY
    assert ComplianceLevel.parse("critical") > ComplianceLevel.HIGH
    assert PatchState.parse("INSTALLED_PENDING_REBOOT") is PatchState.INSTALLED_PENDING_REBOOT
    assert InstallStatus("not_applicable") is InstallStatus.NOT_APPLICABLE


def test_an_unknown_word_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidInput, match="unknown severity 'urgent'") as raised:
        Severity.parse("urgent")
    assert "critical" in (raised.value.hint or "")


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
