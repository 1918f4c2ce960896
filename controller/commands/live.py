"""Output while a command runs: a reader following one invocation, watchers of a whole command.

Readers pull; nothing is ever queued for them. Each running invocation's :class:`OutputSink`
keeps the last ``TAIL_BYTES`` of each stream in memory and the spool file holds every byte, so a
reader only keeps its position per stream. A watcher that falls more than the tail behind (a
slow or stuck client) skips ahead and counts the bytes it missed in ``skipped``: an agent's link,
and every other reader, never wait for it, and a watcher costs a few integers per host.

The whole output of an invocation stays readable from the object store once it ended
(``opsctl run output``), whatever a watcher skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Protocol

from fleetops.controller.commands.models import Invocation
from fleetops.controller.commands.output import OutputSink, output_key
from fleetops.controller.objects.interfaces import ObjectStore

log = logging.getLogger(__name__)

#: Largest piece of output in one message.
PIECE_BYTES = 64 * 1024
#: Pieces read from the spool file (a follower catching up on output it has not seen).
FILE_PIECE_BYTES = 256 * 1024
#: A reader re-checks the database this often when nothing wakes it (another replica's progress).
RECHECK_SECONDS = 5.0
#: How long a follower waits for the result it saw arrive to be committed before it ends anyway.
COMMIT_WAIT_SECONDS = 10.0
#: Finished invocations read at once (each with up to two stored tails of 64 KiB).
ENDED_BATCH = 64

STREAMS = ("stdout", "stderr")


@dataclass(frozen=True)
class OutputPiece:
    """Bytes of one stream of one invocation.

    ``skipped`` counts the bytes of the stream before ``offset`` that this reader did not get:
    they arrived before it started (beyond what the controller holds) or while it fell behind.
    """

    invocation_id: str
    host_name: str
    stderr: bool
    offset: int
    data: bytes
    skipped: int


@dataclass(frozen=True)
class InvocationEnded:
    """An invocation reached its final state (without its tails: a watcher got its output live)."""

    invocation: Invocation


WatchEvent = OutputPiece | InvocationEnded


class LiveSource(Protocol):
    """What the feed reads of the run-command service (CommandService implements it)."""

    def sink(self, invocation_id: str, stream: str) -> OutputSink | None: ...

    def known_final(self, command_id: str, invocation_id: str) -> bool:
        """True when the invocation is final in memory, or its command no longer runs here."""
        ...

    async def invocations_by_id(self, invocation_ids: Iterable[str]) -> list[Invocation]: ...

    def subscribe(self, command_id: str) -> asyncio.Queue[None]: ...

    def unsubscribe(self, command_id: str, queue: asyncio.Queue[None]) -> None: ...


@dataclass(eq=False)  # each watcher is its own (a set member by identity)
class _Watch:
    """One watcher's state: a wake-up and what changed since it last looked (sets, never data)."""

    invocation_ids: frozenset[str]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dirty: set[str] = field(default_factory=set)
    rescan: bool = True

    def touch(self, invocation_id: str) -> None:
        if invocation_id in self.invocation_ids:
            self.dirty.add(invocation_id)
            self.wake.set()

    def changed(self) -> None:
        self.rescan = True
        self.wake.set()


