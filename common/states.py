"""The states that cross process boundaries, as stable lowercase words.

The controller stores these words, the wire carries them (as enums whose names end in the word,
``INVOCATION_STATE_TIMED_OUT`` -> ``timed_out``) and opsctl prints them; each is defined once here.
"""

from __future__ import annotations

import enum

__all__ = [
    "FINAL_STATES",
    "FINAL_STATE_NAMES",
    "CommandStatus",
    "EndReason",
    "InvocationState",
    "SessionState",
    "TranscriptState",
]


class InvocationState(enum.Enum):
    """Where one host's part of a command stands."""

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
        """True once the state can no longer change."""
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
#: The words of FINAL_STATES.
FINAL_STATE_NAMES = tuple(s.value for s in FINAL_STATES)


class CommandStatus(enum.Enum):
    """Where a command as a whole stands."""

    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SessionState(enum.StrEnum):
    """Where a terminal session stands."""

    STARTING = "starting"
    ACTIVE = "active"
    ENDED = "ended"


class EndReason(enum.StrEnum):
    """Why a session ended."""

    EXITED = "exited"  # the program ended by itself
    KILLED = "killed"  # opsctl session kill
    IDLE_TIMEOUT = "idle_timeout"
    MAX_DURATION = "max_duration"
    CLIENT_LOST = "client_lost"  # the operator's stream did not come back within the resume window
    AGENT_LOST = "agent_lost"  # the agent's stream did not come back, or it ignored a hang-up
    REFUSED = "refused"  # the host could not start the program
    RECORDING_FAILED = "recording_failed"  # the transcript spool could not be written
    CONTROLLER_RESTART = "controller_restart"  # found unfinished when the controller started


class TranscriptState(enum.StrEnum):
    """Where a session's recording is."""

    RECORDING = "recording"
    SPOOLED = "spooled"  # finished, waiting in the local spool for the object store
    STORED = "stored"
    NONE = "none"  # nothing was recorded (the session never started on the host)
