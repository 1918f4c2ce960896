"""Live output: a follower reads from the first byte, a watcher from the held tail, and neither holds anyone up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from watchers import WatcherQueues

from fleetops.common.states import InvocationState
from fleetops.controller.commands.live import InvocationEnded, OutputFeed, OutputPiece
from fleetops.controller.commands.models import TAIL_BYTES, Invocation
from fleetops.controller.commands.output import OutputSink, OutputSpool, output_key
from fleetops.controller.objects.health import MonitoredStore, StoreHealth
from fleetops.controller.objects.local import LocalDirectoryStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def invocation(host: str = "web-1", state: InvocationState = InvocationState.RUNNING, **fields: object) -> Invocation:
    values: dict = {
        "id": f"inv-{host}",
        "command_id": "cmd-1",
        "host_id": f"h-{host}",
        "host_name": host,
        "state": state,
        "exit_code": None,
        "reason": "",
        "stdout_tail": b"",
        "stderr_tail": b"",
        "stdout_bytes": 0,
        "stderr_bytes": 0,
        "delivered_at": None,
        "started_at": None,
        "finished_at": None,
        "rebooted": False,
        "updated_at": NOW,
    }
    return Invocation(**{**values, **fields})


class FakeSource(WatcherQueues):
    """The run-command service as the feed sees it: sinks, states, committed rows, notifications."""

    def __init__(self) -> None:
        super().__init__()
        self.sinks: dict[tuple[str, str], OutputSink] = {}
        self.rows: dict[str, Invocation] = {}

    def sink(self, invocation_id: str, stream: str) -> OutputSink | None:
        return self.sinks.get((invocation_id, stream))

    def known_final(self, command_id: str, invocation_id: str) -> bool:
        return self.rows[invocation_id].state.final

    async def invocations_by_id(self, invocation_ids: Iterable[str]) -> list[Invocation]:
        return [self.rows[i] for i in invocation_ids if i in self.rows]

    async def finish(self, feed: OutputFeed, inv: Invocation) -> None:
        """What the service does with a result: close the sinks, commit the row, then notify."""
        out = self.sinks.pop((inv.id, "stdout"), None)
        received = out.received if out else 0
        tail = out.tail if out else b""
        if out is not None:
            await out.close()
        self.rows[inv.id] = replace(
            inv, state=InvocationState.SUCCESS, exit_code=0, stdout_bytes=received, stdout_tail=tail
        )
        self.notify()
        feed.command_changed(inv.command_id)


@pytest.fixture
async def spool(tmp_path: Path) -> AsyncIterator[OutputSpool]:
    store = MonitoredStore(LocalDirectoryStore(tmp_path / "store"), StoreHealth("test store"))
    spool = OutputSpool(store, tmp_path / "spool", retry_interval=3600)
    await spool.start()
    yield spool
    await spool.stop()


def joined(pieces: list[OutputPiece]) -> bytes:
    return b"".join(p.data for p in pieces)


async def test_a_follower_gets_everything_from_the_first_byte_then_live_bytes_until_the_end(
    spool: OutputSpool,
) -> None:
    source, inv = FakeSource(), invocation()
    source.rows[inv.id] = inv
    feed = OutputFeed(source, spool)
    sink = source.sinks[inv.id, "stdout"] = OutputSink(spool, output_key("cmd-1", "web-1", "stdout"))
    early = bytes(range(256)) * (3 * TAIL_BYTES // 256)  # more than the tail: the rest is read from the spool
    await sink.write(0, early)

    # Without follow: what arrived so far, and no more.
    so_far = [p async for p in feed.read(inv, stderr=False, follow=False)]
    assert joined(so_far) == early and so_far[0].offset == 0 and all(p.skipped == 0 for p in so_far)

    pieces: list[OutputPiece] = []

    async def follow() -> None:
        async for piece in feed.read(inv, stderr=False, follow=True):
            pieces.append(piece)

    follower = asyncio.create_task(follow())
    async with asyncio.timeout(5):
        while len(joined(pieces)) < len(early):
            await asyncio.sleep(0)  # let the follower catch up (no timing involved)
    for n in range(3):
        await sink.write(len(early) + n * 6, b"late %d" % n)
    await source.finish(feed, inv)
    await asyncio.wait_for(follower, 5)
    assert joined(pieces) == early + b"late 0late 1late 2"
    assert [p.offset for p in pieces] == [sum(len(q.data) for q in pieces[:i]) for i in range(len(pieces))]
    assert all(p.skipped == 0 for p in pieces)

    # Once final: the whole stored output, as it always was.
    assert joined([p async for p in feed.read(source.rows[inv.id], stderr=False, follow=True)]) == joined(pieces)


async def test_without_a_spool_file_a_follower_starts_at_the_tail_and_counts_the_rest(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "store")  # its writer offers no read handle
    source, inv = FakeSource(), invocation()
    source.rows[inv.id] = inv
    sink = source.sinks[inv.id, "stdout"] = OutputSink(store, output_key("cmd-1", "web-1", "stdout"))
    await sink.write(0, b"x" * (TAIL_BYTES + 100))
    pieces = [p async for p in OutputFeed(source, store).read(inv, stderr=False, follow=False)]
    assert pieces[0].offset == 100 and pieces[0].skipped == 100 and len(joined(pieces)) == TAIL_BYTES
    await sink.abort()


async def test_a_watcher_starts_at_the_held_tail_falls_behind_without_holding_anyone_and_gets_each_result(
    spool: OutputSpool,
) -> None:
    source = FakeSource()
    web1, web2 = invocation("web-1"), invocation("web-2")
    source.rows = {web1.id: web1, web2.id: web2}
    feed = OutputFeed(source, spool)
    sink1 = source.sinks[web1.id, "stdout"] = OutputSink(spool, output_key("cmd-1", "web-1", "stdout"))
    await sink1.write(0, b"a" * 10 + b"b" * TAIL_BYTES)  # a late watcher gets the tail only

    events = feed.watch("cmd-1", [web1, web2])
    first = await anext(events)
    assert isinstance(first, OutputPiece) and (first.host_name, first.offset, first.skipped) == ("web-1", 10, 10)
    assert first.data == b"b" * TAIL_BYTES

    # The watcher reads nothing while 3 tails' worth arrive: writing never waits for it.
    sink2 = source.sinks[web2.id, "stdout"] = OutputSink(spool, output_key("cmd-1", "web-2", "stdout"))
    await sink2.write(0, b"web-2 says hi\n")
    feed.output_arrived("cmd-1", web2.id)
    for n in range(3):
        await sink1.write(10 + TAIL_BYTES * (n + 1), b"c" * TAIL_BYTES)
        feed.output_arrived("cmd-1", web1.id)
    await source.finish(feed, web1)
    await source.finish(feed, web2)

    rest = [e async for e in events]
    out1 = [e for e in rest if isinstance(e, OutputPiece) and e.host_name == "web-1"]
    assert out1[0].offset == 10 + 3 * TAIL_BYTES and out1[0].skipped == 10 + 2 * TAIL_BYTES
    assert joined(out1) == b"c" * TAIL_BYTES  # what the stored tail still held, then the end
    assert [e.data for e in rest if isinstance(e, OutputPiece) and e.host_name == "web-2"] == [b"web-2 says hi\n"]
    ended = [e.invocation for e in rest if isinstance(e, InvocationEnded)]
    assert sorted(i.host_name for i in ended) == ["web-1", "web-2"]
    assert all(i.state is InvocationState.SUCCESS and i.stdout_tail == b"" for i in ended)
    assert rest[-1] == InvocationEnded(ended[-1])  # the stream ends after the last result
    assert feed.watcher_count == 0 and not source.queues


async def test_a_watcher_of_a_finished_command_gets_each_stored_tail_and_result(spool: OutputSpool) -> None:
    source = FakeSource()
    done = invocation("web-1", InvocationState.FAILED, exit_code=2, stdout_bytes=5, stdout_tail=b"oops\n")
    source.rows[done.id] = done
    events = [e async for e in OutputFeed(source, spool).watch("cmd-1", [done])]
    assert events[0] == OutputPiece(done.id, "web-1", False, 0, b"oops\n", 0)
    assert isinstance(events[1], InvocationEnded) and events[1].invocation.exit_code == 2
    assert len(events) == 2
