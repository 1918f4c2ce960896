"""proto <-> domain conversion for the controller's services."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, overload

from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common.errors import InvalidInput
from fleetops.common.roles import Role
from fleetops.common.states import CommandStatus, InvocationState
from fleetops.common.wire import inventory_to_proto
from fleetops.controller.audit.export import ExportResult
from fleetops.controller.audit.models import AuditEvent
from fleetops.controller.commands.models import Command, Invocation
from fleetops.controller.enrollment.models import Activation
from fleetops.controller.fleet.models import Host, HostStatus, Target
from fleetops.controller.fleet.service import TagChange
from fleetops.controller.patching.compliance import PatchFinding, PendingApproval
from fleetops.controller.patching.models import PatchGroup, StoredBaseline
from fleetops.controller.patching.store import HostReport
from fleetops.controller.sessions.models import Session, SessionKind
from fleetops.controller.users.models import User
from fleetops.controller.windows.models import Execution, Window, WindowTask
from fleetops.v1 import operator_pb2, session_pb2

_HOST_STATUS = {
    HostStatus.ONLINE: operator_pb2.HOST_STATUS_ONLINE,
    HostStatus.OFFLINE: operator_pb2.HOST_STATUS_OFFLINE,
    HostStatus.DEREGISTERED: operator_pb2.HOST_STATUS_DEREGISTERED,
}


@overload
def timestamp(value: datetime) -> Timestamp: ...
@overload
def timestamp(value: datetime | None) -> Timestamp | None: ...
def timestamp(value: datetime | None) -> Timestamp | None:
    """``value`` as a protobuf Timestamp (UTC); None stays None (the field is left unset)."""
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def target_from_proto(msg: operator_pb2.Target) -> Target:
    return Target(selector=msg.selector.strip(), hosts=tuple(msg.hosts), all=msg.all)


def host_to_proto(host: Host) -> operator_pb2.Host:
    return operator_pb2.Host(
        id=host.id,
        name=host.name,
        status=_HOST_STATUS[host.status],
        tags=host.all_tags,
        host_tags=host.host_tags,
        inventory=inventory_to_proto(host.inventory),
        registered_at=timestamp(host.registered_at),
        last_seen_at=timestamp(host.last_seen_at),
        connected_at=timestamp(host.connected_at),
        certificate_expires_at=timestamp(host.certificate_expires_at),
        activation_id=host.activation_id,
        peer_address=host.peer_address,
        replica=host.replica,
    )


def tag_changes_to_proto(changes: Sequence[TagChange], dry_run: bool) -> operator_pb2.TagHostsResponse:
    """Each host's operator-set tags (those access decisions see) before and after."""
    return operator_pb2.TagHostsResponse(
        hosts=[
            operator_pb2.HostTagChange(
                host_id=c.before.id,
                host_name=c.before.name,
                before=c.before.tags,
                after=c.after.tags,
                changed=c.changed,
            )
            for c in changes
        ],
        dry_run=dry_run,
    )


def activation_to_proto(a: Activation) -> operator_pb2.Activation:
    return operator_pb2.Activation(
        id=a.id,
        description=a.description,
        default_tags=a.default_tags,
        registration_limit=a.registration_limit,
        registrations_count=a.registrations_count,
        created_at=timestamp(a.created_at),
        expires_at=timestamp(a.expires_at),
        expired=a.expired,
        created_by=a.created_by,
        allowed_host_tags=a.allowed_host_tags,
        failed_codes=a.failed_codes,
        locked=a.locked,
        locked_at=timestamp(a.locked_at),
    )


def audit_event_to_proto(e: AuditEvent) -> operator_pb2.AuditEvent:

    return operator_pb2.AuditEvent(
        id=e.id,
        time=timestamp(e.time),
        actor=e.actor,
        action=e.action,
        target=e.target,
        outcome=e.outcome,
        details_json=json.dumps(e.details, sort_keys=True),
        previous_hash=e.previous_hash,
        hash=e.hash,
    )


def audit_event_detail_to_proto(
    e: AuditEvent, session: Session | None, command: Command | None, invocations: list[Invocation]
) -> operator_pb2.AuditEventDetail:
    """An event with what it links to: its session, or its command and per-host results."""
    detail = operator_pb2.AuditEventDetail(event=audit_event_to_proto(e))
    if session is not None:
        detail.session.CopyFrom(session_to_proto(session))
    if command is not None:
        detail.command.CopyFrom(
            operator_pb2.CommandDetail(
                command=command_to_proto(command),
                invocations=[invocation_to_proto(i, include_output=False) for i in invocations],
                done=command.status is not CommandStatus.IN_PROGRESS,
            )
        )
    return detail


