"""The window scheduler: every replica runs one; each occurrence of a window runs once.

An occurrence is *claimed* by inserting its execution row; the unique (window, scheduled_at)
constraint lets exactly one replica win, and the others skip it. The winner holds a lease on the
execution, renewed while it runs (``executor``); if that replica dies, another takes the execution
over once the lease lapses and carries on from what the rows say.

An occurrence while an execution of the same window still runs is recorded as skipped_overlapping.
An occurrence found late (the controllers were down) starts late if it is still before its
cutoff, and is recorded as missed otherwise (docs/maintenance-windows.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fleetops.common.errors import FleetopsError
from fleetops.controller.windows.executor import WindowExecutor
from fleetops.controller.windows.models import LEASE_SECONDS, ExecutionStatus, Window, new_execution_id
from fleetops.controller.windows.schedule import Schedule
from fleetops.controller.windows.store import NewExecution, WindowStore

log = logging.getLogger(__name__)

#: Longest the scheduler sleeps between looks at the windows (changes wake it at once).
TICK_SECONDS = 30.0
#: At most this many missed occurrences of one window are recorded after a long downtime.
MAX_MISSED_RECORDED = 100

Clock = Callable[[], datetime]


def now_utc() -> datetime:
    return datetime.now(UTC)


def schedule_of(window: Window) -> Schedule:
    """Raises: InvalidInput (a bad expression, time zone or dates)."""
    return Schedule.parse(
        window.schedule,
        window.timezone or "UTC",
        start_date=window.start_date,
        end_date=window.end_date,
        offset_days=window.offset_days,
        anchor=window.start_date or window.created_at or now_utc(),
    )


class WindowScheduler:
    """Claims due occurrences, takes over lapsed executions, and runs what it holds."""

    def __init__(self, store: WindowStore, executor: WindowExecutor, replica: str, clock: Clock) -> None:
        self._store = store
        self._executor = executor
        self.replica = replica
        self._clock = clock
        self._changed = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self.running: dict[str, asyncio.Task[None]] = {}  # execution id -> its task on this replica

    def wake(self) -> None:
        """A definition changed: look at the windows again now."""
        self._changed.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="window scheduler")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self.running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Give the executions up at once: another replica (or the next start) takes them over.
        if self.running:
            await self._store.renew(list(self.running), self.replica, self._clock())

    async def _loop(self) -> None:
        while True:
            try:
                wake_at = await self.tick()
            except Exception:
                log.exception("the window scheduler failed; trying again")
                wake_at = None
            now = self._clock()
            delay = TICK_SECONDS if wake_at is None else min(TICK_SECONDS, max((wake_at - now).total_seconds(), 0.05))
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), delay)

    async def tick(self) -> datetime | None:
        """Claim and start what is due, take over lapsed executions; when to look again."""
        now = self._clock()
        await self._take_over_lapsed(now)
        wake: datetime | None = None
        for window, considered_from in await self._store.enabled():
            try:
                following = await self._due(window, considered_from, now)
            except FleetopsError as exc:
                log.error("window %s cannot be scheduled: %s", window.name, exc.message)
                continue
            if following is not None and (wake is None or following < wake):
                wake = following
        return wake

    async def _due(self, window: Window, considered_from: datetime, now: datetime) -> datetime | None:
        schedule = schedule_of(window)
        last = await self._store.last_scheduled(window.name)
        after = max(considered_from, last) if last is not None else considered_from
        due: list[datetime] = []
        moment = schedule.next_after(after)
        while moment is not None and moment <= now:
            due.append(moment)
            moment = schedule.next_after(moment)
        if len(due) > MAX_MISSED_RECORDED:
            log.warning("window %s: %d occurrences passed unseen; recording the last %d", window.name, len(due),
                        MAX_MISSED_RECORDED)  # fmt: skip
            due = due[-MAX_MISSED_RECORDED:]
        for scheduled in due:
            await self._occurrence(window, scheduled, now)
        return moment

    async def _occurrence(self, window: Window, scheduled: datetime, now: datetime) -> None:
        ends = scheduled + timedelta(seconds=window.duration_seconds)
        cutoff = ends - timedelta(seconds=window.cutoff_seconds)
        running = await self._store.running_execution(window.name)
        status, reason = ExecutionStatus.IN_PROGRESS, ""
        started_at: datetime | None = None
        lease_until: datetime | None = None
        if now >= cutoff:
            status = ExecutionStatus.MISSED
            reason = (
                f"no controller was running at {scheduled:%Y-%m-%d %H:%M:%S}Z, nor before the cutoff at "
                f"{cutoff:%H:%M:%S}Z"
            )
        elif running is not None:
            status = ExecutionStatus.SKIPPED_OVERLAPPING
            reason = f"execution {running} of this window was still running"
        else:
            started_at = now
            lease_until = now + timedelta(seconds=LEASE_SECONDS)
            if now > scheduled + timedelta(seconds=5):
                reason = f"started {int((now - scheduled).total_seconds())}s late (no controller was running)"
        execution = NewExecution(
            id=new_execution_id(),
            window=window.name,
            scheduled_at=scheduled,
            ends_at=ends,
            cutoff_at=cutoff,
            cutoff_behavior=window.cutoff_behavior.value,
            controller=self.replica,
            status=status,
            reason=reason,
            started_at=started_at,
            lease_until=lease_until,
        )
        if not await self._store.claim(execution):
            return  # another replica claimed (or recorded) this occurrence
        if status == ExecutionStatus.IN_PROGRESS:
            log.info("window %s opens (occurrence %s, execution %s)", window.name, scheduled.isoformat(), execution.id)
            self._launch(execution.id)
        else:
            log.info("window %s occurrence %s: %s", window.name, scheduled.isoformat(), status.value)

    async def _take_over_lapsed(self, now: datetime) -> None:
        for execution_id, lease in await self._store.lapsed(now):
            if execution_id in self.running:
                continue
            if await self._store.take_over(execution_id, lease, self.replica, now + timedelta(seconds=LEASE_SECONDS)):
                log.warning("taking over window execution %s (its controller stopped)", execution_id)
                self._launch(execution_id)

    def _launch(self, execution_id: str) -> None:
        task = asyncio.create_task(self._executor.execute(execution_id), name=f"window execution {execution_id}")
        self.running[execution_id] = task
        task.add_done_callback(lambda _: self.running.pop(execution_id, None))
