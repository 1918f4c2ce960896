"""OperatorService: what opsctl calls. Every call is authenticated and audited."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import grpc

from fleetops.common.errors import FleetopsError, InternalError, NotFound, PermissionDenied
from fleetops.controller.audit.service import AuditLog, AuditQuery
from fleetops.controller.commands.models import (
    DEFAULT_DELIVERY_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_ERRORS,
    DEFAULT_TIMEOUT_SECONDS,
    CommandSpec,
    CommandStatus,
)
from fleetops.controller.commands.service import CommandService
from fleetops.controller.enrollment.service import EnrollmentService
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.patching.service import DEFAULT_PATCH_TIMEOUT, PatchGroup, PatchOptions, PatchService
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.errors import abort
from fleetops.controller.rpc.peer import Peer, peer_of
from fleetops.controller.rpc.session_streams import check_operator, operator_session
from fleetops.controller.sessions.broker import SessionBroker
from fleetops.controller.windows.models import Window
from fleetops.controller.windows.service import WindowService
from fleetops.v1 import operator_pb2, operator_pb2_grpc

log = logging.getLogger(__name__)

# Shortest time between two progress snapshots of one watched command.
WATCH_INTERVAL = 0.1

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, Peer], Awaitable[tuple[Resp, str]]]


def operator_call(action: str) -> Callable[[Handler[Req, Resp]], Callable[..., Awaitable[Resp]]]:
    """Wrap a handler: authenticate the operator, run, audit the outcome, map errors.

    The handler returns ``(response, target)``; ``target`` names what the call touched.
    """

    def wrap(handler: Handler[Req, Resp]) -> Callable[..., Awaitable[Resp]]:
        @functools.wraps(handler)
        async def call(self: OperatorServicer, request: Req, context: grpc.aio.ServicerContext) -> Resp:
            actor = f"peer:{context.peer()}"
            target = getattr(request, "host", "") or getattr(request, "id", "")
            try:
                peer = peer_of(context)
                actor = peer.actor
                if peer.identity.kind != "operator":
                    raise PermissionDenied(
                        f"{peer.actor} is not an operator identity",
                        "use an operator profile (fleetops-controller operator issue NAME --profile DIR)",
                    )
                response, target = await handler(self, request, peer)
            except FleetopsError as exc:
                outcome = "denied" if isinstance(exc, PermissionDenied) else "error"
                await self._audit.record(
                    actor=actor, action=action, target=str(target), outcome=outcome, details={"error": exc.message}
                )
                await abort(context, exc)
            except Exception as exc:  # a bug: audit it, log the traceback, answer INTERNAL
                log.exception("%s failed", action)
                await self._audit.record(
                    actor=actor, action=action, target=str(target), outcome="error", details={"error": repr(exc)}
                )
                await abort(context, InternalError(f"{action} failed inside the controller", "see the controller log"))
            await self._audit.record(actor=actor, action=action, target=str(target))
            return response

        return call

    return wrap


def operator_stream(action: str) -> Callable[..., Any]:
    """Like ``operator_call`` for server-streaming calls: authenticated and audited when they start."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        async def call(self: OperatorServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
            actor = f"peer:{context.peer()}"
            target = getattr(request, "id", "") or getattr(request, "command_id", "")
            try:
                peer = peer_of(context)
                actor = peer.actor
                if peer.identity.kind != "operator":
                    raise PermissionDenied(
                        f"{peer.actor} is not an operator identity",
                        "use an operator profile (fleetops-controller operator issue NAME --profile DIR)",
                    )
            except FleetopsError as exc:
                await self._audit.record(
                    actor=actor, action=action, target=target, outcome="denied", details={"error": exc.message}
                )
                await abort(context, exc)
            await self._audit.record(actor=actor, action=action, target=target)
            try:
                async for item in handler(self, request, peer):
                    yield item
            except FleetopsError as exc:
                await abort(context, exc)

        return call

    return wrap


