"""What the sessions room works with: requests, records, frames and limits (no wire types)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fleetops.common.errors import InvalidInput
from fleetops.common.states import SessionState, TranscriptState
from fleetops.common.terminal import check_size
from fleetops.controller.authz.ssh import SshRights

#: Default limits (docs/sessions.md).
DEFAULT_IDLE_TIMEOUT = 20 * 60.0
DEFAULT_MAX_DURATION = 12 * 3600.0
#: Seconds the agent has to start the program and attach after OpenSession.
AGENT_START_TIMEOUT = 30.0
#: Seconds the agent has to end a session it was told to hang up (it kills after 5 s itself).
TERMINATE_TIMEOUT = 15.0

MAX_COMMAND_LENGTH = 16 * 1024
_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}\$?")
_ENV_NAME = re.compile(r"LANG|LANGUAGE|TZ|LC_[A-Z_]{1,32}")
MAX_ENV_VALUE = 256


class SessionKind(StrEnum):
    """What a session's byte stream carries (docs/ssh.md)."""

    #: A program on a terminal of the host (opsctl session), recorded as asciicast.
    TERMINAL = "terminal"
    #: An SSH connection to the agent's built-in SSH server (opsctl proxy): SSH's own encryption
    #: end to end, so the relay records no transcript.
    SSH = "ssh"


@dataclass(frozen=True)
class SshServerSetup:
    """What the agent's SSH server needs for one SSH session (``OpenSession.ssh``)."""

    host_certificate: str  # the host's SSH host key certified for this session (OpenSSH line)
    user_ca_keys: tuple[str, ...]  # CA public keys whose user certificates may log in
    operator: str  # the user certificate's key id must be this operator's name
    rights: SshRights = SshRights()  # forwards, agent forwarding, file transfer (none by default)


def new_session_id() -> str:
    return "ses-" + secrets.token_hex(10)


def transcript_key(session_id: str) -> str:
    return f"sessions/{session_id}/transcript.cast"


#: Exit code reported when the session was lost rather than ended by the program (as ssh's 255).
LOST_EXIT_CODE = 255


@dataclass(frozen=True)
class SessionLimits:
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT  # 0 = none
    max_duration: float = DEFAULT_MAX_DURATION  # 0 = none
    resume: float = 60.0
    agent_start_timeout: float = AGENT_START_TIMEOUT
    terminate_timeout: float = TERMINATE_TIMEOUT


@dataclass(frozen=True)
class SessionRequest:
    """An operator's request for a session, as checked by :func:`check_request`."""

    host: str
    run_as: str = ""
    command: str = ""
    cols: int = 80
    rows: int = 24
    term: str = "xterm-256color"
    env: dict[str, str] = field(default_factory=dict)
    record_input: bool = False
    kind: SessionKind = SessionKind.TERMINAL


def check_request(request: SessionRequest) -> SessionRequest:
    """The request with defaults filled in and the environment filtered to what may pass.

    Of the environment only ``LANG``, ``LANGUAGE``, ``LC_*`` and ``TZ`` pass (as sshd's usual
    ``AcceptEnv``); other names are dropped, not refused, since clients send their locale as-is.

    Raises:
        InvalidInput: no host, a malformed user, terminal type, size or command.
    """
    if not request.host.strip():
        raise InvalidInput("no host given", "opsctl session HOST (a host name or id from `opsctl hosts list`)")
    if request.run_as and not _USER.fullmatch(request.run_as):
        raise InvalidInput(f"{request.run_as!r} is not a user name", "give a POSIX user name, e.g. --as deploy")
    cols, rows = request.cols or 80, request.rows or 24
    check_size(cols, rows)
    term = request.term or "xterm-256color"
    if not _TERM.fullmatch(term):
        raise InvalidInput(
            f"TERM {term!r} is not a terminal type", "set TERM to a terminfo name such as xterm-256color"
        )
    if len(request.command) > MAX_COMMAND_LENGTH or "\x00" in request.command:
        raise InvalidInput(
            "the session command is too long or contains a NUL byte",
            f"keep --command under {MAX_COMMAND_LENGTH} bytes; use `opsctl run --script` for long scripts",
        )
    env = {
        name: value
        for name, value in request.env.items()
        if _ENV_NAME.fullmatch(name) and len(value) <= MAX_ENV_VALUE and "\x00" not in value
    }
    return SessionRequest(
        host=request.host.strip(),
        run_as=request.run_as,
        command=request.command,
        cols=cols,
        rows=rows,
        term=term,
        env=env,
        record_input=request.record_input,
        kind=request.kind,
    )


@dataclass(frozen=True)
class Session:
    """A session's record (what list/show report)."""

    id: str
    host_id: str
    host_name: str
    operator: str
    run_as: str
    command: str
    term: str
    cols: int
    rows: int
    record_input: bool
    broker: str
    state: SessionState
    started_at: datetime
    ended_at: datetime | None
    end_reason: str
    end_message: str
    exit_code: int | None
    transcript_key: str
    transcript_state: TranscriptState
    transcript_sha256: str
    transcript_size: int | None
    kind: SessionKind = SessionKind.TERMINAL


# -- frames (both directions; the rpc layer converts them to and from the wire) ---------------


@dataclass(frozen=True)
class Resize:
    """A new window size, checked as an open's is (a refused resize ends the operator's stream)."""

    cols: int
    rows: int

    def __post_init__(self) -> None:
        check_size(self.cols, self.rows)


#: One input event: keystrokes, or a new window size.
InputEvent = bytes | Resize


@dataclass(frozen=True)
class SessionEnd:
    """The end of a session, as the operator is told (the last frame of the output direction)."""

    exit_code: int
    reason: str
    message: str


#: One output event: terminal output, or the end.
OutputEvent = bytes | SessionEnd

# -- what happened inside an SSH connection (the agent's report; docs/ssh.md "Records") ---------

#: Audit actions a host may report about an SSH session (anything else is ignored, and logged).
ACTIVITY_ACTIONS = frozenset({"ssh.forward", "ssh.forward_remote", "file.transfer"})
#: Bytes of JSON details a reported audit note may have.
MAX_ACTIVITY_DETAILS = 8 * 1024


@dataclass(frozen=True)
class TerminalOpened:
    """A channel of the SSH connection got a pty: the transcript starts at the first one."""

    term: str
    cols: int
    rows: int
    command: str = ""


@dataclass(frozen=True)
class TerminalOutput:
    """What a pty channel of the SSH connection printed (recorded, never relayed as SSH bytes)."""

    data: bytes


@dataclass(frozen=True)
class ActivityNote:
    """A forward or file transfer the host reports, for the audit log (data, not proof)."""

    action: str
    details: dict[str, Any]


#: One activity report; ``None`` stands for one that was malformed (skipped, its seq still counted).
Activity = TerminalOpened | TerminalOutput | Resize | ActivityNote


@dataclass(frozen=True)
class AgentAttach:
    """The agent joining (or rejoining) a session's stream."""

    session_id: str
    received_seq: int
    shell: str = ""
    refused: Exception | None = None
