"""Unit tests of the agent's session runner: real programs on real ptys, an in-memory controller.

The controller's end of each session stream is a :class:`FakeStream` the test drives: it reads what
the agent sends and answers (attach, input, output acks, terminate), or breaks the stream.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import grpc
import pytest

from fleetops.agent.backoff import Backoff
from fleetops.agent.sessions.interfaces import READ_CHUNK_SIZE, Terminal
from fleetops.agent.sessions.runner import SessionManager, SessionRunner
from fleetops.agent.sessions.transport import GrpcSessionStream, SessionRejected, StreamLost
from fleetops.common.session_flow import WINDOW_BYTES
from fleetops.v1 import agent_pb2, session_pb2

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pseudo-terminals")

WAIT = 10.0


# -- the controller's end ------------------------------------------------------------------------------
class FakeStream:
    """One session stream: the agent's side is the SessionStream Protocol, the test drives the other."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.from_agent: asyncio.Queue[agent_pb2.AgentSessionMessage] = asyncio.Queue()
        self._to_agent: asyncio.Queue[agent_pb2.ControllerSessionMessage | BaseException | None] = asyncio.Queue()
        self._broken: BaseException | None = None
        self.half_closed = asyncio.Event()
        self.closed = asyncio.Event()

    # the agent's side
    async def send(self, message: agent_pb2.AgentSessionMessage) -> None:
        if self._broken is not None:
            raise self._broken
        assert not self.half_closed.is_set(), "a message after the half-close"
        self.from_agent.put_nowait(message)

    async def receive(self) -> agent_pb2.ControllerSessionMessage | None:
        item = await self._to_agent.get()
        if isinstance(item, BaseException):
            self._to_agent.put_nowait(item)  # and every later receive fails alike
            raise item
        return item

    async def done_writing(self) -> None:
        self.half_closed.set()
        self._to_agent.put_nowait(None)  # the controller ends the call after the agent's half-close

    async def close(self) -> None:
        self.closed.set()
        if self._broken is None:
            self.fail(StreamLost("closed by the agent"))

    # the test's side
    async def next(self) -> agent_pb2.AgentSessionMessage:
        return await asyncio.wait_for(self.from_agent.get(), WAIT)

    def reply(self, **body: object) -> None:
        self._to_agent.put_nowait(agent_pb2.ControllerSessionMessage(**body))  # type: ignore[arg-type]

    def input(self, seq: int, data: bytes = b"", resize: tuple[int, int] | None = None) -> None:
        if resize is not None:
            frame = session_pb2.SessionInput(seq=seq, resize=session_pb2.TerminalSize(cols=resize[0], rows=resize[1]))
        else:
            frame = session_pb2.SessionInput(seq=seq, data=data)
        self.reply(input=frame)

    def end(self) -> None:
        """The controller ends the call (status OK)."""
        self._to_agent.put_nowait(None)

    def fail(self, error: BaseException | None = None) -> None:
        """Break the stream: the agent's sends and receives fail from now on."""
        self._broken = error or StreamLost("connection reset by peer")
        self._to_agent.put_nowait(self._broken)


class FakeController:
    """Opens FakeStreams (the runner's StreamOpener); ``refuse`` makes opening fail."""

    def __init__(self) -> None:
        self.streams: asyncio.Queue[FakeStream] = asyncio.Queue()
        self.opened = 0
        self.refuse: BaseException | None = None

    async def __call__(self) -> FakeStream:
        self.opened += 1
        if self.refuse is not None:
            raise self.refuse
        stream = FakeStream(self.opened)
        self.streams.put_nowait(stream)
        return stream

    async def next_stream(self) -> FakeStream:
        return await asyncio.wait_for(self.streams.get(), WAIT)


class RecordingFactory:
    """The real PosixTerminalFactory, keeping the terminals it made."""

    def __init__(self) -> None:
        from fleetops.agent.sessions.posix_pty import PosixTerminalFactory

        self._factory = PosixTerminalFactory(hangup_grace=1.0)
        self.terminals: list[Terminal] = []

    async def spawn(
        self, user: str | None, command: str | None, cols: int, rows: int, term: str, env: Mapping[str, str]
    ) -> Terminal:
        terminal = await self._factory.spawn(user, command, cols, rows, term, env)
        self.terminals.append(terminal)
        return terminal


