"""The invocation journal: what this host was asked to run, and what became of it.

Layout, one directory per invocation id (ids are checked to be safe file names)::

    <state_dir>/journal/<invocation_id>/
        spec.pb     the RunInvocation as received (deleted once the controller acked the result)
        state.json  {"phase": ..., pid, times, outcome, exit code, reason, output totals ...}
        stdout      the process's output: its file descriptors point here (deleted on ack)
        stderr
        task-report.pb  an agent task's report, written by the task (sent with the result; deleted on ack)

Exactly once rests on two rules: an entry is journaled durably *before* anything runs, and an id
that has an entry (in any phase, acked tombstones included) is never run again, only answered
from the journal. A new entry is built in a hidden temporary directory and renamed into place, so
after a crash an id either has a complete entry or none at all.

Phases: delivered -> running -> finished -> acked, with reboot_pending instead of finished when the
script asked for a reboot (the result is delivered after the agent comes back, see ``recover``).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fleetops.agent.commands.durable import fsync_directory, write_durably
from fleetops.agent.commands.entry import (
    TASK_REPORT_FILE,
    TASK_STATUS_FILE,
    JournalEntry,
    Outcome,
    Phase,
    Recorded,
    check_invocation_id,
)
from fleetops.agent.commands.platform import process_is_alive
from fleetops.common.errors import Conflict, InternalError, InvalidInput, NotFound
from fleetops.v1 import agent_pb2

log = logging.getLogger(__name__)

_INCOMING_PREFIX = ".incoming-"

REASON_AGENT_STOPPED = "the agent stopped while the command was running; it was not re-run"
REASON_AGENT_STOPPED_STARTING = "the agent stopped while starting the command; it was not re-run"
REASON_REBOOTED = "host rebooted as the script requested"


def _now() -> datetime:
    return datetime.now(UTC)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class InvocationJournal:
    """The durable record of every invocation this host received.

    Methods block on disk I/O (fsync); async callers run them with ``asyncio.to_thread``. A lock
    serializes state changes so concurrent threads never lose an update.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- reading ------------------------------------------------------------------------------
    def get(self, invocation_id: str) -> JournalEntry | None:
        """The entry of ``invocation_id``, or None when this host never received it.

        Raises:
            InvalidInput: the id is not a valid invocation id.
            InternalError: the entry exists but its state file is damaged.
        """
        check_invocation_id(invocation_id)
        directory = self.directory / invocation_id
        try:
            data = (directory / "state.json").read_bytes()
        except FileNotFoundError:
            return None
        try:
            return JournalEntry.from_json(directory, data)
        except (ValueError, KeyError, TypeError) as exc:
            raise InternalError(f"journal entry {directory} is damaged: {exc}", "inspect or remove it by hand") from exc

    def spool_path(self, invocation_id: str, stream: str) -> Path:
        """Where the ``stream`` ("stdout" or "stderr") of ``invocation_id`` is spooled."""
        return self.directory / invocation_id / stream

    def task_report_path(self, invocation_id: str) -> Path:
        """Where the agent task of ``invocation_id`` writes its report (see ``JournalEntry.task_report_path``)."""
        return self.directory / invocation_id / TASK_REPORT_FILE

    def spec(self, invocation_id: str) -> agent_pb2.RunInvocation:
        """The RunInvocation as received.

        Raises:
            NotFound: no entry, or its spec was dropped when the result was acked.
        """
        try:
            data = (self.directory / invocation_id / "spec.pb").read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no journaled spec for invocation {invocation_id}") from None
        return agent_pb2.RunInvocation.FromString(data)

    def entries(self) -> list[JournalEntry]:
        """Every readable entry, oldest first; damaged entries are logged and left out."""
        found: list[JournalEntry] = []
        for directory in self.directory.iterdir():
            if directory.name.startswith(".") or not directory.is_dir():
                continue  # in-progress records, and whatever else does not belong here
            try:
                entry = self.get(directory.name)
            except (InvalidInput, InternalError) as exc:
                log.error("skipping journal entry %s: %s", directory, exc)
                continue
            if entry is not None:
                found.append(entry)
        return sorted(found, key=lambda e: (e.delivered_at, e.invocation_id))

    def unacked(self) -> list[JournalEntry]:
        return [entry for entry in self.entries() if entry.phase is not Phase.ACKED]

    # -- journal before execute ------------------------------------------------------------------
    def record(self, spec: agent_pb2.RunInvocation) -> Recorded:
        """Journal ``spec`` durably unless its id is journaled already.

        Returns ``Recorded(entry, is_new=True)`` when the caller must now execute it, or the
        existing entry with ``is_new=False`` (any phase): then nothing may run again.

        Raises:
            InvalidInput: the invocation id is not a valid id.
            OSError: the entry cannot be written (nothing was journaled; nothing may run).
        """
        existing = self.get(spec.invocation_id)
        if existing is not None:
            return Recorded(existing, False)
        final = self.directory / spec.invocation_id
        incoming = Path(tempfile.mkdtemp(prefix=f"{_INCOMING_PREFIX}{spec.invocation_id}-", dir=self.directory))
        entry = JournalEntry(spec.invocation_id, final, Phase.DELIVERED, _now(), command_id=spec.command_id)
        try:
            write_durably(incoming / "spec.pb", spec.SerializeToString())
            write_durably(incoming / "state.json", entry.to_json())
            for name in ("stdout", "stderr"):
                (incoming / name).touch(mode=0o600)
            fsync_directory(incoming)
            # The rename is the commit point: the id has a complete entry or none.
            incoming.rename(final)
        except OSError:
            shutil.rmtree(incoming, ignore_errors=True)
            existing = self.get(spec.invocation_id)
            if existing is not None:  # recorded meanwhile by another thread
                return Recorded(existing, False)
            raise
        fsync_directory(self.directory)
        return Recorded(entry, True)

    # -- phase changes ---------------------------------------------------------------------------
    def _change(self, invocation_id: str, allowed: tuple[Phase, ...], **changes: Any) -> JournalEntry:
        with self._lock:
            entry = self.get(invocation_id)
            if entry is None:
                raise NotFound(f"invocation {invocation_id} is not in the journal")
            if entry.phase not in allowed:
                raise Conflict(f"invocation {invocation_id} is {entry.phase}, not {' or '.join(allowed)}")
            if changes.get("phase") in (Phase.FINISHED, Phase.REBOOT_PENDING):
                changes.setdefault("stdout_bytes", _size(entry.stdout_path))
                changes.setdefault("stderr_bytes", _size(entry.stderr_path))
            updated = dataclasses.replace(entry, **changes)
            write_durably(entry.directory / "state.json", updated.to_json())
            return updated

    def mark_running(
        self, invocation_id: str, *, pid: int, process_started: float | None, script_path: str | None = None
    ) -> JournalEntry:
        """Raises: NotFound, Conflict (not delivered), OSError."""
        return self._change(
            invocation_id,
            (Phase.DELIVERED,),
            phase=Phase.RUNNING,
            pid=pid,
            process_started=process_started,
            script_path=script_path,
            started_at=_now(),
        )

    def mark_finished(
        self, invocation_id: str, *, outcome: Outcome, exit_code: int, reason: str = "", rebooted: bool = False
    ) -> JournalEntry:
        """Record the result; the output totals are the spool files' sizes now.

        Raises:
            NotFound: no such entry.
            Conflict: the entry is finished or acked already.
            OSError: the state cannot be written.
        """
        return self._change(
            invocation_id,
            (Phase.DELIVERED, Phase.RUNNING, Phase.REBOOT_PENDING),
            phase=Phase.FINISHED,
            outcome=outcome,
            exit_code=exit_code,
            reason=reason,
            rebooted=rebooted,
            finished_at=_now(),
        )

    def mark_reboot_pending(self, invocation_id: str, *, exit_code: int) -> JournalEntry:
        """The script exited asking for a reboot; the result is delivered after it (``recover``).

        Raises: NotFound, Conflict (not running), OSError.
        """
        return self._change(
            invocation_id, (Phase.RUNNING,), phase=Phase.REBOOT_PENDING, exit_code=exit_code, finished_at=_now()
        )

    def mark_acked(self, invocation_id: str) -> JournalEntry:
        """The controller stored the result: keep a tombstone, drop the spool files and the spec.

        The tombstone (state.json) stays so a late re-send is answered, not run; the spec goes too
        because it may carry secrets in its environment. Acking twice is harmless.

        Raises:
            NotFound: no such entry.
            Conflict: the invocation has no result yet.
            OSError: the state cannot be written.
        """
        entry = self._change(invocation_id, (Phase.FINISHED, Phase.ACKED), phase=Phase.ACKED, acked_at=_now())
        self._drop_payload(entry)
        return entry

    @staticmethod
    def _drop_payload(entry: JournalEntry) -> None:
        for name in ("stdout", "stderr", "spec.pb", TASK_REPORT_FILE, TASK_STATUS_FILE):
            (entry.directory / name).unlink(missing_ok=True)

    # -- replay after a restart ------------------------------------------------------------------
    def recover(
        self,
        process_alive: Callable[[int, float | None], bool] = process_is_alive,
    ) -> list[JournalEntry]:
        """Settle what the last agent process left behind; call once at agent start.

        - running, process gone (the agent was killed while the command ran): FAILED, exit -1
        - running, process still alive: left running (the caller adopts and watches it)
        - delivered (the agent stopped while starting it; it may have started): FAILED, exit -1
        - reboot_pending: SUCCESS with rebooted=True and the exit code the script gave (194/3010)
        - incomplete ``.incoming-*`` directories (never journaled, nothing ran): removed

        Returns every unacked entry afterwards: they still need their result delivered.

        Raises:
            OSError: the journal cannot be read or written.
        """
        for leftover in self.directory.glob(f"{_INCOMING_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for entry in self.entries():
            if entry.phase is Phase.ACKED:
                self._drop_payload(entry)  # the agent may have died between the ack and the deletion
            elif entry.phase is Phase.DELIVERED:
                self.mark_finished(
                    entry.invocation_id, outcome=Outcome.FAILED, exit_code=-1, reason=REASON_AGENT_STOPPED_STARTING
                )
            elif entry.phase is Phase.RUNNING and not process_alive(entry.pid or 0, entry.process_started):
                if entry.script_path:
                    Path(entry.script_path).unlink(missing_ok=True)
                self.mark_finished(
                    entry.invocation_id, outcome=Outcome.FAILED, exit_code=-1, reason=REASON_AGENT_STOPPED
                )
            elif entry.phase is Phase.REBOOT_PENDING:
                self.mark_finished(
                    entry.invocation_id,
                    outcome=Outcome.SUCCESS,
                    exit_code=entry.exit_code if entry.exit_code is not None else 194,
                    reason=REASON_REBOOTED,
                    rebooted=True,
                )
        return self.unacked()

    def prune(self, older_than: timedelta = timedelta(days=7), now: datetime | None = None) -> int:
        """Delete tombstones acked more than ``older_than`` ago; returns how many.

        After this a re-send of such an id would run again: the controller must not re-send
        invocations older than this window.

        Raises:
            OSError: an entry cannot be removed.
        """
        cutoff = (now or _now()) - older_than
        removed = 0
        for entry in self.entries():
            if entry.phase is Phase.ACKED and entry.acked_at is not None and entry.acked_at < cutoff:
                shutil.rmtree(entry.directory)
                removed += 1
        if removed:
            fsync_directory(self.directory)
        return removed
