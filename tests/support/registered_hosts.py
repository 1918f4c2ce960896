"""A host registered in a database as enrollment registers it, for the unit tests of the rooms that need one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fleetops.controller.fleet.presence import PresenceTracker
from fleetops.controller.fleet.service import FleetService, new_host_id


async def add_host(
    sessions: Any, name: str, *, fleet: FleetService | None = None, tags: dict[str, str] | None = None
) -> str:
    """Register ``name`` (through ``fleet``, else a FleetService of its own) in one transaction; its id."""
    fleet = fleet or FleetService(sessions, PresenceTracker(sessions, "setup"), heartbeat_interval=5.0)
    host_id = new_host_id()
    async with sessions() as session, session.begin():
        await fleet.add_host(
            session,
            host_id=host_id,
            hostname=name,
            tags=dict(tags or {}),
            inventory={"os_family": "linux"},
            activation_id="act-1",
            certificate_serial="1f",
            certificate_expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    return host_id
