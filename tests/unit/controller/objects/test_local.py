"""LocalDirectoryStore: the embedded default backend, on a temporary directory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleetops.common.errors import Conflict, InternalError, InvalidInput, NotFound
from fleetops.controller.objects import local as local_module
from fleetops.controller.objects.interfaces import ObjectInfo, ObjectStore
from fleetops.controller.objects.local import LocalDirectoryStore

MiB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> LocalDirectoryStore:
    return LocalDirectoryStore(tmp_path / "objects")


def files_under(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


def test_satisfies_the_protocol(store: LocalDirectoryStore) -> None:
    protocol_store: ObjectStore = store  # checked by mypy; at runtime, just the methods exist
    for name in ("put", "get", "read", "writer", "head", "delete", "list", "close"):
        assert callable(getattr(protocol_store, name))


async def test_binary_round_trip(store: LocalDirectoryStore) -> None:
    data = bytes(range(256)) * 1000 + b"\x00\r\n\xff"
    info = await store.put("commands/c1/host-a/stdout", data)
    assert info == ObjectInfo("commands/c1/host-a/stdout", len(data), hashlib.sha256(data).hexdigest())
    assert await store.get("commands/c1/host-a/stdout") == data
    assert await store.head("commands/c1/host-a/stdout") == ObjectInfo("commands/c1/host-a/stdout", len(data), "")


async def test_empty_object(store: LocalDirectoryStore) -> None:
    info = await store.put("empty", b"")
    assert (info.size, info.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert await store.get("empty") == b""
    assert await collect(store.read("empty")) == []
    writer = await store.writer("empty-too")
    assert (await writer.close()).size == 0
    assert await store.head("empty-too") == ObjectInfo("empty-too", 0, "")


async def test_streaming_read_yields_chunks_of_the_requested_size(store: LocalDirectoryStore) -> None:
    data = os.urandom(3 * MiB + 12345)
    await store.put("big", data)
    chunks = await collect(store.read("big", chunk_size=MiB))
    assert [len(c) for c in chunks] == [MiB, MiB, MiB, 12345]
    assert b"".join(chunks) == data


async def test_a_started_read_is_not_disturbed_by_an_overwrite(store: LocalDirectoryStore) -> None:
    old, new = b"o" * (2 * MiB), b"n" * (3 * MiB)
    await store.put("k", old)
    reader = store.read("k", chunk_size=MiB)
    first = await anext(reader)
    await store.put("k", new)
    rest = await collect(reader)
    assert first + b"".join(rest) == old
    assert await store.get("k") == new


async def test_missing_objects(store: LocalDirectoryStore) -> None:
    with pytest.raises(NotFound, match="no object 'nope/x'"):
        await store.get("nope/x")
    reader = store.read("nope/x")
    with pytest.raises(NotFound):
        await anext(reader)
    assert await store.head("nope/x") is None
    await store.delete("nope/x")  # idempotent
    assert await store.list("") == []


async def test_writer_publishes_only_on_close(store: LocalDirectoryStore) -> None:
    await store.put("out", b"previous")
    writer = await store.writer("out")
    expected = hashlib.sha256()
    for i in range(5):
        part = bytes([i]) * (MiB // 2)
        await writer.write(part)
        expected.update(part)
    # Mid-write, readers still see the previous object and list() shows no temporary file.
    assert await store.get("out") == b"previous"
    assert await store.list("") == ["out"]
    info = await writer.close()
    assert info == ObjectInfo("out", 5 * (MiB // 2), expected.hexdigest())
    assert hashlib.sha256(await store.get("out")).hexdigest() == info.sha256
    with pytest.raises(InternalError):
        await writer.write(b"late")


async def test_writer_abort_leaves_nothing(store: LocalDirectoryStore) -> None:
    writer = await store.writer("commands/c9/host/stdout")
    await writer.write(b"x" * MiB)
    await writer.abort()
    await writer.abort()  # idempotent
    assert files_under(store.root) == []
    assert await store.head("commands/c9/host/stdout") is None
    with pytest.raises(InternalError):
        await writer.close()


async def test_abort_keeps_an_existing_object(store: LocalDirectoryStore) -> None:
    await store.put("a/b", b"kept")
    writer = await store.writer("a/b")
    await writer.write(b"replacement")
    await writer.abort()
    assert await store.get("a/b") == b"kept"
    assert files_under(store.root) == ["a", "a/b"]


async def test_list_matches_whole_segments_sorted(store: LocalDirectoryStore) -> None:
    for key in ["commands/c10/h/stdout", "commands/c1/h2/stdout", "commands/c1/h1/stderr", "commands/c1/h1/stdout"]:
        await store.put(key, b".")
    await store.put("sessions/s1/transcript", b".")
    expected_c1 = ["commands/c1/h1/stderr", "commands/c1/h1/stdout", "commands/c1/h2/stdout"]
    assert await store.list("commands/c1") == expected_c1
    assert await store.list("commands/c1/") == expected_c1
    assert await store.list("commands/c") == []
    assert await store.list("commands/c1/h1/stdout") == []  # an object is not a prefix of itself
    assert len(await store.list("")) == 5
    assert await store.list("nothing/here") == []


async def test_delete_prunes_empty_directories(store: LocalDirectoryStore) -> None:
    await store.put("commands/c1/h1/stdout", b"1")
    await store.put("commands/c1/h2/stdout", b"2")
    await store.delete("commands/c1/h1/stdout")
    assert files_under(store.root) == ["commands", "commands/c1", "commands/c1/h2", "commands/c1/h2/stdout"]
    await store.delete("commands/c1/h2/stdout")
    await store.delete("commands/c1/h2/stdout")
    assert files_under(store.root) == []
    assert store.root.is_dir()  # the root itself stays


async def test_keys_with_unusual_characters_round_trip(store: LocalDirectoryStore) -> None:
    key = "a b/ü/%41+x=y/.hidden"
    await store.put(key, b"odd")
    assert await store.list("a b") == [key]
    assert await store.get(key) == b"odd"


@pytest.mark.parametrize("key", ["/etc/passwd", "../escape", "a//b", "a\\b", "", "a/.fleetops-tmp-x"])
async def test_every_operation_rejects_bad_keys(store: LocalDirectoryStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        await store.put(key, b"x")
    with pytest.raises(InvalidInput):
        await store.get(key)
    with pytest.raises(InvalidInput):
        store.read(key)
    with pytest.raises(InvalidInput):
        await store.writer(key)
    with pytest.raises(InvalidInput):
        await store.head(key)
    with pytest.raises(InvalidInput):
        await store.delete(key)
    assert files_under(store.root.parent) == []


async def test_bad_prefix_and_chunk_size(store: LocalDirectoryStore) -> None:
    with pytest.raises(InvalidInput):
        await store.list("/abs")
    with pytest.raises(InvalidInput):
        store.read("k", chunk_size=0)


async def test_nested_keys_conflict(store: LocalDirectoryStore) -> None:
    await store.put("a", b"file")
    with pytest.raises(Conflict, match="another key occupies"):
        await store.put("a/b", b"x")
    await store.put("x/y", b"file")
    with pytest.raises(Conflict):
        await store.put("x", b"x")
    assert await store.get("a") == b"file"
    assert await store.get("x/y") == b"file"
    assert await store.head("x") is None  # a directory is not an object
    await store.delete("x")  # ...and deleting it leaves the object under it alone
    assert await store.get("x/y") == b"file"
    assert sorted(await store.list("")) == ["a", "x/y"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
async def test_objects_are_private(store: LocalDirectoryStore) -> None:
    await store.put("commands/c1/h/stdout", b"secret output")
    assert stat.S_IMODE((store.root / "commands/c1/h/stdout").stat().st_mode) == 0o600
    assert stat.S_IMODE((store.root / "commands/c1").stat().st_mode) == 0o700


async def test_close_keeps_what_was_stored_and_may_be_repeated(store: LocalDirectoryStore) -> None:
    await store.put("commands/c1/h/stdout", b"kept")
    await store.close()
    await store.close()
    assert (store.root / "commands/c1/h/stdout").read_bytes() == b"kept"


async def test_a_writer_cancelled_while_its_file_is_created_leaves_nothing_open(
    store: LocalDirectoryStore, tmp_path: Path
) -> None:
    """Cancelling (a shutdown) while the worker thread creates the temp file must not leak it."""
    started, gate = threading.Event(), threading.Event()
    original = local_module._create_temp_file

    def slow_create(directory: Path) -> tuple[Any, Path]:
        started.set()
        gate.wait(5)
        return original(directory)

    local_module._create_temp_file = slow_create  # type: ignore[assignment]
    try:
        task = asyncio.ensure_future(store.writer("a/b"))
        assert await asyncio.to_thread(started.wait, 5)  # the thread is creating the file
        task.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        local_module._create_temp_file = original  # type: ignore[assignment]
    assert [p for p in (tmp_path / "objects").rglob("*") if p.is_file()] == []
