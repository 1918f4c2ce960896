"""Maintenance windows in the database: the one place their rows become domain objects.

The service (definitions), the scheduler (claims) and the executor (one execution's progress) go
through :class:`WindowStore`; none of them sees a table. An occurrence is claimed by inserting its
execution row: the unique (window, scheduled_at) constraint lets exactly one replica win.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, NotFound
from fleetops.controller.events.outbox import record_event
from fleetops.controller.fleet.models import Target
from fleetops.controller.store.models import (
    MaintenanceWindowRow,
    WindowExecutionRow,
    WindowTaskExecutionRow,
    WindowTaskRow,
)
from fleetops.controller.windows.models import (
    CutoffBehavior,
    Execution,
    ExecutionRun,
    ExecutionStatus,
    TaskExecution,
    TaskRun,
    TaskStatus,
    TaskType,
    Window,
    WindowTask,
    check_name,
)


@dataclass(frozen=True)
class NewExecution:
    """An occurrence as the scheduler claims it (running, or recorded missed/skipped)."""

    id: str
    window: str
    scheduled_at: datetime
    ends_at: datetime
    cutoff_at: datetime
    cutoff_behavior: str
    controller: str
    status: ExecutionStatus
    reason: str = ""
    started_at: datetime | None = None
    lease_until: datetime | None = None


def _event_data(window: str, execution_id: str, status: str, reason: str) -> dict[str, Any]:
    """What every window execution event carries (docs/events.md); windows are named, not numbered."""
    return {"window": window, "execution_id": execution_id, "status": status, "reason": reason[:500]}


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
        document=row.document or "",
        parameters=dict(row.parameters or {}),
    )


def _task_execution(row: WindowTaskExecutionRow) -> TaskExecution:
    """Counts are left empty: the service adds the command's (the store does not know commands)."""
    return TaskExecution(
        task_id=row.task_id,
        type=row.type,
        priority=row.priority,
        status=TaskStatus(row.status),
        target=row.target,
        command_id=row.command_id,
        reason=row.reason,
        started_at=row.started_at,
        finished_at=row.finished_at,
        author=row.author,
        refused_hosts=tuple(row.refused_hosts or ()),
    )


def _execution(row: WindowExecutionRow, tasks: Iterable[TaskExecution]) -> Execution:
    return Execution(
        id=row.id,
        window=row.window,
        scheduled_at=row.scheduled_at,
        status=ExecutionStatus(row.status),
        reason=row.reason,
        started_at=row.started_at,
        finished_at=row.finished_at,
        ends_at=row.ends_at,
        controller=row.controller,
        tasks=tuple(tasks),
    )


