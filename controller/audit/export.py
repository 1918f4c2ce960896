"""The audit log's copy in the object store: JSON Lines chunks that verify on their own.

Layout (``prefix`` defaults to ``audit/``)::

    audit/000000000001-000000000042.jsonl
    audit/000000000043-000000000057.jsonl
    ...

A chunk holds a run of consecutive events, named by its first and last event id (zero-padded,
so the key order is the chain order). Its first line is a header, every further line one event::

    {"chunk": "000000000001-000000000042.jsonl", "end_hash": "...", "events": 42, "first_id": 1,
     "format": "fleetops-audit-export/1", "last_id": 42, "previous_hash": "000...000"}
    {"action": "controller.start", "actor": "controller:c1", "details": {...}, "hash": "...", "id": 1,
     "outcome": "ok", "previous_hash": "000...000", "target": "", "time": "2025-01-02T03:04:05.123456Z"}

An event line carries exactly what the hash covers (see
:func:`fleetops.controller.audit.service.event_hash`) plus the hash, so :func:`verify_export`
needs nothing but the store: it lists the chunks in order, recomputes every event's hash, checks
each chunk starts on the hash the one before it ends on (the first one on ``GENESIS_HASH``) and
that the ids run on without gaps or overlaps. Objects under the prefix whose names are not chunk
names are ignored.

The exporter never writes out of order: it picks up after the newest chunk in the store (no
table keeps its progress), checks each event against the chain before writing it, and stops at
the first one that does not fit (an edited or missing row; ``opsctl audit verify`` names it).
A chunk is one atomic ``put``, so an outage leaves the store at a chunk boundary and the next
run continues from there. Replicas sharing PostgreSQL take turns through an advisory lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleetops.common.errors import Conflict, FleetopsError, InvalidInput, NotFound, Unavailable
from fleetops.controller.audit.models import GENESIS_HASH, AuditEvent, AuditVerification, ChainCursor, format_time
from fleetops.controller.audit.periodic import PeriodicPass
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.objects.interfaces import ObjectStore
from fleetops.controller.objects.keys import validate_prefix

log = logging.getLogger(__name__)

EXPORT_FORMAT = "fleetops-audit-export/1"
DEFAULT_PREFIX = "audit/"
DEFAULT_CHUNK_EVENTS = 1000
DEFAULT_INTERVAL = 60.0
# Replicas sharing PostgreSQL export one at a time (a different key from the append lock).
EXPORT_LOCK_KEY = 0x61756469740B
_CHUNK_NAME = re.compile(r"^(\d{12})-(\d{12})\.jsonl$")
_EVENT_FIELDS = frozenset({"id", "time", "actor", "action", "target", "outcome", "details", "previous_hash", "hash"})


@dataclass(frozen=True)
class Chunk:
    key: str
    first_id: int
    last_id: int

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ExportResult:
    """What one export pass did, and where the store's copy now ends.

    ``problem`` is set when the pass stopped at an event that does not continue the chain
    (``bad_event_id``); everything before it was exported.
    """

    chunks: int
    events: int
    last_event_id: int
    last_hash: str
    bad_event_id: int = 0
    problem: str = ""


def chunk_name(first_id: int, last_id: int) -> str:
    return f"{first_id:012d}-{last_id:012d}.jsonl"


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_record(event: AuditEvent) -> dict[str, Any]:
    """One event as an export line: the fields the hash covers, and the hashes."""
    return {
        "id": event.id,
        "time": format_time(event.time),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "details": event.details,
        "previous_hash": event.previous_hash,
        "hash": event.hash,
    }


def event_from_record(doc: Any) -> AuditEvent:
    """Parse an export line back into an event.

    Raises:
        ValueError: not an event object, a field is missing, extra or of the wrong type, or the
            time is not in the form the hash covers.
    """
    if not isinstance(doc, dict):
        raise ValueError("the line is not a JSON object")
    if set(doc) != _EVENT_FIELDS:
        missing, extra = sorted(_EVENT_FIELDS - set(doc)), sorted(set(doc) - _EVENT_FIELDS)
        raise ValueError(f"fields differ from an event's (missing {missing}, unexpected {extra})")
    if not isinstance(doc["id"], int) or isinstance(doc["id"], bool):
        raise ValueError("id is not an integer")
    for field in ("time", "actor", "action", "target", "outcome", "previous_hash", "hash"):
        if not isinstance(doc[field], str):
            raise ValueError(f"{field} is not a string")
    time = datetime.fromisoformat(doc["time"])
    if time.tzinfo is None or format_time(time) != doc["time"]:
        raise ValueError(f"time {doc['time']!r} is not in the canonical form (UTC, microseconds, Z)")
    return AuditEvent(
        id=doc["id"],
        time=time,
        actor=doc["actor"],
        action=doc["action"],
        target=doc["target"],
        outcome=doc["outcome"],
        details=doc["details"],
        previous_hash=doc["previous_hash"],
        hash=doc["hash"],
    )


def encode_chunk(events: list[AuditEvent]) -> bytes:
    """A chunk's content: the header line, then one line per event (``events`` consecutive)."""
    first, last = events[0], events[-1]
    header = {
        "format": EXPORT_FORMAT,
        "chunk": chunk_name(first.id, last.id),
        "first_id": first.id,
        "last_id": last.id,
        "events": len(events),
        "previous_hash": first.previous_hash,
        "end_hash": last.hash,
    }
    lines = [_dumps(header)] + [_dumps(event_record(e)) for e in events]
    return ("\n".join(lines) + "\n").encode()


