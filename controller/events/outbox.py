"""Writing events: in the caller's transaction, so an event exists exactly when its change does.

A service that changes state calls :func:`record_event` with the session it writes the change
with, before it commits: a rollback takes the event with it, a commit makes both durable. A crash
after the commit loses nothing: the dispatcher places and delivers what it finds
(:mod:`fleetops.controller.events.dispatch`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from fleetops.controller.events.catalog import EVENT_TYPES
from fleetops.controller.store.models import EventRow

#: Called when an event is recorded in this process: the dispatcher looks at once instead of at its
#: next poll (it looks again at the poll anyway: the transaction may not have committed yet).
_wakers: set[Callable[[], None]] = set()


def on_record(waker: Callable[[], None]) -> Callable[[], None]:
    """Call *waker* (which must not block) each time an event is recorded; returns the undo."""
    _wakers.add(waker)
    return lambda: _wakers.discard(waker)


def record_event(
    session: AsyncSession,
    type: str,
    *,
    subject: str,
    data: dict[str, Any],
    host: str | None = None,
    only_subscription: str | None = None,
) -> str:
    """Add an event to *session*'s transaction; its id (the idempotency key of its deliveries).

    ``subject`` names what the event is about (``host/web-1``, ``command/c-...``); ``host`` is the
    host's name when the event concerns one host (what ``--target`` selectors match).
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}: add it to events.catalog.EVENT_TYPES and docs/events.md")
    event_id = str(uuid.uuid4())
    session.add(
        EventRow(
            event_id=event_id,
            type=type,
            subject=subject[:300],
            host_name=host,
            time=datetime.now(UTC),
            data=data,
            only_subscription=only_subscription,
        )
    )
    for waker in list(_wakers):
        waker()
    return event_id