@dataclass
class Received:
    data: bytes = b""
    exit: session_pb2.SessionExit | None = None
    frames: list[session_pb2.SessionOutput] = field(default_factory=list)
    input_acks: list[int] = field(default_factory=list)


async def attach(controller: FakeController, received: int = 0) -> tuple[FakeStream, session_pb2.SessionAttach]:
    """The next stream's attach, answered with ``received`` (the output the controller holds)."""
    stream = await controller.next_stream()
    first = await stream.next()
    assert first.WhichOneof("body") == "attach"
    if not first.attach.HasField("refused"):
        stream.reply(attach=session_pb2.SessionAttach(session_id=first.attach.session_id, received_seq=received))
    return stream, first.attach


async def collect(stream: FakeStream, first_seq: int = 1, *, ack: bool = True) -> Received:
    """Output frames in order (acknowledged one by one) up to the exit frame; they must start at ``first_seq``."""
    result = Received()
    data = bytearray()
    expected = first_seq
    while result.exit is None:
        message = await stream.next()
        kind = message.WhichOneof("body")
        if kind == "input_ack":
            result.input_acks.append(message.input_ack)
            continue
        assert kind == "output", kind
        frame = message.output
        assert frame.seq == expected, f"frame {frame.seq} while {expected} was expected"
        expected += 1
        result.frames.append(frame)
        if ack:
            stream.reply(output_ack=frame.seq)
        if frame.WhichOneof("event") == "exit":
            result.exit = frame.exit
        else:
            data += frame.data
    result.data = bytes(data)
    return result


def open_session(session_id: str = "s-1", command: str | None = None, run_as: str = "", **size: int):  # type: ignore[no-untyped-def]
    return agent_pb2.ControllerMessage(
        open_session=agent_pb2.OpenSession(
            session_id=session_id,
            run_as=run_as,
            command=command or "",
            size=session_pb2.TerminalSize(**size),
            term="xterm-256color",
        )
    )


def fast_backoff() -> Backoff:
    return Backoff(base=0.01, cap=0.05)


@pytest.fixture
def controller() -> FakeController:
    return FakeController()


@pytest.fixture
def factory() -> RecordingFactory:
    return RecordingFactory()


@pytest.fixture
async def manager(controller: FakeController, factory: RecordingFactory) -> AsyncIterator[SessionManager]:
    result = SessionManager(None, factory, open_stream=controller, backoff_factory=fast_backoff)
    yield result
    await result.close(grace=1.0)


@dataclass
class Started:
    manager: SessionManager
    runner: SessionRunner
    task: asyncio.Task[None]


async def start(manager: SessionManager, message: agent_pb2.ControllerMessage) -> Started:
    await manager.on_open(message)
    session_id = message.open_session.session_id
    runner, task = manager.runner(session_id), manager.task(session_id)
    assert runner is not None and task is not None
    return Started(manager, runner, task)


async def ended(session: Started) -> SessionRunner:
    await asyncio.wait_for(session.task, WAIT)
    assert session.runner.session_id not in session.manager.active  # forgotten
    return session.runner


# -- a session from start to end ---------------------------------------------------------------------------
async def test_input_reaches_the_program_and_is_acknowledged(
    manager: SessionManager, controller: FakeController
) -> None:
    await manager.on_open(open_session(command='read line; echo "got:$line"'))
    stream, first = await attach(controller)
    assert first.session_id == "s-1" and first.received_seq == 0
    assert first.shell == pwd.getpwuid(os.geteuid()).pw_shell  # the program the transcript records
    stream.input(1, b"hello\r")
    received = await collect(stream)
    assert b"got:hello" in received.data
    assert received.input_acks and received.input_acks[-1] == 1
    assert (received.exit.exit_code, received.exit.reason) == (0, "exited")