def export_result_to_proto(r: ExportResult) -> operator_pb2.ExportAuditResponse:
    return operator_pb2.ExportAuditResponse(
        chunks=r.chunks, events=r.events, last_event_id=r.last_event_id, last_hash=r.last_hash
    )


_INVOCATION_STATE: dict[InvocationState, operator_pb2.InvocationState] = {
    state: operator_pb2.InvocationState.Value(f"INVOCATION_STATE_{state.name}")  # type: ignore[misc]  # stub: Value() -> int
    for state in InvocationState
}


def command_to_proto(c: Command) -> operator_pb2.Command:
    return operator_pb2.Command(
        id=c.id,
        created_by=c.created_by,
        created_at=timestamp(c.created_at),
        argv=list(c.spec.argv),
        script=c.spec.script or b"",
        agent_task=c.spec.agent_task,
        target=c.target,
        max_concurrency=c.spec.max_concurrency,
        max_errors=c.spec.max_errors,
        concurrency_limit=c.concurrency_limit,
        error_limit=c.error_limit,
        timeout_seconds=c.spec.timeout_seconds,
        delivery_timeout_seconds=c.spec.delivery_timeout_seconds,
        status=c.status.value,
        total=c.total,
        counts=c.counts,
        finished_at=timestamp(c.finished_at),
        run_as=c.spec.run_as,
        comment=c.spec.comment,
        document=c.spec.document,
        parameters=c.spec.parameters,
    )


def invocation_to_proto(i: Invocation, include_output: bool = True) -> operator_pb2.Invocation:
    return operator_pb2.Invocation(
        id=i.id,
        command_id=i.command_id,
        host_id=i.host_id,
        host_name=i.host_name,
        state=_INVOCATION_STATE[i.state],
        exit_code=i.exit_code or 0,
        has_exit_code=i.exit_code is not None,
        reason=i.reason,
        stdout_tail=i.stdout_tail if include_output else b"",
        stderr_tail=i.stderr_tail if include_output else b"",
        stdout_bytes=i.stdout_bytes,
        stderr_bytes=i.stderr_bytes,
        delivered_at=timestamp(i.delivered_at),
        started_at=timestamp(i.started_at),
        finished_at=timestamp(i.finished_at),
        rebooted=i.rebooted,
        waiting_reason=i.waiting_reason,
        host_offline_since=timestamp(i.host_offline_since),
    )


def session_to_proto(x: Session) -> operator_pb2.SessionInfo:
    return operator_pb2.SessionInfo(
        id=x.id,
        host_id=x.host_id,
        host_name=x.host_name,
        operator=x.operator,
        run_as=x.run_as,
        command=x.command,
        state=x.state.value,
        started_at=timestamp(x.started_at),
        ended_at=timestamp(x.ended_at),
        end_reason=x.end_reason,
        end_message=x.end_message,
        exit_code=x.exit_code or 0,
        has_exit_code=x.exit_code is not None,
        cols=x.cols,
        rows=x.rows,
        term=x.term,
        record_input=x.record_input,
        transcript_key=x.transcript_key,
        transcript_sha256=x.transcript_sha256,
        transcript_size=x.transcript_size or 0,
        transcript_state=x.transcript_state.value,
        kind=session_pb2.SESSION_KIND_SSH if x.kind is SessionKind.SSH else session_pb2.SESSION_KIND_TERMINAL,
    )


# -- patch management --------------------------------------------------------------------------


def baseline_document(message: operator_pb2.PatchBaseline) -> dict[str, Any]:
    """The baseline document a request carries (InvalidInput when it is not a JSON object)."""
    try:
        document = json.loads(message.document_json or "{}")
    except ValueError as exc:
        raise InvalidInput(f"the baseline document is not JSON: {exc}", "send the baseline as a JSON object") from exc
    if not isinstance(document, dict):
        raise InvalidInput("the baseline document must be a JSON object", "see docs/patching.md#baselines")
    document.setdefault("name", message.name)
    return document


def baseline_to_proto(stored: StoredBaseline) -> operator_pb2.PatchBaseline:
    return operator_pb2.PatchBaseline(
        name=stored.baseline.name,
        document_json=json.dumps(stored.baseline.to_dict(), sort_keys=True),
        builtin=stored.builtin,
        updated_at=timestamp(stored.updated_at),
        updated_by=stored.updated_by,
    )


