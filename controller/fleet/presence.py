"""Which hosts are connected to this controller replica, and the write-behind of that to the database.

A connect storm of a thousand agents must not become a thousand transactions: connects,
heartbeats and disconnects update memory at once and are flushed to the ``hosts`` table in one
transaction per ``flush_interval`` (write-behind). Other replicas and ``opsctl hosts list`` read
the table; a host counts as online only while ``connected`` is set *and* ``last_seen_at`` is
fresh, so a replica that dies without flushing its disconnects cannot leave hosts online forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.controller.fleet.interfaces import AgentLink
from fleetops.controller.fleet.store import HostStore

log = logging.getLogger(__name__)


_PENDING_FIELDS = ("connected", "connected_at", "last_seen_at", "peer_address", "inventory", "ssh_host_key")


@dataclass
class _Pending:
    connected: bool | None = None
    connected_at: datetime | None = None
    last_seen_at: datetime | None = None
    peer_address: str | None = None
    inventory: dict[str, Any] | None = None
    ssh_host_key: str | None = None


class PresenceTracker:
    """Live links of this replica plus a batched writer of presence to the store."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        replica_id: str,
        flush_interval: float = 0.2,
    ) -> None:
        self._store = HostStore(sessions)
        self._replica_id = replica_id
        self._flush_interval = flush_interval
        self._links: dict[str, AgentLink] = {}
        self._pending: dict[str, _Pending] = {}
        self._linked_written: dict[str, float] = {}  # host id -> when (monotonic) "connected here" was committed
        self._wakeup = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # -- live links -------------------------------------------------------------------------
    def link(self, host_id: str) -> AgentLink | None:
        return self._links.get(host_id)

    def linked_and_written_before(self, at: float) -> list[str]:
        """The hosts with a live link here whose connect was committed before ``at`` (time.monotonic())."""
        return [h for h in self._links if self._linked_written.get(h, at) < at]

    def live_links(self) -> list[AgentLink]:
        return list(self._links.values())

    @property
    def connected_count(self) -> int:
        return len(self._links)

    def connected(
        self, host_id: str, link: AgentLink, inventory: dict[str, Any] | None, ssh_host_key: str = ""
    ) -> AgentLink | None:
        """Record a new link; returns the link it replaces (the caller closes it), if any.

        ``ssh_host_key`` (from the Hello) is written with the connection, so a host shown online
        already has its SSH host key on record.
        """
        previous = self._links.get(host_id)
        self._links[host_id] = link
        now = datetime.now(UTC)
        p = self._pending.setdefault(host_id, _Pending())
        p.connected, p.connected_at, p.last_seen_at, p.peer_address = True, now, now, link.peer_address
        if inventory is not None:
            p.inventory = inventory
        if ssh_host_key:
            p.ssh_host_key = ssh_host_key
        self._wakeup.set()
        return previous if previous is not link else None

    def seen(self, host_id: str, inventory: dict[str, Any] | None = None) -> None:
        p = self._pending.setdefault(host_id, _Pending())
        p.last_seen_at = datetime.now(UTC)
        if inventory is not None:
            p.inventory = inventory
        self._wakeup.set()

    def reassert(self, host_ids: list[str]) -> None:
        """Write again that these hosts are connected here (a replica that wrongly thought this one
        dead cleared their routes); hosts whose link here is gone are left alone."""
        for host_id in host_ids:
            if host_id in self._links:
                self._pending.setdefault(host_id, _Pending()).connected = True
        self._wakeup.set()

    def disconnected(self, host_id: str, link: AgentLink) -> None:
        # A reconnect may already have replaced this link: only the current link marks offline.
        if self._links.get(host_id) is not link:
            return
        del self._links[host_id]
        self._linked_written.pop(host_id, None)
        p = self._pending.setdefault(host_id, _Pending())
        p.connected = False
        p.last_seen_at = datetime.now(UTC)
        self._wakeup.set()

    # -- write-behind -----------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="presence-writer")

    async def stop(self) -> None:
        """Mark this replica's links offline and flush everything still pending."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        now = datetime.now(UTC)
        for host_id in list(self._links):
            p = self._pending.setdefault(host_id, _Pending())
            p.connected, p.last_seen_at = False, now
        self._links.clear()
        self._linked_written.clear()
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.flush()
            except Exception:  # the database may be briefly away; keep the pending updates
                log.exception("presence flush failed; retrying")
            await asyncio.sleep(self._flush_interval)

    async def flush(self) -> None:
        """Write every pending update; returns once they (and any flush already running) are committed."""
        async with self._flush_lock:
            await self._flush_pending()

    async def _flush_pending(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            rows: list[dict[str, Any]] = []
            for host_id, p in batch.items():
                values: dict[str, Any] = {"id": host_id}
                if p.connected is not None:
                    values["connected"] = p.connected
                    values["connected_replica"] = self._replica_id if p.connected else ""
                if p.connected_at is not None:
                    values["connected_at"] = p.connected_at
                if p.last_seen_at is not None:
                    values["last_seen_at"] = p.last_seen_at
                if p.peer_address is not None:
                    values["peer_address"] = p.peer_address
                if p.inventory is not None:
                    values["inventory"] = p.inventory
                if p.ssh_host_key is not None:
                    values["ssh_host_key"] = p.ssh_host_key
                rows.append(values)
            # UPDATE by primary key: one executemany per distinct set of columns (HostStore.write_presence).
            await self._store.write_presence(rows, self._replica_id)
            written = time.monotonic()
            for host_id, p in batch.items():
                if p.connected and host_id in self._links:
                    self._linked_written[host_id] = written
        except BaseException:
            # put the batch back under anything newer that arrived meanwhile
            for host_id, p in batch.items():
                newer = self._pending.get(host_id)
                if newer is None:
                    self._pending[host_id] = p
                else:
                    for name in _PENDING_FIELDS:
                        if getattr(newer, name) is None:
                            setattr(newer, name, getattr(p, name))
            raise
