"""Unit tests of the providers' patch records (their wire form: tests/unit/common/test_patch_report.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetops.agent.patching.models import InstallOutcome, Package, ScanResult, Update
from fleetops.common.errors import InvalidInput
from fleetops.common.patching import Classification, Severity


def sample_scan() -> ScanResult:
    update = Update(
        name="openssl",
        installed_version="1:3.0.7-24.el9",
        candidate_version="1:3.5.8-1.el9_8",
        arch="x86_64",
        repository="baseos",
        classification=Classification.SECURITY,
        severity=Severity.IMPORTANT,
        release_date=datetime(2025, 12, 3, 10, 38, 39, tzinfo=UTC),
        advisory_ids=("RLSA-2025:1234",),
    )
    return ScanResult(
        os_family="linux",
        provider="dnf",
        installed=(Package("openssl", "1:3.0.7-24.el9", "x86_64"),),
        updates=(update,),
        reboot_pending=True,
        scanned_at=datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
    )


def test_records_refuse_values_outside_their_vocabulary() -> None:
    with pytest.raises(InvalidInput, match="classification"):
        Update("x", None, "1", "", "", classification="security")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="severity"):
        Update("x", None, "1", "", "", severity="urgent")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="time zone"):
        Update("x", None, "1", "", "", release_date=datetime(2025, 1, 1))
    with pytest.raises(InvalidInput, match="state"):
        InstallOutcome("x", "done", None)  # type: ignore[arg-type]


def test_an_update_defaults_to_the_neutral_words() -> None:
    update = Update("x", None, "1", "", "")
    assert (update.classification, update.severity) == (Classification.OTHER, Severity.UNSPECIFIED)


def test_scan_helpers_find_updates_and_packages_by_name() -> None:
    scan = sample_scan()
    assert [u.candidate_version for u in scan.update_named("openssl")] == ["1:3.5.8-1.el9_8"]
    assert scan.installed_named("openssl")[0].arch == "x86_64"
    assert scan.update_named("nothing") == []
