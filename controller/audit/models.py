"""Audit events as the audit room sees them, and the chain rule every reader applies.

The hash of an event covers its id, time, actor, action, target, outcome, details and the
previous event's hash, in a canonical JSON form (:func:`event_hash`); :class:`ChainCursor` walks
the chain the same way over the database, the export and its verifier.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

GENESIS_HASH = "0" * 64
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
