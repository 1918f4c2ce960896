"""Unit tests of the stored form of a scan (fleetops.common.patch_report), rows of earlier releases included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.patch_report import AvailableUpdate, PatchScan
from fleetops.common.patching import Classification, Severity

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
