"""The event types fleetops emits, their CloudEvents envelope, and type patterns.

Every type is documented in docs/events.md with its ``data`` fields (a unit test keeps the two
in step). Types are stable: a field may be added to ``data``, never renamed or removed.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fleetops.common.errors import InvalidInput

#: The CloudEvents ``source`` of every event (the controller cluster, whichever replica wrote it).
SOURCE = "/fleetops/controller"
SPEC_VERSION = "1.0"
PREFIX = "fleetops."

#: type -> what it means (the docs table and ``opsctl events types``).
EVENT_TYPES: Mapping[str, str] = {
    "fleetops.command.succeeded": "a command ended and every invocation succeeded",
    "fleetops.command.failed": "a command ended and some invocation failed, timed out or was cancelled",
    "fleetops.invocation.failed": "a command's invocation on one host failed (non-zero exit or error)",
    "fleetops.invocation.timed_out": "a command's invocation on one host timed out",
    "fleetops.session.started": "an interactive session started on a host",
    "fleetops.session.ended": "an interactive session ended",
    "fleetops.window.execution.started": "a maintenance window opened and its tasks started",
    "fleetops.window.execution.succeeded": "a maintenance window execution ended with every task succeeded",
    "fleetops.window.execution.failed": "a maintenance window execution ended with a task failed",
    "fleetops.window.execution.missed": "a maintenance window occurrence was missed (the controller was down)",
    "fleetops.host.noncompliant": "a host's patch compliance became non-compliant",
    "fleetops.host.offline": "a host stopped answering (its link went away)",
    "fleetops.host.online": "a host connected again",
    "fleetops.host.registered": "a host registered with an activation",
    "fleetops.host.deregistered": "a host was deregistered",
    "fleetops.automation.approval_waiting": "a runbook execution waits for an approval",
    "fleetops.audit.verification_failed": "verifying the audit chain found an event that does not match",
    "fleetops.subscription.test": "a test event sent by opsctl subscription test (to that subscription only)",
}


def full_type(pattern: str) -> str:
    """``command.failed`` -> ``fleetops.command.failed`` (the prefix may be left out)."""
    return pattern if pattern.startswith(PREFIX) else PREFIX + pattern


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """Type patterns (``command.failed``, ``window.*``) as stored: prefixed, each matching some type.

    Raises:
        InvalidInput: a pattern matches no event type (with the closest type, if any).
    """
    checked: list[str] = []
    for raw in patterns:
        pattern = full_type(raw.strip())
        if not raw.strip() or not fnmatch.filter(EVENT_TYPES, pattern):
            close = difflib.get_close_matches(pattern, list(EVENT_TYPES), n=1)
            guess = f"did you mean {close[0].removeprefix(PREFIX)}? " if close else ""
            raise InvalidInput(
                f"event type {raw!r} matches no event type",
                f"{guess}see opsctl events types (patterns may use *, e.g. window.*)",
            )
        if pattern not in checked:
            checked.append(pattern)
    return checked


def type_matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether *event_type* is one of *patterns* (no patterns: every type)."""
    patterns = list(patterns)
    return not patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def cloud_event(
    *, event_id: str, type: str, subject: str, time: datetime, data: Mapping[str, Any], position: int | None = None
) -> dict[str, Any]:
    """The event in CloudEvents 1.0 JSON (structured mode); ``fleetopsposition`` is an extension."""
    envelope: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": SOURCE,
        "type": type,
        "subject": subject,
        "time": time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(data),
    }
    if position is not None:
        envelope["fleetopsposition"] = position
    return envelope