def _key_prefix(prefix: str) -> str:
    trimmed = validate_prefix(prefix)
    return f"{trimmed}/" if trimmed else ""


async def list_chunks(objects: ObjectStore, prefix: str = DEFAULT_PREFIX) -> list[Chunk]:
    """The chunks under ``prefix``, in chain order (other objects there are ignored).

    Raises:
        Unavailable: the store is unreachable.
    """
    base = _key_prefix(prefix)
    chunks = []
    for key in await objects.list(base):
        rest = key[len(base) :]
        m = _CHUNK_NAME.match(rest)
        if m and key.startswith(base):
            chunks.append(Chunk(key, int(m.group(1)), int(m.group(2))))
    return sorted(chunks, key=lambda c: (c.first_id, c.last_id))


def _parse_header(chunk: Chunk, line: str) -> dict[str, Any]:
    """The header line of ``chunk``; ValueError when it is not one or disagrees with the name."""
    try:
        header = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise ValueError(f"its first line is not a {EXPORT_FORMAT} header")
    if header.get("chunk") != chunk.name:
        raise ValueError(f"its header names another chunk ({header.get('chunk')!r})")
    if header.get("first_id") != chunk.first_id or header.get("last_id") != chunk.last_id:
        raise ValueError("its header's first_id/last_id differ from its name")
    if header.get("events") != chunk.last_id - chunk.first_id + 1:
        raise ValueError("its header's event count does not match its id range")
    for field in ("previous_hash", "end_hash"):
        if not isinstance(header.get(field), str):
            raise ValueError(f"its header has no {field}")
    return header


