"""The operator's end of an interactive session: the local terminal <-> ``OperatorService.Session``.

:class:`SessionClient` runs one session (docs/sessions.md):

- it sends ``StartSessionRequest`` and waits for ``SessionStarted``; an error before that (unknown
  or offline host, refused user) is raised as the fleetops error the controller sent;
- keystrokes (and window sizes, on SIGWINCH) become ``SessionInput`` frames in a
  :class:`~fleetops.common.session_flow.SendWindow`: they are numbered from 1 and kept until the
  controller's ``input_ack``; while the window is full stdin is not read (flow control);
- ``output`` frames pass a :class:`~fleetops.common.session_flow.ReceiveCursor` (re-sent duplicates
  are dropped), are written to stdout in order, and are acknowledged (``output_ack``) once written,
  paced by an :class:`~fleetops.common.session_flow.AckPacer` (a burst of output is acknowledged once);
- when the stream breaks on a transport error it reattaches (``SessionAttach`` with the last output
  seq received) with backoff for up to the resume window, and re-sends only the input the
  controller lacks (``SendWindow.rewind(SessionStarted.received_seq)``);
- ``ended`` gives the exit code; the reason is printed when the program did not simply exit.

All I/O is injectable (:class:`Terminal`: file descriptors, terminal size; the stream opener; the
clock and sleep of the backoff), so the core runs in tests on pipes and an in-memory stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys
import termios
import time
import tty
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import grpc

from fleetops.common.errors import InvalidInput, NotFound, Unavailable
from fleetops.common.rpc_client import EOF, ERROR_CLASS_KEY, error_from_rpc, trailing_metadata
from fleetops.common.session_flow import RESUME_SECONDS, AckPacer, ProtocolError, ReceiveCursor, SendWindow
from fleetops.common.terminal import check_size
from fleetops.v1 import operator_pb2, session_pb2

#: Bytes read from stdin at most per input frame: a keystroke is a few bytes whatever this is; bulk
#: input (a paste, ssh's bytes through opsctl proxy) goes faster in 256 KiB frames than in 64 KiB ones.
READ_CHUNK = 256 * 1024
#: The window size when the terminal's cannot be read (stdin and stdout are not terminals).
DEFAULT_SIZE = (80, 24)
DEFAULT_TERM = "xterm-256color"
#: Exit status when the session is lost (as ssh's on a lost connection).
EXIT_LOST = 255
#: Seconds before the first reattach attempt, doubled after each failure up to the maximum.
BACKOFF_INITIAL = 0.25
BACKOFF_MAX = 4.0
#: gRPC status codes that mean the stream broke (not an answer of the controller) when no fleetops
#: error class comes with them: the controller is down or restarting, the connection was reset.
TRANSPORT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED})


class SessionLost(Unavailable):
    """The session cannot be reached any more (resume window passed, or it ended meanwhile)."""

    exit_code = EXIT_LOST


class SessionCall(Protocol):
    """What the client needs of a ``grpc.aio`` stream-stream call (``stub.Session()``)."""

    async def write(self, request: operator_pb2.SessionClientMessage) -> None: ...

    async def read(self) -> Any: ...  # a SessionServerMessage, or EOF (grpc.aio.EOF)

    def cancel(self) -> bool: ...


StreamOpener = Callable[[], SessionCall]


def session_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of the operator's environment a session gets: ``LANG``, ``LC_*`` and ``TZ`` (ssh's SendEnv)."""
    return {k: v for k, v in environ.items() if k in ("LANG", "TZ") or k.startswith("LC_")}


def terminal_size(*fds: int) -> tuple[int, int]:
    """(cols, rows) of the first of ``fds`` that is a terminal, else 80x24."""
    for fd in fds:
        try:
            size = os.get_terminal_size(fd)
        except OSError:
            continue
        if size.columns > 0 and size.lines > 0:
            return size.columns, size.lines
    return DEFAULT_SIZE


