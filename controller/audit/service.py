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

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import delete, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import NotFound
from fleetops.controller.audit.actions import ALWAYS_SHOWN_OUTCOMES, READ_ACTIONS
from fleetops.controller.audit.hosts import hosts_concerned
from fleetops.controller.store.models import AuditEventHostRow, AuditEventRow, InvocationRow, SessionRow

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# The advisory lock that serialises appends across controller replicas sharing PostgreSQL.
AUDIT_LOCK_KEY = 0x61756469740A  # "audit"
# The hash covers the time in this form: microsecond precision survives both SQLite and PostgreSQL.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

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
    # Filled in by the export verifier: how many chunks were read, and the hash the chain ends on.
    chunks: int = 0
    last_hash: str = ""
    # The hash of the event the caller asked the export verifier to note (a checkpoint's head).
    marked_hash: str = ""


@dataclass(frozen=True)
class AuditQuery:
    """Which events ``AuditLog.list`` returns: the newest ``limit`` matching all filters given.

    ``since`` is inclusive, ``until`` exclusive. ``actor`` matches exactly; ``actors`` matches
    any of them (the RPC layer reads a bare name as the operator and the host of that name).
    ``host`` holds the names/ids of one host (the RPC layer resolves a name to both): an event
    matches when its target is one of them, when its details name one
    (:func:`~fleetops.controller.audit.hosts.hosts_concerned`, indexed in ``audit_event_hosts``),
    or when its target is a command with an invocation on the host or a session on the host (both
    indexed by host id). ``before_id`` pages backwards: only events with a smaller id.
    Without ``include_reads``, reads (:mod:`fleetops.controller.audit.actions`) are left out unless
    refused or asked for by ``action``.
    """

    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""
    actors: tuple[str, ...] = ()
    action: str = ""
    outcome: str = ""
    host: tuple[str, ...] = ()
    before_id: int = 0
    limit: int = 100
    include_reads: bool = True


def format_time(time: datetime) -> str:
    """An event's time as the hash covers it (and as the export writes it): ISO 8601 UTC, microseconds."""
    return time.astimezone(UTC).strftime(TIME_FORMAT)


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
            "time": format_time(time),
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


@dataclass
class ChainCursor:
    """A walk along the chain: the id and previous hash the next event must have.

    Shared by ``AuditLog.verify`` (over the database) and the export and its verifier (over the
    object store), so all three apply the same rules.
    """

    next_id: int = 1
    previous_hash: str = GENESIS_HASH
    checked: int = 0

    def step(self, event: AuditEvent) -> tuple[int, str] | None:
        """Check ``event`` as the next one; advance past it, or return (bad event id, problem)."""
        if event.id > self.next_id:
            return self.next_id, f"event {self.next_id} is missing (deleted?)"
        if event.id < self.next_id:
            return event.id, f"event {event.id} appears again after event {self.next_id - 1} (out of order?)"
        if event.previous_hash != self.previous_hash:
            return event.id, "previous_hash does not match the event before it"
        recomputed = event_hash(
            event_id=event.id,
            time=event.time,
            actor=event.actor,
            action=event.action,
            target=event.target,
            outcome=event.outcome,
            details=event.details,
            previous_hash=event.previous_hash,
        )
        if recomputed != event.hash:
            return event.id, "event content does not match its hash (edited?)"
        self.previous_hash = event.hash
        self.next_id += 1
        self.checked += 1
        return None


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
            await session.flush()  # the event before the index rows that refer to it
            # Rows left by a deleted event of this id (deleted behind the database's back: the chain
            # check names that) must not make the append fail.
            await session.execute(delete(AuditEventHostRow).where(AuditEventHostRow.event_id == event_id))
            session.add_all(AuditEventHostRow(event_id=event_id, host=h) for h in hosts_concerned(details))
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
        return [_to_event(r) for r in reversed(rows)]

    async def get(self, event_id: int) -> AuditEvent:
        """One event by id.

        Raises:
            NotFound: there is no event ``event_id``.
        """
        async with self._sessions() as session:
            row = await session.get(AuditEventRow, event_id)
        if row is None:
            raise NotFound(f"no audit event {event_id}", "see opsctl audit list")
        return _to_event(row)

    async def events_after(self, after_id: int, limit: int) -> list[AuditEvent]:
        """Up to ``limit`` events with an id above ``after_id``, in id order (what the export reads)."""
        stmt = select(AuditEventRow).where(AuditEventRow.id > after_id).order_by(AuditEventRow.id).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [_to_event(r) for r in rows]

    async def head(self) -> AuditEvent | None:
        """The newest event (the chain head), or ``None`` while the log is empty."""
        async with self._sessions() as session:
            row = (
                await session.execute(select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(1))
            ).scalar_one_or_none()
        return None if row is None else _to_event(row)

    async def first_recorded_after(self, time: datetime, up_to_id: int) -> int | None:
        """The smallest event id at most ``up_to_id`` whose time is later than ``time``, if any.

        A checkpoint taken at ``time`` covering events up to ``up_to_id`` means no such event
        can exist honestly: one that does took the id of an event deleted since.
        """
        async with self._sessions() as session:
            found = (
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
        """Hold the cluster-wide lock ``key`` for the duration of the block.

        A PostgreSQL advisory transaction lock, so replicas sharing the database take turns (the
        block keeps one connection and an open transaction); on SQLite, which serves one
        controller, there is nothing to take.
        """
        async with self._sessions() as session:
            if session.bind.dialect.name != "postgresql":
                yield
                return
            async with session.begin():
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                yield

    async def verify(self, batch: int = 5000) -> AuditVerification:
        """Recompute the chain from the first event; report the first event that does not match."""
        cursor = ChainCursor()
        async with self._sessions() as session:
            while True:
                rows = (
                    (
                        await session.execute(
                            select(AuditEventRow)
                            .where(AuditEventRow.id >= cursor.next_id)
                            .order_by(AuditEventRow.id)
                            .limit(batch)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not rows:
                    return AuditVerification(ok=True, events_checked=cursor.checked, last_hash=cursor.previous_hash)
                for row in rows:
                    bad = cursor.step(_to_event(row))
                    if bad is not None:
                        return AuditVerification(False, cursor.checked, bad[0], bad[1])


def _to_event(row: AuditEventRow) -> AuditEvent:
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
