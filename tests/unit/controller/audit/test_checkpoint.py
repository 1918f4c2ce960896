"""Signed checkpoints of the chain head: a cut tail, a rewrite or a forged checkpoint is named."""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.common.errors import Conflict, Unavailable
from fleetops.controller.audit.checkpoint import (
    CHECKPOINT_PREFIX,
    AuditCheckpointer,
    check_export,
    checkpoint_key,
    encode_checkpoint,
)
from fleetops.controller.audit.export import AuditExporter
from fleetops.controller.audit.models import GENESIS_HASH, event_hash
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.audit.signing import CheckpointSigner, load_signer
from fleetops.controller.objects.local import LocalDirectoryStore


@pytest.fixture
def signer(tmp_path: Path) -> CheckpointSigner:
    return load_signer(tmp_path / "ca", create=True)


@pytest.fixture
def checkpoints(audit: AuditLog, objects: LocalDirectoryStore, signer: CheckpointSigner) -> AuditCheckpointer:
    return AuditCheckpointer(audit, objects, signer, controller="c1", interval=0.02)


async def record(audit: AuditLog, n: int) -> None:
    for i in range(n):
        await audit.record(actor="operator:alice", action="test.event", target=f"t-{i}", details={"i": i})


async def delete_from(engine: AsyncEngine, first_id: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_events WHERE id >= :i"), {"i": first_id})


async def stored(objects: LocalDirectoryStore) -> list[str]:
    return await objects.list(CHECKPOINT_PREFIX)


async def test_an_intact_log_matches_and_checkpoints_chain(audit: AuditLog, checkpoints: AuditCheckpointer) -> None:
    await record(audit, 5)
    first = await checkpoints.checkpoint()
    assert (first.head_id, first.events, first.previous_key) == (5, 5, "")
    assert first.head_hash == (await audit.get(5)).hash
    assert first.key == checkpoint_key(5, first.time)
    await record(audit, 2)
    second = await checkpoints.checkpoint()
    assert (second.head_id, second.previous_key, second.previous_sha256) == (7, first.key, first.sha256)
    assert second.key > first.key
    chain, check = await checkpoints.check()
    assert chain.ok and chain.events_checked == 7
    assert check.status == "ok" and not check.failed and check.checkpoint == second
    assert "events 1..7 as the checkpoint of" in check.message and second.key in check.message


async def test_nothing_new_still_writes_a_later_checkpoint(audit: AuditLog, checkpoints: AuditCheckpointer) -> None:
    first = await checkpoints.checkpoint()  # of an empty log
    assert (first.head_id, first.head_hash) == (0, GENESIS_HASH)
    second = await checkpoints.checkpoint()
    assert second.head_id == 0 and second.key > first.key and second.previous_key == first.key
    assert (await checkpoints.check())[1].status == "ok"


async def test_a_cut_tail_is_named(
    audit: AuditLog, checkpoints: AuditCheckpointer, objects: LocalDirectoryStore, engine: AsyncEngine
) -> None:
    await record(audit, 10)
    taken = await checkpoints.checkpoint()
    await delete_from(engine, 8)
    chain, check = await checkpoints.check()
    assert chain.ok and chain.events_checked == 7  # the chain alone sees nothing wrong
    assert check.failed and check.status == "missing" and (check.missing_from, check.missing_to) == (8, 10)
    when = taken.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert check.message == f"events 8..10 covered by the checkpoint of {when} are missing from the database"
    # And no new checkpoint papers over it.
    with pytest.raises(Conflict, match="events 8..10 covered by the checkpoint"):
        await checkpoints.checkpoint()
    assert await stored(objects) == [taken.key]


async def test_a_cut_tail_whose_ids_were_used_again_is_named(
    audit: AuditLog, checkpoints: AuditCheckpointer, engine: AsyncEngine
) -> None:
    await record(audit, 10)
    await checkpoints.checkpoint()
    await delete_from(engine, 9)
    await record(audit, 4)  # ids 9..12 again, recorded after the checkpoint
    chain, check = await checkpoints.check()
    assert chain.ok and chain.events_checked == 12
    assert check.status == "missing" and (check.missing_from, check.missing_to) == (9, 10)
    assert "events 9..10 covered by the checkpoint of" in check.message and "taken their ids" in check.message


async def test_a_rewritten_chain_differs(audit: AuditLog, checkpoints: AuditCheckpointer, engine: AsyncEngine) -> None:
    await record(audit, 3)
    taken = await checkpoints.checkpoint()
    # Someone with the database rewrites the whole chain consistently, backdated.
    async with engine.begin() as conn:
        previous = GENESIS_HASH
        for row in (await conn.execute(text("SELECT id, time FROM audit_events ORDER BY id"))).all():
            when = datetime.fromisoformat(str(row.time)).replace(tzinfo=UTC)
            digest = event_hash(
                event_id=row.id,
                time=when,
                actor="operator:mallory",
                action="test.event",
                target="",
                outcome="ok",
                details={},
                previous_hash=previous,
            )
            await conn.execute(
                text(
                    "UPDATE audit_events SET actor='operator:mallory', target='', details='{}', "
                    "previous_hash=:p, hash=:h WHERE id=:i"
                ),
                {"p": previous, "h": digest, "i": row.id},
            )
            previous = digest
    chain, check = await checkpoints.check()
    assert chain.ok, chain.problem
    assert check.status == "differs" and check.missing_from == 3
    assert f"event 3 differs from the checkpoint of {taken.time:%Y-%m-%dT%H:%M:%SZ}" in check.message


async def test_an_altered_checkpoint_fails_its_signature(
    audit: AuditLog, checkpoints: AuditCheckpointer, objects: LocalDirectoryStore
) -> None:
    await record(audit, 4)
    taken = await checkpoints.checkpoint()
    data = await objects.get(taken.key)
    doc = json.loads(data)
    doc["head_hash"] = (await audit.get(4)).previous_hash  # point the anchor at event 3's hash
    await objects.put(taken.key, json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    _, check = await checkpoints.check()
    assert check.status == "bad-signature" and check.failed
    assert taken.key in check.message and "does not verify" in check.message
    with pytest.raises(Conflict, match="cannot be trusted"):
        await checkpoints.checkpoint()
    # The original bytes verify again.
    await objects.put(taken.key, data)
    assert (await checkpoints.check())[1].status == "ok"


async def test_a_checkpoint_signed_by_another_key_is_not_trusted(
    audit: AuditLog, checkpoints: AuditCheckpointer, objects: LocalDirectoryStore, tmp_path: Path
) -> None:
    await record(audit, 2)
    head = await audit.get(2)
    mallory = load_signer(tmp_path / "mallory", create=True)
    when = datetime.now(UTC) + timedelta(seconds=1)
    body = {
        "format": "fleetops-audit-checkpoint/1",
        "controller": "c1",
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "head_id": 99,
        "head_hash": head.hash,
        "head_time": "",
        "events": 99,
        "previous_key": "",
        "previous_sha256": "",
    }
    await objects.put(checkpoint_key(99, when), encode_checkpoint(mallory, body))
    _, check = await checkpoints.check()
    assert check.status == "bad-signature" and "does not trust" in check.message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe", "is not JSON"),
        (b'{"format": "something else"}', "is not a fleetops-audit-checkpoint/1 document"),
        (b'{"format": "fleetops-audit-checkpoint/1"}', "has other fields"),
        (b" " * 20_000, "larger than any checkpoint"),
    ],
)
async def test_a_damaged_checkpoint_is_named(
    checkpoints: AuditCheckpointer, objects: LocalDirectoryStore, content: bytes, problem: str
) -> None:
    key = checkpoint_key(3, datetime.now(UTC))
    await objects.put(key, content)
    _, check = await checkpoints.check()
    assert check.status == "invalid" and check.failed and problem in check.message and key in check.message