async def test_typed_input_is_acknowledged_as_a_burst_before_the_exit(
    manager: SessionManager, controller: FakeController
) -> None:
    await manager.on_open(open_session(command='for i in 1 2 3 4 5; do read line; done; echo "last:$line"'))
    stream, _ = await attach(controller)
    for seq in range(1, 6):
        stream.input(seq, b"key%d\r" % seq)
    received = await collect(stream)
    assert b"last:key5" in received.data
    # Input acknowledgements are paced: the keys typed in one go are not acknowledged one by one,
    # and whatever was written is acknowledged before the exit frame.
    assert received.input_acks[-1] == 5
    assert len(received.input_acks) < 5


async def test_the_exit_code_of_the_program_ends_the_session(
    manager: SessionManager, controller: FakeController
) -> None:
    session = await start(manager, open_session(command="exit 3"))
    stream, _ = await attach(controller)
    received = await collect(stream)
    assert (received.exit.exit_code, received.exit.reason) == (3, "exited")
    runner = await ended(session)
    assert (runner.exit_code, runner.reason) == (3, "exited")
    # Closed only once the exit was acknowledged, and gently: a half-close first.
    assert stream.half_closed.is_set() and stream.closed.is_set()
    assert controller.opened == 1


async def test_a_controller_ending_the_stream_right_after_acknowledging_the_exit_is_no_loss(
    manager: SessionManager, controller: FakeController
) -> None:
    session = await start(manager, open_session(command="exit 5"))
    stream, _ = await attach(controller)
    received = await collect(stream, ack=False)
    stream.reply(output_ack=received.frames[-1].seq)
    stream.end()  # in the same breath: the agent must not take it for a lost stream
    runner = await ended(session)
    assert (runner.exit_code, runner.reason) == (5, "exited")
    assert controller.opened == 1


async def test_an_unexpected_failure_to_start_is_refused_as_an_internal_error(controller: FakeController) -> None:
    class Broken:
        async def spawn(self, *args: object) -> Terminal:
            raise OSError("no more processes")

    manager = SessionManager(None, Broken(), open_stream=controller)  # type: ignore[arg-type]
    session = await start(manager, open_session())
    _, first = await attach(controller)
    assert first.refused.kind == "InternalError"
    assert "no more processes" in first.refused.message
    await ended(session)


async def test_a_program_that_cannot_start_is_refused_in_the_attach_and_nothing_else(
    manager: SessionManager, controller: FakeController
) -> None:
    session = await start(manager, open_session(run_as="no-such-user-fleetops"))
    stream, first = await attach(controller)
    assert first.session_id == "s-1"
    assert first.refused.kind == "NotFound"
    assert "no-such-user-fleetops" in first.refused.message
    assert first.refused.hint
    runner = await ended(session)
    assert runner.reason == "refused"
    assert stream.half_closed.is_set() and stream.closed.is_set()
    assert stream.from_agent.empty()


async def test_resize_sets_the_window_size_of_the_program(manager: SessionManager, controller: FakeController) -> None:
    await manager.on_open(open_session(command="read x; stty size", cols=80, rows=24))
    stream, _ = await attach(controller)
    stream.input(1, resize=(100, 30))
    stream.input(2, b"\r")
    received = await collect(stream)
    assert b"30 100" in received.data
    assert received.input_acks[-1] == 2


async def test_default_window_size_when_the_controller_sends_none(
    manager: SessionManager, controller: FakeController
) -> None:
    await manager.on_open(open_session(command="stty size"))  # size 0x0
    stream, _ = await attach(controller)
    assert b"24 80" in (await collect(stream)).data


async def test_a_repeated_input_frame_is_written_once(manager: SessionManager, controller: FakeController) -> None:
    await manager.on_open(open_session(command='read x; echo "[$x]"'))
    stream, _ = await attach(controller)
    stream.input(1, b"a")
    stream.input(1, b"a")  # re-sent after a resume of the other leg
    stream.input(2, b"b\r")
    assert b"[ab]" in (await collect(stream)).data


