"""What happens inside one SSH connection, reported to the controller for its records (docs/ssh.md).

The SSH bytes themselves are encrypted end to end, so the controller learns what a connection did
from the agent's server: each terminal (a channel with a pty) is recorded like ``opsctl session``
(``TerminalOpened``, then its output and window changes), and each forward and file transfer is
summed up for the audit log once it ends. The items travel on the session stream as
``SessionActivity`` frames, in the same sequence and window as the SSH bytes
(``SshTerminal.read`` returns them between reads), so they survive a reconnect like the bytes do.

:class:`ActivityLog` is the queue between the connection's channels and ``SshTerminal.read``.
Terminal output waits while :data:`QUEUE_BYTES` are queued (a shell printing fast is slowed to
what the controller takes, as on ``opsctl session``); audit notes and window changes never wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fleetops.v1 import session_pb2

#: Terminal output queued at most before a pty's reader waits.
QUEUE_BYTES = 1024 * 1024
#: An audit note's details are cut to this many bytes of JSON (the controller refuses longer).
MAX_DETAILS_BYTES = 8 * 1024


class ActivityLog:
    """Activity items of one SSH connection, in order, for ``SshTerminal.read``."""

    def __init__(self, limit: int = QUEUE_BYTES) -> None:
        self._items: deque[session_pb2.SessionActivity] = deque()
        self._bytes = 0
        self._limit = limit
        self._changed = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._items)

    def terminal_opened(self, term: str, cols: int, rows: int, command: str | None) -> None:
        opened = session_pb2.TerminalOpened(
            term=term, size=session_pb2.TerminalSize(cols=cols, rows=rows), command=command or ""
        )
        self._put(session_pb2.SessionActivity(terminal_opened=opened), 0)

    async def terminal_output(self, data: bytes) -> None:
        """Queue what a terminal printed; waits while the queue is full."""
        while self._bytes >= self._limit:
            self._room.clear()
            await self._room.wait()
        self._put(session_pb2.SessionActivity(terminal_output=data), len(data))

    def terminal_resized(self, cols: int, rows: int) -> None:
        self._put(session_pb2.SessionActivity(terminal_resized=session_pb2.TerminalSize(cols=cols, rows=rows)), 0)

    def audit(self, action: str, details: dict[str, Any]) -> None:
        """A forward or transfer that ended, for the audit log (details cut to a bounded size)."""
        text = json.dumps(details, sort_keys=True, default=str)
        if len(text.encode()) > MAX_DETAILS_BYTES:
            text = json.dumps({"truncated": True, "summary": text[: MAX_DETAILS_BYTES // 2]})
        self._put(session_pb2.SessionActivity(audit=session_pb2.ActivityAudit(action=action, details_json=text)), 0)

    def take(self) -> session_pb2.SessionActivity | None:
        """The oldest item, or ``None`` when there is none."""
        if not self._items:
            return None
        item = self._items.popleft()
        if item.WhichOneof("event") == "terminal_output":
            self._bytes -= len(item.terminal_output)
            if self._bytes < self._limit:
                self._room.set()
        return item

    async def wait(self) -> None:
        """Until an item is queued."""
        while not self._items:
            self._changed.clear()
            await self._changed.wait()

    def _put(self, item: session_pb2.SessionActivity, size: int) -> None:
        self._items.append(item)
        self._bytes += size
        self._changed.set()


@dataclass
class FileTransfer:
    """One file read or written over SFTP: its size, and its SHA-256 when the whole file passed in order."""

    path: str
    direction: str = ""  # "upload" (to the host) or "download" (from it), by the first read or write
    size: int = 0
    _next: int = 0
    _in_order: bool = True
    _digest: Any = field(default_factory=hashlib.sha256)

    def passed(self, direction: str, offset: int, data: bytes) -> None:
        if not self.direction:
            self.direction = direction
        elif self.direction != direction:
            self._in_order = False  # read and written: no single file went one way
        if offset != self._next:
            self._in_order = False
        elif self._in_order:
            self._digest.update(data)
        self._next = offset + len(data)
        self.size += len(data)

    def details(self, file_size: int | None, login: str) -> dict[str, Any]:
        """The audit details; ``sha256`` only when every byte of the file passed, in order, once."""
        details: dict[str, Any] = {"path": self.path, "direction": self.direction, "size": self.size, "login": login}
        if self._in_order and file_size is not None and file_size == self.size:
            details["sha256"] = self._digest.hexdigest()
        return details


@dataclass
class ForwardStats:
    """One forwarded connection: where to, bytes each way, how long."""

    destination: str
    kind: str = "local"  # local (ssh -L/-W) or remote (ssh -R)
    to_destination: int = 0
    from_destination: int = 0
    started: float = field(default_factory=time.monotonic)

    def details(self, login: str) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "direction": self.kind,
            "bytes_to_destination": self.to_destination,
            "bytes_from_destination": self.from_destination,
            "duration_seconds": round(time.monotonic() - self.started, 3),
            "login": login,
        }
