"""Interactive sessions on the agent: a program on a terminal, carried over a session stream of its own.

The controller asks for a session with ``OpenSession`` on the control link; :class:`SessionManager`
(the link's ``open_session`` handler) starts a :class:`SessionRunner` for it, which

1. spawns the program on a terminal (``TerminalFactory``), or reports why it could not
   (``SessionAttach{refused}``, and nothing else);
2. opens ``AgentService.SessionStream`` on a channel of its own and attaches
   (``SessionAttach{session_id, received_seq, shell}``); the controller answers with the highest
   output frame it holds, and only the frames above it are (re-)sent;
3. pumps output into a :class:`~fleetops.common.session_flow.SendWindow` (the pump waits while the
   window is full: the program blocks on its terminal, memory stays flat) and input from the stream
   to the terminal, acknowledging input once it is written (paced by an
   :class:`~fleetops.common.session_flow.AckPacer`; what is written is acknowledged before the exit frame);
4. ends with exactly one ``exit`` frame once the program is gone, and closes the stream when the
   controller has acknowledged it.

A stream that breaks does not end the session: the program keeps running and the runner opens a new
stream (with backoff) and attaches again. After ``resume_seconds`` without a working stream, or when
the controller refuses the session (``NOT_FOUND``: it forgot the session; ``PERMISSION_DENIED``), the
program is hung up. The protocol is docs/sessions.md.

Tasks of a running session: the pump (terminal -> window), the input writer (queue -> terminal),
the connection loop, and per stream a reader, an output writer and an input-ack writer. The stream
reader never waits for the terminal: input goes through a queue that the window of the sending side
bounds (more is a protocol error), so output acknowledgements keep flowing while a program does not
read its input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fleetops.agent.backoff import Backoff
from fleetops.agent.sessions.interfaces import DEFAULT_HANGUP_GRACE, Terminal, TerminalFactory
from fleetops.agent.sessions.transport import GrpcStreamOpener, SessionRejected, SessionStream, StreamLost, StreamOpener
from fleetops.agent.ssh import SshSetup
from fleetops.agent.state import AgentState
from fleetops.common.errors import FleetopsError, InternalError, InvalidInput, Unavailable
from fleetops.common.session_flow import (
    RESUME_SECONDS,
    WINDOW_BYTES,
    WINDOW_FRAMES,
    AckPacer,
    ProtocolError,
    ReceiveCursor,
    SendWindow,
    WindowClosed,
)
from fleetops.v1 import agent_pb2, session_pb2

log = logging.getLogger(__name__)

DEFAULT_COLS = 80
DEFAULT_ROWS = 24
DEFAULT_TERM = "xterm-256color"

#: ``SessionExit.reason`` of a program that ended by itself.
REASON_EXITED = "exited"
#: ...of a session hung up because the agent is stopping.
REASON_AGENT_STOPPED = "agent_stopped"
#: ...of a session hung up because its terminal failed.
REASON_AGENT_ERROR = "agent_error"
#: ``SessionTerminate`` without a reason.
REASON_TERMINATED = "terminated"

#: Seconds the controller has to end a finished stream after the agent's half-close.
FINISH_TIMEOUT = 5.0
#: Seconds to wait for a hung-up program to be gone (it is killed after the hang-up grace).
REAP_TIMEOUT = DEFAULT_HANGUP_GRACE + 5.0
#: Seconds :meth:`SessionManager.close` gives hung-up sessions to deliver their exit frame.
STOP_GRACE = 5.0
#: Input queued beyond this many times the sender's window is a protocol error (keeps memory bounded).
INPUT_WINDOW_SLACK = 2
#: Ids of ended sessions remembered, so a re-sent OpenSession does not start a second program.
REMEMBERED_SESSIONS = 1024


def default_backoff() -> Backoff:
    """Delays between attempts to (re)open a session stream: short, the resume window is 60 s."""
    return Backoff(base=0.5, cap=5.0)


@dataclass(frozen=True)
class SessionRequest:
    """What to start for a session (``OpenSession`` with its defaults applied)."""

    session_id: str
    user: str | None = None
    command: str | None = None
    cols: int = DEFAULT_COLS
    rows: int = DEFAULT_ROWS
    term: str = DEFAULT_TERM
    env: Mapping[str, str] = field(default_factory=dict)
    #: Set for an SSH session: the stream carries an SSH connection to the agent's SSH server.
    ssh: SshSetup | None = None

    @classmethod
    def from_proto(cls, message: agent_pb2.OpenSession) -> SessionRequest:
        ssh = None
        if message.HasField("ssh"):
            ssh = SshSetup(
                host_certificate=message.ssh.host_certificate,
                user_ca_keys=tuple(message.ssh.user_ca_keys),
                operator=message.ssh.operator,
                login=message.run_as,
                forward_to=tuple(message.ssh.forward_to),
                forward_denied=tuple(message.ssh.forward_denied),
                forward_remote=message.ssh.forward_remote,
                agent_forwarding=message.ssh.agent_forwarding,
                file_transfer=message.ssh.file_transfer,
            )
        return cls(
            session_id=message.session_id,
            user=message.run_as or None,
            command=message.command or None,
            cols=message.size.cols or DEFAULT_COLS,
            rows=message.size.rows or DEFAULT_ROWS,
            term=message.term or DEFAULT_TERM,
            env=dict(message.env),
            ssh=ssh,
        )


class _SessionOver(Exception):
    """The session cannot go on (no stream for too long, refused, protocol error): hang it up."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _resumable(exc: BaseException) -> bool:
    """Whether a failure of a stream leaves the session alive (a new stream may resume it)."""
    return isinstance(exc, (OSError, Unavailable)) and not isinstance(exc, WindowClosed)


