"""``fleetops.host.noncompliant``: written with the report that makes a host non-compliant, only then.

The real patch store on SQLite and PostgreSQL; report rows as the patching service writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fleetops.controller.patching.store import PatchStore
from fleetops.controller.store import database

from events import stored_events

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


def report(n: int, *, compliant: bool, error: str = "", missing: int = 0) -> dict[str, Any]:
    compliance = {
        "compliant": compliant,
        "counts": {"installed": 10, "missing": missing, "failed": 0},
        "missing_by_severity": {"critical": missing, "low": 0},
        "highest_level": None if compliant else "critical",
    }
    return {
        "invocation_id": f"inv-{n}", "command_id": f"c-{n}", "host_id": "h1", "host_name": "web-1",
        "operation": "scan", "reported_at": T0 + timedelta(hours=n), "baseline": "linux-default",
        "patch_group": "", "compliant": compliant, "error": error, "summary": {"compliance": compliance},
    }  # fmt: skip


async def test_an_event_when_the_host_becomes_non_compliant_not_on_each_scan(engine: AsyncEngine) -> None:
    store = PatchStore(database.session_factory(engine))
    assert await store.add_report(report(1, compliant=True))
    assert await store.add_report(report(2, compliant=False, missing=2))  # compliant -> non-compliant
    assert not await store.add_report(report(2, compliant=False, missing=2))  # the same result again
    assert await store.add_report(report(3, compliant=False, missing=3))  # still non-compliant: nothing
    assert await store.add_report(report(4, compliant=True))
    assert await store.add_report(report(5, compliant=True))  # a compliant rescan: nothing
    assert await store.add_report(report(6, compliant=False, error="malformed"))  # unusable: not_scanned
    assert await store.add_report(report(7, compliant=False, missing=1))  # unknown -> non-compliant
    events = await stored_events(engine, "fleetops.host.")
    assert [(e.type, e.subject, e.host, e.data["command_id"]) for e in events] == [
        ("fleetops.host.noncompliant", "host/web-1", "web-1", "c-2"),
        ("fleetops.host.noncompliant", "host/web-1", "web-1", "c-7"),
    ]
    assert events[0].data == {
        "host": "web-1",
        "host_id": "h1",
        "baseline": "linux-default",
        "patch_group": "",
        "operation": "scan",
        "command_id": "c-2",
        "previous": "compliant",
        "missing": 2,
        "failed": 0,
        "missing_by_severity": {"critical": 2},
        "highest_level": "critical",
    }
    assert events[1].data["previous"] == "not_scanned"


async def test_a_first_report_that_is_non_compliant_has_its_event(engine: AsyncEngine) -> None:
    store = PatchStore(database.session_factory(engine))
    assert await store.add_report(report(1, compliant=False, missing=1))
    (event,) = await stored_events(engine)
    assert event.type == "fleetops.host.noncompliant" and event.data["previous"] == "not_scanned"
