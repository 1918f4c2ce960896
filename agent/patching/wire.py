"""A patch task's records -> the ``fleetops.v1.PatchReport`` message, and writing it for the agent.

The one schema of the patch report is the message (proto/fleetops/v1/patching.proto); the
controller reads it back into :mod:`fleetops.common.patch_report` (controller/rpc/patch_report.py).
Words go as the values of the shared vocabulary (:mod:`fleetops.common.patching`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from fleetops.agent.commands.durable import write_durably
from fleetops.agent.patching.models import InstallOutcome, ScanResult, Update
from fleetops.common import limits
from fleetops.common.patch_report import RebootState
from fleetops.v1 import patching_pb2


def _update(update: Update) -> patching_pb2.PatchUpdate:
    msg = patching_pb2.PatchUpdate(
        name=update.name,
        candidate_version=update.candidate_version,
        arch=update.arch,
        repository=update.repository,
        classification=update.classification.value,
        severity=update.severity.value,
        advisory_ids=list(update.advisory_ids),
        kb=update.kb_id or "",
        title=update.title,
        reboot_required=update.reboot_required,
    )
    if update.installed_version is not None:
        msg.installed_version = update.installed_version
    if update.release_date is not None:
        msg.release_date.FromDatetime(update.release_date)
    return msg


def scan_to_proto(scan: ScanResult) -> patching_pb2.PatchScanReport:
    msg = patching_pb2.PatchScanReport(
        os_family=scan.os_family,
        provider=scan.provider,
        installed=[
            patching_pb2.PatchInstalledPackage(name=p.name, version=p.version, arch=p.arch) for p in scan.installed
        ],
        updates=[_update(u) for u in scan.updates],
        reboot_pending=scan.reboot_pending,
        reboot_reasons=list(scan.reboot_reasons),
    )
    msg.scanned_at.FromDatetime(scan.scanned_at)
    return msg


def outcome_to_proto(outcome: InstallOutcome, at: datetime) -> patching_pb2.PatchInstallOutcome:
    msg = patching_pb2.PatchInstallOutcome(
        name=outcome.name, status=outcome.state, version=outcome.version_after or "", message=outcome.message
    )
    msg.at.FromDatetime(at)
    return msg


def report_to_proto(
    operation: str,
    scan: ScanResult,
    outcomes: Sequence[InstallOutcome] = (),
    reboot: RebootState = RebootState.NOT_NEEDED,
    *,
    at: datetime | None = None,
) -> patching_pb2.PatchReport:
    """The report of one task: ``scan`` (after the install, for an install), the outcomes (done at ``at``)."""
    when = at or scan.scanned_at
    return patching_pb2.PatchReport(
        operation=operation,
        scan=scan_to_proto(scan),
        outcomes=[outcome_to_proto(o, when) for o in outcomes],
        reboot=reboot.value,
    )


def write_report(report: patching_pb2.PatchReport, path: Path) -> None:
    """Write the report durably where the agent reads it after the task ends.

    Raises:
        InvalidInput: the report is over :data:`~fleetops.common.limits.PATCH_REPORT_BYTES` (nothing is written).
        OSError: the file cannot be written.
    """
    data = report.SerializeToString()
    limits.PATCH_REPORT_BYTES.check(len(data))
    write_durably(path, data)
