"""A sent invocation always ends: unacknowledged, re-sent to a dropping host, or too large to send."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fleetops.common.errors import InvalidInput
from fleetops.controller.commands.dispatch import MAX_SENDS, CommandRun, Slot
from fleetops.controller.commands.models import CommandStatus, InvocationState, RunInstruction
from fleetops.controller.store.models import CommandRow


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
    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[str] = []
        self.refuse = refuse

    def is_connected(self, host_id: str) -> bool:
        return True

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


def make_run(channel: FakeChannel, store: FakeStore, ack_timeout: float) -> tuple[CommandRun, Slot]:
    row = CommandRow(
        id="cmd-1",
        created_at=datetime.now(UTC),
        cancel_requested=False,
        delivery_timeout_seconds=600,
        timeout_seconds=60,
        concurrency_limit=10,
        error_limit=0,
    )
    slot = Slot("inv-1", "host-1", "web1", InvocationState.PENDING, False)

    def instruction(s: Slot) -> RunInstruction:
        return RunInstruction(s.invocation_id, "cmd-1", ("true",), None, "", {}, "", 60, 5)

    async def done(command_id: str) -> None:
        pass

    run = CommandRun(
        row,
        [slot],
        store,  # type: ignore[arg-type]  # a fake with the three methods CommandRun calls
        channel,
        instruction,
        lambda _: None,
        done,
        ack_timeout=ack_timeout,
    )
    return run, slot


async def finish(run: CommandRun) -> None:
    run.start()
    assert run.task is not None
    await asyncio.wait_for(run.task, 5)


async def test_an_unacknowledged_invocation_ends_failed_after_the_ack_timeout() -> None:
    store, channel = FakeStore(), FakeChannel()
    run, _ = make_run(channel, store, ack_timeout=0.2)
    await finish(run)
    state, reason = store.finished["inv-1"]
    assert state is InvocationState.FAILED and "did not acknowledge the invocation within 0.2s" in reason
    assert channel.sent == ["inv-1"] and store.status is CommandStatus.FAILED


async def test_an_acknowledged_invocation_is_not_expired() -> None:
    store, channel = FakeStore(), FakeChannel()
    run, _ = make_run(channel, store, ack_timeout=0.2)
    run.start()
    await sent(channel)
    run.updated("inv-1", InvocationState.DELIVERED)
    await asyncio.sleep(0.5)  # over twice the ack timeout: an unacknowledged invocation would have failed by now
    assert "inv-1" not in store.finished
    run.updated("inv-1", InvocationState.SUCCESS)
    assert run.task is not None
    await asyncio.wait_for(run.task, 5)
    assert store.status is CommandStatus.SUCCESS


async def test_output_counts_as_an_acknowledgement() -> None:
    store, channel = FakeStore(), FakeChannel()
    run, _ = make_run(channel, store, ack_timeout=0.2)
    run.start()
    for _ in range(6):
        await asyncio.sleep(0.1)
        run.heard("inv-1")
    assert "inv-1" not in store.finished
    run.updated("inv-1", InvocationState.SUCCESS)
    assert run.task is not None
    await asyncio.wait_for(run.task, 5)


async def test_re_sends_stop_after_max_sends_without_an_acknowledgement() -> None:
    store, channel = FakeStore(), FakeChannel()
    run, slot = make_run(channel, store, ack_timeout=60)
    run.start()
    await sent(channel)
    for _ in range(MAX_SENDS + 2):  # the host reconnects again and again
        await run.resend(slot)
    assert channel.sent == ["inv-1"] * MAX_SENDS
    state, reason = store.finished["inv-1"]
    assert state is InvocationState.FAILED and f"after it was sent {MAX_SENDS} times" in reason
    assert run.task is not None
    await asyncio.wait_for(run.task, 5)


async def test_an_invocation_too_large_to_send_ends_failed_at_once() -> None:
    store, channel = FakeStore(), FakeChannel(refuse=True)
    run, _ = make_run(channel, store, ack_timeout=60)
    await finish(run)
    state, reason = store.finished["inv-1"]
    assert state is InvocationState.FAILED and reason.startswith("not sent: the invocation is 5000000 bytes")
