"""The interactive session client against an in-memory controller stream, on pipes (and a pty).

The test plays the controller: it reads what opsctl wrote on the stream and answers. Waits are
bounded by ``LIMIT`` (a guard against a hang, never a delay that makes a test pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import signal
import struct
import termios
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from fleetops.common.errors import NotFound, PermissionDenied, Unavailable
from fleetops.common.rpc_client import ERROR_CLASS_KEY, HINT_KEY
from fleetops.common.session_flow import SendWindow
from fleetops.opsctl.terminal_session import (
    EXIT_LOST,
    SessionClient,
    SessionLost,
    Terminal,
    is_transport_error,
    session_env,
    start_request,
)
from fleetops.v1 import operator_pb2 as pb
from fleetops.v1 import session_pb2

LIMIT = 5.0
Msg = pb.SessionClientMessage


def rpc_error(code: grpc.StatusCode, details: str = "", error_class: str = "", hint: str = "") -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if error_class:
        trailing = grpc.aio.Metadata((ERROR_CLASS_KEY, error_class), (HINT_KEY, hint.encode()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=details)


def broken() -> grpc.aio.AioRpcError:
    return rpc_error(grpc.StatusCode.UNAVAILABLE, "Connection reset by peer")


class FakeCall:
    """One ``OperatorService.Session`` call as opsctl sees it (``write``/``read``/``cancel``)."""

    def __init__(self) -> None:
        self.sent: list[Msg] = []
        self._changed = asyncio.Event()
        self._incoming: asyncio.Queue[Any] = asyncio.Queue()
        self._error: BaseException | None = None
        self.cancelled = False

    # -- opsctl's side
    async def write(self, message: Msg) -> None:
        if self._error is not None or self.cancelled:
            raise asyncio.InvalidStateError("RPC already finished.")
        copy = Msg()
        copy.CopyFrom(message)
        self.sent.append(copy)
        self._changed.set()

    async def read(self) -> Any:
        if self._error is not None:
            raise self._error
        item = await self._incoming.get()
        if isinstance(item, BaseException):
            self._error = item
            raise item
        return item

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    # -- the controller's side
    def reply(self, **body: Any) -> None:
        self._incoming.put_nowait(pb.SessionServerMessage(**body))

    def started(self, session_id: str = "s-1", received_seq: int = 0, resume_seconds: int = 60) -> None:
        self.reply(
            started=pb.SessionStarted(session_id=session_id, received_seq=received_seq, resume_seconds=resume_seconds)
        )

    def output(self, seq: int, data: bytes) -> None:
        self.reply(output=session_pb2.SessionOutput(seq=seq, data=data))

    def ended(self, exit_code: int = 0, reason: str = "exited", message: str = "") -> None:
        self.reply(ended=pb.SessionEnded(exit_code=exit_code, reason=reason, message=message))

    def fail(self, error: BaseException) -> None:
        self._incoming.put_nowait(error)

    def eof(self) -> None:
        self._incoming.put_nowait(grpc.aio.EOF)

    async def until(self, found: Callable[[list[Msg]], Any], what: str) -> Any:
        """Wait (bounded) until ``found(sent)`` is truthy; its value."""

        async def wait() -> Any:
            while not (result := found(self.sent)):
                self._changed.clear()
                await self._changed.wait()
            return result

        try:
            return await asyncio.wait_for(wait(), LIMIT)
        except TimeoutError:
            raise AssertionError(f"opsctl never sent {what}; it sent {self.sent}") from None

    async def input(self, seq: int) -> session_pb2.SessionInput:
        def find(sent: list[Msg]) -> Any:
            return next((m.input for m in sent if m.WhichOneof("body") == "input" and m.input.seq == seq), None)

        return await self.until(find, f"input {seq}")

    async def output_ack(self, seq: int) -> None:
        await self.until(lambda sent: any(m.output_ack >= seq for m in sent), f"output_ack {seq}")

    def inputs(self) -> list[tuple[int, bytes]]:
        return [(m.input.seq, m.input.data) for m in self.sent if m.WhichOneof("body") == "input"]


class FakeController:
    """Hands out the calls opsctl opens; ``script`` pre-sets what each new call does."""

    def __init__(self) -> None:
        self.calls: list[FakeCall] = []
        self.opened = asyncio.Event()
        self.on_open: Callable[[FakeCall], None] | None = None

    def open(self) -> FakeCall:
        call = FakeCall()
        self.calls.append(call)
        if self.on_open is not None:
            self.on_open(call)
        self.opened.set()
        return call

    async def call(self, index: int) -> FakeCall:
        async def wait() -> FakeCall:
            while len(self.calls) <= index:
                self.opened.clear()
                await self.opened.wait()
            return self.calls[index]

        try:
            return await asyncio.wait_for(wait(), LIMIT)
        except TimeoutError:
            raise AssertionError(f"opsctl opened {len(self.calls)} calls, not {index + 1}") from None


@dataclass
class Local:
    """Pipes for stdin and stdout, and a settable window size."""

    stdin_r: int
    stdin_w: int
    stdout_r: int
    stdout_w: int
    stderr: io.StringIO = field(default_factory=io.StringIO)
    size: tuple[int, int] = (100, 40)

    def terminal(self, **kw: Any) -> Terminal:
        return Terminal(
            stdin_fd=kw.pop("stdin_fd", self.stdin_r),
            stdout_fd=self.stdout_w,
            stderr=self.stderr,
            size=lambda: self.size,
            raw=kw.pop("raw", False),
        )

    def type(self, data: bytes) -> None:
        os.write(self.stdin_w, data)

    def screen(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(self.stdout_r, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture
def local() -> Any:
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    os.set_blocking(stdout_r, False)
    yield Local(stdin_r, stdin_w, stdout_r, stdout_w)
    for fd in (stdin_r, stdin_w, stdout_r, stdout_w):
        with contextlib.suppress(OSError):
            os.close(fd)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def client_for(local: Local, controller: FakeController, clock: FakeClock | None = None, **kw: Any) -> SessionClient:
    clock = clock or FakeClock()
    request = start_request("web-1", run_as="deploy", environ={"TERM": "screen", "LANG": "C.UTF-8", "HOME": "/x"})
    return SessionClient(
        request,
        controller.open,
        kw.pop("terminal", None) or local.terminal(),
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )


@contextlib.asynccontextmanager
async def running(client: SessionClient) -> AsyncIterator[asyncio.Task[int]]:
    task = asyncio.create_task(client.run())
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def finish(task: asyncio.Task[int]) -> int:
    return await asyncio.wait_for(task, LIMIT)


# -- start ---------------------------------------------------------------------------------------


def test_only_lang_lc_and_tz_pass_from_the_environment() -> None:
    environ = {"LANG": "de_DE.UTF-8", "LC_ALL": "C", "LC_TIME": "en_GB", "TZ": "UTC", "PATH": "/bin", "HOME": "/r"}
    environ |= {"SSH_AUTH_SOCK": "/tmp/x", "LCX": "no", "TERM": "screen", "LANGUAGE": "de"}
    assert session_env(environ) == {"LANG": "de_DE.UTF-8", "LC_ALL": "C", "LC_TIME": "en_GB", "TZ": "UTC"}
    request = start_request("web-1", run_as="deploy", command="top", record_input=True, size=(120, 50), environ=environ)
    assert (request.host, request.run_as, request.command, request.record_input) == ("web-1", "deploy", "top", True)
    assert (request.size.cols, request.size.rows, request.term) == (120, 50, "screen")
    assert dict(request.env) == session_env(environ)
    assert start_request("h", environ={}).term == "xterm-256color"


async def test_session_relays_keystrokes_and_output_and_exits_with_the_remote_code(local: Local) -> None:
    controller = FakeController()
    client = client_for(local, controller)
    async with running(client) as task:
        call = await controller.call(0)
        start = (await call.until(lambda sent: sent, "the start request"))[0]
        assert start.WhichOneof("body") == "start"
        assert (start.start.host, start.start.run_as, start.start.term) == ("web-1", "deploy", "screen")
        assert (start.start.size.cols, start.start.size.rows) == (100, 40)  # the terminal's size now
        assert dict(start.start.env) == {"LANG": "C.UTF-8"}
        call.started("s-1")

        local.type(b"ls\r")
        assert (await call.input(1)).data == b"ls\r"  # input is numbered from 1
        local.type(b"exit\r")
        assert (await call.input(2)).data == b"exit\r"

        call.output(1, b"file\r\n")
        call.output(2, b"bye\r\n")
        await call.output_ack(2)
        assert local.screen() == b"file\r\nbye\r\n"  # written before it was acknowledged
        call.ended(exit_code=3)
        assert await finish(task) == 3
    assert client.session_id == "s-1"
    assert local.stderr.getvalue() == ""  # the program exited: nothing to explain
    assert call.cancelled


async def test_a_burst_of_output_is_acknowledged_once(local: Local) -> None:
    controller = FakeController()
    client = client_for(local, controller)
    async with running(client) as task:
        call = await controller.call(0)
        call.started()
        for seq in range(1, 6):
            call.output(seq, b"line %d\r\n" % seq)
        await call.output_ack(5)
        assert local.screen() == b"".join(b"line %d\r\n" % seq for seq in range(1, 6))
        # Every acknowledgement is a message on each hop: the burst is acknowledged as a whole.
        assert [m.output_ack for m in call.sent if m.WhichOneof("body") == "output_ack"] == [5]
        call.ended()
        assert await finish(task) == 0


async def test_output_waits_for_a_full_stdout_and_is_acknowledged_once_written(local: Local) -> None:
    # Fill the pipe behind opsctl's stdout (through a descriptor of our own: opsctl's stays blocking).
    filler = os.open(f"/proc/self/fd/{local.stdout_w}", os.O_WRONLY | os.O_NONBLOCK)
    try:
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(filler, b"." * 4096)
    finally:
        os.close(filler)
    controller = FakeController()
    client = client_for(local, controller)
    async with running(client) as task:
        call = await controller.call(0)
        call.started()
        local.type(b"k")
        await call.input(1)  # the event loop is not blocked by the full stdout...
        call.output(1, b"held")
        for _ in range(50):  # (loop turns, no time passes)
            await asyncio.sleep(0)
        local.type(b"j")
        await call.input(2)  # ...while the frame waits for room
        assert not any(m.WhichOneof("body") == "output_ack" for m in call.sent)  # not written: not acknowledged
        screen = b""
        async with asyncio.timeout(LIMIT):
            while not screen.endswith(b"held"):  # the terminal reads again (polled: stdout is a pipe)
                screen += local.screen()
                await asyncio.sleep(0.001)
        await call.output_ack(1)
        call.ended()
        assert await finish(task) == 0


async def test_input_acks_release_the_window_and_a_full_window_stops_input(local: Local) -> None:
    controller = FakeController()
    client = client_for(local, controller, window=SendWindow(window_frames=2))
    async with running(client) as task:
        call = await controller.call(0)
        call.started()
        local.type(b"a")
        await call.input(1)
        local.type(b"b")
        await call.input(2)
        local.type(b"c")
        for _ in range(50):  # let the loop run (no time passes): "c" must not go out
            await asyncio.sleep(0)
        assert call.inputs() == [(1, b"a"), (2, b"b")]
        assert client.window.unacked_frames == 2
        call.reply(input_ack=2)
        assert (await call.input(3)).data == b"c"
        assert client.window.acked == 2
        call.reply(input_ack=3)
        call.ended()
        assert await finish(task) == 0
    assert client.window.acked == 3


async def test_stdin_eof_does_not_end_the_session(local: Local) -> None:
    controller = FakeController()
    client = client_for(local, controller)
    async with running(client) as task:
        call = await controller.call(0)
        call.started()
        local.type(b"echo hi\n")
        os.close(local.stdin_w)
        await call.input(1)
        call.output(1, b"hi\n")
        await call.output_ack(1)
        call.ended(exit_code=0)
        assert await finish(task) == 0
    assert local.screen() == b"hi\n"


async def test_resize_sends_a_resize_frame_in_the_input_sequence(local: Local) -> None:
    controller = FakeController()
    client = client_for(local, controller)
    async with running(client) as task:
        call = await controller.call(0)
        call.started()
        local.type(b"x")
        await call.input(1)
        client.resize()  # unchanged: nothing to send
        local.size = (132, 43)
        client.resize()
        frame = await call.input(2)
        assert frame.WhichOneof("event") == "resize"
        assert (frame.resize.cols, frame.resize.rows) == (132, 43)
        call.ended()
        assert await finish(task) == 0
    assert [seq for seq, _ in call.inputs()] == [1, 2]


@pytest.mark.parametrize(
    ("reason", "exit_code", "expected"),
    [("killed", 129, 129), ("idle_timeout", 129, 129), ("agent_lost", 0, EXIT_LOST)],
)
async def test_an_end_other_than_exit_is_explained(local: Local, reason: str, exit_code: int, expected: int) -> None:
    controller = FakeController()
    client = client_for(local, controller)
    async with running(client) as task:
        call = await controller.call(0)
        call.started()
        call.output(1, b"last words")
        call.ended(exit_code=exit_code, reason=reason, message=f"the session ended: {reason} (test)")
        assert await finish(task) == expected
    assert local.screen() == b"last words"  # output before the end is shown first
    assert f"fleetops: the session ended: {reason} (test)" in local.stderr.getvalue()


# -- errors before the start ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (rpc_error(grpc.StatusCode.NOT_FOUND, "no host web-1", "NotFound", "opsctl hosts list"), NotFound),
        (rpc_error(grpc.StatusCode.UNAVAILABLE, "web-1 is offline", "Unavailable", "start the agent"), Unavailable),
        (rpc_error(grpc.StatusCode.PERMISSION_DENIED, "deploy is refused", "PermissionDenied"), PermissionDenied),
        (broken(), Unavailable),  # the controller cannot be reached: no session to resume
    ],
)
async def test_an_error_before_the_start_is_the_fleetops_error(
    local: Local, error: grpc.aio.AioRpcError, expected: type[Exception]
) -> None:
    controller = FakeController()
    controller.on_open = lambda call: call.fail(error)
    client = client_for(local, controller)
    with pytest.raises(expected) as caught:
        await asyncio.wait_for(client.run(), LIMIT)
    assert not isinstance(caught.value, SessionLost)
    assert len(controller.calls) == 1  # never retried
    if error.details() == "no host web-1":
        assert caught.value.hint == "opsctl hosts list"  # type: ignore[attr-defined]


def test_transport_errors_are_told_from_answers() -> None:
    assert is_transport_error(broken())
    assert is_transport_error(rpc_error(grpc.StatusCode.INTERNAL, "RST_STREAM"))
    assert not is_transport_error(rpc_error(grpc.StatusCode.UNAVAILABLE, "host offline", "Unavailable"))
    assert not is_transport_error(rpc_error(grpc.StatusCode.NOT_FOUND, "gone", "NotFound"))
    assert not is_transport_error(rpc_error(grpc.StatusCode.UNKNOWN, "bug"))


async def test_a_fleetops_error_during_the_session_is_not_resumed(local: Local) -> None:
    controller = FakeController()
    client = client_for(local, controller)
    async with running(client) as task:
        call = await controller.call(0)
        call.started()
        call.fail(rpc_error(grpc.StatusCode.PERMISSION_DENIED, "not yours", "PermissionDenied"))
        with pytest.raises(PermissionDenied):
            await finish(task)
    assert len(controller.calls) == 1


# -- resume --------------------------------------------------------------------------------------


async def test_resume_resends_only_missing_input_and_drops_duplicate_output(local: Local) -> None:
    controller = FakeController()
    client = client_for(local, controller)
    async with running(client) as task:
        first = await controller.call(0)
        first.started("s-7")
        for seq, key in enumerate((b"a", b"b", b"c"), start=1):
            local.type(key)
            await first.input(seq)
        first.reply(input_ack=1)
        first.output(1, b"x")
        first.output(2, b"y")
        await first.output_ack(2)
        first.fail(broken())

        second = await controller.call(1)
        attach = (await second.until(lambda sent: sent, "the attach"))[0]
        assert attach.WhichOneof("body") == "attach"
        assert (attach.attach.session_id, attach.attach.received_seq) == ("s-7", 2)
        second.started("s-7", received_seq=2)  # the controller holds input 1..2: only 3 again
        assert (await second.input(3)).data == b"c"
        second.output(2, b"y")  # a duplicate after the resume: dropped
        second.output(3, b"z")
        await second.output_ack(3)
        local.type(b"d")
        assert (await second.input(4)).data == b"d"
        second.ended(exit_code=0)
        assert await finish(task) == 0
    assert second.inputs() == [(3, b"c"), (4, b"d")]
    assert local.screen() == b"xyz"
    err = local.stderr.getvalue()
    assert "fleetops: connection to the controller lost; reconnecting..." in err
    assert "fleetops: reconnected" in err
    assert client.reattached == 1


async def test_reattach_retries_with_backoff_while_the_controller_is_unreachable(local: Local) -> None:
    controller = FakeController()
    clock = FakeClock()
    client = client_for(local, controller, clock, backoff=(0.25, 1.0))
    async with running(client) as task:
        first = await controller.call(0)
        first.started("s-1")
        refusals = 3
        controller.on_open = lambda call: call.fail(broken()) if len(controller.calls) <= 1 + refusals else None
        first.eof()  # closed without "ended": a broken stream too
        good = await controller.call(1 + refusals)
        attach = (await good.until(lambda sent: sent, "the attach"))[0]
        assert attach.attach.received_seq == 0
        good.started("s-1")
        good.ended(exit_code=5)
        assert await finish(task) == 5
    assert clock.sleeps == [0.25, 0.5, 1.0, 1.0]


async def test_reattach_gives_up_after_the_resume_window(local: Local) -> None:
    controller = FakeController()
    clock = FakeClock()
    client = client_for(local, controller, clock)
    async with running(client) as task:
        first = await controller.call(0)
        first.started("s-1", resume_seconds=10)
        controller.on_open = lambda call: call.fail(broken())
        first.fail(broken())
        with pytest.raises(SessionLost, match="within 10 s") as caught:
            await finish(task)
    assert caught.value.exit_code == EXIT_LOST == 255
    assert 1 < len(controller.calls) < 20
    assert clock.now - 1000.0 == pytest.approx(10.0)


async def test_the_session_ending_while_disconnected_exits_255(local: Local) -> None:
    controller = FakeController()
    client = client_for(local, controller)
    async with running(client) as task:
        first = await controller.call(0)
        first.started("s-1")
        controller.on_open = lambda call: call.fail(rpc_error(grpc.StatusCode.NOT_FOUND, "no session s-1", "NotFound"))
        first.fail(broken())
        with pytest.raises(SessionLost, match="ended while opsctl was disconnected") as caught:
            await finish(task)
    assert caught.value.exit_code == 255


# -- the local terminal ----------------------------------------------------------------------------


def set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@pytest.mark.parametrize("ending", ["ended", "error"])
async def test_raw_mode_on_a_terminal_is_restored_however_the_session_ends(local: Local, ending: str) -> None:
    master, slave = os.openpty()
    try:
        set_winsize(slave, 90, 30)
        before = termios.tcgetattr(slave)
        controller = FakeController()
        terminal = Terminal(stdin_fd=slave, stdout_fd=local.stdout_w, stderr=local.stderr)
        assert terminal.raw  # a terminal: raw mode by default
        assert terminal.window_size() == (90, 30)
        client = client_for(local, controller, terminal=terminal)
        async with running(client) as task:
            call = await controller.call(0)
            call.started()
            for _ in range(1000):  # raw mode comes with the start (loop turns, no time passes)
                if not termios.tcgetattr(slave)[3] & termios.ICANON:
                    break
                await asyncio.sleep(0)
            lflag = termios.tcgetattr(slave)[3]
            assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
            os.write(master, b"\x03")  # Ctrl-C is a key for the host, not a signal for opsctl
            assert (await call.input(1)).data == b"\x03"

            set_winsize(slave, 120, 35)
            os.kill(os.getpid(), signal.SIGWINCH)  # handled by the session while it runs
            frame = await call.input(2)
            assert (frame.resize.cols, frame.resize.rows) == (120, 35)

            if ending == "ended":
                call.ended(exit_code=130, reason="killed", message="killed by alice")
                assert await finish(task) == 130
                assert local.stderr.getvalue().endswith("\r\nfleetops: killed by alice\n")
            else:
                call.fail(rpc_error(grpc.StatusCode.PERMISSION_DENIED, "no", "PermissionDenied"))
                with pytest.raises(PermissionDenied):
                    await finish(task)
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


async def test_a_size_change_goes_before_keys_read_before_its_sigwinch(local: Local) -> None:
    # SIGWINCH and the keys typed after a resize arrive in one turn of the loop, in either order:
    # the size read with the keys goes first, so the remote program sees the new size for them.
    master, slave = os.openpty()
    try:
        set_winsize(slave, 90, 30)
        controller = FakeController()
        terminal = Terminal(stdin_fd=slave, stdout_fd=local.stdout_w, stderr=local.stderr)
        client = client_for(local, controller, terminal=terminal)
        async with running(client) as task:
            call = await controller.call(0)
            call.started()
            os.write(master, b"x")
            assert (await call.input(1)).data == b"x"
            set_winsize(slave, 132, 43)  # not this process's terminal: no SIGWINCH comes
            os.write(master, b"y")
            frame = await call.input(2)
            assert (frame.resize.cols, frame.resize.rows) == (132, 43)
            assert (await call.input(3)).data == b"y"
            call.ended()
            assert await finish(task) == 0
    finally:
        os.close(master)
        os.close(slave)
