"""This replica's place among the others (docs/architecture.md "Replicas").

- It registers at start and heartbeats; a replica silent for ``dead_after`` is dead: one survivor
  clears its routes (its agents reconnect elsewhere) and every survivor is told, so the commands
  it owned are adopted (commands/service.py).
- It keeps the routing table in memory: host -> the replica holding its control stream. Replicas
  NOTIFY route changes as they write them (fleet/presence.py), so a host that connects to another
  replica is known here at once, not at the next poll; the table is re-read whole at every
  heartbeat and whenever listening restarts, as notifications are wake-ups, not the record.
- A host that appears on another replica is passed to ``on_host_moved`` listeners (the commands
  room re-sends what that host has in flight and lets its queued invocations go).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from fleetops.controller.replicas.models import (
    CONNECTED,
    DISCONNECTED,
    RELOAD,
    Replica,
    Route,
    parse_route_payload,
)
from fleetops.controller.replicas.store import ReplicaStore
from fleetops.controller.store import notify
from fleetops.controller.store.notify import ChangeListener

log = logging.getLogger(__name__)

HostMoved = Callable[[str], Awaitable[None]]
Rejoined = Callable[[], Awaitable[object]]
ReplicasDead = Callable[[list[str]], Awaitable[None]]


class ReplicaRegistry:
    def __init__(
        self,
        store: ReplicaStore,
        listener: ChangeListener,
        replica_id: str,
        address: str,
        *,
        heartbeat_interval: float,
        dead_after: float,
    ) -> None:
        self.replica_id = replica_id
        self.address = address
        self._store = store
        self._listener = listener
        self._heartbeat_interval = heartbeat_interval
        self._dead_after = timedelta(seconds=dead_after)
        self._replicas: dict[str, Replica] = {}
        self._routes: dict[str, Route] = {}
        self._dead: set[str] = set()
        self._host_moved: list[HostMoved] = []
        self._replicas_dead: list[ReplicasDead] = []
        self._rejoined: list[Rejoined] = []
        self._routes_read: list[Callable[[dict[str, Route], float], None]] = []
        self._last_beat = datetime.now(UTC)
        self._moved: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._reload_now = asyncio.Event()

    # -- listeners --------------------------------------------------------------------------
    def on_host_moved(self, callback: HostMoved) -> None:
        self._host_moved.append(callback)

    def on_replicas_dead(self, callback: ReplicasDead) -> None:
        self._replicas_dead.append(callback)

    def on_routes_read(self, callback: Callable[[dict[str, Route], float], None]) -> None:
        """Called with the whole routing table each time it is read from the database, and when
        (time.monotonic()) the read began: what was committed before then is in it."""
        self._routes_read.append(callback)

    def on_rejoined(self, callback: Rejoined) -> None:
        """Called after a heartbeat that follows a silence long enough to fence this replica
        (:meth:`fenced`): the others may have taken its work meanwhile, and reports were refused."""
        self._rejoined.append(callback)

    # -- what the others ask ----------------------------------------------------------------
    def route(self, host_id: str) -> str | None:
        """The live replica other than this one holding ``host_id``'s control stream, if any."""
        route = self._routes.get(host_id)
        if (
            route is None
            or route.replica_id == self.replica_id
            or route.replica_id in self._dead
            or route.replica_id not in self._replicas  # started after the last read: its address is not known yet
        ):
            return None
        return route.replica_id

    def address_of(self, replica_id: str) -> str | None:
        replica = self._replicas.get(replica_id)
        return replica.address if replica is not None else None

    def replicas(self) -> list[Replica]:
        return sorted(self._replicas.values(), key=lambda r: r.id)

    def alive_count(self) -> int:
        """Replicas alive, this one included."""
        return 1 + sum(1 for r in self._replicas if r != self.replica_id and r not in self._dead)

    def routed_elsewhere(self) -> int:
        """Hosts held by another live replica."""
        return sum(
            1 for r in self._routes.values() if r.replica_id != self.replica_id and r.replica_id not in self._dead
        )

    def fenced(self) -> bool:
        """Whether this replica has not reached the database for more than half of ``dead_after``:
        the others may soon count it dead and adopt its commands, so it takes no reports for them
        (the reporting replica looks for the owner again) until it has heard what they took."""
        return datetime.now(UTC) - self._last_beat > self._dead_after / 2

    def alive(self, replica_id: str) -> bool:
        replica = self._replicas.get(replica_id)
        return replica is not None and replica_id not in self._dead and replica.stopped_at is None

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Register (Conflict when a live replica elsewhere has this id), read the table, start beating."""
        await self._store.register(self.replica_id, self.address, datetime.now(UTC), self._dead_after)
        self._last_beat = datetime.now(UTC)
        self._listener.subscribe(notify.ROUTES, self._on_route_notice)
        self._listener.on_reconnect(self._reload_now.set)
        await self._refresh()
        self._tasks = [
            asyncio.create_task(self._beat(), name="replica-heartbeat"),
            asyncio.create_task(self._deliver_moves(), name="replica-host-moved"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await self._store.stopped(self.replica_id, datetime.now(UTC))
        except Exception as exc:  # the database is away: the others find this replica silent instead
            log.warning("could not record this replica's stop: %s", exc)

    # -- heartbeat, sweep, reload ------------------------------------------------------------
    async def _beat(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._reload_now.wait(), self._heartbeat_interval)
            except TimeoutError:
                pass
            self._reload_now.clear()
            try:
                now = datetime.now(UTC)
                await self._store.heartbeat(self.replica_id, self.address, now)
                silent = now - self._last_beat
                if silent > self._dead_after / 2:
                    log.warning(
                        "this replica was silent for %.0fs; checking what the others took over", silent.total_seconds()
                    )
                    for callback in self._rejoined:
                        await callback()
                self._last_beat = now  # fenced until what the others took over is let go (above)
                await self._refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is briefly away: beat again next time
                log.warning("replica heartbeat failed: %s", exc)

    async def _refresh(self) -> None:
        now = datetime.now(UTC)
        replicas = {r.id: r for r in await self._store.replicas()}
        known_before, dead_before = set(self._replicas), self._dead
        self._replicas = replicas
        # Gone: stopped cleanly, or silent for longer than dead_after (killed, or cut off).
        gone = {r.id for r in replicas.values() if r.id != self.replica_id and not r.alive(now, self._dead_after)}
        newly_gone = sorted(gone - self._dead)
        self._dead = gone
        silent = [r for r in newly_gone if replicas[r].stopped_at is None]
        if silent:
            log.warning("replicas %s stopped heartbeating; taking over their work", ", ".join(silent))
            await self._store.clear_routes(silent, f"{RELOAD}{self.replica_id}")
        # Replicas reachable now that were not at the last read (new, or back from the dead): hosts
        # they hold were unreachable until now, whatever notice came meanwhile.
        reachable_again = (
            {r for r in replicas if r not in gone and (r not in known_before or r in dead_before)}
            if known_before
            else set()
        )
        read_at = time.monotonic()
        routes = await self._store.routes()
        previous, self._routes = self._routes, routes
        for read in self._routes_read:
            read(routes, read_at)
        for host_id, route in routes.items():
            old = previous.get(host_id)
            if route.replica_id != self.replica_id and (
                route.replica_id in reachable_again
                or old is None
                or old.replica_id != route.replica_id
                or old.connected_at not in (None, route.connected_at)  # a newer link, missed while not listening
            ):
                self._moved.put_nowait(host_id)
        if newly_gone:
            for callback in self._replicas_dead:
                try:
                    await callback(newly_gone)
                except Exception:
                    log.exception("taking over the work of replicas %s failed", newly_gone)

    def _on_route_notice(self, payload: str) -> None:
        kind, replica_id, host_ids = parse_route_payload(payload)
        if kind == CONNECTED:
            if replica_id not in self._replicas:
                self._reload_now.set()  # a replica started since the last read: learn its address now
            for host_id in host_ids:
                self._routes[host_id] = Route(host_id, replica_id, None)
                if replica_id != self.replica_id:
                    self._moved.put_nowait(host_id)
        elif kind == DISCONNECTED:
            for host_id in host_ids:
                route = self._routes.get(host_id)
                if route is not None and route.replica_id == replica_id:
                    del self._routes[host_id]
        elif kind == RELOAD:
            self._reload_now.set()

    async def _deliver_moves(self) -> None:
        while True:
            host_id = await self._moved.get()
            for callback in self._host_moved:
                try:
                    await callback(host_id)
                except Exception:
                    log.exception("acting on host %s connecting elsewhere failed", host_id)

    def hosts_on(self, replica_ids: Iterable[str]) -> list[str]:
        wanted = set(replica_ids)
        return [h for h, r in self._routes.items() if r.replica_id in wanted]
