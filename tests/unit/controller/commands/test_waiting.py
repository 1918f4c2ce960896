"""Why an unfinished invocation waits, in the words `opsctl run` prints next to it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetops.common.states import CommandStatus, InvocationState
from fleetops.controller.commands.dispatch import Slot
from fleetops.controller.commands.models import Command, CommandSpec, Invocation
from fleetops.controller.commands.output import OutputSink
from fleetops.controller.commands.waiting import WaitingContext, as_it_stands, waiting_reason, when
from fleetops.controller.fleet.models import HostPresence, HostStatus
from fleetops.controller.objects.local import LocalDirectoryStore

NOW = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
SINCE = datetime(2026, 12, 5, 12, 1, 7, tzinfo=UTC)
GIVES_UP = datetime(2026, 12, 5, 12, 40, tzinfo=UTC)


def context(**fields: object) -> WaitingContext:
    values: dict = {
        "sent": False,
        "host_online": True,
        "offline_since": None,
        "in_flight": 0,
        "concurrency_limit": 2,
        "undeliverable_at": GIVES_UP,
        "now": NOW,
    }
    return WaitingContext(**{**values, **fields})


@pytest.mark.parametrize(
    ("state", "fields", "reason"),
    [
        (InvocationState.PENDING, {}, "not yet sent"),
        (InvocationState.PENDING, {"in_flight": 2}, "not yet sent: max concurrency 2 reached"),
        (
            InvocationState.PENDING,
            {"host_online": False, "offline_since": SINCE},
            "host offline since 12:01:07Z, not yet sent; undeliverable at 12:40:00Z",
        ),
        (
            InvocationState.PENDING,
            {"host_online": False},
            "host has never connected, not yet sent; undeliverable at 12:40:00Z",
        ),
        (
            InvocationState.PENDING,
            {"stopped_by_errors": True},
            "will not be sent: more invocations failed than max-errors allows",
        ),
        (InvocationState.PENDING, {"cancelling": True}, "cancelling: it will not be sent"),
        (InvocationState.PENDING, {"sent": True}, "sent, waiting for the host to acknowledge"),
        (InvocationState.DELIVERED, {"sent": True}, "delivered, starting"),
        (InvocationState.RUNNING, {"sent": True}, "running"),
        (InvocationState.RUNNING, {"sent": True, "cancelling": True}, "running; cancel requested"),
        (
            InvocationState.RUNNING,
            {"sent": True, "host_online": False, "offline_since": SINCE},
            "host offline since 12:01:07Z; running, the result comes when it reconnects",
        ),
    ],
)
def test_reasons(state: InvocationState, fields: dict, reason: str) -> None:
    assert waiting_reason(state, context(**fields)) == reason


@pytest.mark.parametrize("state", [s for s in InvocationState if s.final])
def test_a_final_invocation_waits_for_nothing(state: InvocationState) -> None:
    assert waiting_reason(state, context(host_online=False, in_flight=9)) == ""


def test_times_of_another_day_carry_the_date() -> None:
    assert when(SINCE, NOW) == "12:01:07Z"
    assert when(datetime(2026, 12, 4, 23, 59, 59, tzinfo=UTC), NOW) == "2026-12-04 23:59:59Z"


def test_an_invocation_as_it_stands_shows_memory_ahead_of_the_database(tmp_path: Path) -> None:
    stored = Invocation(
        id="inv-1", command_id="cmd-1", host_id="h-1", host_name="web-1", state=InvocationState.PENDING,
        exit_code=None, reason="", stdout_tail=b"", stderr_tail=b"", stdout_bytes=0, stderr_bytes=0,
        delivered_at=None, started_at=None, finished_at=None, rebooted=False, updated_at=NOW, sent_at=NOW,
    )  # fmt: skip
    command = Command(
        id="cmd-1", created_at=NOW, created_by="operator:alice", spec=CommandSpec(argv=("true",)), target="web-1",
        concurrency_limit=2, error_limit=0, status=CommandStatus.IN_PROGRESS, total=1, counts={},
        finished_at=None, cancel_requested=False,
    )  # fmt: skip
    host = HostPresence(HostStatus.OFFLINE, SINCE)
    out = OutputSink(LocalDirectoryStore(tmp_path), "commands/cmd-1/web-1/stdout")
    out.received, out._tail = 7, bytearray(b"line 1\n")  # what write() leaves, without a store
    slot = Slot("inv-1", "h-1", "web-1", InvocationState.RUNNING, sent=True)
    live = as_it_stands(
        stored, slot=slot, host=host, command=command, in_flight=1,
        out=out, err=None, now=NOW, tails=True, stopped_by_errors=False, undeliverable_at=None,
    )  # fmt: skip
    assert live.state is InvocationState.RUNNING  # the write-behind has not stored it yet
    assert (live.stdout_bytes, live.stdout_tail, live.stderr_bytes) == (7, b"line 1\n", 0)
    assert live.waiting_reason == "host offline since 12:01:07Z; running, the result comes when it reconnects"
    assert live.host_offline_since == SINCE
    without_tails = as_it_stands(
        stored, slot=slot, host=None, command=command, in_flight=1, out=out, err=None, now=NOW, tails=False,
        stopped_by_errors=False, undeliverable_at=None,
    )  # fmt: skip
    assert without_tails.stdout_bytes == 7 and without_tails.stdout_tail == b""
