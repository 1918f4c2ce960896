"""operator_call / operator_stream: authentication, authorization (fail closed), audit, status mapping.

A test room's handlers carry the names of real RPCs (the authorization table knows them) and do
what each test needs; the decorators, the authorization step and Access are the real ones. Only the
services around them are fakes: an audit log that keeps events, users and roles by name.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from cryptography import x509

from fleetops.common.errors import NotFound, Unauthenticated
from fleetops.common.roles import BUILTIN_ROLES
from fleetops.controller.fleet.models import Host, HostStatus
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call, operator_stream
from fleetops.controller.rpc.peer import Peer
from fleetops.controller.users.models import User
from fleetops.v1 import operator_pb2

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
WEB = Host("h-web", "web-1", HostStatus.ONLINE, {"env": "prod"}, {}, "a-1", NOW, None, None, None)
SECRET = "the database password is hunter2"


class AuditLog:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def record(self, **event: Any) -> None:
        self.events.append({"outcome": "ok", **event})


class Users:
    """Operators by name with their role names (unknown: Unauthenticated, like the real check)."""

    def __init__(self, **roles_of: tuple[str, ...]) -> None:
        self.roles_of = roles_of

    async def check(self, name: str, certificate: x509.Certificate) -> User:
        if name not in self.roles_of:
            raise Unauthenticated(f"no operator {name!r}", "ask an admin")
        return User(name, self.roles_of[name], False, NOW, "test", NOW)


class Roles:
    async def resolve(self, names: tuple[str, ...]) -> list[Any]:
        return [BUILTIN_ROLES[n] for n in names]


class Room(OperatorAdapter):
    """GetHost (unary, host-scoped), WhoAmI (unary, no action) and WatchCommand (stream, host-scoped)."""

    unary: Callable[[Peer], Awaitable[Any]]
    stream: Callable[[Peer], AsyncIterator[Any]]

    def __init__(self, audit: AuditLog, users: Users) -> None:
        services: dict[str, Any] = dict.fromkeys(
            (
                "fleet",
                "enrollment",
                "commands",
                "sessions",
                "patching",
                "windows",
                "documents",
                "associations",
                "automation",
            ),
            None,
        )
        super().__init__(audit=audit, users=users, roles=Roles(), **services)  # type: ignore[arg-type]

    @operator_call("hosts.show")
    async def GetHost(self, request: operator_pb2.GetHostRequest, peer: Peer) -> tuple[Any, str]:
        return await self.unary(peer), WEB.id

    @operator_call("whoami")
    async def WhoAmI(self, request: operator_pb2.WhoAmIRequest, peer: Peer) -> tuple[Any, str]:
        return operator_pb2.WhoAmIResponse(operator=peer.identity.name), peer.identity.name

    @operator_stream("command.watch")
    async def WatchCommand(self, request: operator_pb2.GetCommandRequest, peer: Peer) -> AsyncIterator[Any]:
        async for item in self.stream(peer):
            yield item


def detail(n: int) -> operator_pb2.CommandDetail:
    return operator_pb2.CommandDetail(command=operator_pb2.Command(id="cmd-1", comment=f"update {n}"))


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture
def room(audit: AuditLog) -> Room:
    return Room(audit, Users(alice=("admin",), ada=("auditor",)))


@pytest.fixture
def alice(context, operator_cert: Callable[[str], x509.Certificate]) -> Any:
    return lambda: context(operator_cert("alice"))


async def get_host(room: Room, ctx: Any) -> Any:
    return await room.GetHost(operator_pb2.GetHostRequest(host="web-1"), ctx)


async def watch(room: Room, ctx: Any) -> tuple[list[Any], BaseException | None]:
    """What the client receives: the items, then the abort that ended the stream (None: it ended well)."""
    items: list[Any] = []
    try:
        async for item in room.WatchCommand(operator_pb2.GetCommandRequest(id="cmd-1"), ctx):
            items.append(item)
    except ctx.Aborted as exc:
        return items, exc
    return items, None


def assert_internal_and_audited(ctx: Any, event: dict[str, Any], action: str) -> None:
    """INTERNAL, pointing at the controller log; the event names the exception's class, never its text."""
    assert ctx.code is grpc.StatusCode.INTERNAL
    assert ctx.details == f"{action} failed inside the controller: see the controller log"
    assert SECRET not in ctx.details and "Traceback" not in ctx.details
    assert (event["action"], event["outcome"], event["actor"]) == (action, "error", "operator:alice")
    assert event["details"]["exception"] == "RuntimeError"
    assert SECRET not in repr(event)


