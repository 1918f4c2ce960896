"""``CommandService``: the agent's run-command handlers for the controller link.

Wiring (the app): ``await service.recover()`` before ``link.run()``; register ``on_run``,
``on_cancel`` and ``on_result_ack`` for the bodies "run", "cancel" and "result_ack"; register
``on_connected`` with ``link.on_connected``; ``await service.close()`` on shutdown.

Delivery: an invocation's output goes out from the offsets the controller names, then its result.
A result never overtakes output: the controller finalizes an invocation on the first result it
gets (reporting missing bytes as lost), so every result is sent by a delivery that has streamed
the output first. All sends go through the injected ``send``; when it raises ConnectionError the
delivery stops and the result stays in the journal until a re-sent RunInvocation or the next
``on_connected`` delivers it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetops.agent.commands.entry import JournalEntry, Phase, check_invocation_id
from fleetops.agent.commands.executor import Execution
from fleetops.agent.commands.journal import InvocationJournal
from fleetops.agent.commands.messages import check_run, rejection_message, result_message, update_message
from fleetops.agent.commands.output import pump_output
from fleetops.agent.commands.platform import CommandPlatform
from fleetops.agent.commands.reboot import Rebooter
from fleetops.agent.commands.tasks import UnknownTask, expand_agent_task
from fleetops.common.errors import Conflict, InvalidInput, NotFound
from fleetops.v1 import agent_pb2

log = logging.getLogger(__name__)

Send = Callable[[agent_pb2.AgentMessage], Awaitable[None]]
# An invocation still running this long after it was journaled is reported DELIVERED (and
# RUNNING once its process started); a faster one is reported by its result alone.
PROGRESS_DELAY = 0.1
STDOUT = agent_pb2.OUTPUT_STREAM_STDOUT
STDERR = agent_pb2.OUTPUT_STREAM_STDERR
# Each stream's total size, resolved once the process has ended: the output pumps stop there.
Sizes = dict[agent_pb2.OutputStream, asyncio.Future[int]]


@dataclass
class _Running:
    """An invocation whose process this agent supervises right now."""

    execution: Execution
    task: asyncio.Task[JournalEntry]
    sizes: Sizes


class CommandService:
    """Runs what the controller sends, exactly once, and reports it back through ``send``.

    Args:
        journal: the durable record of invocations (``<state_dir>/journal``).
        platform: how commands are spawned here (``current_platform()``).
        rebooter: what a script's reboot request (exit 194 / 3010) triggers.
        send: ``ControllerLink.send``; raises ConnectionError while the link is down.
        state_dir: the agent's state directory, passed to agent tasks (patch scans and installs).
    """

    def __init__(
        self,
        journal: InvocationJournal,
        platform: CommandPlatform,
        rebooter: Rebooter,
        send: Send,
        state_dir: Path | None = None,
    ) -> None:
        self._journal = journal
        self._state_dir = state_dir
        self._platform = platform
        self._rebooter = rebooter
        self._send = send
        self._running: dict[str, _Running] = {}
        self._deliveries: dict[str, asyncio.Task[None]] = {}
        # The link calls handlers one at a time, but tests and on_connected may not: one record at a time.
        self._record_lock = asyncio.Lock()
        # Progress reporting (see _report_progress): the pending report per invocation, the
        # invocations whose process started, and those whose progress is reported as it happens.
        self._progress: dict[str, asyncio.Task[None]] = {}
        self._started: set[str] = set()
        self._progress_due: set[str] = set()

    # -- agent start and stop --------------------------------------------------------------------
    async def recover(self) -> list[JournalEntry]:
        """Settle the journal after a restart and adopt commands that outlived the last agent.

        Call once before the link starts. Returns the unacked entries: finished ones get their
        result delivered by ``on_connected``; running ones are watched until they end.

        Raises:
            OSError: the journal cannot be read or written.
        """
        pending = await asyncio.to_thread(self._journal.recover)
        pruned = await asyncio.to_thread(self._journal.prune)
        if pruned:
            log.info("pruned %d old invocation tombstones", pruned)
        for entry in pending:
            if entry.phase is Phase.RUNNING:
                spec = await asyncio.to_thread(self._journal.spec, entry.invocation_id)
                log.warning(
                    "invocation %s (pid %s) outlived the last agent; watching it", entry.invocation_id, entry.pid
                )
                execution = self._execution(entry.invocation_id)
                self._start(entry.invocation_id, execution, execution.adopt(entry, spec))
        return pending

    async def close(self) -> None:
        """Stop supervising and streaming; processes run on and are found again by ``recover``."""
        tasks = [
            *self._deliveries.values(),
            *(running.task for running in self._running.values()),
            *self._progress.values(),
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def is_active(self, invocation_id: str) -> bool:
        """Whether this agent is running the invocation or streaming its output right now."""
        return invocation_id in self._running or invocation_id in self._deliveries

    # -- link handlers ---------------------------------------------------------------------------
    async def on_run(self, message: agent_pb2.ControllerMessage) -> None:
        """Run a new invocation once, or answer a re-sent one from the journal.

        Raises:
            OSError: the invocation could not be journaled (so it did not run; the controller re-sends).
        """
        spec = message.run
        invocation_id = spec.invocation_id
        try:
            check_invocation_id(invocation_id)
            check_run(spec)
            if spec.agent_task:
                if self._state_dir is None:
                    raise UnknownTask("this agent runs no agent tasks")
                spec = expand_agent_task(spec, self._state_dir, self._journal.task_report_path(invocation_id))
        except (InvalidInput, UnknownTask) as exc:
            log.warning("refusing an invocation: %s", exc)
            await self._send_quietly(rejection_message(invocation_id, getattr(exc, "message", str(exc))))
            return
        async with self._record_lock:
            recorded = await asyncio.to_thread(self._journal.record, spec)
            if recorded.is_new:
                execution = self._execution(invocation_id)
                self._start(invocation_id, execution, execution.run(spec))
                self._progress[invocation_id] = asyncio.create_task(self._report_progress(invocation_id))
            else:
                log.info(
                    "invocation %s is journaled (%s): answering, not running it", invocation_id, recorded.entry.phase
                )
                if invocation_id in self._running:
                    # Acknowledge again: the first DELIVERED may have been lost with the link, and the
                    # controller fails invocations it never hears of (its ack timeout).
                    await self._send_quietly(update_message(invocation_id, agent_pb2.INVOCATION_PHASE_DELIVERED))
                    if invocation_id in self._started:
                        await self._send_quietly(update_message(invocation_id, agent_pb2.INVOCATION_PHASE_RUNNING))
            await self._answer(recorded.entry, spec.stdout_offset, spec.stderr_offset)

    async def on_cancel(self, message: agent_pb2.ControllerMessage) -> None:
        invocation_id = message.cancel.invocation_id
        running = self._running.get(invocation_id)
        if running is None:
            log.debug("cancel for invocation %s, which is not running here; ignored", invocation_id)
            return
        running.execution.cancel()

    async def on_result_ack(self, message: agent_pb2.ControllerMessage) -> None:
        """The controller stored the result: drop the output, keep a tombstone.

        Raises:
            OSError: the journal cannot be written (the controller acks again after the next re-send).
        """
        invocation_id = message.result_ack.invocation_id
        if invocation_id in self._running:
            log.warning("controller acked invocation %s, which is still running; ignored", invocation_id)
            return
        await self._stop_delivery(invocation_id)
        try:
            await asyncio.to_thread(self._journal.mark_acked, invocation_id)
        except (NotFound, InvalidInput):
            log.debug("ack for unknown invocation %s; ignored", invocation_id)
        except Conflict as exc:
            log.warning("ack for invocation %s ignored: %s", invocation_id, exc)

    async def on_connected(self) -> None:
        """After every (re)connect: deliver each finished, unacked invocation again.

        Output goes from offset 0 (the controller skips bytes it has): the agent cannot know what
        reached the controller, and a result alone would make it finalize with output missing.
        Invocations the controller re-sends meanwhile restart from its offsets instead.
        """
        for entry in await asyncio.to_thread(self._journal.unacked):
            invocation_id = entry.invocation_id
            if entry.phase is Phase.FINISHED and not self.is_active(invocation_id):
                self._deliver(invocation_id, 0, 0, _final_sizes(entry))

    # -- internals -------------------------------------------------------------------------------
    async def _report_progress(self, invocation_id: str) -> None:
        """DELIVERED (and RUNNING) for invocations still running after PROGRESS_DELAY.

        A command that is over within PROGRESS_DELAY is reported by its result alone: on a fan-out
        to a thousand hosts the two progress messages per host would cost more than the command.
        """
        await asyncio.sleep(PROGRESS_DELAY)
        if invocation_id not in self._running:
            return
        await self._send_quietly(update_message(invocation_id, agent_pb2.INVOCATION_PHASE_DELIVERED))
        self._progress_due.add(invocation_id)
        if invocation_id in self._started:
            await self._send_quietly(update_message(invocation_id, agent_pb2.INVOCATION_PHASE_RUNNING))

    def _execution(self, invocation_id: str) -> Execution:
        async def report_running() -> None:
            self._started.add(invocation_id)
            if invocation_id in self._progress_due:
                await self._send_quietly(update_message(invocation_id, agent_pb2.INVOCATION_PHASE_RUNNING))

        return Execution(invocation_id, self._journal, self._platform, self._rebooter, on_running=report_running)

    def _start(self, invocation_id: str, execution: Execution, work: Coroutine[Any, Any, JournalEntry]) -> None:
        loop = asyncio.get_running_loop()
        sizes = {STDOUT: loop.create_future(), STDERR: loop.create_future()}
        task = asyncio.create_task(work, name=f"invocation {invocation_id}")
        self._running[invocation_id] = _Running(execution, task, sizes)
        task.add_done_callback(lambda done: self._ended(invocation_id, done))

    def _ended(self, invocation_id: str, task: asyncio.Task[JournalEntry]) -> None:
        running = self._running.pop(invocation_id)
        self._started.discard(invocation_id)
        self._progress_due.discard(invocation_id)
        progress = self._progress.pop(invocation_id, None)
        if progress is not None and not progress.done():
            progress.cancel()
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.error("invocation %s: supervision failed", invocation_id, exc_info=task.exception())
            for future in running.sizes.values():
                future.cancel()
            delivery = self._deliveries.get(invocation_id)
            if delivery is not None:
                delivery.cancel()
            return
        entry = task.result()
        running.sizes[STDOUT].set_result(entry.stdout_bytes)
        running.sizes[STDERR].set_result(entry.stderr_bytes)

    async def _answer(self, entry: JournalEntry, stdout_offset: int, stderr_offset: int) -> None:
        invocation_id = entry.invocation_id
        running = self._running.get(invocation_id)
        if running is not None:
            # Running here: the controller lost (part of) its copy and says where its copy ends.
            self._deliver(invocation_id, stdout_offset, stderr_offset, running.sizes)
        elif entry.phase in (Phase.FINISHED, Phase.REBOOT_PENDING):
            # Reboot pending: the output may still go; its result follows after the reboot.
            self._deliver(invocation_id, stdout_offset, stderr_offset, _final_sizes(entry))
        elif entry.phase is Phase.ACKED:
            await self._send_quietly(result_message(entry))  # the output is gone; the result is kept
        else:
            log.warning("invocation %s is %s but not supervised: was recover() called?", invocation_id, entry.phase)

    def _deliver(self, invocation_id: str, stdout_offset: int, stderr_offset: int, sizes: Sizes) -> None:
        """(Re)start streaming an invocation's output from the given offsets, then its result."""
        previous = self._deliveries.pop(invocation_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(
            self._delivery(invocation_id, {STDOUT: stdout_offset, STDERR: stderr_offset}, sizes, previous),
            name=f"delivery {invocation_id}",
        )
        self._deliveries[invocation_id] = task
        task.add_done_callback(lambda done: self._delivery_ended(invocation_id, done))

    def _delivery_ended(self, invocation_id: str, task: asyncio.Task[None]) -> None:
        if self._deliveries.get(invocation_id) is task:
            del self._deliveries[invocation_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("delivering invocation %s failed", invocation_id, exc_info=task.exception())

    async def _delivery(
        self,
        invocation_id: str,
        offsets: dict[agent_pb2.OutputStream, int],
        sizes: Sizes,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # never two pumps of one stream at once
        try:
            async with asyncio.TaskGroup() as pumps:
                for stream, name in ((STDOUT, "stdout"), (STDERR, "stderr")):
                    pumps.create_task(
                        pump_output(
                            invocation_id=invocation_id,
                            stream=stream,
                            path=self._journal.spool_path(invocation_id, name),
                            start=offsets[stream],
                            final_size=sizes[stream],
                            send=self._send,
                        )
                    )
            entry = await asyncio.to_thread(self._journal.get, invocation_id)
            if entry is not None and entry.phase is Phase.FINISHED:
                await self._send(result_message(entry))
        except* ConnectionError:
            log.debug("link down while delivering invocation %s; it is delivered after reconnecting", invocation_id)

    async def _stop_delivery(self, invocation_id: str) -> None:
        delivery = self._deliveries.pop(invocation_id, None)
        if delivery is not None:
            delivery.cancel()
            await asyncio.wait({delivery})

    async def _send_quietly(self, message: agent_pb2.AgentMessage) -> None:
        """Send a message whose loss is repaired later (updates, re-sent results)."""
        try:
            await self._send(message)
        except ConnectionError:
            log.debug("link down; %s not sent", message.WhichOneof("body"))


def _final_sizes(entry: JournalEntry) -> Sizes:
    loop = asyncio.get_running_loop()
    sizes: Sizes = {STDOUT: loop.create_future(), STDERR: loop.create_future()}
    sizes[STDOUT].set_result(entry.stdout_bytes)
    sizes[STDERR].set_result(entry.stderr_bytes)
    return sizes
