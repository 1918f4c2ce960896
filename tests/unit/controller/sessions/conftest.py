"""Fixtures of the transcript tests: a local object store that can be taken down and brought back."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleetops.common.errors import Unavailable
from fleetops.controller.objects.interfaces import ObjectInfo
from fleetops.controller.objects.local import LocalDirectoryStore, LocalWriter


class FlakyStore:
    """A LocalDirectoryStore that answers ``Unavailable`` to everything while ``down`` is set.

    Records the size of every ``write`` its writers received and how many writers were made.
    """

    def __init__(self, root: Path) -> None:
        self.inner = LocalDirectoryStore(root)
        self.down = False
        self.writes: list[int] = []
        self.writers = 0
        self.wrong_hash = False

    def check(self) -> None:
        if self.down:
            raise Unavailable("object store is down (test)")

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        self.check()
        return await self.inner.put(key, data)

    async def get(self, key: str) -> bytes:
        self.check()
        return await self.inner.get(key)

    def read(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        self.check()
        return self.inner.read(key, chunk_size)

    async def writer(self, key: str) -> FlakyWriter:
        self.check()
        self.writers += 1
        return FlakyWriter(self, await self.inner.writer(key))

    async def head(self, key: str) -> ObjectInfo | None:
        self.check()
        return await self.inner.head(key)

    async def delete(self, key: str) -> None:
        self.check()
        await self.inner.delete(key)

    async def list(self, prefix: str) -> builtins.list[str]:
        self.check()
        return await self.inner.list(prefix)

    async def close(self) -> None:
        await self.inner.close()


class FlakyWriter:
    def __init__(self, store: FlakyStore, inner: LocalWriter) -> None:
        self.store = store
        self.inner = inner

    async def write(self, data: bytes) -> None:
        self.store.check()
        await self.inner.write(data)
        self.store.writes.append(len(data))

    async def close(self) -> ObjectInfo:
        self.store.check()
        info = await self.inner.close()
        if self.store.wrong_hash:
            return ObjectInfo(info.key, info.size, "0" * 64)
        return info

    async def abort(self) -> None:
        await self.inner.abort()


@pytest.fixture
def store(tmp_path: Path) -> FlakyStore:
    return FlakyStore(tmp_path / "objects")


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"
