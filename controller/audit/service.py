"""Append-only audit log; each event carries the SHA-256 of the one before it.

The hash of an event covers its id, time, actor, action, target, outcome, details and the
previous event's hash, in a canonical JSON form, so editing, deleting or reordering any stored
event breaks the chain from that event on. ``verify`` recomputes the chain and names the first
event that does not match.

The log is also copied to the object store as JSON Lines chunks that verify on their own: see
:mod:`fleetops.controller.audit.export`.

Each event is also indexed by the hosts its details name (``audit_event_hosts``, see
:mod:`fleetops.controller.audit.hosts`), written in the same transaction; the index is derived
from the hashed details, so it adds nothing the chain does not cover.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import NotFound
from fleetops.controller.audit.models import (
    MAX_TARGET,
    AuditEvent,
    AuditQuery,
    AuditVerification,
    ChainCursor,
    Outcome,
)
from fleetops.controller.audit.store import AuditStore

log = logging.getLogger(__name__)


class AuditLog:
    """Appends and reads audit events (appends are serialised: see :mod:`.store`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._store = AuditStore(sessions)

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target: str = "",
        outcome: Outcome = "ok",
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        details = dict(details or {})
        if len(target) > MAX_TARGET:
            details.setdefault("target", target)
            target = target[: MAX_TARGET - 3] + "..."
        event = await self._store.append(
            time=datetime.now(UTC), actor=actor, action=action, target=target, outcome=outcome, details=details
        )
        log.info(
            "audit %s %s %s -> %s",
            actor,
            action,
            target or "-",
            outcome,
            extra={"audit": {"actor": actor, "action": action, "target": target, "outcome": outcome}},
        )
        return event

    async def list(self, query: AuditQuery) -> list[AuditEvent]:
        """The newest ``query.limit`` events matching ``query``, oldest first."""
        return await self._store.query(query)

    async def get(self, event_id: int) -> AuditEvent:
        """One event by id.

        Raises:
            NotFound: there is no event ``event_id``.
        """
        event = await self._store.get(event_id)
        if event is None:
            raise NotFound(f"no audit event {event_id}", "see opsctl audit list")
        return event

    async def events_after(self, after_id: int, limit: int) -> builtins.list[AuditEvent]:
        """Up to ``limit`` events with an id above ``after_id``, in id order (what the export reads)."""
        return await self._store.events_after(after_id, limit)

    async def head(self) -> AuditEvent | None:
        """The newest event (the chain head), or ``None`` while the log is empty."""
        return await self._store.head()

    async def first_recorded_after(self, time: datetime, up_to_id: int) -> int | None:
        """The smallest event id at most ``up_to_id`` whose time is later than ``time``, if any.

        A checkpoint taken at ``time`` covering events up to ``up_to_id`` means no such event
        can exist honestly: one that does took the id of an event deleted since.
        """
        return await self._store.first_recorded_after(time, up_to_id)

    @asynccontextmanager
    async def exclusive(self, key: int) -> AsyncIterator[None]:
        """Hold the cluster-wide lock ``key`` for the duration of the block.

        A PostgreSQL advisory transaction lock, so replicas sharing the database take turns (the
        block keeps one connection and an open transaction); on SQLite, which serves one
        controller, there is nothing to take.
        """
        async with self._store.exclusive(key):
            yield

    async def verify(self, batch: int = 5000) -> AuditVerification:
        """Recompute the chain from the first event; report the first event that does not match.

        A chain that does not verify also gets a ``fleetops.audit.verification_failed`` event.
        """
        cursor = ChainCursor()
        result: AuditVerification | None = None
        # Closed before the event is written: its reading session must not outlive the walk.
        async with aclosing(self._store.from_id(cursor.next_id, batch)) as batches:
            async for events in batches:
                for event in events:
                    bad = cursor.step(event)
                    if bad is not None:
                        result = AuditVerification(False, cursor.checked, bad[0], bad[1])
                        break
                if result is not None:
                    break
        if result is not None:
            await self.verification_failed(result, "verify")
            return result
        return AuditVerification(ok=True, events_checked=cursor.checked, last_hash=cursor.previous_hash)

    async def verification_failed(self, result: AuditVerification, by: str) -> None:
        """Write the ``fleetops.audit.verification_failed`` event of *result* (found by *by*:
        ``verify`` for the chain in the database, ``export`` for the periodic export)."""
        await self._store.record_verification_failed(
            {
                "first_bad_event_id": result.first_bad_event_id,
                "reason": result.problem[:500],
                "events_checked": result.events_checked,
                "by": by,
            }
        )
