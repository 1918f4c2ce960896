"""One execution of a runbook, advanced step by step from what its rows say.

The loop: read the execution; a cancel ends it (the running step stops what it started); a step
row that has not ended is resumed where its state says; otherwise the step named ``current_step``
starts as a new row. When a step ends, its row, its outputs and the name of the next step are
written in one transaction (``store.end_step``), so a controller killed at any moment resumes at
the same step and never runs a finished step again. A runbook that loops (``goto``) ends failed
after ``MAX_STEP_RUNS`` steps.

``wait`` sleeps until its deadline (saved when it starts), or until every host its target matches
is online; ``approve`` waits for its approvers (any denial fails it; ``min_approvals`` approvals
pass it; the timeout fails it); ``branch`` goes where its first true case says.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fleetops.common.errors import FleetopsError, NotFound
from fleetops.common.runbooks import ABORT, END, ApproveStep, BranchStep, RunStep, Step, WaitStep
from fleetops.controller.automation import run_step
from fleetops.controller.automation.context import Cancelled, LeaseLost, Services, StepContext, StepResult
from fleetops.controller.automation.models import (
    LEASE_SECONDS,
    MAX_STEP_RUNS,
    Execution,
    ExecutionStatus,
    StepStatus,
)
from fleetops.controller.automation.plan import branch_target, index_of, next_step, render
from fleetops.controller.fleet.models import HostStatus, Target

log = logging.getLogger(__name__)


def template_context(parameters: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {"params": dict(parameters), "steps": dict(outputs)}


class ExecutionRunner:
    def __init__(self, services: Services, execution_id: str, owner: str) -> None:
        self.services = services
        self.execution_id = execution_id
        self.owner = owner
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Advance the execution until it ends, or this replica loses it."""
        store = self.services.store
        while True:
            if not await store.renew(self.execution_id, self.owner, LEASE_SECONDS):
                log.info("automation %s is held by another replica now", self.execution_id)
                return
            execution = await store.get(self.execution_id)
            if execution.status.final:
                return
            try:
                info, runbook = await self.services.documents.resolve(execution.runbook)
                steps = runbook.steps
                values = runbook.resolve(execution.parameters)
            except FleetopsError as exc:
                await store.finish(self.execution_id, ExecutionStatus.FAILED, f"the runbook: {exc.message}")
                return
            last = execution.steps[-1] if execution.steps else None
            if execution.cancel_requested and (last is None or last.status.final):
                await store.finish(self.execution_id, ExecutionStatus.CANCELLED, "cancelled")
                return
            if last is None or last.status.final:
                if not execution.current_step:
                    await store.finish(self.execution_id, ExecutionStatus.SUCCESS, "")
                    return
                if execution.steps_run >= MAX_STEP_RUNS:
                    reason = f"the runbook ran {MAX_STEP_RUNS} steps without ending: a goto loop?"
                    await store.finish(self.execution_id, ExecutionStatus.FAILED, reason)
                    return
                step = steps[index_of(steps, execution.current_step)]
                await store.start_step(self.execution_id, execution.steps_run, step.name, step.kind, {})
                continue
            index = index_of(steps, last.name)
            step = steps[index]
            context = template_context(values, execution.outputs)
            ctx = StepContext(self.services, execution, last, context, self.wake, self.owner)
            try:
                result = await self._step(ctx, step)
            except LeaseLost:
                log.info("automation %s was taken over by another replica", self.execution_id)
                return
            except Cancelled:
                await store.end_step(self.execution_id, last.seq, StepStatus.CANCELLED, "cancelled", {}, "")
                await store.finish(self.execution_id, ExecutionStatus.CANCELLED, f"cancelled in step {last.name}")
                return
            except FleetopsError as exc:
                result = StepResult(StepStatus.FAILED, exc.message, {"status": "failed"})
            outputs = dict(result.outputs)
            outcome: Literal["success", "failed"] = "success" if result.status is StepStatus.SUCCESS else "failed"
            target = None
            if outcome == "success" and isinstance(step.action, BranchStep):
                try:
                    target = branch_target(step, ctx.template_context)
                except FleetopsError as exc:
                    result, outcome = StepResult(StepStatus.FAILED, exc.message, {"status": "failed"}), "failed"
                    outputs = dict(result.outputs)
            following = target or next_step(steps, index, outcome)
            ending = following in (END, ABORT)
            if not await store.renew(self.execution_id, self.owner, LEASE_SECONDS):
                return  # taken over meanwhile: the new holder ends the step
            await store.end_step(
                self.execution_id, last.seq, result.status, result.detail, outputs, "" if ending else following
            )
            if following == END:
                await store.finish(self.execution_id, ExecutionStatus.SUCCESS, "")
                return
            if following == ABORT:
                if outcome == "failed":
                    reason = f"step {step.name} failed: {result.detail}"
                else:  # a step (a rollback) that ends the execution failed after a failure it handled
                    earlier = [s for s in execution.steps if s.status is StepStatus.FAILED]
                    reason = f"{step.name} ended it (next: abort)"
                    if earlier:
                        reason = f"step {earlier[-1].name} failed: {earlier[-1].detail}; {reason}"
                await store.finish(self.execution_id, ExecutionStatus.FAILED, reason)
                return

    async def _step(self, ctx: StepContext, step: Step) -> StepResult:
        action = step.action
        if isinstance(action, RunStep):
            return await run_step.run(ctx, action)
        if isinstance(action, WaitStep):
            return await _wait(ctx, action)
        if isinstance(action, ApproveStep):
            return await _approve(ctx, action)
        assert isinstance(action, BranchStep)
        return StepResult(StepStatus.SUCCESS, "", {"status": "success"})


