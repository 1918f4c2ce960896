"""Reading the events outbox (``events``) back in tests: from an engine, or a controller's database.

``stored_events`` is for unit tests that hold an engine; ``controller_events`` reads a running (or
stopped) controller's database by its URL or state directory, the way an integration test asserts
what the controller emitted; ``wait_for_events`` polls it until the events a test expects are there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.controller.store import database
from fleetops.controller.store.models import EventRow


@dataclass(frozen=True)
class StoredEvent:
    type: str
    subject: str
    host: str | None
    data: dict[str, Any]


async def stored_events(engine: AsyncEngine, prefix: str = "") -> list[StoredEvent]:
    """Every event in the outbox (of types starting with *prefix*), in insertion order."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(EventRow).order_by(EventRow.id))).all()
    found = [StoredEvent(r.type, r.subject, r.host_name, dict(r.data)) for r in rows]
    return [e for e in found if e.type.startswith(prefix)]


def controller_events(where: str | Path, prefix: str = "") -> list[StoredEvent]:
    """The events in a controller's database: *where* is its database URL or its state directory."""
    url = str(where) if "://" in str(where) else f"sqlite+aiosqlite:///{Path(where) / 'fleetops.db'}"

    async def read() -> list[StoredEvent]:
        engine = database.create_engine(url)
        try:
            return await stored_events(engine, prefix)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def wait_for_events(
    where: str | Path,
    until: Callable[[list[StoredEvent]], bool],
    prefix: str = "",
    timeout: float = 20.0,
) -> list[StoredEvent]:
    """Poll the controller's events until ``until(events)`` holds; the events then. Raises AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        events = controller_events(where, prefix)
        if until(events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"events never matched within {timeout}s: {events}")
        time.sleep(0.2)


def of_type(events: list[StoredEvent], type: str) -> list[StoredEvent]:
    return [e for e in events if e.type == type]
