"""A sent invocation always ends: unacknowledged, re-sent to a dropping host, or too large to send.

The run's clock is a :class:`ManualClock`: time moves only when a test says, so "not expired yet" and
"expired" are asserted at exact points in time, on a fast machine and a loaded one alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fleetops.common.errors import InvalidInput
from fleetops.common.states import CommandStatus, InvocationState
from fleetops.controller.commands.dispatch import MAX_SENDS, CommandRun, Slot
from fleetops.controller.commands.models import Command, CommandSpec, RunInstruction


@dataclass
class ManualTimer:
    when: datetime
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Wall time that moves only on :meth:`advance`; :attr:`armed` is set whenever the run schedules a wake-up."""

    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, tzinfo=UTC)
        self.timers: list[ManualTimer] = []
        self.armed = asyncio.Event()

    def now(self) -> datetime:
        return self.current

    def call_later(self, delay: float, callback: Callable[[], object]) -> ManualTimer:
        timer = ManualTimer(self.current + timedelta(seconds=delay), callback)
        self.timers.append(timer)
        self.armed.set()
        return timer

    def advance(self, seconds: float) -> int:
        """Move time on, running every timer that falls due on the way, in order; how many ran."""
        target = self.current + timedelta(seconds=seconds)
        self.armed.clear()
        ran = 0
        while due := sorted((t for t in self.timers if not t.cancelled and t.when <= target), key=lambda t: t.when):
            timer = due[0]
            self.timers.remove(timer)
            self.current = timer.when
            timer.callback()
            ran += 1
        self.current = target
        return ran


class FakeStore:
    def __init__(self) -> None:
        self.finished: dict[str, tuple[InvocationState, str]] = {}
        self.status: CommandStatus | None = None

    async def mark_sent(self, ids: list[str]) -> None:
        pass

    async def finish_now(self, ids: list[str], state: InvocationState, reason: str) -> None:
        for i in ids:
            self.finished[i] = (state, reason)

    async def finish_command(self, command_id: str, status: CommandStatus) -> None:
        self.status = status


class FakeChannel:
    def __init__(self, refuse: bool = False, connected: bool = True) -> None:
        self.sent: list[str] = []
        self.refuse = refuse
        self.connected = connected

    def is_connected(self, host_id: str) -> bool:
        return self.connected

    async def run(self, host_id: str, instruction: RunInstruction) -> bool:
        if self.refuse:
            raise InvalidInput("the invocation is 5000000 bytes, the limit an agent receives is 4194304 bytes")
        self.sent.append(instruction.invocation_id)
        return True

    async def cancel(self, host_id: str, invocation_id: str) -> bool:
        return True


async def sent(channel: FakeChannel) -> None:
    """Until the run has sent its invocation (the first thing its loop does)."""
    async with asyncio.timeout(5):
        while not channel.sent:
            await asyncio.sleep(0)


async def idle(run: CommandRun, clock: ManualClock) -> None:
    """Until the run's loop has looked at the clock's current time and waits again (or has ended)."""
    assert run.task is not None
    armed = asyncio.ensure_future(clock.armed.wait())
    try:
        await asyncio.wait([armed, run.task], timeout=5, return_when=asyncio.FIRST_COMPLETED)
    finally:
        armed.cancel()
    assert clock.armed.is_set() or run.task.done(), "the run's loop neither waited again nor ended"


async def later(run: CommandRun, clock: ManualClock, seconds: float) -> None:
    """Let ``seconds`` pass on the run's clock and the run catch up with them (if it was due to wake)."""
    assert clock.advance(seconds) > 0, "the run was not due to look at the clock in that time"
    await idle(run, clock)


async def after(run: CommandRun, clock: ManualClock, change: Callable[[], None]) -> None:
    """Make ``change`` (an event from outside the run) and let the run handle it."""
    clock.armed.clear()
    change()
    await idle(run, clock)


def make_run(channel: FakeChannel, store: FakeStore, ack_timeout: float, clock: ManualClock) -> tuple[CommandRun, Slot]:
    command = Command(
        id="cmd-1",
        created_at=clock.now(),
        created_by="operator:alice",
        spec=CommandSpec(argv=("true",), delivery_timeout_seconds=600, timeout_seconds=60),
        target="hosts web1",
        concurrency_limit=10,
        error_limit=0,
        status=CommandStatus.IN_PROGRESS,
        total=1,
        counts={},
        finished_at=None,
        cancel_requested=False,
    )
    slot = Slot("inv-1", "host-1", "web1", InvocationState.PENDING, False)

    def instruction(s: Slot) -> RunInstruction:
        return RunInstruction(s.invocation_id, "cmd-1", ("true",), None, "", {}, "", 60, 5)

    async def done(command_id: str) -> None:
        pass

    run = CommandRun(
        command,
        [slot],
        store,  # type: ignore[arg-type]  # a fake with the three methods CommandRun calls
        channel,
        instruction,
        lambda _: None,
        done,
        ack_timeout=ack_timeout,
        clock=clock,
    )
    return run, slot


