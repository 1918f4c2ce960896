"""The replica registry, the routing table and command adoption, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from fleetops.common.errors import Conflict, InvalidInput
from fleetops.common.states import CommandStatus
from fleetops.controller import app
from fleetops.controller.commands.models import Command, CommandSpec
from fleetops.controller.commands.store import InvocationStore
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.replicas.models import CONNECTED, DISCONNECTED, parse_route_payload, route_payloads
from fleetops.controller.replicas.service import ReplicaRegistry
from fleetops.controller.replicas.store import ReplicaStore
from fleetops.controller.settings import ControllerSettings
from fleetops.controller.store import database
from fleetops.controller.store.models import ReplicaRow
from fleetops.controller.store.notify import ChangeListener

from registered_hosts import add_host

DEAD_AFTER = timedelta(seconds=10)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Any]:
    engine = database.create_engine(database_url)
    await database.ensure_schema(engine, migrate=True)
    yield database.session_factory(engine)
    await engine.dispose()


class FakeLink:
    peer_address = "192.0.2.7:5000"

    async def close(self, reason: str, *, revoked: bool) -> None:
        pass


def registry(db: Any, replica_id: str) -> ReplicaRegistry:
    engine = db.kw["bind"]
    return ReplicaRegistry(
        ReplicaStore(db),
        ChangeListener(engine),
        replica_id,
        f"127.0.0.1:{7000 + int(replica_id[1:])}",
        heartbeat_interval=3600,  # beats only when a test says so
        dead_after=DEAD_AFTER.total_seconds(),
    )


async def age(db: Any, replica_id: str, by: timedelta) -> None:
    async with db() as session, session.begin():
        await session.execute(
            update(ReplicaRow).where(ReplicaRow.id == replica_id).values(heartbeat_at=datetime.now(UTC) - by)
        )


# -- notifications ------------------------------------------------------------------------------------


def test_route_payloads_fit_a_notify_and_read_back() -> None:
    hosts = [f"h-{n:020d}" for n in range(1000)]
    payloads = route_payloads(CONNECTED, "r2", hosts, 7000)
    assert len(payloads) > 1 and all(len(p) <= 7000 for p in payloads)
    read = [parse_route_payload(p) for p in payloads]
    assert {kind for kind, _, _ in read} == {CONNECTED} and {r for _, r, _ in read} == {"r2"}
    assert [h for _, _, ids in read for h in ids] == hosts
    assert route_payloads(DISCONNECTED, "r2", [], 7000) == []
    assert parse_route_payload("garbage") == ("", "", [])


# -- registry -----------------------------------------------------------------------------------------


async def test_a_replica_id_in_use_by_a_live_replica_elsewhere_is_refused(db: Any) -> None:
    store = ReplicaStore(db)
    now = datetime.now(UTC)
    await store.register("r1", "10.0.0.1:7443", now, DEAD_AFTER)
    with pytest.raises(Conflict, match="in use by a live replica at 10.0.0.1:7443") as refused:
        await store.register("r1", "10.0.0.2:7443", now, DEAD_AFTER)
    assert "--replica-id" in (refused.value.hint or "")
    await store.register("r1", "10.0.0.1:7443", now, DEAD_AFTER)  # the same replica restarting
    await store.stopped("r1", now)
    await store.register("r1", "10.0.0.2:7443", now, DEAD_AFTER)  # stopped: the id is free again
    assert [(r.id, r.address, r.stopped_at) for r in await store.replicas()] == [("r1", "10.0.0.2:7443", None)]


async def test_a_late_disconnect_never_erases_a_newer_route(db: Any) -> None:
    moved, stayed = await add_host(db, "web-1"), await add_host(db, "web-2")
    on_r1, on_r2 = PresenceTracker(db, "r1"), PresenceTracker(db, "r2")
    links = {moved: FakeLink(), stayed: FakeLink()}
    for host_id, link in links.items():
        on_r1.connected(host_id, link, None)  # type: ignore[arg-type]  # a fake link
    await on_r1.flush()
    on_r2.connected(moved, FakeLink(), None)  # type: ignore[arg-type]  # web-1 reconnected to r2
    await on_r2.flush()
    for host_id, link in links.items():  # r1 notices both old links died only now (one batch)
        on_r1.disconnected(host_id, link)
    await on_r1.flush()
    routes = await ReplicaStore(db).routes()
    assert routes[moved].replica_id == "r2"
    assert stayed not in routes  # its disconnect was written


async def test_routes_point_at_other_live_replicas_and_a_silent_one_is_swept(db: Any) -> None:
    host_id = await add_host(db, "web-1")
    r1, r2 = registry(db, "r1"), registry(db, "r2")
    gone: list[list[str]] = []

    async def record(replicas: list[str]) -> None:
        gone.append(replicas)

    r2.on_replicas_dead(record)
    await r1.start()
    await r2.start()
    presence = PresenceTracker(db, "r1")
    presence.connected(host_id, FakeLink(), None)  # type: ignore[arg-type]  # a fake link
    await presence.flush()
    await r1._refresh()
    await r2._refresh()
    assert r2.route(host_id) == "r1" and r2.address_of("r1") == "127.0.0.1:7001"
    assert r1.route(host_id) is None  # held here: no peer needed

    await age(db, "r1", DEAD_AFTER + timedelta(seconds=1))
    await r2._refresh()
    assert gone == [["r1"]]
    assert r2.route(host_id) is None
    assert host_id not in await ReplicaStore(db).routes()  # offline until it reconnects elsewhere
    await r2.stop()
    await r1.stop()


async def test_a_host_on_a_replica_started_since_the_last_read_waits_for_its_address_then_moves(db: Any) -> None:
    host_id = await add_host(db, "web-1")
    r1 = registry(db, "r1")
    moved: list[str] = []
    arrived = asyncio.Event()

    async def record(host: str) -> None:
        moved.append(host)
        arrived.set()

    r1.on_host_moved(record)
    await r1.start()
    r2 = registry(db, "r2")
    await r2.start()  # after r1's last read: r1 knows no address for it yet
    r1._on_route_notice(f"{CONNECTED}r2 {host_id}")
    assert r1.route(host_id) is None  # not "held by r2" with nowhere to send it
    assert r1._reload_now.is_set()  # a notice from an unknown replica re-reads the registry at once
    await asyncio.wait_for(arrived.wait(), 10)  # acted on while r2's address was unknown: nothing delivered
    moved.clear()
    arrived.clear()
    presence = PresenceTracker(db, "r2")
    presence.connected(host_id, FakeLink(), None)  # type: ignore[arg-type]  # a fake link
    await presence.flush()
    await r1._refresh()
    assert r1.route(host_id) == "r2" and r1.address_of("r2") == "127.0.0.1:7002"
    await asyncio.wait_for(arrived.wait(), 10)  # moved again once r2's address is known
    assert moved == [host_id]
    await r2.stop()
    await r1.stop()


async def test_hosts_of_a_replica_back_from_the_dead_are_moved_again(db: Any) -> None:
    host_id = await add_host(db, "web-1")
    r1, r2 = registry(db, "r1"), registry(db, "r2")
    await r1.start()
    await r2.start()
    await r1._refresh()
    await age(db, "r2", DEAD_AFTER + timedelta(seconds=1))  # r2 cut off from the database
    await r1._refresh()
    # r2 comes back and writes its routes again; r1 hears the notice while r2 still counts as dead
    presence = PresenceTracker(db, "r2")
    presence.connected(host_id, FakeLink(), None)  # type: ignore[arg-type]  # a fake link
    await presence.flush()
    r1._on_route_notice(f"{CONNECTED}r2 {host_id}")
    assert r1.route(host_id) is None
    while r1._moved.qsize():
        r1._moved.get_nowait()  # acted on while r2 was unreachable: nothing was delivered
    await ReplicaStore(db).heartbeat("r2", "127.0.0.1:7002", datetime.now(UTC))
    await r1._refresh()
    assert r1.route(host_id) == "r2"
    assert r1._moved.get_nowait() == host_id  # moved again now that r2 is reachable
    await r2.stop()
    await r1.stop()


async def test_a_replica_that_cannot_beat_is_fenced_until_it_has_heard_what_the_others_took(db: Any) -> None:
    r1 = registry(db, "r1")
    rejoined: list[bool] = []
    heard = asyncio.Event()

    async def after_silence() -> None:
        rejoined.append(r1.fenced())  # still fenced while letting go of what others adopted
        heard.set()

    r1.on_rejoined(after_silence)
    await r1.start()
    assert not r1.fenced()
    r1._last_beat -= DEAD_AFTER / 2 + timedelta(seconds=1)  # no heartbeat reached the database for that long
    assert r1.fenced()
    r1._reload_now.set()  # its heartbeat loop beats now
    await asyncio.wait_for(heard.wait(), 10)
    await r1.stop()
    assert rejoined == [True] and not r1.fenced()


# -- adoption -----------------------------------------------------------------------------------------


def command(command_id: str) -> Command:
    return Command(
        id=command_id,
        created_at=datetime.now(UTC),
        created_by="operator:admin",
        spec=CommandSpec(argv=("true",)),
        target="--all",
        concurrency_limit=50,
        error_limit=0,
        status=CommandStatus.IN_PROGRESS,
        total=0,
        counts={},
        finished_at=None,
        cancel_requested=False,
    )


async def test_one_survivor_adopts_the_commands_of_a_replica_that_is_gone(db: Any) -> None:
    replicas, commands = ReplicaStore(db), InvocationStore(db)
    now = datetime.now(UTC)
    for replica_id in ("r1", "r2", "r3"):
        await replicas.register(replica_id, f"{replica_id}:7443", now, DEAD_AFTER)
    await commands.create(command("cmd-1"), [], now, owner="r1")
    before = now - DEAD_AFTER

    assert await commands.adopt("r2", ["r1"], before) == []  # r1 is alive: nothing to take

    await age(db, "r1", DEAD_AFTER * 2)
    adopted = await commands.adopt("r2", ["r1"], datetime.now(UTC) - DEAD_AFTER)
    assert [c.id for c in adopted] == ["cmd-1"]
    assert await commands.adopt("r3", ["r1"], datetime.now(UTC) - DEAD_AFTER) == []  # r2 won it
    assert [c.id for c in await commands.in_progress("r2")] == ["cmd-1"]
    assert await commands.in_progress("r1") == []
    assert await commands.owned_elsewhere("r1", ["cmd-1"]) == ["cmd-1"]  # r1, back, must let it go


async def test_a_replica_wrongly_swept_writes_its_routes_again(db: Any) -> None:
    held, gone = await add_host(db, "web-1"), await add_host(db, "web-2")
    presence = PresenceTracker(db, "r1")
    link = FakeLink()
    presence.connected(held, link, None)  # type: ignore[arg-type]  # a fake link
    presence.connected(gone, FakeLink(), None)  # type: ignore[arg-type]  # a fake link
    await presence.flush()
    presence.disconnected(gone, presence.link(gone))  # type: ignore[arg-type]  # its link is gone meanwhile
    await ReplicaStore(db).clear_routes(["r1"], "*r2")  # r2 took r1 for dead: both routes cleared
    assert await ReplicaStore(db).routes() == {}

    presence.reassert([held, gone])
    await presence.flush()
    routes = await ReplicaStore(db).routes()
    assert {h: r.replica_id for h, r in routes.items()} == {held: "r1"}  # only the host still linked here


async def test_only_hosts_whose_connect_was_written_before_a_routes_read_can_miss_from_it(db: Any) -> None:
    written, on_its_way = await add_host(db, "web-1"), await add_host(db, "web-2")
    presence = PresenceTracker(db, "r1")
    presence.connected(written, FakeLink(), None)  # type: ignore[arg-type]  # a fake link
    await presence.flush()
    read_at = time.monotonic()
    presence.connected(on_its_way, FakeLink(), None)  # type: ignore[arg-type]  # not flushed when the read began
    assert presence.linked_and_written_before(read_at) == [written]
    await presence.flush()
    assert sorted(presence.linked_and_written_before(time.monotonic())) == sorted([written, on_its_way])
    presence.disconnected(written, presence.link(written))  # type: ignore[arg-type]  # its link
    assert presence.linked_and_written_before(time.monotonic()) == [on_its_way]


# -- the replica's id and address -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("ctl-a", "ctl-a"),
        ("web_1.example.com", "web_1.example.com"),
        ("bad name/x", "bad-name-x"),
        ("x" * 80, "x" * 64),
    ],
)
def test_the_default_replica_id_is_the_host_name_as_a_certificate_allows_it(
    monkeypatch: pytest.MonkeyPatch, hostname: str, expected: str
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    assert app.default_replica_id() == expected


def test_the_advertised_address_defaults_to_the_listen_address() -> None:
    settings = ControllerSettings(state_dir=Path("/nonexistent"))
    assert app.advertise_address(settings, "127.0.0.1", 7443) == "127.0.0.1:7443"
    assert app.advertise_address(settings, "::1", 7443) == "[::1]:7443"
    given = ControllerSettings(state_dir=Path("/nonexistent"), advertise_address="ctl-a.example.com:7443")
    assert app.advertise_address(given, "0.0.0.0", 9999) == "ctl-a.example.com:7443"
    with pytest.raises(InvalidInput, match="bad address"):
        app.advertise_address(ControllerSettings(state_dir=Path("/x"), advertise_address="nowhere"), "0.0.0.0", 1)
