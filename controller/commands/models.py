"""Domain objects of run command: states, rate limits, commands and invocations."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import datetime

from fleetops.common.errors import InvalidInput

TAIL_BYTES = 64 * 1024
DEFAULT_MAX_CONCURRENCY = "50"
DEFAULT_MAX_ERRORS = "0"
DEFAULT_TIMEOUT_SECONDS = 3600
DEFAULT_DELIVERY_TIMEOUT_SECONDS = 600
DEFAULT_KILL_GRACE_SECONDS = 5


class InvocationState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    UNDELIVERABLE = "undeliverable"
    NOT_STARTED = "not_started"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @property
    def counts_as_error(self) -> bool:
        """SSM: failed and timed-out invocations count against max-errors; undeliverable ones do not."""
        return self in (InvocationState.FAILED, InvocationState.TIMED_OUT)


FINAL_STATES = frozenset(
    {
        InvocationState.SUCCESS,
        InvocationState.FAILED,
        InvocationState.TIMED_OUT,
        InvocationState.CANCELLED,
        InvocationState.UNDELIVERABLE,
        InvocationState.NOT_STARTED,
    }
)
FINAL_STATE_NAMES = tuple(s.value for s in FINAL_STATES)


class CommandStatus(enum.Enum):
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


def resolve_limit(text: str, total: int, *, what: str, minimum: int) -> int:
    """``"50"`` -> 50, ``"10%"`` -> 10 % of ``total`` rounded up (SSM), at least ``minimum``.

    Raises:
        InvalidInput: not a whole number or a percentage from 0 to 100.
    """
    t = text.strip()
    hint = f"give {what} as a count (e.g. 50) or a percentage of the targets (e.g. 10%)"
    if t.endswith("%"):
        number = t[:-1]
        if not number.isdigit() or int(number) > 100:
            raise InvalidInput(f"bad {what} {text!r}", hint)
        return max(minimum, math.ceil(total * int(number) / 100))
    if not t.isdigit():
        raise InvalidInput(f"bad {what} {text!r}", hint)
    return max(minimum, int(t))


@dataclass(frozen=True)
class CommandSpec:
    """What to run and how, as an operator asked for it."""

    argv: tuple[str, ...] = ()
    script: bytes | None = None
    cwd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    run_as: str = ""
    max_concurrency: str = DEFAULT_MAX_CONCURRENCY
    max_errors: str = DEFAULT_MAX_ERRORS
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    delivery_timeout_seconds: int = DEFAULT_DELIVERY_TIMEOUT_SECONDS
    kill_grace_seconds: int = DEFAULT_KILL_GRACE_SECONDS
    comment: str = ""
    # A task the agent implements itself ("patch.scan", "patch.install") instead of argv/script,
    # with its JSON request (agent/commands/tasks.py).
    agent_task: str = ""
    task_input: bytes = b""

    def validate(self) -> None:
        if sum((bool(self.argv), bool(self.script), bool(self.agent_task))) != 1:
            raise InvalidInput(
                "give either a command or a script", "opsctl run --target SEL -- CMD ARGS, or --script FILE"
            )
        for key in self.env:
            if not key or "=" in key or "\0" in key:
                raise InvalidInput(f"bad environment variable name {key!r}", "use --env NAME=VALUE")
        if self.timeout_seconds <= 0 or self.delivery_timeout_seconds <= 0:
            raise InvalidInput("timeouts must be positive", "e.g. --timeout 10m --delivery-timeout 10m")


@dataclass(frozen=True)
class RunInstruction:
    """What one host is told to run (the wire adapter turns it into a RunInvocation)."""

    invocation_id: str
    command_id: str
    argv: tuple[str, ...]
    script: bytes | None
    cwd: str
    env: dict[str, str]
    run_as: str
    timeout_seconds: int
    kill_grace_seconds: int
    stdout_offset: int = 0
    stderr_offset: int = 0
    agent_task: str = ""
    task_input: bytes = b""


@dataclass(frozen=True)
class InvocationReport:
    """An agent's final word on an invocation."""

    invocation_id: str
    state: InvocationState
    exit_code: int | None
    reason: str
    stdout_bytes: int
    stderr_bytes: int
    started_at: datetime | None
    finished_at: datetime | None
    rebooted: bool = False


@dataclass(frozen=True)
class Invocation:
    id: str
    command_id: str
    host_id: str
    host_name: str
    state: InvocationState
    exit_code: int | None
    reason: str
    stdout_tail: bytes
    stderr_tail: bytes
    stdout_bytes: int
    stderr_bytes: int
    delivered_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    rebooted: bool
    updated_at: datetime


@dataclass(frozen=True)
class Command:
    id: str
    created_at: datetime
    created_by: str
    spec: CommandSpec
    target: str
    concurrency_limit: int
    error_limit: int
    status: CommandStatus
    total: int
    counts: dict[str, int]
    finished_at: datetime | None
    cancel_requested: bool