async def test_terminate_hangs_up_and_the_exit_frame_tells_why(
    manager: SessionManager, controller: FakeController, factory: RecordingFactory
) -> None:
    session = await start(manager, open_session(command="sleep 1000"))
    stream, _ = await attach(controller)
    stream.reply(terminate=agent_pb2.SessionTerminate(reason="killed", message="killed by alice"))
    received = await collect(stream)
    assert received.exit.exit_code == 129  # the hung-up program's own code (SIGHUP)
    assert (received.exit.reason, received.exit.message) == ("killed", "killed by alice")
    runner = await ended(session)
    assert runner.reason == "killed"


async def test_agent_stop_hangs_up_running_sessions(
    manager: SessionManager, controller: FakeController, factory: RecordingFactory
) -> None:
    await manager.on_open(open_session(command="cat"))
    stream, _ = await attach(controller)
    closing = asyncio.create_task(manager.close(grace=WAIT))
    received = await collect(stream)
    await asyncio.wait_for(closing, WAIT)
    assert received.exit.exit_code == 129
    assert received.exit.reason == "agent_stopped"
    assert manager.active == []


async def test_a_repeated_open_session_starts_nothing_more(manager: SessionManager, controller: FakeController) -> None:
    session = await start(manager, open_session(command="exit 0"))
    await manager.on_open(open_session(command="exit 0"))
    stream, _ = await attach(controller)
    await collect(stream)
    await ended(session)
    await manager.on_open(open_session(command="exit 0"))  # even after it ended
    assert manager.active == []
    assert controller.opened == 1


# -- resume ------------------------------------------------------------------------------------------------
async def test_a_broken_stream_is_resumed_without_loss_or_duplication(
    manager: SessionManager, controller: FakeController
) -> None:
    await manager.on_open(open_session(command="seq 1 20000"))
    stream, _ = await attach(controller)
    frames = []
    while len(frames) < 3:
        message = await stream.next()
        assert message.WhichOneof("body") == "output"
        frames.append(message.output)
    assert [f.seq for f in frames] == [1, 2, 3]
    stream.reply(output_ack=1)
    stream.fail()  # frame 3 never reached the operator: the controller holds up to 2

    resumed, again = await attach(controller, received=2)
    assert again.session_id == "s-1"
    assert again.received_seq == 0  # no input received
    assert again.shell == ""  # told once, in the first attach
    rest = await collect(resumed, first_seq=3)
    assert (rest.exit.exit_code, rest.exit.reason) == (0, "exited")
    output = (frames[0].data + frames[1].data + rest.data).replace(b"\r\n", b"\n").decode()
    assert output.split("\n")[:-1] == [str(n) for n in range(1, 20001)]
    assert output.endswith("\n")
    assert stream.closed.is_set()  # the broken stream's channel is gone


async def test_input_received_before_a_break_is_not_asked_for_again(
    manager: SessionManager, controller: FakeController
) -> None:
    await manager.on_open(open_session(command='read x; echo "[$x]"'))
    stream, _ = await attach(controller)
    stream.input(1, b"a")
    stream.input(2, b"b")
    message = await stream.next()
    while message.WhichOneof("body") != "input_ack" or message.input_ack < 2:
        message = await stream.next()
    stream.fail()
    resumed, again = await attach(controller)
    assert again.received_seq == 2
    resumed.input(2, b"b")  # a re-send the agent has already: dropped
    resumed.input(3, b"\r")
    assert b"[ab]" in (await collect(resumed)).data


async def test_the_session_is_hung_up_when_no_stream_comes_back_in_the_resume_window(
    controller: FakeController, factory: RecordingFactory
) -> None:
    manager = SessionManager(None, factory, open_stream=controller, backoff_factory=fast_backoff, resume_seconds=0.5)
    session = await start(manager, open_session(command="cat"))
    stream, _ = await attach(controller)
    controller.refuse = StreamLost("controller unreachable")
    started = time.monotonic()
    stream.fail()
    runner = await ended(session)
    assert time.monotonic() - started >= 0.5
    assert controller.opened > 2  # it kept trying
    assert runner.reason == "stream_lost"
    assert await asyncio.wait_for(factory.terminals[0].wait(), WAIT) == 129  # hung up
    assert all(m.WhichOneof("body") != "output" or not m.output.HasField("exit") for m in _drain(stream))