async def finish(run: CommandRun) -> None:
    assert run.task is not None
    await asyncio.wait_for(run.task, 5)


async def test_an_unacknowledged_invocation_ends_failed_after_the_ack_timeout() -> None:
    store, channel, clock = FakeStore(), FakeChannel(), ManualClock()
    run, _ = make_run(channel, store, ack_timeout=120, clock=clock)
    run.start()
    await sent(channel)
    await idle(run, clock)
    await later(run, clock, 119)
    assert "inv-1" not in store.finished  # not yet: 119 s of 120
    await later(run, clock, 60)  # past the ack timeout, and the run looks again (every ack timeout / 2)
    await finish(run)
    state, reason = store.finished["inv-1"]
    assert state is InvocationState.FAILED and "did not acknowledge the invocation within 120s" in reason
    assert channel.sent == ["inv-1"] and store.status is CommandStatus.FAILED


async def test_an_acknowledged_invocation_is_not_expired() -> None:
    store, channel, clock = FakeStore(), FakeChannel(), ManualClock()
    run, _ = make_run(channel, store, ack_timeout=120, clock=clock)
    run.start()
    await sent(channel)
    await after(run, clock, lambda: run.updated("inv-1", InvocationState.DELIVERED))
    await later(run, clock, 500)  # far past the ack timeout (120 s), short of the result deadline (960 s)
    assert "inv-1" not in store.finished
    run.updated("inv-1", InvocationState.SUCCESS)
    await finish(run)
    assert store.status is CommandStatus.SUCCESS


async def test_output_counts_as_an_acknowledgement() -> None:
    store, channel, clock = FakeStore(), FakeChannel(), ManualClock()
    run, _ = make_run(channel, store, ack_timeout=120, clock=clock)
    run.start()
    await sent(channel)
    await idle(run, clock)
    await later(run, clock, 100)
    run.heard("inv-1")  # output, but no DELIVERED
    await later(run, clock, 500)  # far past the ack timeout (120 s), short of the result deadline (960 s)
    assert "inv-1" not in store.finished
    run.updated("inv-1", InvocationState.SUCCESS)
    await finish(run)
    assert store.status is CommandStatus.SUCCESS


async def test_re_sends_stop_after_max_sends_without_an_acknowledgement() -> None:
    store, channel, clock = FakeStore(), FakeChannel(), ManualClock()
    run, slot = make_run(channel, store, ack_timeout=60, clock=clock)
    run.start()
    await sent(channel)
    for _ in range(MAX_SENDS + 2):  # the host reconnects again and again
        await run.resend(slot)
    assert channel.sent == ["inv-1"] * MAX_SENDS
    state, reason = store.finished["inv-1"]
    assert state is InvocationState.FAILED and f"after it was sent {MAX_SENDS} times" in reason
    await finish(run)


async def test_an_invocation_too_large_to_send_ends_failed_at_once() -> None:
    store, channel, clock = FakeStore(), FakeChannel(refuse=True), ManualClock()
    run, _ = make_run(channel, store, ack_timeout=60, clock=clock)
    run.start()
    await finish(run)
    state, reason = store.finished["inv-1"]
    assert state is InvocationState.FAILED and reason.startswith("not sent: the invocation is 5000000 bytes")


async def test_an_offline_host_s_invocation_ends_undeliverable_after_the_delivery_timeout() -> None:
    store, channel, clock = FakeStore(), FakeChannel(connected=False), ManualClock()
    run, _ = make_run(channel, store, ack_timeout=120, clock=clock)
    run.start()
    await idle(run, clock)
    assert clock.advance(599) == 0  # the run sleeps until the delivery deadline, 600 s after the command's creation
    await later(run, clock, 1)
    await finish(run)
    state, reason = store.finished["inv-1"]
    assert state is InvocationState.UNDELIVERABLE and "offline for the whole delivery timeout (600s)" in reason
    assert channel.sent == []


async def test_a_delivered_invocation_with_no_result_ends_failed_after_the_result_deadline() -> None:
    store, channel, clock = FakeStore(), FakeChannel(), ManualClock()
    run, _ = make_run(channel, store, ack_timeout=120, clock=clock)
    run.start()
    await sent(channel)
    await after(run, clock, lambda: run.updated("inv-1", InvocationState.DELIVERED))
    await later(run, clock, 900)
    assert "inv-1" not in store.finished  # timeout 60 s + delivery timeout 600 s + 300 s of grace = 960 s
    await later(run, clock, 120)
    await finish(run)
    assert store.finished["inv-1"] == (InvocationState.FAILED, "no result from the host in time")
