"""AuditLog review: the list filters, paging, get, and verify naming an edited row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.common.errors import NotFound
from fleetops.controller.audit.service import AuditLog, AuditQuery
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
