"""OperatorService: what opsctl calls. Every call is authenticated and audited."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

import grpc

from fleetops.common import pki
from fleetops.common.errors import (
    AuthError,
    Conflict,
    FleetopsError,
    InternalError,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from fleetops.controller.audit.checkpoint import AuditCheckpointer, CheckpointCheck
from fleetops.controller.audit.export import AuditExporter
from fleetops.controller.audit.service import AuditLog, AuditQuery
from fleetops.controller.authz.actions import RPC_SCOPE, action_for, phrase_for
from fleetops.controller.authz.decision import MAX_AUDIT_HOSTS
from fleetops.controller.authz.models import GLOBAL_ACTIONS
from fleetops.controller.authz.store import RoleStore
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
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.fleet.service import FleetService, TagChange
from fleetops.controller.patching.service import DEFAULT_PATCH_TIMEOUT, PatchGroup, PatchOptions, PatchService
from fleetops.controller.rpc import attempted, command_output, convert
from fleetops.controller.rpc.access import Access
from fleetops.controller.rpc.errors import abort
from fleetops.controller.rpc.peer import Peer, peer_of
from fleetops.controller.rpc.session_streams import operator_session
from fleetops.controller.sessions.broker import SessionBroker
from fleetops.controller.users.service import DEFAULT_TOKEN_TTL, UserService
from fleetops.controller.windows.models import Window, WindowTask
from fleetops.controller.windows.service import WindowService
from fleetops.v1 import enrollment_pb2, operator_pb2, operator_pb2_grpc

log = logging.getLogger(__name__)

_END = object()  # a stream handler that yielded nothing

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, Peer], Awaitable[tuple[Resp, str]]]


def _failure(exc: FleetopsError, peer: Peer | None) -> dict[str, Any]:
    """Audit details of a refused or failed call: the error, and the authorization decided so far."""
    return {"error": exc.message, **(peer.access.audit() if peer is not None and peer.access else {})}


def operator_call(action: str) -> Callable[[Handler[Req, Resp]], Callable[..., Awaitable[Resp]]]:
    """Wrap a handler: authenticate the operator, run, audit the outcome, map errors.

    The handler returns ``(response, target)``; ``target`` names what the call touched. The event,
    allowed or refused, says what was attempted (:mod:`fleetops.controller.rpc.attempted`).
    """

    def wrap(handler: Handler[Req, Resp]) -> Callable[..., Awaitable[Resp]]:
        @functools.wraps(handler)
        async def call(self: OperatorServicer, request: Req, context: grpc.aio.ServicerContext) -> Resp:
            actor = f"peer:{context.peer()}"
            peer: Peer | None = None
            target = getattr(request, "host", "") or getattr(request, "id", "")
            attempt = attempted.details(action, request)
            try:
                peer = peer_of(context)
                actor = peer.actor
                peer = await self._authorize(peer, handler.__name__)
                response, target = await handler(self, request, peer)
                self._decided(peer, handler.__name__)
            except FleetopsError as exc:
                outcome = "denied" if isinstance(exc, AuthError) else "error"
                await self._audit.record(
                    actor=actor,
                    action=action,
                    target=str(target),
                    outcome=outcome,
                    details={**attempt, **_failure(exc, peer)},
                )
                await abort(context, exc)
            except Exception as exc:  # a bug: audit it, log the traceback, answer INTERNAL
                log.exception("%s failed", action)
                await self._audit.record(
                    actor=actor,
                    action=action,
                    target=str(target),
                    outcome="error",
                    details={**attempt, "error": repr(exc)},
                )
                await abort(context, InternalError(f"{action} failed inside the controller", "see the controller log"))
            await self._audit.record(
                actor=actor,
                action=action,
                target=str(target),
                details={**attempted.with_response(attempt, response), **peer.access.audit()},
            )
            return response

        call.audit_action = action  # type: ignore[attr-defined]  # read by the audit action table's test
        return call

    return wrap


def operator_stream(action: str) -> Callable[..., Any]:
    """Like ``operator_call`` for server-streaming calls: authenticated and audited when they start."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        async def call(self: OperatorServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
            actor = f"peer:{context.peer()}"
            peer: Peer | None = None
            target = getattr(request, "id", "") or getattr(request, "command_id", "")
            attempt = attempted.details(action, request)
            try:
                peer = peer_of(context)
                actor = peer.actor
                peer = await self._authorize(peer, handler.__name__)
                # A stream decides before its first item: its handler's opening step checks hosts.
                stream = handler(self, request, peer)
                first = await anext(stream, _END)
                self._decided(peer, handler.__name__)
            except FleetopsError as exc:
                outcome = "denied" if isinstance(exc, AuthError) else "error"
                await self._audit.record(
                    actor=actor,
                    action=action,
                    target=target,
                    outcome=outcome,
                    details={**attempt, **_failure(exc, peer)},
                )
                await abort(context, exc)
            await self._audit.record(
                actor=actor, action=action, target=target, details={**attempt, **peer.access.audit()}
            )
            if first is _END:
                return
            yield first
            try:
                async for item in stream:
                    yield item
            except FleetopsError as exc:
                await abort(context, exc)

        call.audit_action = action  # type: ignore[attr-defined]  # read by the audit action table's test
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
        users: UserService,
        roles: RoleStore,
    ) -> None:
        self._fleet = fleet
        self._enrollment = enrollment
        self._audit = audit
        self._commands = commands
        self._sessions = sessions
        self._patching = patching
        self._windows = windows
        self._users = users
        self._roles = roles
        #: HOST:PORT operators reach this controller at (for the login commands it prints).
        self.public_address = ""
        #: Writes the audit log to the object store (ExportAudit); set by the composition root.
        self.audit_exporter: AuditExporter | None = None
        #: Signed checkpoints of the chain head (VerifyAudit compares with the newest); set likewise.
        self.audit_checkpoints: AuditCheckpointer | None = None

    # -- authorization --------------------------------------------------------------------------
    async def _authorize(self, peer: Peer, method: str) -> Peer:
        """The caller's Access for ``method``; global actions are decided here (fail closed).

        Raises:
            PermissionDenied: not an operator certificate, a disabled user, or a global action refused.
            Unauthenticated: no such user, or a certificate from before the user was (re)created.
        """
        if peer.identity.kind != "operator":
            raise PermissionDenied(
                f"{peer.actor} is not an operator identity",
                "use an operator profile: opsctl login --controller HOST:PORT --token TOKEN",
            )
        user = await self._users.check(peer.identity.name, peer.certificate)
        try:
            action = action_for(method)
        except KeyError:
            raise InternalError(f"{method} has no authorization rule", "this is a controller bug") from None
        access = Access(user, await self._roles.resolve(user.roles), action, phrase_for(method))
        peer = replace(peer, access=access)
        if action is not None and (action in GLOBAL_ACTIONS or method not in RPC_SCOPE):
            access.require()
        return peer

    @staticmethod
    def _decided(peer: Peer, method: str) -> None:
        if not peer.access.decided:
            raise InternalError(f"{method} ran without an authorization decision", "this is a controller bug")

    async def _require_command_hosts(self, peer: Peer, command_id: str) -> None:
        """command.run on every host of the command (no login: reading or cancelling, not running)."""
        if peer.access.require_everywhere():
            await self._commands.command(command_id)  # NotFound for an unknown id, as before
            return
        hosts_of = await self._commands.hosts_of([command_id])
        if command_id not in hosts_of:
            await self._commands.command(command_id)
        peer.access.require(await self._hosts(hosts_of.get(command_id, ())))

    async def _hosts(self, ids: Iterable[str]) -> list[Host]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        return await self._fleet.list_hosts(Target(hosts=tuple(wanted)), include_deregistered=True)

    # -- roles ----------------------------------------------------------------------------------
    @operator_call("role.create")
    async def CreateRole(self, request: operator_pb2.Role, peer: Peer) -> tuple[Any, str]:
        role = await self._roles.put(peer.actor, convert.role_document(request), create=True)
        return convert.role_to_proto(role), role.name

    @operator_call("role.update")
    async def UpdateRole(self, request: operator_pb2.Role, peer: Peer) -> tuple[Any, str]:
        role = await self._roles.put(peer.actor, convert.role_document(request), create=False)
        return convert.role_to_proto(role), role.name

    @operator_call("role.list")
    async def ListRoles(self, request: operator_pb2.ListRolesRequest, peer: Peer) -> tuple[Any, str]:
        return operator_pb2.ListRolesResponse(roles=[convert.role_to_proto(r) for r in await self._roles.list()]), ""

    @operator_call("role.show")
    async def GetRole(self, request: operator_pb2.GetRoleRequest, peer: Peer) -> tuple[Any, str]:
        return convert.role_to_proto(await self._roles.get(request.name)), request.name

    @operator_call("role.delete")
    async def DeleteRole(self, request: operator_pb2.GetRoleRequest, peer: Peer) -> tuple[Any, str]:
        await self._roles.delete(request.name)
        return operator_pb2.DeleteRoleResponse(), request.name

    # -- operators ----------------------------------------------------------------------------
    def _login_command(self, token: str, peer: Peer) -> str:
        return f"opsctl login --controller {self._controller_address(peer)} --token {token}"

    def _controller_address(self, peer: Peer) -> str:
        return self.public_address or "CONTROLLER:7443"

    @operator_call("user.create")
    async def CreateUser(self, request: operator_pb2.CreateUserRequest, peer: Peer) -> tuple[Any, str]:
        ttl = timedelta(seconds=request.token_ttl_seconds) if request.token_ttl_seconds else DEFAULT_TOKEN_TTL
        await self._roles.check_names(request.roles)
        user, token = await self._users.create(peer.actor, request.name, list(request.roles), ttl)
        response = operator_pb2.CreateUserResponse(
            user=convert.user_to_proto(user),
            token=token.token,
            token_expires_at=convert.timestamp(token.expires_at),
            login_command=self._login_command(token.token, peer),
        )
        return response, user.name

    @operator_call("user.token")
    async def IssueLoginToken(self, request: operator_pb2.IssueLoginTokenRequest, peer: Peer) -> tuple[Any, str]:
        ttl = timedelta(seconds=request.token_ttl_seconds) if request.token_ttl_seconds else DEFAULT_TOKEN_TTL
        token = await self._users.issue_token(request.name, ttl)
        user = await self._users.get(request.name)
        response = operator_pb2.CreateUserResponse(
            user=convert.user_to_proto(user),
            token=token.token,
            token_expires_at=convert.timestamp(token.expires_at),
            login_command=self._login_command(token.token, peer),
        )
        return response, user.name

    @operator_call("user.list")
    async def ListUsers(self, request: operator_pb2.ListUsersRequest, peer: Peer) -> tuple[Any, str]:
        return operator_pb2.ListUsersResponse(users=[convert.user_to_proto(u) for u in await self._users.list()]), ""

    @operator_call("user.update")
    async def UpdateUser(self, request: operator_pb2.UpdateUserRequest, peer: Peer) -> tuple[Any, str]:
        if request.set_roles:
            await self._roles.check_names(request.roles)
        user = await self._users.update(
            request.name,
            roles=list(request.roles) if request.set_roles else None,
            disabled=request.disabled if request.set_disabled else None,
        )
        return convert.user_to_proto(user), user.name

    @operator_call("user.delete")
    async def DeleteUser(self, request: operator_pb2.DeleteUserRequest, peer: Peer) -> tuple[Any, str]:
        if request.name == peer.identity.name:
            raise Conflict("you cannot delete yourself", "ask another admin")
        await self._users.delete(request.name)
        return operator_pb2.DeleteUserResponse(), request.name

    @operator_call("user.renew")
    async def RenewOperatorCertificate(
        self, request: operator_pb2.RenewOperatorCertificateRequest, peer: Peer
    ) -> tuple[Any, str]:
        user = await self._users.get(peer.identity.name)
        certificate = await self._users.renew(user, bytes(request.csr_pem))
        response = enrollment_pb2.OperatorCertificate(
            operator=user.name, certificate_pem=pki.cert_pem(certificate), ca_pem=pki.cert_pem(self._users.ca)
        )
        return response, user.name

    # -- maintenance windows --------------------------------------------------------------------
    async def _window_proto(self, window: Window) -> operator_pb2.MaintenanceWindow:
        runs = await self._windows.next_runs(window, 1) if window.enabled else []
        return convert.window_to_proto(window, runs[0] if runs else None)

    async def _require_window_rights(self, peer: Peer, window: str, new: WindowTask | None = None) -> None:
        """window.manage is not enough to change a window: the caller needs what each of its tasks needs.

        Otherwise a window.manage holder could reschedule, enable or rewrite an admin's window and
        have its tasks run when and where they choose. Every decision goes into the call's audit event.
        """
        tasks = await self._windows.tasks(window)
        access = peer.access
        for decision in await self._windows.authority.editor_decisions(
            access.user.name, access.roles, window, tasks, new=new
        ):
            access.decisions.append(decision)
            decision.check()

    @operator_call("window.create")
    async def CreateWindow(self, request: operator_pb2.MaintenanceWindow, peer: Peer) -> tuple[Any, str]:
        window = await self._windows.create(peer.actor, convert.window_from_proto(request))
        return await self._window_proto(window), window.name

    @operator_call("window.update")
    async def UpdateWindow(self, request: operator_pb2.MaintenanceWindow, peer: Peer) -> tuple[Any, str]:
        changed = convert.window_from_proto(request)
        await self._require_window_rights(peer, changed.name)
        window = await self._windows.update(changed)
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
        await self._require_window_rights(peer, request.name)
        await self._windows.delete(request.name)
        return operator_pb2.DeleteWindowResponse(), request.name

    @operator_call("window.enable")
    async def SetWindowEnabled(self, request: operator_pb2.SetWindowEnabledRequest, peer: Peer) -> tuple[Any, str]:
        await self._require_window_rights(peer, request.name)
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
        task = convert.window_task_from_proto(request)
        task.check()
        # window.manage must not run what its holder could not run directly: the new task's target is
        # decided as a selector (every host it could ever match), and the window's other tasks too.
        await self._require_window_rights(peer, task.window, new=task)
        task = await self._windows.add_task(task, peer.actor)
        return convert.window_task_to_proto(task), f"{task.window}/{task.id}"

    @operator_call("window.task.remove")
    async def RemoveWindowTask(self, request: operator_pb2.RemoveWindowTaskRequest, peer: Peer) -> tuple[Any, str]:
        await self._require_window_rights(peer, request.window)
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
        command, hosts = await self._patching.scan(
            peer.actor, target, self._patch_options(request), authorize=lambda hosts: peer.access.require(hosts)
        )
        response = operator_pb2.RunCommandResponse(
            command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
        )
        return response, command.id

    @operator_call("patch.install")
    async def InstallPatches(self, request: operator_pb2.PatchOperationRequest, peer: Peer) -> tuple[Any, str]:
        target = convert.target_from_proto(request.target)
        command, hosts = await self._patching.install(
            peer.actor, target, self._patch_options(request), authorize=lambda hosts: peer.access.require(hosts)
        )
        response = operator_pb2.RunCommandResponse(
            command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
        )
        return response, command.id

    @operator_call("patch.compliance")
    async def GetPatchCompliance(self, request: operator_pb2.PatchComplianceRequest, peer: Peer) -> tuple[Any, str]:
        if request.host:
            latest, findings, history = await self._patching.host_compliance(request.host)
            peer.access.require([latest.host])
            reports = [latest]
        else:
            target = convert.target_from_proto(request.target)
            reports = await self._patching.compliance(None if target.empty else target)
            allowed = {h.id for h in peer.access.visible([r.host for r in reports])}
            reports = [r for r in reports if r.host.id in allowed]
            findings, history = [], []
        return convert.patch_compliance_to_proto(reports, findings, history, one_host=bool(request.host)), request.host

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
            peer = await self._authorize(peer, "Session")
        except FleetopsError as exc:
            await self._audit.record(
                actor=actor, action="session.start", outcome="denied", details={"error": exc.message}
            )
            await abort(context, exc)
        access: Access = peer.access

        def authorize(host: Host, login: str) -> None:
            access.require([host], login)

        try:
            await operator_session(self._sessions, self._audit, peer, request_iterator, context, authorize)
        finally:
            refused = [d for d in access.decisions if not d.allowed]
            if refused:
                await self._audit.record(
                    actor=actor,
                    action="session.start",
                    target=", ".join(refused[0].denied_hosts),
                    outcome="denied",
                    details={"error": refused[0].message, **access.audit()},
                )

    @operator_call("session.list")
    async def ListSessions(self, request: operator_pb2.ListSessionsRequest, peer: Peer) -> tuple[Any, str]:
        sessions = await self._sessions.list(
            active_only=request.active_only, host=request.host, limit=min(request.limit or 50, 1000)
        )
        allowed = {h.id for h in peer.access.visible(await self._hosts(x.host_id for x in sessions))}
        sessions = [x for x in sessions if x.host_id in allowed]
        return operator_pb2.ListSessionsResponse(sessions=[convert.session_to_proto(x) for x in sessions]), ""

    @operator_call("session.show")
    async def GetSession(self, request: operator_pb2.GetSessionRequest, peer: Peer) -> tuple[Any, str]:
        session = await self._sessions.get(request.id)
        peer.access.require(await self._hosts([session.host_id]))
        return convert.session_to_proto(session), session.id

    @operator_call("session.kill")
    async def KillSession(self, request: operator_pb2.GetSessionRequest, peer: Peer) -> tuple[Any, str]:
        peer.access.require(await self._hosts([(await self._sessions.get(request.id)).host_id]))
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
        target = convert.target_from_proto(request.target)
        command, hosts = await self._commands.create(
            peer.actor, target, spec, authorize=lambda hosts: peer.access.require(hosts, request.run_as)
        )
        return (
            operator_pb2.RunCommandResponse(
                command=convert.command_to_proto(command), host_names=[h.name for h in hosts]
            ),
            command.id,
        )

    @operator_call("command.list")
    async def ListCommands(self, request: operator_pb2.ListCommandsRequest, peer: Peer) -> tuple[Any, str]:
        commands = await self._commands.list(request.limit or 50)
        hosts_of = await self._commands.hosts_of([c.id for c in commands])
        allowed = {h.id for h in peer.access.visible(await self._hosts(i for ids in hosts_of.values() for i in ids))}
        commands = [c for c in commands if set(hosts_of.get(c.id, ())) <= allowed]
        return operator_pb2.ListCommandsResponse(commands=[convert.command_to_proto(c) for c in commands]), ""

    @operator_call("command.show")
    async def GetCommand(self, request: operator_pb2.GetCommandRequest, peer: Peer) -> tuple[Any, str]:
        # Live: a running invocation's bytes (and tails) so far, and why an unfinished one waits.
        command, invocations = await self._commands.view(request.id, tails=request.include_output)
        await self._require_command_hosts(peer, request.id)
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
        await self._require_command_hosts(peer, request.id)
        command = await self._commands.cancel(request.id)
        return convert.command_to_proto(command), command.id

    @operator_stream("command.watch")
    async def WatchCommand(self, request: operator_pb2.GetCommandRequest, peer: Peer) -> Any:
        """Progress until the end: counts, and the invocations that changed (controller/rpc/command_output.py)."""
        await self._require_command_hosts(peer, request.id)
        async for detail in command_output.watch_command(self._commands, request.id, request.include_output):
            yield detail

    @operator_stream("command.output")
    async def GetInvocationOutput(self, request: operator_pb2.GetInvocationOutputRequest, peer: Peer) -> Any:
        """One stream of one invocation: all of it once final; while it runs, what arrived so far
        and, with follow, the rest as it comes."""
        _, invocations = await self._commands.view(request.command_id, tails=False)
        invocation = command_output.find_invocation(invocations, request.command_id, request.host)
        peer.access.require(await self._hosts([invocation.host_id]))
        pieces = self._commands.read_live_output(invocation, stderr=request.stderr, follow=request.follow)
        async for piece in pieces:
            yield command_output.output_data(piece)

    @operator_stream("command.output")
    async def WatchOutput(self, request: operator_pb2.WatchOutputRequest, peer: Peer) -> Any:
        """Output of the command's hosts as it arrives, and each host's result as it ends."""
        _, invocations = await self._commands.view(request.command_id, tails=False)
        await self._require_command_hosts(peer, request.command_id)
        chosen = command_output.select_hosts(invocations, request.command_id, list(request.hosts))
        async for event in self._commands.watch_output(request.command_id, chosen):
            yield command_output.output_event(event)

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
        hosts = peer.access.visible(
            await self._fleet.list_hosts(target, include_deregistered=request.include_deregistered)
        )
        return operator_pb2.ListHostsResponse(hosts=[convert.host_to_proto(h) for h in hosts]), target.describe()

    @operator_call("hosts.show")
    async def GetHost(self, request: operator_pb2.GetHostRequest, peer: Peer) -> tuple[Any, str]:
        host = await self._fleet.get_host(request.host)
        peer.access.require([host])
        return convert.host_to_proto(host), host.id

    def _tag_changes(self, peer: Peer, set_tags: dict[str, str], remove: list[str], dry_run: bool) -> Any:
        """The authorize callback of a tag change: audit every host's tags before and after, then decide.

        Someone who may tag no host at all is refused here, before any host is looked up.
        """
        peer.access.require()

        def authorize(changes: list[TagChange]) -> None:
            changed = [c for c in changes if c.changed]
            peer.access.details["tags"] = {
                "set": set_tags,
                "remove": remove,
                "dry_run": dry_run,
                "hosts": len(changes),
                "changed_count": len(changed),
                "changed": [
                    {"host": c.before.name, "id": c.before.id, "before": c.before.tags, "after": c.after.tags}
                    for c in changed[:MAX_AUDIT_HOSTS]
                ],
            }
            peer.access.require_retag([(c.before, c.after.tags) for c in changes])

        return authorize

    @operator_call("hosts.tag")
    async def TagHost(self, request: operator_pb2.TagHostRequest, peer: Peer) -> tuple[Any, str]:
        set_tags, remove = dict(request.set), list(request.remove)
        (change,) = await self._fleet.tag_hosts(
            Target(hosts=(request.host,)), set_tags, remove, authorize=self._tag_changes(peer, set_tags, remove, False)
        )
        return convert.host_to_proto(change.after), change.after.id

    @operator_call("hosts.tag")
    async def TagHosts(self, request: operator_pb2.TagHostsRequest, peer: Peer) -> tuple[Any, str]:
        target = convert.target_from_proto(request.target)
        set_tags, remove, dry_run = dict(request.set), list(request.remove), request.dry_run
        changes = await self._fleet.tag_hosts(
            target, set_tags, remove, dry_run=dry_run, authorize=self._tag_changes(peer, set_tags, remove, dry_run)
        )
        return convert.tag_changes_to_proto(changes, dry_run), target.describe()

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
            allowed_host_tags=list(request.allowed_host_tags),
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
        actor, actors = request.actor.strip(), ()
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
