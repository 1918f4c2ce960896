"""What the windows room needs from rooms that come after it: starting runbooks (automation)."""

from __future__ import annotations

from typing import Protocol


class RunbookLauncher(Protocol):
    """Starts runbook executions for window tasks, and tells how they ended (controller/automation)."""

    async def launch(self, author: str, runbook: str, parameters: dict[str, str], via: str) -> str:
        """Start *runbook* (NAME or NAME:VERSION) as *author*; the execution id.

        Raises:
            InvalidInput, NotFound: not a runbook, or parameters it refuses.
        """
        ...

    async def outcome(self, execution_id: str) -> tuple[bool, str, str]:
        """(ended, status, reason) of an execution; status is success, failed or cancelled once ended."""
        ...

    async def cancel_if_running(self, execution_id: str) -> None:
        """Ask the execution to stop (nothing when it has ended)."""
        ...
