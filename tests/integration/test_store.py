"""The store on SQLite and PostgreSQL: migrations, model drift, audit chain, activation limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.agent.inventory import collect_inventory
from fleetops.common import pki
from fleetops.common.errors import Unauthenticated, Unavailable
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.enrollment.service import EnrollmentService
from fleetops.controller.fleet.models import HostStatus, Target
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.store import database
from fleetops.controller.store.models import Base


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = database.create_engine(database_url)
    await database.ensure_schema(engine, migrate=True)
    yield engine
    await engine.dispose()


@pytest.fixture
async def services(engine: AsyncEngine) -> AsyncIterator[tuple[FleetService, EnrollmentService, AuditLog]]:
    sessions = database.session_factory(engine)
    audit = AuditLog(sessions)
    presence = PresenceTracker(sessions, "test-replica", flush_interval=0.01)
    fleet = FleetService(sessions, presence, heartbeat_interval=1.0)
    await fleet.start()
    presence.start()
    enrollment = EnrollmentService(
        sessions, pki.CertificateAuthority.create(), fleet, audit, host_certificate_lifetime=timedelta(hours=1)
    )
    yield fleet, enrollment, audit
    await fleet.stop()
    await presence.stop()


async def test_migrations_reach_head_and_match_the_models(engine: AsyncEngine) -> None:
    assert await database.current_revision(engine) == database.head_revision()

    def diff(conn):  # type: ignore[no-untyped-def]
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    # Upgrading again is a no-op, and --no-migrate accepts a schema at head.
    await database.upgrade(engine)
    await database.ensure_schema(engine, migrate=False)


async def test_no_migrate_refuses_an_empty_database(database_url: str) -> None:
    engine = database.create_engine(database_url)
    try:
        with pytest.raises(Unavailable, match="this controller needs") as info:
            await database.ensure_schema(engine, migrate=False)
        assert "fleetops-controller migrate" in info.value.hint
    finally:
        await engine.dispose()


async def test_audit_chain_survives_concurrent_appends_and_catches_edits(
    engine: AsyncEngine, services: tuple[FleetService, EnrollmentService, AuditLog]
) -> None:
    _, _, audit = services
    await asyncio.gather(
        *(audit.record(actor=f"operator:o{i}", action="test.append", details={"i": i}) for i in range(40))
    )
    result = await audit.verify()
    assert result.ok and result.events_checked == 40
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_events SET outcome = 'denied' WHERE id = 17"))
    broken = await audit.verify()
    assert not broken.ok and broken.first_bad_event_id == 17


def _csr() -> bytes:
    return pki.build_csr(pki.generate_private_key(), "host")


async def test_registration_limit_holds_under_concurrent_registrations(
    services: tuple[FleetService, EnrollmentService, AuditLog],
) -> None:
    fleet, enrollment, audit = services
    activation, code = await enrollment.create_activation(
        created_by="test",
        default_tags={"env": "prod"},
        registration_limit=3,
        expires_in=timedelta(hours=1),
        allowed_host_tags=["n"],
    )
    inventory = collect_inventory().to_dict()

    async def register(i: int) -> object:
        try:
            return await enrollment.register(
                activation_id=activation.id,
                activation_code=code,
                csr_pem=_csr(),
                inventory=inventory,
                tags={"n": str(i)},
                peer="test",
                name=f"host-{i}",
            )
        except Unauthenticated as exc:
            return exc

    results = await asyncio.gather(*(register(i) for i in range(10)))
    accepted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Unauthenticated)]
    assert len(accepted) == 3 and len(refused) == 7
    assert all("registration limit of 3" in r.message for r in refused)
    hosts = await fleet.list_hosts(Target())
    assert len(hosts) == 3 and all(h.tags["env"] == "prod" for h in hosts)
    assert (await enrollment.list_activations())[0].registrations_count == 3
    assert (await audit.verify()).ok


async def test_presence_is_written_behind_and_deregistration_closes_the_link(
    services: tuple[FleetService, EnrollmentService, AuditLog], engine: AsyncEngine
) -> None:
    fleet, enrollment, _ = services
    activation, code = await enrollment.create_activation(
        created_by="test", default_tags={}, registration_limit=1, expires_in=timedelta(hours=1)
    )
    reg = await enrollment.register(
        activation_id=activation.id,
        activation_code=code,
        csr_pem=_csr(),
        inventory={"hostname": "h1"},
        tags={},
        peer="t",
    )

    class Link:
        peer_address = "ipv4:127.0.0.1:1"
        closed: tuple[str, bool] | None = None

        async def close(self, reason: str, *, revoked: bool) -> None:
            self.closed = (reason, revoked)

    link = Link()
    fleet.presence.connected(reg.host_id, link, {"hostname": "h1", "os_family": "linux"})
    assert (await fleet.get_host(reg.host_id)).status is HostStatus.ONLINE
    await fleet.presence.flush()
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT connected, peer_address FROM hosts"))).one()
    assert bool(row[0]) is True and row[1] == "ipv4:127.0.0.1:1"
    await fleet.deregister_host("h1")
    assert link.closed == ("host was deregistered", True)
    with pytest.raises(Unauthenticated, match="deregistered"):
        await fleet.admit(reg.host_id)
    # A stale snapshot never re-admits a deregistered host.
    await fleet.refresh_states()
    with pytest.raises(Unauthenticated, match="deregistered"):
        await fleet.admit(reg.host_id)
    with pytest.raises(Unauthenticated, match="not registered"):
        await fleet.admit("h-unknown")


async def test_cloned_hosts_registering_at_once_get_unique_names(
    services: tuple[FleetService, EnrollmentService, AuditLog],
) -> None:
    fleet, enrollment, _ = services
    activation, code = await enrollment.create_activation(
        created_by="test", default_tags={}, registration_limit=6, expires_in=timedelta(hours=1)
    )
    regs = await asyncio.gather(
        *(
            enrollment.register(
                activation_id=activation.id,
                activation_code=code,
                csr_pem=_csr(),
                inventory={"hostname": "clone"},
                tags={},
                peer="t",
            )
            for _ in range(6)
        )
    )
    names = sorted(r.hostname for r in regs)
    assert len(set(names)) == 6 and "clone" in names
    assert len(await fleet.list_hosts(Target())) == 6
