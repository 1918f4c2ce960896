"""Seams of the sessions room."""

from __future__ import annotations

from typing import Protocol

from fleetops.controller.sessions.models import SessionRequest


class SessionOpener(Protocol):
    """Asks an agent connected to this replica to start a session (over its control stream)."""

    async def open_session(self, host_id: str, session_id: str, request: SessionRequest) -> bool:
        """False when the host has no live link here (nothing was sent)."""
        ...