class OperatorServicer(operator_pb2_grpc.OperatorServiceServicer):
    def __init__(
        self,
        fleet: FleetService,
        enrollment: EnrollmentService,
        audit: AuditLog,
        commands: CommandService,
        sessions: SessionBroker,
        patching: PatchService,
        windows: WindowService,
    ) -> None:
        self._fleet = fleet
        self._enrollment = enrollment
        self._audit = audit
        self._commands = commands
        self._sessions = sessions
        self._patching = patching
        self._windows = windows

    # -- maintenance windows --------------------------------------------------------------------
    async def _window_proto(self, window: Window) -> operator_pb2.MaintenanceWindow:
        runs = await self._windows.next_runs(window, 1) if window.enabled else []
        return convert.window_to_proto(window, runs[0] if runs else None)

    @operator_call("window.create")
    async def CreateWindow(self, request: operator_pb2.MaintenanceWindow, peer: Peer) -> tuple[Any, str]:
        window = await self._windows.create(peer.actor, convert.window_from_proto(request))
        return await self._window_proto(window), window.name

    @operator_call("window.update")
    async def UpdateWindow(self, request: operator_pb2.MaintenanceWindow, peer: Peer) -> tuple[Any, str]:
        window = await self._windows.update(convert.window_from_proto(request))
        return await self._window_proto(window), window.name

    @operator_call("window.list")
    async def ListWindows(self, request: operator_pb2.ListWindowsRequest, peer: Peer) -> tuple[Any, str]:
        windows = [await self._window_proto(w) for w in await self._windows.list()]
        return operator_pb2.ListWindowsResponse(windows=windows), ""

    @operator_call("window.show")
    async def GetWindow(self, request: operator_pb2.GetWindowRequest, peer: Peer) -> tuple[Any, str]:
        window = await self._windows.get(request.name)
        tasks = await self._windows.tasks(request.name)
        detail = operator_pb2.WindowDetail(
            window=await self._window_proto(window), tasks=[convert.window_task_to_proto(t) for t in tasks]
        )
        return detail, request.name

    @operator_call("window.delete")
    async def DeleteWindow(self, request: operator_pb2.GetWindowRequest, peer: Peer) -> tuple[Any, str]:
        await self._windows.delete(request.name)
        return operator_pb2.DeleteWindowResponse(), request.name

    @operator_call("window.enable")
    async def SetWindowEnabled(self, request: operator_pb2.SetWindowEnabledRequest, peer: Peer) -> tuple[Any, str]:
        window = await self._windows.set_enabled(request.name, request.enabled)
        return await self._window_proto(window), request.name

    @operator_call("window.next")
    async def NextWindowRuns(self, request: operator_pb2.NextWindowRunsRequest, peer: Peer) -> tuple[Any, str]:
        if request.name:
            window = await self._windows.get(request.name)
        else:
            window = convert.window_from_proto(request.window, unsaved=True)
        runs = await self._windows.next_runs(window, min(request.count or 5, 100))
        return convert.next_runs_to_proto(runs, window.timezone), request.name

    @operator_call("window.task.add")
    async def AddWindowTask(self, request: operator_pb2.WindowTask, peer: Peer) -> tuple[Any, str]:
        task = await self._windows.add_task(convert.window_task_from_proto(request))
        return convert.window_task_to_proto(task), f"{task.window}/{task.id}"

    @operator_call("window.task.remove")
    async def RemoveWindowTask(self, request: operator_pb2.RemoveWindowTaskRequest, peer: Peer) -> tuple[Any, str]:
        await self._windows.remove_task(request.window, request.task_id)
        return operator_pb2.RemoveWindowTaskResponse(), f"{request.window}/{request.task_id}"

    @operator_call("window.history")
    async def WindowHistory(self, request: operator_pb2.WindowHistoryRequest, peer: Peer) -> tuple[Any, str]:
        executions = await self._windows.history(request.name, min(request.limit or 20, 500))
        return operator_pb2.WindowHistoryResponse(executions=[convert.execution_to_proto(e) for e in executions]), (
            request.name
        )

    # -- patch management -------------------------------------------------------------------
    def _patch_options(self, request: operator_pb2.PatchOperationRequest) -> PatchOptions:
        return PatchOptions(
            max_concurrency=request.max_concurrency or DEFAULT_MAX_CONCURRENCY,
            max_errors=request.max_errors or DEFAULT_MAX_ERRORS,
            timeout_seconds=request.timeout_seconds or DEFAULT_PATCH_TIMEOUT,
            refresh=not request.no_refresh,
            reboot=request.reboot or "if-needed",
            comment=request.comment,
        )

    @operator_call("patch.scan")
    async def ScanPatches(self, request: operator_pb2.PatchOperationRequest, peer: Peer) -> tuple[Any, str]:
        target = convert.target_from_proto(request.target)
        command, hosts = await self._patching.scan(peer.actor, target, self._patch_options(request))
        response = operator_pb2.RunCommandResponse(
            command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
        )
        return response, command.id

    @operator_call("patch.install")
    async def InstallPatches(self, request: operator_pb2.PatchOperationRequest, peer: Peer) -> tuple[Any, str]:
        target = convert.target_from_proto(request.target)
        command, hosts = await self._patching.install(peer.actor, target, self._patch_options(request))
        response = operator_pb2.RunCommandResponse(
            command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
        )
        return response, command.id

    @operator_call("patch.compliance")
    async def GetPatchCompliance(self, request: operator_pb2.PatchComplianceRequest, peer: Peer) -> tuple[Any, str]:
        if request.host:
            latest, findings, history = await self._patching.host_compliance(request.host)
            reports = [latest]
        else:
            target = convert.target_from_proto(request.target)
            reports = await self._patching.compliance(None if target.empty else target)
            findings, history = [], []
        return convert.patch_compliance_to_proto(reports, findings, history), request.host

    @operator_call("patch.baseline.create")
    async def CreatePatchBaseline(self, request: operator_pb2.PatchBaseline, peer: Peer) -> tuple[Any, str]:
        stored = await self._patching.create_baseline(peer.actor, convert.baseline_document(request))
        return convert.baseline_to_proto(stored), stored.baseline.name

    @operator_call("patch.baseline.update")
    async def UpdatePatchBaseline(self, request: operator_pb2.PatchBaseline, peer: Peer) -> tuple[Any, str]:
        stored = await self._patching.update_baseline(peer.actor, request.name, convert.baseline_document(request))
        return convert.baseline_to_proto(stored), stored.baseline.name

    @operator_call("patch.baseline.list")
    async def ListPatchBaselines(self, request: operator_pb2.ListPatchBaselinesRequest, peer: Peer) -> tuple[Any, str]:
        baselines = await self._patching.baselines()
        return operator_pb2.ListPatchBaselinesResponse(baselines=[convert.baseline_to_proto(b) for b in baselines]), ""

    @operator_call("patch.baseline.show")
    async def GetPatchBaseline(self, request: operator_pb2.GetPatchBaselineRequest, peer: Peer) -> tuple[Any, str]:
        return convert.baseline_to_proto(await self._patching.baseline(request.name)), request.name

    @operator_call("patch.baseline.delete")
    async def DeletePatchBaseline(self, request: operator_pb2.GetPatchBaselineRequest, peer: Peer) -> tuple[Any, str]:
        await self._patching.delete_baseline(request.name)
        return operator_pb2.DeletePatchBaselineResponse(), request.name

    @operator_call("patch.group.assign")
    async def AssignPatchBaseline(self, request: operator_pb2.PatchGroup, peer: Peer) -> tuple[Any, str]:
        group = await self._patching.assign(
            PatchGroup(request.name, request.selector, request.baseline, request.priority or 100)
        )
        return convert.patch_group_to_proto(group), group.name

    @operator_call("patch.group.list")
    async def ListPatchGroups(self, request: operator_pb2.ListPatchGroupsRequest, peer: Peer) -> tuple[Any, str]:
        groups = await self._patching.groups()
        return operator_pb2.ListPatchGroupsResponse(groups=[convert.patch_group_to_proto(g) for g in groups]), ""

    @operator_call("patch.group.delete")
    async def DeletePatchGroup(self, request: operator_pb2.DeletePatchGroupRequest, peer: Peer) -> tuple[Any, str]:
        await self._patching.delete_group(request.name)
        return operator_pb2.DeletePatchGroupResponse(), request.name

    # -- interactive sessions ---------------------------------------------------------------
    async def Session(
        self, request_iterator: AsyncIterator[operator_pb2.SessionClientMessage], context: grpc.aio.ServicerContext
    ) -> None:
        """The operator's leg of a session (the broker audits start, resume and end)."""
        actor = f"peer:{context.peer()}"
        try:
            peer = peer_of(context)
            actor = peer.actor
            check_operator(peer)
        except FleetopsError as exc:
            await self._audit.record(
                actor=actor, action="session.start", outcome="denied", details={"error": exc.message}
            )
            await abort(context, exc)
        await operator_session(self._sessions, self._audit, peer, request_iterator, context)

    @operator_call("session.list")
    async def ListSessions(self, request: operator_pb2.ListSessionsRequest, peer: Peer) -> tuple[Any, str]:
        sessions = await self._sessions.list(
            active_only=request.active_only, host=request.host, limit=min(request.limit or 50, 1000)
        )
        return operator_pb2.ListSessionsResponse(sessions=[convert.session_to_proto(x) for x in sessions]), ""

    @operator_call("session.show")
    async def GetSession(self, request: operator_pb2.GetSessionRequest, peer: Peer) -> tuple[Any, str]:
        session = await self._sessions.get(request.id)
        return convert.session_to_proto(session), session.id

    @operator_call("session.kill")
    async def KillSession(self, request: operator_pb2.GetSessionRequest, peer: Peer) -> tuple[Any, str]:
        session = await self._sessions.kill(peer.actor, request.id)
        return convert.session_to_proto(session), session.id

    @operator_stream("session.transcript")
    async def GetSessionTranscript(self, request: operator_pb2.GetSessionRequest, peer: Peer) -> Any:
        async for chunk in self._sessions.transcript(request.id):
            yield operator_pb2.OutputData(data=chunk)

    @operator_call("command.run")
    async def RunCommand(self, request: operator_pb2.RunCommandRequest, peer: Peer) -> tuple[Any, str]:
        spec = CommandSpec(
            argv=tuple(request.argv),
            script=request.script or None,
            cwd=request.cwd,
            env=dict(request.env),
            run_as=request.run_as,
            max_concurrency=request.max_concurrency or DEFAULT_MAX_CONCURRENCY,
            max_errors=request.max_errors or DEFAULT_MAX_ERRORS,
            timeout_seconds=request.timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
            delivery_timeout_seconds=request.delivery_timeout_seconds or DEFAULT_DELIVERY_TIMEOUT_SECONDS,
            comment=request.comment,
        )
        command, hosts = await self._commands.create(peer.actor, convert.target_from_proto(request.target), spec)
        return (
            operator_pb2.RunCommandResponse(
                command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
            ),
            command.id,
        )

    @operator_call("command.list")
    async def ListCommands(self, request: operator_pb2.ListCommandsRequest, peer: Peer) -> tuple[Any, str]:
        commands = await self._commands.list(request.limit or 50)
        return operator_pb2.ListCommandsResponse(commands=[convert.command_to_proto(c) for c in commands]), ""

    @operator_call("command.show")
    async def GetCommand(self, request: operator_pb2.GetCommandRequest, peer: Peer) -> tuple[Any, str]:
        command, invocations = await self._commands.get(request.id)
        return (
            operator_pb2.CommandDetail(
                command=convert.command_to_proto(command),
                invocations=[convert.invocation_to_proto(i, request.include_output) for i in invocations],
                done=command.status is not CommandStatus.IN_PROGRESS,
            ),
            command.id,
        )

    @operator_call("command.cancel")
    async def CancelCommand(self, request: operator_pb2.GetCommandRequest, peer: Peer) -> tuple[Any, str]:
        command = await self._commands.cancel(request.id)
        return convert.command_to_proto(command), command.id

    @operator_stream("command.watch")
    async def WatchCommand(self, request: operator_pb2.GetCommandRequest, peer: Peer) -> Any:
        """Progress as counts per state (cheap to compute, whatever the fleet size), until the end."""
        queue = self._commands.subscribe(request.id)
        loop = asyncio.get_running_loop()
        try:
            while True:
                last_read = loop.time()
                command = await self._commands.command(request.id)
                done = command.status is not CommandStatus.IN_PROGRESS
                yield operator_pb2.CommandDetail(command=convert.command_to_proto(command), done=done)
                if done:
                    return
                try:
                    await asyncio.wait_for(queue.get(), 5.0)
                except TimeoutError:
                    pass  # re-read anyway: another replica may have moved it on
                # At most WATCH_INTERVAL between reads: a fan-out to thousands of hosts changes
                # state thousands of times a second; watchers get coalesced snapshots.
                wait = WATCH_INTERVAL - (loop.time() - last_read)
                if wait > 0:
                    await asyncio.sleep(wait)
        finally:
            self._commands.unsubscribe(request.id, queue)

    @operator_stream("command.output")
    async def GetInvocationOutput(self, request: operator_pb2.GetInvocationOutputRequest, peer: Peer) -> Any:
        _, invocations = await self._commands.get(request.command_id)
        match = [i for i in invocations if request.host in (i.host_name, i.host_id)]
        if not match:
            raise NotFound(
                f"command {request.command_id} has no invocation on host {request.host}",
                f"see opsctl run show {request.command_id}",
            )
        stream = "stderr" if request.stderr else "stdout"
        if (match[0].stderr_bytes if request.stderr else match[0].stdout_bytes) == 0:
            return
        async for chunk in self._commands.read_output(request.command_id, match[0].host_name, stream):
            yield operator_pb2.OutputData(data=chunk)

    @operator_call("whoami")
    async def WhoAmI(self, request: operator_pb2.WhoAmIRequest, peer: Peer) -> tuple[Any, str]:
        return (
            operator_pb2.WhoAmIResponse(
                operator=peer.identity.name, certificate_expires_at=convert.timestamp(peer.expires_at)
            ),
            peer.identity.name,
        )

    @operator_call("hosts.list")
    async def ListHosts(self, request: operator_pb2.ListHostsRequest, peer: Peer) -> tuple[Any, str]:
        target = convert.target_from_proto(request.target)
        hosts = await self._fleet.list_hosts(target, include_deregistered=request.include_deregistered)
        return operator_pb2.ListHostsResponse(hosts=[convert.host_to_proto(h) for h in hosts]), target.describe()

    @operator_call("hosts.show")
    async def GetHost(self, request: operator_pb2.GetHostRequest, peer: Peer) -> tuple[Any, str]:
        host = await self._fleet.get_host(request.host)
        return convert.host_to_proto(host), host.id

    @operator_call("hosts.tag")
    async def TagHost(self, request: operator_pb2.TagHostRequest, peer: Peer) -> tuple[Any, str]:
        host = await self._fleet.tag_host(request.host, dict(request.set), list(request.remove))
        return convert.host_to_proto(host), host.id

    @operator_call("hosts.deregister")
    async def DeregisterHost(self, request: operator_pb2.DeregisterHostRequest, peer: Peer) -> tuple[Any, str]:
        host = await self._fleet.deregister_host(request.host)
        return convert.host_to_proto(host), host.id

    @operator_call("activation.create")
    async def CreateActivation(self, request: operator_pb2.CreateActivationRequest, peer: Peer) -> tuple[Any, str]:
        activation, code = await self._enrollment.create_activation(
            created_by=peer.identity.name,
            default_tags=dict(request.default_tags),
            registration_limit=request.registration_limit or 1,
            expires_in=timedelta(seconds=request.expires_in_seconds or 24 * 3600),
            description=request.description,
        )
        return (
            operator_pb2.CreateActivationResponse(activation=convert.activation_to_proto(activation), code=code),
            activation.id,
        )

    @operator_call("activation.list")
    async def ListActivations(self, request: operator_pb2.ListActivationsRequest, peer: Peer) -> tuple[Any, str]:
        activations = await self._enrollment.list_activations()
        return operator_pb2.ListActivationsResponse(
            activations=[convert.activation_to_proto(a) for a in activations]
        ), ""

    @operator_call("activation.delete")
    async def DeleteActivation(self, request: operator_pb2.DeleteActivationRequest, peer: Peer) -> tuple[Any, str]:
        await self._enrollment.delete_activation(request.id)
        return operator_pb2.DeleteActivationResponse(), request.id

    @operator_call("audit.list")
    async def ListAuditEvents(self, request: operator_pb2.ListAuditEventsRequest, peer: Peer) -> tuple[Any, str]:
        query = AuditQuery(
            since=convert.from_timestamp(request.since) if request.HasField("since") else None,
            actor=request.actor,
            action=request.action,
            outcome=request.outcome,
            limit=request.limit or 100,
        )
        events = await self._audit.list(query)
        return operator_pb2.ListAuditEventsResponse(events=[convert.audit_event_to_proto(e) for e in events]), ""

    @operator_call("audit.verify")
    async def VerifyAudit(self, request: operator_pb2.VerifyAuditRequest, peer: Peer) -> tuple[Any, str]:
        result = await self._audit.verify()
        return (
            operator_pb2.VerifyAuditResponse(
                ok=result.ok,
                events_checked=result.events_checked,
                first_bad_event_id=result.first_bad_event_id,
                problem=result.problem,
            ),
            "",
        )
