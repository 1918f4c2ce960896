"""Unit tests of the invocation journal: journal before execute, replay, recovery, acks and pruning."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from fleetops.agent.commands import durable
from fleetops.agent.commands.entry import Outcome, Phase
from fleetops.agent.commands.journal import (
    REASON_AGENT_STOPPED,
    REASON_AGENT_STOPPED_STARTING,
    REASON_REBOOTED,
    InvocationJournal,
)
from fleetops.common.errors import Conflict, InternalError, InvalidInput, NotFound
from fleetops.v1 import agent_pb2


def spec(invocation_id: str = "inv-1", **fields: object) -> agent_pb2.RunInvocation:
    fields.setdefault("argv", ["echo", "hi"])
    return agent_pb2.RunInvocation(invocation_id=invocation_id, command_id="cmd-1", **fields)


@pytest.fixture
def journal(tmp_path: Path) -> InvocationJournal:
    return InvocationJournal(tmp_path / "journal")


def never_alive(pid: int, started: float | None) -> bool:
    return False


# -- journal before execute -----------------------------------------------------------------------


def test_record_journals_a_new_invocation_before_anything_runs(journal: InvocationJournal) -> None:
    recorded = journal.record(spec(env={"TOKEN": "s3cret"}))
    assert recorded.is_new
    entry = recorded.entry
    assert (entry.invocation_id, entry.phase, entry.command_id) == ("inv-1", Phase.DELIVERED, "cmd-1")
    assert entry.directory == journal.directory / "inv-1"
    assert json.loads((entry.directory / "state.json").read_text())["phase"] == "delivered"
    assert journal.spec("inv-1") == spec(env={"TOKEN": "s3cret"})
    assert entry.stdout_path.read_bytes() == entry.stderr_path.read_bytes() == b""
    assert oct(journal.directory.stat().st_mode & 0o777) == "0o700"
    assert oct((entry.directory / "spec.pb").stat().st_mode & 0o777) == "0o600"


def test_recording_twice_returns_the_existing_entry_and_does_not_run_again(journal: InvocationJournal) -> None:
    first = journal.record(spec())
    journal.mark_running("inv-1", pid=4242, process_started=1.0)
    second = journal.record(spec())
    assert not second.is_new
    assert second.entry.phase is Phase.RUNNING
    assert second.entry.delivered_at == first.entry.delivered_at
    assert [e.invocation_id for e in journal.entries()] == ["inv-1"]


def test_an_acked_tombstone_still_blocks_a_re_run(journal: InvocationJournal) -> None:
    journal.record(spec())
    journal.mark_finished("inv-1", outcome=Outcome.SUCCESS, exit_code=0)
    journal.mark_acked("inv-1")
    again = journal.record(spec())
    assert not again.is_new
    assert again.entry.phase is Phase.ACKED


def test_record_writes_durably_and_commits_with_a_rename(
    journal: InvocationJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    if not Path("/proc/self/fd").exists():
        pytest.skip("needs /proc to name the synced files")
    monkeypatch.setattr(durable.os, "fsync", recording_fsync)
    journal.record(spec())
    incoming = [Path(p) for p in synced if "/.incoming-inv-1-" in p]
    # spec.pb and state.json (through their temporary files), then the entry directory itself ...
    assert any(p.name.startswith(".spec.pb.") for p in incoming)
    assert any(p.name.startswith(".state.json.") for p in incoming)
    assert any(p.name.startswith(".incoming-inv-1-") for p in incoming)
    # ... and last the journal directory, which makes the rename to inv-1 durable.
    assert synced[-1] == str(journal.directory)


def test_an_interrupted_record_leaves_no_entry(journal: InvocationJournal) -> None:
    # What a crash before the commit leaves: a hidden, incomplete directory.
    (journal.directory / ".incoming-inv-1-abc").mkdir()
    (journal.directory / ".incoming-inv-1-abc" / "spec.pb").write_bytes(b"")
    assert journal.get("inv-1") is None
    assert journal.entries() == []
    journal.recover(never_alive)
    assert list(journal.directory.iterdir()) == []
    assert journal.record(spec()).is_new


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "-flag", "x" * 129, "a\x00b"])
def test_unsafe_invocation_ids_are_refused(journal: InvocationJournal, bad: str) -> None:
    with pytest.raises(InvalidInput, match="invalid invocation id"):
        journal.record(spec(bad))


# -- phases ---------------------------------------------------------------------------------------


def test_finishing_records_the_outcome_and_the_output_totals(journal: InvocationJournal) -> None:
    entry = journal.record(spec()).entry
    journal.mark_running("inv-1", pid=4242, process_started=12.5, script_path="/tmp/s.sh")
    entry.stdout_path.write_bytes(b"12345")
    entry.stderr_path.write_bytes(b"xy")
    finished = journal.mark_finished("inv-1", outcome=Outcome.FAILED, exit_code=3)
    assert (finished.phase, finished.outcome, finished.exit_code, finished.reason) == (
        Phase.FINISHED,
        Outcome.FAILED,
        3,
        "",
    )
    assert (finished.stdout_bytes, finished.stderr_bytes) == (5, 2)
    assert (finished.pid, finished.process_started, finished.script_path) == (4242, 12.5, "/tmp/s.sh")
    assert finished.started_at is not None and finished.finished_at is not None
    assert journal.get("inv-1") == finished  # what was returned is what is on disk


def test_phases_only_move_forward(journal: InvocationJournal) -> None:
    journal.record(spec())
    journal.mark_running("inv-1", pid=1, process_started=None)
    with pytest.raises(Conflict):
        journal.mark_running("inv-1", pid=2, process_started=None)
    with pytest.raises(Conflict):
        journal.mark_acked("inv-1")  # no result yet
    journal.mark_finished("inv-1", outcome=Outcome.SUCCESS, exit_code=0)
    with pytest.raises(Conflict):
        journal.mark_finished("inv-1", outcome=Outcome.FAILED, exit_code=1)
    with pytest.raises(NotFound):
        journal.mark_acked("nope")


def test_ack_keeps_a_tombstone_and_drops_output_and_spec(journal: InvocationJournal) -> None:
    entry = journal.record(spec()).entry
    entry.stdout_path.write_bytes(b"out")
    journal.mark_finished("inv-1", outcome=Outcome.SUCCESS, exit_code=0)
    acked = journal.mark_acked("inv-1")
    assert acked.phase is Phase.ACKED and acked.acked_at is not None
    assert (acked.outcome, acked.exit_code, acked.stdout_bytes) == (Outcome.SUCCESS, 0, 3)
    assert sorted(p.name for p in entry.directory.iterdir()) == ["state.json"]
    with pytest.raises(NotFound):
        journal.spec("inv-1")
    assert journal.mark_acked("inv-1").phase is Phase.ACKED  # acking twice is harmless
    assert journal.unacked() == []


# -- recovery after a restart ---------------------------------------------------------------------


def test_recover_fails_a_command_whose_agent_was_killed(journal: InvocationJournal, tmp_path: Path) -> None:
    script = tmp_path / "fleetops-script-1.sh"
    script.write_text("sleep 100\n")
    journal.record(spec())
    journal.mark_running("inv-1", pid=999_999_999, process_started=5.0, script_path=str(script))
    pending = journal.recover(never_alive)
    assert len(pending) == 1
    entry = pending[0]
    assert (entry.phase, entry.outcome, entry.exit_code, entry.reason) == (
        Phase.FINISHED,
        Outcome.FAILED,
        -1,
        REASON_AGENT_STOPPED,
    )
    assert not script.exists()


def test_recover_uses_the_real_process_table_by_default(journal: InvocationJournal) -> None:
    journal.record(spec("dead"))
    journal.mark_running("dead", pid=999_999_999, process_started=None)
    journal.record(spec("alive"))
    me = psutil.Process()
    journal.mark_running("alive", pid=me.pid, process_started=me.create_time())
    journal.record(spec("reused"))
    journal.mark_running("reused", pid=me.pid, process_started=me.create_time() - 3600)  # same pid, other process
    phases = {e.invocation_id: (e.phase, e.reason) for e in journal.recover()}
    assert phases == {
        "dead": (Phase.FINISHED, REASON_AGENT_STOPPED),
        "alive": (Phase.RUNNING, ""),  # still running: the service adopts it
        "reused": (Phase.FINISHED, REASON_AGENT_STOPPED),
    }


def test_recover_fails_an_invocation_that_was_being_started(journal: InvocationJournal) -> None:
    journal.record(spec())
    [entry] = journal.recover(never_alive)
    assert (entry.outcome, entry.exit_code, entry.reason) == (Outcome.FAILED, -1, REASON_AGENT_STOPPED_STARTING)


def test_recover_reports_a_requested_reboot_as_success(journal: InvocationJournal) -> None:
    entry = journal.record(spec()).entry
    journal.mark_running("inv-1", pid=4242, process_started=None)
    entry.stdout_path.write_bytes(b"patched\n")
    pending = journal.mark_reboot_pending("inv-1", exit_code=194)
    assert (pending.phase, pending.stdout_bytes) == (Phase.REBOOT_PENDING, 8)
    [recovered] = journal.recover(never_alive)
    assert (recovered.phase, recovered.outcome, recovered.exit_code, recovered.rebooted, recovered.reason) == (
        Phase.FINISHED,
        Outcome.SUCCESS,
        194,
        True,
        REASON_REBOOTED,
    )
    assert recovered.stdout_bytes == 8


def test_recover_keeps_finished_results_and_finishes_an_interrupted_ack(journal: InvocationJournal) -> None:
    journal.record(spec("done"))
    journal.mark_finished("done", outcome=Outcome.SUCCESS, exit_code=0)
    acked = journal.record(spec("acked")).entry
    journal.mark_finished("acked", outcome=Outcome.SUCCESS, exit_code=0)
    journal.mark_acked("acked")
    acked.stdout_path.write_bytes(b"left over by a crash between the ack and the deletion")
    pending = journal.recover(never_alive)
    assert [(e.invocation_id, e.phase) for e in pending] == [("done", Phase.FINISHED)]
    assert not acked.stdout_path.exists()


def test_a_damaged_entry_is_skipped_but_still_blocks_its_id(journal: InvocationJournal) -> None:
    journal.record(spec())
    (journal.directory / "inv-1" / "state.json").write_text("{not json")
    assert journal.entries() == []
    with pytest.raises(InternalError, match="damaged"):
        journal.record(spec())


# -- pruning --------------------------------------------------------------------------------------


def test_prune_removes_only_old_tombstones(journal: InvocationJournal) -> None:
    for invocation_id in ("acked-1", "acked-2", "unacked"):
        journal.record(spec(invocation_id))
        journal.mark_finished(invocation_id, outcome=Outcome.SUCCESS, exit_code=0)
    journal.mark_acked("acked-1")
    journal.mark_acked("acked-2")
    now = datetime.now(UTC)
    assert journal.prune(timedelta(days=7), now=now + timedelta(days=6)) == 0  # too recent
    assert journal.prune(timedelta(days=7), now=now + timedelta(days=8)) == 2
    assert [e.invocation_id for e in journal.entries()] == ["unacked"]
