"""Seams of the fleet room."""

from __future__ import annotations

from typing import Protocol


class AgentLink(Protocol):
    """A live control stream to one agent, as the fleet room sees it (the rpc layer implements it)."""

    peer_address: str

    async def close(self, reason: str, *, revoked: bool) -> None:
        """Tell the agent why, then end the stream. Idempotent."""
