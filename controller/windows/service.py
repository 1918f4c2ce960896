"""Maintenance windows: their definitions (create, update, tasks, history).

The scheduler (``scheduler``: claims each occurrence once across replicas) and the executor
(``executor``: runs one execution's tasks until the cutoff) are their own modules; the service
builds them and wakes the scheduler when a definition changes. Rows become domain objects in
``store`` only.

Each task acts for its author and is authorized as them each time it starts, on the hosts its
target resolves to then (``windows.authority``); the RPC layer checks, before any change, that the
caller holds the rights the window's tasks need.
"""

from __future__ import annotations

import builtins
import contextlib
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import FleetopsError, PermissionDenied
from fleetops.controller.commands.service import CommandService
from fleetops.controller.patching.service import PatchService
from fleetops.controller.windows.authority import TaskAuthority
from fleetops.controller.windows.executor import WindowExecutor
from fleetops.controller.windows.models import DEFAULT_MIN_DURATION, Execution, Window, WindowTask, new_task_id
from fleetops.controller.windows.scheduler import Clock, WindowScheduler, now_utc, schedule_of
from fleetops.controller.windows.store import WindowStore


def _with_refused(counts: dict[str, int], refused: tuple[str, ...]) -> dict[str, int]:
    return {**counts, "refused": len(refused)} if refused else counts


class WindowService:
    """Window definitions; ``scheduler`` runs their occurrences on this replica."""

    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        commands: CommandService,
        patching: PatchService,
        replica: str,
        *,
        authority: TaskAuthority,
        min_duration: int = DEFAULT_MIN_DURATION,
        clock: Clock = now_utc,
    ) -> None:
        self._store = WindowStore(db)
        self._commands = commands
        self._authority = authority
        self.replica = replica
        self._min_duration = min_duration
        self._clock = clock
        self.executor = WindowExecutor(self._store, commands, patching, authority, replica, clock)
        self.scheduler = WindowScheduler(self._store, self.executor, replica, clock)

    @property
    def min_duration(self) -> int:
        """The shortest window this controller accepts, in seconds (its --window-min-duration)."""
        return self._min_duration

    @property
    def authority(self) -> TaskAuthority:
        """Decides who may change a window's tasks, and each run as its author."""
        return self._authority

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()

    async def tick(self) -> datetime | None:
        """One look of the scheduler (see :meth:`WindowScheduler.tick`)."""
        return await self.scheduler.tick()

    # -- definitions --------------------------------------------------------------------------
    async def create(self, actor: str, window: Window) -> Window:
        """Raises: InvalidInput (bad fields or schedule), Conflict (the name is taken)."""
        window.check(self._min_duration)
        schedule_of(window)  # validates expression, time zone, dates and offset
        await self._store.create(window, actor, self._clock())
        self.scheduler.wake()
        return await self.get(window.name)

    async def update(self, window: Window) -> Window:
        """Replace a window's definition; occurrences already past are not run because of it.

        Raises: InvalidInput (bad fields or schedule), NotFound (no such window).
        """
        window.check(self._min_duration)
        saved = await self._store.get(window.name)
        schedule_of(replace(window, created_at=saved.created_at))
        await self._store.update(window, self._clock())
        self.scheduler.wake()
        return await self.get(window.name)

    async def set_enabled(self, name: str, enabled: bool) -> Window:
        """Enable or disable; occurrences while disabled are skipped silently, not run later."""
        await self._store.set_enabled(name, enabled, self._clock())
        self.scheduler.wake()
        return await self.get(name)

    async def delete(self, name: str) -> None:
        await self._store.delete(name)
        self.scheduler.wake()

    async def get(self, name: str) -> Window:
        return await self._store.get(name)

    async def list(self) -> list[Window]:
        return await self._store.windows()

    async def next_runs(self, window: Window, count: int = 5) -> builtins.list[datetime]:
        """The coming start times of ``window`` (saved or not)."""
        if window.created_at is None:
            window = replace(window, created_at=self._clock())
        schedule = schedule_of(window)
        runs: list[datetime] = []
        moment = self._clock()
        while len(runs) < count:
            following = schedule.next_after(moment)
            if following is None:
                break
            runs.append(following)
            moment = following
        return runs

    async def add_task(self, task: WindowTask, author: str) -> WindowTask:
        """Add *task*, acting for *author* (``operator:NAME``, the caller) from now on.

        The caller's rights to the task (and the window's other tasks) are checked before, by the RPC
        layer; each run is checked again as *author*.

        Raises: InvalidInput (a bad task), NotFound (no such window).
        """
        task.check()
        if not author:
            raise PermissionDenied("a window task needs an author", "this is a controller bug")
        task_id = new_task_id()
        await self._store.add_task(task, task_id, author, self._clock())
        return (await self.tasks(task.window, task_id))[0]

    async def remove_task(self, window: str, task_id: str) -> None:
        await self._store.remove_task(window, task_id)

    async def tasks(self, window: str, task_id: str = "") -> builtins.list[WindowTask]:
        return await self._store.tasks(window, task_id)

    async def history(self, window: str, limit: int = 20) -> builtins.list[Execution]:
        """The latest executions, newest first, each task with its command's counts (and refused hosts)."""
        executions = await self._store.history(window, limit)
        counts: dict[str, dict[str, int]] = {}
        for execution in executions:
            for t in execution.tasks:
                if t.command_id:
                    with contextlib.suppress(FleetopsError):
                        counts[t.command_id] = dict((await self._commands.command(t.command_id)).counts)
        return [
            replace(
                execution,
                tasks=tuple(
                    replace(t, counts=_with_refused(counts.get(t.command_id, {}), t.refused_hosts))
                    for t in execution.tasks
                ),
            )
            for execution in executions
        ]
