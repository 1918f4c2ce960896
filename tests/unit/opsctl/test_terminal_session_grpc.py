"""The session client on real ``grpc.aio`` calls: a scripted OperatorService.Session in this process.

The in-memory fake of test_terminal_session.py stands in for the call object; this checks the
client against grpc's own (EOF, status codes, trailing metadata, a stream aborted mid-session).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from fleetops.common.errors import NotFound
from fleetops.controller.rpc.errors import abort
from fleetops.opsctl.terminal_session import SessionClient, Terminal, start_request
from fleetops.v1 import operator_pb2 as pb
from fleetops.v1 import operator_pb2_grpc, session_pb2

LIMIT = 10.0
Handler = Callable[[grpc.aio.ServicerContext], Awaitable[None]]


class ScriptedSessions(operator_pb2_grpc.OperatorServiceServicer):
    """Each Session call runs the next handler of the script."""

    def __init__(self, handlers: list[Handler]) -> None:
        self.handlers = list(handlers)

    async def Session(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:  # noqa: N802
        await self.handlers.pop(0)(context)


async def read_until(context: grpc.aio.ServicerContext, body: str) -> pb.SessionClientMessage:
    while True:
        message = await context.read()
        assert message is not grpc.aio.EOF, f"the client closed the stream while {body} was expected"
        if message.WhichOneof("body") == body:
            return message


async def read_ack(context: grpc.aio.ServicerContext, seq: int) -> None:
    while (await read_until(context, "output_ack")).output_ack < seq:
        pass


def output(seq: int, data: bytes) -> pb.SessionServerMessage:
    return pb.SessionServerMessage(output=session_pb2.SessionOutput(seq=seq, data=data))


@contextlib.asynccontextmanager
async def serve(handlers: list[Handler]) -> AsyncIterator[operator_pb2_grpc.OperatorServiceStub]:
    server = grpc.aio.server()
    operator_pb2_grpc.add_OperatorServiceServicer_to_server(ScriptedSessions(handlers), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield operator_pb2_grpc.OperatorServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


@pytest.fixture
def pipes() -> Any:
    fds = [*os.pipe(), *os.pipe()]
    os.set_blocking(fds[2], False)
    yield fds
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def client(stub: operator_pb2_grpc.OperatorServiceStub, pipes: list[int], stderr: io.StringIO) -> SessionClient:
    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    terminal = Terminal(stdin_fd=pipes[0], stdout_fd=pipes[3], stderr=stderr, size=lambda: (80, 24), raw=False)
    return SessionClient(start_request("web-1", environ={}), lambda: stub.Session(), terminal, sleep=no_wait)


async def test_a_session_survives_an_aborted_stream(pipes: list[int]) -> None:
    seen: dict[str, Any] = {}

    async def first(context: grpc.aio.ServicerContext) -> None:
        seen["start"] = (await read_until(context, "start")).start
        await context.write(pb.SessionServerMessage(started=pb.SessionStarted(session_id="s-1", resume_seconds=60)))
        os.write(pipes[1], b"a")
        seen["input1"] = (await read_until(context, "input")).input
        await context.write(pb.SessionServerMessage(input_ack=1))
        await context.write(output(1, b"x"))
        await read_ack(context, 1)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "going away")  # no fleetops error: a broken stream

    async def second(context: grpc.aio.ServicerContext) -> None:
        seen["attach"] = (await read_until(context, "attach")).attach
        await context.write(pb.SessionServerMessage(started=pb.SessionStarted(session_id="s-1", received_seq=1)))
        await context.write(output(1, b"x"))  # re-sent: the client drops it
        await context.write(output(2, b"y"))
        await read_ack(context, 2)
        await context.write(pb.SessionServerMessage(ended=pb.SessionEnded(exit_code=7, reason="exited")))

    stderr = io.StringIO()
    async with serve([first, second]) as stub:
        assert await asyncio.wait_for(client(stub, pipes, stderr).run(), LIMIT) == 7
    assert seen["start"].host == "web-1" and (seen["start"].size.cols, seen["start"].size.rows) == (80, 24)
    assert (seen["input1"].seq, seen["input1"].data) == (1, b"a")
    assert (seen["attach"].session_id, seen["attach"].received_seq) == ("s-1", 1)
    assert os.read(pipes[2], 100) == b"xy"
    assert "reconnecting" in stderr.getvalue() and "reconnected" in stderr.getvalue()


async def test_a_refused_start_is_the_controllers_fleetops_error(pipes: list[int]) -> None:
    async def refuse(context: grpc.aio.ServicerContext) -> None:
        await read_until(context, "start")
        await abort(context, NotFound("no host named web-1", "see: opsctl hosts list"))

    async with serve([refuse]) as stub:
        with pytest.raises(NotFound, match="no host named web-1") as caught:
            await asyncio.wait_for(client(stub, pipes, io.StringIO()).run(), LIMIT)
    assert caught.value.hint == "see: opsctl hosts list"
