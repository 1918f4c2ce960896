"""Operators as they notice the users room: a login token works once, expires, locks; revocation is at once.

A real database (SQLite, and PostgreSQL where one can be had); the service's clock runs ahead of
the real one where a test needs time to pass (certificates are issued at the real time).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509

from fleetops.common import pki
from fleetops.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from fleetops.controller.audit.models import AuditQuery
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.store import database
from fleetops.controller.throttle import EnrollmentThrottle
from fleetops.controller.throttle.guard import ThrottleSettings
from fleetops.controller.users.models import parse_token
from fleetops.controller.users.service import UserService


class Clock:
    """The real time plus ``ahead``."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@dataclass
class Env:
    users: UserService
    clock: Clock
    audit: AuditLog


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    engine = database.create_engine(database_url)
    await database.ensure_schema(engine, migrate=True)
    db = database.session_factory(engine)
    clock, audit = Clock(), AuditLog(db)
    users = UserService(
        db,
        pki.CertificateAuthority.create(),
        clock=clock,
        throttle=EnrollmentThrottle(ThrottleSettings(lockout_after=3)),
        audit=audit,
    )
    yield Env(users, clock, audit)
    await engine.dispose()


def csr() -> bytes:
    return pki.build_csr(pki.generate_private_key(), "operator")


async def login(env: Env, token: str, secret: str | None = None) -> tuple[str, x509.Certificate]:
    token_id, right_secret, _ = parse_token(token)
    return await env.users.login(token_id, right_secret if secret is None else secret, csr())


async def test_a_token_logs_in_once(env: Env) -> None:
    user, token = await env.users.create("operator:admin", "alice", ["viewer", "viewer", "admin"])
    assert user.roles == ("viewer", "admin")
    assert parse_token(token.token)[2] == pki.fingerprint_sha256(env.users.ca)  # opsctl pins the CA by it
    name, certificate = await login(env, token.token)
    assert name == "alice"
    assert (await env.users.check("alice", certificate)).name == "alice"
    assert (await env.users.get("alice")).certificate_expires_at == certificate.not_valid_after_utc
    with pytest.raises(Unauthenticated, match="unknown, used, expired or locked"):
        await login(env, token.token)


async def test_a_new_token_replaces_the_pending_one(env: Env) -> None:
    _, first = await env.users.create("operator:admin", "alice", [])
    second = await env.users.issue_token("alice")
    with pytest.raises(Unauthenticated):
        await login(env, first.token)
    await login(env, second.token)


async def test_an_expired_token_is_refused(env: Env) -> None:
    _, token = await env.users.create("operator:admin", "alice", [], timedelta(minutes=10))
    env.clock.ahead = timedelta(minutes=11)
    with pytest.raises(Unauthenticated, match="unknown, used, expired or locked"):
        await login(env, token.token)


async def test_wrong_secrets_lock_the_token(env: Env) -> None:
    _, token = await env.users.create("operator:admin", "alice", [])
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="unknown, used, expired or locked"):
            await login(env, token.token, "wrong")
    with pytest.raises(Unauthenticated, match="now locked after 3 wrong secrets"):
        await login(env, token.token, "wrong")
    with pytest.raises(Unauthenticated):
        await login(env, token.token)  # even the right secret
    (event,) = await env.audit.list(AuditQuery(action="user.token.lock"))
    assert event.target == "alice" and event.details["wrong_secrets"] == 3


async def test_a_disabled_user_is_refused_at_once_and_old_certificates_stay_refused(env: Env) -> None:
    _, token = await env.users.create("operator:admin", "alice", [])
    _, certificate = await login(env, token.token)
    await env.users.update("alice", disabled=True)
    with pytest.raises(PermissionDenied, match="user 'alice' is disabled"):
        await env.users.check("alice", certificate)
    env.clock.ahead = timedelta(minutes=10)  # re-enabled well after the certificate was issued
    await env.users.update("alice", disabled=False)
    with pytest.raises(Unauthenticated, match="issued before the user was \\(re\\)created or re-enabled"):
        await env.users.check("alice", certificate)


async def test_a_deleted_user_is_refused_and_recreating_does_not_bring_old_certificates_back(env: Env) -> None:
    _, token = await env.users.create("operator:admin", "alice", [])
    _, certificate = await login(env, token.token)
    await env.users.delete("alice")
    with pytest.raises(Unauthenticated, match="is not a user of this controller"):
        await env.users.check("alice", certificate)
    env.clock.ahead = timedelta(minutes=10)
    await env.users.create("operator:admin", "alice", [])
    with pytest.raises(Unauthenticated, match="issued before"):
        await env.users.check("alice", certificate)


async def test_ensure_keeps_an_existing_user(env: Env) -> None:
    await env.users.create("operator:admin", "alice", ["viewer"])
    assert (await env.users.ensure("controller", "alice", ["admin"])).roles == ("viewer",)
    assert (await env.users.ensure("controller", "root", ["admin"])).roles == ("admin",)
    assert [u.name for u in await env.users.list()] == ["alice", "root"]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda u: u.create("a", "Alice", []), InvalidInput, "bad user name"),
        (lambda u: u.create("a", "bob", [], timedelta(days=8)), InvalidInput, "token lifetime"),
        (lambda u: u.issue_token("nobody"), NotFound, "no user 'nobody'"),
        (lambda u: u.update("nobody", disabled=True), NotFound, "no user 'nobody'"),
        (lambda u: u.delete("nobody"), NotFound, "no user 'nobody'"),
    ],
)
async def test_bad_requests_are_refused(env: Env, call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        await call(env.users)


async def test_a_taken_name_is_a_conflict(env: Env) -> None:
    await env.users.create("operator:admin", "alice", [])
    with pytest.raises(Conflict, match="user 'alice' exists"):
        await env.users.create("operator:admin", "alice", [])