def assert_traceback_logged(caplog: pytest.LogCaptureFixture, action: str) -> None:
    logged = [r for r in caplog.records if r.name == "fleetops.controller.rpc.operator.base"]
    assert len(logged) == 1 and logged[0].getMessage().startswith(f"{action} failed")
    assert logged[0].exc_info is not None and SECRET in str(logged[0].exc_info[1])


# -- unary calls ------------------------------------------------------------------------------------


async def test_an_allowed_call_answers_and_is_audited_with_its_decision(room: Room, audit: AuditLog, alice) -> None:
    async def allow(peer: Peer) -> Any:
        peer.access.require([WEB])
        return operator_pb2.Host(id=WEB.id)

    room.unary = allow
    assert (await get_host(room, alice())).id == WEB.id
    (event,) = audit.events
    assert (event["actor"], event["action"], event["target"], event["outcome"]) == (
        "operator:alice",
        "hosts.show",
        WEB.id,
        "ok",
    )
    assert event["details"]["roles"] == ["admin"] and event["details"]["authz"][0]["allowed"] is True


async def test_a_call_needing_no_action_is_allowed_to_any_enabled_operator(room: Room, audit: AuditLog, alice) -> None:
    assert (await room.WhoAmI(operator_pb2.WhoAmIRequest(), alice())).operator == "alice"
    assert audit.events[0]["outcome"] == "ok"


async def test_no_certificate_is_refused_and_audited_with_the_address(room: Room, audit: AuditLog, context) -> None:
    ctx = context(None, peer="ipv4:198.51.100.9:4000")
    with pytest.raises(context.Aborted):
        await get_host(room, ctx)
    assert ctx.code is grpc.StatusCode.UNAUTHENTICATED
    (event,) = audit.events
    assert (event["actor"], event["outcome"]) == ("peer:ipv4:198.51.100.9:4000", "denied")
    assert event["details"]["error"] == "no client certificate presented"


async def test_a_host_certificate_is_not_an_operator(room: Room, audit: AuditLog, context, host_cert) -> None:
    ctx = context(host_cert)
    with pytest.raises(context.Aborted):
        await room.WhoAmI(operator_pb2.WhoAmIRequest(), ctx)
    assert ctx.code is grpc.StatusCode.PERMISSION_DENIED and "host:h-1 is not an operator" in ctx.details
    assert (audit.events[0]["actor"], audit.events[0]["outcome"]) == ("host:h-1", "denied")


async def test_an_unknown_operator_is_unauthenticated(room: Room, audit: AuditLog, context, operator_cert) -> None:
    ctx = context(operator_cert("mallory"))
    with pytest.raises(context.Aborted):
        await room.WhoAmI(operator_pb2.WhoAmIRequest(), ctx)
    assert ctx.code is grpc.StatusCode.UNAUTHENTICATED
    assert (audit.events[0]["actor"], audit.events[0]["outcome"]) == ("operator:mallory", "denied")


async def test_a_host_scoped_handler_that_decides_nothing_is_refused(room: Room, audit: AuditLog, alice) -> None:
    async def forget(peer: Peer) -> Any:
        return operator_pb2.Host(id=WEB.id)

    room.unary = forget
    ctx = alice()
    with pytest.raises(ctx.Aborted):
        await get_host(room, ctx)
    assert ctx.code is grpc.StatusCode.INTERNAL and "without an authorization decision" in ctx.details
    assert audit.events[0]["outcome"] == "error"


async def test_a_crash_in_a_call_is_audited_logged_and_internal(
    room: Room, audit: AuditLog, alice, caplog: pytest.LogCaptureFixture
) -> None:
    async def crash(peer: Peer) -> Any:
        peer.access.require([WEB])
        raise RuntimeError(SECRET)

    room.unary = crash
    ctx = alice()
    with pytest.raises(ctx.Aborted):
        await get_host(room, ctx)
    (event,) = audit.events
    assert_internal_and_audited(ctx, event, "hosts.show")
    assert event["details"]["authz"][0]["allowed"] is True  # what was decided before the crash
    assert event["details"]["host"] == "web-1"  # what was attempted
    assert_traceback_logged(caplog, "hosts.show")


