"""The audit export: chunks in order, nothing twice, and a verifier that needs only the store."""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.common.errors import Unavailable
from fleetops.controller.audit.export import (
    EXPORT_FORMAT,
    AuditExporter,
    event_from_record,
    event_record,
    verify_export,
)
from fleetops.controller.audit.models import GENESIS_HASH, event_hash
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.objects.interfaces import ObjectInfo
from fleetops.controller.objects.local import LocalDirectoryStore
from fleetops.controller.store import database


async def record(audit: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        await audit.record(
            actor=f"operator:o{i % 3}", action="test.event", target=f"t-{i}", details={"i": i, "text": "héllo"}
        )


def chunk_names(keys: list[str]) -> list[str]:
    return [k.removeprefix("audit/") for k in keys]


async def read_lines(objects: LocalDirectoryStore, key: str) -> list[dict]:
    return [json.loads(line) for line in (await objects.get(key)).decode().splitlines()]


async def write_lines(objects: LocalDirectoryStore, key: str, docs: list[dict]) -> None:
    await objects.put(key, ("\n".join(json.dumps(d) for d in docs) + "\n").encode())


async def test_chunks_are_written_in_order_and_verify_alone(audit: AuditLog, objects: LocalDirectoryStore) -> None:
    await record(audit, 25)
    result = await AuditExporter(audit, objects, chunk_events=10).export()
    last = await audit.get(25)
    assert (result.chunks, result.events, result.last_event_id, result.last_hash) == (3, 25, 25, last.hash)
    assert result.problem == ""
    assert chunk_names(await objects.list("audit")) == [
        "000000000001-000000000010.jsonl",
        "000000000011-000000000020.jsonl",
        "000000000021-000000000025.jsonl",
    ]
    header, *events = await read_lines(objects, "audit/000000000011-000000000020.jsonl")
    assert header == {
        "format": EXPORT_FORMAT,
        "chunk": "000000000011-000000000020.jsonl",
        "first_id": 11,
        "last_id": 20,
        "events": 10,
        "previous_hash": (await audit.get(10)).hash,
        "end_hash": (await audit.get(20)).hash,
    }
    assert [e["id"] for e in events] == list(range(11, 21))
    assert events[0] == event_record(await audit.get(11))
    assert set(events[0]) == {"id", "time", "actor", "action", "target", "outcome", "details", "previous_hash", "hash"}
    assert events[0]["time"].endswith("Z") and events[0]["details"] == {"i": 10, "text": "héllo"}
    assert event_from_record(events[0]) == await audit.get(11)
    first_header = (await read_lines(objects, "audit/000000000001-000000000010.jsonl"))[0]
    assert first_header["previous_hash"] == GENESIS_HASH

    verified = await verify_export(objects)
    assert (verified.ok, verified.events_checked, verified.chunks, verified.last_hash) == (True, 25, 3, last.hash)
    # The database's own check agrees on where the chain ends.
    assert (await audit.verify()).last_hash == verified.last_hash


async def test_a_second_export_writes_only_what_is_new(audit: AuditLog, objects: LocalDirectoryStore) -> None:
    await record(audit, 12)
    exporter = AuditExporter(audit, objects, chunk_events=10)
    await exporter.export()
    again = await exporter.export()
    assert (again.chunks, again.events, again.last_event_id) == (0, 0, 12)
    await record(audit, 3, start=12)
    more = await exporter.export()
    assert (more.chunks, more.events, more.last_event_id) == (1, 3, 15)
    # A new exporter (a restarted controller) finds its progress in the store alone.
    await record(audit, 1, start=15)
    fresh = await AuditExporter(audit, objects, chunk_events=10).export()
    assert (fresh.chunks, fresh.events, fresh.last_event_id) == (1, 1, 16)
    assert chunk_names(await objects.list("audit")) == [
        "000000000001-000000000010.jsonl",
        "000000000011-000000000012.jsonl",
        "000000000013-000000000015.jsonl",
        "000000000016-000000000016.jsonl",
    ]
    verified = await verify_export(objects)
    assert (verified.ok, verified.events_checked, verified.chunks) == (True, 16, 4)


async def test_concurrent_exports_do_not_overlap(audit: AuditLog, objects: LocalDirectoryStore) -> None:
    await record(audit, 30)
    exporter = AuditExporter(audit, objects, chunk_events=7)
    results = await asyncio.gather(*(exporter.export() for _ in range(4)))
    assert sum(r.events for r in results) == 30
    assert (await verify_export(objects)).ok


async def test_editing_an_exported_line_names_that_event(audit: AuditLog, objects: LocalDirectoryStore) -> None:
    await record(audit, 25)
    await AuditExporter(audit, objects, chunk_events=10).export()
    key = "audit/000000000011-000000000020.jsonl"
    docs = await read_lines(objects, key)
    docs[4]["details"]["i"] = 999  # event 14
    await write_lines(objects, key, docs)
    result = await verify_export(objects)
    assert (result.ok, result.first_bad_event_id, result.events_checked) == (False, 14, 13)
    assert "edited" in result.problem and key in result.problem


async def test_rewriting_the_chain_from_an_event_on_is_caught_at_the_next_chunk(
    audit: AuditLog, objects: LocalDirectoryStore
) -> None:
    """Recomputing the hashes after an edit does not help unless every later chunk is rewritten too."""
    await record(audit, 20)
    await AuditExporter(audit, objects, chunk_events=10).export()
    key = "audit/000000000001-000000000010.jsonl"
    header, *docs = await read_lines(objects, key)
    docs[9]["outcome"] = "denied"

    event = event_from_record(docs[9])
    docs[9]["hash"] = event_hash(
        event_id=event.id,
        time=event.time,
        actor=event.actor,
        action=event.action,
        target=event.target,
        outcome=event.outcome,
        details=event.details,
        previous_hash=event.previous_hash,
    )
    header["end_hash"] = docs[9]["hash"]
    await write_lines(objects, key, [header, *docs])
    result = await verify_export(objects)
    assert (result.ok, result.first_bad_event_id) == (False, 11)
    assert "previous_hash" in result.problem or "does not start" in result.problem


async def test_a_deleted_chunk_is_a_gap(audit: AuditLog, objects: LocalDirectoryStore) -> None:
    await record(audit, 25)
    await AuditExporter(audit, objects, chunk_events=10).export()
    await objects.delete("audit/000000000011-000000000020.jsonl")
    result = await verify_export(objects)
    assert (result.ok, result.first_bad_event_id, result.events_checked) == (False, 11, 10)
    assert "11-20" in result.problem and "deleted" in result.problem


async def test_the_first_chunk_must_start_at_genesis(audit: AuditLog, objects: LocalDirectoryStore) -> None:
    await record(audit, 25)
    await AuditExporter(audit, objects, chunk_events=10).export()
    # Without the first chunk, the chain starts in the middle.
    first = "audit/000000000001-000000000010.jsonl"
    saved = await objects.get(first)
    await objects.delete(first)
    result = await verify_export(objects)
    assert (result.ok, result.first_bad_event_id) == (False, 1)
    # A first chunk that claims another starting hash.
    await objects.put(first, saved)
    header, *docs = await read_lines(objects, first)
    header["previous_hash"] = docs[0]["previous_hash"] = "f" * 64
    await write_lines(objects, first, [header, *docs])
    result = await verify_export(objects)
    assert (result.ok, result.first_bad_event_id) == (False, 1)
    assert "genesis" in result.problem


async def test_truncated_overlapping_and_damaged_chunks(audit: AuditLog, objects: LocalDirectoryStore) -> None:
    await record(audit, 20)
    await AuditExporter(audit, objects, chunk_events=10).export()
    key = "audit/000000000011-000000000020.jsonl"
    good = await objects.get(key)
    docs = await read_lines(objects, key)

    await write_lines(objects, key, docs[:-1])  # the last event is gone
    result = await verify_export(objects)
    assert (result.ok, result.first_bad_event_id) == (False, 20) and "truncated" in result.problem

    await objects.put(key, good.replace(b'"id":13', b'"id":13,', 1))  # not JSON any more
    result = await verify_export(objects)
    assert (result.ok, result.first_bad_event_id) == (False, 13) and "line 4" in result.problem

    await objects.put(key, good)
    await objects.put("audit/000000000005-000000000012.jsonl", good)  # overlaps both
    result = await verify_export(objects)
    assert not result.ok and "overlaps" in result.problem
    await objects.delete("audit/000000000005-000000000012.jsonl")

    # Objects that are not chunks are ignored.
    await objects.put("audit/README", b"exported by fleetops")
    assert (await verify_export(objects)).ok


async def test_an_empty_store_verifies_nothing(objects: LocalDirectoryStore) -> None:
    result = await verify_export(objects)
    assert (result.ok, result.events_checked, result.chunks) == (True, 0, 0)


async def test_the_exporter_stops_before_an_edited_row(
    audit: AuditLog, objects: LocalDirectoryStore, engine: AsyncEngine
) -> None:
    await record(audit, 12)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_events SET actor = 'operator:mallory' WHERE id = 8"))
    exporter = AuditExporter(audit, objects, chunk_events=5)
    result = await exporter.export()
    assert (result.events, result.last_event_id, result.bad_event_id) == (7, 7, 8)
    assert "edited" in result.problem
    verified = await verify_export(objects)
    assert (verified.ok, verified.events_checked) == (True, 7)
    # It does not skip the bad event later either.
    assert (await exporter.export()).bad_event_id == 8
    assert (await verify_export(objects)).events_checked == 7


async def test_a_store_holding_another_chain_is_not_continued(
    audit: AuditLog, objects: LocalDirectoryStore, tmp_path: Path
) -> None:
    await record(audit, 5)
    await AuditExporter(audit, objects).export()
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    await database.ensure_schema(engine, migrate=True)
    try:
        other = AuditLog(database.session_factory(engine))
        await record(other, 8)
        result = await AuditExporter(other, objects).export()
        assert (result.events, result.bad_event_id) == (0, 5) and "another" in result.problem
    finally:
        await engine.dispose()
    assert chunk_names(await objects.list("audit")) == ["000000000001-000000000005.jsonl"]


class FlakyStore(LocalDirectoryStore):
    """A local store whose ``put``/``list`` fail while ``down``, or after ``puts_left`` puts."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.down = False
        self.puts_left: int | None = None

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        if self.down or self.puts_left == 0:
            raise Unavailable("object store is down (test)")
        if self.puts_left is not None:
            self.puts_left -= 1
        return await super().put(key, data)

    async def list(self, prefix: str) -> builtins.list[str]:
        if self.down:
            raise Unavailable("object store is down (test)")
        return await super().list(prefix)


async def test_an_outage_is_retried_from_the_last_whole_chunk(
    audit: AuditLog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(tmp_path / "flaky")
    await record(audit, 25)
    exporter = AuditExporter(audit, store, chunk_events=10, interval=0.01)
    store.down = True
    with caplog.at_level(logging.INFO, logger="fleetops.controller.audit.export"):
        assert await exporter.run_once() is None
    assert "unavailable" in caplog.text and "retrying" in caplog.text
    store.down = False
    store.puts_left = 1  # the store fails after the first chunk
    with pytest.raises(Unavailable):
        await exporter.export()
    assert chunk_names(await store.list("audit")) == ["000000000001-000000000010.jsonl"]
    store.puts_left = None
    result = await exporter.run_once()
    assert result is not None and (result.chunks, result.events, result.last_event_id) == (2, 15, 25)
    assert (await verify_export(store)).events_checked == 25


async def test_the_periodic_export_runs_until_stopped(audit: AuditLog, objects: LocalDirectoryStore) -> None:
    exporter = AuditExporter(audit, objects, interval=0.02)
    exporter.start()
    try:
        await record(audit, 3)
        for _ in range(200):
            if (await verify_export(objects)).events_checked == 3:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the periodic export did not run")
        await record(audit, 2, start=3)
    finally:
        await exporter.stop()  # a last pass exports what came in since
    assert (await verify_export(objects)).events_checked == 5
