"""A result that arrives before all of its output is not stored incomplete: the host is asked for the rest.

Output goes missing when the replica running a command changes while a host streams (docs/partitions.md):
the owner then re-sends the invocation with the offsets it holds, the agent streams the rest from its
spool and the result again. On SQLite and PostgreSQL, with a real store and a channel that records.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetops.common.states import InvocationState
from fleetops.controller.commands import service as commands_service
from fleetops.controller.commands.models import CommandSpec, InvocationReport, RunInstruction
from fleetops.controller.commands.service import CommandService
from fleetops.controller.commands.store import InvocationStore
from fleetops.controller.fleet.models import Target
from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.objects.local import LocalDirectoryStore
from fleetops.controller.store import database

from registered_hosts import add_host


class RecordingChannel:
    """Every host connected; records each instruction sent and wakes a waiter."""

    def __init__(self) -> None:
        self.sent: list[RunInstruction] = []
        self.changed = asyncio.Event()

    def is_connected(self, host_id: str) -> bool:
        return True

    async def run(self, host_id: str, instruction: RunInstruction) -> bool:
        self.sent.append(instruction)
        self.changed.set()
        return True

    async def cancel(self, host_id: str, invocation_id: str) -> bool:
        return True

    async def ack_result(self, host_id: str, invocation_id: str) -> bool:
        return True

    async def sends(self, count: int) -> list[RunInstruction]:
        async with asyncio.timeout(10):
            while len(self.sent) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.sent


@pytest.fixture
async def commands(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[CommandService, RecordingChannel, str]]:
    engine = database.create_engine(database_url)
    await database.ensure_schema(engine, migrate=True)
    sessions = database.session_factory(engine)
    fleet = FleetService(sessions, PresenceTracker(sessions, "r1"), heartbeat_interval=5.0)
    host_id = await add_host(sessions, "web-1", fleet=fleet)
    service = CommandService(
        InvocationStore(sessions), fleet, LocalDirectoryStore(tmp_path / "objects"), replica_id="r1"
    )
    channel = RecordingChannel()
    await service.start(channel)
    yield service, channel, host_id
    await service.stop()
    await engine.dispose()


def result(invocation_id: str, stdout_bytes: int) -> InvocationReport:
    now = datetime.now(UTC)
    return InvocationReport(invocation_id, InvocationState.SUCCESS, 0, "", stdout_bytes, 0, now, now)


async def test_the_rest_of_the_output_is_asked_for_before_the_result_is_stored(
    commands: tuple[CommandService, RecordingChannel, str],
) -> None:
    service, channel, host_id = commands
    command, _ = await service.create("operator:admin", Target(hosts=("web-1",)), CommandSpec(argv=("echo", "hi")))
    (first,) = await channel.sends(1)
    await service.invocation_output(host_id, first.invocation_id, "stdout", 0, b"hel")  # the rest went elsewhere

    assert not await service.invocation_result(host_id, result(first.invocation_id, 6))  # not acknowledged
    again = (await channel.sends(2))[1]
    assert (again.invocation_id, again.stdout_offset, again.stderr_offset) == (first.invocation_id, 3, 0)

    await service.invocation_output(host_id, first.invocation_id, "stdout", 3, b"lo\n")  # streamed from offset 3
    assert await service.invocation_result(host_id, result(first.invocation_id, 6))
    _, (invocation,) = await service.view(command.id)
    assert invocation.state is InvocationState.SUCCESS
    assert "incomplete" not in invocation.reason
    assert invocation.stdout_bytes == 6


async def test_output_that_never_comes_is_stored_as_incomplete_after_two_requests(
    commands: tuple[CommandService, RecordingChannel, str],
) -> None:
    service, channel, host_id = commands
    command, _ = await service.create("operator:admin", Target(hosts=("web-1",)), CommandSpec(argv=("echo", "hi")))
    (first,) = await channel.sends(1)
    for asked in range(commands_service._CATCH_UPS):
        assert not await service.invocation_result(host_id, result(first.invocation_id, 6))
        assert len(await channel.sends(2 + asked)) == 2 + asked
    assert await service.invocation_result(host_id, result(first.invocation_id, 6))  # stored, the loss named
    _, (invocation,) = await service.view(command.id)
    assert "output incomplete: controller stored 0/6 stdout" in invocation.reason
