"""AuditLog review: the list filters, paging, get, and verify naming an edited row."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.common.errors import NotFound
from fleetops.controller.audit.models import AuditQuery
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.store import database
from fleetops.controller.store.models import SessionRow


async def seed(audit: AuditLog) -> None:
    await audit.record(actor="operator:alice", action="hosts.tag", target="h-0001")  # 1
    await audit.record(actor="operator:bob", action="hosts.show", target="web-1")  # 2
    await audit.record(  # 3
        actor="operator:alice", action="session.start", target="s-1", details={"host": "web-1", "host_id": "h-0001"}
    )
    await audit.record(actor="operator:alice", action="session.attach", target="s-1")  # 4
    await audit.record(actor="host:h-0002", action="agent.connect", target="h-0002", outcome="refused")  # 5
    await audit.record(actor="operator:bob", action="host.register", target="h-0003", details={"hostname": "db-1"})  # 6
    await audit.record(actor="operator:bob", action="hosts.list", details={"hostx": "web-1"})  # 7


def ids(events: list) -> list[int]:
    return [e.id for e in events]


async def test_list_filters_and_pages_newest_first(audit: AuditLog) -> None:
    await seed(audit)
    assert ids(await audit.list(AuditQuery())) == [1, 2, 3, 4, 5, 6, 7]
    assert ids(await audit.list(AuditQuery(actor="operator:alice"))) == [1, 3, 4]
    assert ids(await audit.list(AuditQuery(actor="operator:alice", action="session.start"))) == [3]
    assert ids(await audit.list(AuditQuery(outcome="refused"))) == [5]
    # The newest page, then the page before it.
    assert ids(await audit.list(AuditQuery(limit=3))) == [5, 6, 7]
    assert ids(await audit.list(AuditQuery(limit=3, before_id=5))) == [2, 3, 4]
    assert ids(await audit.list(AuditQuery(limit=3, before_id=2))) == [1]


async def test_list_by_time_window(audit: AuditLog) -> None:
    await seed(audit)
    now = datetime.now(UTC)
    assert ids(await audit.list(AuditQuery(since=now - timedelta(hours=1)))) == [1, 2, 3, 4, 5, 6, 7]
    assert ids(await audit.list(AuditQuery(since=now + timedelta(seconds=1)))) == []
    assert ids(await audit.list(AuditQuery(until=now - timedelta(hours=1)))) == []
    third = await audit.get(3)
    assert ids(await audit.list(AuditQuery(until=third.time))) == [1, 2]  # until is exclusive
    assert ids(await audit.list(AuditQuery(since=third.time, until=(await audit.get(5)).time))) == [3, 4]


async def test_list_by_host_matches_target_details_and_sessions(audit: AuditLog, engine: AsyncEngine) -> None:
    await seed(audit)
    async with database.session_factory(engine)() as session, session.begin():
        session.add(
            SessionRow(
                id="s-1",
                host_id="h-0001",
                host_name="web-1",
                operator="operator:alice",
                cols=80,
                rows=24,
                broker="test:1",
                state="ended",
                started_at=datetime.now(UTC),
            )
        )
    # By name and id (as the RPC layer passes them): the target, the details, the session's events.
    assert ids(await audit.list(AuditQuery(host=("web-1", "h-0001")))) == [1, 2, 3, 4]
    assert ids(await audit.list(AuditQuery(host=("db-1", "h-0003")))) == [6]
    assert ids(await audit.list(AuditQuery(host=("web-1", "h-0001"), actor="operator:alice"))) == [1, 3, 4]
    assert ids(await audit.list(AuditQuery(host=("nothing",)))) == []


async def test_get(audit: AuditLog) -> None:
    await seed(audit)
    event = await audit.get(3)
    assert (event.action, event.details) == ("session.start", {"host": "web-1", "host_id": "h-0001"})
    with pytest.raises(NotFound, match="no audit event 99"):
        await audit.get(99)


async def test_verify_names_the_edited_row(audit: AuditLog, engine: AsyncEngine) -> None:
    await seed(audit)
    result = await audit.verify()
    assert result.ok and result.events_checked == 7 and result.last_hash == (await audit.get(7)).hash
    async with engine.begin() as conn:
        await conn.execute(text("""UPDATE audit_events SET details = '{"hostname": "evil"}' WHERE id = 6"""))
    broken = await audit.verify()
    assert (broken.ok, broken.first_bad_event_id, broken.events_checked) == (False, 6, 5)
    assert "edited" in broken.problem


async def test_verify_names_a_deleted_row(audit: AuditLog, engine: AsyncEngine) -> None:
    await seed(audit)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_events WHERE id = 4"))
    broken = await audit.verify()
    assert (broken.ok, broken.first_bad_event_id) == (False, 4)
    assert "missing" in broken.problem


async def test_list_by_host_finds_the_hosts_an_event_names_in_its_details(audit: AuditLog) -> None:
    await audit.record(  # 1: a refused run on a selector: web-1 is named only in the decision
        actor="operator:alice",
        action="command.run",
        outcome="denied",
        details={"selector": "env=prod", "authz": [{"allowed": False, "hosts": 2, "denied_hosts": ["web-1"]}]},
    )
    await audit.record(  # 2: a run whose selector resolved to web-1 and db-1
        actor="operator:alice", action="command.run", target="cmd-1", details={"hosts": ["db-1", "web-1"]}
    )
    await audit.record(  # 3: a window task that left web-1 out
        actor="operator:bob", action="window.task.run", target="w/t-1", details={"refused_hosts": ["web-1"]}
    )
    await audit.record(actor="operator:bob", action="command.run", details={"hosts": ["db-1"]})  # 4
    await audit.record(actor="operator:bob", action="hosts.list", details={"hosts": 3, "note": "web-1"})  # 5
    assert ids(await audit.list(AuditQuery(host=("web-1", "h-0001")))) == [1, 2, 3]
    assert ids(await audit.list(AuditQuery(host=("db-1",)))) == [2, 4]
    assert ids(await audit.list(AuditQuery(host=("web-1",), actor="operator:alice", outcome="denied"))) == [1]


async def test_reads_are_left_out_unless_asked_for_or_refused(audit: AuditLog) -> None:
    await seed(audit)  # 2 (hosts.show) and 7 (hosts.list) are reads
    await audit.record(actor="operator:eve", action="hosts.show", target="web-1", outcome="denied")  # 8
    await audit.record(actor="operator:eve", action="command.show", target="cmd-9", outcome="error")  # 9
    assert ids(await audit.list(AuditQuery(include_reads=False))) == [1, 3, 4, 5, 6, 8]
    assert ids(await audit.list(AuditQuery(include_reads=True))) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    # Asking for a read action by name shows it.
    assert ids(await audit.list(AuditQuery(include_reads=False, action="hosts.show"))) == [2, 8]


async def test_list_by_any_of_several_actors(audit: AuditLog) -> None:
    await seed(audit)
    await audit.record(actor="host:h-0001", action="session.end", target="s-1")  # 8
    assert ids(await audit.list(AuditQuery(actors=("alice", "operator:alice", "host:h-0001")))) == [1, 3, 4, 8]
    assert ids(await audit.list(AuditQuery(actors=("operator:carol",)))) == []


async def test_the_host_index_adds_nothing_the_chain_does_not_cover(audit: AuditLog, engine: AsyncEngine) -> None:
    event = await audit.record(
        actor="operator:alice", action="command.run", details={"hosts": ["web-1"], "authz": [{"denied_hosts": ["x"]}]}
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT event_id, host FROM audit_event_hosts ORDER BY host"))).all()
    assert [tuple(r) for r in rows] == [(event.id, "web-1"), (event.id, "x")]
    assert (await audit.verify()).ok
    # Deleting the event takes its index rows with it (the chain check names the gap).
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": event.id})
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM audit_event_hosts"))).scalar_one() == 0


async def test_migration_indexes_the_events_recorded_before_it(database_url: str) -> None:
    engine = database.create_engine(database_url)
    try:
        await database.upgrade(engine, "0007")
        async with engine.begin() as conn:
            for i, details in enumerate(
                [{"host": "web-1"}, {"authz": [{"denied_hosts": ["web-2", "web-1"]}]}, {"hosts": 4}, "not a dict"],
                start=1,
            ):
                await conn.execute(
                    text(
                        "INSERT INTO audit_events (id, time, actor, action, target, outcome, details, previous_hash,"
                        " hash) VALUES (:i, :t, 'operator:a', 'command.run', '', 'ok', :d, '', :h)"
                    ),
                    {"i": i, "t": datetime.now(UTC), "d": json.dumps(details), "h": f"{i:064x}"},
                )
        await database.upgrade(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT event_id, host FROM audit_event_hosts"))).all()
        assert sorted(tuple(r) for r in rows) == [(1, "web-1"), (2, "web-1"), (2, "web-2")]
    finally:
        await engine.dispose()


async def test_an_event_deleted_behind_the_databases_back_does_not_block_appends(
    audit: AuditLog, engine: AsyncEngine
) -> None:
    await audit.record(actor="operator:alice", action="command.run", details={"hosts": ["web-1"]})
    async with engine.begin() as conn:  # as a raw client without foreign keys would
        if engine.dialect.name == "sqlite":
            await conn.execute(text("PRAGMA foreign_keys=OFF"))
        else:
            await conn.execute(text("SET session_replication_role = replica"))
        await conn.execute(text("DELETE FROM audit_events WHERE id = 1"))
    again = await audit.record(actor="operator:bob", action="command.run", details={"hosts": ["web-1", "db-1"]})
    assert again.id == 1
    assert ids(await audit.list(AuditQuery(host=("db-1",)))) == [1]
