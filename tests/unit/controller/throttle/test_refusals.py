"""Refusals of anonymous callers: a few audited one by one, the rest counted, per source and interval."""

from __future__ import annotations

from typing import Any

from fleetops.common.errors import InvalidInput, RateLimited, Unauthenticated
from fleetops.controller.throttle.refusals import AGGREGATE_ACTION, RefusalLog


class FakeAudit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = False

    async def record(self, **event: Any) -> None:
        if self.fail:
            raise OSError("database away")
        self.events.append(event)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(in_full: int = 2, max_sources: int = 100) -> tuple[RefusalLog, FakeAudit, Clock]:
    audit, clock = FakeAudit(), Clock()
    log = RefusalLog(audit, interval=60, in_full=in_full, max_sources=max_sources, clock=clock)  # type: ignore[arg-type]  # a fake with record()
    return log, audit, clock


async def refuse(log: RefusalLog, source: str, n: int, error: Exception | None = None) -> None:
    for i in range(n):
        await log.refused(
            source=source,
            actor=f"activation:a{i}",
            action="host.register",
            target=f"a{i}",
            error=error or Unauthenticated("activation id or code is wrong"),  # type: ignore[arg-type]  # errors of the tree
        )


async def test_the_first_refusals_are_written_then_counted_into_one_event() -> None:
    log, audit, clock = make()
    await refuse(log, "10.0.0.1", 1000)
    assert [e["outcome"] for e in audit.events] == ["refused", "refused"]
    assert audit.events[0]["details"]["error"] == "activation id or code is wrong"
    await log.flush()
    assert len(audit.events) == 2  # the interval has not ended
    clock.now = 60
    await log.flush()
    (aggregate,) = audit.events[2:]
    assert aggregate["action"] == AGGREGATE_ACTION and aggregate["actor"] == "peer:10.0.0.1"
    assert aggregate["details"]["count"] == 998 and aggregate["details"]["errors"] == {"Unauthenticated": 998}
    assert len(aggregate["details"]["targets"]) == 10 and aggregate["details"]["targets_truncated"]
    # The flood goes on: the next interval writes nothing one by one, only its count.
    await refuse(log, "10.0.0.1", 5, RateLimited("slow down"))
    clock.now = 120
    await log.flush()
    assert [e["action"] for e in audit.events[3:]] == [AGGREGATE_ACTION]
    assert audit.events[3]["details"]["errors"] == {"RateLimited": 5}
    # A quiet interval ends the flood: the next refusal is written in full again.
    clock.now = 180
    await log.flush()
    clock.now = 240
    await refuse(log, "10.0.0.1", 1, InvalidInput("bad csr"))
    assert audit.events[-1]["outcome"] == "error" and audit.events[-1]["action"] == "host.register"


async def test_sources_are_counted_apart_and_their_number_is_bounded() -> None:
    log, audit, _ = make(in_full=1, max_sources=3)
    for i in range(10):
        await refuse(log, f"10.0.0.{i}", 3)
    assert len(audit.events) == 3  # one in full for each of the first three sources
    await log.stop()
    aggregates = {e["target"]: e["details"]["count"] for e in audit.events if e["action"] == AGGREGATE_ACTION}
    assert aggregates == {"10.0.0.0": 2, "10.0.0.1": 2, "10.0.0.2": 2, "*": 21}


async def test_counts_that_could_not_be_written_are_kept_for_the_next_try() -> None:
    log, audit, clock = make(in_full=1)
    await refuse(log, "10.0.0.1", 4)
    clock.now = 60
    audit.fail = True
    try:
        await log.flush()
    except OSError:
        pass
    audit.fail = False
    await log.stop()
    assert [e["details"]["count"] for e in audit.events if e["action"] == AGGREGATE_ACTION] == [3]


async def test_another_listener_counts_its_refusals_under_its_own_action() -> None:
    audit, clock = FakeAudit(), Clock()
    log = RefusalLog(audit, interval=60, in_full=1, clock=clock, aggregate_action="console.refusals")  # type: ignore[arg-type]  # a fake with record()
    await refuse(log, "10.0.0.9", 3)
    clock.now = 60
    await log.flush()
    assert [(e["action"], e.get("details", {}).get("count")) for e in audit.events] == [
        ("host.register", None),
        ("console.refusals", 2),
    ]
