"""OperatorService calls for the audit log (controller/audit): list, show, export, verify."""

from __future__ import annotations

import contextlib
from typing import Any

from fleetops.common.errors import Conflict, NotFound, Unavailable
from fleetops.controller.audit.checkpoint import CheckpointCheck
from fleetops.controller.audit.service import AuditQuery
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


class AuditCalls(OperatorAdapter):
    """The audit log: listing and showing events, export to the object store, verification."""

    @operator_call("audit.list")
    async def ListAuditEvents(self, request: operator_pb2.ListAuditEventsRequest, peer: Peer) -> tuple[Any, str]:
        host_keys: tuple[str, ...] = ()
        if request.host:
            try:
                host = await self._fleet.get_host(request.host)
            except NotFound:
                raise NotFound(
                    f"no such host: {request.host}",
                    "give a host name or id from opsctl hosts list --include-deregistered",
                ) from None
            host_keys = (host.name, host.id)
        # A bare actor ("alice", "web-1") is the operator of that name, the host of that name or id,
        # or an actor recorded without a kind ("controller"); "operator:alice" matches exactly.
        actor = request.actor.strip()
        actors: tuple[str, ...] = ()
        if actor and ":" not in actor:
            actors = (actor, f"operator:{actor}")
            with contextlib.suppress(NotFound):
                actors += (f"host:{(await self._fleet.get_host(actor)).id}",)
            actor = ""
        query = AuditQuery(
            since=convert.from_timestamp(request.since) if request.HasField("since") else None,
            until=convert.from_timestamp(request.until) if request.HasField("until") else None,
            actor=actor,
            actors=actors,
            action=request.action,
            outcome=request.outcome,
            host=host_keys,
            before_id=request.before_id,
            limit=request.limit or 100,
            include_reads=request.include_reads,
        )
        events = await self._audit.list(query)
        return operator_pb2.ListAuditEventsResponse(
            events=[convert.audit_event_to_proto(e) for e in events]
        ), request.host

    @operator_call("audit.show")
    async def GetAuditEvent(self, request: operator_pb2.GetAuditEventRequest, peer: Peer) -> tuple[Any, str]:
        event = await self._audit.get(request.id)
        session = command = None
        invocations: list[Any] = []
        # The linked record may be gone (or the target is not an id): the event is shown alone then.
        try:
            if event.action.startswith("session.") and event.target:
                session = await self._sessions.get(event.target)
            elif event.target.startswith("cmd-"):
                command, invocations = await self._commands.view(event.target)
        except NotFound:
            pass
        return convert.audit_event_detail_to_proto(event, session, command, invocations), str(event.id)

    @operator_call("audit.export")
    async def ExportAudit(self, request: operator_pb2.ExportAuditRequest, peer: Peer) -> tuple[Any, str]:
        if self.audit_exporter is None:
            raise Unavailable("this controller does not export the audit log", "see the controller's configuration")
        result = await self.audit_exporter.export()
        if result.problem:
            raise Conflict(
                f"audit export stopped at event {result.bad_event_id}: {result.problem} "
                f"({result.events} event(s) before it exported)",
                "run opsctl audit verify",
            )
        return convert.export_result_to_proto(result), ""

    @operator_call("audit.verify")
    async def VerifyAudit(self, request: operator_pb2.VerifyAuditRequest, peer: Peer) -> tuple[Any, str]:
        if self.audit_checkpoints is None:
            result = await self._audit.verify()
            check = CheckpointCheck("none", "this controller keeps no audit checkpoints")
        else:
            result, check = await self.audit_checkpoints.check()
        ok, bad, problem = result.ok, result.first_bad_event_id, result.problem
        if ok and check.failed:  # what older clients, which know only these fields, then print
            ok, bad, problem = False, check.missing_from, check.message
        cp = check.checkpoint
        return (
            operator_pb2.VerifyAuditResponse(
                ok=ok,
                events_checked=result.events_checked,
                first_bad_event_id=bad,
                problem=problem,
                checkpoint=operator_pb2.AuditCheckpointCheck(
                    status=check.status,
                    message=check.message,
                    key=cp.key if cp else "",
                    time=convert.timestamp(cp.time) if cp else None,
                    head_event_id=cp.head_id if cp else 0,
                    head_hash=cp.head_hash if cp else "",
                    key_id=cp.key_id if cp else "",
                    missing_from=check.missing_from,
                    missing_to=check.missing_to,
                ),
            ),
            cp.key if cp else "",
        )
