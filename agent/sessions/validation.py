"""Checks of a session request shared by every platform, so both refuse the same requests alike."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from fleetops.agent.sessions.interfaces import SIGNAL_EXIT_BASE
from fleetops.common.errors import InvalidInput

#: Longest ``TERM`` accepted; real terminal type names are far shorter.
MAX_TERM_LENGTH = 64


def check_term(term: str) -> None:
    """Refuse a terminal type that could not be a ``TERM`` value.

    Raises:
        InvalidInput: ``term`` is empty, too long, or has characters other than printable ASCII
            without spaces (terminfo names are like ``xterm-256color``).
    """
    if not isinstance(term, str) or not term or len(term) > MAX_TERM_LENGTH:
        raise InvalidInput(f"invalid terminal type {term!r}", "use a terminfo name such as xterm-256color")
    if not term.isascii() or not term.isprintable() or " " in term or "=" in term:
        raise InvalidInput(f"invalid terminal type {term!r}", "use a terminfo name such as xterm-256color")


def check_command(command: str | None) -> None:
    """Refuse a command that cannot be passed to a program.

    Raises:
        InvalidInput: ``command`` is empty or contains a NUL character.
    """
    if command is None:
        return
    if not isinstance(command, str) or not command.strip():
        raise InvalidInput("the session command is empty", "omit the command for an interactive shell")
    if "\0" in command:
        raise InvalidInput("the session command contains a NUL character")


def check_environment(env: Mapping[str, str], reserved: Collection[str]) -> None:
    """Refuse variables that cannot be set, or that would misstate who the session runs as.

    Args:
        env: the extra variables asked for.
        reserved: names the platform sets itself (compared case-insensitively: Windows' names are).

    Raises:
        InvalidInput: a name is empty or has ``=`` or NUL, a value has NUL, or a name is reserved.
    """
    reserved_folded = {name.casefold() for name in reserved}
    for name, value in env.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise InvalidInput(f"invalid environment variable name {name!r}")
        if not isinstance(value, str) or "\0" in value:
            raise InvalidInput(f"invalid value for environment variable {name}: it must be text without NUL")
        if name.casefold() in reserved_folded:
            raise InvalidInput(
                f"environment variable {name} cannot be set for a session",
                f"the agent sets {', '.join(sorted(reserved))} itself from the account and the terminal",
            )


def exit_code_from_returncode(returncode: int) -> int:
    """A shell-style exit code: ``subprocess``'s ``-N`` for "killed by signal N" becomes ``128 + N``."""
    return SIGNAL_EXIT_BASE - returncode if returncode < 0 else returncode
