"""Runbook executions in the database: executions, their steps, approvals, and who advances each.

A replica advances an execution while it holds its lease (``owner``, ``lease_until``); another
claims it once the lease lapses. Each transition is one transaction: a step starts (its row, and
``steps_run`` moves on), a step's state changes (before the command it names is sent), a step
ends (its row final, its outputs kept, and the next step named as ``current_step``). A controller
restarted at any point reads where each execution is from these rows alone.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, NotFound
from fleetops.controller.automation.models import (
    Approval,
    Execution,
    ExecutionStatus,
    StepRecord,
    StepStatus,
)
from fleetops.controller.events.outbox import record_event
from fleetops.controller.store.models import AutomationApprovalRow, AutomationExecutionRow, AutomationStepRow

ACTIVE = (ExecutionStatus.IN_PROGRESS.value, ExecutionStatus.WAITING_APPROVAL.value)


def _step(row: AutomationStepRow) -> StepRecord:
    return StepRecord(
        execution_id=row.execution_id,
        seq=row.seq,
        name=row.name,
        kind=row.kind,
        status=StepStatus(row.status),
        detail=row.detail,
        state=dict(row.state or {}),
        outputs=dict(row.outputs or {}),
        started_at=row.started_at,
        finished_at=row.finished_at,
        deadline=row.deadline,
    )


def _execution(row: AutomationExecutionRow, steps: tuple[StepRecord, ...] = ()) -> Execution:
    return Execution(
        id=row.id,
        runbook=row.runbook,
        parameters=dict(row.parameters or {}),
        status=ExecutionStatus(row.status),
        reason=row.reason,
        current_step=row.current_step,
        steps_run=row.steps_run,
        outputs=dict(row.outputs or {}),
        started_by=row.started_by,
        started_via=row.started_via,
        comment=row.comment,
        cancel_requested=row.cancel_requested,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        owner=row.owner,
        lease_until=row.lease_until,
        steps=steps,
    )


class AutomationStore:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def create(
        self,
        execution_id: str,
        runbook: str,
        parameters: dict[str, str],
        first_step: str,
        started_by: str,
        started_via: str,
        comment: str,
        owner: str,
        lease: float,
    ) -> Execution:
        now = datetime.now(UTC)
        async with self._db.begin() as db:
            db.add(
                AutomationExecutionRow(
                    id=execution_id,
                    runbook=runbook,
                    parameters=parameters,
                    status=ExecutionStatus.IN_PROGRESS.value,
                    reason="",
                    current_step=first_step,
                    steps_run=0,
                    outputs={},
                    started_by=started_by,
                    started_via=started_via,
                    comment=comment,
                    cancel_requested=False,
                    created_at=now,
                    updated_at=now,
                    owner=owner,
                    lease_until=now + timedelta(seconds=lease),
                )
            )
        return await self.get(execution_id)

    async def get(self, execution_id: str, *, steps: bool = True) -> Execution:
        async with self._db() as db:
            row = await db.get(AutomationExecutionRow, execution_id)
            if row is None:
                raise NotFound(f"no automation execution {execution_id!r}", "list them with opsctl automation list")
            records: tuple[StepRecord, ...] = ()
            if steps:
                rows = await db.scalars(
                    select(AutomationStepRow)
                    .where(AutomationStepRow.execution_id == execution_id)
                    .order_by(AutomationStepRow.seq)
                )
                records = tuple(_step(r) for r in rows)
        return _execution(row, records)

    async def list(self, limit: int) -> builtins.list[Execution]:
        async with self._db() as db:
            rows = (
                await db.scalars(
                    select(AutomationExecutionRow).order_by(AutomationExecutionRow.created_at.desc()).limit(limit)
                )
            ).all()
        return [_execution(r) for r in rows]

    async def claim(self, owner: str, lease: float) -> builtins.list[str]:
        """Take the active executions this replica holds or whose lease lapsed; their ids."""
        now = datetime.now(UTC)
        async with self._db.begin() as db:
            ids = (
                await db.scalars(
                    select(AutomationExecutionRow.id).where(
                        AutomationExecutionRow.status.in_(ACTIVE),
                        or_(
                            AutomationExecutionRow.owner == owner,
                            AutomationExecutionRow.lease_until.is_(None),
                            AutomationExecutionRow.lease_until < now,
                        ),
                    )
                )
            ).all()
            claimed = []
            for execution_id in ids:
                result = await db.execute(
                    update(AutomationExecutionRow)
                    .where(
                        AutomationExecutionRow.id == execution_id,
                        AutomationExecutionRow.status.in_(ACTIVE),
                        or_(
                            AutomationExecutionRow.owner == owner,
                            AutomationExecutionRow.lease_until.is_(None),
                            AutomationExecutionRow.lease_until < now,
                        ),
                    )
                    .values(owner=owner, lease_until=now + timedelta(seconds=lease))
                )
                if getattr(result, "rowcount", 0) == 1:
                    claimed.append(execution_id)
        return claimed

    async def renew(self, execution_id: str, owner: str, lease: float) -> bool:
        """Extend this replica's hold; False when another replica holds the execution now."""
        now = datetime.now(UTC)
        async with self._db.begin() as db:
            result = await db.execute(
                update(AutomationExecutionRow)
                .where(AutomationExecutionRow.id == execution_id, AutomationExecutionRow.owner == owner)
                .values(lease_until=now + timedelta(seconds=lease))
            )
        return getattr(result, "rowcount", 0) == 1

    async def start_step(self, execution_id: str, seq: int, name: str, kind: str, state: dict[str, Any]) -> None:
        """A new step row at *seq*, and ``steps_run`` past it, in one transaction."""
        now = datetime.now(UTC)
        async with self._db.begin() as db:
            execution = await db.get(AutomationExecutionRow, execution_id, with_for_update=True)
            assert execution is not None
            if execution.steps_run != seq:
                raise Conflict(f"execution {execution_id} is at step {execution.steps_run}, not {seq}")
            db.add(
                AutomationStepRow(
                    execution_id=execution_id,
                    seq=seq,
                    name=name,
                    kind=kind,
                    status=StepStatus.IN_PROGRESS.value,
                    detail="",
                    state=state,
                    outputs={},
                    started_at=now,
                )
            )
            execution.steps_run = seq + 1
            execution.current_step = name
            execution.updated_at = now

    async def save_step(
        self,
        execution_id: str,
        seq: int,
        *,
        state: dict[str, Any] | None = None,
        detail: str | None = None,
        status: StepStatus | None = None,
        deadline: datetime | None = None,
        execution_status: ExecutionStatus | None = None,
        approval: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep a step's progress; with ``execution_status`` the execution's status too.

        The execution that starts waiting for an approval here gets its
        ``automation.approval_waiting`` event (``approval``: who may approve, how many) in this
        transaction; one already waiting (a step resumed on another replica) gets none.
        """
        now = datetime.now(UTC)
        async with self._db.begin() as db:
            if execution_status is ExecutionStatus.WAITING_APPROVAL:
                moved = await db.execute(
                    update(AutomationExecutionRow)
                    .where(
                        AutomationExecutionRow.id == execution_id,
                        AutomationExecutionRow.status != ExecutionStatus.WAITING_APPROVAL.value,
                    )
                    .values(status=execution_status.value)
                    .returning(AutomationExecutionRow.runbook)
                )
                runbook = moved.scalar()
                if runbook is not None:
                    step = await db.get(AutomationStepRow, (execution_id, seq))
                    record_event(
                        db,
                        "fleetops.automation.approval_waiting",
                        subject=f"automation/{execution_id}",
                        data={
                            "execution_id": execution_id,
                            "runbook": runbook,
                            "step": step.name if step is not None else "",
                            "seq": seq,
                            **dict(approval or {}),
                        },
                    )
            row = await db.get(AutomationStepRow, (execution_id, seq))
            assert row is not None
            if state is not None:
                row.state = state
            if detail is not None:
                row.detail = detail
            if status is not None:
                row.status = status.value
            if deadline is not None:
                row.deadline = deadline
            execution = await db.get(AutomationExecutionRow, execution_id)
            assert execution is not None
            if execution_status is not None:
                execution.status = execution_status.value
            execution.updated_at = now  # watchers see a step's progress as a change

    async def end_step(
        self,
        execution_id: str,
        seq: int,
        status: StepStatus,
        detail: str,
        outputs: dict[str, Any],
        next_step: str,
    ) -> None:
        """End step *seq* and name the next one (``""`` when the execution ends), in one transaction."""
        now = datetime.now(UTC)
        async with self._db.begin() as db:
            row = await db.get(AutomationStepRow, (execution_id, seq))
            execution = await db.get(AutomationExecutionRow, execution_id, with_for_update=True)
            assert row is not None and execution is not None
            row.status, row.detail, row.outputs, row.finished_at = status.value, detail, outputs, now
            execution.outputs = {**(execution.outputs or {}), row.name: outputs}
            execution.current_step = next_step
            if execution.status == ExecutionStatus.WAITING_APPROVAL.value:
                execution.status = ExecutionStatus.IN_PROGRESS.value
            execution.updated_at = now

    async def finish(self, execution_id: str, status: ExecutionStatus, reason: str) -> None:
        now = datetime.now(UTC)
        async with self._db.begin() as db:
            execution = await db.get(AutomationExecutionRow, execution_id)
            assert execution is not None
            execution.status, execution.reason = status.value, reason
            execution.finished_at = execution.updated_at = now
            execution.lease_until = None

    async def request_cancel(self, execution_id: str) -> Execution:
        async with self._db.begin() as db:
            execution = await db.get(AutomationExecutionRow, execution_id)
            if execution is None:
                raise NotFound(f"no automation execution {execution_id!r}", "list them with opsctl automation list")
            if execution.status not in ACTIVE:
                raise Conflict(f"execution {execution_id} has ended ({execution.status})", "nothing to cancel")
            execution.cancel_requested = True
            execution.updated_at = datetime.now(UTC)
        return await self.get(execution_id)

    async def add_approval(self, execution_id: str, seq: int, operator: str, approved: bool, comment: str) -> None:
        async with self._db.begin() as db:
            if await db.get(AutomationApprovalRow, (execution_id, seq, operator)) is not None:
                raise Conflict(f"{operator} has already answered this approval", "each approver answers once")
            db.add(
                AutomationApprovalRow(
                    execution_id=execution_id,
                    seq=seq,
                    operator=operator,
                    approved=approved,
                    comment=comment,
                    at=datetime.now(UTC),
                )
            )
            execution = await db.get(AutomationExecutionRow, execution_id)
            assert execution is not None
            execution.updated_at = datetime.now(UTC)

    async def approvals(self, execution_id: str, seq: int) -> builtins.list[Approval]:
        async with self._db() as db:
            rows = await db.scalars(
                select(AutomationApprovalRow)
                .where(AutomationApprovalRow.execution_id == execution_id, AutomationApprovalRow.seq == seq)
                .order_by(AutomationApprovalRow.at)
            )
            return [Approval(r.operator, r.approved, r.comment, r.at) for r in rows]