def _fatal(exc: BaseException) -> _SessionOver | None:
    """The end of the session a stream failure means, or ``None`` when a new stream may resume it."""
    if isinstance(exc, SessionRejected):
        return _SessionOver("rejected", f"the controller refused the session stream ({exc.code}): {exc.message}")
    if isinstance(exc, ProtocolError):
        return _SessionOver("protocol_error", f"the controller broke the session protocol: {exc.message}")
    if _resumable(exc):
        return None
    return _SessionOver(REASON_AGENT_ERROR, f"unexpected failure of the session stream: {exc!r}")


class SessionRunner:
    """One session, from spawning its program to the controller's acknowledgement of its exit.

    Args:
        request: what to start.
        factory: starts the program on a terminal.
        open_stream: opens a new session stream to the controller (a channel of its own each time).
        resume_seconds: how long the session survives without a working stream.
        backoff: delays between attempts to open a stream.
        window_bytes: unacknowledged output bytes in flight at most (see ``SendWindow``).
        window_frames: ...and unacknowledged output frames.
    """

    def __init__(
        self,
        request: SessionRequest,
        factory: TerminalFactory,
        open_stream: StreamOpener,
        *,
        resume_seconds: float = RESUME_SECONDS,
        backoff: Backoff | None = None,
        window_bytes: int = WINDOW_BYTES,
        window_frames: int = WINDOW_FRAMES,
    ) -> None:
        self.request = request
        self._factory = factory
        self._open_stream = open_stream
        self._resume_seconds = resume_seconds
        self._backoff = backoff or default_backoff()
        # Output frames: the bytes read from the terminal, and finally the exit.
        # ...and, for an SSH session, what happened inside the connection (SessionActivity).
        self._out: SendWindow[bytes | session_pb2.SessionActivity | session_pb2.SessionExit] = SendWindow(
            window_bytes, window_frames
        )
        self._in_cursor = ReceiveCursor()
        # Input frames received and not written to the terminal yet. Bounded: the sender has at most
        # its window unacknowledged, and these frames are unacknowledged (checked in _accept_input).
        self._inbox: deque[session_pb2.SessionInput] = deque()
        self._inbox_bytes = 0
        self._inbox_changed = asyncio.Event()
        self._input_acks = AckPacer()  # input written to the terminal, to acknowledge
        self._exit_pushed = asyncio.Event()
        self._terminal: Terminal | None = None
        self._stream: SessionStream | None = None
        self._attached = False  # an attach was answered once (the controller knows the shell)
        self._hung_up = False
        self._ending: tuple[str, str] | None = None  # (reason, message) of an end not by the program
        #: The program's exit code once known; ``None`` while it runs or when it never started.
        self.exit_code: int | None = None
        #: Why the session ended (``exited``, the controller's terminate reason, ``refused``...).
        self.reason = ""

    @property
    def session_id(self) -> str:
        return self.request.session_id

    @property
    def unacked_output_bytes(self) -> int:
        """Output bytes kept for the controller until it acknowledges them (bounded by the window)."""
        return self._out.unacked_bytes

    def hang_up(self, reason: str, message: str) -> None:
        """End the session from the agent's side: the program is hung up, its exit frame tells ``reason``."""
        self._set_ending(reason, message)
        self._hung_up = True
        if self._terminal is not None:
            self._terminal.close()

    async def run(self) -> None:
        """Run the session to its end. Never raises but ``CancelledError``."""
        request = self.request
        try:
            terminal = await self._factory.spawn(
                request.user, request.command, request.cols, request.rows, request.term, request.env
            )
        except Exception as exc:
            error = exc if isinstance(exc, FleetopsError) else InternalError(f"cannot start the session: {exc!r}")
            if error is exc:
                log.warning("session %s refused: %s", request.session_id, error.message)
            else:
                log.exception("session %s could not start", request.session_id)
            self.reason = "refused"
            await self._refuse(error)
            return
        self._terminal = terminal
        log.info(
            "session %s started as %s (pid %d)", request.session_id, request.user or "the agent's user", terminal.pid
        )
        if self._hung_up:
            terminal.close()
        workers = [
            asyncio.create_task(self._pump(terminal), name=f"session {request.session_id} output"),
            asyncio.create_task(self._write_input(terminal), name=f"session {request.session_id} input"),
        ]
        serve = asyncio.create_task(self._serve(), name=f"session {request.session_id} stream")
        over: _SessionOver | None = None
        cancelled = False
        try:
            over = await self._supervise(serve, workers)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            for task in (serve, *workers):
                task.cancel()
            await asyncio.gather(serve, *workers, return_exceptions=True)
            self._out.close()
            self._input_acks.close()
            await self._drop_stream()
            if over is not None or cancelled:
                terminal.terminate()
            terminal.close()
            if over is not None:
                self.reason = over.reason
                log.warning("session %s hung up: %s", request.session_id, over.message)
                with contextlib.suppress(TimeoutError):
                    self.exit_code = await asyncio.wait_for(terminal.wait(), REAP_TIMEOUT)
        log.info("session %s ended: exit code %s (%s)", request.session_id, self.exit_code, self.reason)

    # -- the session's tasks ------------------------------------------------------------------------
    async def _supervise(self, serve: asyncio.Task[None], workers: list[asyncio.Task[None]]) -> _SessionOver | None:
        """Wait for the stream loop to finish; ``None`` when the exit frame was acknowledged."""
        pending: set[asyncio.Task[None]] = {serve, *workers}
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if serve in done:
                try:
                    serve.result()
                except _SessionOver as exc:
                    return exc
                return None
            for task in done:  # a worker ended: normal for the pump (after the exit frame), else a bug
                if task.exception() is not None:
                    log.error("session %s: %s failed", self.session_id, task.get_name(), exc_info=task.exception())
                    return _SessionOver(REASON_AGENT_ERROR, f"{task.get_name()} failed: {task.exception()!r}")

    async def _pump(self, terminal: Terminal) -> None:
        """Terminal output into the window (waits while it is full), then the one exit frame."""
        try:
            while data := await terminal.read():
                await self._out.push(data, len(data) if isinstance(data, bytes) else data.ByteSize())
        except WindowClosed:
            return
        except Unavailable as exc:
            log.error("session %s: %s", self.session_id, exc.message)
            self._set_ending(REASON_AGENT_ERROR, exc.message)
            terminal.terminate()
        code = await terminal.wait()
        reason, message = self._ending or (REASON_EXITED, "")
        self.exit_code, self.reason = code, reason
        self._out.push_nowait(session_pb2.SessionExit(exit_code=code, reason=reason, message=message), 0)
        self._exit_pushed.set()

    async def _write_input(self, terminal: Terminal) -> None:
        """Received input to the terminal, in order; each frame is acknowledged once written."""
        while True:
            while not self._inbox:
                self._inbox_changed.clear()
                await self._inbox_changed.wait()
            frame = self._inbox.popleft()
            data = frame.data
            self._inbox_bytes -= len(data)
            try:
                event = frame.WhichOneof("event")
                if event == "data":
                    await terminal.write(data)
                elif event == "resize":
                    terminal.resize(frame.resize.cols, frame.resize.rows)
            except InvalidInput as exc:
                log.warning("session %s: ignoring input frame %d: %s", self.session_id, frame.seq, exc.message)
            except Unavailable as exc:
                log.error("session %s: %s", self.session_id, exc.message)
                self._set_ending(REASON_AGENT_ERROR, exc.message)
                terminal.terminate()
            self._input_acks.consumed(frame.seq, len(data))

    async def _serve(self) -> None:
        """Keep a stream to the controller until the exit frame is acknowledged.

        Raises:
            _SessionOver: no working stream for ``resume_seconds``, or the controller refused the
                session, or broke the protocol.
        """
        loop = asyncio.get_running_loop()
        lost_at = loop.time()
        why = "no stream opened yet"
        failures = 0  # attempts failed since the stream was lost
        while True:
            remaining = lost_at + self._resume_seconds - loop.time()
            if remaining <= 0:
                raise _SessionOver(
                    "stream_lost", f"no stream to the controller for {self._resume_seconds:g} s (last: {why})"
                )
            try:
                stream = await asyncio.wait_for(self._attach(), remaining)
            except Exception as exc:
                over = _fatal(exc)
                if over is not None:
                    raise over from exc
                await self._drop_stream()
                why = str(exc) or type(exc).__name__
                delay = min(self._backoff.next_delay(), max(0.0, lost_at + self._resume_seconds - loop.time()))
                failures += 1
                log.log(
                    logging.WARNING if failures == 1 and not self._attached else logging.DEBUG,
                    "session %s: cannot attach a stream to the controller (%s); next attempt in %.2fs",
                    self.session_id,
                    why,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            if self._attached:
                log.warning(
                    "session %s: stream to the controller resumed (it holds output up to %d)",
                    self.session_id,
                    self._out.acked,
                )
            self._attached = True
            self._backoff.reset()
            try:
                if await self._carry(stream):
                    return
                why = "the controller ended the stream"
            except Exception as exc:
                over = _fatal(exc)
                if over is not None:
                    raise over from exc
                why = str(exc) or type(exc).__name__
            await self._drop_stream()
            log.warning(
                "session %s: stream to the controller lost (%s); resuming within %g s",
                self.session_id,
                why,
                self._resume_seconds,
            )
            lost_at = loop.time()

    async def _attach(self) -> SessionStream:
        """A new stream, attached: only the output frames the controller lacks are sent on it.

        Raises:
            StreamLost, SessionRejected: from the stream.
            ProtocolError: the controller answered with something else than an attach, or with
                a seq the agent cannot resume from.
        """
        stream = await self._open_stream()
        self._stream = stream
        attach = session_pb2.SessionAttach(session_id=self.session_id, received_seq=self._in_cursor.received)
        if not self._attached:
            attach.shell = getattr(self._terminal, "shell", "") or ""
        await stream.send(agent_pb2.AgentSessionMessage(attach=attach))
        reply = await stream.receive()
        if reply is None:
            raise StreamLost("the controller ended the stream before answering the attach")
        if reply.WhichOneof("body") != "attach":
            raise ProtocolError(f"the controller answered the attach with {reply.WhichOneof('body')!r}")
        self._out.rewind(reply.attach.received_seq)
        return stream

    async def _carry(self, stream: SessionStream) -> bool:
        """Run the session over ``stream``: ``True`` once the exit frame is acknowledged (the stream
        is closed then), ``False`` when the controller ended the stream before.

        Raises:
            StreamLost, SessionRejected, ProtocolError: the stream failed.
        """
        lock = asyncio.Lock()  # one write at a time on the stream
        reader = asyncio.create_task(self._read(stream))
        senders = [
            asyncio.create_task(self._send_output(stream, lock)),
            asyncio.create_task(self._send_acks(stream, lock)),
        ]
        finished = asyncio.create_task(self._exit_acknowledged())
        try:
            done, _ = await asyncio.wait({reader, finished, *senders}, return_when=asyncio.FIRST_COMPLETED)
            # The state, not which task woke first: the reader may have taken the ack of the exit
            # frame and the end of the stream in one go, before ``finished`` ran.
            if self._exit_is_acknowledged():
                async with lock:  # no write in flight: stopping the senders cancels no write of the call
                    for task in senders:
                        task.cancel()
                    await asyncio.gather(*senders, return_exceptions=True)
                # Half-close and let the controller end the call (rather than cancelling it).
                await stream.done_writing()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(reader, FINISH_TIMEOUT)
                return True
            for task in done:
                error = task.exception()
                if error is not None:
                    raise error
            return False  # the reader saw the end of the stream
        finally:
            for task in (reader, finished, *senders):
                task.cancel()
            await asyncio.gather(reader, finished, *senders, return_exceptions=True)

    async def _read(self, stream: SessionStream) -> None:
        """Messages from the controller until the stream ends; never waits for the terminal."""
        while (message := await stream.receive()) is not None:
            kind = message.WhichOneof("body")
            if kind == "input":
                self._accept_input(message.input)
            elif kind == "output_ack":
                self._out.ack(message.output_ack)
            elif kind == "terminate":
                self._on_terminate(message.terminate)
            else:
                log.warning("session %s: unexpected %r message from the controller; ignored", self.session_id, kind)

    async def _send_output(self, stream: SessionStream, lock: asyncio.Lock) -> None:
        while True:
            seq, item = await self._out.take()
            message = agent_pb2.AgentSessionMessage()
            message.output.seq = seq
            if isinstance(item, bytes):
                message.output.data = item
                async with lock:
                    await stream.send(message)
                continue
            if isinstance(item, session_pb2.SessionActivity):
                message.output.activity.CopyFrom(item)
                async with lock:
                    await stream.send(message)
                continue
            message.output.exit.CopyFrom(item)
            async with lock:
                # The input written before the program ended is acknowledged before its end.
                ack = self._input_acks.take()
                if ack is not None:
                    await stream.send(agent_pb2.AgentSessionMessage(input_ack=ack))
                await stream.send(message)

    async def _send_acks(self, stream: SessionStream, lock: asyncio.Lock) -> None:
        """``input_ack`` for the input written to the terminal, when the pacer says so."""
        self._input_acks.restart()  # the new stream has not carried our acknowledgement yet
        while True:
            seq = await self._input_acks.next()
            async with lock:
                await stream.send(agent_pb2.AgentSessionMessage(input_ack=seq))

    async def _exit_acknowledged(self) -> None:
        await self._exit_pushed.wait()
        await self._out.drained()

    def _exit_is_acknowledged(self) -> bool:
        return self._exit_pushed.is_set() and self._out.acked >= self._out.last_seq

    # -- frames from the controller -----------------------------------------------------------------
    def _accept_input(self, frame: session_pb2.SessionInput) -> None:
        """Queue a new input frame for the terminal; drop a re-sent one.

        Raises:
            ProtocolError: a gap in the sequence, or more input than the sender's window allows.
        """
        if (
            frame.seq > self._in_cursor.received
            and self._inbox
            and (
                len(self._inbox) >= WINDOW_FRAMES * INPUT_WINDOW_SLACK
                or self._inbox_bytes >= WINDOW_BYTES * INPUT_WINDOW_SLACK
            )
        ):
            raise ProtocolError(
                f"input frame {frame.seq} arrived with {len(self._inbox)} frames ({self._inbox_bytes} bytes) "
                "unacknowledged: beyond the sender's window"
            )
        if not self._in_cursor.accept(frame.seq):
            return
        self._inbox.append(frame)
        self._inbox_bytes += len(frame.data)
        self._inbox_changed.set()

    def _on_terminate(self, terminate: agent_pb2.SessionTerminate) -> None:
        reason = terminate.reason or REASON_TERMINATED
        log.info("session %s: the controller ends it (%s) %s", self.session_id, reason, terminate.message)
        self._set_ending(reason, terminate.message)
        if self._terminal is not None:
            self._terminal.terminate()

    def _set_ending(self, reason: str, message: str) -> None:
        if self._ending is None:
            self._ending = (reason, message)

    # -- streams ------------------------------------------------------------------------------------
    async def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.close()

    async def _refuse(self, error: FleetopsError) -> None:
        """Tell the controller the session could not start: one attach with ``refused``, nothing else."""
        attach = session_pb2.SessionAttach(
            session_id=self.session_id,
            refused=session_pb2.ErrorDetail(kind=type(error).__name__, message=error.message, hint=error.hint),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._resume_seconds
        while True:
            try:
                stream = await asyncio.wait_for(self._open_stream(), max(0.0, deadline - loop.time()))
                self._stream = stream
                await stream.send(agent_pb2.AgentSessionMessage(attach=attach))
                await stream.done_writing()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(_until_end(stream), FINISH_TIMEOUT)
                return
            except Exception as exc:
                if not _resumable(exc):
                    log.warning("session %s: could not report the refusal: %s", self.session_id, exc)
                    return
                remaining = deadline - loop.time()
                if remaining <= 0:
                    log.warning("session %s: could not report the refusal: %s", self.session_id, exc)
                    return
                await asyncio.sleep(min(self._backoff.next_delay(), remaining))
            finally:
                await self._drop_stream()


async def _until_end(stream: SessionStream) -> None:
    while await stream.receive() is not None:
        pass


class _NoSshServer:
    """Refuses SSH sessions on an agent that could not load its SSH host key."""

    async def spawn(
        self, user: str | None, command: str | None, cols: int, rows: int, term: str, env: Mapping[str, str]
    ) -> Terminal:
        raise Unavailable(
            "the agent on this host has no SSH host key", "see the agent's log on the host, then restart the agent"
        )


class SessionManager:
    """The sessions of this agent: starts one runner per ``OpenSession``, hangs them up on stop.

    Args:
        state: the agent's state directory (credentials for the session streams); may be ``None``
            when ``open_stream`` is given.
        factory: starts programs on terminals (``default_terminal_factory()``).
        open_stream: opens session streams; default: gRPC over a new mTLS channel each.
        resume_seconds: how long a session survives without a working stream.
        backoff_factory: a new :class:`Backoff` for each session.
        window_bytes, window_frames: the output window of each session.
    """

    def __init__(
        self,
        state: AgentState | None,
        factory: TerminalFactory,
        *,
        open_stream: StreamOpener | None = None,
        resume_seconds: float = RESUME_SECONDS,
        backoff_factory: Callable[[], Backoff] = default_backoff,
        window_bytes: int = WINDOW_BYTES,
        window_frames: int = WINDOW_FRAMES,
    ) -> None:
        if open_stream is None:
            if state is None:
                raise ValueError("SessionManager needs the agent's state or an open_stream")
            open_stream = GrpcStreamOpener(state)
        self._factory = factory
        self._open_stream = open_stream
        self._resume_seconds = resume_seconds
        self._backoff_factory = backoff_factory
        self._window_bytes = window_bytes
        self._window_frames = window_frames
        self._sessions: dict[str, tuple[SessionRunner, asyncio.Task[None]]] = {}
        self._ended: deque[str] = deque(maxlen=REMEMBERED_SESSIONS)
        self._closing = False
        self._ssh_servers: Callable[[SshSetup], TerminalFactory] | None = None

    def enable_ssh(self, servers: Callable[[SshSetup], TerminalFactory]) -> None:
        """Serve SSH sessions: ``servers(setup)`` starts the SSH server of one (docs/ssh.md).

        Without it an SSH session is refused (the agent has no SSH host key).
        """
        self._ssh_servers = servers

    @property
    def active(self) -> list[str]:
        """Ids of the sessions running now."""
        return list(self._sessions)

    def runner(self, session_id: str) -> SessionRunner | None:
        entry = self._sessions.get(session_id)
        return entry[0] if entry else None

    def task(self, session_id: str) -> asyncio.Task[None] | None:
        """The task running the session (done once the session ended), while it is active."""
        entry = self._sessions.get(session_id)
        return entry[1] if entry else None

    async def on_open(self, message: agent_pb2.ControllerMessage) -> None:
        """Link handler of ``open_session``: start the session in the background and return at once."""
        request = SessionRequest.from_proto(message.open_session)
        session_id = request.session_id
        if not session_id:
            log.warning("ignoring an OpenSession without a session id")
            return
        if self._closing:
            log.warning("session %s not started: the agent is stopping", session_id)
            return
        if session_id in self._sessions or session_id in self._ended:
            log.info("session %s was opened already; ignoring the repeated OpenSession", session_id)
            return
        factory = self._factory
        if request.ssh is not None:
            factory = self._ssh_servers(request.ssh) if self._ssh_servers is not None else _NoSshServer()
        runner = SessionRunner(
            request,
            factory,
            self._open_stream,
            resume_seconds=self._resume_seconds,
            backoff=self._backoff_factory(),
            window_bytes=self._window_bytes,
            window_frames=self._window_frames,
        )
        task = asyncio.create_task(self._run(runner), name=f"session {session_id}")
        self._sessions[session_id] = (runner, task)

    async def close(self, grace: float = STOP_GRACE) -> None:
        """Hang up every running session; give them ``grace`` seconds to report their exit, then stop them."""
        self._closing = True
        entries = list(self._sessions.values())
        for runner, _ in entries:
            runner.hang_up(REASON_AGENT_STOPPED, "the agent on the host was stopped")
        tasks = [task for _, task in entries]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, runner: SessionRunner) -> None:
        try:
            await runner.run()
        except Exception:
            log.exception("session %s failed", runner.session_id)
        finally:
            self._sessions.pop(runner.session_id, None)
            self._ended.append(runner.session_id)
