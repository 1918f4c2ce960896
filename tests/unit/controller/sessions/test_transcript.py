"""TranscriptSink: spool first, one streamed upload, degraded spooling while the store is down."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleetops.common.errors import Conflict, InternalError, InvalidInput
from fleetops.controller.objects.local import LocalDirectoryStore
from fleetops.controller.sessions.asciicast import AsciicastEncoder
from fleetops.controller.sessions.transcript import INLINE_WRITE_MAX, TranscriptSink

KEY = "sessions/s-1/transcript.cast"
WAIT = 10.0


def sink(store: Any, spool_dir: Path, session_id: str = "s-1", **kwargs: Any) -> TranscriptSink:
    return TranscriptSink(store, KEY, spool_dir, session_id=session_id, **kwargs)


def lines(count: int, start: int = 0) -> list[bytes]:
    enc = AsciicastEncoder(80, 24, timestamp=1_700_000_000)
    return [enc.output(float(i), f"line {i} héllo\r\n".encode()) for i in range(start, start + count)]


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


def spool_files(spool_dir: Path) -> list[str]:
    return sorted(p.name for p in spool_dir.iterdir()) if spool_dir.exists() else []


async def test_a_session_ends_up_in_the_store_with_its_hash_and_the_spool_is_removed(
    tmp_path: Path, spool_dir: Path
) -> None:
    store = LocalDirectoryStore(tmp_path / "objects")
    recorder = sink(store, spool_dir)
    await recorder.start()
    data = lines(50)
    for line in data:
        await recorder.append(line)
    info = await recorder.finish()
    expected = b"".join(data)
    assert info.stored and not info.recovered
    assert (info.session_id, info.key) == ("s-1", KEY)
    assert info.size == len(expected)
    assert info.sha256 == hashlib.sha256(expected).hexdigest()
    assert await store.get(KEY) == expected
    assert spool_files(spool_dir) == []
    assert await recorder.finish() is info  # finishing again reports the same


async def test_parts_are_uploaded_while_the_session_runs_through_one_writer(store: Any, spool_dir: Path) -> None:
    recorder = sink(store, spool_dir, part_size=100)
    await recorder.start()
    data = lines(40)
    for line in data:
        await recorder.append(line)
    total = len(b"".join(data))
    await until(lambda: sum(store.writes) >= total - 100, "the full parts are handed over")
    assert set(store.writes) == {100}  # whole parts only, before the end
    info = await recorder.finish()
    assert info.stored
    assert store.writers == 1
    assert await store.get(KEY) == b"".join(data)
    assert sum(store.writes) == total


async def test_spool_holds_everything_while_recording_and_is_private(store: Any, spool_dir: Path) -> None:
    recorder = sink(store, spool_dir)
    await recorder.start()
    await recorder.append(b"".join(lines(3)))
    assert recorder.spool_path.read_bytes() == b"".join(lines(3))
    assert json.loads((spool_dir / "s-1.json").read_text()) == {"key": KEY, "session_id": "s-1"}
    assert stat.S_IMODE(recorder.spool_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool_dir.stat().st_mode) == 0o700
    await recorder.finish()


async def test_store_down_mid_session_then_back_gives_a_complete_object(store: Any, spool_dir: Path) -> None:
    recorder = sink(store, spool_dir, part_size=100)
    await recorder.start()
    first, second = lines(10), lines(10, start=10)
    for line in first:
        await recorder.append(line)
    await until(lambda: len(store.writes) > 0, "a part is uploaded")
    store.down = True
    for line in second:
        await recorder.append(line)
    await until(lambda: recorder.degraded, "the sink notices the store is down")
    store.down = False
    info = await recorder.finish()
    expected = b"".join(first + second)
    assert info.stored
    assert info.sha256 == hashlib.sha256(expected).hexdigest()
    assert info.size == len(expected)
    assert await store.get(KEY) == expected
    assert spool_files(spool_dir) == []
    assert store.writers == 2  # the aborted upload, then one from the spool


async def test_store_down_from_the_start_then_back(store: Any, spool_dir: Path) -> None:
    store.down = True
    recorder = sink(store, spool_dir)
    await recorder.start()
    assert recorder.degraded
    data = lines(5)
    for line in data:
        await recorder.append(line)
    store.down = False
    info = await recorder.finish()
    assert info.stored
    assert await store.get(KEY) == b"".join(data)


async def test_store_still_down_at_the_end_leaves_the_spool_with_a_done_marker(store: Any, spool_dir: Path) -> None:
    recorder = sink(store, spool_dir, part_size=100)
    await recorder.start()
    store.down = True
    data = lines(20)
    for line in data:
        await recorder.append(line)
    info = await recorder.finish()
    expected = b"".join(data)
    assert not info.stored
    assert info.sha256 == hashlib.sha256(expected).hexdigest()  # known for the audit event anyway
    assert spool_files(spool_dir) == ["s-1.cast", "s-1.done", "s-1.json"]
    assert (spool_dir / "s-1.cast").read_bytes() == expected
    assert json.loads((spool_dir / "s-1.done").read_text()) == {
        "session_id": "s-1",
        "key": KEY,
        "sha256": info.sha256,
        "size": len(expected),
        "recovered": False,
    }
    store.down = False
    assert await store.inner.head(KEY) is None  # no partial object was left behind


async def test_a_store_that_received_other_bytes_does_not_count_as_stored(store: Any, spool_dir: Path) -> None:
    store.wrong_hash = True
    recorder = sink(store, spool_dir)
    await recorder.start()
    await recorder.append(b"".join(lines(2)))
    info = await recorder.finish()
    assert not info.stored
    assert (spool_dir / "s-1.done").exists()


async def test_a_session_id_used_twice_is_a_conflict(store: Any, spool_dir: Path) -> None:
    first = sink(store, spool_dir)
    await first.start()
    with pytest.raises(Conflict, match="already has a transcript spool"):
        await sink(store, spool_dir).start()
    await first.finish()


@pytest.mark.parametrize("session_id", ["", "../x", "a/b", ".hidden", "x" * 129, "a b"])
def test_malformed_session_ids_are_refused(store: Any, spool_dir: Path, session_id: str) -> None:
    with pytest.raises(InvalidInput, match="session id"):
        sink(store, spool_dir, session_id=session_id)


def test_malformed_keys_and_part_sizes_are_refused(store: Any, spool_dir: Path) -> None:
    with pytest.raises(InvalidInput):
        TranscriptSink(store, "/absolute", spool_dir, session_id="s-1")
    with pytest.raises(InvalidInput):
        sink(store, spool_dir, part_size=0)


async def test_misuse_is_an_internal_error(store: Any, spool_dir: Path) -> None:
    recorder = sink(store, spool_dir)
    with pytest.raises(InternalError):
        await recorder.append(b"x\n")
    with pytest.raises(InternalError):
        await recorder.finish()
    await recorder.start()
    with pytest.raises(InternalError):
        await recorder.start()
    await recorder.finish()
    with pytest.raises(InternalError):
        await recorder.append(b"x\n")


async def test_the_spool_is_fsynced_periodically(store: Any, spool_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    recorder = sink(store, spool_dir, fsync_interval=1.0, clock=lambda: now[0])
    await recorder.start()
    monkeypatch.setattr(os, "fsync", counting_fsync)
    await recorder.append(b"a\n")
    assert synced == []  # within the interval: no fsync per line
    now[0] = 1.5
    await recorder.append(b"b\n")
    assert len(synced) == 1
    monkeypatch.undo()
    await recorder.finish()


async def test_append_nowait_takes_small_lines_and_leaves_fsyncs_and_big_batches_to_a_thread(
    store: Any, spool_dir: Path
) -> None:
    now = [0.0]
    recorder = sink(store, spool_dir, fsync_interval=1.0, clock=lambda: now[0])
    await recorder.start()
    assert recorder.append_nowait(b"a\n") is True  # spooled now, on the event loop
    assert recorder.append_nowait(b"x" * (INLINE_WRITE_MAX + 1)) is False  # a worker thread's job
    now[0] = 1.5
    assert recorder.append_nowait(b"b\n") is False  # an fsync is due: never on the event loop
    await recorder.append(b"b\n")
    info = await recorder.finish()
    assert info.size == 4 and info.sha256 == hashlib.sha256(b"a\nb\n").hexdigest()
    with pytest.raises(InternalError):
        recorder.append_nowait(b"late\n")
