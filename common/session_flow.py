"""Sequenced, acknowledged, flow-controlled frames: the reliability layer of session streams.

Each direction of a session is a sequence of frames numbered 1, 2, 3... by the frame's origin. The
sender keeps every frame in a :class:`SendWindow` until the receiver acknowledges it, and
:meth:`SendWindow.push` waits while the unacknowledged frames fill the window: that wait is the
session's flow control (a program writing faster than the operator reads is blocked on its
terminal, and memory stays bounded on every hop). The receiver keeps a :class:`ReceiveCursor`,
which drops frames it has already seen; after a reconnect both sides exchange the highest seq they
received, and :meth:`SendWindow.rewind` makes the sender re-send exactly the frames the other side lacks.

One writer task per stream drains the window with :meth:`SendWindow.take`; producers only ``push``.
Nothing here knows about gRPC or protobuf.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from fleetops.common.errors import FleetopsError, Unavailable

T = TypeVar("T")

#: Unacknowledged bytes a sender may have in flight per session and direction.
WINDOW_BYTES = 1024 * 1024
#: ...and unacknowledged frames (bounds the overhead of many tiny frames).
WINDOW_FRAMES = 512
#: Seconds a dropped stream (agent or operator side) has to come back before the session ends.
RESUME_SECONDS = 60.0


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