@pytest.mark.parametrize("code", ["NOT_FOUND", "PERMISSION_DENIED"])
async def test_a_controller_that_rejects_the_session_gets_it_hung_up_at_once(
    manager: SessionManager, controller: FakeController, factory: RecordingFactory, code: str
) -> None:
    session = await start(manager, open_session(command="cat"))
    stream, _ = await attach(controller)
    stream.fail(SessionRejected("no session s-1 here", code=code))
    runner = await ended(session)  # long before the 60 s resume window
    assert runner.reason == "rejected"
    assert controller.opened == 1
    assert await asyncio.wait_for(factory.terminals[0].wait(), WAIT) == 129


async def test_a_restarted_controller_that_forgot_the_session_gets_it_hung_up(
    manager: SessionManager, controller: FakeController, factory: RecordingFactory
) -> None:
    session = await start(manager, open_session(command="cat"))
    stream, _ = await attach(controller)
    controller.refuse = SessionRejected("no session s-1", code="NOT_FOUND")
    stream.fail()
    runner = await ended(session)
    assert runner.reason == "rejected"
    assert controller.opened == 2
    assert await asyncio.wait_for(factory.terminals[0].wait(), WAIT) == 129


async def test_a_gap_in_the_input_sequence_ends_the_session(
    manager: SessionManager, controller: FakeController, factory: RecordingFactory
) -> None:
    session = await start(manager, open_session(command="cat"))
    stream, _ = await attach(controller)
    stream.input(2, b"x")  # frame 1 is missing
    runner = await ended(session)
    assert runner.reason == "protocol_error"
    assert await asyncio.wait_for(factory.terminals[0].wait(), WAIT) == 129


# -- flow control ------------------------------------------------------------------------------------------
async def test_without_acknowledgements_the_agent_stops_after_the_window(
    manager: SessionManager, controller: FakeController
) -> None:
    await manager.on_open(open_session(command="yes"))
    stream, _ = await attach(controller)
    in_flight = 0
    last_seq = 0
    while in_flight < WINDOW_BYTES:  # nothing acknowledged: the window fills...
        message = await stream.next()
        assert len(message.output.data) <= READ_CHUNK_SIZE
        in_flight += len(message.output.data)
        last_seq = message.output.seq
    # ...and then nothing more comes: the window is full, so the pump waits for room and the pty is not
    # read (`yes` blocks on its terminal). Checked on the window's state, not by waiting for nothing to arrive.
    runner = manager.runner("s-1")
    assert runner is not None
    assert WINDOW_BYTES <= in_flight == runner.unacked_output_bytes <= WINDOW_BYTES + READ_CHUNK_SIZE
    assert stream.from_agent.empty()
    stream.reply(output_ack=last_seq)  # room again: output flows
    message = await stream.next()
    assert message.output.seq == last_seq + 1
    stream.reply(output_ack=last_seq + 1)
    stream.reply(terminate=agent_pb2.SessionTerminate(reason="killed"))
    received = await collect(stream, first_seq=last_seq + 2)
    assert (received.exit.exit_code, received.exit.reason) == (129, "killed")


class StuckTerminal:
    """A program that never reads its input; its output is fed by the test."""

    pid = 4242
    shell = "/bin/stuck"

    def __init__(self) -> None:
        self.output: asyncio.Queue[bytes] = asyncio.Queue()
        self.writing = asyncio.Event()
        self.exited = asyncio.Event()

    async def read(self) -> bytes:
        return await self.output.get()

    async def write(self, data: bytes) -> None:
        self.writing.set()
        await asyncio.Event().wait()  # the terminal's input buffer is full, forever

    def resize(self, cols: int, rows: int) -> None:
        pass

    async def wait(self) -> int:
        await self.exited.wait()
        return 129

    def terminate(self) -> None:
        if not self.exited.is_set():
            self.exited.set()
            self.output.put_nowait(b"")

    def close(self) -> None:
        self.terminate()