def start_request(
    host: str,
    *,
    run_as: str = "",
    command: str = "",
    record_input: bool = False,
    size: tuple[int, int] = DEFAULT_SIZE,
    environ: Mapping[str, str] | None = None,
) -> operator_pb2.StartSessionRequest:
    environ = os.environ if environ is None else environ
    cols, rows = size
    check_size(cols, rows)  # refused here as the controller would, before anything is sent
    return operator_pb2.StartSessionRequest(
        host=host,
        run_as=run_as,
        command=command,
        size=session_pb2.TerminalSize(cols=cols, rows=rows),
        term=environ.get("TERM") or DEFAULT_TERM,
        env=session_env(environ),
        record_input=record_input,
    )


def is_transport_error(exc: grpc.aio.AioRpcError) -> bool:
    """Whether the call failed because the stream broke, rather than because the controller said no."""
    if exc.code() not in TRANSPORT_CODES:
        return False
    return not any(key == ERROR_CLASS_KEY for key, _ in trailing_metadata(exc))


@dataclass
class Terminal:
    """The local side: where keystrokes come from, where output goes, and the window size.

    ``raw`` (default: whether stdin is a terminal) puts stdin's terminal in raw mode for the session
    and follows SIGWINCH; otherwise stdin is read as a plain byte stream (a pipe or a file).
    """

    stdin_fd: int = 0
    stdout_fd: int = 1
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    size: Callable[[], tuple[int, int]] | None = None
    raw: bool | None = None

    def __post_init__(self) -> None:
        if self.raw is None:
            self.raw = os.isatty(self.stdin_fd)
        if self.size is None:
            fds = (self.stdin_fd, self.stdout_fd)
            self.size = lambda: terminal_size(*fds)

    def window_size(self) -> tuple[int, int]:
        assert self.size is not None
        return self.size()


class _StreamClosed(Exception):
    """The controller closed the stream without ``ended``: treated like a broken stream."""


