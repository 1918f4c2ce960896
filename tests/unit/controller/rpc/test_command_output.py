"""WatchCommand's pacing (rpc/command_output.py): a watcher of a big fan-out reads less often the more a
read costs, yet the command's end goes out as soon as its run ends on this replica."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from watchers import WatcherQueues

from fleetops.common.states import CommandStatus, InvocationState
from fleetops.controller.commands.models import Command, CommandSpec, Invocation
from fleetops.controller.commands.service import CommandService
from fleetops.controller.rpc import command_output

NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
WAIT = 5.0


class FakeCommands(WatcherQueues):
    """The part of CommandService a watcher uses; each read takes ``read_seconds`` of real time."""

    def __init__(self, read_seconds: float = 0.0) -> None:
        super().__init__()
        self.read_seconds = read_seconds
        self.running = True
        self.status = CommandStatus.IN_PROGRESS
        self.reads: list[tuple[float, float]] = []  # (start, end) of each read, loop time

    def runs_here(self, command_id: str) -> bool:
        return self.running

    async def view(self, command_id: str, *, tails: bool = True, only: Any = None) -> tuple[Command, list[Invocation]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(self.read_seconds)
        self.reads.append((start, loop.time()))
        command = Command(
            command_id, NOW, "alice", CommandSpec(argv=("true",)), "all", 1, 1, self.status, 1, {}, None, False
        )
        state = InvocationState.SUCCESS if self.status is CommandStatus.SUCCESS else InvocationState.PENDING
        invocation = Invocation(
            "i-1", command_id, "h-1", "web-1", state, None, "", b"", b"", 0, 0, None, None, None, False, NOW
        )
        return command, [replace(invocation, reason=f"read {len(self.reads)}")]


def watch(commands: FakeCommands) -> Any:
    return command_output.watch_command(cast(CommandService, commands), "cmd-1", include_output=False)


async def test_the_end_of_a_run_here_goes_out_at_once_whatever_the_throttle_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(command_output, "WATCH_COST_FACTOR", 10_000.0)  # the next read only after hours
    commands = FakeCommands(read_seconds=0.01)
    stream = watch(commands)
    first = await asyncio.wait_for(anext(stream), WAIT)
    assert not first.done
    commands.running, commands.status = False, CommandStatus.SUCCESS  # the run ended here
    commands.notify()
    last = await asyncio.wait_for(anext(stream), WAIT)
    assert last.done and len(commands.reads) == 2
    await stream.aclose()


async def test_a_costly_read_is_not_repeated_at_every_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command_output, "WATCH_INTERVAL", 0.0)
    monkeypatch.setattr(command_output, "WATCH_COST_FACTOR", 4.0)
    commands = FakeCommands(read_seconds=0.05)
    stream = watch(commands)
    await asyncio.wait_for(anext(stream), WAIT)
    commands.notify()  # something changed at once, and keeps changing
    await asyncio.wait_for(anext(stream), WAIT)
    (start1, end1), (start2, _) = commands.reads
    assert start2 - start1 >= 4.0 * (end1 - start1)  # at most a fifth of the time goes to re-reading
    await stream.aclose()


async def test_without_a_change_the_watcher_still_rereads_after_the_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command_output, "WATCH_RECHECK", 0.05)  # another replica's progress wakes nobody here
    commands = FakeCommands()
    commands.running = False  # run by another replica
    stream = watch(commands)
    await asyncio.wait_for(anext(stream), WAIT)
    commands.status = CommandStatus.SUCCESS
    assert (await asyncio.wait_for(anext(stream), WAIT)).done
    await stream.aclose()
