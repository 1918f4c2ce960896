"""The command output spool: kept locally, served meanwhile, uploaded once the store takes it."""

from __future__ import annotations

import asyncio
import builtins
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from fleetops.controller.commands.output import DONE_SUFFIX, PART_SUFFIX, OutputSink, OutputSpool
from fleetops.controller.objects.health import MonitoredStore, StoreHealth
from fleetops.controller.objects.interfaces import ObjectInfo, ObjectWriter, StoreProblem, StoreUnavailable
from fleetops.controller.objects.local import LocalDirectoryStore

KEY = "commands/cmd-1/web-1/stdout"


class BrokenStore:
    """A local store that refuses everything as a missing bucket while ``broken`` is set."""

    def __init__(self, root: Path) -> None:
        self.inner = LocalDirectoryStore(root)
        self.broken = True

    def _check(self) -> None:
        if self.broken:
            raise StoreUnavailable("bucket 'b' does not exist", "create the bucket", problem=StoreProblem.BUCKET)

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        self._check()
        return await self.inner.put(key, data)

    async def get(self, key: str) -> bytes:
        self._check()
        return await self.inner.get(key)

    async def read(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        self._check()
        async for chunk in self.inner.read(key, chunk_size):
            yield chunk

    async def writer(self, key: str) -> ObjectWriter:
        self._check()
        return await self.inner.writer(key)

    async def head(self, key: str) -> ObjectInfo | None:
        self._check()
        return await self.inner.head(key)

    async def delete(self, key: str) -> None:
        self._check()
        await self.inner.delete(key)

    async def list(self, prefix: str) -> builtins.list[str]:
        self._check()
        return await self.inner.list(prefix)

    async def close(self) -> None:
        await self.inner.close()


def make_spool(tmp_path: Path, *, broken: bool, max_bytes: int = 1 << 20) -> tuple[OutputSpool, BrokenStore]:
    backend = BrokenStore(tmp_path / "store")
    backend.broken = broken
    health = StoreHealth("test store")
    if broken:
        health.failed(StoreUnavailable("bucket 'b' does not exist", problem=StoreProblem.BUCKET))
    spool = OutputSpool(MonitoredStore(backend, health), tmp_path / "spool", max_bytes=max_bytes, retry_interval=3600)
    return spool, backend


async def wait_for(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)  # yields to the spool's retry loop; bounded, never a fixed wait
    raise AssertionError("condition not reached")


def files(spool: OutputSpool) -> list[str]:
    return sorted(p.suffix for p in spool.directory.iterdir())


async def write_stream(spool: OutputSpool, data: bytes, chunk: int = 1000) -> OutputSink:
    sink = OutputSink(spool, KEY)
    for offset in range(0, len(data), chunk):
        await sink.write(offset, data[offset : offset + chunk])
    return sink


async def test_a_broken_store_never_fails_the_stream_and_the_output_stays_readable(tmp_path: Path) -> None:
    spool, backend = make_spool(tmp_path, broken=True)
    await spool.start()
    try:
        data = bytes(range(256)) * 40
        sink = await write_stream(spool, data)
        assert await sink.close() == len(data)  # no store error reaches the caller (the agent's stream)
        assert files(spool) == [DONE_SUFFIX, PART_SUFFIX]
        assert spool.pending_count == 1 and spool.used_bytes == len(data)
        assert await spool.get(KEY) == data  # served from the spool meanwhile
        assert b"".join([c async for c in spool.read(KEY, 100)]) == data
        assert (await spool.head(KEY)) == ObjectInfo(KEY, len(data), hashlib.sha256(data).hexdigest())

        backend.broken = False
        spool.wake()  # what the retry loop does every interval: check the store, then upload
        await wait_for(lambda: spool.pending_count == 0)
        assert await backend.inner.get(KEY) == data
        assert files(spool) == [] and spool.used_bytes == 0 and spool.pending_count == 0
        assert await spool.get(KEY) == data  # now from the store
    finally:
        await spool.stop()


async def test_a_healthy_store_gets_the_output_at_close(tmp_path: Path) -> None:
    spool, backend = make_spool(tmp_path, broken=False)
    await spool.start()
    try:
        sink = await write_stream(spool, b"hello\n" * 500)
        await sink.close()
        assert await backend.inner.get(KEY) == b"hello\n" * 500
        assert files(spool) == []
    finally:
        await spool.stop()


async def test_finished_output_survives_a_restart_and_a_cut_stream_is_dropped(tmp_path: Path) -> None:
    spool, backend = make_spool(tmp_path, broken=True)
    await spool.start()
    await (await write_stream(spool, b"finished")).close()
    cut = OutputSink(spool, "commands/cmd-2/web-1/stdout")
    await cut.write(0, b"half a stream")  # the controller dies here
    await spool.stop()

    again, backend = make_spool(tmp_path, broken=False)
    await again.start()
    try:
        assert again.pending_count == 1
        assert await again.upload_pending() == 1
        assert await backend.inner.get(KEY) == b"finished"
        assert files(again) == []  # the cut stream's part is gone: the agent re-sends it from 0
    finally:
        await again.stop()


async def test_a_newer_stream_of_the_same_key_replaces_the_older(tmp_path: Path) -> None:
    spool, backend = make_spool(tmp_path, broken=True)
    await spool.start()
    try:
        await (await write_stream(spool, b"first try, cut")).close()
        await (await write_stream(spool, b"the whole output")).close()
        assert spool.pending_count == 1 and spool.used_bytes == len(b"the whole output")
        backend.broken = False
        await spool.upload_pending()
        assert await backend.inner.get(KEY) == b"the whole output"
        assert files(spool) == []
    finally:
        await spool.stop()


async def test_a_full_spool_drops_the_rest_and_says_how_much_was_stored(tmp_path: Path) -> None:
    spool, _ = make_spool(tmp_path, broken=True, max_bytes=5000)
    await spool.start()
    try:
        sink = await write_stream(spool, b"x" * 12000)
        assert sink.received == 12000  # the agent's offsets move on: no re-send, no refusal
        stored = await sink.close()
        assert stored == 5000
        assert len(await spool.get(KEY)) == 5000
        assert len(sink.tail) > 0
    finally:
        await spool.stop()


@pytest.mark.parametrize("offset", [0, 3])
async def test_resent_bytes_are_not_doubled(tmp_path: Path, offset: int) -> None:
    spool, _ = make_spool(tmp_path, broken=True)
    await spool.start()
    try:
        sink = OutputSink(spool, KEY)
        await sink.write(0, b"abcdef")
        await sink.write(offset, b"abcdefghij"[offset:])
        assert await sink.close() == 10
        assert await spool.get(KEY) == b"abcdefghij"
    finally:
        await spool.stop()
