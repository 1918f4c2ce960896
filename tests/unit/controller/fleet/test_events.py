"""A host's events: registered, deregistered, online and offline, each written with its change, once.

A real database (SQLite, and PostgreSQL where one can be had). Presence is written behind: the
events come from the flush that writes a real change of ``connected``, never from a heartbeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.common.errors import Conflict
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.replicas.store import ReplicaStore
from fleetops.controller.store import database

from events import stored_events
from registered_hosts import add_host


@dataclass
class Env:
    engine: AsyncEngine
    db: Any
    fleet: FleetService
    presence: PresenceTracker

    async def events(self, prefix: str = "fleetops.host.") -> list[tuple[str, str, str | None, dict[str, Any]]]:
        return [(e.type, e.subject, e.host, e.data) for e in await stored_events(self.engine, prefix)]


class FakeLink:
    peer_address = "192.0.2.7:5000"

    async def close(self, reason: str, *, revoked: bool) -> None:
        pass


@pytest.fixture
def env(engine: AsyncEngine) -> Env:
    db = database.session_factory(engine)
    presence = PresenceTracker(db, "r1")
    return Env(engine, db, FleetService(db, presence, heartbeat_interval=5.0), presence)


async def test_registering_writes_the_event_in_the_registration_transaction(env: Env) -> None:
    host_id = await add_host(env.db, "web-1", fleet=env.fleet)
    assert await env.events() == [
        (
            "fleetops.host.registered",
            "host/web-1",
            "web-1",
            {"host": "web-1", "host_id": host_id, "activation": "act-1"},
        )
    ]
    # A registration that rolls back (the enrollment's transaction fails) leaves no event.
    with pytest.raises(RuntimeError):
        async with env.db() as session, session.begin():
            await env.fleet.add_host(
                session, host_id="h" * 32, hostname="web-2", tags={}, inventory={}, activation_id="act-1",
                certificate_serial="2f", certificate_expires_at=datetime.now(UTC) + timedelta(days=1),
            )  # fmt: skip
            raise RuntimeError("the certificate could not be issued")
    assert len(await env.events()) == 1


async def test_deregistering_writes_one_event_naming_who(env: Env) -> None:
    host_id = await add_host(env.db, "web-1", fleet=env.fleet)
    await env.fleet.deregister_host("web-1", "operator:alice")
    with pytest.raises(Conflict):
        await env.fleet.deregister_host(host_id, "operator:bob")
    other = FleetService(env.db, PresenceTracker(env.db, "r2"), heartbeat_interval=5.0)
    with pytest.raises(Conflict):
        await other.deregister_host("web-1", "operator:bob")  # another replica: no second event
    assert (await env.events("fleetops.host.deregistered")) == [
        (
            "fleetops.host.deregistered",
            "host/web-1",
            "web-1",
            {"host": "web-1", "host_id": host_id, "by": "operator:alice"},
        )
    ]


async def test_online_and_offline_only_on_transitions(env: Env) -> None:
    host_id = await add_host(env.db, "web-1", fleet=env.fleet)
    link = FakeLink()
    env.presence.connected(host_id, link, None)  # type: ignore[arg-type]
    await env.presence.flush()
    for _ in range(3):  # heartbeats: no event
        env.presence.seen(host_id)
        await env.presence.flush()
    env.presence.reassert([host_id])  # connected again, as it already was: no event
    await env.presence.flush()
    env.presence.disconnected(host_id, link)  # type: ignore[arg-type]
    await env.presence.flush()
    env.presence.seen(host_id)
    await env.presence.flush()
    # Connect, drop and connect again within one flush: the row stays connected, nothing to tell.
    again = FakeLink()
    env.presence.connected(host_id, again, None)  # type: ignore[arg-type]
    env.presence.disconnected(host_id, again)  # type: ignore[arg-type]
    env.presence.connected(host_id, FakeLink(), None)  # type: ignore[arg-type]
    await env.presence.flush()
    data = {"host": "web-1", "host_id": host_id, "replica": "r1"}
    assert [e for e in await env.events() if e[0] != "fleetops.host.registered"] == [
        ("fleetops.host.online", "host/web-1", "web-1", data),
        ("fleetops.host.offline", "host/web-1", "web-1", data),
        ("fleetops.host.online", "host/web-1", "web-1", data),
    ]


async def test_a_disconnect_after_the_host_moved_to_another_replica_is_no_offline(env: Env) -> None:
    host_id = await add_host(env.db, "web-1", fleet=env.fleet)
    link = FakeLink()
    env.presence.connected(host_id, link, None)  # type: ignore[arg-type]
    await env.presence.flush()
    elsewhere = PresenceTracker(env.db, "r2")
    elsewhere.connected(host_id, FakeLink(), None)  # type: ignore[arg-type]
    await elsewhere.flush()
    env.presence.disconnected(host_id, link)  # type: ignore[arg-type]
    await env.presence.flush()
    assert [e[0] for e in await env.events()] == ["fleetops.host.registered", "fleetops.host.online"]


async def test_a_failed_flush_writes_no_event_and_the_retry_writes_it_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_id = await add_host(env.db, "web-1", fleet=env.fleet)
    from fleetops.controller.store import notify

    real_notify = notify.notify

    async def broken(*args: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(notify, "notify", broken)  # fails after the transition was written
    env.presence.connected(host_id, FakeLink(), None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await env.presence.flush()
    assert [e[0] for e in await env.events()] == ["fleetops.host.registered"]
    monkeypatch.setattr(notify, "notify", real_notify)
    await env.presence.flush()  # the batch was kept: written now, with its one event
    assert [e[0] for e in await env.events()] == ["fleetops.host.registered", "fleetops.host.online"]


async def test_a_dead_replicas_hosts_go_offline_with_their_event(env: Env) -> None:
    host_id = await add_host(env.db, "web-1", fleet=env.fleet)
    env.presence.connected(host_id, FakeLink(), None)  # type: ignore[arg-type]
    await env.presence.flush()
    replicas = ReplicaStore(env.db)
    assert await replicas.clear_routes(["r1"], "reload") == 1
    assert await replicas.clear_routes(["r1"], "reload") == 0
    offline = await env.events("fleetops.host.offline")
    assert offline == [
        (
            "fleetops.host.offline",
            "host/web-1",
            "web-1",
            {"host": "web-1", "host_id": host_id, "replica": "", "reason": "its controller replica stopped answering"},
        )
    ]
