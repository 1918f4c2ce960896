"""The command store's events: written with the final states they describe, once per transition.

On SQLite and PostgreSQL, with the real store: a command ended twice, a result for an invocation
already final, and a transaction rolled back leave no (second) event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.common.states import CommandStatus, InvocationState
from fleetops.controller.commands.models import Command, CommandSpec
from fleetops.controller.commands.store import InvocationStore, command_event_data
from fleetops.controller.store import database
from fleetops.controller.store.models import CommandRow

from events import of_type, stored_events

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(engine: AsyncEngine) -> AsyncIterator[InvocationStore]:
    store = InvocationStore(database.session_factory(engine))
    store.start()
    yield store
    await store.stop()


def command(spec: CommandSpec, id: str = "c-1", total: int = 2) -> Command:
    return Command(
        id=id, created_at=NOW, created_by="operator:alice", spec=spec, target="role=web", concurrency_limit=50,
        error_limit=0, status=CommandStatus.IN_PROGRESS, total=total, counts={}, finished_at=None,
        cancel_requested=False,
    )  # fmt: skip


async def two_hosts(store: InvocationStore, spec: CommandSpec | None = None, id: str = "c-1") -> None:
    invocations = [(f"{id}-i1", "h1", "web-1"), (f"{id}-i2", "h2", "web-2")]
    await store.create(command(spec or CommandSpec(argv=("echo", "hi there")), id), invocations, NOW)


def final(state: InvocationState, exit_code: int | None, reason: str = "") -> dict[str, object]:
    return {"state": state.value, "exit_code": exit_code, "reason": reason, "finished_at": NOW}


async def test_a_command_ending_writes_one_event_with_its_counts(store: InvocationStore, engine: AsyncEngine) -> None:
    await two_hosts(store)
    await store.finish("c-1-i1", final(InvocationState.SUCCESS, 0))
    await store.finish("c-1-i2", final(InvocationState.FAILED, 3, "exit status 3"))
    assert await store.finish_command("c-1", CommandStatus.FAILED)
    assert not await store.finish_command("c-1", CommandStatus.FAILED)  # a second finish: no transition
    events = of_type(await stored_events(engine), "fleetops.command.failed")
    assert len(events) == 1
    assert events[0].subject == "command/c-1" and events[0].host is None
    assert events[0].data == {
        "command_id": "c-1",
        "what": "echo 'hi there'",
        "document": "",
        "started_by": "operator:alice",
        "target": "role=web",
        "comment": "",
        "status": "failed",
        "total": 2,
        "counts": {"failed": 1, "success": 1},
    }
    assert (await store.command("c-1")).status is CommandStatus.FAILED  # type: ignore[union-attr]


async def test_a_succeeded_command_and_what_it_ran(store: InvocationStore, engine: AsyncEngine) -> None:
    await two_hosts(store, CommandSpec(document="restart-web:2"))
    for i in ("c-1-i1", "c-1-i2"):
        await store.finish(i, final(InvocationState.SUCCESS, 0))
    await store.finish_command("c-1", CommandStatus.SUCCESS)
    (event,) = await stored_events(engine, "fleetops.command.")
    assert event.type == "fleetops.command.succeeded"
    assert event.data["what"] == "doc restart-web:2" and event.data["counts"] == {"success": 2}
    # A cancelled command is a failed one (its status says why); a script is named, never quoted.
    row = CommandRow(id="c-9", created_by="a", script=b"secret=1\n", target="", total=0, argv=[], document="")
    data = command_event_data(row, CommandStatus.CANCELLED, {})
    assert data["what"] == "script (9 bytes)" and data["status"] == "cancelled"


async def test_failed_and_timed_out_invocations_have_an_event_each_once(
    store: InvocationStore, engine: AsyncEngine
) -> None:
    await two_hosts(store)
    await store.finish("c-1-i1", final(InvocationState.FAILED, 2, "boom"))
    await store.finish("c-1-i2", final(InvocationState.TIMED_OUT, None, "timed out after 5s"))
    # The same results again (an agent that re-sends), and a controller timeout after the fact.
    await store.finish("c-1-i1", final(InvocationState.FAILED, 2, "boom"))
    await store.finish_now(["c-1-i1", "c-1-i2"], InvocationState.FAILED, "no result from the host in time")
    events = await stored_events(engine, "fleetops.invocation.")
    assert [(e.type, e.subject, e.host) for e in events] == [
        ("fleetops.invocation.failed", "host/web-1", "web-1"),
        ("fleetops.invocation.timed_out", "host/web-2", "web-2"),
    ]
    assert events[0].data == {
        "command_id": "c-1",
        "invocation_id": "c-1-i1",
        "host": "web-1",
        "status": "failed",
        "exit_code": 2,
        "error": "boom",
    }
    assert events[1].data["exit_code"] is None and events[1].data["status"] == "timed_out"


async def test_a_success_has_no_invocation_event(store: InvocationStore, engine: AsyncEngine) -> None:
    await two_hosts(store)
    await store.finish("c-1-i1", final(InvocationState.SUCCESS, 0))
    await store.finish_now(["c-1-i2"], InvocationState.UNDELIVERABLE, "offline")
    assert await stored_events(engine, "fleetops.invocation.") == []


async def test_controller_decided_failures_have_events(store: InvocationStore, engine: AsyncEngine) -> None:
    await two_hosts(store)
    await store.finish("c-1-i1", final(InvocationState.SUCCESS, 0))
    await store.finish_now(["c-1-i1", "c-1-i2"], InvocationState.FAILED, "no result from the host in time")
    (event,) = await stored_events(engine, "fleetops.invocation.")
    assert event.host == "web-2" and event.data["error"] == "no result from the host in time"


async def test_a_batch_that_rolls_back_leaves_no_event(
    store: InvocationStore, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await two_hosts(store)
    write_finals = store._write_finals

    async def write_then_fail(*args: Any) -> None:
        await write_finals(*args)  # the event is added to the transaction, which then fails
        raise RuntimeError("the database went away")

    monkeypatch.setattr(store, "_write_finals", write_then_fail)
    with pytest.raises(RuntimeError):
        await store.finish("c-1-i1", final(InvocationState.FAILED, 1))
    assert await stored_events(engine) == []
    assert (await store.invocations("c-1"))[0].state is InvocationState.PENDING
