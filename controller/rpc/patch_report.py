"""The patch report on the wire (``fleetops.v1.PatchReport``) -> the domain's :class:`PatchReport`.

An agent's patch task sends its report in ``InvocationResult.patch_report``. Every field is
checked here, at the edge: a word that is not in the shared vocabulary, an impossible time or a
report over :data:`~fleetops.common.limits.PATCH_REPORT_BYTES` is refused with an error that names
the field (``scan.updates[3].severity``). A refused report does not refuse the result: the
invocation's result is stored and acknowledged, and the host's patch report records the error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common import limits
from fleetops.common.errors import InvalidInput
from fleetops.common.patch_report import (
    AvailableUpdate,
    InstalledPackage,
    InstallOutcome,
    PatchReport,
    PatchScan,
    RebootState,
)
from fleetops.common.patching import Classification, InstallStatus, Severity
from fleetops.v1 import agent_pb2, patching_pb2

_HINT = "the agent's patch report is malformed; upgrade the agent to the controller's release"


def _time(msg: Any, field: str, where: str) -> datetime | None:
    if not msg.HasField(field):
        return None
    stamp: Timestamp = getattr(msg, field)
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"patch report field '{where}{field}' is an impossible time", _HINT) from None


def _word(enum_type: Any, value: str, where: str) -> Any:
    for member in enum_type:
        if member.value == value:
            return member
    choices = ", ".join(m.value for m in enum_type)
    raise InvalidInput(f"patch report field '{where}' has an unknown value {value[:64]!r} (one of: {choices})", _HINT)


def _name(value: str, where: str) -> str:
    if not value:
        raise InvalidInput(f"patch report field '{where}' is empty", _HINT)
    return value


def _update(msg: patching_pb2.PatchUpdate, where: str) -> AvailableUpdate:
    return AvailableUpdate(
        name=_name(msg.name, where + "name"),
        candidate_version=msg.candidate_version,
        installed_version=msg.installed_version if msg.HasField("installed_version") else "",
        arch=msg.arch,
        repository=msg.repository,
        classification=_word(Classification, msg.classification, where + "classification"),
        severity=_word(Severity, msg.severity, where + "severity"),
        release_date=_time(msg, "release_date", where),
        advisory_ids=tuple(msg.advisory_ids),
        kb=msg.kb,
        title=msg.title,
        reboot_required=msg.reboot_required,
    )


def scan_from_proto(msg: patching_pb2.PatchScanReport, host_id: str = "") -> PatchScan:
    """Raises: InvalidInput naming the bad field (``scan.updates[3].severity``)."""
    return PatchScan(
        os_family=msg.os_family,
        provider=msg.provider,
        installed=tuple(
            InstalledPackage(_name(p.name, f"scan.installed[{i}].name"), p.version, p.arch)
            for i, p in enumerate(msg.installed)
        ),
        updates=tuple(_update(u, f"scan.updates[{i}].") for i, u in enumerate(msg.updates)),
        reboot_pending=msg.reboot_pending,
        reboot_reasons=tuple(msg.reboot_reasons),
        host_id=host_id,
        scanned_at=_time(msg, "scanned_at", "scan."),
    )


def _outcome(msg: patching_pb2.PatchInstallOutcome, where: str) -> InstallOutcome:
    return InstallOutcome(
        name=_name(msg.name, where + "name"),
        status=_word(InstallStatus, msg.status, where + "status"),
        version=msg.version,
        at=_time(msg, "at", where),
        message=msg.message,
    )


def report_from_proto(msg: patching_pb2.PatchReport, host_id: str = "") -> PatchReport:
    """The domain's report of the message.

    Raises:
        InvalidInput: the report is over the limit, has no scan, or a field is not valid (named).
    """
    limits.PATCH_REPORT_BYTES.check(msg.ByteSize())
    if not msg.HasField("scan"):
        raise InvalidInput("the patch report has no scan", _HINT)
    if msg.operation not in ("scan", "install"):
        raise InvalidInput(f"patch report field 'operation' has an unknown value {msg.operation[:64]!r}", _HINT)
    return PatchReport(
        operation=msg.operation,
        scan=scan_from_proto(msg.scan, host_id),
        outcomes=tuple(_outcome(o, f"outcomes[{i}].") for i, o in enumerate(msg.outcomes)),
        reboot=_word(RebootState, msg.reboot or RebootState.NOT_NEEDED.value, "reboot"),
    )


def task_report_from_result(result: agent_pb2.InvocationResult) -> dict[str, Any] | None:
    """What the controller keeps of a result's task report: the report's stored form, an
    ``{"error": ...}`` saying why there is none usable, or None when the result carries none."""
    if result.patch_report_error:
        return {"error": limits.truncate_utf8(result.patch_report_error, limits.REASON_BYTES.maximum)}
    if not result.HasField("patch_report"):
        return None
    try:
        return report_from_proto(result.patch_report).to_dict()
    except InvalidInput as exc:
        return {"error": exc.message}
