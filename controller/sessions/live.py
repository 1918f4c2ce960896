"""One live session on this replica: flow control each way, the relayed acknowledgements, and recording.

A :class:`LiveSession` holds what one session needs while it runs here: the frames in flight each
way (``SendWindow``), what was received from each side (``ReceiveCursor``), the acknowledgements to
relay, the transcript being recorded, and the session's clock (idle timeout, maximum duration,
resume windows). The rpc layer attaches one stream per side (an :class:`Attachment`) and pumps
frames through the methods here; the broker (``broker.py``) creates, supervises and ends them.

The controller acknowledges the agent's output only once the operator acknowledged it, so the
agent's window bounds the output held on every hop; input is bounded the same way by opsctl's window.

Each session's transcript lines go, in order, through a queue appended to the spool one batch at a
time; an output frame is relayed once its line is in the spool (what the operator saw survives a
controller killed at any moment). The agent's stream is read on meanwhile: the lines that come while
an append runs make the next batch (one append, one thread hand-off for all of them).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from fleetops.common.errors import FleetopsError
from fleetops.common.session_flow import ReceiveCursor, SendWindow
from fleetops.common.states import EndReason
from fleetops.controller.sessions.asciicast import AsciicastEncoder
from fleetops.controller.sessions.models import (
    Activity,
    ActivityNote,
    InputEvent,
    OutputEvent,
    Resize,
    Session,
    SessionEnd,
    SessionLimits,
    SessionRequest,
    TerminalOpened,
    TerminalOutput,
)
from fleetops.controller.sessions.spool import TranscriptInfo
from fleetops.controller.sessions.transcript import TranscriptSink

log = logging.getLogger(__name__)

#: Transcript bytes a session may have queued for the spool; beyond, the relay waits for the spool.
RECORD_QUEUE_BYTES = 1024 * 1024

#: Called once what it waited for is in the spool (e.g. the relay of the frame a line records).
Release = Callable[[], object]


class AckSignal:
    """The latest acknowledgement to relay to one side; a waiter wakes when it moves."""

    def __init__(self) -> None:
        self.value = 0
        self._moved = asyncio.Event()

    def set(self, value: int) -> None:
        if value > self.value:
            self.value = value
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()

    async def beyond(self, sent: int) -> int:
        while self.value <= sent:
            await self._moved.wait()
        return self.value


class Attachment:
    """One side's current stream. A newer stream supersedes it (the rpc layer then ends the old one)."""

    def __init__(self) -> None:
        self.superseded = asyncio.Event()
        self.closed = asyncio.Event()