async def test_a_renamed_checkpoint_is_invalid(
    audit: AuditLog, checkpoints: AuditCheckpointer, objects: LocalDirectoryStore
) -> None:
    await record(audit, 2)
    taken = await checkpoints.checkpoint()
    await objects.put(checkpoint_key(50, taken.time), await objects.get(taken.key))
    _, check = await checkpoints.check()
    assert check.status == "invalid" and "another name" in check.message


async def test_no_checkpoint_yet_is_said_but_not_a_failure(audit: AuditLog, checkpoints: AuditCheckpointer) -> None:
    await record(audit, 2)
    chain, check = await checkpoints.check()
    assert chain.ok and check.status == "none" and not check.failed
    assert "no audit checkpoint" in check.message and CHECKPOINT_PREFIX in check.message


class DownStore(LocalDirectoryStore):
    down = False

    async def list(self, prefix: str) -> builtins.list[str]:
        if self.down:
            raise Unavailable("connection refused by s3.example.com")
        return await super().list(prefix)


async def test_a_store_outage_is_said_and_the_chain_still_verified(
    audit: AuditLog, signer: CheckpointSigner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DownStore(tmp_path / "down")
    checkpoints = AuditCheckpointer(audit, store, signer, controller="c1")
    await record(audit, 3)
    store.down = True
    chain, check = await checkpoints.check()
    assert chain.ok and chain.events_checked == 3
    assert check.status == "unavailable" and not check.failed
    assert "could not be read" in check.message and "connection refused by s3.example.com" in check.message
    with caplog.at_level(logging.WARNING, logger="fleetops.controller.audit.checkpoint"):
        assert await checkpoints.run_once() is None
    assert "unavailable" in caplog.text
    store.down = False
    assert (await checkpoints.run_once()) is not None


async def test_periodic_at_start_and_at_stop(
    audit: AuditLog, checkpoints: AuditCheckpointer, objects: LocalDirectoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    await record(audit, 1)
    checkpoints.start()
    try:
        for _ in range(200):
            if len(await stored(objects)) >= 2:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("no periodic checkpoints")
        await record(audit, 2)
    finally:
        await checkpoints.stop()
    newest = await checkpoints.latest()
    assert newest is not None and newest.head_id == 3  # the last one covers the last event
    # Each one names the one before it, by key and by the SHA-256 of its bytes.
    keys = await stored(objects)
    for before, after in zip(keys, keys[1:], strict=False):
        doc = json.loads(await objects.get(after))
        assert doc["previous_key"] == before
        assert doc["previous_sha256"] == hashlib.sha256(await objects.get(before)).hexdigest()
    # A refused pass is logged as an error, not raised.
    await audit.record(actor="x", action="y")
    async with audit._store._sessions() as session, session.begin():
        await session.execute(text("DELETE FROM audit_events"))
    with caplog.at_level(logging.ERROR, logger="fleetops.controller.audit.checkpoint"):
        assert await checkpoints.run_once() is None
    assert "audit checkpoint refused" in caplog.text and "missing from the database" in caplog.text


async def test_the_export_is_compared_with_the_checkpoint(
    audit: AuditLog,
    checkpoints: AuditCheckpointer,
    objects: LocalDirectoryStore,
    signer: CheckpointSigner,
    tmp_path: Path,
) -> None:
    await record(audit, 3)
    await AuditExporter(audit, objects).export()
    assert (await check_export(objects, signer.trusted()))[1].status == "none"
    taken = await checkpoints.checkpoint()
    result, check = await check_export(objects, signer.trusted())
    assert result.ok and check.status == "ok" and "the export holds events 1..3 as the checkpoint of" in check.message
    await record(audit, 2)
    await checkpoints.checkpoint()
    _, check = await check_export(objects, signer.trusted())
    assert check.status == "behind" and not check.failed and "ends at event 3" in check.message
    await AuditExporter(audit, objects).export()
    assert (await check_export(objects, signer.trusted()))[1].status == "ok"
    # A reader holding only the public key: a checkpoint it does not trust fails.
    _, check = await check_export(objects, load_signer(tmp_path / "other", create=True).trusted())
    assert check.status == "bad-signature" and taken.key_id not in check.message.split("trusts")[1]
