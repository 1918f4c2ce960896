"""The session reliability layer: sequence numbers, acknowledgements, window, resume."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from fleetops.common.session_flow import AckPacer, ProtocolError, ReceiveCursor, SendWindow, WindowClosed


@dataclass
class ManualTimer:
    when: float
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Time that moves only when the test says (``advance``): no test waits on the real clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[ManualTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> ManualTimer:
        timer = ManualTimer(when, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time on, running every timer that falls due on the way, in order."""
        target = self.now + seconds
        while due := sorted((t for t in self.timers if not t.cancelled and t.when <= target), key=lambda t: t.when):
            timer = due[0]
            self.timers.remove(timer)
            self.now = timer.when
            timer.callback()
        self.now = target


async def settle() -> None:
    """Let every task that is ready run (a few loop steps; no time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_frames_are_numbered_and_taken_in_order() -> None:
    window: SendWindow[bytes] = SendWindow()
    assert await window.push(b"a", 1) == 1
    assert await window.push(b"b", 1) == 2
    assert await window.take() == (1, b"a")
    assert await window.take() == (2, b"b")
    assert window.unacked_frames == 2


async def test_push_waits_while_the_window_is_full_and_an_ack_makes_room() -> None:
    window: SendWindow[bytes] = SendWindow(window_bytes=10)
    await window.push(b"x" * 6, 6)
    await window.push(b"y" * 6, 6)  # 6 < 10: still room for one more frame
    blocked = asyncio.ensure_future(window.push(b"z", 1))
    await asyncio.sleep(0)
    assert not blocked.done()
    window.ack(1)
    assert await asyncio.wait_for(blocked, 1) == 3
    assert window.unacked_bytes == 7


async def test_frame_limit_bounds_many_tiny_frames() -> None:
    window: SendWindow[bytes] = SendWindow(window_frames=2)
    await window.push(b"a", 1)
    await window.push(b"b", 1)
    assert not window.has_room()
    window.ack(2)
    assert window.has_room()


async def test_an_oversized_frame_goes_out_alone() -> None:
    window: SendWindow[bytes] = SendWindow(window_bytes=4)
    assert await asyncio.wait_for(window.push(b"x" * 100, 100), 1) == 1


async def test_rewind_resends_exactly_what_the_receiver_lacks() -> None:
    window: SendWindow[str] = SendWindow()
    for item in "abcd":
        await window.push(item, 1)
    for _ in range(4):
        await window.take()
    window.ack(1)
    # The stream broke; the new one's receiver holds 1..2.
    window.rewind(2)
    assert await window.take() == (3, "c")
    assert await window.take() == (4, "d")
    assert window.acked == 2


async def test_rewind_before_an_acknowledged_frame_is_refused() -> None:
    window: SendWindow[str] = SendWindow()
    await window.push("a", 1)
    await window.push("b", 1)
    window.ack(2)
    with pytest.raises(ProtocolError):
        window.rewind(1)


async def test_ack_of_an_unsent_frame_is_a_protocol_error() -> None:
    window: SendWindow[str] = SendWindow()
    await window.push("a", 1)
    with pytest.raises(ProtocolError):
        window.ack(2)
    window.ack(1)
    window.ack(1)  # repeated acks are harmless
    assert window.unacked_frames == 0


async def test_close_fails_waiting_pushes_and_drains_queued_frames_first() -> None:
    window: SendWindow[str] = SendWindow(window_frames=1)
    await window.push("a", 1)
    blocked = asyncio.ensure_future(window.push("b", 1))
    await asyncio.sleep(0)
    window.close()
    with pytest.raises(WindowClosed):
        await blocked
    assert await window.take() == (1, "a")
    with pytest.raises(WindowClosed):
        await window.take()


async def test_drained_waits_for_the_last_ack() -> None:
    window: SendWindow[str] = SendWindow()
    await window.push("a", 1)
    drained = asyncio.ensure_future(window.drained())
    await asyncio.sleep(0)
    assert not drained.done()
    window.ack(1)
    await asyncio.wait_for(drained, 1)


async def test_room_waits_until_a_push_would_not() -> None:
    window: SendWindow[str] = SendWindow(window_frames=1)
    await window.push("a", 1)
    room = asyncio.ensure_future(window.room())
    await asyncio.sleep(0)
    assert not room.done()
    window.ack(1)
    await asyncio.wait_for(room, 1)
    await asyncio.wait_for(window.room(), 1)  # room already: no wait


async def test_ack_pacer_acknowledges_a_burst_once_when_it_is_over() -> None:
    clock = ManualClock()
    pacer = AckPacer(delay=0.05, clock=clock)
    due = asyncio.ensure_future(pacer.next())
    for seq in range(1, 4):
        pacer.consumed(seq, 1)
        clock.advance(0.02)  # each frame within the delay of the one before: the burst goes on
        await settle()
        assert not due.done()
    clock.advance(0.029)  # 0.089: not yet the delay after the last frame (at 0.04)
    await settle()
    assert not due.done()
    clock.advance(0.002)
    assert await asyncio.wait_for(due, 1) == 3  # one acknowledgement, for the last frame
    assert pacer.sent == 3 and not pacer.pending


async def test_ack_pacer_acknowledges_at_once_past_a_part_of_the_window() -> None:
    pacer = AckPacer(delay=60, frames=3, size=100)
    for seq in (1, 2):
        pacer.consumed(seq, 1)
    pacer.consumed(3, 1)  # the third frame: due now, whatever the delay
    assert await asyncio.wait_for(pacer.next(), 1) == 3
    pacer.consumed(4, 100)  # as many bytes
    assert await asyncio.wait_for(pacer.next(), 1) == 4


async def test_ack_pacer_take_flush_and_a_new_stream() -> None:
    pacer = AckPacer(delay=60)
    assert pacer.take() is None  # nothing consumed
    pacer.consumed(1, 1)
    assert pacer.take() == 1  # due or not
    assert pacer.take() is None
    pacer.consumed(2, 1)
    pacer.flush()
    assert await asyncio.wait_for(pacer.next(), 1) == 2
    pacer.restart()  # a new stream has carried nothing: the last consumed is due again at once
    assert await asyncio.wait_for(pacer.next(), 1) == 2
    waiting = asyncio.ensure_future(pacer.next())
    await settle()
    assert not waiting.done()  # nothing new
    waiting.cancel()
    pacer.close()


def test_receive_cursor_drops_duplicates_and_refuses_gaps() -> None:
    cursor = ReceiveCursor()
    assert cursor.accept(1)
    assert not cursor.accept(1)
    assert cursor.accept(2)
    with pytest.raises(ProtocolError):
        cursor.accept(4)
    assert cursor.received == 2
