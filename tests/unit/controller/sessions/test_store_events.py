"""A session's events: started when it becomes active, ended when an active one ends, once each.

The real session store on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.controller.sessions.store import SessionStore
from fleetops.controller.store import database

from events import stored_events


@pytest.fixture
def store(engine: AsyncEngine) -> SessionStore:
    return SessionStore(database.session_factory(engine))


async def new_session(store: SessionStore, id: str = "s-1") -> None:
    await store.create(
        id=id, host_id="h1", host_name="web-1", operator="alice", run_as="deploy", command="", term="xterm",
        cols=80, rows=24, broker="r1",
    )  # fmt: skip


SESSION = {"session_id": "s-1", "host": "web-1", "host_id": "h1", "operator": "alice", "run_as": "deploy"}


async def test_started_then_ended_once_each(store: SessionStore, engine: AsyncEngine) -> None:
    await new_session(store)
    assert await store.activate("s-1")
    assert not await store.activate("s-1")  # resumed, not started again
    started = (await store.get("s-1")).started_at
    ended_at = started + timedelta(seconds=90)
    assert await store.end("s-1", ended_at=ended_at, end_reason="exited", end_message="", exit_code=3)
    assert not await store.end("s-1", ended_at=datetime.now(UTC), end_reason="controller_restart")
    events = await stored_events(engine)
    assert [(e.type, e.subject, e.host) for e in events] == [
        ("fleetops.session.started", "session/s-1", "web-1"),
        ("fleetops.session.ended", "session/s-1", "web-1"),
    ]
    assert events[0].data == {**SESSION, "kind": "terminal"}
    assert events[1].data == {
        **SESSION,
        "kind": "terminal",
        "reason": "exited",
        "message": "",
        "exit_code": 3,
        "duration_seconds": 90.0,
    }
    session = await store.get("s-1")
    assert session.end_reason == "exited" and session.exit_code == 3


async def test_a_session_that_never_started_has_no_events(store: SessionStore, engine: AsyncEngine) -> None:
    await new_session(store)
    assert await store.end("s-1", ended_at=datetime.now(UTC), end_reason="refused", end_message="no such user")
    assert not await store.activate("s-1")
    assert await stored_events(engine) == []
