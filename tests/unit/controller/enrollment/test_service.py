"""Registration as a host sees it: which activations let it in, and which tags it ends up with.

A real database (SQLite, and PostgreSQL where one can be had), the real fleet and audit log; the
CA is made fresh per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from fleetops.common import pki
from fleetops.common.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from fleetops.controller.audit.models import AuditQuery
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.enrollment.service import EnrollmentService
from fleetops.controller.fleet.models import Target
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.store import database
from fleetops.controller.store.models import ActivationRow
from fleetops.controller.throttle import EnrollmentThrottle
from fleetops.controller.throttle.guard import ThrottleSettings


@dataclass
class Env:
    enrollment: EnrollmentService
    fleet: FleetService
    audit: AuditLog
    db: Any


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    engine = database.create_engine(database_url)
    await database.ensure_schema(engine, migrate=True)
    db = database.session_factory(engine)
    audit = AuditLog(db)
    fleet = FleetService(db, PresenceTracker(db, "test:1"), heartbeat_interval=5.0)
    throttle = EnrollmentThrottle(ThrottleSettings(lockout_after=3))
    enrollment = EnrollmentService(
        db,
        pki.CertificateAuthority.create(),
        fleet,
        audit,
        host_certificate_lifetime=timedelta(days=1),
        throttle=throttle,
    )
    yield Env(enrollment, fleet, audit, db)
    await engine.dispose()


async def activation(
    env: Env, *, limit: int = 5, tags: dict[str, str] | None = None, allow: tuple[str, ...] = ()
) -> tuple[str, str]:
    created, code = await env.enrollment.create_activation(
        created_by="operator:alice",
        default_tags=tags if tags is not None else {"env": "prod"},
        registration_limit=limit,
        expires_in=timedelta(hours=1),
        allowed_host_tags=allow,
    )
    return created.id, code


async def register(
    env: Env, activation_id: str, code: str, *, tags: dict[str, str] | None = None, hostname: str = "web-1"
) -> Any:
    return await env.enrollment.register(
        activation_id=activation_id,
        activation_code=code,
        csr_pem=pki.build_csr(pki.generate_private_key(), "host"),
        inventory={"hostname": hostname},
        tags=tags or {},
        peer="192.0.2.1",
    )


async def test_a_host_registers_with_the_activation_tags_and_is_admitted(env: Env) -> None:
    activation_id, code = await activation(env)
    registration = await register(env, activation_id, code)
    assert registration.hostname == "web-1"
    assert registration.tags == {"env": "prod"}
    assert pki.load_cert(registration.certificate_pem)
    await env.fleet.admit(registration.host_id)  # no error: registered and active
    (host,) = await env.fleet.list_hosts(Target(selector="env=prod"))
    assert host.id == registration.host_id and host.activation_id == activation_id
    (event,) = await env.audit.list(AuditQuery(action="host.register"))
    assert event.target == registration.host_id and event.actor == f"activation:{activation_id}"
    (listed,) = await env.enrollment.list_activations()
    assert listed.registrations_count == 1


async def test_an_exhausted_activation_is_refused(env: Env) -> None:
    activation_id, code = await activation(env, limit=1)
    await register(env, activation_id, code, hostname="web-1")
    with pytest.raises(Unauthenticated, match="reached its registration limit of 1"):
        await register(env, activation_id, code, hostname="web-2")
    assert [h.name for h in await env.fleet.list_hosts(Target())] == ["web-1"]


async def test_an_expired_activation_is_refused(env: Env) -> None:
    activation_id, code = await activation(env)
    async with env.db.begin() as session:
        await session.execute(
            update(ActivationRow)
            .where(ActivationRow.id == activation_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(Unauthenticated, match=f"activation {activation_id} expired"):
        await register(env, activation_id, code)
    assert await env.fleet.list_hosts(Target()) == []


async def test_unknown_activation_and_wrong_code_get_one_answer(env: Env) -> None:
    activation_id, _ = await activation(env)
    with pytest.raises(Unauthenticated) as unknown:
        await register(env, "0b5e6f3c-0000-0000-0000-000000000000", "x" * 20)
    with pytest.raises(Unauthenticated) as wrong:
        await register(env, activation_id, "x" * 20)
    assert unknown.value.message == wrong.value.message == "activation id or code is wrong"


async def test_wrong_codes_lock_the_activation_for_good(env: Env) -> None:
    activation_id, code = await activation(env)
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="^activation id or code is wrong$"):
            await register(env, activation_id, "x" * 20)
    with pytest.raises(Unauthenticated, match="now locked after 3 wrong codes"):
        await register(env, activation_id, "x" * 20)
    with pytest.raises(Unauthenticated, match="is locked"):
        await register(env, activation_id, code)  # even the right code
    (event,) = await env.audit.list(AuditQuery(action="activation.lock"))
    assert event.details["failed_codes"] == 3


async def test_a_host_sets_only_the_tags_its_activation_allows(env: Env) -> None:
    activation_id, code = await activation(env, tags={"env": "prod", "role": "web"}, allow=("rack", "role"))
    with pytest.raises(PermissionDenied, match=r"may not set the tag env: .*\(the activation sets env=prod\)"):
        await register(env, activation_id, code, tags={"env": "dev"})
    registration = await register(env, activation_id, code, tags={"rack": "r1", "role": "db"})
    # An allowed key the host set replaces the activation's; it stays host-set (access decisions never see it).
    assert registration.tags == {"env": "prod", "rack": "r1", "role": "db"}
    assert registration.host_tags == {"rack": "r1", "role": "db"}
    host = await env.fleet.get_host(registration.host_id)
    assert host.tags == {"env": "prod"} and host.host_tags == {"rack": "r1", "role": "db"}


async def test_a_refused_registration_uses_no_slot(env: Env) -> None:
    activation_id, code = await activation(env, limit=1)
    with pytest.raises(PermissionDenied):
        await register(env, activation_id, code, tags={"env": "dev"})
    await register(env, activation_id, code)  # the one slot is still there


async def test_bad_activation_parameters_and_unknown_deletes_are_refused(env: Env) -> None:
    with pytest.raises(InvalidInput, match="registration limit 0 is out of range"):
        await env.enrollment.create_activation(
            created_by="a", default_tags={}, registration_limit=0, expires_in=timedelta(hours=1)
        )
    with pytest.raises(InvalidInput, match="activation expiry"):
        await env.enrollment.create_activation(
            created_by="a", default_tags={}, registration_limit=1, expires_in=timedelta(days=31)
        )
    with pytest.raises(NotFound, match="no such activation"):
        await env.enrollment.delete_activation("nope")
