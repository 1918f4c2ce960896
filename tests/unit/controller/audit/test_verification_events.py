"""``fleetops.audit.verification_failed``: a verification that fails writes it in a transaction of its own.

``opsctl audit verify`` (``AuditLog.verify``) writes one per failed verification; the periodic
export one per problem while the controller runs, not one per pass. SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.controller.audit.export import AuditExporter
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.objects.local import LocalDirectoryStore

from events import stored_events


async def record(audit: AuditLog, n: int) -> None:
    for i in range(n):
        await audit.record(actor="operator:alice", action="command.run", target=f"c-{i}")


async def test_a_verification_that_passes_writes_nothing_and_one_that_fails_its_event(
    audit: AuditLog, engine: AsyncEngine
) -> None:
    await record(audit, 5)
    assert (await audit.verify()).ok
    assert await stored_events(engine) == []
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_events SET target = 'c-evil' WHERE id = 3"))
    assert not (await audit.verify()).ok
    (event,) = await stored_events(engine)
    assert (event.type, event.subject, event.host) == ("fleetops.audit.verification_failed", "audit/3", None)
    reason = event.data.pop("reason")
    assert "edited" in reason
    assert event.data == {"first_bad_event_id": 3, "events_checked": 2, "by": "verify"}


async def test_the_periodic_export_reports_a_problem_once(
    audit: AuditLog, engine: AsyncEngine, objects: LocalDirectoryStore
) -> None:
    await record(audit, 5)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_events SET target = 'c-evil' WHERE id = 4"))
    exporter = AuditExporter(audit, objects, chunk_events=10)
    for _ in range(3):
        result = await exporter.run_once()
        assert result is not None and result.bad_event_id == 4
    (event,) = await stored_events(engine)
    assert event.data["by"] == "export" and event.data["first_bad_event_id"] == 4
    assert event.data["events_checked"] == 3
