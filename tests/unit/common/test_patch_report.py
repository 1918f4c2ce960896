"""The patch report across its boundaries: agent records -> fleetops.v1.PatchReport -> controller domain.

One schema (the message); the agent writes it into the invocation's journal entry, the result
carries it, the controller converts it back at the edge (controller/rpc/patch_report.py) and keeps
its stored form with the invocation (controller/patching/store.py reads it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetops.agent.commands.entry import JournalEntry, Outcome, Phase
from fleetops.agent.commands.messages import result_message
from fleetops.agent.patching.models import InstallOutcome, Package, ScanResult, Update
from fleetops.agent.patching.wire import report_to_proto, write_report
from fleetops.common import limits
from fleetops.common.errors import InvalidInput
from fleetops.common.patch_report import AvailableUpdate, InstalledPackage, PatchReport, PatchScan, RebootState
from fleetops.common.patching import Classification, InstallStatus, Severity
from fleetops.controller.patching.store import task_report_of
from fleetops.controller.rpc.patch_report import report_from_proto, task_report_from_result
from fleetops.v1 import agent_pb2, patching_pb2

SCANNED = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
RELEASED = datetime(2025, 12, 3, 10, 38, 39, tzinfo=UTC)
INSTALLED_AT = datetime(2026, 11, 27, 8, 5, tzinfo=UTC)


def agent_scan() -> ScanResult:
    openssl = Update(
        name="openssl",
        installed_version="1:3.0.7-24.el9",
        candidate_version="1:3.5.8-1.el9_8",
        arch="x86_64",
        repository="baseos",
        classification=Classification.SECURITY,
        severity=Severity.IMPORTANT,
        release_date=RELEASED,
        advisory_ids=("RLSA-2025:1234", "CVE-2025-0001"),
        title="openssl security update",
        reboot_required=True,
    )
    # A Windows update: a KB number, not installed yet (no installed version), severity unknown.
    kb = Update("KB4519998", None, "", "", "Windows Server 2016", kb_id="KB4519998", title="2019-10 Cumulative")
    return ScanResult(
        os_family="linux",
        provider="dnf",
        installed=(Package("openssl", "1:3.0.7-24.el9", "x86_64"), Package("tzdata", "2025a", "")),
        updates=(openssl, kb),
        reboot_pending=True,
        reboot_reasons=("kernel was updated since boot",),
        scanned_at=SCANNED,
    )


def test_a_report_round_trips_from_the_agent_to_the_controller_with_every_field() -> None:
    outcomes = [
        InstallOutcome("openssl", "installed", "1:3.5.8-1.el9_8", "installed"),
        InstallOutcome("bash", "failed", "5.1.8-6.el9_1", "install failed (exit 1): boom"),
        InstallOutcome("nginx", "not_applicable", None, "not offered on this host"),
    ]
    wire = report_to_proto("install", agent_scan(), outcomes, RebootState.REQUESTED, at=INSTALLED_AT)
    report = report_from_proto(patching_pb2.PatchReport.FromString(wire.SerializeToString()), host_id="h-1")

    assert report.operation == "install" and report.reboot is RebootState.REQUESTED
    assert report.scan == PatchScan(
        os_family="linux",
        provider="dnf",
        installed=(InstalledPackage("openssl", "1:3.0.7-24.el9", "x86_64"), InstalledPackage("tzdata", "2025a", "")),
        updates=(
            AvailableUpdate(
                name="openssl",
                candidate_version="1:3.5.8-1.el9_8",
                installed_version="1:3.0.7-24.el9",
                arch="x86_64",
                repository="baseos",
                classification=Classification.SECURITY,
                severity=Severity.IMPORTANT,
                release_date=RELEASED,
                advisory_ids=("RLSA-2025:1234", "CVE-2025-0001"),
                title="openssl security update",
                reboot_required=True,
            ),
            AvailableUpdate(
                name="KB4519998",
                candidate_version="",
                installed_version="",  # not installed yet
                repository="Windows Server 2016",
                classification=Classification.OTHER,
                severity=Severity.UNSPECIFIED,  # the vendor gave none
                kb="KB4519998",
                title="2019-10 Cumulative",
            ),
        ),
        reboot_pending=True,
        reboot_reasons=("kernel was updated since boot",),
        host_id="h-1",
        scanned_at=SCANNED,
    )
    assert [(o.name, o.status, o.version, o.message, o.at) for o in report.outcomes] == [
        ("openssl", InstallStatus.INSTALLED, "1:3.5.8-1.el9_8", "installed", INSTALLED_AT),
        ("bash", InstallStatus.FAILED, "5.1.8-6.el9_1", "install failed (exit 1): boom", INSTALLED_AT),
        ("nginx", InstallStatus.NOT_APPLICABLE, "", "not offered on this host", INSTALLED_AT),
    ]
    assert [o.name for o in report.evaluated_outcomes()] == ["openssl", "bash"]
    # The controller keeps the stored form with the invocation and reads it back the same.
    assert PatchReport.from_dict(report.to_dict(), host_id="h-1") == report


@pytest.mark.parametrize(
    ("spoil", "field"),
    [
        (lambda r: setattr(r.scan.updates[1], "severity", "urgent"), "scan.updates[1].severity"),
        (lambda r: setattr(r.scan.updates[0], "classification", "unknown"), "scan.updates[0].classification"),
        (lambda r: setattr(r.scan.updates[0], "name", ""), "scan.updates[0].name"),
        (lambda r: setattr(r.scan.installed[1], "name", ""), "scan.installed[1].name"),
        (lambda r: setattr(r.outcomes[0], "status", "done"), "outcomes[0].status"),
        (lambda r: setattr(r, "reboot", "maybe"), "reboot"),
        (lambda r: setattr(r, "operation", "upgrade"), "operation"),
        (lambda r: setattr(r.scan.scanned_at, "seconds", 2**62), "scan.scanned_at"),
    ],
)
def test_a_garbage_field_is_refused_naming_it(spoil, field: str) -> None:
    wire = report_to_proto("install", agent_scan(), [InstallOutcome("openssl", "installed", "2", "")], at=INSTALLED_AT)
    spoil(wire)
    with pytest.raises(InvalidInput, match=re.escape(f"'{field}'")) as raised:
        report_from_proto(wire)
    assert raised.value.hint


def test_a_refused_report_does_not_refuse_the_result_and_the_controller_says_why() -> None:
    wire = report_to_proto("scan", agent_scan())
    wire.scan.updates[0].severity = "urgent"
    result = agent_pb2.InvocationResult(invocation_id="inv-1", patch_report=wire)
    stored = task_report_from_result(result)
    assert stored is not None and "scan.updates[0].severity" in stored["error"]
    with pytest.raises(InvalidInput, match=r"scan\.updates\[0\]\.severity"):
        task_report_of(stored, "h-1")
    with pytest.raises(InvalidInput, match="sent no patch report") as raised:
        task_report_of(task_report_from_result(agent_pb2.InvocationResult(invocation_id="inv-2")), "h-1")
    assert "opsctl run output" in (raised.value.hint or "")


def finished_entry(directory: Path) -> JournalEntry:
    directory.mkdir(parents=True, exist_ok=True)
    return JournalEntry(
        "inv-1", directory, Phase.FINISHED, SCANNED, outcome=Outcome.SUCCESS, exit_code=0, finished_at=SCANNED
    )


def test_the_result_carries_the_report_the_task_journaled(tmp_path: Path) -> None:
    entry = finished_entry(tmp_path / "inv-1")
    write_report(report_to_proto("scan", agent_scan()), entry.task_report_path)
    # Built from the journal alone, as after a restart: the report goes again with the result.
    result = result_message(entry).result
    assert not result.patch_report_error
    assert report_from_proto(result.patch_report).scan.updates[1].kb == "KB4519998"
    assert result_message(finished_entry(tmp_path / "inv-2")).result.HasField("patch_report") is False


def test_a_report_over_the_limit_is_refused_clearly_at_every_step(tmp_path: Path) -> None:
    huge = report_to_proto("scan", agent_scan())
    huge.scan.reboot_reasons.append("x" * limits.PATCH_REPORT_BYTES.maximum)
    # The task refuses to write it...
    with pytest.raises(InvalidInput, match="the patch report is .* bytes, the limit is") as raised:
        write_report(huge, tmp_path / "report.pb")
    assert raised.value.hint and not (tmp_path / "report.pb").exists()
    # ...the agent sends the result without it, saying why (a file put there some other way)...
    entry = finished_entry(tmp_path / "inv-1")
    entry.task_report_path.write_bytes(huge.SerializeToString())
    result = result_message(entry).result
    assert not result.HasField("patch_report") and "over" in result.patch_report_error
    assert result.ByteSize() < limits.AGENT_SEND_BYTES
    # ...and the controller refuses one over the limit at its edge (an agent of another make).
    with pytest.raises(InvalidInput, match="the patch report is .* bytes, the limit is"):
        report_from_proto(huge)
    stored = task_report_from_result(agent_pb2.InvocationResult(invocation_id="inv-1", patch_report=huge))
    assert stored is not None and "the limit is" in stored["error"]


def test_a_report_that_is_not_a_message_is_not_sent(tmp_path: Path) -> None:
    entry = finished_entry(tmp_path / "inv-1")
    entry.task_report_path.write_bytes(b"\xff\xff\xff garbage")
    result = result_message(entry).result
    assert not result.HasField("patch_report") and "not a PatchReport" in result.patch_report_error


def test_the_largest_legal_report_fits_what_an_agent_may_send() -> None:
    assert limits.PATCH_REPORT_BYTES.maximum + 64 * limits.KIB <= limits.AGENT_SEND_BYTES
    assert limits.AGENT_SEND_BYTES <= limits.CONTROLLER_RECEIVE_BYTES