async def verify_export(objects: ObjectStore, prefix: str = DEFAULT_PREFIX, mark: int = 0) -> AuditVerification:
    """Verify the exported chain using the object store alone.

    Returns the number of events checked and chunks read; on failure the first event that does
    not verify (for a missing chunk: the first missing id) and why. ``marked_hash`` is the hash
    of event ``mark`` when the export verifies up to it (compared with a checkpoint's head).

    Raises:
        Unavailable: the store is unreachable.
    """
    cursor = ChainCursor()
    marked = ""
    chunks = await list_chunks(objects, prefix)

    def bad(event_id: int, problem: str, read: int) -> AuditVerification:
        return AuditVerification(False, cursor.checked, event_id, problem, chunks=read)

    for index, chunk in enumerate(chunks):
        where = f"chunk {chunk.key}"
        if chunk.last_id < chunk.first_id:
            return bad(chunk.first_id, f"{where}: its name's id range is empty", index)
        if chunk.first_id > cursor.next_id:
            missing = f"{cursor.next_id}" + (f"-{chunk.first_id - 1}" if chunk.first_id - 1 > cursor.next_id else "")
            return bad(cursor.next_id, f"event(s) {missing} are in no chunk (a chunk deleted?) before {where}", index)
        if chunk.first_id < cursor.next_id:
            return bad(chunk.first_id, f"{where} overlaps the chunk before it", index)
        try:
            content = (await objects.get(chunk.key)).decode()
        except NotFound:
            return bad(chunk.first_id, f"{where} disappeared while verifying", index)
        except UnicodeDecodeError:
            return bad(chunk.first_id, f"{where} is not UTF-8 text", index)
        lines = content.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if not lines:
            return bad(chunk.first_id, f"{where} is empty", index)
        try:
            header = _parse_header(chunk, lines[0])
        except ValueError as exc:
            return bad(chunk.first_id, f"{where}: {exc}", index)
        if header["previous_hash"] != cursor.previous_hash:
            first = "the genesis hash" if cursor.next_id == 1 else "the end_hash of the chunk before it"
            return bad(chunk.first_id, f"{where} does not start from {first}", index)
        for number, line in enumerate(lines[1:], start=2):
            try:
                event = event_from_record(json.loads(line))
            except ValueError as exc:  # JSONDecodeError is a ValueError
                return bad(cursor.next_id, f"{where} line {number} is not a valid event: {exc}", index)
            if event.id > chunk.last_id:
                return bad(event.id, f"{where} holds event {event.id}, past its last id {chunk.last_id}", index)
            problem = cursor.step(event)
            if problem is not None:
                return bad(problem[0], f"{problem[1]} ({where}, line {number})", index)
            if event.id == mark:
                marked = event.hash
        if cursor.next_id != chunk.last_id + 1:
            return bad(cursor.next_id, f"{where} ends before its last id {chunk.last_id} (truncated?)", index)
        if header["end_hash"] != cursor.previous_hash:
            return bad(chunk.last_id, f"{where}: the header's end_hash is not the hash of its last event", index)
    return AuditVerification(
        True, cursor.checked, chunks=len(chunks), last_hash=cursor.previous_hash, marked_hash=marked
    )


