"""OperatorService calls for automation (controller/automation): runbook executions.

Starting or cancelling a runbook needs ``document.run`` for it (or ``command.run`` somewhere),
decided "on some host": each step is decided again as the starter, on its hosts, when it runs.
Answering an approval is decided by the step itself (its approvers and role), and audited.
"""

from __future__ import annotations

from typing import Any

from fleetops.controller.authz.documents import Choice, runbook_choices
from fleetops.controller.automation.models import Execution
from fleetops.controller.rpc import convert
from fleetops.controller.rpc.operator.base import OperatorAdapter, operator_call, operator_stream
from fleetops.controller.rpc.peer import Peer
from fleetops.v1 import operator_pb2


def execution_to_proto(e: Execution, approvers: str = "", message: str = "") -> operator_pb2.AutomationExecution:
    return operator_pb2.AutomationExecution(
        id=e.id,
        runbook=e.runbook,
        parameters=e.parameters,
        status=e.status.value,
        current_step=e.current_step,
        started_by=e.started_by,
        started_via=e.started_via,
        created_at=convert.timestamp(e.created_at),
        finished_at=convert.timestamp(e.finished_at),
        reason=e.reason,
        approvers=[a.strip() for a in approvers.split(",") if a.strip()],
        approval_message=message,
        steps=[
            operator_pb2.AutomationStep(
                name=s.name,
                kind=s.kind,
                status=s.status.value,
                started_at=convert.timestamp(s.started_at),
                finished_at=convert.timestamp(s.finished_at),
                outputs={k: str(v) for k, v in s.outputs.items()},
                command_ids=_commands_of(s.state),
                detail=s.detail,
                attempt=1 + sum(1 for t in e.steps if t.name == s.name and t.seq < s.seq),
            )
            for s in e.steps
        ],
    )


def _commands_of(state: dict[str, Any]) -> list[str]:
    """A run step's commands so far: each batch's and probe's, and the one running now."""
    ids = [*state.get("commands", []), *state.get("probes", [])]
    return ids + [state[k] for k in ("pending", "pending_probe") if state.get(k) and state[k] not in ids]


def _choices(runbook: str) -> list[Choice]:
    return runbook_choices(runbook.partition(":")[0])


class AutomationCalls(OperatorAdapter):
    """Runbook executions: start, list, show, watch, cancel, approve or deny."""

    async def _shown(self, execution: Execution) -> operator_pb2.AutomationExecution:
        approvers, message = await self._automation.approvers(execution)
        return execution_to_proto(execution, approvers, message)

    @operator_call("automation.start")
    async def StartAutomation(self, request: operator_pb2.StartAutomationRequest, peer: Peer) -> tuple[Any, str]:
        info, parameters = await self._automation.resolve_runbook(request.runbook, dict(request.parameters))
        peer.access.details.update(runbook=info.reference, parameters=sorted(parameters))
        peer.access.require_one_of((), _choices(info.reference))
        execution = await self._automation.start_execution(peer.actor, info, parameters, comment=request.comment)
        return await self._shown(execution), execution.id

    @operator_call("automation.cancel")
    async def CancelAutomation(self, request: operator_pb2.GetAutomationRequest, peer: Peer) -> tuple[Any, str]:
        execution = await self._automation.get(request.id)
        peer.access.require_one_of((), _choices(execution.runbook))
        execution = await self._automation.cancel(request.id)
        return await self._shown(execution), execution.id

    @operator_call("automation.approve")
    async def DecideAutomationApproval(
        self, request: operator_pb2.AutomationApprovalRequest, peer: Peer
    ) -> tuple[Any, str]:
        user = peer.access.user
        peer.access.details.update(approve=request.approve)
        execution, step = await self._automation.decide(
            request.id, user.name, list(user.roles), request.approve, request.comment
        )
        peer.access.details["step"] = step
        return await self._shown(execution), execution.id

    @operator_call("automation.list")
    async def ListAutomations(self, request: operator_pb2.ListAutomationsRequest, peer: Peer) -> tuple[Any, str]:
        executions = await self._automation.list(request.limit or 50)
        return operator_pb2.ListAutomationsResponse(executions=[execution_to_proto(e) for e in executions]), ""

    @operator_call("automation.show")
    async def GetAutomation(self, request: operator_pb2.GetAutomationRequest, peer: Peer) -> tuple[Any, str]:
        execution = await self._automation.get(request.id)
        return await self._shown(execution), execution.id

    @operator_stream("automation.watch")
    async def WatchAutomation(self, request: operator_pb2.GetAutomationRequest, peer: Peer) -> Any:
        async for execution in self._automation.watch(request.id):
            yield await self._shown(execution)
