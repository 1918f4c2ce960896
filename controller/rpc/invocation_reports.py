"""What hosts report about their invocations: taken here, or passed to the replica running the command.

A host reports to whichever replica holds its control stream; the command's fan-out may run on
another one (its owner, commands.owner_replica). The owner gets the report over the peer service
as if the host had sent it there; a result is acknowledged to the host only once the owner says
it is durable, so a report lost with a replica is sent again by the agent (docs/architecture.md
"Replicas").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from fleetops.common.errors import FleetopsError, InternalError, InvalidInput, Unavailable
from fleetops.common.states import InvocationState
from fleetops.controller.commands.models import InvocationReport
from fleetops.controller.commands.service import CommandService
from fleetops.controller.rpc import convert, patch_report
from fleetops.v1 import agent_pb2

log = logging.getLogger(__name__)

#: The AgentMessage bodies about an invocation.
INVOCATION_MESSAGES = frozenset({"invocation_update", "output", "result"})


class ReportRelay(Protocol):
    """Passes a host's report to another replica (rpc/peer_client.py)."""

    async def report(self, replica_id: str, host_id: str, message: agent_pb2.AgentMessage) -> bool: ...


def invocation_id_of(message: agent_pb2.AgentMessage) -> str:
    kind = message.WhichOneof("body")
    if kind == "invocation_update":
        return message.invocation_update.invocation_id
    if kind == "output":
        return message.output.invocation_id
    if kind == "result":
        return message.result.invocation_id
    return ""


class InvocationReports:
    def __init__(
        self, commands: CommandService, relay: ReportRelay | None = None, fenced: Callable[[], bool] = lambda: False
    ) -> None:
        """``fenced``: whether this replica has lost the database long enough that the others may
        adopt its commands (replicas/service.py); it then takes no reports passed on by them."""
        self._commands = commands
        self._relay = relay
        self._fenced = fenced

    async def take(self, host_id: str, message: agent_pb2.AgentMessage) -> bool:
        """Handle one report of ``host_id``; for a result, True once it is durable (then acknowledge it).

        Raises:
            InvalidInput, PermissionDenied: the report is not one a fleetops agent sends (the link
                is refused and audited by the caller).
        """
        invocation_id = invocation_id_of(message)
        owner = await self._commands.owner_elsewhere(host_id, invocation_id)
        if owner and self._relay is not None:
            if await self._relay.report(owner, host_id, message):
                return True
            # The replica remembered as the owner did not take it: it may be gone and the command
            # adopted since. Look again once; if the owner is still unreachable, a result is not
            # acknowledged and the agent sends it again (at the adopter's re-send, or reconnect).
            self._commands.forget_owner(invocation_id)
            fresh = await self._commands.owner_elsewhere(host_id, invocation_id)
            if not fresh:
                return await self.take_here(host_id, message)
            if fresh == owner:
                self._commands.forget_owner(invocation_id)
                return False
            return await self._relay.report(fresh, host_id, message)
        return await self.take_here(host_id, message)

    async def take_for_peer(self, host_id: str, message: agent_pb2.AgentMessage) -> bool:
        """A report another replica passes on as this one's; not taken while fenced (the other
        replica looks for the owner again, and a result not taken is sent again by the agent)."""
        if self._fenced():
            log.info("fenced (no database): not taking a report of host %s from another replica", host_id)
            return False
        return await self.take_here(host_id, message)

    async def take_here(self, host_id: str, message: agent_pb2.AgentMessage) -> bool:
        """Handle a report for a command this replica runs (or one already over)."""
        kind = message.WhichOneof("body")
        if kind == "invocation_update":
            u = message.invocation_update
            state = _PHASES.get(u.phase)
            if state is not None:
                try:
                    at = convert.from_timestamp(u.at) if u.HasField("at") else datetime.now(UTC)
                except (ValueError, OverflowError):
                    at = datetime.now(UTC)  # a time no clock shows: ours is as good
                await self._commands.invocation_progress(host_id, u.invocation_id, state, at)
            return True
        if kind == "output":
            o = message.output
            stream = "stderr" if o.stream == agent_pb2.OUTPUT_STREAM_STDERR else "stdout"
            try:
                await self._commands.invocation_output(host_id, o.invocation_id, stream, o.offset, o.data)
            except (Unavailable, InternalError) as exc:
                # The controller could not keep the chunk (its own disk): the result's byte counts
                # then show the loss; the agent is not to blame, the stream goes on.
                log.error("output of %s from host %s not kept: %s", o.invocation_id, host_id, exc.message)
            return True
        if kind == "result":
            report = result_report(message.result)  # InvalidInput ends the link, refused and audited
            try:
                return await self._commands.invocation_result(host_id, report)
            except (Unavailable, InternalError) as exc:
                # The controller's own trouble, never a refusal: not acknowledged, so the agent
                # keeps the result and sends it again on its next connect.
                log.error("storing the result of %s failed: %s", message.result.invocation_id, exc.message)
                return False
            except FleetopsError:
                raise
            except Exception:
                # Not acknowledged: the agent keeps the result and sends it again on reconnect.
                log.exception("storing the result of %s failed", message.result.invocation_id)
                return False
        return False


_PHASES = {
    agent_pb2.INVOCATION_PHASE_DELIVERED: InvocationState.DELIVERED,
    agent_pb2.INVOCATION_PHASE_RUNNING: InvocationState.RUNNING,
}
_OUTCOMES = {
    agent_pb2.INVOCATION_OUTCOME_SUCCESS: InvocationState.SUCCESS,
    agent_pb2.INVOCATION_OUTCOME_FAILED: InvocationState.FAILED,
    agent_pb2.INVOCATION_OUTCOME_TIMED_OUT: InvocationState.TIMED_OUT,
    agent_pb2.INVOCATION_OUTCOME_CANCELLED: InvocationState.CANCELLED,
}


def result_report(r: agent_pb2.InvocationResult) -> InvocationReport:
    """The domain's report of a result; its reason is cut by the domain, not here.

    Raises:
        InvalidInput: a timestamp no clock can show (a forged result).
    """
    try:
        started_at = convert.from_timestamp(r.started_at) if r.HasField("started_at") else None
        finished_at = convert.from_timestamp(r.finished_at) if r.HasField("finished_at") else None
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"the result of invocation {r.invocation_id[:64]} has an impossible time: {exc}") from exc
    return InvocationReport(
        invocation_id=r.invocation_id,
        state=_OUTCOMES.get(r.outcome, InvocationState.FAILED),
        exit_code=r.exit_code,
        reason=r.reason if r.outcome in _OUTCOMES else (r.reason or "the agent reported no outcome"),
        stdout_bytes=r.stdout_bytes,
        stderr_bytes=r.stderr_bytes,
        started_at=started_at,
        finished_at=finished_at,
        rebooted=r.rebooted,
        task_report=patch_report.task_report_from_result(r),
    )
