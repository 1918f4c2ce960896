"""The errors providers raise about the tools they run, worded the same way for every tool."""

from __future__ import annotations

from collections.abc import Sequence

from fleetops.agent.patching.interfaces import CommandResult
from fleetops.common.errors import InvalidInput, Unavailable


def last_lines(text: str, count: int = 5) -> str:
    """The last ``count`` non-blank lines of ``text``, joined with " | " (for one-line messages)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def command_text(argv: Sequence[str]) -> str:
    """``argv`` as one line, for messages."""
    return " ".join(argv)


def unreadable_output(command: str, detail: str) -> InvalidInput:
    """The output of ``command`` is not in a format the parser knows (``detail`` says where)."""
    return InvalidInput(
        f"cannot read the output of `{command}`: {detail}",
        f"run `{command}` by hand on the host; if its output looks normal, report it so the parser can learn it",
    )


def command_failed(command: str, result: CommandResult, hint: str = "") -> Unavailable:
    """``command`` exited with a status that means failure."""
    detail = last_lines(result.stderr) or last_lines(result.stdout) or "no output"
    return Unavailable(
        f"`{command}` failed with exit code {result.exit_code}: {detail}",
        hint or f"run `{command}` by hand on the host to see the whole error",
    )
