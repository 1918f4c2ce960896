"""Seams of interactive sessions on the agent: a terminal running a shell, and how one is started.

Two implementations share these Protocols: :mod:`~fleetops.agent.sessions.posix_pty` (a real
pseudo-terminal on Linux and macOS) and :mod:`~fleetops.agent.sessions.windows_conpty` (ConPTY via
pywinpty). The session handler sees only :class:`Terminal`; which one it holds is decided once, by
:func:`fleetops.agent.sessions.default_terminal_factory`.

A terminal is used by at most two tasks at a time: one calling :meth:`Terminal.read` in a loop, one
calling :meth:`Terminal.write`; ``resize``, ``terminate`` and ``close`` may be called from either.

Errors (from :mod:`fleetops.common.errors`) raised by :meth:`TerminalFactory.spawn`:

- ``InvalidInput`` — a malformed request (window size, terminal type, command, environment).
- ``NotFound`` — no such user, or the user's shell does not exist.
- ``PermissionDenied`` — the session may not run as that user here (the agent is not root, the
  account has no login shell, or the platform cannot switch users yet).
- ``Unavailable`` — the host has no pseudo-terminal (or process) to spare; retrying may succeed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from fleetops.v1.session_pb2 import SessionActivity

#: Output is read in chunks of at most this many bytes (one chunk becomes one transcript event).
READ_CHUNK_SIZE = 64 * 1024
#: Seconds :meth:`Terminal.terminate` leaves the session to end by itself before killing it.
DEFAULT_HANGUP_GRACE = 5.0
#: Exit code offset for a process killed by a signal, as shells report it (SIGHUP -> 129).
SIGNAL_EXIT_BASE = 128


class Terminal(Protocol):
    """A program (normally a shell) running on a terminal, seen from the terminal's other end."""

    @property
    def pid(self) -> int:
        """The process id of the program started on the terminal (the session leader on POSIX)."""
        ...

    async def read(self) -> bytes | SessionActivity:
        """The next output, at most :data:`READ_CHUNK_SIZE` bytes; ``b""`` once the terminal is closed.

        An SSH connection's terminal (``agent/ssh``) also returns what happened inside the
        connection (``SessionActivity``), in order with its bytes; a pseudo-terminal never does.

        Output ends when every process holding the terminal has exited or closed it (a background
        job can keep it open after the shell has exited), or after :meth:`close`.

        Raises:
            Unavailable: the terminal failed in an unexpected way (reported, not retried).
        """
        ...

    async def write(self, data: bytes) -> None:
        """Send ``data`` as if typed; ``b"\\x03"`` is Ctrl-C.

        Returns once the terminal took every byte: while the program does not read its input,
        the call waits (that is the backpressure the caller's flow control builds on). Input that
        arrives after the session ended is dropped, since nothing could ever read it.

        Raises:
            Unavailable: the terminal failed in an unexpected way.
        """
        ...

    def resize(self, cols: int, rows: int) -> None:
        """Set the window size; the foreground program is told (SIGWINCH on POSIX).

        Raises:
            InvalidInput: a dimension is out of range.
        """
        ...

    async def wait(self) -> int:
        """Wait for the program to exit and return its exit code.

        A program killed by a signal reports ``128 + signal`` (129 after a hangup), as shells do.
        """
        ...

    def terminate(self) -> None:
        """Hang up the session: ask every process of it to end, and kill what is left after a grace.

        Returns at once; :meth:`wait` tells when the program has ended. Calling it again does nothing.
        """
        ...

    def close(self) -> None:
        """Release the terminal; a session still running is terminated. Idempotent.

        Pending and later reads return ``b""``; pending and later writes drop their data.
        """
        ...


class TerminalFactory(Protocol):
    """Starts programs on new terminals, on the operating system the agent runs on."""

    async def spawn(
        self,
        user: str | None,
        command: str | None,
        cols: int,
        rows: int,
        term: str,
        env: Mapping[str, str],
    ) -> Terminal:
        """Start ``user``'s shell on a new terminal of ``cols`` x ``rows``.

        Args:
            user: the account to run as; ``None`` or ``""`` means the agent's own account.
            command: run this through the shell and end with it, instead of an interactive shell.
            cols: window width in character cells.
            rows: window height in character cells.
            term: the terminal type the operator's terminal emulates (the ``TERM`` variable).
            env: extra environment variables (``LANG``, ``LC_*``...); which ones an operator may send
                is the caller's policy. They cannot replace the account's identity (``HOME``, ``USER``,
                ``LOGNAME``, ``SHELL``) nor ``TERM``.

        Raises:
            InvalidInput: a malformed size, terminal type, command or environment.
            NotFound: no such user, or the user's shell does not exist.
            PermissionDenied: the session may not run as ``user`` here.
            Unavailable: no pseudo-terminal or process could be created now.
        """
        ...