class LiveSession:
    """One session's state while it runs on this replica (see the module docstring)."""

    def __init__(self, record: Session, request: SessionRequest, limits: SessionLimits, clock: Callable[[], float]):
        self.record = record
        self.request = request
        self._limits = limits
        self._clock = clock
        self.out_window: SendWindow[OutputEvent] = SendWindow()  # to the operator
        self.in_window: SendWindow[InputEvent] = SendWindow()  # to the agent
        self.out_cursor = ReceiveCursor()  # from the agent
        self.in_cursor = ReceiveCursor()  # from the operator
        self.output_ack = AckSignal()  # relayed to the agent
        self.input_ack = AckSignal()  # relayed to the operator
        self.terminate_request: tuple[str, str] | None = None
        self.terminate_requested = asyncio.Event()
        self.agent_attached = asyncio.Event()
        self.refused: Exception | None = None
        self.agent: Attachment | None = None
        self.client: Attachment | None = None
        now = clock()
        self.agent_detached_at: float | None = None
        self.client_detached_at: float | None = now  # until opsctl's stream is connected
        self.started = now
        self.last_input = now
        self.terminate_sent_at: float | None = None
        self.end: SessionEnd | None = None
        self.finished = asyncio.Event()  # record and transcript are final
        self.delivered = asyncio.Event()  # opsctl received the end
        self.changed = asyncio.Event()
        self.encoder: AsciicastEncoder | None = None
        self.sink: TranscriptSink | None = None
        self.recording = False
        # Transcript lines waiting for the append in progress, in order, each with what it releases
        # (the relay of the frame it records) once it is in the spool.
        self._records: deque[tuple[bytes, Release | None]] = deque()
        self._records_size = 0  # bytes queued or being appended
        self._records_room = asyncio.Event()
        self._appending: asyncio.Task[None] | None = None  # the append in progress

    @property
    def id(self) -> str:
        return self.record.id

    def poke(self) -> None:
        self.changed.set()

    def elapsed(self) -> float:
        return self._clock() - self.started

    # -- operator side ----------------------------------------------------------------------
    async def client_input(self, seq: int, event: InputEvent) -> None:
        """A frame from opsctl (duplicates after a resume are dropped).

        Raises:
            ProtocolError: a gap in the operator's sequence numbers.
        """
        if not self.in_cursor.accept(seq):
            return
        # No poke: a later idle deadline needs no wake-up (the supervisor finds it when the earlier
        # one passes), and waking it would cost every keystroke a turn of the event loop.
        self.last_input = self._clock()
        if self.end is not None:
            self.input_ack.set(seq)  # nobody will read it; let opsctl's window go
            return
        size = len(event) if isinstance(event, bytes) else 8
        self.in_window.push_nowait(event, size)  # bounded by opsctl's window (acks are end to end)
        if self.encoder is not None:
            if isinstance(event, Resize):
                await self.record_line(self.encoder.resize(self.elapsed(), event.cols, event.rows))
            elif self.encoder.record_input:
                await self.record_line(self.encoder.input(self.elapsed(), event))

    def client_ack(self, seq: int) -> None:
        """opsctl has output up to ``seq`` on screen: the agent may forget it.

        Raises:
            ProtocolError: ``seq`` was never sent.
        """
        self.out_window.ack(seq)
        if self.end is None:
            self.output_ack.set(seq)

    # -- agent side ---------------------------------------------------------------------------
    async def agent_output(
        self,
        seq: int,
        event: OutputEvent | Activity | None,
        on_end: Callable[[SessionEnd], None],
        on_activity: Callable[[Activity], Awaitable[None]] | None = None,
    ) -> None:
        """A frame from the agent (duplicates after a resume are dropped).

        An SSH session's activity (``None``: a malformed one) goes to ``on_activity``; the operator
        gets an empty frame in its place, so both legs keep the agent's sequence numbers.

        Raises:
            ProtocolError: a gap in the agent's sequence numbers.
        """
        if not self.out_cursor.accept(seq) or self.end is not None:
            return
        if event is None or isinstance(event, (TerminalOpened, TerminalOutput, Resize, ActivityNote)):
            if event is not None and on_activity is not None:
                await on_activity(event)
            self.after_records(lambda: self.out_window.push_nowait(b"", 0))
            return
        if isinstance(event, SessionEnd):

            def end() -> None:
                on_end(event)
                self.output_ack.set(seq)  # the agent may close: the controller has the session's end

            self.after_records(end)  # after the output before it
            return
        size = len(event)
        line = self.encoder.output(self.elapsed(), event) if self.encoder is not None else b""
        # Bounded by the agent's window (a frame not relayed is not acknowledged).
        await self.record_line(line, lambda: self.out_window.push_nowait(event, size))

    def agent_input_ack(self, seq: int) -> None:
        self.in_window.ack(seq)
        self.input_ack.set(seq)

    # -- both -------------------------------------------------------------------------------
    def request_terminate(self, reason: str, message: str) -> None:
        """Ask the agent to hang the session up (sent on its stream, now or when it reattaches)."""
        if self.terminate_request is None and self.end is None:
            self.terminate_request = (reason, message)
            self.terminate_sent_at = self._clock()
            self.terminate_requested.set()
            self.poke()

    async def record_line(self, line: bytes, release: Release | None = None) -> None:
        """Record ``line`` after every line recorded before; ``release()`` once it is in the spool.

        Waits only while :data:`RECORD_QUEUE_BYTES` are queued. When the session is not (or no
        longer) recorded, ``release()`` is called at once. A small line with nothing queued before
        it is written at once (no task, no turn of the event loop: a keystroke's echo is relayed
        the moment it is recorded).
        """
        if not self.recording or self.sink is None:
            if release is not None:
                self.after_records(release)
            return
        if self._appending is None and not self._records:
            try:
                written = self.sink.append_nowait(line)
            except Exception as exc:
                self._recording_failed(exc, [(line, release)])
                return
            if written:
                if release is not None:
                    release()
                return
        self._records.append((line, release))
        self._records_size += len(line)
        if self._appending is None:
            self._start_append(self.sink)
        while self._records_size > RECORD_QUEUE_BYTES and self.recording:
            self._records_room.clear()
            await self._records_room.wait()

    def after_records(self, release: Release) -> None:
        """``release()`` once every line recorded so far is in the spool (now if it is)."""
        if self._records or self._appending is not None:
            self._records.append((b"", release))
        else:
            release()

    async def finish_recording(self) -> TranscriptInfo | None:
        """Stop recording: the lines queued reach the spool, then the transcript is finished.

        Raises:
            FleetopsError: from :meth:`TranscriptSink.finish`.
        """
        if self.sink is None:
            return None
        self.recording = False
        while (appending := self._appending) is not None:
            await asyncio.gather(appending, return_exceptions=True)
            if self._appending is appending:  # cancelled: nothing more is appended
                break
        return await self.sink.finish()

    def _start_append(self, sink: TranscriptSink) -> None:
        """Append every queued line as one batch; what waited for it is released once it is in the spool."""
        items = list(self._records)
        self._records.clear()
        batch = b"".join(line for line, _ in items)
        if batch:
            self._appending = asyncio.ensure_future(self._append(sink, batch, items))
            return
        for _, release in items:
            if release is not None:
                release()

    async def _append(self, sink: TranscriptSink, batch: bytes, items: list[tuple[bytes, Release | None]]) -> None:
        try:
            await sink.append(batch)
        except Exception as exc:
            self._appending = None
            self._records_size = 0
            self._recording_failed(exc, items)
            return
        self._records_size -= len(batch)
        self._appending = None
        for _, release in items:
            if release is not None:
                release()
        if self._records:
            self._start_append(sink)
        self._records_room.set()

    def _recording_failed(self, exc: Exception, items: list[tuple[bytes, Release | None]]) -> None:
        """The spool cannot be written: release what waited (relayed unrecorded) and end the session."""
        message = exc.message if isinstance(exc, FleetopsError) else repr(exc)
        log.error("session %s: recording failed, ending the session: %s", self.id, message)
        self.recording = False
        items += self._records
        self._records.clear()
        for _, release in items:  # relayed unrecorded, as the session is being ended
            if release is not None:
                release()
        self._records_room.set()
        self.request_terminate(
            EndReason.RECORDING_FAILED, f"the session ended because it could not be recorded: {message}"
        )

    def next_deadline(self) -> tuple[float, str] | None:
        """The earliest (time, what) the supervisor must act at."""
        limits = self._limits
        candidates: list[tuple[float, str]] = []
        if self.end is None:
            if self.terminate_sent_at is not None:
                candidates.append((self.terminate_sent_at + limits.terminate_timeout, "terminate"))
            else:
                if limits.idle_timeout:
                    candidates.append((self.last_input + limits.idle_timeout, "idle"))
                if limits.max_duration:
                    candidates.append((self.started + limits.max_duration, "max"))
                if self.client_detached_at is not None:
                    candidates.append((self.client_detached_at + limits.resume, "client"))
            if self.agent_detached_at is not None:
                candidates.append((self.agent_detached_at + limits.resume, "agent"))
        elif not self.delivered.is_set():
            since = self.client_detached_at if self.client_detached_at is not None else self._clock()
            candidates.append((since + limits.resume, "forget"))
        return min(candidates) if candidates else None
