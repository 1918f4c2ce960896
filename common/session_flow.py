"""Sequenced, acknowledged, flow-controlled frames: the reliability layer of session streams.

Each direction of a session is a sequence of frames numbered 1, 2, 3... by the frame's origin. The
sender keeps every frame in a :class:`SendWindow` until the receiver acknowledges it, and
:meth:`SendWindow.push` waits while the unacknowledged frames fill the window: that wait is the
session's flow control (a program writing faster than the operator reads is blocked on its
terminal, and memory stays bounded on every hop). The receiver keeps a :class:`ReceiveCursor`,
which drops frames it has already seen; after a reconnect both sides exchange the highest seq they
received, and :meth:`SendWindow.rewind` makes the sender re-send exactly the frames the other side lacks.

One writer task per stream drains the window with :meth:`SendWindow.take`; producers only ``push``.
A receiver paces its acknowledgements with an :class:`AckPacer`. Nothing here knows about gRPC or protobuf.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from fleetops.common.errors import FleetopsError, Unavailable

T = TypeVar("T")

#: Unacknowledged bytes a sender may have in flight per session and direction. 4 MiB keeps the three
#: hops of a bulk ``cat`` busy: bench/session.py measured 28-30 MiB/s against 21-25 with 1 MiB (2 MiB
#: was no better than 1), for at most 4 MiB held per busy session and direction on each hop.
WINDOW_BYTES = 4 * 1024 * 1024
#: ...and unacknowledged frames (bounds the overhead of many tiny frames).
WINDOW_FRAMES = 512
#: Seconds a dropped stream (agent or operator side) has to come back before the session ends.
RESUME_SECONDS = 60.0
#: A receiver acknowledges at once when this much is consumed and not acknowledged yet (a quarter of
#: the sender's window: a sender going at full speed always has room)...
ACK_BYTES = WINDOW_BYTES // 4
ACK_FRAMES = WINDOW_FRAMES // 4
#: ...and otherwise once no frame came for this long (seconds). An acknowledgement is a message of its
#: own on every hop: one per keystroke echo would compete with the next keystroke for the streams and
#: the CPU. A typing burst is acknowledged once, after it; the delay only keeps frames a little
#: longer in windows that bound them anyway.
ACK_DELAY = 0.005


class ProtocolError(FleetopsError):
    """The peer broke the session protocol (a gap in sequence numbers, an ack of an unsent frame)."""

    exit_code = 70


class WindowClosed(Unavailable):
    """The session ended while a frame was waiting to be sent or for room in the window."""


class SendWindow(Generic[T]):
    """Frames one side sent (or will send) and the other has not acknowledged yet."""

    def __init__(self, window_bytes: int = WINDOW_BYTES, window_frames: int = WINDOW_FRAMES) -> None:
        if window_bytes < 1 or window_frames < 1:
            raise ValueError("the window must hold at least one byte and one frame")
        self._window_bytes = window_bytes
        self._window_frames = window_frames
        self._frames: deque[tuple[int, int, T]] = deque()  # (seq, size, item), seq ascending
        self._next_seq = 1
        self._acked = 0
        self._sent = 0  # highest seq handed to the writer on the current stream
        self._unacked_bytes = 0
        self._closed: BaseException | None = None
        self._changed = asyncio.Event()

    @property
    def last_seq(self) -> int:
        """The seq of the newest frame pushed (0: none yet)."""
        return self._next_seq - 1

    @property
    def acked(self) -> int:
        return self._acked

    @property
    def unacked_bytes(self) -> int:
        return self._unacked_bytes

    @property
    def unacked_frames(self) -> int:
        return len(self._frames)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def has_room(self) -> bool:
        """Whether :meth:`push` would take a frame now without waiting."""
        if not self._frames:
            return True  # an oversized frame still goes out alone
        return self._unacked_bytes < self._window_bytes and len(self._frames) < self._window_frames

    async def push(self, item: T, size: int) -> int:
        """Queue ``item`` (``size`` bytes of payload) for sending; its seq.

        Waits while the window is full. Raises :class:`WindowClosed` once :meth:`close` was called.
        """
        await self._wait_for(lambda: self._closed is not None or self.has_room())
        seq = self._append(item, size)
        self._notify()
        return seq

    def push_nowait(self, item: T, size: int) -> int:
        """Queue ``item`` whatever the window says (the last frame of a stream, small control frames)."""
        seq = self._append(item, size)
        self._notify()
        return seq

    def ack(self, seq: int) -> None:
        """The receiver has every frame up to ``seq``: forget them and make room.

        Raises:
            ProtocolError: ``seq`` was never sent.
        """
        if seq > self.last_seq:
            raise ProtocolError(f"acknowledgement of frame {seq}, but only {self.last_seq} were sent")
        if seq <= self._acked:
            return  # a stale or repeated ack
        self._acked = seq
        while self._frames and self._frames[0][0] <= seq:
            _, size, _ = self._frames.popleft()
            self._unacked_bytes -= size
        self._sent = max(self._sent, seq)
        self._notify()

    def rewind(self, received: int) -> None:
        """A new stream to a receiver that holds every frame up to ``received``: send from there.

        Also counts as an acknowledgement of ``received``.

        Raises:
            ProtocolError: ``received`` is beyond what was sent, or before what was acknowledged
                (the receiver lost frames it had acknowledged: the stream cannot be repaired).
        """
        if received < self._acked:
            raise ProtocolError(f"the peer resumes after frame {received}, but acknowledged {self._acked} before")
        self.ack(received)
        self._sent = received
        self._notify()

    async def take(self) -> tuple[int, T]:
        """The next frame the current stream has not carried yet (waits for one).

        Raises :class:`WindowClosed` after :meth:`close` once nothing is left to send.
        """
        await self._wait_for(lambda: self._sent < self.last_seq or self._closed is not None)
        if self._sent >= self.last_seq:
            assert self._closed is not None
            raise self._closed
        seq = self._sent + 1
        found_seq, _, item = self._frames[seq - self._frames[0][0]]
        assert found_seq == seq
        self._sent = seq
        return seq, item

    async def drained(self) -> None:
        """Wait until the receiver acknowledged every frame pushed (or the window is closed)."""
        await self._wait_for(lambda: self._acked >= self.last_seq or self._closed is not None)

    async def room(self) -> None:
        """Wait until :meth:`push` would take a frame without waiting (or the window is closed)."""
        await self._wait_for(lambda: self._closed is not None or self.has_room())

    def close(self, error: BaseException | None = None) -> None:
        """End the window: waiting pushes fail, ``take`` fails once the queued frames are out."""
        if self._closed is None:
            self._closed = error or WindowClosed("the session has ended")
            self._notify()

    def _append(self, item: T, size: int) -> int:
        if self._closed is not None:
            raise self._closed
        seq = self._next_seq
        self._next_seq += 1
        self._frames.append((seq, size, item))
        self._unacked_bytes += size
        return seq

    def _notify(self) -> None:
        # Wake every waiter (they re-check their condition); later waiters wait on a fresh event.
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait_for(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await self._changed.wait()


class Timer(Protocol):
    """A cancellable scheduled call (``asyncio.TimerHandle``)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the pacer needs of time: the running event loop by default, a manual clock in tests."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer: ...