def patch_group_to_proto(group: PatchGroup) -> operator_pb2.PatchGroup:
    return operator_pb2.PatchGroup(
        name=group.name, selector=group.selector, baseline=group.baseline, priority=group.priority
    )


def _host_compliance(report: HostReport) -> operator_pb2.HostPatchCompliance:
    row = report.report
    message = operator_pb2.HostPatchCompliance(host_id=report.host.id, host_name=report.host.name, status=report.status)
    if row is None:
        return message
    compliance = (row.summary or {}).get("compliance", {})
    message.baseline = row.baseline
    message.patch_group = row.patch_group
    message.scanned_at.CopyFrom(timestamp(row.reported_at))
    message.operation = row.operation
    message.command_id = row.command_id
    message.reboot_pending = row.reboot_pending
    message.os_family = row.os_family
    message.provider = row.provider
    message.highest_level = compliance.get("highest_level") or ""
    message.counts.update({k: int(v) for k, v in (compliance.get("counts") or {}).items() if v})
    message.missing_by_severity.update(
        {k: int(v) for k, v in (compliance.get("missing_by_severity") or {}).items() if v}
    )
    pending = report.pending
    if pending is not None:
        message.pending_approval = pending.count
        message.pending_undated = pending.undated
        if pending.next_approval_at is not None:
            message.next_approval_at.CopyFrom(timestamp(pending.next_approval_at))
    return message


def _pending_updates(pending: PendingApproval | None) -> list[operator_pb2.PendingUpdate]:
    return [
        operator_pb2.PendingUpdate(
            name=u.name,
            arch=u.arch,
            installed_version=u.installed_version,
            candidate_version=u.candidate_version,
            classification=u.classification.value,
            severity=u.severity.value,
            kb=u.kb,
            advisory_ids=list(u.advisory_ids),
            approved_at=timestamp(u.approved_at),
            reason=u.reason,
        )
        for u in (pending.updates if pending is not None else ())
    ]


def patch_compliance_to_proto(
    reports: list[HostReport], findings: list[PatchFinding], history: list[HostReport], *, one_host: bool = False
) -> operator_pb2.PatchComplianceResponse:
    """The fleet's compliance (or, with *one_host*, one host's, with its findings, its updates
    pending approval one by one, and its history)."""
    response = operator_pb2.PatchComplianceResponse(
        hosts=[_host_compliance(r) for r in reports], history=[_host_compliance(r) for r in history]
    )
    missing: dict[str, int] = {}
    for report in reports:
        status = report.status
        response.compliant += status == "compliant"
        response.non_compliant += status == "non_compliant"
        response.not_scanned += status == "not_scanned"
        if status != "not_scanned" and report.report is not None:
            counts = (report.report.summary or {}).get("compliance", {}).get("missing_by_severity") or {}
            for severity, count in counts.items():
                if count:
                    missing[severity] = missing.get(severity, 0) + int(count)
    response.missing_by_severity.update(missing)
    next_approval = None
    for message in response.hosts:
        if message.pending_approval:
            response.pending_approval += message.pending_approval
            response.pending_undated += message.pending_undated
            response.pending_approval_hosts += 1
        if message.HasField("next_approval_at") and (
            next_approval is None or message.next_approval_at.ToDatetime() < next_approval.ToDatetime()
        ):
            next_approval = message.next_approval_at
    if next_approval is not None:
        response.next_approval_at.CopyFrom(next_approval)
    if one_host and reports:
        response.pending_updates.extend(_pending_updates(reports[0].pending))
    for f in findings:
        response.findings.append(
            operator_pb2.PatchFinding(
                name=f.name,
                state=f.state.value,
                installed_version=f.installed_version,
                candidate_version=f.candidate_version,
                arch=f.arch,
                classification=f.classification.value,
                severity=f.severity.value,
                compliance_level=f.compliance_level.value,
                kb=f.kb,
                advisory_ids=list(f.advisory_ids),
                detail=f.detail,
            )
        )
    return response


# -- maintenance windows -------------------------------------------------------------------------


def window_from_proto(m: operator_pb2.MaintenanceWindow, *, unsaved: bool = False) -> Window:
    return Window(
        name=m.name or ("unsaved" if unsaved else ""),
        schedule=m.schedule,
        timezone=m.timezone or "UTC",
        duration_seconds=m.duration_seconds or (3600 if unsaved else 0),
        cutoff_seconds=m.cutoff_seconds,
        cutoff_behavior=m.cutoff_behavior or "continue",  # type: ignore[arg-type]  # Window checks the word and converts it
        start_date=from_timestamp(m.start_date) if m.HasField("start_date") else None,
        end_date=from_timestamp(m.end_date) if m.HasField("end_date") else None,
        offset_days=m.offset_days,
        enabled=m.enabled,
        description=m.description,
    )


