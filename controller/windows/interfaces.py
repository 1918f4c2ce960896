"""What the windows and associations rooms need from rooms that come after them: starting runbooks."""

from __future__ import annotations

from typing import Protocol

#: Every runbook execution's id starts so (``auto-…``): a task or association run holding one in
#: place of a command id is a runbook's.
EXECUTION_PREFIX = "auto-"


class RunbookLauncher(Protocol):
    """Starts runbook executions for window tasks and associations, and tells how they ended (controller/automation)."""

    async def launch(
        self, author: str, runbook: str, parameters: dict[str, str], via: str, *, execution_id: str = ""
    ) -> str:
        """Start *runbook* (NAME or NAME:VERSION) as *author*; the execution id (*execution_id*
        when one was chosen beforehand, so that the caller could record it first).

        Raises:
            InvalidInput, NotFound: not a runbook, or parameters it refuses.
        """
        ...

    async def outcome(self, execution_id: str) -> tuple[bool, str, str]:
        """(ended, status, reason) of an execution; status is success, failed or cancelled once ended.

        Raises:
            NotFound: no such execution (it was never started).
        """
        ...

    async def cancel_if_running(self, execution_id: str) -> None:
        """Ask the execution to stop (nothing when it has ended)."""
        ...
