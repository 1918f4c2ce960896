"""Audit events in the database: the one place their rows become :class:`AuditEvent` objects.

Appends are serialised: within one process by a lock, across replicas by a PostgreSQL advisory
transaction lock (SQLite's single writer does the same job there). Each event is indexed by the
hosts its details name (``audit_event_hosts``) in the same transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.controller.audit.actions import ALWAYS_SHOWN_OUTCOMES, READ_ACTIONS
from fleetops.controller.audit.hosts import hosts_concerned
from fleetops.controller.audit.models import GENESIS_HASH, AuditEvent, AuditQuery, event_hash
from fleetops.controller.events.outbox import record_event
from fleetops.controller.store.models import AuditEventHostRow, AuditEventRow, InvocationRow, SessionRow

# The advisory lock that serialises appends across controller replicas sharing PostgreSQL.
AUDIT_LOCK_KEY = 0x61756469740A  # "audit"


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        time=row.time,
        actor=row.actor,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        # as stored: the chain check must see exactly what the database holds
        details=dict(row.details) if isinstance(row.details, dict) else row.details,
        previous_hash=row.previous_hash,
        hash=row.hash,
    )


class AuditStore:
    """The chained events over one database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._lock = asyncio.Lock()

    async def record_verification_failed(self, data: dict[str, Any]) -> None:
        """Write ``fleetops.audit.verification_failed`` in a transaction of its own (a verification
        writes nothing else)."""
        async with self._sessions() as session, session.begin():
            record_event(
                session, "fleetops.audit.verification_failed", subject=f"audit/{data['first_bad_event_id']}", data=data
            )

    async def append(
        self, *, time: datetime, actor: str, action: str, target: str, outcome: str, details: dict[str, Any]
    ) -> AuditEvent:
        """Add the next event of the chain (its id and previous hash follow the head's)."""
        async with self._lock, self._sessions() as session, session.begin():
            if _dialect(session) == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
            last = (
                await session.execute(
                    select(AuditEventRow.id, AuditEventRow.hash).order_by(AuditEventRow.id.desc()).limit(1)
                )
            ).first()
            previous_hash = last.hash if last else GENESIS_HASH
            event_id = (last.id + 1) if last else 1
            digest = event_hash(
                event_id=event_id,
                time=time,
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                details=details,
                previous_hash=previous_hash,
            )
            row = AuditEventRow(
                id=event_id,
                time=time,
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                details=details,
                previous_hash=previous_hash,
                hash=digest,
            )
            session.add(row)
            await session.flush()  # the event before the index rows that refer to it
            # Rows left by a deleted event of this id (deleted behind the database's back: the chain
            # check names that) must not make the append fail.
            await session.execute(delete(AuditEventHostRow).where(AuditEventHostRow.event_id == event_id))
            session.add_all(AuditEventHostRow(event_id=event_id, host=h) for h in hosts_concerned(details))
        return _event(row)

    async def query(self, query: AuditQuery) -> list[AuditEvent]:
        """The newest ``query.limit`` events matching ``query``, oldest first."""
        stmt = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(max(1, min(query.limit, 10_000)))
        if query.since is not None:
            stmt = stmt.where(AuditEventRow.time >= query.since)
        if query.until is not None:
            stmt = stmt.where(AuditEventRow.time < query.until)
        if query.actor:
            stmt = stmt.where(AuditEventRow.actor == query.actor)
        if query.actors:
            stmt = stmt.where(AuditEventRow.actor.in_(query.actors))
        if not query.include_reads and not query.action:
            stmt = stmt.where(
                or_(AuditEventRow.action.not_in(READ_ACTIONS), AuditEventRow.outcome.in_(ALWAYS_SHOWN_OUTCOMES))
            )
        if query.action:
            stmt = stmt.where(AuditEventRow.action == query.action)
        if query.outcome:
            stmt = stmt.where(AuditEventRow.outcome == query.outcome)
        if query.before_id:
            stmt = stmt.where(AuditEventRow.id < query.before_id)
        keys = [k for k in ((query.host,) if isinstance(query.host, str) else query.host) if k]
        if keys:
            stmt = stmt.where(
                or_(
                    AuditEventRow.target.in_(keys),
                    AuditEventRow.id.in_(select(AuditEventHostRow.event_id).where(AuditEventHostRow.host.in_(keys))),
                    AuditEventRow.target.in_(select(InvocationRow.command_id).where(InvocationRow.host_id.in_(keys))),
                    AuditEventRow.target.in_(select(SessionRow.id).where(SessionRow.host_id.in_(keys))),
                )
            )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [_event(r) for r in reversed(rows)]

    async def get(self, event_id: int) -> AuditEvent | None:
        async with self._sessions() as session:
            row = await session.get(AuditEventRow, event_id)
        return None if row is None else _event(row)

    async def events_after(self, after_id: int, limit: int) -> list[AuditEvent]:
        """Up to ``limit`` events with an id above ``after_id``, in id order."""
        stmt = select(AuditEventRow).where(AuditEventRow.id > after_id).order_by(AuditEventRow.id).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [_event(r) for r in rows]

    async def head(self) -> AuditEvent | None:
        async with self._sessions() as session:
            row = (
                await session.execute(select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(1))
            ).scalar_one_or_none()
        return None if row is None else _event(row)

    async def first_recorded_after(self, time: datetime, up_to_id: int) -> int | None:
        """The smallest event id at most ``up_to_id`` whose time is later than ``time``, if any."""
        async with self._sessions() as session:
            found: int | None = (
                await session.execute(
                    select(AuditEventRow.id)
                    .where(AuditEventRow.id <= up_to_id, AuditEventRow.time > time)
                    .order_by(AuditEventRow.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
        return found

    @asynccontextmanager
    async def exclusive(self, key: int) -> AsyncIterator[None]:
        """Hold the cluster-wide lock ``key`` (PostgreSQL advisory transaction lock; nothing on SQLite)."""
        async with self._sessions() as session:
            if _dialect(session) != "postgresql":
                yield
                return
            async with session.begin():
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                yield

    async def from_id(self, first_id: int, batch: int) -> AsyncGenerator[list[AuditEvent]]:
        """Batches of events from ``first_id`` on, in id order, read in one session.

        The caller tells where to go on by the ids it saw: each batch starts after the last one.
        """
        next_id = first_id
        async with self._sessions() as session:
            while True:
                rows = (
                    (
                        await session.execute(
                            select(AuditEventRow)
                            .where(AuditEventRow.id >= next_id)
                            .order_by(AuditEventRow.id)
                            .limit(batch)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not rows:
                    return
                next_id = rows[-1].id + 1
                yield [_event(r) for r in rows]
