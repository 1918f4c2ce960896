"""A pass that runs at start, every ``interval`` seconds, and once more (bounded) at a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class PeriodicPass:
    """Base of the audit exporter and checkpointer: subclasses set the attributes and define ``run_once``."""

    _task: asyncio.Task[None] | None
    _interval: float
    _final_timeout: float
    _name: str = "periodic pass"

    async def run_once(self) -> Any:
        raise NotImplementedError

    def start(self) -> None:
        """Run a pass now, then every ``interval`` seconds."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        """Stop the periodic passes, then make one last bounded attempt (a clean shutdown's)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.run_once(), self._final_timeout)

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)
