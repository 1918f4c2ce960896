"""The host registry as agents and operators see it: who is admitted, tags, and presence written behind.

A real database (SQLite, and PostgreSQL where one can be had); hosts are added as enrollment adds
them (``FleetService.add_host`` in the caller's transaction).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from fleetops.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from fleetops.controller.fleet.models import HostStatus, Target
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.fleet.service import FleetService, TagChange
from fleetops.controller.store import database

from registered_hosts import add_host


@dataclass
class Env:
    fleet: FleetService
    presence: PresenceTracker
    db: Any

    def replica(self) -> FleetService:
        """Another controller replica on the same database."""
        return FleetService(self.db, PresenceTracker(self.db, "test:2"), heartbeat_interval=5.0)


class FakeLink:
    def __init__(self) -> None:
        self.peer_address = "192.0.2.7:5000"
        self.closed: list[tuple[str, bool]] = []

    async def close(self, reason: str, *, revoked: bool) -> None:
        self.closed.append((reason, revoked))


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    engine = database.create_engine(database_url)
    await database.ensure_schema(engine, migrate=True)
    db = database.session_factory(engine)
    presence = PresenceTracker(db, "test:1")
    yield Env(FleetService(db, presence, heartbeat_interval=5.0), presence, db)
    await engine.dispose()


async def add(env: Env, name: str, **tags: str) -> str:
    host_id = await add_host(env.db, name, fleet=env.fleet, tags=tags)
    env.fleet.host_added(host_id)
    return host_id


# -- the connection gate ------------------------------------------------------------------------


async def test_admit_refuses_an_unknown_host(env: Env) -> None:
    with pytest.raises(Unauthenticated, match="is not registered with this controller"):
        await env.fleet.admit("h-00000000000000000000")


async def test_admit_refuses_a_deregistered_host_and_closes_its_link(env: Env) -> None:
    host_id = await add(env, "web-1")
    await env.fleet.admit(host_id)
    link = FakeLink()
    env.presence.connected(host_id, link, None)
    host = await env.fleet.deregister_host("web-1")
    assert host.status == HostStatus.DEREGISTERED
    assert link.closed == [("host was deregistered", True)]
    with pytest.raises(Unauthenticated, match="was deregistered; its certificate is revoked"):
        await env.fleet.admit(host_id)
    with pytest.raises(Conflict, match="already deregistered"):
        await env.fleet.deregister_host(host_id)


async def test_another_replica_admits_a_new_host_and_learns_of_a_deregistration(env: Env) -> None:
    other = env.replica()
    await other.refresh_states()
    host_id = await add(env, "web-1")
    await other.admit(host_id)  # not in its memory yet: looked up in the database
    await env.fleet.deregister_host(host_id)
    other.check_admitted(host_id)  # from memory: still the old state until the next refresh
    await other.refresh_states()
    with pytest.raises(Unauthenticated, match="deregistered"):
        other.check_admitted(host_id)


async def test_a_taken_or_bad_name_is_replaced(env: Env) -> None:
    first = await add(env, "web-1")
    second = await add(env, "web-1")
    bad = await add(env, "-bad name-")
    names = {h.id: h.name for h in await env.fleet.list_hosts(Target())}
    assert names[first] == "web-1"
    assert names[second] == f"web-1-{second[-6:]}"
    assert names[bad] == bad
    with pytest.raises(NotFound, match="no such host: db-9"):
        await env.fleet.get_host("db-9")


# -- tags -------------------------------------------------------------------------------------


async def test_tags_change_on_every_targeted_host_or_none(env: Env) -> None:
    await add(env, "web-1", role="web")
    await add(env, "web-2", role="web", canary="yes")
    await add(env, "db-1", role="db")
    changes = await env.fleet.tag_hosts(Target(selector="role=web"), {"env": "prod"}, ["canary"])
    assert [(c.before.name, c.changed) for c in changes] == [("web-1", True), ("web-2", True)]
    tags = {h.name: h.tags for h in await env.fleet.list_hosts(Target())}
    assert tags == {
        "db-1": {"role": "db"},
        "web-1": {"role": "web", "env": "prod"},
        "web-2": {"role": "web", "env": "prod"},
    }

    def refuse(changes: list[TagChange]) -> None:
        raise PermissionDenied(f"not {changes[-1].before.name}")

    with pytest.raises(PermissionDenied):
        await env.fleet.tag_hosts(Target(all=True), {"env": "dev"}, [], authorize=refuse)
    dry = await env.fleet.tag_hosts(Target(all=True), {"env": "dev"}, [], dry_run=True)
    assert {c.after.tags["env"] for c in dry} == {"dev"}
    assert {h.tags.get("env") for h in await env.fleet.list_hosts(Target())} == {None, "prod"}  # nothing written


async def test_tagging_a_named_deregistered_host_is_refused(env: Env) -> None:
    await add(env, "web-1")
    await add(env, "web-2")
    await env.fleet.deregister_host("web-2")
    with pytest.raises(Conflict, match="host web-2 is deregistered"):
        await env.fleet.tag_hosts(Target(hosts=("web-1", "web-2")), {"env": "prod"}, [])
    assert (await env.fleet.get_host("web-1")).tags == {}
    (change,) = await env.fleet.tag_hosts(Target(all=True), {"env": "prod"}, [])  # a selector skips it
    assert change.after.name == "web-1"


@pytest.mark.parametrize(
    ("set_tags", "remove", "message"),
    [
        ({}, [], "no tag change given"),
        ({"env": "a"}, ["env"], "both set and removed"),
        ({"bad key": "a"}, [], "bad tag key"),
    ],
)
async def test_bad_tag_changes_are_refused(env: Env, set_tags: dict[str, str], remove: list[str], message: str) -> None:
    await add(env, "web-1")
    with pytest.raises(InvalidInput, match=message):
        await env.fleet.tag_hosts(Target(all=True), set_tags, remove)


# -- presence, written behind -------------------------------------------------------------------


async def test_presence_is_flushed_in_one_batch_and_seen_by_another_replica(env: Env) -> None:
    ids = [await add(env, f"web-{i}") for i in range(3)]
    writes: list[list[dict[str, Any]]] = []
    write = env.presence._store.write_presence

    async def counted(rows: list[dict[str, Any]], replica_id: str) -> None:
        writes.append(rows)
        await write(rows, replica_id)

    env.presence._store.write_presence = counted  # type: ignore[method-assign]  # counts the batches
    for host_id in ids:
        env.presence.connected(host_id, FakeLink(), {"os_family": "linux", "hostname": "new"})
        env.presence.seen(host_id)
    await env.presence.flush()
    assert len(writes) == 1 and sorted(r["id"] for r in writes[0]) == sorted(ids)
    other = env.replica()
    hosts = await other.list_hosts(Target())
    assert {h.status for h in hosts} == {HostStatus.ONLINE}
    assert {h.peer_address for h in hosts} == {"192.0.2.7:5000"}
    assert all(h.inventory["hostname"] == "new" for h in hosts)
    await env.presence.flush()
    assert len(writes) == 1  # nothing pending: nothing written


async def test_a_failed_flush_keeps_the_updates_for_the_next(env: Env) -> None:
    host_id = await add(env, "web-1")
    write = env.presence._store.write_presence

    async def down(rows: list[dict[str, Any]], replica_id: str) -> None:
        raise ConnectionError("the database is away")

    env.presence._store.write_presence = down  # type: ignore[method-assign]  # the database is down
    link = FakeLink()
    env.presence.connected(host_id, link, None)
    with pytest.raises(ConnectionError):
        await env.presence.flush()
    env.presence.seen(host_id, {"os_family": "linux", "hostname": "later"})  # newer, while it was down
    env.presence._store.write_presence = write  # type: ignore[method-assign]  # back
    await env.presence.flush()
    host = await env.replica().get_host(host_id)
    assert host.status == HostStatus.ONLINE  # the connect survived the failed flush
    assert host.peer_address == link.peer_address and host.inventory["hostname"] == "later"
    env.presence.disconnected(host_id, link)
    await env.presence.flush()
    assert (await env.replica().get_host(host_id)).status == HostStatus.OFFLINE


async def test_a_host_linked_here_is_online_before_its_presence_is_written(env: Env) -> None:
    host_id = await add(env, "web-1")
    env.presence.connected(host_id, FakeLink(), None)
    assert (await env.fleet.get_host(host_id)).status == HostStatus.ONLINE
    assert (await env.replica().get_host(host_id)).status == HostStatus.OFFLINE


async def test_presence_of_hosts_agrees_with_the_host_list_for_this_replica_and_another(env: Env) -> None:
    here, elsewhere, never = await add(env, "web-1"), await add(env, "web-2"), await add(env, "web-3")
    env.presence.connected(here, FakeLink(), None)  # type: ignore[arg-type]  # a fake link; not flushed yet
    other = env.replica()
    other.presence.connected(elsewhere, FakeLink(), None)  # type: ignore[arg-type]  # a fake link
    await other.presence.flush()
    ids = [here, elsewhere, never, "h-00000000000000000000"]  # the last one does not exist
    seen = await env.fleet.presence_of(ids)
    listed = {h.id: h for h in await env.fleet.list_hosts(Target(), include_deregistered=True)}
    assert set(seen) == {here, elsewhere, never}
    assert {h: (p.status, p.last_seen_at) for h, p in seen.items()} == {
        h: (listed[h].status, listed[h].last_seen_at) for h in seen
    }
    assert [seen[h].status for h in (here, elsewhere, never)] == [
        HostStatus.ONLINE,
        HostStatus.ONLINE,
        HostStatus.OFFLINE,
    ]
