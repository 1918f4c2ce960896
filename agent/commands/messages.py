"""The wire of run command: AgentMessages built from journal entries, and the check of a RunInvocation."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import DecodeError

from fleetops.agent.commands.entry import JournalEntry, Outcome
from fleetops.common import limits
from fleetops.common.errors import InvalidInput
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
        reason=limits.truncate_utf8(entry.reason, limits.REASON_BYTES.maximum),
        stdout_bytes=entry.stdout_bytes,
        stderr_bytes=entry.stderr_bytes,
        rebooted=entry.rebooted,
    )
    _attach_task_report(result, entry)
    if entry.started_at is not None:
        result.started_at.FromDatetime(entry.started_at)
    if entry.finished_at is not None:
        result.finished_at.FromDatetime(entry.finished_at)
    return agent_pb2.AgentMessage(result=result)


def _attach_task_report(result: agent_pb2.InvocationResult, entry: JournalEntry) -> None:
    """Put the task's report (if it wrote one) in ``result``, or say why it cannot go.

    A report over :data:`~fleetops.common.limits.PATCH_REPORT_BYTES` or not a PatchReport is not
    sent; ``patch_report_error`` tells the controller why (the result itself always goes).
    """
    maximum = limits.PATCH_REPORT_BYTES.maximum
    try:
        with entry.task_report_path.open("rb") as file:
            data = file.read(maximum + 1)
    except FileNotFoundError:
        return
    except OSError as exc:
        result.patch_report_error = f"the task's report cannot be read: {exc.strerror or exc}"
        return
    if len(data) > maximum:
        result.patch_report_error = (
            f"the patch report is over {maximum} bytes ({limits.PATCH_REPORT_BYTES.what} limit); it was not sent"
        )
        return
    try:
        result.patch_report.ParseFromString(data)
    except DecodeError:
        result.ClearField("patch_report")
        result.patch_report_error = "the task's report is not a PatchReport message; it was not sent"


def rejection_message(invocation_id: str, reason: str) -> agent_pb2.AgentMessage:
    """A FAILED result for an invocation this agent refuses to journal (a malformed id, see check_run)."""
    result = agent_pb2.InvocationResult(
        invocation_id=invocation_id,
        outcome=agent_pb2.INVOCATION_OUTCOME_FAILED,
        exit_code=-1,
        reason=limits.truncate_utf8(reason, limits.REASON_BYTES.maximum),
    )
    result.finished_at.FromDatetime(datetime.now(UTC))
    return agent_pb2.AgentMessage(result=result)


def check_run(spec: agent_pb2.RunInvocation) -> None:
    """Refuse what this agent cannot run as sent: sizes over the wire limits, NUL bytes, bad names.

    The controller checks the same table before it stores a command; this is the agent's own
    line (a controller of another version, or a stored command from before the limits).

    Raises:
        InvalidInput: the reason, sent back as the invocation's FAILED result.
    """
    limits.check_argv(spec.argv)
    limits.SCRIPT_BYTES.check(len(spec.script))
    limits.TASK_INPUT_BYTES.check(len(spec.task_input))
    limits.CWD_BYTES.check_text(spec.cwd)
    limits.RUN_AS_BYTES.check_text(spec.run_as)
    for what, text in (("the working directory", spec.cwd), ("the user name", spec.run_as)):
        if "\0" in text:
            raise InvalidInput(f"{what} contains a NUL byte")
    for key, value in spec.env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise InvalidInput(f"bad environment variable {key[:64]!r}: empty, or '=' or NUL in it")