async def test_a_program_that_does_not_read_its_input_does_not_stop_output_acknowledgements(
    controller: FakeController,
) -> None:
    terminal = StuckTerminal()

    class Factory:
        async def spawn(self, *args: object) -> StuckTerminal:
            return terminal

    manager = SessionManager(None, Factory(), open_stream=controller, window_frames=1)  # type: ignore[arg-type]
    try:
        terminal.output.put_nowait(b"first")
        terminal.output.put_nowait(b"second")
        await manager.on_open(open_session())
        stream, first = await attach(controller)
        assert first.shell == "/bin/stuck"
        assert (await stream.next()).output.data == b"first"
        stream.input(1, b"typed ahead")
        await asyncio.wait_for(terminal.writing.wait(), WAIT)  # the write waits for the program
        stream.reply(output_ack=1)  # still read and applied: the second frame gets room
        assert (await stream.next()).output.data == b"second"
        stream.reply(output_ack=2)
        stream.reply(terminate=agent_pb2.SessionTerminate(reason="killed"))
        received = await collect(stream, first_seq=3)
        assert received.exit.reason == "killed"
        assert received.input_acks == []  # never written, never acknowledged
    finally:
        await manager.close(grace=1.0)


# -- the gRPC adapter --------------------------------------------------------------------------------------
class FakeCall:
    def __init__(self, read: object = None, code: grpc.StatusCode = grpc.StatusCode.OK) -> None:
        self._read = read
        self._code = code
        self.cancelled = False

    async def read(self) -> object:
        if isinstance(self._read, BaseException):
            raise self._read
        return self._read

    async def write(self, message: object) -> None:
        raise asyncio.InvalidStateError("RPC already finished")

    async def code(self) -> grpc.StatusCode:
        return self._code

    async def details(self) -> str:
        return "details"

    def cancel(self) -> None:
        self.cancelled = True


class FakeChannel:
    closed = False

    async def close(self, grace: float | None = None) -> None:  # grpc.aio.Channel.close's signature
        self.closed = True


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="no such session")


@pytest.mark.parametrize("code", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED])
async def test_grpc_rejections_end_the_session(code: grpc.StatusCode) -> None:
    stream = GrpcSessionStream(FakeChannel(), FakeCall(read=rpc_error(code)))  # type: ignore[arg-type]
    with pytest.raises(SessionRejected) as caught:
        await stream.receive()
    assert caught.value.code == code.name


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED])
async def test_other_grpc_failures_are_resumable(code: grpc.StatusCode) -> None:
    stream = GrpcSessionStream(FakeChannel(), FakeCall(read=rpc_error(code)))  # type: ignore[arg-type]
    with pytest.raises(StreamLost):
        await stream.receive()


async def test_grpc_end_of_stream_and_writes_after_it() -> None:
    channel = FakeChannel()
    call = FakeCall(read=grpc.aio.EOF)
    stream = GrpcSessionStream(channel, call)  # type: ignore[arg-type]
    assert await stream.receive() is None
    with pytest.raises(StreamLost):
        await stream.send(agent_pb2.AgentSessionMessage(input_ack=1))
    await stream.close()
    assert call.cancelled and channel.closed


async def test_grpc_write_after_a_rejection_reports_the_rejection() -> None:
    stream = GrpcSessionStream(FakeChannel(), FakeCall(code=grpc.StatusCode.NOT_FOUND))  # type: ignore[arg-type]
    with pytest.raises(SessionRejected):
        await stream.send(agent_pb2.AgentSessionMessage(input_ack=1))


def _drain(stream: FakeStream) -> list[agent_pb2.AgentSessionMessage]:
    messages = []
    while not stream.from_agent.empty():
        messages.append(stream.from_agent.get_nowait())
    return messages
