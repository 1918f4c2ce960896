"""The AgentMessages of run command, built from journal entries (the only place that maps to the wire)."""

from __future__ import annotations

from datetime import UTC, datetime

from fleetops.agent.commands.entry import JournalEntry, Outcome
from fleetops.v1 import agent_pb2

OUTCOMES = {
    Outcome.SUCCESS: agent_pb2.INVOCATION_OUTCOME_SUCCESS,
    Outcome.FAILED: agent_pb2.INVOCATION_OUTCOME_FAILED,
    Outcome.TIMED_OUT: agent_pb2.INVOCATION_OUTCOME_TIMED_OUT,
    Outcome.CANCELLED: agent_pb2.INVOCATION_OUTCOME_CANCELLED,
}


def as_int32(exit_code: int) -> int:
    """Fit an exit code into the wire's int32 (Windows reports NTSTATUS codes like 0xC0000005 unsigned)."""
    exit_code &= 0xFFFFFFFF
    return exit_code - (1 << 32) if exit_code >= 1 << 31 else exit_code


def update_message(invocation_id: str, phase: agent_pb2.InvocationPhase) -> agent_pb2.AgentMessage:
    update = agent_pb2.InvocationUpdate(invocation_id=invocation_id, phase=phase)
    update.at.FromDatetime(datetime.now(UTC))
    return agent_pb2.AgentMessage(invocation_update=update)


def output_message(
    invocation_id: str, stream: agent_pb2.OutputStream, offset: int, data: bytes
) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(
        output=agent_pb2.OutputChunk(invocation_id=invocation_id, stream=stream, offset=offset, data=data)
    )


def result_message(entry: JournalEntry) -> agent_pb2.AgentMessage:
    """The InvocationResult of a finished (or acked) entry.

    Raises:
        ValueError: the entry has no result yet.
    """
    if not entry.has_result or entry.outcome is None:
        raise ValueError(f"invocation {entry.invocation_id} has no result yet ({entry.phase})")
    result = agent_pb2.InvocationResult(
        invocation_id=entry.invocation_id,
        outcome=OUTCOMES[entry.outcome],
        exit_code=as_int32(entry.exit_code if entry.exit_code is not None else -1),
        reason=entry.reason,
        stdout_bytes=entry.stdout_bytes,
        stderr_bytes=entry.stderr_bytes,
        rebooted=entry.rebooted,
    )
    if entry.started_at is not None:
        result.started_at.FromDatetime(entry.started_at)
    if entry.finished_at is not None:
        result.finished_at.FromDatetime(entry.finished_at)
    return agent_pb2.AgentMessage(result=result)


def rejection_message(invocation_id: str, reason: str) -> agent_pb2.AgentMessage:
    """A FAILED result for an invocation that could not even be journaled (e.g. a malformed id)."""
    result = agent_pb2.InvocationResult(
        invocation_id=invocation_id, outcome=agent_pb2.INVOCATION_OUTCOME_FAILED, exit_code=-1, reason=reason
    )
    result.finished_at.FromDatetime(datetime.now(UTC))
    return agent_pb2.AgentMessage(result=result)