class AckPacer:
    """When a receiver sends its acknowledgement: see :data:`ACK_BYTES`, :data:`ACK_FRAMES`, :data:`ACK_DELAY`.

    The receiver reports each frame it consumed (:meth:`consumed`); one writer task per stream sends
    what :meth:`next` returns. :meth:`flush` makes the pending acknowledgement due at once (a new
    stream, the end of the session).

    Args:
        clock: tells the time and schedules the end-of-burst check; default: the running event loop.
    """

    def __init__(
        self,
        *,
        delay: float = ACK_DELAY,
        frames: int = ACK_FRAMES,
        size: int = ACK_BYTES,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock
        self._delay = delay
        self._max_frames = frames
        self._max_bytes = size
        self.consumed_seq = 0  # the highest seq consumed
        self.sent = 0  # the highest seq acknowledged on the current stream
        self._frames = 0  # consumed since the last acknowledgement
        self._bytes = 0
        self._last = 0.0  # loop time of the last consumed frame
        self._timer: Timer | None = None
        self._due = asyncio.Event()

    @property
    def pending(self) -> bool:
        """Whether frames were consumed that the current stream has not acknowledged."""
        return self.consumed_seq > self.sent

    def consumed(self, seq: int, size: int) -> None:
        """Frame ``seq`` (``size`` bytes of payload) is consumed: it is to be acknowledged."""
        self.consumed_seq = seq
        self._frames += 1
        self._bytes += size
        if self._frames >= self._max_frames or self._bytes >= self._max_bytes:
            self.flush()
            return
        clock = self._clock or asyncio.get_running_loop()
        self._last = clock.time()
        if self._timer is None:
            self._timer = clock.call_at(self._last + self._delay, self._quiet)

    def flush(self) -> None:
        """Make the pending acknowledgement (if any) due now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.pending:
            self._due.set()

    def restart(self) -> None:
        """A new stream: it has carried no acknowledgement yet; what was consumed is due at once."""
        self.sent = 0
        self.flush()

    async def next(self) -> int:
        """Wait until an acknowledgement is due; the seq to acknowledge (it counts as sent)."""
        while not (self._due.is_set() and self.pending):
            self._due.clear()
            await self._due.wait()
        seq = self.take()
        assert seq is not None
        return seq

    def take(self) -> int | None:
        """The seq to acknowledge now, due or not (it counts as sent); ``None`` when nothing is pending."""
        if not self.pending:
            return None
        self.close()
        self._due.clear()
        self._frames = self._bytes = 0
        self.sent = self.consumed_seq
        return self.sent

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _quiet(self) -> None:
        self._timer = None
        clock = self._clock or asyncio.get_running_loop()
        quiet_at = self._last + self._delay
        if clock.time() < quiet_at:  # frames came meanwhile: wait for the end of the burst
            self._timer = clock.call_at(quiet_at, self._quiet)
        else:
            self.flush()


class ReceiveCursor:
    """The receiving end of one direction: which seq comes next; duplicates are recognised."""

    def __init__(self, received: int = 0) -> None:
        self.received = received

    def accept(self, seq: int) -> bool:
        """Whether the frame ``seq`` is new (then it is consumed); ``False`` for a re-sent duplicate.

        Raises:
            ProtocolError: ``seq`` skips frames (one was lost: the stream cannot be trusted).
        """
        if seq <= self.received:
            return False
        if seq != self.received + 1:
            raise ProtocolError(f"frame {seq} arrived while {self.received + 1} was expected")
        self.received = seq
        return True
