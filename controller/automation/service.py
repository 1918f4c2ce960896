"""Automation: runbook executions, started, advanced, approved and cancelled (docs/automation.md#runbooks).

Every replica runs :meth:`AutomationService.start`'s loop: it claims the active executions it
holds or whose holder's lease lapsed (``store.claim``) and advances each in an
:class:`~fleetops.controller.automation.runner.ExecutionRunner`. A new execution is held by the
replica that started it. Approvals and cancels are rows; the runner holding the execution is
poked at once when it is here, and polls otherwise.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, InvalidInput, PermissionDenied
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.authz.acting import Acting
from fleetops.controller.automation.context import Services
from fleetops.controller.automation.models import (
    LEASE_SECONDS,
    Execution,
    ExecutionStatus,
    new_execution_id,
)
from fleetops.controller.automation.runner import ExecutionRunner, approve_step, approvers_text, may_approve
from fleetops.controller.automation.store import AutomationStore
from fleetops.controller.commands.service import CommandService
from fleetops.controller.documents.models import DocumentInfo
from fleetops.controller.documents.service import DocumentService, parameters_shown
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.patching.service import PatchService

log = logging.getLogger(__name__)

#: How often the loop looks for executions to take over (another replica's lapsed lease).
CLAIM_SECONDS = 2.0
#: How often a watcher looks for a change.
WATCH_SECONDS = 0.5


class AutomationService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        fleet: FleetService,
        commands: CommandService,
        patching: PatchService,
        documents: DocumentService,
        acting: Acting,
        audit: AuditLog,
        replica: str,
    ) -> None:
        self.store = AutomationStore(db)
        self._services = Services(self.store, fleet, commands, patching, documents, acting, audit)
        self._documents = documents
        self.replica = replica
        self._runners: dict[str, tuple[ExecutionRunner, asyncio.Task[None]]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._poke = asyncio.Event()

    def start(self) -> None:
        """Resume the executions this replica may advance, and advance new ones."""
        self._loop = asyncio.create_task(self._claim_loop(), name="automation-claims")

    async def stop(self) -> None:
        """Stop advancing; another replica (or this one restarted) resumes each execution at its step."""
        tasks = [t for _, t in self._runners.values()]
        if self._loop is not None:
            tasks.append(self._loop)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runners.clear()

    async def _claim_loop(self) -> None:
        while True:
            try:
                for execution_id in await self.store.claim(self.replica, LEASE_SECONDS):
                    self._advance(execution_id)
            except Exception:  # the database may be away for a moment: look again later
                log.exception("could not claim automation executions")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), CLAIM_SECONDS)
            self._poke.clear()

    def _advance(self, execution_id: str) -> None:
        if execution_id in self._runners:
            return
        runner = ExecutionRunner(self._services, execution_id, self.replica)
        task = asyncio.create_task(self._run(runner), name=f"automation-{execution_id}")
        self._runners[execution_id] = (runner, task)

    async def _run(self, runner: ExecutionRunner) -> None:
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug or the database away: the lease lapses and the loop (here or elsewhere) resumes it.
            log.exception("automation %s stopped unexpectedly; it will be resumed", runner.execution_id)
        finally:
            self._runners.pop(runner.execution_id, None)

    def _wake(self, execution_id: str) -> None:
        held = self._runners.get(execution_id)
        if held is not None:
            held[0].wake.set()

    # -- operator calls ------------------------------------------------------------------------
    async def resolve_runbook(self, reference: str, given: Mapping[str, str]) -> tuple[DocumentInfo, dict[str, str]]:
        """The runbook version *reference* names and its parameters as text, checked.

        Raises:
            InvalidInput: not a runbook, or parameters it refuses. NotFound: no such document.
        """
        info, doc = await self._documents.resolve(reference)
        if doc.kind != "runbook":
            raise InvalidInput(
                f"document {info.name!r} is not a runbook (it has no steps)",
                f"run it with opsctl run --doc {info.name} --target SEL",
            )
        values = doc.resolve(dict(given))
        return info, parameters_shown(doc, values)

    async def start_execution(
        self,
        actor: str,
        info: DocumentInfo,
        parameters: dict[str, str],
        *,
        via: str = "cli",
        comment: str = "",
        execution_id: str = "",
    ) -> Execution:
        """Start *info* (a runbook version) as *actor*; each of its steps is authorized as *actor* when it runs.

        *execution_id* (``auto-…``) is the id when the caller chose one (and recorded it) beforehand.
        """
        _, doc = await self._documents.resolve(info.reference)
        execution = await self.store.create(
            execution_id or new_execution_id(),
            info.reference,
            parameters,
            doc.steps[0].name,
            actor,
            via,
            comment,
            self.replica,
            LEASE_SECONDS,
        )
        self._advance(execution.id)
        return execution

    # -- window tasks and associations (controller/windows/interfaces.py RunbookLauncher) ----------
    async def launch(
        self, author: str, runbook: str, parameters: dict[str, str], via: str, *, execution_id: str = ""
    ) -> str:
        info, shown = await self.resolve_runbook(runbook, parameters)
        return (await self.start_execution(author, info, shown, via=via, execution_id=execution_id)).id

    async def outcome(self, execution_id: str) -> tuple[bool, str, str]:
        execution = await self.store.get(execution_id, steps=False)
        return execution.status.final, execution.status.value, execution.reason

    async def cancel_if_running(self, execution_id: str) -> None:
        with contextlib.suppress(Conflict):
            await self.cancel(execution_id)

    async def get(self, execution_id: str) -> Execution:
        return await self.store.get(execution_id)

    async def list(self, limit: int) -> list[Execution]:
        return await self.store.list(max(1, min(limit, 1000)))

    async def cancel(self, execution_id: str) -> Execution:
        execution = await self.store.request_cancel(execution_id)
        self._wake(execution_id)
        self._poke.set()
        return execution

    async def approvers(self, execution: Execution) -> tuple[str, str]:
        """(who may answer the approval *execution* waits on, its message); empty when it waits on none."""
        _, doc = await self._documents.resolve(execution.runbook)
        waiting = approve_step(doc.steps, execution)
        if waiting is None:
            return "", ""
        seq, step = waiting
        message = next((s.state.get("message", "") for s in execution.steps if s.seq == seq), "")
        return approvers_text(step), str(message)

    async def decide(
        self, execution_id: str, operator: str, roles: builtins.list[str], approve: bool, comment: str
    ) -> tuple[Execution, str]:
        """*operator*'s answer to the approval the execution waits on; (the execution, the step).

        Raises:
            Conflict: it waits on no approval (any more), or *operator* answered already.
            PermissionDenied: *operator* is not one of the step's approvers.
        """
        execution = await self.store.get(execution_id)
        _, doc = await self._documents.resolve(execution.runbook)
        waiting = approve_step(doc.steps, execution) if execution.status is ExecutionStatus.WAITING_APPROVAL else None
        if waiting is None:
            raise Conflict(
                f"execution {execution_id} is waiting for no approval ({execution.status.value})",
                f"see opsctl automation show {execution_id}",
            )
        seq, step = waiting
        if not may_approve(step, operator, roles):
            raise PermissionDenied(
                f"{operator} may not answer the approval of {execution_id} step {execution.steps[-1].name}",
                f"the step's approvers are {approvers_text(step) or 'nobody'}",
            )
        if len(comment) > 1024:
            raise InvalidInput("the comment is longer than 1024 characters", "keep it to a sentence")
        await self.store.add_approval(execution_id, seq, operator, approve, comment)
        self._wake(execution_id)
        return await self.store.get(execution_id), execution.steps[-1].name

    async def watch(self, execution_id: str) -> AsyncIterator[Execution]:
        """The execution now, then again at each change, until it has ended."""
        last = None
        while True:
            execution = await self.store.get(execution_id)
            if execution.updated_at != last:
                last = execution.updated_at
                yield execution
            if execution.status.final:
                return
            await asyncio.sleep(WATCH_SECONDS)
