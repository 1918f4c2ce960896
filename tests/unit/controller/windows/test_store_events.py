"""A window execution's events: started or missed with the claim, succeeded or failed with the end.

The real window store on SQLite and PostgreSQL: the replica that loses a claim, a second finish,
and a skipped occurrence write no event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.controller.store import database
from fleetops.controller.store.models import WindowTaskExecutionRow
from fleetops.controller.windows.models import ExecutionStatus
from fleetops.controller.windows.store import NewExecution, WindowStore

from events import stored_events

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def occurrence(id: str, status: ExecutionStatus, scheduled: datetime = T0, reason: str = "") -> NewExecution:
    return NewExecution(
        id=id, window="patch-night", scheduled_at=scheduled, ends_at=scheduled + timedelta(hours=2),
        cutoff_at=scheduled + timedelta(hours=1), cutoff_behavior="continue", controller="r1", status=status,
        reason=reason, started_at=scheduled if status is ExecutionStatus.IN_PROGRESS else None,
        lease_until=scheduled + timedelta(minutes=1) if status is ExecutionStatus.IN_PROGRESS else None,
    )  # fmt: skip


async def events(engine: AsyncEngine) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.type, e.subject, e.data) for e in await stored_events(engine, "fleetops.window.")]


async def test_started_then_failed_once(engine: AsyncEngine) -> None:
    db = database.session_factory(engine)
    store = WindowStore(db)
    assert await store.claim(occurrence("we-1", ExecutionStatus.IN_PROGRESS))
    assert not await store.claim(occurrence("we-2", ExecutionStatus.IN_PROGRESS))  # another replica lost
    async with db.begin() as session:
        for task_id, status in (("t1", "success"), ("t2", "failed"), ("t3", "failed")):
            session.add(
                WindowTaskExecutionRow(execution_id="we-1", task_id=task_id, priority=1, type="command", status=status)
            )
    assert await store.finish("we-1", ExecutionStatus.FAILED, "task t2 failed", T0)
    assert await store.finish("we-1", ExecutionStatus.FAILED, "again", T0)  # ended already: no event
    base = {"window": "patch-night", "execution_id": "we-1", "scheduled_at": T0.isoformat()}
    assert await events(engine) == [
        (
            "fleetops.window.execution.started",
            "window/patch-night",
            {**base, "status": "in_progress", "reason": "", "tasks": 0},
        ),
        (
            "fleetops.window.execution.failed",
            "window/patch-night",
            {**base, "status": "failed", "reason": "task t2 failed", "task_counts": {"failed": 2, "success": 1}},
        ),
    ]


async def test_succeeded_missed_and_skipped(engine: AsyncEngine) -> None:
    store = WindowStore(database.session_factory(engine))
    assert await store.claim(occurrence("we-1", ExecutionStatus.IN_PROGRESS))
    assert await store.finish("we-1", ExecutionStatus.SUCCESS, "", T0)
    later = T0 + timedelta(days=1)
    assert await store.claim(occurrence("we-2", ExecutionStatus.MISSED, later, "no controller was running"))
    assert await store.claim(occurrence("we-3", ExecutionStatus.SKIPPED_OVERLAPPING, later + timedelta(days=1)))
    found = await events(engine)
    assert [(t, d["execution_id"]) for t, _, d in found] == [
        ("fleetops.window.execution.started", "we-1"),
        ("fleetops.window.execution.succeeded", "we-1"),
        ("fleetops.window.execution.missed", "we-2"),
    ]
    assert found[2][2]["reason"] == "no controller was running" and found[2][2]["status"] == "missed"
