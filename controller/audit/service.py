"""Append-only audit log; each event carries the SHA-256 of the one before it.

The hash of an event covers its id, time, actor, action, target, outcome, details and the
previous event's hash, in a canonical JSON form, so editing, deleting or reordering any stored
event breaks the chain from that event on. ``verify`` recomputes the chain and names the first
event that does not match.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.controller.store.models import AuditEventRow

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# The advisory lock that serialises appends across controller replicas sharing PostgreSQL.
AUDIT_LOCK_KEY = 0x61756469740A  # "audit"

# The column holds 512 characters; a longer target (a long selector or host list) is shortened
# there and kept whole in the details.
MAX_TARGET = 500

Outcome = Literal["ok", "denied", "refused", "error"]


@dataclass(frozen=True)
class AuditEvent:
    id: int
    time: datetime
    actor: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any]
    previous_hash: str
    hash: str


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    events_checked: int
    first_bad_event_id: int = 0
    problem: str = ""


@dataclass(frozen=True)
class AuditQuery:
    since: datetime | None = None
    actor: str = ""
    action: str = ""
    outcome: str = ""
    limit: int = 100


def event_hash(
    *,
    event_id: int,
    time: datetime,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    details: dict[str, Any],
    previous_hash: str,
) -> str:
    canonical = json.dumps(
        {
            "id": event_id,
            # microsecond precision survives both SQLite and PostgreSQL
            "time": time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": actor,
            "action": action,
            "target": target,
            "outcome": outcome,
            "details": details,
            "previous_hash": previous_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog:
    """Appends and reads audit events.

    Appends are serialised: within one process by a lock, across replicas by a PostgreSQL
    advisory transaction lock (SQLite's single writer does the same job there).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._lock = asyncio.Lock()

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
        async with self._lock, self._sessions() as session, session.begin():
            if session.bind.dialect.name == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
            last = (
                await session.execute(
                    select(AuditEventRow.id, AuditEventRow.hash).order_by(AuditEventRow.id.desc()).limit(1)
                )
            ).first()
            previous_hash = last.hash if last else GENESIS_HASH
            event_id = (last.id + 1) if last else 1
            now = datetime.now(UTC)
            digest = event_hash(
                event_id=event_id,
                time=now,
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                details=details,
                previous_hash=previous_hash,
            )
            row = AuditEventRow(
                id=event_id,
                time=now,
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                details=details,
                previous_hash=previous_hash,
                hash=digest,
            )
            session.add(row)
        log.info(
            "audit %s %s %s -> %s",
            actor,
            action,
            target or "-",
            outcome,
            extra={"audit": {"actor": actor, "action": action, "target": target, "outcome": outcome}},
        )
        return _to_event(row)

    async def list(self, query: AuditQuery) -> list[AuditEvent]:
        stmt = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(max(1, min(query.limit, 10_000)))
        if query.since is not None:
            stmt = stmt.where(AuditEventRow.time >= query.since)
        if query.actor:
            stmt = stmt.where(AuditEventRow.actor == query.actor)
        if query.action:
            stmt = stmt.where(AuditEventRow.action == query.action)
        if query.outcome:
            stmt = stmt.where(AuditEventRow.outcome == query.outcome)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [_to_event(r) for r in reversed(rows)]

    async def verify(self, batch: int = 5000) -> AuditVerification:
        """Recompute the chain from the first event; report the first event that does not match."""
        previous_hash = GENESIS_HASH
        expected_id = 1
        checked = 0
        async with self._sessions() as session:
            while True:
                rows = (
                    (
                        await session.execute(
                            select(AuditEventRow)
                            .where(AuditEventRow.id >= expected_id)
                            .order_by(AuditEventRow.id)
                            .limit(batch)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not rows:
                    return AuditVerification(ok=True, events_checked=checked)
                for row in rows:
                    if row.id != expected_id:
                        return AuditVerification(
                            False, checked, expected_id, f"event {expected_id} is missing (deleted?)"
                        )
                    if row.previous_hash != previous_hash:
                        return AuditVerification(
                            False, checked, row.id, "previous_hash does not match the event before it"
                        )
                    recomputed = event_hash(
                        event_id=row.id,
                        time=row.time,
                        actor=row.actor,
                        action=row.action,
                        target=row.target,
                        outcome=row.outcome,
                        details=row.details,
                        previous_hash=row.previous_hash,
                    )
                    if recomputed != row.hash:
                        return AuditVerification(
                            False, checked, row.id, "event content does not match its hash (edited?)"
                        )
                    previous_hash = row.hash
                    expected_id += 1
                    checked += 1


def _to_event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        time=row.time,
        actor=row.actor,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        details=dict(row.details or {}),
        previous_hash=row.previous_hash,
        hash=row.hash,
    )
