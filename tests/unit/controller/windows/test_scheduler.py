"""The window scheduler on an injected clock: overlap, misfire, disable/enable, priorities, cutoff.

A real (SQLite) store; commands are faked: each "runs" until the test finishes it (conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from fleetops.common.states import CommandStatus
from fleetops.controller.fleet.models import Target
from fleetops.controller.windows import executor
from fleetops.controller.windows.models import Window, WindowTask
from fleetops.controller.windows.service import WindowService

ALICE = "operator:alice"


async def statuses(service: WindowService, name: str) -> list[str]:
    return [e.status.value for e in reversed(await service.history(name))]


def task(window: str, priority: int, *argv: str) -> WindowTask:
    return WindowTask(window=window, priority=priority, type="run", target=Target(all=True), argv=argv or ("true",))


async def test_an_occurrence_while_the_last_still_runs_is_skipped_not_queued(setup: Any) -> None:
    service, commands, clock = setup
    await service.create("alice", Window("hourly", "cron(0 * * * *)", duration_seconds=3 * 3600, cutoff_seconds=60))
    await service.add_task(task("hourly", 1), ALICE)
    clock.advance(hours=1)  # 13:00
    await service.tick()
    await commands.settle(service)
    clock.advance(hours=1)  # 14:00: the 13:00 execution's command still runs
    await service.tick()
    await commands.settle(service)
    assert await statuses(service, "hourly") == ["in_progress", "skipped_overlapping"]
    assert len(commands.created) == 1
    commands.finish("cmd-1")
    await commands.settle(service)
    clock.advance(hours=1)
    await service.tick()
    await commands.settle(service)
    assert await statuses(service, "hourly") == ["success", "skipped_overlapping", "in_progress"]


async def test_tasks_run_by_priority_and_equal_priorities_together(setup: Any) -> None:
    service, commands, clock = setup
    await service.create("w", Window("w", "at(2026-03-28T13:00)", duration_seconds=7200, cutoff_seconds=600))
    await service.add_task(task("w", 2, "second-a"), ALICE)
    await service.add_task(task("w", 2, "second-b"), ALICE)
    await service.add_task(task("w", 1, "first"), ALICE)
    clock.advance(hours=1)
    await service.tick()
    await commands.settle(service)
    assert [spec.argv for _, spec in commands.created] == [("first",)]
    commands.finish("cmd-1")
    await commands.settle(service)
    assert sorted(spec.argv for _, spec in commands.created[1:]) == [("second-a",), ("second-b",)]
    commands.finish("cmd-2")
    await commands.settle(service)
    assert await statuses(service, "w") == ["in_progress"]  # one of the pair still runs
    commands.finish("cmd-3", CommandStatus.FAILED)
    await commands.settle(service)
    (execution,) = await service.history("w")
    assert execution.status.value == "failed" and "1 of 3 tasks" in execution.reason
    assert all(actor == "operator:alice via window:w" for actor, _ in commands.created)


async def test_the_cutoff_cancels_running_tasks_and_skips_later_ones(
    setup: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, commands, clock = setup
    monkeypatch.setattr(executor, "POLL_SECONDS", 0.01)  # how often a waiting execution looks at the clock
    window = Window("c", "at(2026-03-28T13:00)", duration_seconds=3600, cutoff_seconds=1800, cutoff_behavior="cancel")
    await service.create("alice", window)
    await service.add_task(task("c", 1, "slow"), ALICE)
    await service.add_task(task("c", 2, "never"), ALICE)
    clock.advance(hours=1)
    await service.tick()
    await commands.settle(service)
    clock.advance(minutes=31)  # past end - cutoff: the execution sees it at its next look at the clock
    await commands.ended(service)
    (execution,) = await service.history("c")
    assert execution.status.value == "timed_out"
    first, second = execution.tasks
    assert first.status.value == "timed_out" and commands.cancelled == ["cmd-1"]
    assert second.status.value == "skipped" and not second.command_id


async def test_misfire_starts_late_before_the_cutoff_and_is_missed_after(setup: Any) -> None:
    service, commands, clock = setup
    await service.create("alice", Window("late", "cron(0 13 * * *)", duration_seconds=3600, cutoff_seconds=600))
    await service.create("alice", Window("gone", "cron(0 12 * * *)", duration_seconds=3600, cutoff_seconds=600))
    await service.add_task(task("late", 1), ALICE)
    clock.advance(hours=1, minutes=45)  # 13:45: "late" is before its 13:50 cutoff; "gone" (12:00) is not
    await service.tick()
    await commands.settle(service)
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
    await service.add_task(task("d", 1), ALICE)
    await service.set_enabled("d", False)
    clock.advance(hours=5)
    await service.tick()
    assert await statuses(service, "d") == []
    await service.set_enabled("d", True)
    await service.tick()
    assert await statuses(service, "d") == []  # nothing from the disabled hours
    clock.advance(hours=1)
    await service.tick()
    await commands.settle(service)
    assert await statuses(service, "d") == ["in_progress"]
