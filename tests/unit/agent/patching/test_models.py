"""Unit tests of the patch records and their JSON round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleetops.agent.patching.models import (
    InstallOutcome,
    Package,
    ScanResult,
    Update,
    most_urgent_classification,
    worst_severity,
)
from fleetops.common.errors import InvalidInput


def sample_scan() -> ScanResult:
    update = Update(
        name="openssl",
        installed_version="1:3.0.7-24.el9",
        candidate_version="1:3.5.8-1.el9_8",
        arch="x86_64",
        repository="baseos",
        classification="security",
        severity="important",
        release_date=datetime(2025, 12, 3, 10, 38, 39, tzinfo=UTC),
        advisory_ids=("RLSA-2025:1234",),
        title="",
        reboot_required=False,
    )
    windows = Update("KB4519998", None, "", "", "Windows Server 2016", kb_id="KB4519998", title="2019-10 Cumulative")
    return ScanResult(
        os_family="linux",
        provider="dnf",
        installed=(Package("openssl", "1:3.0.7-24.el9", "x86_64"),),
        updates=(update, windows),
        reboot_pending=True,
        reboot_reasons=("kernel was updated since boot",),
        scanned_at=datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
    )


def test_scan_result_survives_a_json_round_trip() -> None:
    scan = sample_scan()
    wire = json.loads(json.dumps(scan.to_dict()))
    assert wire["updates"][0]["release_date"] == "2025-12-03T10:38:39Z"
    assert wire["scanned_at"] == "2026-11-27T08:00:00Z"
    assert ScanResult.from_dict(wire) == scan


def test_install_outcome_round_trip() -> None:
    outcome = InstallOutcome("bash", "failed", "5.1.8-6.el9_1", "install failed (exit 1): boom")
    assert InstallOutcome.from_dict(json.loads(json.dumps(outcome.to_dict()))) == outcome


def test_release_dates_in_other_zones_are_read_as_utc() -> None:
    data = sample_scan().to_dict()
    data["updates"][0]["release_date"] = "2025-12-03T12:38:39+02:00"
    assert ScanResult.from_dict(data).updates[0].release_date == datetime(2025, 12, 3, 10, 38, 39, tzinfo=UTC)
    local = datetime(2025, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert Update("x", None, "1", "", "", release_date=local).to_dict()["release_date"] == "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("provider"), "field 'provider' is missing"),
        (lambda d: d.update(reboot_pending="yes"), "'reboot_pending' must be true or false"),
        (lambda d: d["updates"][0].update(severity="urgent"), "'severity' must be one of critical"),
        (lambda d: d["updates"][0].update(classification=None), "'classification' must be a string"),
        (lambda d: d["updates"][0].update(release_date="yesterday"), "'release_date' must be an ISO 8601 time"),
        (lambda d: d["updates"][0].update(release_date="2025-12-03T10:38:39"), "with a zone"),
        (lambda d: d["updates"][0].update(advisory_ids="RHSA-1"), "'advisory_ids' must be a list of strings"),
        (lambda d: d.update(installed={}), "'installed' must be a list"),
        (lambda d: d["installed"].append("bash"), "package: expected a JSON object"),
        (lambda d: d.update(scanned_at=None), "scanned_at is missing"),
    ],
)
def test_malformed_wire_data_is_invalid_input(change, message) -> None:
    data = sample_scan().to_dict()
    change(data)
    with pytest.raises(InvalidInput, match=message) as raised:
        ScanResult.from_dict(data)
    assert raised.value.hint


def test_records_refuse_values_outside_their_vocabulary() -> None:
    with pytest.raises(InvalidInput):
        Update("x", None, "1", "", "", classification="urgent")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Update("x", None, "1", "", "", release_date=datetime(2025, 1, 1))
    with pytest.raises(InvalidInput):
        InstallOutcome("x", "done", None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="state"):
        InstallOutcome.from_dict({"name": "x", "state": "done", "version_after": None})


def test_worst_severity_and_most_urgent_classification() -> None:
    assert worst_severity(["low", "unspecified", "important", "moderate"]) == "important"
    assert worst_severity(["unspecified"]) == "unspecified"
    assert most_urgent_classification(["enhancement", "bugfix", "unknown"]) == "bugfix"
    assert most_urgent_classification([]) == "unknown"


def test_scan_helpers_find_updates_and_packages_by_name() -> None:
    scan = sample_scan()
    assert [u.candidate_version for u in scan.update_named("openssl")] == ["1:3.5.8-1.el9_8"]
    assert scan.installed_named("openssl")[0].arch == "x86_64"
    assert scan.update_named("nothing") == []