def _task_run(row: WindowTaskExecutionRow) -> TaskRun:
    return TaskRun(
        id=row.id,
        task_id=row.task_id,
        priority=row.priority,
        status=row.status,
        command_id=row.command_id,
        author=row.author,
        refused_hosts=list(row.refused_hosts or ()),
        reason=row.reason,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


async def _row(db: AsyncSession, name: str) -> MaintenanceWindowRow:
    row = await db.get(MaintenanceWindowRow, check_name(name))
    if row is None:
        raise NotFound(f"no maintenance window {name!r}", "list them with opsctl window list")
    return row


class WindowStore:
    """Windows, their tasks and executions over one database."""

    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    # -- definitions --------------------------------------------------------------------------
    async def create(self, window: Window, actor: str, now: datetime) -> None:
        """Raises: Conflict (the name is taken)."""
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

    async def update(self, window: Window, now: datetime) -> None:
        """Replace a definition; a new schedule or an enable considers occurrences only from ``now``.

        Raises: NotFound (no such window).
        """
        async with self._db.begin() as db:
            row = await _row(db, window.name)
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
                row.considered_from = now
            row.enabled = window.enabled
            if changed_schedule:
                row.considered_from = max(row.considered_from, now)

    async def set_enabled(self, name: str, enabled: bool, now: datetime) -> None:
        """Raises: NotFound (no such window)."""
        async with self._db.begin() as db:
            row = await _row(db, name)
            if enabled and not row.enabled:
                row.considered_from = now
            row.enabled = enabled

    async def delete(self, name: str) -> None:
        """Raises: NotFound (no such window)."""
        async with self._db.begin() as db:
            await db.delete(await _row(db, name))

    async def get(self, name: str) -> Window:
        """Raises: InvalidInput (a malformed name), NotFound (no such window)."""
        async with self._db() as db:
            return _window(await _row(db, name))

    async def windows(self) -> list[Window]:
        async with self._db() as db:
            rows = (await db.scalars(select(MaintenanceWindowRow).order_by(MaintenanceWindowRow.name))).all()
        return [_window(r) for r in rows]

    async def add_task(self, task: WindowTask, task_id: str, author: str, now: datetime) -> None:
        """Raises: NotFound (no such window)."""
        async with self._db.begin() as db:
            await _row(db, task.window)
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
                    created_at=now,
                    author=author,
                    document=task.document,
                    parameters=dict(task.parameters),
                )
            )

    async def remove_task(self, window: str, task_id: str) -> None:
        """Raises: NotFound (the window has no such task)."""
        async with self._db.begin() as db:
            row = await db.get(WindowTaskRow, task_id)
            if row is None or row.window != window:
                raise NotFound(f"window {window!r} has no task {task_id!r}", f"see opsctl window show {window}")
            await db.delete(row)

    async def tasks(self, window: str, task_id: str = "") -> list[WindowTask]:
        """The window's tasks in run order. Raises: NotFound (no such window)."""
        async with self._db() as db:
            await _row(db, window)
            query = select(WindowTaskRow).where(WindowTaskRow.window == window)
            if task_id:
                query = query.where(WindowTaskRow.id == task_id)
            rows = (await db.scalars(query.order_by(WindowTaskRow.priority, WindowTaskRow.created_at))).all()
        return [_task(r) for r in rows]

    async def history(self, window: str, limit: int) -> list[Execution]:
        """The latest executions, newest first, with their tasks (without command counts).

        Raises: NotFound (no such window).
        """
        async with self._db() as db:
            await _row(db, window)
            rows = (
                await db.scalars(
                    select(WindowExecutionRow)
                    .where(WindowExecutionRow.window == window)
                    .order_by(WindowExecutionRow.scheduled_at.desc())
                    .limit(limit)
                )
            ).all()
            task_rows = (
                await db.scalars(
                    select(WindowTaskExecutionRow)
                    .where(WindowTaskExecutionRow.execution_id.in_([r.id for r in rows]))
                    .order_by(WindowTaskExecutionRow.priority, WindowTaskExecutionRow.id)
                )
            ).all()
        by_execution: dict[str, list[TaskExecution]] = {}
        for t in task_rows:
            by_execution.setdefault(t.execution_id, []).append(_task_execution(t))
        return [_execution(r, by_execution.get(r.id, ())) for r in rows]

    # -- the scheduler ------------------------------------------------------------------------
    async def enabled(self) -> list[tuple[Window, datetime]]:
        """Each enabled window with the moment its occurrences are considered from."""
        async with self._db() as db:
            rows = (await db.scalars(select(MaintenanceWindowRow).where(MaintenanceWindowRow.enabled))).all()
        return [(_window(r), r.considered_from) for r in rows]

    async def last_scheduled(self, window: str) -> datetime | None:
        """The latest occurrence claimed or recorded for ``window``."""
        async with self._db() as db:
            return await db.scalar(
                select(WindowExecutionRow.scheduled_at)
                .where(WindowExecutionRow.window == window)
                .order_by(WindowExecutionRow.scheduled_at.desc())
                .limit(1)
            )

    async def running_execution(self, window: str) -> str | None:
        """The id of ``window``'s execution in progress, if any."""
        async with self._db() as db:
            return await db.scalar(
                select(WindowExecutionRow.id).where(
                    WindowExecutionRow.window == window,
                    WindowExecutionRow.status == ExecutionStatus.IN_PROGRESS.value,
                )
            )

    async def claim(self, execution: NewExecution) -> bool:
        """Insert the occurrence's execution; False when another replica claimed it first."""
        try:
            async with self._db.begin() as db:
                if execution.status in (ExecutionStatus.IN_PROGRESS, ExecutionStatus.MISSED):
                    tasks = await db.scalar(
                        select(func.count()).select_from(WindowTaskRow).where(WindowTaskRow.window == execution.window)
                    )
                    data = _event_data(execution.window, execution.id, execution.status.value, execution.reason)
                    data.update(scheduled_at=execution.scheduled_at.isoformat(), tasks=int(tasks or 0))
                    started = execution.status is ExecutionStatus.IN_PROGRESS
                    # In the insert's transaction: the replica that loses the claim loses its event too.
                    record_event(
                        db,
                        "fleetops.window.execution.started" if started else "fleetops.window.execution.missed",
                        subject=f"window/{execution.window}",
                        data=data,
                    )
                db.add(
                    WindowExecutionRow(
                        id=execution.id,
                        window=execution.window,
                        scheduled_at=execution.scheduled_at,
                        ends_at=execution.ends_at,
                        cutoff_at=execution.cutoff_at,
                        cutoff_behavior=execution.cutoff_behavior,
                        controller=execution.controller,
                        status=execution.status.value,
                        reason=execution.reason,
                        started_at=execution.started_at,
                        lease_until=execution.lease_until,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def lapsed(self, now: datetime) -> list[tuple[str, datetime]]:
        """Executions in progress whose lease ran out before ``now``: (id, lease)."""
        async with self._db() as db:
            rows = (
                await db.execute(
                    select(WindowExecutionRow.id, WindowExecutionRow.lease_until).where(
                        WindowExecutionRow.status == ExecutionStatus.IN_PROGRESS.value,
                        WindowExecutionRow.lease_until < now,
                    )
                )
            ).all()
        return [(execution_id, lease) for execution_id, lease in rows if lease is not None]

    async def take_over(self, execution_id: str, lease: datetime, controller: str, lease_until: datetime) -> bool:
        """Move a lapsed execution to ``controller``; False when its lease changed meanwhile."""
        async with self._db.begin() as db:
            result = await db.execute(
                update(WindowExecutionRow)
                .where(WindowExecutionRow.id == execution_id, WindowExecutionRow.lease_until == lease)
                .values(controller=controller, lease_until=lease_until)
            )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # Result stubs lack rowcount

    async def renew(self, execution_ids: list[str], controller: str, lease_until: datetime) -> None:
        """Set the lease of ``controller``'s executions (to now: give them up)."""
        async with self._db.begin() as db:
            await db.execute(
                update(WindowExecutionRow)
                .where(WindowExecutionRow.id.in_(execution_ids), WindowExecutionRow.controller == controller)
                .values(lease_until=lease_until)
            )

    # -- one execution ------------------------------------------------------------------------
    async def execution_run(self, execution_id: str) -> tuple[ExecutionRun, dict[str, WindowTask]]:
        """A claimed execution and its window's tasks now, by id."""
        async with self._db() as db:
            row = await db.get(WindowExecutionRow, execution_id)
            assert row is not None, f"execution {execution_id} was claimed"
            tasks = (await db.scalars(select(WindowTaskRow).where(WindowTaskRow.window == row.window))).all()
            run = ExecutionRun(row.id, row.window, row.cutoff_at, row.cutoff_behavior)
        return run, {t.id: _task(t) for t in tasks}

    async def task_runs(self, execution_id: str) -> dict[str, TaskRun]:
        """The execution's tasks by task id."""
        async with self._db() as db:
            rows = await db.scalars(
                select(WindowTaskExecutionRow).where(WindowTaskExecutionRow.execution_id == execution_id)
            )
            return {r.task_id: _task_run(r) for r in rows.all()}

    async def add_task_runs(self, execution_id: str, tasks: Iterable[WindowTask]) -> None:
        """Fix the execution's task list (pending), as the window opens."""
        async with self._db.begin() as db:
            for task in tasks:
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

    async def set_task_run(self, run_id: int, values: dict[str, Any]) -> None:
        """Update one task's progress (the columns of :class:`TaskRun`)."""
        async with self._db.begin() as db:
            await db.execute(update(WindowTaskExecutionRow).where(WindowTaskExecutionRow.id == run_id).values(**values))

    async def finish(self, execution_id: str, status: ExecutionStatus, reason: str, now: datetime) -> bool:
        """End an execution; ``reason`` is added to any it had (e.g. a late start). False: no such execution.

        The execution that leaves in-progress here gets its ``window.execution.succeeded`` or
        ``.failed`` event (timed out and cancelled are failed, as ``status`` says) in this transaction.
        """
        async with self._db.begin() as db:
            row = await db.get(WindowExecutionRow, execution_id, with_for_update=True)
            if row is None:
                return False
            joined = "; ".join(x for x in (row.reason, reason) if x)
            values: dict[str, Any] = {
                "status": status.value,
                "reason": joined,
                "finished_at": now,
                "lease_until": None,
            }
            # Conditional on the status read: where the row cannot be locked (SQLite serves one
            # controller) two finishes still cannot both move it out of in-progress.
            moved = await db.execute(
                update(WindowExecutionRow)
                .where(WindowExecutionRow.id == execution_id, WindowExecutionRow.status == row.status)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            transitioned = row.status == ExecutionStatus.IN_PROGRESS.value and status is not ExecutionStatus.IN_PROGRESS
            if transitioned and moved.rowcount == 1:  # type: ignore[attr-defined]  # CursorResult has rowcount
                counts = await db.execute(
                    select(WindowTaskExecutionRow.status, func.count())
                    .where(WindowTaskExecutionRow.execution_id == execution_id)
                    .group_by(WindowTaskExecutionRow.status)
                )
                data = _event_data(row.window, row.id, status.value, joined)
                data.update(
                    scheduled_at=row.scheduled_at.isoformat(),
                    task_counts={s: int(n) for s, n in sorted(counts.all())},
                )
                succeeded = status is ExecutionStatus.SUCCESS
                record_event(
                    db,
                    "fleetops.window.execution.succeeded" if succeeded else "fleetops.window.execution.failed",
                    subject=f"window/{row.window}",
                    data=data,
                )
        return True
