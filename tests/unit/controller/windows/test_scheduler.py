"""The window scheduler on an injected clock: overlap, misfire, disable/enable, priorities, cutoff.

A real (SQLite) store; commands are faked: each "runs" until the test finishes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fleetops.controller.commands.models import CommandStatus
from fleetops.controller.fleet.models import Target
from fleetops.controller.store import database
from fleetops.controller.windows.models import Window, WindowTask
from fleetops.controller.windows.service import WindowService

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


@dataclass
class FakeCommand:
    id: str
    status: CommandStatus = CommandStatus.IN_PROGRESS
    counts: dict[str, int] = field(default_factory=dict)


class FakeCommands:
    def __init__(self) -> None:
        self.created: list[tuple[str, Any]] = []
        self.commands: dict[str, FakeCommand] = {}
        self.cancelled: list[str] = []
        self.queues: dict[str, set[asyncio.Queue[None]]] = {}

    async def create(self, actor: str, target: Target, spec: Any) -> tuple[FakeCommand, list[Any]]:
        command = FakeCommand(f"cmd-{len(self.created) + 1}")
        self.created.append((actor, spec))
        self.commands[command.id] = command
        return command, []

    async def command(self, command_id: str) -> FakeCommand:
        return self.commands[command_id]

    async def cancel(self, command_id: str) -> None:
        self.cancelled.append(command_id)
        self.finish(command_id, CommandStatus.CANCELLED)

    def finish(self, command_id: str, status: CommandStatus = CommandStatus.SUCCESS) -> None:
        self.commands[command_id].status = status
        for queue in self.queues.get(command_id, ()):
            if queue.empty():
                queue.put_nowait(None)

    def subscribe(self, command_id: str) -> asyncio.Queue[None]:
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self.queues.setdefault(command_id, set()).add(queue)
        return queue

    def unsubscribe(self, command_id: str, queue: asyncio.Queue[None]) -> None:
        self.queues.get(command_id, set()).discard(queue)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[WindowService, FakeCommands, Clock]]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    await database.ensure_schema(engine, migrate=True)
    clock = Clock()
    commands = FakeCommands()
    service = WindowService(
        database.session_factory(engine),
        commands,
        None,
        "test:1",
        min_duration=1,
        clock=clock,  # type: ignore[arg-type]
    )
    yield service, commands, clock
    await service.stop()
    await engine.dispose()


async def settle(service: WindowService) -> None:
    """Let the started executions run until they wait on their commands."""
    for _ in range(50):
        await asyncio.sleep(0)
    running = list(service._running.values())
    if running:
        await asyncio.wait(running, timeout=0.2)


async def statuses(service: WindowService, name: str) -> list[str]:
    return [e.status.value for e in reversed(await service.history(name))]


def task(window: str, priority: int, *argv: str) -> WindowTask:
    return WindowTask(window=window, priority=priority, type="run", target=Target(all=True), argv=argv or ("true",))


async def test_an_occurrence_while_the_last_still_runs_is_skipped_not_queued(setup: Any) -> None:
    service, commands, clock = setup
    await service.create("alice", Window("hourly", "cron(0 * * * *)", duration_seconds=3 * 3600, cutoff_seconds=60))
    await service.add_task(task("hourly", 1))
    clock.advance(hours=1)  # 13:00
    await service.tick()
    await settle(service)
    clock.advance(hours=1)  # 14:00: the 13:00 execution's command still runs
    await service.tick()
    await settle(service)
    assert await statuses(service, "hourly") == ["in_progress", "skipped_overlapping"]
    assert len(commands.created) == 1
    commands.finish("cmd-1")
    await settle(service)
    clock.advance(hours=1)
    await service.tick()
    await settle(service)
    assert await statuses(service, "hourly") == ["success", "skipped_overlapping", "in_progress"]


async def test_tasks_run_by_priority_and_equal_priorities_together(setup: Any) -> None:
    service, commands, clock = setup
    await service.create("w", Window("w", "at(2026-03-28T13:00)", duration_seconds=7200, cutoff_seconds=600))
    await service.add_task(task("w", 2, "second-a"))
    await service.add_task(task("w", 2, "second-b"))
    await service.add_task(task("w", 1, "first"))
    clock.advance(hours=1)
    await service.tick()
    await settle(service)
    assert [spec.argv for _, spec in commands.created] == [("first",)]
    commands.finish("cmd-1")
    await settle(service)
    assert sorted(spec.argv for _, spec in commands.created[1:]) == [("second-a",), ("second-b",)]
    commands.finish("cmd-2")
    await settle(service)
    assert await statuses(service, "w") == ["in_progress"]  # one of the pair still runs
    commands.finish("cmd-3", CommandStatus.FAILED)
    await settle(service)
    (execution,) = await service.history("w")
    assert execution.status.value == "failed" and "1 of 3 tasks" in execution.reason
    assert all(actor == "window:w" for actor, _ in commands.created)


async def test_the_cutoff_cancels_running_tasks_and_skips_later_ones(setup: Any) -> None:
    service, commands, clock = setup
    window = Window("c", "at(2026-03-28T13:00)", duration_seconds=3600, cutoff_seconds=1800, cutoff_behavior="cancel")
    await service.create("alice", window)
    await service.add_task(task("c", 1, "slow"))
    await service.add_task(task("c", 2, "never"))
    clock.advance(hours=1)
    await service.tick()
    await settle(service)
    clock.advance(minutes=31)  # past end - cutoff
    await settle(service)
    await asyncio.wait(list(service._running.values()), timeout=2)
    (execution,) = await service.history("c")
    assert execution.status.value == "timed_out"
    first, second = execution.tasks
    assert first.status.value == "timed_out" and commands.cancelled == ["cmd-1"]
    assert second.status.value == "skipped" and not second.command_id


async def test_misfire_starts_late_before_the_cutoff_and_is_missed_after(setup: Any) -> None:
    service, commands, clock = setup
    await service.create("alice", Window("late", "cron(0 13 * * *)", duration_seconds=3600, cutoff_seconds=600))
    await service.create("alice", Window("gone", "cron(0 12 * * *)", duration_seconds=3600, cutoff_seconds=600))
    await service.add_task(task("late", 1))
    clock.advance(hours=1, minutes=45)  # 13:45: "late" is before its 13:50 cutoff; "gone" (12:00) is not
    await service.tick()
    await settle(service)
    assert await statuses(service, "late") == ["in_progress"]
    assert (await service.history("late"))[0].reason.startswith("started 2700s late")
    assert await statuses(service, "gone") == []  # created at 12:00: today's 12:00 was not after creation
    clock.advance(days=1, hours=1)  # 14:45 the next day: "gone" opened at 12:00 and its cutoff passed
    await service.tick()
    assert (await statuses(service, "gone"))[-1] == "missed"
    await service.tick()  # looking again records nothing twice
    assert len(await statuses(service, "gone")) == 1


async def test_occurrences_while_disabled_never_run(setup: Any) -> None:
    service, commands, clock = setup
    await service.create("alice", Window("d", "rate(1 hour)", duration_seconds=1800, cutoff_seconds=60))
    await service.add_task(task("d", 1))
    await service.set_enabled("d", False)
    clock.advance(hours=5)
    await service.tick()
    assert await statuses(service, "d") == []
    await service.set_enabled("d", True)
    await service.tick()
    assert await statuses(service, "d") == []  # nothing from the disabled hours
    clock.advance(hours=1)
    await service.tick()
    await settle(service)
    assert await statuses(service, "d") == ["in_progress"]
