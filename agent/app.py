"""The agent's composition root: builds the link (and, later, work handlers) from settings."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from fleetops.agent.link import ControllerLink
from fleetops.agent.state import AgentState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentSettings:
    state_dir: Path


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.state = AgentState(settings.state_dir)
        self.link = ControllerLink(self.state)

    async def run(self) -> None:
        """Run until SIGINT/SIGTERM.

        Raises:
            HostRevoked: the controller refused this host; the caller exits without a restart loop.
        """
        self.state.load()  # fail fast with a clear message when not registered
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.link.stop)
        await self.link.run()
        log.info("agent stopped")