class SessionClient:
    """One interactive session; :meth:`run` returns opsctl's exit code.

    Args:
        start: the ``StartSessionRequest`` (its size is replaced by the terminal's at start).
        opener: opens a new ``OperatorService.Session`` call (once, plus once per reattach).
        terminal: the local file descriptors and window size.
        peer: names the controller in error messages.
        clock, sleep: the time source and sleep of the reattach backoff (tests pass fakes).
        backoff: the first and the longest wait between reattach attempts.
        window: the input window (default: ``session_flow``'s 1 MiB / 512 frames).
        eof_input: at the end of stdin, send an empty data frame: the end of the input (an SSH
            session's client closed its side; ``opsctl proxy``). Otherwise the end of stdin
            only stops reading it.
    """

    def __init__(
        self,
        start: operator_pb2.StartSessionRequest,
        opener: StreamOpener,
        terminal: Terminal | None = None,
        *,
        peer: str = "the controller",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff: tuple[float, float] = (BACKOFF_INITIAL, BACKOFF_MAX),
        window: SendWindow[session_pb2.SessionInput] | None = None,
        eof_input: bool = False,
    ) -> None:
        self._start = start
        self._eof_input = eof_input
        self._opener = opener
        self.terminal = terminal or Terminal()
        self._peer = peer
        self._clock = clock
        self._sleep = sleep
        self._backoff = backoff
        self.session_id = ""
        self.started: operator_pb2.SessionStarted | None = None
        self.window: SendWindow[session_pb2.SessionInput] = window if window is not None else SendWindow()
        self.cursor = ReceiveCursor()
        self.reattached = 0
        self._size: tuple[int, int] = DEFAULT_SIZE
        self._screen: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._acks = AckPacer()  # output written to stdout, to acknowledge
        self._saved_mode: list[Any] | None = None
        self._was_raw = False
        self._signal: int | None = None
        self._stdout = _Stdout(self.terminal.stdout_fd)
        self._call: SessionCall | None = None  # the current stream

    # -- the whole session ---------------------------------------------------------------------
    async def run(self) -> int:
        """Start the session, relay it until it ends; the exit code (the remote program's).

        Raises:
            FleetopsError: the controller refused the session (as sent), or :class:`SessionLost`.
        """
        loop = asyncio.get_running_loop()
        self._call = call = await self._open_new()
        try:
            body = await self._first_answer(call)
        except BaseException:
            self._cancel(call)
            raise
        if body.WhichOneof("body") == "ended":
            self._cancel(call)
            return self._report_end(body.ended)
        tasks: list[asyncio.Task[Any]] = []
        main = asyncio.current_task()
        signals: list[signal.Signals] = []
        try:
            self._enter_raw()
            if self.terminal.raw:
                for signum in (signal.SIGTERM, signal.SIGHUP):
                    loop.add_signal_handler(signum, self._on_signal, signum, main)
                    signals.append(signum)
                loop.add_signal_handler(signal.SIGWINCH, self.resize)
                signals.append(signal.SIGWINCH)
            tasks.append(asyncio.create_task(self._read_stdin_loop(), name="session-stdin"))
            screen = asyncio.create_task(self._screen_loop(), name="session-screen")
            tasks.append(screen)
            ended = await self._relay(call, screen)
            await self._wait_screen(screen)
        except asyncio.CancelledError:
            if self._signal is None or main is None:
                raise
            main.uncancel()  # our own cancellation (SIGTERM, SIGHUP): end normally, terminal restored
            ended = None
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.window.close()
            self._acks.close()
            self._cancel(self._call)
            self._leave_raw()
            self._stdout.close()
        if ended is None:
            assert self._signal is not None
            return 128 + self._signal
        return self._report_end(ended)

    async def _relay(self, call: SessionCall, screen: asyncio.Task[None]) -> operator_pb2.SessionEnded:
        """Carry frames on ``call``, reattaching after transport errors, until ``ended``."""
        while True:
            try:
                return await self._pump(call, screen)
            except grpc.aio.AioRpcError as exc:
                if not is_transport_error(exc):
                    raise error_from_rpc(exc, self._peer) from exc
                reason = exc.details() or exc.code().name
            except _StreamClosed:
                reason = "the stream was closed"
            self._cancel(call)
            call, ended = await self._reattach(reason)
            self._call = call
            if ended is not None:
                return ended

    # -- opening and reattaching ---------------------------------------------------------------
    async def _open_new(self) -> SessionCall:
        self._size = self.terminal.window_size()
        check_size(*self._size)
        request = operator_pb2.StartSessionRequest()
        request.CopyFrom(self._start)
        request.size.cols, request.size.rows = self._size
        call = self._opener()
        try:
            await call.write(operator_pb2.SessionClientMessage(start=request))
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self._peer) from exc
        except asyncio.InvalidStateError:
            pass  # the call already ended: read() tells why
        return call

    async def _first_answer(self, call: SessionCall) -> operator_pb2.SessionServerMessage:
        try:
            message = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc, self._peer) from exc
        if message is EOF:
            raise Unavailable(f"{self._peer} closed the session before it started", "retry; see the controller's log")
        body = message.WhichOneof("body")
        if body == "started":
            self._on_started(message.started)
        elif body != "ended":
            raise ProtocolError(f"{self._peer} sent {body!r} before the session started")
        return message

    def _on_started(self, started: operator_pb2.SessionStarted) -> None:
        if self.session_id and started.session_id and started.session_id != self.session_id:
            raise ProtocolError(f"reattached to session {started.session_id}, not {self.session_id}")
        self.started = started
        self.session_id = self.session_id or started.session_id
        # Re-send only what the controller lacks (on a new session: everything, from 1).
        self.window.rewind(started.received_seq)

    async def _reattach(self, reason: str) -> tuple[SessionCall, operator_pb2.SessionEnded | None]:
        """A new stream to the session within the resume window: (call, None), or (call, ended).

        Raises:
            SessionLost: the window passed, or the controller no longer has the session.
        """
        self._notice("fleetops: connection to the controller lost; reconnecting...")
        resume = (self.started.resume_seconds if self.started else 0) or RESUME_SECONDS
        deadline = self._clock() + resume
        delay, max_delay = self._backoff
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise SessionLost(
                    f"connection to {self._peer} lost; could not reconnect within {resume:g} s ({reason})",
                    f"the session ends on the host; see: opsctl session show {self.session_id}",
                )
            await self._sleep(min(delay, remaining))
            delay = min(max(delay * 2, BACKOFF_INITIAL), max_delay)
            attach = session_pb2.SessionAttach(session_id=self.session_id, received_seq=self.cursor.received)
            call = self._opener()
            try:
                remaining = max(deadline - self._clock(), 0.001)
                message = await asyncio.wait_for(self._attach(call, attach), remaining)
            except grpc.aio.AioRpcError as exc:
                self._cancel(call)
                if is_transport_error(exc):
                    reason = exc.details() or exc.code().name
                    continue
                error = error_from_rpc(exc, self._peer)
                if isinstance(error, NotFound):
                    raise SessionLost(
                        f"session {self.session_id} ended while opsctl was disconnected ({error.message})",
                        f"see: opsctl session show {self.session_id}",
                    ) from exc
                raise error from exc
            except (TimeoutError, _StreamClosed) as exc:
                self._cancel(call)
                reason = "no answer" if isinstance(exc, TimeoutError) else "the stream was closed"
                continue
            body = message.WhichOneof("body")
            if body == "ended":
                return call, message.ended
            if body != "started":
                self._cancel(call)
                raise ProtocolError(f"{self._peer} answered a reattach with {body!r}")
            self._on_started(message.started)
            self.reattached += 1
            self._notice("fleetops: reconnected")
            return call, None

    async def _attach(self, call: SessionCall, attach: session_pb2.SessionAttach) -> Any:
        with contextlib.suppress(asyncio.InvalidStateError):  # ended already: read() tells why
            await call.write(operator_pb2.SessionClientMessage(attach=attach))
        message = await call.read()
        if message is EOF:
            raise _StreamClosed()
        return message

    # -- one stream ----------------------------------------------------------------------------
    async def _pump(self, call: SessionCall, screen: asyncio.Task[None]) -> operator_pb2.SessionEnded:
        self._acks.restart()  # the new stream has not carried our acknowledgement yet
        lock = asyncio.Lock()  # one write at a time on the stream
        reader = asyncio.create_task(self._read_loop(call), name="session-read")
        writers = [
            asyncio.create_task(self._write_loop(call, lock), name="session-write"),
            asyncio.create_task(self._ack_loop(call, lock), name="session-ack"),
        ]
        try:
            done, _ = await asyncio.wait({reader, *writers, screen}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                return reader.result()
            for writer in writers:
                if writer in done:
                    writer.result()  # raises the write's error
            screen.result()  # stdout failed
            raise AssertionError("unreachable: the writer and screen tasks only end with an error")
        finally:
            for task in (reader, *writers):
                task.cancel()
            await asyncio.gather(reader, *writers, return_exceptions=True)

    async def _read_loop(self, call: SessionCall) -> operator_pb2.SessionEnded:
        while True:
            message = await call.read()
            if message is EOF:
                raise _StreamClosed()
            body = message.WhichOneof("body")
            if body == "output":
                frame = message.output
                if self.cursor.accept(frame.seq):
                    data = frame.data if frame.WhichOneof("event") == "data" else b""
                    self._screen.put_nowait((frame.seq, data))
            elif body == "input_ack":
                self.window.ack(message.input_ack)
            elif body == "ended":
                return message.ended
            # "started" again, or a field this version does not know: nothing to do.

    async def _write_loop(self, call: SessionCall, lock: asyncio.Lock) -> None:
        """Input frames from the window, in order. A frame taken but not written goes again after a
        reattach (rewind): nothing is lost when this task is cancelled."""
        while True:
            seq, item = await self.window.take()
            frame = session_pb2.SessionInput()
            frame.CopyFrom(item)
            frame.seq = seq
            async with lock:
                await self._send(call, operator_pb2.SessionClientMessage(input=frame))

    async def _ack_loop(self, call: SessionCall, lock: asyncio.Lock) -> None:
        """``output_ack`` for the output written to stdout, when the pacer says so."""
        while True:
            seq = await self._acks.next()
            async with lock:
                await self._send(call, operator_pb2.SessionClientMessage(output_ack=seq))

    @staticmethod
    async def _send(call: SessionCall, message: operator_pb2.SessionClientMessage) -> None:
        try:
            await call.write(message)
        except asyncio.InvalidStateError:
            await asyncio.Event().wait()  # the call has ended: the reader reports how

    # -- local input and output ----------------------------------------------------------------
    def resize(self) -> None:
        """The local window changed size (SIGWINCH): send the new size if it differs."""
        if self.window.closed:
            return
        size = self.terminal.window_size()
        if size == self._size:
            return
        cols, rows = size
        try:
            check_size(cols, rows)
        except InvalidInput:
            return  # the controller would refuse it and end the stream: the host keeps the last good size
        self._size = size
        self.window.push_nowait(session_pb2.SessionInput(resize=session_pb2.TerminalSize(cols=cols, rows=rows)), 0)

    async def _read_stdin_loop(self) -> None:
        """stdin -> input frames; not read while the window is full; stops at EOF (the session goes on).

        While the window has room, stdin is read by a reader callback as soon as it is readable: a
        keystroke reaches the window (and wakes the writer) without a task switch.
        """
        loop = asyncio.get_running_loop()
        fd = self.terminal.stdin_fd
        while True:
            await self.window.room()
            more: asyncio.Future[bool] = loop.create_future()
            try:
                loop.add_reader(fd, self._on_stdin, fd, more)
            except (PermissionError, ValueError, OSError):
                # A regular file or /dev/null cannot be polled; reading it does not block for long.
                await self._read_unpollable(fd)
                return
            try:
                if not await more:
                    return
            finally:
                loop.remove_reader(fd)

    def _on_stdin(self, fd: int, more: asyncio.Future[bool]) -> None:
        """stdin is readable: read it into the window; ``more`` ends reading (EOF) or pauses it (full window)."""
        if more.done():
            return
        if self.window.closed:
            more.set_result(False)
            return
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # the terminal is gone (EIO after a hang-up): stop reading
        if not data:
            self._end_input()
            more.set_result(False)
            return
        if self.terminal.raw:
            # A size change goes before the keys typed after it, even when the keys are read before
            # SIGWINCH is handled (both arrive in one turn of the loop, in either order).
            self.resize()
        self.window.push_nowait(session_pb2.SessionInput(data=data), len(data))
        if not self.window.has_room():
            more.set_result(True)  # flow control: wait for acknowledgements

    async def _read_unpollable(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, fd, READ_CHUNK)
            except OSError:
                return
            if not data:
                self._end_input()
                return
            await self.window.push(session_pb2.SessionInput(data=data), len(data))

    def _end_input(self) -> None:
        if self._eof_input and not self.window.closed:
            self.window.push_nowait(session_pb2.SessionInput(data=b""), 0)

    async def _screen_loop(self) -> None:
        """Output frames -> stdout, in order; each written frame is to be acknowledged."""
        while True:
            seq, data = await self._screen.get()
            if data:
                await self._stdout.write(data)
            self._acks.consumed(seq, len(data))
            self._screen.task_done()

    async def _wait_screen(self, screen: asyncio.Task[None]) -> None:
        """Everything received is on the screen (or stdout failed: its error)."""
        drained = asyncio.create_task(self._screen.join())
        try:
            await asyncio.wait({drained, screen}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()
        if screen.done():
            screen.result()

    # -- the terminal --------------------------------------------------------------------------
    def _enter_raw(self) -> None:
        if not self.terminal.raw:
            return
        fd = self.terminal.stdin_fd
        self._saved_mode = termios.tcgetattr(fd)
        self._was_raw = True
        # TCSADRAIN, not tty's default TCSAFLUSH: keys typed while connecting are kept.
        tty.setraw(fd, termios.TCSADRAIN)

    def _leave_raw(self) -> None:
        if self._saved_mode is None:
            return
        mode, self._saved_mode = self._saved_mode, None
        with contextlib.suppress(termios.error, OSError):  # the terminal may be gone (hang-up)
            termios.tcsetattr(self.terminal.stdin_fd, termios.TCSADRAIN, mode)

    def _on_signal(self, signum: int, main: asyncio.Task[Any] | None) -> None:
        self._signal = signum
        if main is not None:
            main.cancel()

    def _notice(self, text: str) -> None:
        stream = self.terminal.stderr
        if self._saved_mode is not None:
            stream.write(f"\r\n{text}\r\n")  # raw mode: no newline translation, maybe mid-line
        else:
            stream.write(f"{text}\n")
        stream.flush()

    def _report_end(self, ended: operator_pb2.SessionEnded) -> int:
        self._leave_raw()
        if ended.reason and ended.reason != "exited":
            text = ended.message or f"the session ended ({ended.reason})"
            # The terminal is restored (newlines translate again); "\r\n" leaves a partial line.
            lead = "\r\n" if self._was_raw else ""
            self.terminal.stderr.write(f"{lead}fleetops: {text}\n")
            self.terminal.stderr.flush()
        if ended.reason == "agent_lost":
            return EXIT_LOST
        return ended.exit_code

    @staticmethod
    def _cancel(call: SessionCall | None) -> None:
        if call is not None:
            with contextlib.suppress(Exception):
                call.cancel()


class _Stdout:
    """Writes to stdout without ever blocking the event loop.

    A terminal or a pipe is written through an open file description of its own in non-blocking
    mode (O_NONBLOCK on stdout's would be shared with the shell and every process on the terminal),
    waiting for it to be writable when it is full. Anything else (a file, a socket...) is written
    by a blocking write in a thread. Either way a stopped or slow terminal (or a full pipe) holds
    the frame, and through the acknowledgements the program on the host, not the event loop.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._twin: int | None = None
        self._opened = False
        self._executor: ThreadPoolExecutor | None = None

    async def write(self, data: bytes) -> None:
        if not self._opened:
            self._opened = True
            self._twin = _nonblocking_twin(self._fd)
        if self._twin is None:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsctl-stdout")
            await asyncio.get_running_loop().run_in_executor(self._executor, _write_all, self._fd, data)
            return
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._twin, view) :]
            except BlockingIOError:
                await self._writable(self._twin)

    @staticmethod
    async def _writable(fd: int) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def mark_ready() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(fd, mark_ready)
        try:
            await ready
        finally:
            loop.remove_writer(fd)

    def close(self) -> None:
        if self._twin is not None:
            with contextlib.suppress(OSError):
                os.close(self._twin)
            self._twin = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None


def _nonblocking_twin(fd: int) -> int | None:
    """A new open file description of the terminal or pipe ``fd`` writes to, non-blocking; ``None``
    when there is none to be had (then ``fd`` is written in a thread)."""
    try:
        info = os.fstat(fd)
        if not os.get_blocking(fd):
            return None
        if stat.S_ISCHR(info.st_mode) and os.isatty(fd):
            path = os.ttyname(fd)
        elif stat.S_ISFIFO(info.st_mode) and os.path.isdir("/proc/self/fd"):
            path = f"/proc/self/fd/{fd}"  # Linux: opening it opens the pipe anew
        else:
            return None
        twin = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        same = os.fstat(twin)
        if (same.st_dev, same.st_ino) == (info.st_dev, info.st_ino) and os.get_blocking(fd):
            return twin
        if not os.get_blocking(fd):  # the system shared the description after all: undo
            os.set_blocking(fd, True)
    except OSError:
        pass
    os.close(twin)
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


__all__ = [
    "SessionClient",
    "SessionLost",
    "Terminal",
    "is_transport_error",
    "session_env",
    "start_request",
    "terminal_size",
]