def _deadline(ctx: StepContext, seconds: int) -> datetime:
    """The step's deadline, fixed (and saved) the first time it is asked for."""
    if "deadline" not in ctx.state:
        ctx.state["deadline"] = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
    return datetime.fromisoformat(ctx.state["deadline"])


async def _wait(ctx: StepContext, step: WaitStep) -> StepResult:
    if step.until:
        deadline = _deadline(ctx, step.timeout_seconds or 0)
        selector = render(step.target, ctx.template_context)
        await ctx.save(detail=f"waiting until every host of {selector!r} is online", deadline=deadline)
        while True:
            hosts = await ctx.services.fleet.resolve_target(Target(selector=selector))
            offline = [h.name for h in hosts if h.status is not HostStatus.ONLINE]
            if hosts and not offline:
                return StepResult(StepStatus.SUCCESS, f"{len(hosts)} host(s) online", {"status": "success"})
            left = (deadline - datetime.now(UTC)).total_seconds()
            if left <= 0:
                why = f"still offline: {', '.join(offline[:20])}" if offline else f"no host matches {selector!r}"
                return StepResult(StepStatus.FAILED, f"timed out; {why}", {"status": "failed"})
            await ctx.pause(left)
    deadline = _deadline(ctx, step.duration_seconds or 0)
    await ctx.save(detail=f"waiting until {deadline.isoformat(timespec='seconds')}", deadline=deadline)
    while (left := (deadline - datetime.now(UTC)).total_seconds()) > 0:
        await ctx.pause(left)
    return StepResult(StepStatus.SUCCESS, "waited", {"status": "success"})


def may_approve(step: ApproveStep, operator: str, roles: list[str]) -> bool:
    """Whether *operator* (holding the roles named *roles*) is one of *step*'s approvers."""
    return operator in step.approvers or bool(step.role and step.role in roles)


def approvers_text(step: ApproveStep) -> str:
    who = list(step.approvers) + ([f"anyone with role {step.role}"] if step.role else [])
    return ", ".join(who)


async def _approve(ctx: StepContext, step: ApproveStep) -> StepResult:
    deadline = _deadline(ctx, step.timeout_seconds)
    if "message" not in ctx.state:
        ctx.state["message"] = render(step.message, ctx.template_context) if step.message else ""
    needed = step.min_approvals
    await ctx.save(
        detail=f"waiting for {needed} approval(s) from {approvers_text(step)}",
        status=StepStatus.WAITING,
        deadline=deadline,
        execution_status=ExecutionStatus.WAITING_APPROVAL,
        approval={
            "approvers": list(step.approvers),
            "role": step.role,
            "min_approvals": needed,
            "deadline": deadline.isoformat(),
        },
    )
    await ctx.audit("automation.approval.wait", "ok", {"approvers": list(step.approvers), "role": step.role})
    while True:
        answers = await ctx.services.store.approvals(ctx.execution.id, ctx.record.seq)
        denied = [a for a in answers if not a.approved]
        if denied:
            why = f": {denied[0].comment}" if denied[0].comment else ""
            detail = f"denied by {denied[0].operator}{why}"
            return StepResult(StepStatus.FAILED, detail, {"status": "failed", "approved_by": ""})
        approved = [a.operator for a in answers if a.approved]
        if len(approved) >= needed:
            by = ",".join(approved)
            return StepResult(StepStatus.SUCCESS, f"approved by {by}", {"status": "success", "approved_by": by})
        left = (deadline - datetime.now(UTC)).total_seconds()
        if left <= 0:
            detail = f"no approval in time ({len(approved)} of {needed})"
            return StepResult(StepStatus.FAILED, detail, {"status": "failed", "approved_by": ",".join(approved)})
        await ctx.pause(left)


def approve_step(steps: tuple[Step, ...], execution: Execution) -> tuple[int, ApproveStep] | None:
    """The approve step *execution* waits on now (its seq and definition), if it waits on one."""
    last = execution.steps[-1] if execution.steps else None
    if last is None or last.status is not StepStatus.WAITING or last.kind != "approve":
        return None
    try:
        step = steps[index_of(steps, last.name)]
    except (NotFound, ValueError):
        return None
    return (last.seq, step.action) if isinstance(step.action, ApproveStep) else None