def window_to_proto(w: Window, next_run: datetime | None) -> operator_pb2.MaintenanceWindow:
    return operator_pb2.MaintenanceWindow(
        name=w.name,
        schedule=w.schedule,
        timezone=w.timezone,
        duration_seconds=w.duration_seconds,
        cutoff_seconds=w.cutoff_seconds,
        cutoff_behavior=str(w.cutoff_behavior),
        start_date=timestamp(w.start_date),
        end_date=timestamp(w.end_date),
        offset_days=w.offset_days,
        enabled=w.enabled,
        description=w.description,
        created_at=timestamp(w.created_at),
        created_by=w.created_by,
        next_run=timestamp(next_run),
    )


def window_task_from_proto(m: operator_pb2.WindowTask) -> WindowTask:
    return WindowTask(
        window=m.window,
        priority=m.priority,
        type=m.type,  # type: ignore[arg-type]  # WindowTask checks the word and converts it
        target=target_from_proto(m.target),
        max_concurrency=m.max_concurrency,
        max_errors=m.max_errors,
        reboot=m.reboot,
        argv=tuple(m.argv),
        script=m.script or None,
        run_as=m.run_as,
        timeout_seconds=m.timeout_seconds,
        description=m.description,
        document=m.document,
        parameters=dict(m.parameters),
    )


def window_task_to_proto(t: WindowTask) -> operator_pb2.WindowTask:
    return operator_pb2.WindowTask(
        window=t.window,
        id=t.id,
        priority=t.priority,
        type=str(t.type),
        target=operator_pb2.Target(selector=t.target.selector, hosts=list(t.target.hosts), all=t.target.all),
        max_concurrency=t.max_concurrency,
        max_errors=t.max_errors,
        reboot=t.reboot,
        argv=list(t.argv),
        script=t.script or b"",
        run_as=t.run_as,
        timeout_seconds=t.timeout_seconds,
        description=t.description,
        author=t.author,
        document=t.document,
        parameters=t.parameters,
    )


def next_runs_to_proto(runs: list[datetime], timezone: str) -> operator_pb2.NextWindowRunsResponse:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone or "UTC")
    response = operator_pb2.NextWindowRunsResponse()
    for run in runs:
        response.starts.append(timestamp(run))
        response.local_starts.append(run.astimezone(zone).isoformat())
    return response


def execution_to_proto(e: Execution) -> operator_pb2.WindowExecution:
    return operator_pb2.WindowExecution(
        id=e.id,
        window=e.window,
        scheduled_at=timestamp(e.scheduled_at),
        status=str(e.status),
        reason=e.reason,
        started_at=timestamp(e.started_at),
        finished_at=timestamp(e.finished_at),
        ends_at=timestamp(e.ends_at),
        controller=e.controller,
        tasks=[
            operator_pb2.WindowTaskExecution(
                task_id=t.task_id,
                type=t.type,
                priority=t.priority,
                status=str(t.status),
                command_id=t.command_id,
                reason=t.reason,
                started_at=timestamp(t.started_at),
                finished_at=timestamp(t.finished_at),
                counts=t.counts,
                target=t.target,
                author=t.author,
                refused_hosts=list(t.refused_hosts),
            )
            for t in e.tasks
        ],
    )


def user_to_proto(u: User) -> operator_pb2.User:
    return operator_pb2.User(
        name=u.name,
        roles=list(u.roles),
        disabled=u.disabled,
        created_at=timestamp(u.created_at),
        created_by=u.created_by,
        last_login_at=timestamp(u.last_login_at),
        certificate_expires_at=timestamp(u.certificate_expires_at),
    )


def role_document(message: operator_pb2.Role) -> dict[str, Any]:
    try:
        document = json.loads(message.document_json or "{}")
    except ValueError as exc:
        raise InvalidInput(f"the role document is not JSON: {exc}", "send the role as a JSON object") from exc
    if not isinstance(document, dict):
        raise InvalidInput("the role document must be a JSON object", "see docs/access.md#roles")
    document.setdefault("name", message.name)
    return document


def role_to_proto(role: Role) -> operator_pb2.Role:
    return operator_pb2.Role(
        name=role.name, document_json=json.dumps(role.to_dict(), sort_keys=True), builtin=role.builtin
    )
