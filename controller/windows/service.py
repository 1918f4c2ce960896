"""Maintenance windows: their definitions, and the scheduler that runs each occurrence once.

Every controller replica runs the scheduler. An occurrence is *claimed* by inserting its
execution row; the unique (window, scheduled_at) constraint lets exactly one replica win, and the
others skip it. The winner holds a lease on the execution, renewed while it runs; if that replica
dies, another takes the execution over once the lease lapses and carries on from what the rows
say (commands already created are watched, never created twice).

Semantics (docs/maintenance-windows.md): a window opens at each scheduled time for its duration;
tasks start in priority order (lower first; equal priorities together, the next group when the
previous one has finished); no task starts after end minus cutoff; at the cutoff, ``cancel``
cancels running commands (their tasks end timed_out) while ``continue`` lets them finish. An
occurrence while an execution of the same window still runs is recorded as skipped_overlapping.
An occurrence found late (the controllers were down) starts late if it is still before its
cutoff, and is recorded as missed otherwise.

Each task acts for its author and is authorized as them each time it starts, on the hosts its
target resolves to then (``windows.authority``); the RPC layer checks, before any change, that the
caller holds the rights the window's tasks need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, FleetopsError, NotFound, PermissionDenied
from fleetops.controller.authz import authorize
from fleetops.controller.commands.models import CommandSpec, CommandStatus
from fleetops.controller.commands.service import CommandService
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.patching.service import PatchOptions, PatchService
from fleetops.controller.store.models import (
    MaintenanceWindowRow,
    WindowExecutionRow,
    WindowTaskExecutionRow,
    WindowTaskRow,
)
from fleetops.controller.windows.authority import Grant, RunContext, TaskAuthority
from fleetops.controller.windows.models import (
    DEFAULT_MIN_DURATION,
    LEASE_SECONDS,
    CutoffBehavior,
    Execution,
    ExecutionStatus,
    TaskExecution,
    TaskStatus,
    TaskType,
    Window,
    WindowTask,
    check_name,
    new_execution_id,
    new_task_id,
)
from fleetops.controller.windows.schedule import Schedule

log = logging.getLogger(__name__)

#: Longest the scheduler sleeps between looks at the windows (changes wake it at once).
TICK_SECONDS = 30.0
#: At most this many missed occurrences of one window are recorded after a long downtime.
MAX_MISSED_RECORDED = 100
#: How often a running execution re-reads its commands (their progress also wakes it).
POLL_SECONDS = 1.0
COMMAND_TO_TASK = {
    CommandStatus.SUCCESS: TaskStatus.SUCCESS,
    CommandStatus.FAILED: TaskStatus.FAILED,
    CommandStatus.CANCELLED: TaskStatus.CANCELLED,
}

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def schedule_of(window: Window | MaintenanceWindowRow) -> Schedule:
    """Raises: InvalidInput (a bad expression, time zone or dates)."""
    return Schedule.parse(
        window.schedule,
        window.timezone or "UTC",
        start_date=window.start_date,
        end_date=window.end_date,
        offset_days=window.offset_days,
        anchor=window.start_date or window.created_at or _now(),
    )


def _window(row: MaintenanceWindowRow) -> Window:
    return Window(
        name=row.name,
        schedule=row.schedule,
        timezone=row.timezone,
        duration_seconds=row.duration_seconds,
        cutoff_seconds=row.cutoff_seconds,
        cutoff_behavior=CutoffBehavior(row.cutoff_behavior),
        start_date=row.start_date,
        end_date=row.end_date,
        offset_days=row.offset_days,
        enabled=row.enabled,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _task(row: WindowTaskRow) -> WindowTask:
    target = row.target or {}
    return WindowTask(
        window=row.window,
        id=row.id,
        priority=row.priority,
        type=TaskType(row.type),
        target=Target(
            selector=target.get("selector", ""), hosts=tuple(target.get("hosts", ())), all=bool(target.get("all"))
        ),
        max_concurrency=row.max_concurrency,
        max_errors=row.max_errors,
        reboot=row.reboot,
        argv=tuple(row.argv or ()),
        script=row.script,
        run_as=row.run_as,
        timeout_seconds=row.timeout_seconds,
        description=row.description,
        author=row.author,
    )


def refused_text(hosts: list[str], author: str) -> str:
    """``2 hosts refused (outside operator:alice's rights): db-1, db-2``, at most 20 names."""
    names = ", ".join(hosts[:20]) + (f" and {len(hosts) - 20} more" if len(hosts) > 20 else "")
    plural = "host" if len(hosts) == 1 else "hosts"
    return f"{len(hosts)} {plural} refused (outside {author}'s rights): {names}"


def _with_refused(counts: dict[str, int], refused: list[str] | None) -> dict[str, int]:
    return {**counts, "refused": len(refused)} if refused else counts


class WindowService:
    """Definitions (create, tasks, enable...) and the scheduler loop of this replica."""

    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        commands: CommandService,
        patching: PatchService,
        replica: str,
        *,
        authority: TaskAuthority,
        min_duration: int = DEFAULT_MIN_DURATION,
        clock: Clock = _now,
    ) -> None:
        self._db = db
        self._commands = commands
        self._patching = patching
        self._authority = authority
        self.replica = replica
        self._min_duration = min_duration
        self._clock = clock
        self._changed = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def authority(self) -> TaskAuthority:
        """Decides who may change a window's tasks, and each run as its author."""
        return self._authority

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="window scheduler")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Give the executions up at once: another replica (or the next start) takes them over.
        if self._running:
            async with self._db.begin() as db:
                await db.execute(
                    update(WindowExecutionRow)
                    .where(
                        WindowExecutionRow.id.in_(list(self._running)), WindowExecutionRow.controller == self.replica
                    )
                    .values(lease_until=self._clock())
                )

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

    # -- definitions --------------------------------------------------------------------------
    async def create(self, actor: str, window: Window) -> Window:
        """Raises: InvalidInput (bad fields or schedule), Conflict (the name is taken)."""
        window.check(self._min_duration)
        schedule_of(window)  # validates expression, time zone, dates and offset
        now = self._clock()
        try:
            async with self._db.begin() as db:
                db.add(
                    MaintenanceWindowRow(
                        name=window.name,
                        schedule=window.schedule,
                        timezone=window.timezone or "UTC",
                        duration_seconds=window.duration_seconds,
                        cutoff_seconds=window.cutoff_seconds,
                        cutoff_behavior=window.cutoff_behavior.value,
                        start_date=window.start_date,
                        end_date=window.end_date,
                        offset_days=window.offset_days,
                        enabled=window.enabled,
                        description=window.description,
                        created_at=now,
                        created_by=actor,
                        considered_from=now,
                    )
                )
        except IntegrityError:
            raise Conflict(f"window {window.name!r} exists", "change it with opsctl window update") from None
        self._changed.set()
        return await self.get(window.name)

    async def update(self, window: Window) -> Window:
        """Replace a window's definition; occurrences already past are not run because of it."""
        window.check(self._min_duration)
        async with self._db.begin() as db:
            row = await self._row(db, window.name)
            schedule_of(Window(**{**window.__dict__, "created_at": row.created_at}))
            changed_schedule = (row.schedule, row.timezone, row.offset_days) != (
                window.schedule,
                window.timezone or "UTC",
                window.offset_days,
            )
            row.schedule, row.timezone = window.schedule, window.timezone or "UTC"
            row.duration_seconds, row.cutoff_seconds = window.duration_seconds, window.cutoff_seconds
            row.cutoff_behavior = window.cutoff_behavior.value
            row.start_date, row.end_date, row.offset_days = window.start_date, window.end_date, window.offset_days
            row.description = window.description
            if window.enabled and not row.enabled:
                row.considered_from = self._clock()
            row.enabled = window.enabled
            if changed_schedule:
                row.considered_from = max(row.considered_from, self._clock())
        self._changed.set()
        return await self.get(window.name)

    async def set_enabled(self, name: str, enabled: bool) -> Window:
        """Enable or disable; occurrences while disabled are skipped silently, not run later."""
        async with self._db.begin() as db:
            row = await self._row(db, name)
            if enabled and not row.enabled:
                row.considered_from = self._clock()
            row.enabled = enabled
        self._changed.set()
        return await self.get(name)

    async def delete(self, name: str) -> None:
        async with self._db.begin() as db:
            row = await self._row(db, name)
            await db.delete(row)
        self._changed.set()

    async def get(self, name: str) -> Window:
        async with self._db() as db:
            return _window(await self._row(db, name))

    async def list(self) -> list[Window]:
        async with self._db() as db:
            rows = (await db.scalars(select(MaintenanceWindowRow).order_by(MaintenanceWindowRow.name))).all()
        return [_window(r) for r in rows]

    async def next_runs(self, window: Window, count: int = 5) -> list[datetime]:
        """The coming start times of ``window`` (saved or not)."""
        if window.created_at is None:
            window = Window(**{**window.__dict__, "created_at": self._clock()})
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
        async with self._db.begin() as db:
            await self._row(db, task.window)
            db.add(
                WindowTaskRow(
                    id=task_id,
                    window=task.window,
                    priority=task.priority,
                    type=task.type.value,
                    target={"selector": task.target.selector, "hosts": list(task.target.hosts), "all": task.target.all},
                    max_concurrency=task.max_concurrency,
                    max_errors=task.max_errors,
                    reboot=task.reboot,
                    argv=list(task.argv),
                    script=task.script,
                    run_as=task.run_as,
                    timeout_seconds=task.timeout_seconds,
                    description=task.description,
                    created_at=self._clock(),
                    author=author,
                )
            )
        return (await self.tasks(task.window, task_id))[0]

    async def remove_task(self, window: str, task_id: str) -> None:
        async with self._db.begin() as db:
            row = await db.get(WindowTaskRow, task_id)
            if row is None or row.window != window:
                raise NotFound(f"window {window!r} has no task {task_id!r}", f"see opsctl window show {window}")
            await db.delete(row)

    async def tasks(self, window: str, task_id: str = "") -> list[WindowTask]:
        async with self._db() as db:
            await self._row(db, window)
            query = select(WindowTaskRow).where(WindowTaskRow.window == window)
            if task_id:
                query = query.where(WindowTaskRow.id == task_id)
            rows = (await db.scalars(query.order_by(WindowTaskRow.priority, WindowTaskRow.created_at))).all()
        return [_task(r) for r in rows]

    async def history(self, window: str, limit: int = 20) -> list[Execution]:
        async with self._db() as db:
            await self._row(db, window)
            rows = (
                await db.scalars(
                    select(WindowExecutionRow)
                    .where(WindowExecutionRow.window == window)
                    .order_by(WindowExecutionRow.scheduled_at.desc())
                    .limit(limit)
                )
            ).all()
            ids = [r.id for r in rows]
            task_rows = (
                await db.scalars(
                    select(WindowTaskExecutionRow)
                    .where(WindowTaskExecutionRow.execution_id.in_(ids))
                    .order_by(WindowTaskExecutionRow.priority, WindowTaskExecutionRow.id)
                )
            ).all()
        counts: dict[str, dict[str, int]] = {}
        for t in task_rows:
            if t.command_id:
                with contextlib.suppress(FleetopsError):
                    counts[t.command_id] = dict((await self._commands.command(t.command_id)).counts)
        by_execution: dict[str, list[TaskExecution]] = {}
        for t in task_rows:
            by_execution.setdefault(t.execution_id, []).append(
                TaskExecution(
                    task_id=t.task_id,
                    type=t.type,
                    priority=t.priority,
                    status=TaskStatus(t.status),
                    target=t.target,
                    command_id=t.command_id,
                    reason=t.reason,
                    started_at=t.started_at,
                    finished_at=t.finished_at,
                    counts=_with_refused(counts.get(t.command_id, {}), t.refused_hosts),
                    author=t.author,
                    refused_hosts=tuple(t.refused_hosts or ()),
                )
            )
        return [
            Execution(
                id=r.id,
                window=r.window,
                scheduled_at=r.scheduled_at,
                status=ExecutionStatus(r.status),
                reason=r.reason,
                started_at=r.started_at,
                finished_at=r.finished_at,
                ends_at=r.ends_at,
                controller=r.controller,
                tasks=tuple(by_execution.get(r.id, ())),
            )
            for r in rows
        ]

    async def _row(self, db: AsyncSession, name: str) -> MaintenanceWindowRow:
        row = await db.get(MaintenanceWindowRow, check_name(name))
        if row is None:
            raise NotFound(f"no maintenance window {name!r}", "list them with opsctl window list")
        return row

    # -- the scheduler ------------------------------------------------------------------------
    async def tick(self) -> datetime | None:
        """Claim and start what is due, take over lapsed executions; when to look again."""
        now = self._clock()
        await self._take_over_lapsed(now)
        async with self._db() as db:
            windows = (await db.scalars(select(MaintenanceWindowRow).where(MaintenanceWindowRow.enabled))).all()
        wake: datetime | None = None
        for row in windows:
            try:
                following = await self._due(row, now)
            except FleetopsError as exc:
                log.error("window %s cannot be scheduled: %s", row.name, exc.message)
                continue
            if following is not None and (wake is None or following < wake):
                wake = following
        return wake

    async def _due(self, row: MaintenanceWindowRow, now: datetime) -> datetime | None:
        schedule = schedule_of(row)
        async with self._db() as db:
            last = await db.scalar(
                select(WindowExecutionRow.scheduled_at)
                .where(WindowExecutionRow.window == row.name)
                .order_by(WindowExecutionRow.scheduled_at.desc())
                .limit(1)
            )
        after = max(row.considered_from, last) if last is not None else row.considered_from
        due: list[datetime] = []
        moment = schedule.next_after(after)
        while moment is not None and moment <= now:
            due.append(moment)
            moment = schedule.next_after(moment)
        if len(due) > MAX_MISSED_RECORDED:
            log.warning("window %s: %d occurrences passed unseen; recording the last %d", row.name, len(due),
                        MAX_MISSED_RECORDED)  # fmt: skip
            due = due[-MAX_MISSED_RECORDED:]
        for scheduled in due:
            await self._occurrence(row, scheduled, now)
        return moment

    async def _occurrence(self, row: MaintenanceWindowRow, scheduled: datetime, now: datetime) -> None:
        ends = scheduled + timedelta(seconds=row.duration_seconds)
        cutoff = ends - timedelta(seconds=row.cutoff_seconds)
        execution = WindowExecutionRow(
            id=new_execution_id(),
            window=row.name,
            scheduled_at=scheduled,
            ends_at=ends,
            cutoff_at=cutoff,
            cutoff_behavior=row.cutoff_behavior,
            controller=self.replica,
            reason="",
        )
        async with self._db() as db:
            running = await db.scalar(
                select(WindowExecutionRow.id).where(
                    WindowExecutionRow.window == row.name,
                    WindowExecutionRow.status == ExecutionStatus.IN_PROGRESS.value,
                )
            )
        if now >= cutoff:
            execution.status = ExecutionStatus.MISSED.value
            execution.reason = (
                f"no controller was running at {scheduled:%Y-%m-%d %H:%M:%S}Z, nor before the cutoff at "
                f"{cutoff:%H:%M:%S}Z"
            )
        elif running is not None:
            execution.status = ExecutionStatus.SKIPPED_OVERLAPPING.value
            execution.reason = f"execution {running} of this window was still running"
        else:
            execution.status = ExecutionStatus.IN_PROGRESS.value
            execution.started_at = now
            execution.lease_until = now + timedelta(seconds=LEASE_SECONDS)
            if now > scheduled + timedelta(seconds=5):
                execution.reason = f"started {int((now - scheduled).total_seconds())}s late (no controller was running)"
        try:
            async with self._db.begin() as db:
                db.add(execution)
        except IntegrityError:
            return  # another replica claimed (or recorded) this occurrence
        if execution.status == ExecutionStatus.IN_PROGRESS.value:
            log.info("window %s opens (occurrence %s, execution %s)", row.name, scheduled.isoformat(), execution.id)
            self._launch(execution.id)
        else:
            log.info("window %s occurrence %s: %s", row.name, scheduled.isoformat(), execution.status)

    async def _take_over_lapsed(self, now: datetime) -> None:
        async with self._db() as db:
            lapsed = (
                await db.execute(
                    select(WindowExecutionRow.id, WindowExecutionRow.lease_until).where(
                        WindowExecutionRow.status == ExecutionStatus.IN_PROGRESS.value,
                        WindowExecutionRow.lease_until < now,
                    )
                )
            ).all()
        for execution_id, lease in lapsed:
            if execution_id in self._running:
                continue
            async with self._db.begin() as db:
                result = await db.execute(
                    update(WindowExecutionRow)
                    .where(WindowExecutionRow.id == execution_id, WindowExecutionRow.lease_until == lease)
                    .values(controller=self.replica, lease_until=now + timedelta(seconds=LEASE_SECONDS))
                )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                log.warning("taking over window execution %s (its controller stopped)", execution_id)
                self._launch(execution_id)

    def _launch(self, execution_id: str) -> None:
        task = asyncio.create_task(self._execute(execution_id), name=f"window execution {execution_id}")
        self._running[execution_id] = task
        task.add_done_callback(lambda _: self._running.pop(execution_id, None))

    # -- one execution ----------------------------------------------------------------------------
    async def _execute(self, execution_id: str) -> None:
        renewer = asyncio.create_task(self._renew(execution_id))
        try:
            await self._run_tasks(execution_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("window execution %s failed", execution_id)
            await self._finish(execution_id, ExecutionStatus.FAILED, f"internal error: {exc!r}")
        finally:
            renewer.cancel()

    async def _renew(self, execution_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            async with self._db.begin() as db:
                await db.execute(
                    update(WindowExecutionRow)
                    .where(WindowExecutionRow.id == execution_id, WindowExecutionRow.controller == self.replica)
                    .values(lease_until=self._clock() + timedelta(seconds=LEASE_SECONDS))
                )

    async def _run_tasks(self, execution_id: str) -> None:
        async with self._db() as db:
            execution = await db.get(WindowExecutionRow, execution_id)
            assert execution is not None
            tasks = {
                t.id: _task(t)
                for t in (await db.scalars(select(WindowTaskRow).where(WindowTaskRow.window == execution.window))).all()
            }
        existing = await self._task_executions(execution_id)
        if not existing:
            # The task list is fixed when the window opens (later edits apply to later occurrences).
            async with self._db.begin() as db:
                for task in tasks.values():
                    db.add(
                        WindowTaskExecutionRow(
                            execution_id=execution_id,
                            task_id=task.id,
                            priority=task.priority,
                            type=task.type.value,
                            target=task.target.describe(),
                            status=TaskStatus.PENDING.value,
                            command_id="",
                            reason="",
                            author=task.author,
                            refused_hosts=[],
                        )
                    )
            existing = await self._task_executions(execution_id)
        if not existing:
            await self._finish(execution_id, ExecutionStatus.SUCCESS, "the window has no tasks")
            return
        cutoff_hit = False
        for priority in sorted({r.priority for r in existing.values()}):
            group = [r for r in existing.values() if r.priority == priority]
            if self._clock() >= execution.cutoff_at:
                cutoff_hit = True
                break
            for row in group:
                if row.status == TaskStatus.PENDING.value:
                    await self._start_task(execution, row, tasks.get(row.task_id))
            if await self._wait_group(execution, group):
                cutoff_hit = True
                break
        skipped = [r for r in existing.values() if r.status == TaskStatus.PENDING.value]
        for row in skipped:
            await self._set_task(
                row,
                TaskStatus.SKIPPED,
                reason=f"not started: the window's cutoff ({execution.cutoff_at:%H:%M:%S}Z) had passed",
            )
        statuses = {TaskStatus(r.status) for r in existing.values()}
        if cutoff_hit and (skipped or TaskStatus.TIMED_OUT in statuses):
            await self._finish(execution_id, ExecutionStatus.TIMED_OUT, "the cutoff came before every task had run")
        elif statuses & {TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}:
            failed = sum(s != TaskStatus.SUCCESS for s in (TaskStatus(r.status) for r in existing.values()))
            await self._finish(
                execution_id, ExecutionStatus.FAILED, f"{failed} of {len(existing)} tasks did not succeed"
            )
        else:
            await self._finish(execution_id, ExecutionStatus.SUCCESS, "")

    async def _task_executions(self, execution_id: str) -> dict[str, WindowTaskExecutionRow]:
        async with self._db() as db:
            rows = await db.scalars(
                select(WindowTaskExecutionRow).where(WindowTaskExecutionRow.execution_id == execution_id)
            )
            return {r.task_id: r for r in rows.all()}

    async def _start_task(
        self, execution: WindowExecutionRow, row: WindowTaskExecutionRow, task: WindowTask | None
    ) -> None:
        if task is None:
            await self._set_task(row, TaskStatus.SKIPPED, reason="the task was removed from the window")
            return
        run = RunContext(execution.window, task, execution.id)
        try:
            grant = await self._authority.grant(run)
        except FleetopsError as exc:  # the author may no longer act, or the target resolves to nothing
            await self._set_task(row, TaskStatus.FAILED, reason=exc.message, started=True)
            return
        if grant.error:
            await self._set_task(row, TaskStatus.FAILED, reason=grant.error, started=True, refused=grant.refused)
            return
        try:
            command_id = await self._create(run, grant)
        except FleetopsError as exc:
            if isinstance(exc, PermissionDenied):
                await self._authority.refuse(run, exc.message)
            await self._set_task(row, TaskStatus.FAILED, reason=exc.message, started=True, refused=grant.refused)
            return
        await self._set_task(row, TaskStatus.IN_PROGRESS, command_id=command_id, started=True, refused=grant.refused)

    async def _create(self, run: RunContext, grant: Grant) -> str:
        """Create the task's command on the granted hosts only, as its author via the window."""
        task = run.task
        # With hosts refused, the command names the granted ones: a host tagged into the selector
        # between the decision and the command is never added behind the decision's back.
        target = Target(hosts=tuple(h.id for h in grant.hosts)) if grant.refused else task.target
        granted = {h.id for h in grant.hosts}

        def recheck(hosts: list[Host]) -> None:
            outside = [h.name or h.id for h in hosts if h.id not in granted]
            if outside:
                raise PermissionDenied(
                    f"the task's hosts changed while it started ({', '.join(outside[:20])} appeared); nothing was sent",
                    "the next opening of the window decides again",
                )
            authorize(grant.roles, task.action, hosts=hosts, login=task.login, user=grant.user).check()

        actor = f"{task.author} via {run.via}"
        comment = f"window {run.window} task {task.id} for {task.author}"
        limits = self._limits(task)
        if grant.refused:
            limits["max_errors"] = grant.max_errors
        if task.type == TaskType.RUN:
            spec = CommandSpec(argv=task.argv, script=task.script, run_as=task.run_as, comment=comment, **limits)
            command, _ = await self._commands.create(actor, target, spec, authorize=recheck)
        else:
            options = PatchOptions(reboot=task.reboot or "if-needed", comment=comment, **limits)
            operation = self._patching.scan if task.type == TaskType.PATCH_SCAN else self._patching.install
            command, _ = await operation(actor, target, options, authorize=recheck)
        return command.id

    @staticmethod
    def _limits(task: WindowTask) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        if task.max_concurrency:
            limits["max_concurrency"] = task.max_concurrency
        if task.max_errors:
            limits["max_errors"] = task.max_errors
        if task.timeout_seconds:
            limits["timeout_seconds"] = task.timeout_seconds
        return limits

    async def _wait_group(self, execution: WindowExecutionRow, group: list[WindowTaskExecutionRow]) -> bool:
        """Wait until the group's commands end; True when the cutoff cancelled some of them."""
        cancelled_at_cutoff = False
        while True:
            running = [r for r in group if r.status == TaskStatus.IN_PROGRESS.value]
            if not running:
                return cancelled_at_cutoff
            past_cutoff = self._clock() >= execution.cutoff_at
            if past_cutoff and execution.cutoff_behavior == CutoffBehavior.CANCEL.value and not cancelled_at_cutoff:
                cancelled_at_cutoff = True
                for row in running:
                    with contextlib.suppress(FleetopsError):
                        await self._commands.cancel(row.command_id)
                log.info("window execution %s: cutoff reached, cancelled %d running tasks", execution.id, len(running))
            for row in running:
                command = await self._commands.command(row.command_id)
                if command.status == CommandStatus.IN_PROGRESS:
                    continue
                status = COMMAND_TO_TASK[command.status]
                reason = ""
                if cancelled_at_cutoff and status == TaskStatus.CANCELLED:
                    status, reason = TaskStatus.TIMED_OUT, "cancelled at the window's cutoff"
                elif status == TaskStatus.FAILED:
                    reason = ", ".join(f"{n} {s}" for s, n in sorted(command.counts.items()) if n)
                if row.refused_hosts:  # refused hosts are errors: the task did not do all it was for
                    status = TaskStatus.FAILED if status == TaskStatus.SUCCESS else status
                    reason = "; ".join(x for x in (reason, refused_text(row.refused_hosts, row.author)) if x)
                await self._set_task(row, status, reason=reason)
            if any(r.status == TaskStatus.IN_PROGRESS.value for r in group):
                await self._changes([r.command_id for r in group if r.status == TaskStatus.IN_PROGRESS.value],
                                    execution.cutoff_at)  # fmt: skip

    async def _changes(self, command_ids: list[str], cutoff: datetime) -> None:
        queues = [(cid, self._commands.subscribe(cid)) for cid in command_ids]
        try:
            waiters = [asyncio.ensure_future(q.get()) for _, q in queues]
            timeout = POLL_SECONDS
            until_cutoff = (cutoff - self._clock()).total_seconds()
            if until_cutoff > 0:
                timeout = min(timeout, until_cutoff)
            await asyncio.wait(waiters, timeout=max(timeout, 0.01), return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        finally:
            for cid, queue in queues:
                self._commands.unsubscribe(cid, queue)

    async def _set_task(
        self,
        row: WindowTaskExecutionRow,
        status: TaskStatus,
        *,
        reason: str = "",
        command_id: str = "",
        started: bool = False,
        refused: list[str] | None = None,
    ) -> None:
        now = self._clock()
        values: dict[str, Any] = {"status": status.value, "reason": reason}
        if command_id:
            values["command_id"] = command_id
        if refused:
            values["refused_hosts"] = refused
        if started:
            values["started_at"] = now
        if status.final:
            values["finished_at"] = now
        async with self._db.begin() as db:
            await db.execute(update(WindowTaskExecutionRow).where(WindowTaskExecutionRow.id == row.id).values(**values))
        for key, value in values.items():
            setattr(row, key, value)

    async def _finish(self, execution_id: str, status: ExecutionStatus, reason: str) -> None:
        async with self._db.begin() as db:
            row = await db.get(WindowExecutionRow, execution_id)
            if row is None:
                return
            row.status = status.value
            row.reason = "; ".join(x for x in (row.reason, reason) if x)
            row.finished_at = self._clock()
            row.lease_until = None
        log.info("window execution %s ended: %s %s", execution_id, status.value, reason)
