"""What every OperatorService adapter shares: the services it calls, authorization, audit and error mapping.

Each room's calls live in their own module (``hosts.py``, ``commands.py``...) as a subclass of
:class:`OperatorAdapter`; :mod:`fleetops.controller.rpc.operator.servicer` composes them into the
one servicer gRPC registers. A call is wrapped in :func:`operator_call` (unary) or
:func:`operator_stream` (server-streaming): authenticate the operator, decide what can be decided
before the handler runs, run it, audit the outcome and map errors to a status
(:mod:`fleetops.controller.rpc.errors`). A crash (any exception outside the
:class:`~fleetops.common.errors.FleetopsError` tree) is audited with outcome ``error`` and the
exception's class, logged with its traceback, and answered with INTERNAL: the client never sees
a traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any, TypeVar

import grpc

from fleetops.common.errors import AuthError, FleetopsError, InternalError, PermissionDenied
from fleetops.common.roles import GLOBAL_ACTIONS
from fleetops.controller.associations.service import AssociationService
from fleetops.controller.audit.checkpoint import AuditCheckpointer
from fleetops.controller.audit.export import AuditExporter
from fleetops.controller.audit.service import AuditLog, Outcome
from fleetops.controller.authz.actions import RPC_SCOPE, action_for, phrase_for
from fleetops.controller.authz.store import RoleStore
from fleetops.controller.automation.service import AutomationService
from fleetops.controller.commands.service import CommandService
from fleetops.controller.config.service import ConfigService
from fleetops.controller.documents.service import DocumentService
from fleetops.controller.enrollment.service import EnrollmentService
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.patching.service import PatchService
from fleetops.controller.rpc import attempted
from fleetops.controller.rpc.access import Access
from fleetops.controller.rpc.errors import abort
from fleetops.controller.rpc.peer import Peer, peer_of
from fleetops.controller.rpc.session_streams import SessionRelay
from fleetops.controller.sessions.broker import SessionBroker
from fleetops.controller.ssh import SshAuthority
from fleetops.controller.users.service import UserService
from fleetops.controller.windows.service import WindowService

log = logging.getLogger(__name__)

_END = object()  # a stream handler that yielded nothing

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, Peer], Awaitable[tuple[Resp, str]]]
StreamHandler = Callable[[Any, Any, Peer], AsyncIterator[Any]]


def _failure(exc: FleetopsError, peer: Peer | None) -> dict[str, Any]:
    """Audit details of a refused or failed call: the error, and the authorization decided so far."""
    return {"error": exc.message, **_decided_so_far(peer)}


def _crash(action: str, exc: Exception, peer: Peer | None) -> tuple[dict[str, Any], InternalError]:
    """A bug inside a call: its audit details (the exception's class, never its text or traceback),
    and the error the client gets. The traceback goes to the controller log (the caller logs it)."""
    details = {"error": "internal error", "exception": type(exc).__name__, **_decided_so_far(peer)}
    error = InternalError(
        f"{action} failed inside the controller: see the controller log",
        "the controller log has the traceback of this failure; report it with that",
    )
    return details, error


def _decided_so_far(peer: Peer | None) -> dict[str, Any]:
    return peer.access.audit() if peer is not None and peer.access else {}


def operator_call(action: str) -> Callable[[Handler[Req, Resp]], Callable[..., Awaitable[Resp]]]:
    """Wrap a handler: authenticate the operator, run, audit the outcome, map errors.

    The handler returns ``(response, target)``; ``target`` names what the call touched. The event,
    allowed or refused, says what was attempted (:mod:`fleetops.controller.rpc.attempted`).
    """

    def wrap(handler: Handler[Req, Resp]) -> Callable[..., Awaitable[Resp]]:
        @functools.wraps(handler)
        async def call(self: OperatorAdapter, request: Req, context: grpc.aio.ServicerContext) -> Resp:
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
                outcome: Outcome = "denied" if isinstance(exc, AuthError) else "error"
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
                details, error = _crash(action, exc, peer)
                await self._audit.record(
                    actor=actor, action=action, target=str(target), outcome="error", details={**attempt, **details}
                )
                await abort(context, error)
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


def operator_stream(action: str) -> Callable[[StreamHandler], Callable[..., AsyncIterator[Any]]]:
    """Like ``operator_call`` for server-streaming calls: authenticated and audited when they start.

    The handler is an async generator of response messages. A stream decides before its first
    item (its opening step checks hosts); the call is audited then. A crash later, mid-stream, is
    audited as a second event (outcome ``error``) and ends the stream with INTERNAL; a
    :class:`~fleetops.common.errors.FleetopsError` mid-stream ends it with its own status.
    """

    def wrap(handler: StreamHandler) -> Callable[..., AsyncIterator[Any]]:
        @functools.wraps(handler)
        async def call(self: OperatorAdapter, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            actor = f"peer:{context.peer()}"
            peer: Peer | None = None
            target = getattr(request, "id", "") or getattr(request, "command_id", "")
            attempt = attempted.details(action, request)
            try:
                peer = peer_of(context)
                actor = peer.actor
                peer = await self._authorize(peer, handler.__name__)
                stream = handler(self, request, peer)
                first = await anext(stream, _END)
                self._decided(peer, handler.__name__)
            except FleetopsError as exc:
                outcome: Outcome = "denied" if isinstance(exc, AuthError) else "error"
                await self._audit.record(
                    actor=actor,
                    action=action,
                    target=target,
                    outcome=outcome,
                    details={**attempt, **_failure(exc, peer)},
                )
                await abort(context, exc)
            except Exception as exc:  # a bug before the first item: audit it, log it, answer INTERNAL
                log.exception("%s failed", action)
                details, error = _crash(action, exc, peer)
                await self._audit.record(
                    actor=actor, action=action, target=target, outcome="error", details={**attempt, **details}
                )
                await abort(context, error)
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
            except Exception as exc:  # a bug mid-stream: the start was audited; audit how it ended
                log.exception("%s failed while streaming", action)
                details, error = _crash(action, exc, peer)
                await self._audit.record(
                    actor=actor, action=action, target=target, outcome="error", details={**attempt, **details}
                )
                await abort(context, error)

        call.audit_action = action  # type: ignore[attr-defined]  # read by the audit action table's test
        return call

    return wrap


class OperatorAdapter:
    """The services the operator calls reach, and the authorization every call goes through.

    Room modules subclass this with their calls; the composition root builds the composed
    :class:`~fleetops.controller.rpc.operator.servicer.OperatorServicer` once.
    """

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
        documents: DocumentService,
        associations: AssociationService,
        automation: AutomationService,
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
        self._documents = documents
        self._associations = associations
        self._automation = automation
        #: HOST:PORT operators reach this controller at (for the login commands it prints).
        self.public_address = ""
        #: Writes the audit log to the object store (ExportAudit); set by the composition root.
        self.audit_exporter: AuditExporter | None = None
        #: Signed checkpoints of the chain head (VerifyAudit compares with the newest); set likewise.
        self.audit_checkpoints: AuditCheckpointer | None = None
        #: Passes a resumed session stream to the replica brokering it; set likewise (with replicas).
        self.session_relay: SessionRelay | None = None
        #: The fleet's SSH CAs (IssueSshCertificate); set likewise.
        self.ssh_authority: SshAuthority | None = None
        #: Configuration as code (ApplyConfiguration, ExportConfiguration); set likewise.
        self.configuration: ConfigService | None = None

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

    async def _hosts(self, ids: Iterable[str]) -> list[Host]:
        """The hosts of these ids (deregistered ones too), for an authorization decision."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        return await self._fleet.list_hosts(Target(hosts=tuple(wanted)), include_deregistered=True)
