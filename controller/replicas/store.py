"""Rows of the replica registry (``replicas``) and the routing table (``hosts.connected_replica``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict
from fleetops.controller.fleet.models import ACTIVE
from fleetops.controller.fleet.store import record_presence_event
from fleetops.controller.replicas.models import RELOAD, Replica, Route
from fleetops.controller.store import notify
from fleetops.controller.store.models import HostRow, ReplicaRow


def _replica(row: ReplicaRow) -> Replica:
    return Replica(
        id=row.id,
        address=row.address,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        stopped_at=row.stopped_at,
    )


class ReplicaStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def register(self, replica_id: str, address: str, now: datetime, dead_after: timedelta) -> None:
        """Record this replica as started at ``address``.

        Raises:
            Conflict: a live replica elsewhere already uses ``replica_id``.
        """
        async with self._sessions() as session, session.begin():
            row = await session.get(ReplicaRow, replica_id, with_for_update=True)
            if row is None:
                session.add(ReplicaRow(id=replica_id, address=address, started_at=now, heartbeat_at=now))
            elif row.address != address and _replica(row).alive(now, dead_after):
                raise Conflict(
                    f"replica id {replica_id!r} is in use by a live replica at {row.address}",
                    "give each replica its own --replica-id (serve --replica-id NAME)",
                )
            else:
                row.address, row.started_at, row.heartbeat_at, row.stopped_at = address, now, now, None
            # The others re-read the registry now, so they know this replica's address before any
            # host connecting here is routed to it.
            await notify.notify(session, notify.ROUTES, f"{RELOAD}{replica_id}")

    async def heartbeat(self, replica_id: str, address: str, now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get(ReplicaRow, replica_id)
            if row is None:  # removed meanwhile (an operator cleaning up): be known again
                session.add(ReplicaRow(id=replica_id, address=address, started_at=now, heartbeat_at=now))
            else:
                row.heartbeat_at, row.stopped_at = now, None

    async def stopped(self, replica_id: str, now: datetime) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(update(ReplicaRow).where(ReplicaRow.id == replica_id).values(stopped_at=now))

    async def replicas(self) -> list[Replica]:
        async with self._sessions() as session:
            rows = (await session.execute(select(ReplicaRow).order_by(ReplicaRow.id))).scalars().all()
        return [_replica(r) for r in rows]

    async def routes(self) -> dict[str, Route]:
        """Every connected host's route."""
        stmt = select(HostRow.id, HostRow.connected_replica, HostRow.connected_at).where(
            HostRow.connected.is_(True), HostRow.connected_replica != ""
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return {host_id: Route(host_id, replica, at) for host_id, replica, at in rows}

    async def clear_routes(self, replica_ids: Iterable[str], payload: str) -> int:
        """Mark the hosts held by dead replicas offline (their agents reconnect elsewhere); how many."""
        ids = list(replica_ids)
        if not ids:
            return 0
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(HostRow)
                .where(HostRow.connected.is_(True), HostRow.connected_replica.in_(ids))
                .values(connected=False, connected_replica="")
                .returning(HostRow.id, HostRow.name, HostRow.state)
            )
            cleared = result.all()
            for host_id, name, state in cleared:  # each a host going offline: its event
                if state == ACTIVE:
                    record_presence_event(
                        session, "fleetops.host.offline", host_id, name, "", "its controller replica stopped answering"
                    )
            await notify.notify(session, notify.ROUTES, payload)
        return len(cleared)
