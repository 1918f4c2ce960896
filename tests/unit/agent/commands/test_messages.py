"""Unit tests of the wire messages built from journal entries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetops.agent.commands.entry import JournalEntry, Outcome, Phase
from fleetops.agent.commands.messages import as_int32, rejection_message, result_message
from fleetops.v1 import agent_pb2

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_result_carries_outcome_totals_and_times() -> None:
    entry = JournalEntry(
        "inv-1",
        Path("/j/inv-1"),
        Phase.FINISHED,
        AT,
        outcome=Outcome.TIMED_OUT,
        exit_code=-15,
        reason="timed out after 5s",
        started_at=AT,
        finished_at=AT,
        stdout_bytes=10,
        stderr_bytes=2,
    )
    result = result_message(entry).result
    assert (result.invocation_id, result.outcome, result.exit_code, result.reason) == (
        "inv-1",
        agent_pb2.INVOCATION_OUTCOME_TIMED_OUT,
        -15,
        "timed out after 5s",
    )
    assert (result.stdout_bytes, result.stderr_bytes, result.rebooted) == (10, 2, False)
    assert result.started_at.ToDatetime(tzinfo=UTC) == AT == result.finished_at.ToDatetime(tzinfo=UTC)


def test_an_entry_without_a_result_has_no_result_message() -> None:
    with pytest.raises(ValueError, match="no result yet"):
        result_message(JournalEntry("inv-1", Path("/j/inv-1"), Phase.RUNNING, AT))


def test_exit_codes_fit_the_wires_int32() -> None:
    assert [as_int32(c) for c in (0, 194, -9, 3010, 0xC0000005)] == [0, 194, -9, 3010, -1073741819]


def test_a_rejection_is_a_failed_result() -> None:
    result = rejection_message("../x", "invalid invocation id").result
    assert (result.outcome, result.exit_code, result.reason) == (
        agent_pb2.INVOCATION_OUTCOME_FAILED,
        -1,
        "invalid invocation id",
    )


def test_state_round_trips_through_json() -> None:
    entry = JournalEntry("inv-1", Path("/j/inv-1"), Phase.ACKED, AT, outcome=Outcome.SUCCESS, exit_code=0, acked_at=AT)
    assert JournalEntry.from_json(entry.directory, entry.to_json()) == entry
