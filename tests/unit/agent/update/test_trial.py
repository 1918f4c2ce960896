"""The rollback decision: only the new version connecting after the switch counts."""

from __future__ import annotations

from pathlib import Path

from fleetops.agent.update.trial import RunMarker, Verdict, decide, note_started, read_marker, write_marker


def test_the_new_version_connecting_after_the_switch_is_a_switch() -> None:
    marker = RunMarker("0.1.1", 10, started_at=100.0, connected_at=105.0)
    assert decide(marker, "0.1.1", switched_at=101.0, now=106.0, deadline=200.0) is Verdict.SWITCHED


def test_the_old_version_still_connected_is_not_a_switch() -> None:
    marker = RunMarker("0.1.0", 10, started_at=50.0, connected_at=150.0)
    assert decide(marker, "0.1.1", switched_at=101.0, now=150.0, deadline=200.0) is Verdict.WAITING
    assert decide(marker, "0.1.1", switched_at=101.0, now=200.0, deadline=200.0) is Verdict.ROLL_BACK


def test_a_connection_from_before_the_switch_does_not_count() -> None:
    # The same version number connected earlier (a marker left from a previous attempt).
    marker = RunMarker("0.1.1", 10, started_at=10.0, connected_at=20.0)
    assert decide(marker, "0.1.1", switched_at=101.0, now=300.0, deadline=250.0) is Verdict.ROLL_BACK


def test_started_but_never_connected_rolls_back_at_the_deadline() -> None:
    marker = RunMarker("0.1.1", 10, started_at=102.0)
    assert decide(marker, "0.1.1", switched_at=101.0, now=150.0, deadline=221.0) is Verdict.WAITING
    assert decide(marker, "0.1.1", switched_at=101.0, now=221.0, deadline=221.0) is Verdict.ROLL_BACK


def test_no_marker_at_all_rolls_back_at_the_deadline() -> None:
    assert decide(None, "0.1.1", switched_at=0.0, now=5.0, deadline=10.0) is Verdict.WAITING
    assert decide(None, "0.1.1", switched_at=0.0, now=10.0, deadline=10.0) is Verdict.ROLL_BACK


def test_the_marker_round_trips_and_a_damaged_one_reads_as_none(tmp_path: Path) -> None:
    started = note_started(tmp_path, "0.1.1")
    assert read_marker(tmp_path) == started
    write_marker(tmp_path, RunMarker("0.1.1", 5, 1.0, 2.0))
    assert read_marker(tmp_path) == RunMarker("0.1.1", 5, 1.0, 2.0)
    (tmp_path / "agent-run.json").write_text("{not json")
    assert read_marker(tmp_path) is None
