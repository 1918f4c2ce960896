"""Interactive sessions on the agent: a shell on a pseudo-terminal, one interface on every OS.

Modules, from the bottom up:

``interfaces``      the ``Terminal`` and ``TerminalFactory`` Protocols and the errors they raise
``validation``      checks of a session request shared by every platform
``posix_launch``    which shell, environment and directory a POSIX session starts with (pure)
``posix_pty``       POSIX implementation: a real pty, the shell as its session leader
``windows_conpty``  Windows implementation: ConPTY through pywinpty (imported only when used)
``transport``       the session stream to the controller (``AgentService.SessionStream`` on a channel
                    of its own) behind a small Protocol, so the runner is tested without gRPC
``runner``          ``SessionManager`` (the link's ``open_session`` handler) and ``SessionRunner`` (one
                    session: spawn, attach, output window, input, resume, exit); sees only ``Terminal``
"""

from __future__ import annotations

import os

from fleetops.agent.sessions.interfaces import (
    DEFAULT_HANGUP_GRACE,
    READ_CHUNK_SIZE,
    SIGNAL_EXIT_BASE,
    Terminal,
    TerminalFactory,
)

__all__ = [
    "DEFAULT_HANGUP_GRACE",
    "READ_CHUNK_SIZE",
    "SIGNAL_EXIT_BASE",
    "Terminal",
    "TerminalFactory",
    "default_terminal_factory",
]


def default_terminal_factory() -> TerminalFactory:
    """The implementation for the OS the agent runs on (pywinpty is imported on first spawn only)."""
    if os.name == "nt":
        from fleetops.agent.sessions.windows_conpty import ConptyTerminalFactory

        return ConptyTerminalFactory()
    from fleetops.agent.sessions.posix_pty import PosixTerminalFactory

    return PosixTerminalFactory()
