"""Maintenance windows and their tasks, as the windows room sees them (no wire types)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from fleetops.common import rates
from fleetops.common.errors import InvalidInput
from fleetops.controller.authz.actions import TASK_ACTIONS
from fleetops.controller.fleet.models import Target

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Shortest window the controller accepts unless configured otherwise (AWS: 1 hour).
DEFAULT_MIN_DURATION = 3600
MAX_DURATION = 24 * 3600
#: Seconds a claimed execution's lease lasts; its controller renews it well before.
LEASE_SECONDS = 60.0


def new_task_id() -> str:
    return "wt-" + secrets.token_hex(6)


def new_execution_id() -> str:
    return "wx-" + secrets.token_hex(10)


class CutoffBehavior(StrEnum):
    CONTINUE = "continue"  # running tasks finish; nothing new starts
    CANCEL = "cancel"  # running commands are cancelled; unfinished tasks end timed_out


class TaskType(StrEnum):
    PATCH_SCAN = "patch-scan"
    PATCH_INSTALL = "patch-install"
    RUN = "run"
    DOCUMENT = "document"  # a document on the target (docs/automation.md)
    AUTOMATION = "automation"  # a runbook (its steps name their own targets)


class ExecutionStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED_OVERLAPPING = "skipped_overlapping"
    MISSED = "missed"


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        return self not in (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)


def check_name(name: str, what: str = "window") -> str:
    if not _NAME.fullmatch(name or ""):
        raise InvalidInput(f"bad {what} name {name!r}", "use letters, digits, '.', '_' or '-', e.g. sunday-patch")
    return name


@dataclass(frozen=True)
class Window:
    name: str
    schedule: str
    timezone: str = "UTC"
    duration_seconds: int = DEFAULT_MIN_DURATION
    cutoff_seconds: int = 0
    cutoff_behavior: CutoffBehavior = CutoffBehavior.CONTINUE
    start_date: datetime | None = None
    end_date: datetime | None = None
    offset_days: int = 0
    enabled: bool = True
    description: str = ""
    created_at: datetime | None = None
    created_by: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "cutoff_behavior", CutoffBehavior(self.cutoff_behavior or "continue"))
        except ValueError:
            raise InvalidInput(
                f"bad cutoff behaviour {self.cutoff_behavior!r}", "use --cutoff-behavior continue or cancel"
            ) from None

    def check(self, min_duration: int = DEFAULT_MIN_DURATION) -> None:
        """Raises: InvalidInput, naming the field and what to give instead."""
        check_name(self.name)
        if self.duration_seconds < min_duration:
            raise InvalidInput(
                f"window duration {_span(self.duration_seconds)} is shorter than this controller's minimum of "
                f"{_span(min_duration)} (its --window-min-duration setting)",
                f"give --duration {_span(min_duration)} or more (up to 24h), or start the controller with a lower "
                "--window-min-duration (fleetops-controller serve or dev)",
            )
        if self.duration_seconds > MAX_DURATION:
            raise InvalidInput(
                f"window duration {_span(self.duration_seconds)} is longer than 24h",
                f"give --duration between {_span(min_duration)} and 24h (e.g. 3h)",
            )
        if not 0 <= self.cutoff_seconds < self.duration_seconds:
            raise InvalidInput(
                f"cutoff {self.cutoff_seconds}s must be shorter than the duration ({self.duration_seconds}s)",
                "the cutoff is how long before the end no new task starts, e.g. --duration 3h --cutoff 1h",
            )
        if self.offset_days < 0 or self.offset_days > 6:
            raise InvalidInput(f"offset of {self.offset_days} days is out of range", "give --offset between 0d and 6d")


@dataclass(frozen=True)
class WindowTask:
    window: str
    priority: int
    type: TaskType
    target: Target
    id: str = ""
    max_concurrency: str = ""
    max_errors: str = ""
    reboot: str = ""
    argv: tuple[str, ...] = ()
    script: bytes | None = None
    run_as: str = ""
    timeout_seconds: int = 0
    description: str = ""
    #: The operator the task acts for (``operator:NAME``): whoever added it. Set by the service.
    author: str = ""
    #: document and automation tasks: what they run (NAME or NAME:VERSION) and its parameters as text.
    document: str = ""
    parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "type", TaskType(self.type))
        except ValueError:
            raise InvalidInput(
                f"bad task type {self.type!r}", "use patch-scan, patch-install, run, document or automation"
            ) from None

    @property
    def action(self) -> str:
        """The action the task needs of its author, as a direct call would (``TASK_ACTIONS``); a
        document or automation task is decided on its document (``authority.choices_for``)."""
        return TASK_ACTIONS[self.type.value]

    @property
    def runs_document(self) -> bool:
        return self.type in (TaskType.DOCUMENT, TaskType.AUTOMATION)

    @property
    def login(self) -> str | None:
        """The login checked with it: ``run_as`` for a run task (``""``: the agent's account), else none."""
        return self.run_as if self.type == TaskType.RUN else None

    def check(self) -> None:
        """Raises: InvalidInput, naming the field and what to give instead."""
        if not 0 <= self.priority <= 1000:
            raise InvalidInput(f"priority {self.priority} is out of range", "give --priority between 0 and 1000")
        if self.type == TaskType.AUTOMATION:
            if not self.target.empty:
                raise InvalidInput(
                    "an automation task has no target: the runbook's steps name theirs",
                    "pass hosts to the runbook as a parameter, e.g. --param target=role=web",
                )
        elif self.target.empty:
            raise InvalidInput("the task has no target", "give --target SEL, --host H or --all")
        rates.max_concurrency(self.max_concurrency)  # the same words as opsctl and a direct run
        rates.max_errors(self.max_errors)
        if self.runs_document:
            if not self.document:
                raise InvalidInput(f"a {self.type} task needs --doc NAME[:VERSION]", "opsctl doc list shows them")
            if self.argv or self.script or self.reboot:
                raise InvalidInput(f"a {self.type} task takes no command, script or --reboot", "give --doc and --param")
            return
        if self.document or self.parameters:
            raise InvalidInput("--doc and --param are for document and automation tasks", "use --type document")
        if self.type == TaskType.RUN:
            if bool(self.argv) == bool(self.script):
                raise InvalidInput("a run task needs a command or a script", "... --type run --target SEL -- CMD ARGS")
            if self.reboot:
                raise InvalidInput("--reboot applies to patch-install tasks only")
        else:
            if self.argv or self.script:
                raise InvalidInput(f"a {self.type} task takes no command", "drop the command, or use --type run")
            if self.reboot and self.type != TaskType.PATCH_INSTALL:
                raise InvalidInput("--reboot applies to patch-install tasks only")
            if self.reboot not in ("", "if-needed", "never"):
                raise InvalidInput(f"bad reboot policy {self.reboot!r}", "use --reboot if-needed or never")


@dataclass(frozen=True)
class TaskExecution:
    task_id: str
    type: str
    priority: int
    status: TaskStatus
    target: str = ""
    command_id: str = ""
    reason: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    author: str = ""
    #: Hosts the target matched when the task started that its author may not touch (sent nothing).
    refused_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Execution:
    id: str
    window: str
    scheduled_at: datetime
    status: ExecutionStatus
    reason: str
    started_at: datetime | None
    finished_at: datetime | None
    ends_at: datetime
    controller: str
    tasks: tuple[TaskExecution, ...] = ()


@dataclass(frozen=True)
class ExecutionRun:
    """What the executor needs of one claimed execution (``store.WindowStore.execution_run``)."""

    id: str
    window: str
    cutoff_at: datetime
    cutoff_behavior: str


@dataclass
class TaskRun:
    """One task's progress in an execution, as the executor tracks it (mutable: it follows the row)."""

    id: int
    task_id: str
    priority: int
    status: str
    command_id: str = ""
    author: str = ""
    refused_hosts: list[str] = field(default_factory=list)
    reason: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


def _span(seconds: int) -> str:
    """``3h``, ``1h30m``, ``90s``: a duration as ``--duration`` takes it."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
