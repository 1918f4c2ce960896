"""What a step of an execution works with: the services, its execution, and a way to wait.

:class:`StepContext` is handed to each step kind (``run_step.py``, ``runner.py``). A step saves
where it is with :meth:`StepContext.save` *before* acting on it (a command id is recorded before
the command is created), waits with :meth:`StepContext.pause`, which wakes early when the
execution is poked (an approval, a cancel) and raises :class:`Cancelled` once a cancel is asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fleetops.controller.audit.models import Outcome
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.authz.acting import Acting
from fleetops.controller.automation.models import LEASE_SECONDS, Execution, ExecutionStatus, StepRecord, StepStatus
from fleetops.controller.automation.store import AutomationStore
from fleetops.controller.commands.service import CommandService
from fleetops.controller.documents.service import DocumentService
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.patching.service import PatchService

#: Longest a waiting step sleeps before it looks again (another replica's approval, a cancel).
POLL_SECONDS = 1.0


class Cancelled(Exception):
    """The execution was asked to stop; the step stops what it started."""


class LeaseLost(Exception):
    """Another replica holds the execution now: this one stops without writing anything more."""


@dataclass
class Services:
    store: AutomationStore
    fleet: FleetService
    commands: CommandService
    patching: PatchService
    documents: DocumentService
    acting: Acting
    audit: AuditLog


@dataclass(frozen=True)
class StepResult:
    """How a step ended: ``success`` or ``failed``, why, and its outputs."""

    status: StepStatus
    detail: str
    outputs: Mapping[str, Any]


class StepContext:
    def __init__(
        self,
        services: Services,
        execution: Execution,
        record: StepRecord,
        template_context: Mapping[str, Any],
        wake: asyncio.Event,
        owner: str,
    ) -> None:
        self.services = services
        self.execution = execution
        self.record = record
        self.state: dict[str, Any] = dict(record.state)
        self.template_context = template_context
        self._wake = wake
        self.owner = owner
        self._renewed = time.monotonic()

    @property
    def actor(self) -> str:
        """Who the step's commands are made by: the starter, via this execution."""
        return f"{self.execution.started_by} via automation:{self.execution.id}"

    async def save(
        self,
        *,
        detail: str | None = None,
        status: StepStatus | None = None,
        deadline: datetime | None = None,
        execution_status: ExecutionStatus | None = None,
        approval: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep ``self.state`` (and the rest given) in the step's row (``approval``: see
        :meth:`AutomationStore.save_step`)."""
        await self.services.store.save_step(
            self.execution.id,
            self.record.seq,
            state=self.state,
            detail=detail,
            status=status,
            deadline=deadline,
            execution_status=execution_status,
            approval=approval,
        )

    async def pause(self, seconds: float) -> None:
        """Wait up to *seconds* (at most ``POLL_SECONDS``), less when poked.

        Raises:
            Cancelled: a cancel of the execution was asked.
        """
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, min(seconds, POLL_SECONDS)))
        except TimeoutError:
            pass
        self._wake.clear()
        await self.keep_lease()
        await self.check_cancel()

    async def keep_lease(self) -> None:
        """Renew this replica's hold on the execution while a step runs (a third of a lease apart).

        Raises:
            LeaseLost: another replica holds it now.
        """
        if time.monotonic() - self._renewed < LEASE_SECONDS / 3:
            return
        if not await self.services.store.renew(self.execution.id, self.owner, LEASE_SECONDS):
            raise LeaseLost()
        self._renewed = time.monotonic()

    async def check_cancel(self) -> None:
        current = await self.services.store.get(self.execution.id, steps=False)
        if current.cancel_requested:
            raise Cancelled()

    async def audit(self, action: str, outcome: Outcome, details: dict[str, Any]) -> None:
        """An audit event of this step, with the starter as actor (``via automation:ID``)."""
        await self.services.audit.record(
            actor=self.execution.started_by,
            action=action,
            target=f"{self.execution.id}/{self.record.name}",
            outcome=outcome,
            details={"via": f"automation:{self.execution.id}", "step": self.record.name, **details},
        )
