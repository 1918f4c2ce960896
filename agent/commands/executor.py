"""Runs one journaled invocation to its end: spawn, timeout, cancel, outcome, reboot request.

Every way out ends in the journal: a spawn failure, a timeout, a cancel, a crash of this code
even. ``Execution.run`` returns the final entry (finished, or reboot_pending) and never raises for
a problem with the command itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetops.agent.commands.entry import JournalEntry, Outcome
from fleetops.agent.commands.journal import InvocationJournal
from fleetops.agent.commands.platform import (
    EXIT_NOT_STARTED,
    CommandNotStarted,
    CommandPlatform,
    process_is_alive,
    process_start_time,
)
from fleetops.agent.commands.reboot import Rebooter
from fleetops.common.errors import FleetopsError
from fleetops.v1 import agent_pb2

log = logging.getLogger(__name__)

DEFAULT_KILL_GRACE_SECONDS = 5
# While stopping: how often to look whether the process group is gone (runtime polling, not a test sleep).
GROUP_POLL_INTERVAL = 0.1
# How often an adopted process (not our child: nothing to wait on) is checked for having exited.
ORPHAN_POLL_INTERVAL = 0.5

REASON_CANCELLED = "cancelled"
REASON_CANCELLED_BEFORE_START = "cancelled before it started"
REASON_ORPHAN_ENDED = (
    "the agent restarted while the command was running; the command ran to its end, but its exit status is unknown"
)


def read_task_status(path: Path) -> tuple[int, str] | None:
    """The exit status and reason an agent task left in ``path`` (TASK_STATUS_FILE), if any."""
    try:
        doc = json.loads(path.read_bytes())
        return int(doc["exit_code"]), str(doc.get("reason", ""))[:1000]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def signal_reason(status: int) -> str:
    """Why a process with a negative exit status ended (asyncio reports death by signal N as -N)."""
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    return f"killed by {name}"


class Execution:
    """The life of one invocation's process.

    Args:
        invocation_id: the journaled invocation (phase delivered for ``run``, running for ``adopt``).
        on_running: awaited once the process started and is journaled (sends InvocationUpdate RUNNING).
    """

    def __init__(
        self,
        invocation_id: str,
        journal: InvocationJournal,
        platform: CommandPlatform,
        rebooter: Rebooter,
        on_running: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.invocation_id = invocation_id
        self._journal = journal
        self._platform = platform
        self._rebooter = rebooter
        self._on_running = on_running
        self._cancel = asyncio.Event()

    def cancel(self) -> None:
        """Stop the command (group TERM, KILL after the grace period); outcome CANCELLED."""
        self._cancel.set()

    async def run(self, spec: agent_pb2.RunInvocation) -> JournalEntry:
        """Run the journaled ``spec`` once and journal how it ended.

        Raises:
            OSError: the journal itself cannot be written (the command's fate is then unrecorded).
        """
        try:
            return await self._run(spec)
        except Exception as exc:
            # A bug or a broken host must still end in a result, never in a silent hang.
            log.exception("invocation %s failed inside the agent", self.invocation_id)
            return await self._finish(Outcome.FAILED, EXIT_NOT_STARTED, f"internal error in the agent: {exc}")

    async def _run(self, spec: agent_pb2.RunInvocation) -> JournalEntry:
        if self._cancel.is_set():
            return await self._finish(Outcome.CANCELLED, EXIT_NOT_STARTED, REASON_CANCELLED_BEFORE_START)
        entry = await asyncio.to_thread(self._journal.get, self.invocation_id)
        assert entry is not None, "run() needs a journaled invocation"
        try:
            spawned = await self._platform.spawn(spec, entry.stdout_path, entry.stderr_path)
        except CommandNotStarted as exc:
            return await self._finish(Outcome.FAILED, exc.exit_status, exc.message)
        process = spawned.process
        exited = asyncio.ensure_future(process.wait())
        try:
            try:
                await asyncio.to_thread(
                    self._journal.mark_running,
                    self.invocation_id,
                    pid=process.pid,
                    process_started=process_start_time(process.pid),
                    script_path=str(spawned.script_path) if spawned.script_path else None,
                )
            except Exception:
                # Unjournaled work must not run on: after a restart nobody would know about it.
                await asyncio.to_thread(self._platform.kill_group, process.pid)
                await exited
                raise
            await self._report_running()
            grace = spec.kill_grace_seconds or DEFAULT_KILL_GRACE_SECONDS
            timeout = spec.timeout_seconds or None
            outcome, reason = await self._supervise(process.pid, exited, timeout, timeout, grace)
            status = await exited
        finally:
            if not exited.done():
                exited.cancel()  # the agent is shutting down: the process runs on, the journal says so
            if spawned.script_path is not None and exited.done():
                spawned.script_path.unlink(missing_ok=True)
        return await self._conclude(status, outcome, reason)

    async def adopt(self, entry: JournalEntry, spec: agent_pb2.RunInvocation) -> JournalEntry:
        """Watch a process a previous agent started and that outlived it, until it ends.

        It is not our child, so its exit status is lost; timeout and cancel still apply.

        Raises:
            OSError: the journal cannot be written.
        """
        assert entry.pid is not None, "only running entries can be adopted"
        exited = asyncio.ensure_future(self._wait_gone(entry.pid, entry.process_started))
        timeout = None
        if spec.timeout_seconds:
            started = entry.started_at or datetime.now(UTC)
            timeout = max(0.0, spec.timeout_seconds - (datetime.now(UTC) - started).total_seconds())
        grace = spec.kill_grace_seconds or DEFAULT_KILL_GRACE_SECONDS
        try:
            outcome, reason = await self._supervise(entry.pid, exited, timeout, spec.timeout_seconds, grace)
        finally:
            exited.cancel()
        if entry.script_path:
            await asyncio.to_thread(_unlink, entry.script_path)
        if outcome is None:
            left = await asyncio.to_thread(read_task_status, entry.task_status_path)
            if left is not None:  # a task that restarts the agent said how it ended (agent.update)
                code, reason = left
                return await self._finish(Outcome.SUCCESS if code == 0 else Outcome.FAILED, code, reason)
            outcome, reason = Outcome.FAILED, REASON_ORPHAN_ENDED
        return await self._finish(outcome, EXIT_NOT_STARTED, reason)

    async def _supervise(
        self, pid: int, exited: asyncio.Future[Any], wait: float | None, timeout_seconds: int | None, grace: int
    ) -> tuple[Outcome | None, str]:
        """Wait for the process to end, or for the timeout or a cancel to end it.

        Returns ``(None, "")`` when it ended by itself, else the outcome and reason to report.
        """
        cancelled = asyncio.ensure_future(self._cancel.wait())
        try:
            done, _ = await asyncio.wait({exited, cancelled}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
        if exited in done:
            return None, ""  # ended by itself, even if a cancel arrived at the same moment
        if cancelled in done:
            outcome, reason = Outcome.CANCELLED, REASON_CANCELLED
        else:
            outcome, reason = Outcome.TIMED_OUT, f"timed out after {timeout_seconds}s"
        log.info("invocation %s: %s; stopping its process group", self.invocation_id, reason)
        await self._stop_group(pid, exited, grace)
        return outcome, reason

    async def _stop_group(self, pid: int, exited: asyncio.Future[Any], grace: float) -> None:
        """TERM the whole group, give it ``grace`` seconds, then KILL whatever is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        self._platform.terminate_group(pid)
        await asyncio.wait({exited}, timeout=grace)
        # The leader may be gone while children that trapped TERM still run: they get the same grace.
        while loop.time() < deadline and await asyncio.to_thread(self._platform.group_alive, pid):
            await asyncio.sleep(GROUP_POLL_INTERVAL)
        if not exited.done() or await asyncio.to_thread(self._platform.group_alive, pid):
            await asyncio.to_thread(self._platform.kill_group, pid)
        await exited

    async def _wait_gone(self, pid: int, started: float | None) -> None:
        while process_is_alive(pid, started):
            await asyncio.sleep(ORPHAN_POLL_INTERVAL)

    async def _conclude(self, status: int, outcome: Outcome | None, reason: str) -> JournalEntry:
        if outcome is not None:
            return await self._finish(outcome, status, reason)
        if status == 0:
            return await self._finish(Outcome.SUCCESS, 0, "")
        if status == self._platform.reboot_exit_code:
            return await self._reboot(status)
        return await self._finish(Outcome.FAILED, status, signal_reason(status) if status < 0 else "")

    async def _reboot(self, status: int) -> JournalEntry:
        """Journal the request first: the reboot may kill the agent before the next line runs."""
        entry = await asyncio.to_thread(self._journal.mark_reboot_pending, self.invocation_id, exit_code=status)
        log.warning("invocation %s exited %d: rebooting the host as it asked", self.invocation_id, status)
        try:
            await asyncio.to_thread(self._rebooter.reboot)
        except FleetopsError as exc:
            log.error("invocation %s: %s", self.invocation_id, exc)
            return await self._finish(
                Outcome.FAILED, status, f"the script asked for a reboot (exit {status}), but the reboot failed: {exc}"
            )
        return entry

    async def _report_running(self) -> None:
        if self._on_running is None:
            return
        try:
            await self._on_running()
        except Exception:  # a lost update is harmless: the result follows; the process must run on
            log.debug("could not report invocation %s running", self.invocation_id, exc_info=True)

    async def _finish(self, outcome: Outcome, exit_code: int, reason: str) -> JournalEntry:
        return await asyncio.to_thread(
            self._journal.mark_finished, self.invocation_id, outcome=outcome, exit_code=exit_code, reason=reason
        )


def _unlink(path: str) -> None:
    Path(path).unlink(missing_ok=True)
