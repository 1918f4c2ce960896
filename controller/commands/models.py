"""Domain objects of run command: commands and invocations (states: common/states.py, rates: common/rates.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from fleetops.common import limits, rates
from fleetops.common.errors import InvalidInput
from fleetops.common.states import CommandStatus, InvocationState

TAIL_BYTES = 64 * 1024
DEFAULT_TIMEOUT_SECONDS = 3600
DEFAULT_DELIVERY_TIMEOUT_SECONDS = 600
DEFAULT_KILL_GRACE_SECONDS = 5


@dataclass(frozen=True)
class CommandSpec:
    """What to run and how, as an operator asked for it."""

    argv: tuple[str, ...] = ()
    script: bytes | None = None
    cwd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    run_as: str = ""
    max_concurrency: str = rates.DEFAULT_MAX_CONCURRENCY
    max_errors: str = rates.DEFAULT_MAX_ERRORS
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    delivery_timeout_seconds: int = DEFAULT_DELIVERY_TIMEOUT_SECONDS
    kill_grace_seconds: int = DEFAULT_KILL_GRACE_SECONDS
    comment: str = ""
    # A task the agent implements itself ("patch.scan", "patch.install") instead of argv/script,
    # with its JSON request (agent/commands/tasks.py).
    agent_task: str = ""
    task_input: bytes = b""
    # A document run (NAME:VERSION) and its parameters as the hosts get them (FLEETOPS_PARAM_* in
    # ``env``); ``windows_script`` replaces ``script`` on Windows hosts (a document with a script
    # per platform: ``script`` is then the shell one).
    document: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    windows_script: bytes | None = None

    def validate(self) -> None:
        """Check the spec against the wire limits (common/limits.py) before anything is stored.

        Every path that creates a command (RunCommand, window run tasks, patch operations) calls
        this through ``CommandService.create``; window tasks also call it when they are saved.

        Raises:
            InvalidInput: no or two things to run, a size over its limit (the message names the
                limit and the size), a NUL byte, or a number out of range.
        """
        if sum((bool(self.argv), bool(self.script), bool(self.agent_task))) != 1:
            raise InvalidInput(
                "give either a command or a script", "opsctl run --target SEL -- CMD ARGS, or --script FILE"
            )
        limits.check_argv(self.argv)
        limits.check_env(self.env)
        limits.SCRIPT_BYTES.check(len(self.script or b""))
        limits.SCRIPT_BYTES.check(len(self.windows_script or b""))
        if self.windows_script and not self.script:
            raise InvalidInput("a Windows script needs a shell script beside it", "give the script for other hosts too")
        limits.TASK_INPUT_BYTES.check(len(self.task_input))
        for limit, text in (
            (limits.CWD_BYTES, self.cwd),
            (limits.RUN_AS_BYTES, self.run_as),
            (limits.COMMENT_BYTES, self.comment),
            (limits.NAME_BYTES, self.agent_task),
        ):
            limit.check_text(text)
        for what, text in (("--cwd", self.cwd), ("--as", self.run_as)):
            if "\0" in text:
                raise InvalidInput(f"{what} contains a NUL byte", "remove it")
        rates.max_concurrency(self.max_concurrency)
        rates.max_errors(self.max_errors)
        for what, seconds, top in (
            ("timeout", self.timeout_seconds, limits.TIMEOUT_SECONDS_MAX),
            ("delivery timeout", self.delivery_timeout_seconds, limits.DELIVERY_TIMEOUT_SECONDS_MAX),
            ("kill grace", self.kill_grace_seconds, limits.TIMEOUT_SECONDS_MAX),
        ):
            if not 0 < seconds <= top:
                raise InvalidInput(
                    f"the {what} is {seconds}s; it must be from 1s to {top}s ({top // 86400} days)",
                    "e.g. --timeout 10m --delivery-timeout 10m",
                )


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
    #: An agent task's report in its stored (JSON) form, kept with the invocation; the room whose
    #: task it is reads it (patching: ``fleetops.common.patch_report.PatchReport``).
    task_report: Mapping[str, Any] | None = None


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
    sent_at: datetime | None = None
    # Why a non-final invocation has not finished, in words ("" when final); see waiting.py.
    waiting_reason: str = ""
    host_offline_since: datetime | None = None


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


def listed(command: Command) -> Command:
    """``command`` as a listing shows it: no script, argv and target cut to LISTED_TEXT_BYTES each.

    A list of up to 1000 commands then stays a few MiB whatever the commands hold; ``run show``
    gives a command whole.
    """
    budget = limits.LISTED_TEXT_BYTES
    argv: list[str] = []
    for arg in command.spec.argv:
        size = limits.utf8_size(arg) + 1
        if size > budget:
            argv.append(limits.truncate_utf8(arg, max(budget, 16), "…"))
            break
        argv.append(arg)
        budget -= size
    spec = replace(command.spec, argv=tuple(argv), script=None, windows_script=None, task_input=b"")
    return replace(command, spec=spec, target=limits.truncate_utf8(command.target, limits.LISTED_TEXT_BYTES, "…"))
