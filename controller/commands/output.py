"""Where an invocation's output goes: the full stream to the object store, the tail to the database."""

from __future__ import annotations

import logging

from fleetops.controller.commands.models import TAIL_BYTES
from fleetops.controller.objects.interfaces import ObjectStore, ObjectWriter

log = logging.getLogger(__name__)


def output_key(command_id: str, host_name: str, stream: str) -> str:
    return f"commands/{command_id}/{host_name}/{stream}"


class OutputSink:
    """One output stream of one invocation, written in order by byte offset.

    Agents send chunks with the offset of their first byte; a chunk (or part of one) the sink
    already has is skipped, so a re-sent stream after a reconnect never doubles bytes. Memory is
    bounded by the tail plus the object writer's current part.
    """

    def __init__(self, store: ObjectStore, key: str) -> None:
        self._store = store
        self.key = key
        self.received = 0
        self._tail = bytearray()
        self._writer: ObjectWriter | None = None
        self.gap = False

    @property
    def tail(self) -> bytes:
        return bytes(self._tail)

    async def write(self, offset: int, data: bytes) -> None:
        if offset > self.received:
            # Cannot happen on one ordered stream; if it does, the totals check at the end reports it.
            log.error("output %s: gap at %d (have %d bytes); chunk dropped", self.key, offset, self.received)
            self.gap = True
            return
        skip = self.received - offset
        if skip >= len(data):
            return
        if skip:
            data = data[skip:]
        if self._writer is None:
            self._writer = await self._store.writer(self.key)
        await self._writer.write(data)
        self.received += len(data)
        self._tail += data
        if len(self._tail) > TAIL_BYTES:
            del self._tail[: len(self._tail) - TAIL_BYTES]

    async def close(self) -> int:
        """Complete the object (if any byte arrived); returns the number of bytes stored."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
        return self.received

    async def abort(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.abort()
