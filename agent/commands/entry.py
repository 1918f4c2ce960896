"""What the journal knows about one invocation: its phase, outcome and output totals."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from fleetops.common.errors import InvalidInput

# Invocation ids become directory names: no separators, no "..", no hidden names.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class Phase(StrEnum):
    DELIVERED = "delivered"
    RUNNING = "running"
    REBOOT_PENDING = "reboot_pending"
    FINISHED = "finished"
    ACKED = "acked"


#: The file of a journal entry holding its agent task's report (a serialized fleetops.v1.PatchReport).
TASK_REPORT_FILE = "task-report.pb"
#: Where an agent task that may outlive the agent (agent.update restarts it) leaves its exit status
#: and reason as JSON, for the next agent, which adopts it and cannot wait for it (executor.adopt).
TASK_STATUS_FILE = "task-status.json"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclasses.dataclass(frozen=True)
class JournalEntry:
    """One invocation's journaled state (a snapshot: the journal returns a new one per change)."""

    invocation_id: str
    directory: Path
    phase: Phase
    delivered_at: datetime
    command_id: str = ""
    pid: int | None = None
    # The process's start time as the OS reports it: tells our process from a later one reusing the pid.
    process_started: float | None = None
    script_path: str | None = None
    started_at: datetime | None = None
    outcome: Outcome | None = None
    exit_code: int | None = None
    reason: str = ""
    finished_at: datetime | None = None
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    rebooted: bool = False
    acked_at: datetime | None = None

    @property
    def stdout_path(self) -> Path:
        return self.directory / "stdout"

    @property
    def stderr_path(self) -> Path:
        return self.directory / "stderr"

    @property
    def task_report_path(self) -> Path:
        """Where an agent task (patch scan/install) writes its report; sent with the result."""
        return self.directory / TASK_REPORT_FILE

    @property
    def task_status_path(self) -> Path:
        """Where an agent task leaves its exit status for an agent that adopted it (TASK_STATUS_FILE)."""
        return self.directory / TASK_STATUS_FILE

    @property
    def has_result(self) -> bool:
        return self.phase in (Phase.FINISHED, Phase.ACKED)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            if field.name == "directory":
                continue
            value = getattr(self, field.name)
            doc[field.name] = value.isoformat() if isinstance(value, datetime) else value
        return (json.dumps(doc, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, directory: Path, data: bytes) -> JournalEntry:
        doc = json.loads(data)
        for name in ("delivered_at", "started_at", "finished_at", "acked_at"):
            if doc.get(name) is not None:
                doc[name] = datetime.fromisoformat(doc[name])
        doc["phase"] = Phase(doc["phase"])
        if doc.get("outcome") is not None:
            doc["outcome"] = Outcome(doc["outcome"])
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(directory=directory, **{k: v for k, v in doc.items() if k in known})


class Recorded(NamedTuple):
    """What ``record`` did: ``is_new`` is True only when the caller must now execute ``entry``."""

    entry: JournalEntry
    is_new: bool


def check_invocation_id(invocation_id: str) -> None:
    """Check an invocation id can name a journal directory.

    Raises:
        InvalidInput: it cannot (separators, "..", hidden names, too long).
    """
    if not _SAFE_ID.fullmatch(invocation_id):
        raise InvalidInput(
            f"invalid invocation id {invocation_id!r}",
            "invocation ids are 1-128 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'",
        )
