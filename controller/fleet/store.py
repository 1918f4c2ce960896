"""Hosts in the database: the one place their rows become :class:`Host` objects.

A host's status here is what the table says (deregistered; online while ``connected`` is set and
``last_seen_at`` is fresh; offline otherwise). The service adds what only this replica knows: a
host with a live link here is online whatever the table says yet (presence is written behind).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, NotFound
from fleetops.controller.events.outbox import record_event
from fleetops.controller.fleet.models import ACTIVE, DEREGISTERED, Host, HostPresence, HostStatus
from fleetops.controller.replicas.models import CONNECTED, DISCONNECTED, route_payloads
from fleetops.controller.store import notify
from fleetops.controller.store.models import HostRow

#: Host ids in one ``IN (...)`` (SQLite allows 32,766 parameters a statement).
_IDS_PER_QUERY = 1000

#: What :meth:`HostStore.retag` writes: host id -> (operator-set tags, host-set tags).
Retagging = dict[str, tuple[dict[str, str], dict[str, str]]]


async def _find(session: AsyncSession, key: str) -> HostRow:
    row = await session.get(HostRow, key)
    if row is None:
        row = (await session.execute(select(HostRow).where(HostRow.name == key))).scalars().first()
    if row is None:
        raise NotFound(f"no such host: {key}", "see the registered hosts with opsctl hosts list")
    return row


class HostStore:
    """Hosts over one database.

    Args:
        sessions: the database.
        heartbeat_interval: a host connected through another replica counts as online while its
            ``last_seen_at`` is younger than three of these.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], heartbeat_interval: float = 0.0) -> None:
        self._sessions = sessions
        self._stale_after = timedelta(seconds=3 * heartbeat_interval)

    def _status(self, state: str, connected: bool, last_seen_at: datetime | None) -> HostStatus:
        if state == DEREGISTERED:
            return HostStatus.DEREGISTERED
        if connected and last_seen_at and datetime.now(UTC) - last_seen_at < self._stale_after:
            return HostStatus.ONLINE
        return HostStatus.OFFLINE

    async def presence(self, host_ids: list[str]) -> dict[str, HostPresence]:
        """The status and last-seen time of each of ``host_ids`` that exists (a few columns, not whole rows)."""
        found: dict[str, HostPresence] = {}
        async with self._sessions() as session:
            for start in range(0, len(host_ids), _IDS_PER_QUERY):
                stmt = select(HostRow.id, HostRow.state, HostRow.connected, HostRow.last_seen_at).where(
                    HostRow.id.in_(host_ids[start : start + _IDS_PER_QUERY])
                )
                for host_id, state, connected, last_seen_at in (await session.execute(stmt)).all():
                    found[host_id] = HostPresence(self._status(state, connected, last_seen_at), last_seen_at)
        return found

    def _host(self, row: HostRow | Row[Any, *tuple[Any, ...]]) -> Host:
        status = self._status(row.state, row.connected, row.last_seen_at)
        return Host(
            id=row.id,
            name=row.name,
            status=status,
            tags=dict(row.tags or {}),
            host_tags=dict(row.host_tags or {}),
            inventory=dict(row.inventory or {}),
            activation_id=row.activation_id,
            registered_at=row.registered_at,
            last_seen_at=row.last_seen_at,
            connected_at=row.connected_at,
            certificate_expires_at=row.certificate_expires_at,
            peer_address=row.peer_address or "",
            replica=(row.connected_replica or "") if status is HostStatus.ONLINE else "",
            ssh_host_key=row.ssh_host_key or "",
        )

    # -- states (the connection gate) ---------------------------------------------------------
    async def states(self) -> dict[str, str]:
        """Every host's state (``active`` or ``deregistered``) by id."""
        async with self._sessions() as session:
            rows = (await session.execute(select(HostRow.id, HostRow.state))).all()
        return {r.id: r.state for r in rows}

    async def state(self, host_id: str) -> str | None:
        async with self._sessions() as session:
            return (await session.execute(select(HostRow.state).where(HostRow.id == host_id))).scalar()

    # -- registration -------------------------------------------------------------------------
    async def add(
        self,
        session: AsyncSession,
        host: Host,
        *,
        certificate_serial: str,
        unique_suffix: bool,
        max_name: int,
    ) -> Host:
        """Insert ``host`` in the caller's transaction, suffixing its name when taken (or asked to)."""
        name = host.name
        taken = (await session.execute(select(HostRow.id).where(HostRow.name == name))).first()
        if taken or unique_suffix:
            suffix = f"-{host.id[-6:]}"
            name = name[: max_name - len(suffix)].rstrip("._-") + suffix
        row = HostRow(
            id=host.id,
            name=name,
            state=ACTIVE,
            tags=dict(host.tags),
            host_tags=dict(host.host_tags),
            inventory=host.inventory,
            activation_id=host.activation_id,
            registered_at=host.registered_at,
            certificate_serial=certificate_serial,
            certificate_expires_at=host.certificate_expires_at,
            connected=False,
            connected_replica="",
            peer_address="",
        )
        session.add(row)
        record_event(
            session,
            "fleetops.host.registered",
            subject=f"host/{name}",
            host=name,
            data={"host": name, "host_id": host.id, "activation": host.activation_id},
        )
        return self._host(row)

    async def record_certificate(self, host_id: str, serial: str, expires_at: datetime) -> None:
        """Raises: NotFound (no such host)."""
        async with self._sessions() as session, session.begin():
            row = await session.get(HostRow, host_id)
            if row is None:
                raise NotFound(f"host {host_id} not found")
            row.certificate_serial = serial
            row.certificate_expires_at = expires_at

    # -- queries ------------------------------------------------------------------------------
    async def hosts(self, *, active_only: bool) -> list[Host]:
        """Every host (or every active one), by name."""
        async with self._sessions() as session:
            # Plain rows, no ORM objects: every fan-out resolves its target from all of them, and
            # loading ten thousand entities cost more than reading them.
            stmt = select(*HostRow.__table__.c).order_by(HostRow.name)
            if active_only:
                stmt = stmt.where(HostRow.state == ACTIVE)
            rows = (await session.execute(stmt)).all()
        return [self._host(r) for r in rows]

    async def get(self, key: str) -> Host:
        """The host with id or name ``key``. Raises: NotFound."""
        async with self._sessions() as session:
            return self._host(await _find(session, key))

    # -- changes ------------------------------------------------------------------------------
    async def retag(self, *, active_only: bool, decide: Callable[[list[Host]], Retagging]) -> None:
        """Change tags in one transaction, the hosts' rows locked where the database can.

        ``decide`` sees every host (or every active one), by name, and returns the tags to write;
        it raises to write nothing.
        """
        async with self._sessions() as session, session.begin():
            stmt = select(HostRow).order_by(HostRow.name).with_for_update()
            if active_only:
                stmt = stmt.where(HostRow.state == ACTIVE)
            rows = (await session.execute(stmt)).scalars().all()
            writes = decide([self._host(r) for r in rows])
            for row in rows:
                if row.id in writes:
                    row.tags, row.host_tags = (dict(t) for t in writes[row.id])

    async def deregister(self, key: str, by: str = "") -> Host:
        """Mark the host deregistered (for good), by *by* (``operator:NAME``), with its event.

        Raises:
            NotFound: no such host.
            Conflict: it is deregistered already (also when another replica just did it).
        """
        async with self._sessions() as session, session.begin():
            row = await _find(session, key)
            now = datetime.now(UTC)
            # Conditional, so that of two replicas deregistering at once one wins (and one event is written).
            result = await session.execute(
                update(HostRow)
                .where(HostRow.id == row.id, HostRow.state != DEREGISTERED)
                .values(state=DEREGISTERED, deregistered_at=now, connected=False)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult has rowcount
                raise Conflict(f"host {row.name} is already deregistered")
            row.state, row.deregistered_at, row.connected = DEREGISTERED, now, False
            record_event(
                session,
                "fleetops.host.deregistered",
                subject=f"host/{row.name}",
                host=row.name,
                data={"host": row.name, "host_id": row.id, "by": by},
            )
        return self._host(row)

    # -- presence (write-behind) --------------------------------------------------------------
    async def write_presence(self, rows: list[dict[str, Any]], replica_id: str) -> None:
        """Update each ``{"id": ..., column: value...}`` in one transaction (bulk UPDATE by primary key).

        A row that disconnects a host (``connected`` False) is written only while the host's route
        still names ``replica_id``: a host that already connected to another replica stays routed
        there. The route changes are announced to the other replicas (NOTIFY, sent at commit).
        """
        connects = [r["id"] for r in rows if r.get("connected") is True]
        disconnects = [r for r in rows if r.get("connected") is False]
        others = [r for r in rows if r.get("connected") is not False]
        table = cast(Table, HostRow.__table__)
        async with self._sessions() as session, session.begin():
            await self._presence_transitions(session, connects, [r["id"] for r in disconnects], replica_id)
            # One Core executemany per set of columns (not the ORM's bulk UPDATE, whose per-row work
            # was most of a flush: ten thousand agents send a thousand heartbeats a second).
            for columns, group in _by_columns(others).items():
                plain = update(table).where(table.c.id == bindparam("b_id")).values(_bound(columns))
                await session.execute(plain, [{f"b_{k}": v for k, v in r.items()} for r in group])
            for columns, group in _by_columns(disconnects).items():
                guarded = (
                    update(table)
                    .where(
                        table.c.id == bindparam("b_id"),
                        or_(table.c.connected_replica == replica_id, table.c.connected_replica == ""),
                    )
                    .values(_bound(columns))
                )
                await session.execute(guarded, [{f"b_{k}": v for k, v in r.items()} for r in group])
            for kind, host_ids in ((CONNECTED, connects), (DISCONNECTED, [r["id"] for r in disconnects])):
                for payload in route_payloads(kind, replica_id, host_ids, notify.MAX_PAYLOAD_BYTES):
                    await notify.notify(session, notify.ROUTES, payload)

    async def _presence_transitions(
        self, session: AsyncSession, connects: list[str], disconnects: list[str], replica_id: str
    ) -> None:
        """Flip ``connected`` where it changes, with a ``host.online``/``host.offline`` event per flip.

        Each flip is one ``UPDATE ... WHERE connected IS NOT <new> RETURNING``: only a row this
        statement changed gets an event, so a heartbeat, a reconnect before the disconnect was
        written, or two replicas writing one host give none (or one). The batch's other columns
        are written after, as before.
        """
        flips = (
            (connects, True, {"connected_replica": replica_id}, "fleetops.host.online"),
            (disconnects, False, {"connected_replica": ""}, "fleetops.host.offline"),
        )
        for host_ids, connected, values, event in flips:
            for start in range(0, len(host_ids), _IDS_PER_QUERY):
                stmt = update(HostRow).where(
                    HostRow.id.in_(host_ids[start : start + _IDS_PER_QUERY]),
                    HostRow.connected.is_not(connected),
                    HostRow.state == ACTIVE,
                )
                if not connected:  # as the disconnect itself: only while the route names this replica
                    stmt = stmt.where(or_(HostRow.connected_replica == replica_id, HostRow.connected_replica == ""))
                stmt = stmt.values(connected=connected, **values).returning(HostRow.id, HostRow.name)
                for host_id, name in (await session.execute(stmt)).all():
                    record_presence_event(session, event, host_id, name, replica_id)


def record_presence_event(
    session: AsyncSession, type: str, host_id: str, name: str, replica: str, why: str = ""
) -> None:
    """A ``host.online`` or ``host.offline`` event in *session*'s transaction (docs/events.md)."""
    data = {"host": name, "host_id": host_id, "replica": replica}
    if why:
        data["reason"] = why
    record_event(session, type, subject=f"host/{name}", host=name, data=data)


def _by_columns(rows: list[dict[str, Any]]) -> dict[frozenset[str], list[dict[str, Any]]]:
    """``rows`` grouped by the columns they set (besides ``id``); a row that sets none is left out."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        columns = frozenset(k for k in row if k != "id")
        if columns:
            groups.setdefault(columns, []).append(row)
    return groups


def _bound(columns: frozenset[str]) -> dict[str, Any]:
    return {c: bindparam(f"b_{c}") for c in columns}