class AuditExporter(PeriodicPass):
    """Copies the audit log to the object store, periodically and on demand.

    Args:
        log: the audit log to read from.
        objects: where the chunks go.
        prefix: the key prefix of the chunks.
        chunk_events: the most events in one chunk (each pass writes what is new, in chunks of at
            most this many).
        interval: seconds between periodic passes (``start``).
        final_timeout: seconds ``stop`` allows for a last pass.
    """

    _name = "audit export"

    def __init__(
        self,
        log: AuditLog,
        objects: ObjectStore,
        *,
        prefix: str = DEFAULT_PREFIX,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        interval: float = DEFAULT_INTERVAL,
        final_timeout: float = 5.0,
    ) -> None:
        if chunk_events < 1:
            raise InvalidInput(f"chunk_events must be at least 1, not {chunk_events}", "the default is 1000")
        self._log = log
        self._reported: tuple[int, str] | None = None  # the problem whose event was written
        self._objects = objects
        self._prefix = prefix
        self._base = _key_prefix(prefix)
        self._chunk_events = chunk_events
        self._interval = interval
        self._final_timeout = final_timeout
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # The newest chunk seen (its key and end hash): spares reading it again on every pass.
        self._tip: tuple[str, str] | None = None

    # -- one pass -----------------------------------------------------------------------------
    async def export(self) -> ExportResult:
        """Write the events not exported yet; return what was written and where the copy ends.

        Raises:
            Unavailable: the store is unreachable (chunks written before the outage stay; the
                next pass continues after them).
            Conflict: the newest chunk in the store cannot be read back as a chunk.
        """
        async with self._lock, self._log.exclusive(EXPORT_LOCK_KEY):
            last_id, end_hash = await self._store_tip()
            problem = await self._check_tip(last_id, end_hash)
            if problem is not None:
                return ExportResult(0, 0, last_id, end_hash, *problem)
            cursor = ChainCursor(next_id=last_id + 1, previous_hash=end_hash)
            chunks = events = 0
            while True:
                batch = await self._log.events_after(cursor.next_id - 1, self._chunk_events)
                good: list[AuditEvent] = []
                problem = None
                for event in batch:
                    problem = cursor.step(event)
                    if problem is not None:
                        break
                    good.append(event)
                if good:
                    key = self._base + chunk_name(good[0].id, good[-1].id)
                    await self._objects.put(key, encode_chunk(good))
                    self._tip = (key, good[-1].hash)
                    chunks += 1
                    events += len(good)
                if problem is not None:
                    return ExportResult(chunks, events, cursor.next_id - 1, cursor.previous_hash, *problem)
                if len(batch) < self._chunk_events:
                    return ExportResult(chunks, events, cursor.next_id - 1, cursor.previous_hash)

    async def _store_tip(self) -> tuple[int, str]:
        """The last event id and hash the store's copy ends on; (0, GENESIS_HASH) when empty."""
        chunks = await list_chunks(self._objects, self._prefix)
        if not chunks:
            self._tip = None
            return 0, GENESIS_HASH
        newest = max(chunks, key=lambda c: c.last_id)
        if self._tip is not None and self._tip[0] == newest.key:
            return newest.last_id, self._tip[1]
        try:
            lines = (await self._objects.get(newest.key)).decode().splitlines()
            header = _parse_header(newest, lines[0] if lines else "")
            last = json.loads(lines[-1]) if len(lines) > 1 else None
        except (ValueError, NotFound) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise Conflict(
                f"the newest audit chunk {newest.key} cannot be read back: {exc}",
                "check the export with fleetops-controller audit verify-export; "
                "move the damaged chunk away to export it again",
            ) from exc
        if not isinstance(last, dict) or last.get("id") != newest.last_id or last.get("hash") != header["end_hash"]:
            raise Conflict(
                f"the newest audit chunk {newest.key} does not end on its header's end_hash",
                "check the export with fleetops-controller audit verify-export",
            )
        self._tip = (newest.key, header["end_hash"])
        return newest.last_id, header["end_hash"]

    async def _check_tip(self, last_id: int, end_hash: str) -> tuple[int, str] | None:
        """Does the store's copy end on an event of this database? (bad event id, problem) if not."""
        if last_id == 0:
            return None
        try:
            event = await self._log.get(last_id)
        except NotFound:
            return last_id, (
                f"the object store's export ends at event {last_id}, which this database does not have "
                "(another controller's export, or the database was restored from an older backup)"
            )
        if event.hash != end_hash:
            return last_id, (
                f"the object store's export ends at event {last_id} with another hash than this "
                "database's event (another controller's export, or the database's hash was edited)"
            )
        return None

    # -- periodic -----------------------------------------------------------------------------
    async def run_once(self) -> ExportResult | None:
        """One pass that never raises: an outage or a refusal is logged, and the next pass retries."""
        try:
            result = await self.export()
        except Unavailable as exc:
            log.info("audit export: the object store is unavailable (%s); retrying in %gs", exc.message, self._interval)
            return None
        except FleetopsError as exc:
            log.warning("audit export failed: %s (%s)", exc.message, exc.hint)
            return None
        except Exception:  # a bug: keep exporting later, but say so loudly
            log.exception("audit export failed")
            return None
        if result.problem:
            log.warning(
                "audit export stopped at event %d: %s; run opsctl audit verify", result.bad_event_id, result.problem
            )
            # Once per problem while this process runs, not every pass (a restart reports it again).
            if (result.bad_event_id, result.problem) != self._reported:
                try:
                    await self._log.verification_failed(
                        AuditVerification(False, result.last_event_id, result.bad_event_id, result.problem), "export"
                    )
                    self._reported = (result.bad_event_id, result.problem)
                except Exception:  # the database is away: the next pass tries again
                    log.exception("recording the audit export's verification failure failed")
        elif result.events:
            log.info(
                "audit export: %d event(s) in %d chunk(s), now up to event %d",
                result.events,
                result.chunks,
                result.last_event_id,
            )
        return result
