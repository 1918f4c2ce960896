"""What the automation room keeps: runbook executions and the steps they ran."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fleetops.controller.windows.interfaces import EXECUTION_PREFIX

#: How long a replica's hold on an execution lasts without renewal; another replica takes over after.
LEASE_SECONDS = 15.0
#: Steps one execution may run in all (a goto loop ends here, failed).
MAX_STEP_RUNS = 200
#: stdout output of a run step: its first successful host's output tail, cut to this many bytes.
STDOUT_OUTPUT_BYTES = 4096


class ExecutionStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    WAITING_APPROVAL = "waiting_approval"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (ExecutionStatus.SUCCESS, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)


class StepStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"  # an approve step waiting for its approvers
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (StepStatus.SUCCESS, StepStatus.FAILED, StepStatus.CANCELLED)


def new_execution_id() -> str:
    return EXECUTION_PREFIX + secrets.token_hex(10)


@dataclass(frozen=True)
class StepRecord:
    """One step as it ran (``seq``: its place among the steps the execution ran)."""

    execution_id: str
    seq: int
    name: str
    kind: str
    status: StepStatus
    detail: str
    state: dict[str, Any]
    outputs: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    deadline: datetime | None


@dataclass(frozen=True)
class Execution:
    id: str
    runbook: str  # NAME:VERSION
    parameters: dict[str, str]  # as given, text
    status: ExecutionStatus
    reason: str
    current_step: str
    steps_run: int
    outputs: dict[str, dict[str, Any]]  # step name -> its outputs (the latest run of it)
    started_by: str
    started_via: str
    comment: str
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    owner: str
    lease_until: datetime | None
    steps: tuple[StepRecord, ...] = field(default=())


@dataclass(frozen=True)
class Approval:
    operator: str
    approved: bool
    comment: str
    at: datetime