# -- streams ----------------------------------------------------------------------------------------


async def test_a_stream_is_audited_once_when_it_starts(room: Room, audit: AuditLog, alice) -> None:
    async def updates(peer: Peer) -> AsyncIterator[Any]:
        peer.access.require([WEB])
        for n in range(3):
            yield detail(n)

    room.stream = updates
    items, ended = await watch(room, alice())
    assert [i.command.comment for i in items] == ["update 0", "update 1", "update 2"] and ended is None
    (event,) = audit.events
    assert (event["action"], event["target"], event["outcome"]) == ("command.watch", "cmd-1", "ok")


async def test_an_empty_stream_ends_well(room: Room, audit: AuditLog, alice) -> None:
    async def nothing(peer: Peer) -> AsyncIterator[Any]:
        peer.access.require([WEB])
        return
        yield

    room.stream = nothing
    assert await watch(room, alice()) == ([], None)
    assert [e["outcome"] for e in audit.events] == ["ok"]


async def test_a_stream_refused_before_its_first_item_sends_nothing(
    room: Room, audit: AuditLog, context, operator_cert
) -> None:
    async def updates(peer: Peer) -> AsyncIterator[Any]:
        peer.access.require([WEB])  # the auditor may not run commands
        yield detail(0)

    room.stream = updates
    ctx = context(operator_cert("ada"))
    items, ended = await watch(room, ctx)
    assert items == [] and ended is not None and ctx.code is grpc.StatusCode.PERMISSION_DENIED
    (event,) = audit.events
    assert (event["actor"], event["outcome"]) == ("operator:ada", "denied")
    assert event["details"]["authz"][0]["allowed"] is False


async def test_a_crash_before_the_first_item_is_audited_logged_and_internal(
    room: Room, audit: AuditLog, alice, caplog: pytest.LogCaptureFixture
) -> None:
    async def crash(peer: Peer) -> AsyncIterator[Any]:
        peer.access.require([WEB])
        raise RuntimeError(SECRET)
        yield

    room.stream = crash
    ctx = alice()
    items, ended = await watch(room, ctx)
    assert items == [] and ended is not None
    (event,) = audit.events
    assert_internal_and_audited(ctx, event, "command.watch")
    assert_traceback_logged(caplog, "command.watch")


async def test_a_crash_mid_stream_is_audited_logged_and_internal(
    room: Room, audit: AuditLog, alice, caplog: pytest.LogCaptureFixture
) -> None:
    async def crash(peer: Peer) -> AsyncIterator[Any]:
        peer.access.require([WEB])
        yield detail(0)
        raise RuntimeError(SECRET)

    room.stream = crash
    ctx = alice()
    items, ended = await watch(room, ctx)
    assert [i.command.comment for i in items] == ["update 0"] and ended is not None
    started, failed = audit.events
    assert started["outcome"] == "ok"
    assert_internal_and_audited(ctx, failed, "command.watch")
    assert failed["target"] == "cmd-1"
    assert_traceback_logged(caplog, "command.watch")


async def test_a_domain_error_mid_stream_ends_it_with_its_status(room: Room, audit: AuditLog, alice) -> None:
    async def gone(peer: Peer) -> AsyncIterator[Any]:
        peer.access.require([WEB])
        yield detail(0)
        raise NotFound("command cmd-1 was deleted", "list commands with opsctl run list")

    room.stream = gone
    ctx = alice()
    items, ended = await watch(room, ctx)
    assert len(items) == 1 and ended is not None
    assert (ctx.code, ctx.details) == (grpc.StatusCode.NOT_FOUND, "command cmd-1 was deleted")
    assert [e["outcome"] for e in audit.events] == ["ok"]


def test_the_decorators_name_the_audit_action() -> None:
    assert Room.GetHost.audit_action == "hosts.show"  # type: ignore[attr-defined]
    assert Room.WatchCommand.audit_action == "command.watch"  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _capture_rpc_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="fleetops.controller.rpc.operator.base")
