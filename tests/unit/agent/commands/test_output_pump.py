"""Unit tests of the output pump: offsets, chunking, binary data, following a growing file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleetops.agent.commands.output import CHUNK_SIZE, pump_output
from fleetops.v1 import agent_pb2

STDOUT = agent_pb2.OUTPUT_STREAM_STDOUT
WAIT = 10.0


class Sink:
    """Collects OutputChunks; ``arrived`` fires on each one."""

    def __init__(self) -> None:
        self.chunks: list[agent_pb2.OutputChunk] = []
        self.arrived = asyncio.Event()

    async def send(self, message: agent_pb2.AgentMessage) -> None:
        self.chunks.append(message.output)
        self.arrived.set()

    @property
    def data(self) -> bytes:
        return b"".join(c.data for c in self.chunks)


def final(size: int) -> asyncio.Future[int]:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(size)
    return future


async def pump(path: Path, start: int, size: asyncio.Future[int], sink: Sink, **kwargs: object) -> int:
    return await asyncio.wait_for(
        pump_output(
            invocation_id="inv-1", stream=STDOUT, path=path, start=start, final_size=size, send=sink.send, **kwargs
        ),
        WAIT,
    )


BINARY = bytes(range(256)) * 3 + b"\x00\x00\xff\xfe\xc3\x28 not utf-8 \xed\xa0\x80\n"


@pytest.mark.parametrize("start", [0, 1, 255, len(BINARY) - 1, len(BINARY)])
async def test_resuming_from_an_offset_sends_exactly_the_remaining_bytes(tmp_path: Path, start: int) -> None:
    spool = tmp_path / "stdout"
    spool.write_bytes(BINARY)
    sink = Sink()
    end = await pump(spool, start, final(len(BINARY)), sink)
    assert end == len(BINARY)
    assert sink.data == BINARY[start:]  # NUL bytes and invalid UTF-8 arrive untouched
    offset = start
    for chunk in sink.chunks:
        assert (chunk.invocation_id, chunk.stream, chunk.offset) == ("inv-1", STDOUT, offset)
        offset += len(chunk.data)


async def test_big_output_goes_in_bounded_chunks(tmp_path: Path) -> None:
    spool = tmp_path / "stdout"
    payload = bytes(i % 251 for i in range(3 * CHUNK_SIZE + 5))
    spool.write_bytes(payload)
    sink = Sink()
    await pump(spool, 5, final(len(payload)), sink)
    assert [len(c.data) for c in sink.chunks] == [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE]
    assert [c.offset for c in sink.chunks] == [5, 5 + CHUNK_SIZE, 5 + 2 * CHUNK_SIZE]
    assert sink.data == payload[5:]


async def test_the_pump_stops_at_the_final_size_even_if_the_file_grows(tmp_path: Path) -> None:
    spool = tmp_path / "stdout"
    spool.write_bytes(b"counted" + b" written later by a left-over child")
    sink = Sink()
    assert await pump(spool, 0, final(7), sink) == 7
    assert sink.data == b"counted"  # exactly what the result's totals announce


async def test_the_pump_follows_a_file_while_the_process_runs(tmp_path: Path) -> None:
    spool = tmp_path / "stdout"
    spool.write_bytes(b"")
    sink = Sink()
    size: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(pump(spool, 0, size, sink, poll_interval=0.01))
    with spool.open("ab") as out:
        for part in (b"first\x00", b"second\xff"):
            sink.arrived.clear()
            out.write(part)
            out.flush()
            await asyncio.wait_for(sink.arrived.wait(), WAIT)
        out.write(b"last")
    size.set_result(spool.stat().st_size)  # the process exited
    assert await task == 17
    assert sink.data == b"first\x00second\xfflast"


async def test_an_offset_past_the_end_sends_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "stdout"
    spool.write_bytes(b"abc")
    sink = Sink()
    assert await pump(spool, 10, final(3), sink) == 10
    assert sink.chunks == []


async def test_a_down_link_stops_the_pump(tmp_path: Path) -> None:
    spool = tmp_path / "stdout"
    spool.write_bytes(b"abc")

    async def down(message: agent_pb2.AgentMessage) -> None:
        raise ConnectionError("not connected to the controller")

    with pytest.raises(ConnectionError):
        await pump_output(invocation_id="i", stream=STDOUT, path=spool, start=0, final_size=final(3), send=down)
