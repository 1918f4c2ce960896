"""Wake-ups between controller replicas: PostgreSQL LISTEN/NOTIFY.

A replica that changes something another replica acts on (a host's route, a cancel) writes the
change and, in the same transaction, a NOTIFY on a channel named here; the others LISTEN on one
dedicated connection each and get the payload once the transaction commits, in commit order.
Notifications are wake-ups, never the record: the rows are, so a replica whose listening
connection was lost re-reads what it needs (``on_reconnect``) instead of trusting that it heard
everything. SQLite is one replica: there is nobody to wake, and :func:`notify` does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

log = logging.getLogger(__name__)

#: Host routes changed (payload: see fleetops.controller.replicas.service.route_payloads).
ROUTES = "fleetops_routes"
#: A command changed in a way its owner replica or watchers elsewhere act on (payload: "<kind> <command id>").
COMMANDS = "fleetops_commands"

#: PostgreSQL's limit on a NOTIFY payload is 8000 bytes; payloads are cut into pieces below it.
MAX_PAYLOAD_BYTES = 7000

# Seconds between checks that the listening connection still answers (a partition sends no RST).
_PROBE_INTERVAL = 5.0
_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


def is_postgresql(session_or_engine: AsyncSession | AsyncEngine) -> bool:
    bind = session_or_engine.bind if isinstance(session_or_engine, AsyncSession) else session_or_engine
    return bind is not None and bind.dialect.name == "postgresql"


async def notify(session: AsyncSession, channel: str, payload: str) -> None:
    """Queue a NOTIFY in ``session``'s transaction (sent at commit); nothing on SQLite."""
    if is_postgresql(session):
        await session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


class ChangeListener:
    """One LISTEN connection per replica, re-established when lost; callbacks run on the event loop.

    ``subscribe(channel, callback)`` before :meth:`start`; ``callback(payload)`` must not block.
    ``on_reconnect(callback)`` is called each time listening (re)starts, after the LISTENs are in
    place, so the callee can re-read the state it may have missed.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._channels: dict[str, list[Callable[[str], None]]] = {}
        self._reconnect: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return is_postgresql(self._engine)

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        self._channels.setdefault(channel, []).append(callback)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnect.append(callback)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _deliver(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        for callback in self._channels.get(channel, ()):
            try:
                callback(payload)
            except Exception:
                log.exception("a %s listener failed", channel)

    async def _run(self) -> None:
        import asyncpg  # type: ignore[import-untyped]  # no stubs; only needed on PostgreSQL

        dsn = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        failures = 0
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(dsn, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                for channel in self._channels:
                    await conn.add_listener(channel, self._deliver)
                failures = 0
                self.listening.set()
                for callback in self._reconnect:
                    try:
                        callback()
                    except Exception:
                        log.exception("a reconnect callback failed")
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), _PROBE_INTERVAL)
                    except TimeoutError:
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), _PROBE_INTERVAL)
                log.warning("the database closed the listening connection; listening again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # OSError, asyncpg errors, a probe timeout: listen again
                log.warning("listening for changes from other replicas failed (%s); retrying", exc)
            finally:
                self.listening.clear()
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(_RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)])
            failures += 1


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    """A termination listener that sets ``event``."""
    return lambda _conn: event.set()