class OutputFeed:
    """Live output of the commands running on this replica, for followers and watchers.

    Args:
        source: the run-command service (sinks, in-memory states, committed invocations).
        objects: where finished output is stored.
    """

    def __init__(self, source: LiveSource, objects: ObjectStore) -> None:
        self._source = source
        self._objects = objects
        self._watches: dict[str, set[_Watch]] = {}

    # -- hooks the service calls (synchronous, never wait) ----------------------------------------
    def output_arrived(self, command_id: str, invocation_id: str) -> None:
        for watch in self._watches.get(command_id, ()):
            watch.touch(invocation_id)

    def command_changed(self, command_id: str) -> None:
        for watch in self._watches.get(command_id, ()):
            watch.changed()

    @property
    def watcher_count(self) -> int:
        return sum(len(w) for w in self._watches.values())

    # -- one invocation ---------------------------------------------------------------------------
    async def read(self, invocation: Invocation, *, stderr: bool, follow: bool) -> AsyncIterator[OutputPiece]:
        """One stream of ``invocation``: what the controller holds, from its first byte.

        Final: the whole stored output. Running: what arrived so far (from the spool, so from
        offset 0) and, with ``follow``, every later byte until the invocation ends.
        """
        stream = STREAMS[stderr]
        piece = _Piecer(invocation.id, invocation.host_name, stderr)
        queue = self._source.subscribe(invocation.command_id)
        try:
            while True:
                sink = self._source.sink(invocation.id, stream)
                if sink is not None:
                    async for out in self._read_sink(sink, piece, follow):
                        yield out
                    if not follow or not sink.ended:
                        return
                    await self._wait_committed(invocation, queue)
                    return
                current = await self._source.invocations_by_id([invocation.id])
                if current and current[0].state.final:
                    async for out in self._read_stored(current[0], piece):
                        yield out
                    return
                if not follow:
                    return  # running, nothing of this stream arrived here yet
                # Wait for the stream's first bytes (a sink appears) or the end.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.get(), RECHECK_SECONDS)
        finally:
            self._source.unsubscribe(invocation.command_id, queue)

    async def _read_sink(self, sink: OutputSink, piece: _Piecer, follow: bool) -> AsyncIterator[OutputPiece]:
        until = None if follow else sink.received
        handle: BinaryIO | None = None
        try:
            while True:
                changed = sink.changed
                end = sink.received if until is None else min(until, sink.received)
                if piece.position < end:
                    if piece.position < sink.tail_offset:
                        if handle is None:
                            handle = sink.open_stored()
                        if handle is not None and piece.position < min(sink.stored, end):
                            count = min(FILE_PIECE_BYTES, min(sink.stored, end) - piece.position)
                            data = await asyncio.to_thread(_read_at, handle, piece.position, count)
                            if data:
                                yield piece.next(data)
                                continue
                        piece.skip_to(sink.tail_offset)  # not held any more
                        continue
                    yield piece.next(sink.held(piece.position, min(PIECE_BYTES, end - piece.position)))
                    continue
                if sink.ended or until is not None:
                    return
                await changed.wait()
        finally:
            if handle is not None:
                handle.close()

    async def _read_stored(self, invocation: Invocation, piece: _Piecer) -> AsyncIterator[OutputPiece]:
        size = invocation.stderr_bytes if piece.stderr else invocation.stdout_bytes
        if size <= piece.position:
            return
        key = output_key(invocation.command_id, invocation.host_name, STREAMS[piece.stderr])
        at = 0
        async for chunk in self._objects.read(key):
            if at + len(chunk) > piece.position:
                yield piece.next(chunk[max(0, piece.position - at) :])
            at += len(chunk)

    async def _wait_committed(self, invocation: Invocation, queue: asyncio.Queue[None]) -> None:
        """The stream ended with the result: let its commit land, so the caller's next read sees it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + COMMIT_WAIT_SECONDS
        while loop.time() < deadline:
            current = await self._source.invocations_by_id([invocation.id])
            if not current or current[0].state.final:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.get(), max(0.05, deadline - loop.time()))

    # -- a whole command --------------------------------------------------------------------------
    async def watch(self, command_id: str, invocations: list[Invocation]) -> AsyncIterator[WatchEvent]:
        """Output of ``invocations`` (of ``command_id``) as it arrives, and each one's end.

        A watcher starting late first gets each running stream's held tail and the results of
        the ones already final (with their stored tails). It ends once every invocation ended and
        everything was sent.
        """
        watch = _Watch(frozenset(i.id for i in invocations))
        names = {i.id: i.host_name for i in invocations}
        pieces: dict[tuple[str, bool], _Piecer] = {}
        open_ids = {i.id for i in invocations}
        queue = self._source.subscribe(command_id)  # commits of results decided by the controller
        self._watches.setdefault(command_id, set()).add(watch)
        for invocation_id in open_ids:
            for stderr in (False, True):
                piece = pieces[invocation_id, stderr] = _Piecer(invocation_id, names[invocation_id], stderr)
                sink = self._source.sink(invocation_id, STREAMS[stderr])
                if sink is not None:
                    piece.skip_to(sink.tail_offset)
        watch.dirty.update(open_ids)
        try:
            while open_ids:
                watch.wake.clear()
                dirty, watch.dirty = watch.dirty & open_ids, set()
                for invocation_id in sorted(dirty, key=names.__getitem__):
                    for stderr in (False, True):
                        async for out in self._live_pieces(pieces[invocation_id, stderr]):
                            yield out
                rescan, watch.rescan = watch.rescan, False
                candidates = [
                    i for i in (open_ids if rescan else dirty & open_ids) if self._source.known_final(command_id, i)
                ]
                for start in range(0, len(candidates), ENDED_BATCH):
                    batch = candidates[start : start + ENDED_BATCH]
                    for ended in await self._source.invocations_by_id(batch):
                        if not ended.state.final:
                            continue  # its commit is on the way; the notify after it wakes us
                        for stderr in (False, True):
                            for out in _stored_tail_pieces(pieces[ended.id, stderr], ended):
                                yield out
                        open_ids.discard(ended.id)
                        yield InvocationEnded(replace(ended, stdout_tail=b"", stderr_tail=b""))
                if not open_ids:
                    return
                if watch.wake.is_set() or watch.dirty:
                    continue
                waiters = [asyncio.ensure_future(watch.wake.wait()), asyncio.ensure_future(queue.get())]
                try:
                    done, _ = await asyncio.wait(waiters, timeout=RECHECK_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()  # also when the client went away while we waited
                if not done or waiters[1] in done:
                    watch.rescan = True  # a state changed (or time passed: another replica's work)
        finally:
            watchers = self._watches.get(command_id)
            if watchers is not None:
                watchers.discard(watch)
                if not watchers:
                    del self._watches[command_id]
            self._source.unsubscribe(command_id, queue)

    async def _live_pieces(self, piece: _Piecer) -> AsyncIterator[OutputPiece]:
        """What arrived of one stream since this watcher last sent it, from the tail only."""
        while True:
            sink = self._source.sink(piece.invocation_id, STREAMS[piece.stderr])
            if sink is None or piece.position >= sink.received:
                return
            if piece.position < sink.tail_offset:
                piece.skip_to(sink.tail_offset)  # this watcher fell behind the tail
            yield piece.next(sink.held(piece.position, PIECE_BYTES))


def _stored_tail_pieces(piece: _Piecer, ended: Invocation) -> list[OutputPiece]:
    """The rest of a finished stream this watcher has not got, out of the stored tail."""
    tail = ended.stderr_tail if piece.stderr else ended.stdout_tail
    size = ended.stderr_bytes if piece.stderr else ended.stdout_bytes
    if piece.position >= size or not tail:
        return []
    tail_offset = size - len(tail)
    if piece.position < tail_offset:
        piece.skip_to(tail_offset)
    rest = tail[piece.position - tail_offset :]
    return [piece.next(rest[i : i + PIECE_BYTES]) for i in range(0, len(rest), PIECE_BYTES)]


class _Piecer:
    """A reader's position in one stream and the bytes it skipped so far."""

    def __init__(self, invocation_id: str, host_name: str, stderr: bool) -> None:
        self.invocation_id = invocation_id
        self.host_name = host_name
        self.stderr = stderr
        self.position = 0
        self.skipped = 0

    def skip_to(self, offset: int) -> None:
        if offset > self.position:
            self.skipped += offset - self.position
            self.position = offset

    def next(self, data: bytes) -> OutputPiece:
        out = OutputPiece(self.invocation_id, self.host_name, self.stderr, self.position, data, self.skipped)
        self.position += len(data)
        return out


def _read_at(handle: BinaryIO, offset: int, count: int) -> bytes:
    handle.seek(offset)
    return handle.read(count)


__all__ = ["InvocationEnded", "LiveSource", "OutputFeed", "OutputPiece", "WatchEvent"]
