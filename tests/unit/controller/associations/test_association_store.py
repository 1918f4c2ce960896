"""The associations store on a real (SQLite) database: what is claimed once, and which results count."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fleetops.common.errors import Conflict, NotFound
from fleetops.controller.associations import store as store_module
from fleetops.controller.associations.models import Association, AssociationRun, Status, Trigger
from fleetops.controller.associations.store import AssociationStore
from fleetops.controller.fleet.models import Target
from fleetops.controller.store import database

T0 = datetime(2026, 3, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AssociationStore]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    await database.ensure_schema(engine, migrate=True)
    yield AssociationStore(database.session_factory(engine))
    await engine.dispose()


def association(id: str = "assoc-1", name: str = "web", **changes: Any) -> Association:
    fields: dict[str, Any] = dict(
        id=id, name=name, document="doc", parameters={"k": "v"}, target=Target(selector="role=web"),
        schedule="rate(30 minutes)", max_concurrency="", max_errors="", check_interval_seconds=0,
        author="operator:alice", created_at=T0, next_run_at=T0,
    )  # fmt: skip
    return Association(**{**fields, **changes})


async def statuses(store: AssociationStore, association_id: str = "assoc-1") -> dict[str, tuple[Status, str]]:
    return {h.host_id: (h.status, h.detail) for h in await store.hosts(association_id)}


async def test_definitions_round_trip_by_id_and_name_and_names_are_unique(store: AssociationStore) -> None:
    await store.create(association())
    assert (await store.get("assoc-1")).target == Target(selector="role=web")
    assert (await store.get("web")).parameters == {"k": "v"}
    with pytest.raises(Conflict, match="'web' exists"):
        await store.create(association("assoc-2"))
    await store.create(association("assoc-3", name=""))
    assert [a.id for a in await store.list()] == ["assoc-1", "assoc-3"]
    await store.delete("assoc-1")
    with pytest.raises(NotFound):
        await store.get("web")
    with pytest.raises(NotFound):
        await store.delete("assoc-1")


async def test_an_occurrence_and_a_new_host_are_claimed_once(store: AssociationStore) -> None:
    await store.create(association())
    later = T0 + timedelta(minutes=30)
    won = await asyncio.gather(*(store.claim_application("assoc-1", T0, later, T0, ["h1", "h2"]) for _ in range(3)))
    assert sorted(won) == [False, False, True]
    assert (await store.get("assoc-1")).next_run_at == later
    assert await statuses(store) == {"h1": (Status.PENDING, ""), "h2": (Status.PENDING, "")}
    assert await store.claim_hosts("assoc-1", ["h2", "h3"], T0) == {"h3"}  # h2 is the occurrence's
    assert await store.claim_hosts("assoc-1", ["h3"], T0) == set()
    assert await store.claim_hosts("assoc-gone", ["h3"], T0) == set()  # deleted meanwhile: no row, no error
    assert (await store.get("assoc-1")).counts == {"pending": 3}


async def test_an_application_result_counts_only_while_the_host_waits_on_that_command(store: AssociationStore) -> None:
    await store.create(association())
    first = AssociationRun("assoc-1", "cmd-1", Trigger.SCHEDULE, T0, 2)
    await store.start_run(first, ["h1", "h2"])
    second = AssociationRun("assoc-1", "cmd-2", Trigger.MANUAL, T0 + timedelta(seconds=5), 1)
    await store.start_run(second, ["h2"])
    t1 = T0 + timedelta(seconds=10)
    outcomes = [("h1", Status.COMPLIANT, "", t1), ("h2", Status.NON_COMPLIANT, "exit code 1", t1)]
    assert await store.record_application("assoc-1", "cmd-1", outcomes) == 1  # h2 waits on cmd-2 now
    assert await store.record_application("assoc-1", "cmd-1", outcomes) == 0  # recorded twice: no change
    assert await store.record_application("assoc-1", "cmd-2", [("h2", Status.COMPLIANT, "", t1)]) == 1
    assert await statuses(store) == {"h1": (Status.COMPLIANT, ""), "h2": (Status.COMPLIANT, "")}
    assert {h.last_command_id for h in await store.hosts("assoc-1")} == {"cmd-1", "cmd-2"}

    await store.set_failed("assoc-1", {"h1": "outside the author's rights"}, t1)
    assert (await statuses(store))["h1"] == (Status.FAILED, "outside the author's rights")
    with pytest.raises(NotFound):
        await store.start_run(AssociationRun("assoc-gone", "cmd-3", Trigger.SCHEDULE, T0, 1), ["h1"])

    abandoned = AssociationRun("assoc-1", "cmd-4", Trigger.SCHEDULE, t1, 1)
    await store.start_run(abandoned, ["h2"])
    await store.abandon_run("cmd-4", "the command could not be made", t1)
    assert (await statuses(store))["h2"] == (Status.FAILED, "the command could not be made")
    assert [r.command_id for r in await store.unrecorded()] == ["cmd-1", "cmd-2"]


async def test_a_check_counts_only_when_nothing_was_applied_or_checked_since_it_started(
    store: AssociationStore,
) -> None:
    await store.create(association())
    await store.start_run(AssociationRun("assoc-1", "cmd-1", Trigger.SCHEDULE, T0, 2), ["h1", "h2"])
    applied = T0 + timedelta(seconds=10)
    await store.record_application(
        "assoc-1",
        "cmd-1",
        [("h1", Status.COMPLIANT, "", applied), ("h2", Status.NON_COMPLIANT, "exit code 1", applied)],
    )
    check = AssociationRun("assoc-1", "cmd-c1", Trigger.CHECK, applied + timedelta(seconds=5), 1)
    await store.start_run(check, ["h1"])
    assert (await statuses(store))["h1"] == (Status.COMPLIANT, "")  # a check leaves the hosts as they are
    late = applied + timedelta(seconds=6)
    drift = [("h1", Status.DRIFTED, "marker missing", late), ("h2", Status.DRIFTED, "marker missing", late)]
    assert await store.record_check("assoc-1", check.started_at, drift) == 1  # h2 was never applied
    assert await statuses(store) == {
        "h1": (Status.DRIFTED, "marker missing"),
        "h2": (Status.NON_COMPLIANT, "exit code 1"),
    }

    older = applied + timedelta(seconds=1)  # a check that started before the one recorded
    assert await store.record_check("assoc-1", older, [("h1", Status.COMPLIANT, "", late)]) == 0
    # An application after a check started wins over that check's result.
    await store.start_run(AssociationRun("assoc-1", "cmd-2", Trigger.MANUAL, late, 1), ["h1"])
    fixed = late + timedelta(seconds=5)
    await store.record_application("assoc-1", "cmd-2", [("h1", Status.COMPLIANT, "", fixed)])
    stale = late + timedelta(seconds=1)
    assert await store.record_check("assoc-1", stale, [("h1", Status.DRIFTED, "marker missing", fixed)]) == 0
    assert (await statuses(store))["h1"] == (Status.COMPLIANT, "")


async def test_hosts_gone_from_the_target_are_dropped_unless_their_row_is_newer_than_the_listing(
    store: AssociationStore,
) -> None:
    await store.create(association())
    await store.claim_hosts("assoc-1", ["h1"], T0)
    await store.claim_hosts("assoc-1", ["h2"], T0 + timedelta(seconds=10))
    await store.drop_hosts("assoc-1", ["h1", "h2"], before=T0 + timedelta(seconds=5))
    assert await store.host_keys() == {"assoc-1": {"h2"}}


async def test_old_recorded_runs_are_pruned(store: AssociationStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "RUNS_KEPT", 3)
    await store.create(association())
    for i in range(5):
        await store.start_run(AssociationRun("assoc-1", f"cmd-{i}", Trigger.CHECK, T0 + timedelta(minutes=i), 1), [])
        if i != 0:
            await store.mark_recorded(f"cmd-{i}")
    # cmd-0 is kept until its results are recorded; of the recorded ones, the newest are kept.
    assert [r.command_id for r in await store.runs("assoc-1", 10)] == ["cmd-4", "cmd-3", "cmd-2", "cmd-0"]
