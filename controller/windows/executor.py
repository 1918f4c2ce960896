"""One execution of a maintenance window: its tasks, in priority order, until the cutoff.

Tasks start in priority order (lower first; equal priorities together, the next group when the
previous one has finished); no task starts after end minus cutoff; at the cutoff, ``cancel``
cancels running commands (their tasks end timed_out) while ``continue`` lets them finish. An
execution taken over from a replica that died carries on from what its rows say (commands already
created are watched, never created twice).

Each task acts for its author and is authorized as them each time it starts, on the hosts its
target resolves to then (``windows.authority``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fleetops.common.errors import FleetopsError, InvalidInput, PermissionDenied
from fleetops.common.states import CommandStatus
from fleetops.controller.commands.models import CommandSpec
from fleetops.controller.commands.service import CommandService
from fleetops.controller.documents.runs import RunOptions, start_document_run
from fleetops.controller.documents.service import DocumentService
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.patching.service import PatchOptions, PatchService
from fleetops.controller.windows.authority import Grant, RunContext, TaskAuthority
from fleetops.controller.windows.interfaces import EXECUTION_PREFIX, RunbookLauncher
from fleetops.controller.windows.models import (
    LEASE_SECONDS,
    CutoffBehavior,
    ExecutionRun,
    ExecutionStatus,
    TaskRun,
    TaskStatus,
    TaskType,
    WindowTask,
)
from fleetops.controller.windows.store import WindowStore

log = logging.getLogger(__name__)

#: How often a running execution re-reads its commands (their progress also wakes it).
POLL_SECONDS = 1.0
COMMAND_TO_TASK = {
    CommandStatus.SUCCESS: TaskStatus.SUCCESS,
    CommandStatus.FAILED: TaskStatus.FAILED,
    CommandStatus.CANCELLED: TaskStatus.CANCELLED,
}

Clock = Callable[[], datetime]


def refused_text(hosts: list[str], author: str) -> str:
    """``2 hosts refused (outside operator:alice's rights): db-1, db-2``, at most 20 names."""
    names = ", ".join(hosts[:20]) + (f" and {len(hosts) - 20} more" if len(hosts) > 20 else "")
    plural = "host" if len(hosts) == 1 else "hosts"
    return f"{len(hosts)} {plural} refused (outside {author}'s rights): {names}"


class WindowExecutor:
    """Runs claimed executions to their end on this replica, holding each one's lease meanwhile."""

    def __init__(
        self,
        store: WindowStore,
        commands: CommandService,
        patching: PatchService,
        authority: TaskAuthority,
        replica: str,
        clock: Clock,
    ) -> None:
        self._store = store
        self._commands = commands
        self._patching = patching
        self._authority = authority
        self._replica = replica
        self._clock = clock
        #: Set by the composition root: documents for document tasks, runbooks for automation tasks.
        self.documents: DocumentService | None = None
        self.runbooks: RunbookLauncher | None = None

    async def execute(self, execution_id: str) -> None:
        """Run the execution's tasks and record how it ended (failed, on an internal error)."""
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
            await self._store.renew([execution_id], self._replica, self._clock() + timedelta(seconds=LEASE_SECONDS))

    async def _run_tasks(self, execution_id: str) -> None:
        execution, tasks = await self._store.execution_run(execution_id)
        existing = await self._store.task_runs(execution_id)
        if not existing:
            # The task list is fixed when the window opens (later edits apply to later occurrences).
            await self._store.add_task_runs(execution_id, tasks.values())
            existing = await self._store.task_runs(execution_id)
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

    async def _start_task(self, execution: ExecutionRun, row: TaskRun, task: WindowTask | None) -> None:
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
            grant.check(task.action, task.login, hosts)

        actor = f"{task.author} via {run.via}"
        comment = f"window {run.window} task {task.id} for {task.author}"
        limits = self._limits(task)
        if grant.refused:
            limits["max_errors"] = grant.max_errors
        if task.type == TaskType.AUTOMATION:
            if self.runbooks is None:
                raise InvalidInput("this controller cannot start runbooks", "this is a controller bug")
            return await self.runbooks.launch(task.author, task.document, dict(task.parameters), run.via)
        if task.type == TaskType.DOCUMENT:
            if self.documents is None:
                raise InvalidInput("this controller cannot run documents", "this is a controller bug")
            info, doc = await self.documents.resolve(task.document)
            values = doc.resolve(dict(task.parameters))  # InvalidInput when the document changed under it
            run_options = RunOptions(run_as=task.run_as, comment=comment, **limits)
            command, _ = await start_document_run(
                self._commands,
                self._patching,
                actor,
                target,
                info,
                doc,
                values,
                run_options,
                authorize=lambda hosts, action, login: recheck(hosts),
            )
            return command.id
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

    async def _wait_group(self, execution: ExecutionRun, group: list[TaskRun]) -> bool:
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
                        if row.command_id.startswith(EXECUTION_PREFIX) and self.runbooks is not None:
                            await self.runbooks.cancel_if_running(row.command_id)
                        else:
                            await self._commands.cancel(row.command_id)
                log.info("window execution %s: cutoff reached, cancelled %d running tasks", execution.id, len(running))
            for row in running:
                if row.command_id.startswith(EXECUTION_PREFIX):
                    await self._runbook_ended(row, cancelled_at_cutoff)
                    continue
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

    async def _runbook_ended(self, row: TaskRun, cancelled_at_cutoff: bool) -> None:
        """An automation task ends with its execution (its id is kept as the task's command id)."""
        assert self.runbooks is not None
        ended, status, reason = await self.runbooks.outcome(row.command_id)
        if not ended:
            return
        task_status = {"success": TaskStatus.SUCCESS, "cancelled": TaskStatus.CANCELLED}.get(status, TaskStatus.FAILED)
        if cancelled_at_cutoff and task_status == TaskStatus.CANCELLED:
            task_status, reason = TaskStatus.TIMED_OUT, "cancelled at the window's cutoff"
        await self._set_task(row, task_status, reason=reason)

    async def _changes(self, command_ids: list[str], cutoff: datetime) -> None:
        command_ids = [c for c in command_ids if not c.startswith(EXECUTION_PREFIX)]
        if not command_ids:  # runbooks only: they are looked at again after a pause
            await asyncio.sleep(max(0.01, min(POLL_SECONDS, (cutoff - self._clock()).total_seconds() or POLL_SECONDS)))
            return
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
        row: TaskRun,
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
        await self._store.set_task_run(row.id, values)
        for key, value in values.items():
            setattr(row, key, value)

    async def _finish(self, execution_id: str, status: ExecutionStatus, reason: str) -> None:
        if await self._store.finish(execution_id, status, reason, self._clock()):
            log.info("window execution %s ended: %s %s", execution_id, status.value, reason)
