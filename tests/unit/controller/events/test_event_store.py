"""The events outbox and deliveries on real databases (SQLite and PostgreSQL): placing, claiming, retrying, pruning."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, NotFound
from fleetops.controller.events.models import DeliveryStatus, Kind
from fleetops.controller.events.outbox import record_event
from fleetops.controller.events.store import EventStore
from fleetops.controller.store import database
from fleetops.controller.store.models import DeliveryRow, EventRow

from databases import new_postgres_database

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    """On SQLite and on PostgreSQL (the shared ``engine`` fixture)."""
    return database.session_factory(engine)


@pytest.fixture
def store(sessions: Sessions) -> EventStore:
    return EventStore(sessions)


async def nobody(target: str) -> list[str]:
    return []


async def web_hosts(target: str) -> list[str]:
    return ["web-1", "web-2"] if target == "role=web" else []


async def test_an_event_exists_only_if_its_transaction_commits(sessions: Sessions, store: EventStore) -> None:
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            record_event(session, "fleetops.host.offline", subject="host/web-1", data={"host": "web-1"}, host="web-1")
            raise RuntimeError("the change failed")
    assert await store.place(nobody) == []
    async with sessions() as session, session.begin():
        event_id = record_event(session, "fleetops.host.offline", subject="host/web-1", data={}, host="web-1")
    placed = await store.place(nobody)
    assert [(e.event_id, e.position) for e in placed] == [(event_id, 1)]
    assert await store.place(nobody) == []  # placed once


async def test_unknown_types_are_refused_at_the_source(sessions: Sessions) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match="unknown event type"):
            record_event(session, "fleetops.host.exploded", subject="host/x", data={})


async def test_positions_follow_the_order_events_are_found_and_continue_across_batches(store: EventStore) -> None:
    for n in range(3):
        await store.record("fleetops.host.online", subject=f"host/h{n}", data={"n": n})
    first = await store.place(nobody)
    await store.record("fleetops.host.online", subject="host/h3", data={"n": 3})
    second = await store.place(nobody)
    assert [e.position for e in first + second] == [1, 2, 3, 4]
    assert [e.data["n"] for e in await store.events_after(2)] == [2, 3]
    assert await store.top_position() == 4


async def test_deliveries_are_made_for_the_subscriptions_whose_filters_match(store: EventStore) -> None:
    every = await store.create_subscription(
        name="all", kind=Kind.WEBHOOK, endpoint="http://x/", types=[], target="", author="operator:a"
    )
    failures = await store.create_subscription(
        name="failures", kind=Kind.EMAIL, endpoint="a@b.c", types=["fleetops.command.failed"], target="", author="o"
    )
    web = await store.create_subscription(
        name="web", kind=Kind.WEBHOOK, endpoint="http://x/", types=["fleetops.host.*"], target="role=web", author="o"
    )
    assert every.secret.startswith("whsec_") and failures.secret == ""
    await store.record("fleetops.command.failed", subject="command/c1", data={})
    await store.record("fleetops.host.offline", subject="host/web-1", data={})  # no host: the target does not match
    async with store._db() as session, session.begin():
        record_event(session, "fleetops.host.offline", subject="host/web-2", data={}, host="web-2")
        record_event(session, "fleetops.host.offline", subject="host/db-1", data={}, host="db-1")
    await store.record("fleetops.subscription.test", subject="subscription/web", data={}, only_subscription=web.id)
    await store.place(web_hosts)

    async def subjects(name: str) -> list[str]:
        return sorted(d.event.subject for d in await store.deliveries(name, limit=50))

    assert await subjects("all") == ["command/c1", "host/db-1", "host/web-1", "host/web-2"]
    assert await subjects("failures") == ["command/c1"]
    assert await subjects("web") == ["host/web-2", "subscription/web"]
    assert (await store.get_subscription("all")).counts == {"pending": 4}


async def test_names_are_unique_and_deleting_takes_the_history(store: EventStore) -> None:
    await store.create_subscription(name="x", kind=Kind.WEBHOOK, endpoint="http://x/", types=[], target="", author="o")
    with pytest.raises(Conflict, match="'x' exists"):
        await store.create_subscription(name="x", kind=Kind.EMAIL, endpoint="a@b.c", types=[], target="", author="o")
    await store.record("fleetops.host.online", subject="host/a", data={})
    await store.place(nobody)
    await store.delete_subscription("x")
    with pytest.raises(NotFound):
        await store.deliveries("x", limit=5)


async def test_a_claim_hides_a_delivery_until_its_lease_ends(store: EventStore) -> None:
    await store.create_subscription(name="x", kind=Kind.WEBHOOK, endpoint="http://x/", types=[], target="", author="o")
    await store.record("fleetops.host.online", subject="host/a", data={})
    await store.place(nobody)
    claimed = await store.claim_due(10, timedelta(minutes=1))
    assert len(claimed) == 1
    assert await store.claim_due(10, timedelta(minutes=1)) == []  # claimed: a second sender does not get it
    # A sender that died with the claim: once the lease ends the delivery is due again (at least once).
    expired = await store.claim_due(10, timedelta(seconds=-1))
    assert expired == []
    async with store._db() as session, session.begin():
        row = (await session.execute(select(DeliveryRow))).scalar_one()
        row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    again = await store.claim_due(10, timedelta(minutes=1))
    assert [d.id for d in again] == [claimed[0].id]
    assert again[0].event.event_id == claimed[0].event.event_id  # the same idempotency key


async def test_attempts_are_kept_in_order_and_dead_letters_can_be_sent_again(store: EventStore) -> None:
    await store.create_subscription(name="x", kind=Kind.WEBHOOK, endpoint="http://x/", types=[], target="", author="o")
    await store.record("fleetops.host.online", subject="host/a", data={})
    await store.place(nobody)
    (delivery,) = await store.claim_due(10, timedelta(minutes=1))
    now = datetime.now(UTC)
    await store.record_attempt(
        delivery, at=now, duration_ms=5, ok=False, result="HTTP 500", status=DeliveryStatus.PENDING,
        next_attempt_at=now,
    )  # fmt: skip
    (delivery,) = await store.claim_due(10, timedelta(minutes=1))
    await store.record_attempt(
        delivery, at=now, duration_ms=7, ok=False, result="HTTP 410", status=DeliveryStatus.DEAD, next_attempt_at=now
    )
    (shown,) = await store.deliveries("x", limit=5)
    assert shown.status is DeliveryStatus.DEAD and shown.attempts == 2 and shown.last_error == "HTTP 410"
    assert [(a.number, a.result) for a in shown.attempt_log] == [(1, "HTTP 500"), (2, "HTTP 410")]
    assert await store.claim_due(10, timedelta(minutes=1)) == []  # dead: never sent by itself
    with pytest.raises(NotFound, match="no dead delivery 999"):
        await store.requeue("x", 999)
    assert await store.requeue("x") == 1
    (requeued,) = await store.claim_due(10, timedelta(minutes=1))
    assert requeued.id == shown.id and requeued.attempts == 2


async def test_pruning_keeps_what_a_delivery_still_waits_for(sessions: Sessions, store: EventStore) -> None:
    await store.create_subscription(
        name="x", kind=Kind.WEBHOOK, endpoint="http://x/", types=["fleetops.command.*"], target="", author="o"
    )
    await store.record("fleetops.host.online", subject="host/a", data={})
    await store.record("fleetops.command.failed", subject="command/c", data={})
    await store.record("fleetops.host.online", subject="host/unplaced", data={})
    await store.place(nobody)
    await store.record("fleetops.host.online", subject="host/later", data={})  # not placed yet: kept
    assert await store.prune(datetime.now(UTC) + timedelta(seconds=1)) == 2  # host/a and host/unplaced
    async with sessions() as session:
        left = sorted((await session.execute(select(EventRow.subject))).scalars())
    assert left == ["command/c", "host/later"]


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    return new_postgres_database(postgres_server)


async def test_replicas_placing_and_claiming_at_once_share_the_work(postgres_url: str) -> None:
    """PostgreSQL only: replicas share it (SQLite serves one controller, with one dispatcher)."""
    engine = database.create_engine(postgres_url)
    await database.ensure_schema(engine, migrate=True)
    try:
        await _share_the_work([EventStore(database.session_factory(engine)) for _ in range(4)])
    finally:
        await engine.dispose()


async def _share_the_work(stores: list[EventStore]) -> None:
    await stores[0].create_subscription(
        name="x", kind=Kind.WEBHOOK, endpoint="http://x/", types=[], target="", author="o"
    )
    for n in range(40):
        await stores[0].record("fleetops.host.online", subject=f"host/h{n}", data={})
    placed = await asyncio.gather(*(s.place(nobody) for s in stores))
    positions = sorted(e.position for batch in placed for e in batch if e.position is not None)
    assert positions == list(range(1, 41))  # each placed once, one order without gaps
    claimed = await asyncio.gather(*(s.claim_due(15, timedelta(minutes=1)) for s in stores))
    ids = [d.id for batch in claimed for d in batch]
    assert len(ids) == len(set(ids)) == 40  # no delivery claimed twice
