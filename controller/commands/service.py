"""Run command: create, watch, cancel; and what agents report about their invocations."""

from __future__ import annotations

import asyncio
import builtins
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fleetops.common import limits, rates
from fleetops.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from fleetops.common.states import CommandStatus, InvocationState
from fleetops.controller.commands.dispatch import DEFAULT_ACK_TIMEOUT, CommandRun, Slot
from fleetops.controller.commands.interfaces import AgentChannel
from fleetops.controller.commands.live import OutputFeed, OutputPiece, WatchEvent
from fleetops.controller.commands.models import (
    Command,
    CommandSpec,
    Invocation,
    InvocationReport,
    RunInstruction,
    listed,
)
from fleetops.controller.commands.output import OutputSink, output_key
from fleetops.controller.commands.store import CANCEL, CHANGED, InvocationStore
from fleetops.controller.commands.waiting import as_it_stands
from fleetops.controller.fleet.models import Host, HostPresence, Target, is_windows
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.objects.interfaces import ObjectStore

log = logging.getLogger(__name__)


# Output totals a result may claim (the database's BIGINT; a forged 2**64 must not poison a batch).
_MAX_STREAM_BYTES = 2**62

# Invocations whose command another replica runs, remembered so output chunks need no lookup.
_ELSEWHERE_CACHE = 10_000
#: Times a result that arrives before all of its output is answered by asking the host for the
#: rest (a re-send from the offsets held; the agent streams from its spool, then the result again).
#: Output goes missing when the replica running a command changes while the host streams.
_CATCH_UPS = 2
# Seconds changes are gathered before other replicas' watchers are woken (one NOTIFY for many).
_ANNOUNCE_COALESCE = 0.1

ResultListener = Callable[[str, str, InvocationReport], Awaitable[None]]


def check_target(target: Target) -> None:
    """The target's sizes against the wire limits (the selector's own is checked when it is parsed).

    Raises:
        InvalidInput: too many host names, or one too long.
    """
    limits.TARGET_HOSTS.check(len(target.hosts))
    for name in target.hosts:
        limits.NAME_BYTES.check(limits.utf8_size(name), "a host name in --host")


def new_command_id() -> str:
    return "cmd-" + secrets.token_hex(10)


def new_invocation_id() -> str:
    return "inv-" + secrets.token_hex(12)


class CommandService:
    def __init__(
        self,
        store: InvocationStore,
        fleet: FleetService,
        objects: ObjectStore,
        *,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        replica_id: str = "",
    ) -> None:
        """
        Args:
            ack_timeout: seconds a connected host has to acknowledge a sent invocation before it
                ends failed (see dispatch.py).
            replica_id: this replica; the commands it creates or adopts are stored as its own, and
                reports about other replicas' commands are passed on (docs/architecture.md "Replicas").
        """
        self.replica_id = replica_id
        self._ack_timeout = ack_timeout
        self._store = store
        self._fleet = fleet
        self._objects = objects
        self._channel: AgentChannel | None = None
        self._runs: dict[str, CommandRun] = {}
        self._by_host: dict[str, set[str]] = {}  # host id -> ids of running commands with an invocation there
        self._sinks: dict[tuple[str, str], OutputSink] = {}
        self._owner: dict[str, tuple[str, str, str]] = {}  # invocation id -> (command id, host id, host name)
        self._watchers: dict[str, set[asyncio.Queue[None]]] = {}
        self._result_listeners: list[tuple[ResultListener, frozenset[str] | None]] = []
        self._agent_task: dict[str, str] = {}  # command id -> its agent task ("" for a command line)
        self._feed = OutputFeed(self, objects)
        # invocation id -> the replica running its command, for reports of hosts held here
        self._elsewhere: dict[str, str] = {}
        self._changed_elsewhere: set[str] = set()  # commands whose watchers on other replicas to wake
        self._catch_ups: dict[str, int] = {}  # invocation id -> times the rest of its output was asked for
        self._announce = asyncio.Event()
        self._announcer: asyncio.Task[None] | None = None
        self.announce_changes = False  # set when other replicas may watch (PostgreSQL)

    def on_result(self, listener: ResultListener, *, agent_tasks: Iterable[str] | None = None) -> None:
        """Call ``listener(command_id, host_id, report)`` after each final result is committed.

        With ``agent_tasks``, only for commands running one of those agent tasks (the hot path of
        an ordinary fan-out then calls nothing).

        A listener's failure is logged, never passed to the agent; one that must not miss a
        result also looks for them at start (the controller may stop between commit and call).
        """
        self._result_listeners.append((listener, frozenset(agent_tasks) if agent_tasks is not None else None))

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, channel: AgentChannel) -> None:
        """Resume every command that was in progress (after a restart or a crash)."""
        self._channel = channel
        self._store.start()
        for command in await self._store.in_progress(self.replica_id):
            await self._resume(command)
            log.info("resumed command %s", command.id)
        if self.announce_changes:
            self._announcer = asyncio.create_task(self._announce_changes(), name="command-changes")

    async def _windows_hosts(
        self, command: Command, hosts: Iterable[Host] = (), names: Iterable[str] = ()
    ) -> frozenset[str]:
        """The ids of the command's Windows hosts (given, or looked up by *names*) when it has a
        Windows script; none otherwise, without a lookup."""
        if not command.spec.windows_script:
            return frozenset()
        wanted = tuple(dict.fromkeys(names))
        if wanted:
            hosts = [h for h in await self._fleet.list_hosts(Target(all=True)) if h.name in set(wanted)]
        return frozenset(h.id for h in hosts if is_windows(h))

    async def _resume(self, command: Command) -> CommandRun:
        slots = [
            Slot(
                invocation_id=i.id,
                host_id=i.host_id,
                host_name=i.host_name,
                state=i.state,
                sent=i.sent_at is not None or i.state is not InvocationState.PENDING,
                sent_at=i.sent_at,
            )
            for i in await self._store.invocations(command.id, tails=False)
        ]
        return self._start_run(command, slots, await self._windows_hosts(command, names=[s.host_name for s in slots]))

    # -- replicas -----------------------------------------------------------------------------
    async def adopt(self, gone: builtins.list[str], gone_before: datetime) -> builtins.list[str]:
        """Run the unfinished commands of replicas that are gone; the ids adopted.

        Each adopted run re-sends what was in flight to hosts that are connected anywhere (the
        agents answer from their journals, never running an invocation twice), then goes on
        under the command's own limits.
        """
        assert self._channel is not None
        adopted = []
        for command in await self._store.adopt(self.replica_id, gone, gone_before):
            if command.id in self._runs:
                continue
            run = await self._resume(command)
            adopted.append(command.id)
            log.warning("adopted command %s from replica(s) %s", command.id, ", ".join(gone))
            await self._resend_in_flight(run)
        return adopted

    async def _resend_in_flight(self, run: CommandRun) -> None:
        """Send ``run``'s invocations in flight again to hosts connected anywhere (the agents answer
        from their journals, never running one twice)."""
        assert self._channel is not None
        for slot in builtins.list(run.slots.values()):
            if slot.sent and not slot.state.final and self._channel.is_connected(slot.host_id):
                await run.resend(slot)

    async def release_lost(self) -> builtins.list[str]:
        """Stop running commands another replica adopted (this one was cut off from the others)."""
        lost = await self._store.owned_elsewhere(self.replica_id, builtins.list(self._runs))
        for command_id in lost:
            run = self._runs.get(command_id)
            if run is not None and run.task is not None:
                run.task.cancel()
                await asyncio.gather(run.task, return_exceptions=True)
            log.warning("command %s is run by another replica now; stopped running it here", command_id)
            await self._forget_run(command_id)
        return lost

    async def after_silence(self) -> builtins.list[str]:
        """This replica was cut off from the database long enough to be fenced (docs/partitions.md):
        stop the commands another replica adopted meanwhile (their ids are returned), and send
        what the others have in flight again, since reports refused meanwhile come again from
        an agent only when it is asked (it answers from its journal, never running twice)."""
        lost = await self.release_lost()
        for run in builtins.list(self._runs.values()):
            await self._resend_in_flight(run)
        return lost

    def on_command_notice(self, payload: str) -> None:
        """A notification on notify.COMMANDS from another replica (or this one)."""
        kind, _, rest = payload.partition(" ")
        if kind == CANCEL:
            run = self._runs.get(rest)
            if run is not None:
                run.request_cancel()
        elif kind == CHANGED:
            for command_id in rest.split(" "):
                if command_id not in self._runs:
                    self._wake_watchers(command_id)

    async def host_moved(self, host_id: str) -> None:
        """A host connected to another replica: what it has in flight here goes out through that one."""
        await self.host_connected(host_id)

    async def owner_elsewhere(self, host_id: str, invocation_id: str) -> str:
        """The replica running ``invocation_id``'s command when that is not this one, else "".

        Raises:
            PermissionDenied: the invocation belongs to another host.
        """
        if invocation_id in self._owner:
            return ""
        owner = self._elsewhere.get(invocation_id)
        if owner is not None:
            return owner
        route = await self._store.invocation_route(invocation_id)
        if route is None:
            return ""
        _, owning_host, final, owner = route
        if owning_host != host_id:
            raise PermissionDenied(
                f"host {host_id} reported on invocation {invocation_id[:64]} of host {owning_host}",
                "each host reports only its own invocations",
            )
        if final or owner in ("", self.replica_id):
            return ""
        if len(self._elsewhere) >= _ELSEWHERE_CACHE:
            self._elsewhere.pop(next(iter(self._elsewhere)))
        self._elsewhere[invocation_id] = owner
        return owner

    def forget_owner(self, invocation_id: str) -> None:
        """The replica cached as running this invocation's command did not take the report."""
        self._elsewhere.pop(invocation_id, None)

    async def _announce_changes(self) -> None:
        while True:
            await self._announce.wait()
            await asyncio.sleep(_ANNOUNCE_COALESCE)
            self._announce.clear()
            changed, self._changed_elsewhere = self._changed_elsewhere, set()
            try:
                await self._store.announce_changes(sorted(changed))
            except Exception as exc:  # watchers elsewhere then see it at their next change
                log.warning("could not tell other replicas about command changes: %s", exc)

    async def stop(self) -> None:
        if self._announcer is not None:
            self._announcer.cancel()
            await asyncio.gather(self._announcer, return_exceptions=True)
        for run in list(self._runs.values()):
            if run.task:
                run.task.cancel()
        await asyncio.gather(*(r.task for r in self._runs.values() if r.task), return_exceptions=True)
        for sink in self._sinks.values():
            await sink.abort()
        await self._store.stop()

    def _start_run(self, command: Command, slots: list[Slot], windows: frozenset[str] = frozenset()) -> CommandRun:
        assert self._channel is not None
        run = CommandRun(
            command,
            slots,
            self._store,
            self._channel,
            self._instruction_for(command, windows),
            self._notify,
            self._done,
            ack_timeout=self._ack_timeout,
        )
        self._runs[command.id] = run
        self._agent_task[command.id] = command.spec.agent_task
        for slot in slots:
            self._owner[slot.invocation_id] = (command.id, slot.host_id, slot.host_name)
            if not slot.state.final:
                self._by_host.setdefault(slot.host_id, set()).add(command.id)
        run.start()
        return run

    async def _done(self, command_id: str) -> None:
        await self._forget_run(command_id)
        self._notify(command_id)

    async def _forget_run(self, command_id: str) -> None:
        self._agent_task.pop(command_id, None)
        run = self._runs.pop(command_id, None)
        if run is not None:
            for slot in run.slots.values():
                self._owner.pop(slot.invocation_id, None)
                commands = self._by_host.get(slot.host_id)
                if commands is not None:
                    commands.discard(command_id)
                    if not commands:
                        del self._by_host[slot.host_id]

    def _instruction_for(self, command: Command, windows: frozenset[str] = frozenset()) -> Any:
        """How to tell each host what to run; *windows*: hosts that get ``spec.windows_script``."""
        spec = command.spec

        def instruction(slot: Slot) -> RunInstruction:
            out = self._sinks.get((slot.invocation_id, "stdout"))
            err = self._sinks.get((slot.invocation_id, "stderr"))
            return RunInstruction(
                invocation_id=slot.invocation_id,
                command_id=command.id,
                argv=tuple(spec.argv),
                script=spec.windows_script if slot.host_id in windows else spec.script,
                cwd=spec.cwd,
                # As SSM's AWS_SSM_INSTANCE_ID: scripts can tell where and as what they run.
                env={
                    **dict(spec.env),
                    "FLEETOPS_COMMAND_ID": command.id,
                    "FLEETOPS_INVOCATION_ID": slot.invocation_id,
                    "FLEETOPS_HOST_ID": slot.host_id,
                    "FLEETOPS_HOST_NAME": slot.host_name,
                },
                run_as=spec.run_as,
                timeout_seconds=spec.timeout_seconds,
                kill_grace_seconds=spec.kill_grace_seconds,
                stdout_offset=out.received if out else 0,
                stderr_offset=err.received if err else 0,
                agent_task=spec.agent_task,
                task_input=spec.task_input,
            )

        return instruction

    # -- operator calls ---------------------------------------------------------------------
    async def create(
        self,
        actor: str,
        target: Target,
        spec: CommandSpec,
        *,
        authorize: Callable[[list[Host]], None] | None = None,
        command_id: str | None = None,
    ) -> tuple[Command, list[Host]]:
        """Resolve the target, persist the command and one invocation per host, start sending.

        ``authorize`` sees the resolved hosts before anything is stored; it raises to refuse.
        ``command_id`` is an id chosen (and recorded) by the caller beforehand, so that a caller
        that stops between recording it and this call can tell afterwards whether the command
        exists (a runbook step resumed after a restart); creating it twice is a Conflict.

        Raises:
            InvalidInput: no target, a bad selector, bad limits or an empty command.
            NotFound: an explicitly named host does not exist.
            PermissionDenied: ``authorize`` refused (nothing was created).
        """
        spec.validate()
        check_target(target)
        hosts = await self._fleet.resolve_target(target)
        if not hosts:
            raise NotFound(f"no host matches {target.describe()}", "check the selector with opsctl hosts list --target")
        if authorize is not None:
            authorize(hosts)
        total = len(hosts)
        now = datetime.now(UTC)
        planned = Command(
            id=command_id or new_command_id(),
            created_at=now,
            created_by=actor,
            spec=replace(
                spec,
                max_concurrency=spec.max_concurrency or rates.DEFAULT_MAX_CONCURRENCY,
                max_errors=spec.max_errors or rates.DEFAULT_MAX_ERRORS,
            ),
            target=target.describe(),
            concurrency_limit=rates.max_concurrency(spec.max_concurrency).resolve(total),
            error_limit=rates.max_errors(spec.max_errors).resolve(total),
            status=CommandStatus.IN_PROGRESS,
            total=total,
            counts={},
            finished_at=None,
            cancel_requested=False,
        )
        slots = [Slot(new_invocation_id(), h.id, h.name, InvocationState.PENDING, False) for h in hosts]
        await self._store.create(
            planned, [(s.invocation_id, s.host_id, s.host_name) for s in slots], now, owner=self.replica_id
        )
        self._start_run(planned, slots, await self._windows_hosts(planned, hosts))
        command = await self._store.command(planned.id)
        assert command is not None
        return command, hosts

    async def command(self, command_id: str) -> Command:
        command = await self._store.command(command_id)
        if command is None:
            raise NotFound(f"no such command: {command_id}", "see opsctl run list")
        return command

    async def hosts_of(self, command_ids: list[str]) -> dict[str, list[str]]:
        """The host ids of each command's invocations."""
        return await self._store.hosts_of(command_ids)

    async def list(self, limit: int = 50, host_id: str = "") -> list[Command]:
        """The latest ``limit`` (1-1000) commands as a listing shows them (see models.listed); with
        *host_id*, those sent to that host."""
        return [listed(c) for c in await self._store.commands(max(1, min(limit, 1000)), host_id)]

    async def cancel(self, command_id: str) -> Command:
        command = await self._store.command(command_id)
        if command is None:
            raise NotFound(f"no such command: {command_id}", "see opsctl run list")
        if command.status is not CommandStatus.IN_PROGRESS:
            raise Conflict(f"command {command_id} already ended ({command.status.value})")
        await self._store.set_cancel_requested(command_id)
        run = self._runs.get(command_id)
        if run is not None:
            run.request_cancel()
        refreshed = await self._store.command(command_id)
        assert refreshed is not None
        return refreshed

    def read_output(self, command_id: str, host_name: str, stream: str) -> Any:
        return self._objects.read(output_key(command_id, host_name, stream))

    # -- live view and output -----------------------------------------------------------------
    async def view(
        self, command_id: str, *, tails: bool = True, only: Iterable[str] | None = None
    ) -> tuple[Command, builtins.list[Invocation]]:
        """A command and its invocations (``only``: those ids) as they stand now.

        The stored rows, completed by what this replica knows before the database does: states ahead of
        the write-behind, the output running invocations sent so far (byte counts and, with
        ``tails``, tails), and why each unfinished one waits (``waiting_reason``, and
        ``host_offline_since`` from fleet presence). Tails past DETAIL_OUTPUT_BYTES in all are
        left out.

        Raises:
            NotFound: no such command.
        """
        command = await self.command(command_id)
        if only is not None:
            stored = [i for i in await self._store.invocations_by_id(only) if i.command_id == command_id]
        else:
            stored = await self._store.invocations(command_id, tails=tails)
        run = self._runs.get(command_id)
        unfinished = [i for i in stored if not i.state.final]
        hosts: dict[str, HostPresence] = {}
        if unfinished:
            hosts = await self._fleet.presence_of(builtins.list(dict.fromkeys(i.host_id for i in unfinished)))
        now = datetime.now(UTC)
        in_flight = run.in_flight if run else sum(1 for i in unfinished if i.sent_at is not None)
        stopped_by_errors = run.stopped_by_errors if run else False  # once a view: it counts every slot
        undeliverable_at = run.delivery_deadline if run else None
        budget = limits.DETAIL_OUTPUT_BYTES
        invocations = []
        for i in stored:
            if not i.state.final:
                i = as_it_stands(
                    i,
                    slot=run.slots.get(i.id) if run else None,
                    host=hosts.get(i.host_id),
                    command=command,
                    in_flight=in_flight,
                    out=self._sinks.get((i.id, "stdout")),
                    err=self._sinks.get((i.id, "stderr")),
                    now=now,
                    tails=tails,
                    stopped_by_errors=stopped_by_errors,
                    undeliverable_at=undeliverable_at,
                )
            size = len(i.stdout_tail) + len(i.stderr_tail)
            if size > budget:
                i = replace(i, stdout_tail=b"", stderr_tail=b"")
            else:
                budget -= size
            invocations.append(i)
        return command, invocations

    def read_live_output(self, invocation: Invocation, *, stderr: bool, follow: bool) -> AsyncIterator[OutputPiece]:
        """One stream of ``invocation``, from its first byte: all of it once final; while it runs,
        what arrived so far and, with ``follow``, the rest as it comes (see live.OutputFeed.read)."""
        return self._feed.read(invocation, stderr=stderr, follow=follow)

    def watch_output(self, command_id: str, invocations: builtins.list[Invocation]) -> AsyncIterator[WatchEvent]:
        """Output of ``invocations`` as it arrives and each one's end (see live.OutputFeed.watch)."""
        return self._feed.watch(command_id, invocations)

    # -- LiveSource (what the feed reads) ---------------------------------------------------------
    def sink(self, invocation_id: str, stream: str) -> OutputSink | None:
        return self._sinks.get((invocation_id, stream))

    def known_final(self, command_id: str, invocation_id: str) -> bool:
        run = self._runs.get(command_id)
        slot = run.slots.get(invocation_id) if run else None
        return slot is None or slot.state.final

    async def invocations_by_id(self, invocation_ids: Iterable[str]) -> builtins.list[Invocation]:
        return await self._store.invocations_by_id(invocation_ids)

    # -- watching ---------------------------------------------------------------------------
    def runs_here(self, command_id: str) -> bool:
        """Whether this replica is running the command now (it has not ended, nor been left to another)."""
        return command_id in self._runs

    def subscribe(self, command_id: str) -> asyncio.Queue[None]:
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._watchers.setdefault(command_id, set()).add(queue)
        return queue

    def unsubscribe(self, command_id: str, queue: asyncio.Queue[None]) -> None:
        watchers = self._watchers.get(command_id)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[command_id]

    def _notify(self, command_id: str) -> None:
        self._wake_watchers(command_id)
        if self.announce_changes:
            self._changed_elsewhere.add(command_id)
            self._announce.set()

    def _wake_watchers(self, command_id: str) -> None:
        for queue in self._watchers.get(command_id, ()):
            if queue.empty():
                queue.put_nowait(None)  # coalesced: a watcher re-reads everything that changed
        self._feed.command_changed(command_id)

    # -- what agents report -----------------------------------------------------------------
    def _owned(self, host_id: str, invocation_id: str) -> tuple[str, str, str] | None:
        owner = self._owner.get(invocation_id)
        if owner is None:
            return None  # finished long ago, or unknown: nothing to do
        if owner[1] != host_id:
            raise PermissionDenied(
                f"host {host_id} reported on invocation {invocation_id} of host {owner[1]}",
                "each host reports only its own invocations",
            )
        return owner

    async def host_connected(self, host_id: str) -> None:
        """Re-send what a (re)connected host has in flight; let queued invocations go out."""
        assert self._channel is not None
        for command_id in list(self._by_host.get(host_id, ())):
            run = self._runs.get(command_id)
            if run is None:
                continue
            slot = run.by_host.get(host_id)
            if slot is not None and slot.sent and not slot.state.final:
                # The agent answers a re-send from its journal: it never runs an invocation twice.
                await run.resend(slot)
            run.host_connected(host_id)

    async def invocation_progress(self, host_id: str, invocation_id: str, state: InvocationState, at: datetime) -> None:
        owner = self._owned(host_id, invocation_id)
        if owner is None:
            return
        self._store.progress(invocation_id, state, at)
        run = self._runs.get(owner[0])
        if run is not None:
            run.updated(invocation_id, state)
        self._notify(owner[0])

    async def invocation_output(self, host_id: str, invocation_id: str, stream: str, offset: int, data: bytes) -> None:
        """Store a chunk of output.

        Raises:
            InvalidInput: the chunk is larger than agents send (the link is refused; nothing stored).
            PermissionDenied: the invocation belongs to another host.
        """
        limits.OUTPUT_CHUNK_BYTES.check(len(data), f"an output chunk of invocation {invocation_id[:64]}")
        owner = self._owned(host_id, invocation_id)
        if owner is None:
            return
        run = self._runs.get(owner[0])
        if run is not None:
            run.heard(invocation_id)
        key = (invocation_id, stream)
        sink = self._sinks.get(key)
        if sink is None:
            sink = self._sinks[key] = OutputSink(self._objects, output_key(owner[0], owner[2], stream))
            self._notify(owner[0])  # a follower waiting for this stream's first byte reads it from the sink
        await sink.write(offset, data)
        self._feed.output_arrived(owner[0], invocation_id)

    async def _catch_up(self, run: CommandRun, slot: Slot, report: InvocationReport) -> bool:
        """Whether output is missing from what this replica holds for ``report`` and the host was
        asked for the rest (at most _CATCH_UPS times an invocation; then the result is stored with
        the loss in its reason)."""
        out = self._sinks.get((report.invocation_id, "stdout"))
        err = self._sinks.get((report.invocation_id, "stderr"))
        have_out, have_err = (out.received if out else 0), (err.received if err else 0)
        if have_out >= report.stdout_bytes and have_err >= report.stderr_bytes:
            return False
        asked = self._catch_ups.get(report.invocation_id, 0)
        if asked >= _CATCH_UPS:
            return False
        self._catch_ups[report.invocation_id] = asked + 1
        log.warning(
            "invocation %s: the result came before all of its output (%d/%d stdout, %d/%d stderr bytes here); "
            "asking host %s for the rest",
            report.invocation_id,
            have_out,
            report.stdout_bytes,
            have_err,
            report.stderr_bytes,
            slot.host_name,
        )
        await run.resend(slot)
        return True

    async def invocation_result(self, host_id: str, report: InvocationReport) -> bool:
        """Store a final result; returns True once it is durable (the caller then acks the agent)."""
        assert self._channel is not None
        if max(report.stdout_bytes, report.stderr_bytes) > _MAX_STREAM_BYTES:
            raise InvalidInput(
                f"the result of invocation {report.invocation_id[:64]} claims more output than any host can write",
                "this is not a fleetops agent's result",
            )
        owner = self._owned(host_id, report.invocation_id)
        if owner is None:
            # Already final and forgotten: acknowledge again so the agent can let go. Not final
            # (a command being adopted, or run elsewhere): not acknowledged; the agent sends it again.
            route = await self._store.invocation_route(report.invocation_id)
            return route is None or route[2]
        command_id = owner[0]
        run = self._runs.get(command_id)
        slot = run.slots.get(report.invocation_id) if run else None
        if slot is not None and slot.state.final:
            return True
        if run is not None and slot is not None and await self._catch_up(run, slot, report):
            return False  # not acknowledged: the result comes again after the rest of the output
        self._catch_ups.pop(report.invocation_id, None)
        out = self._sinks.pop((report.invocation_id, "stdout"), None)
        err = self._sinks.pop((report.invocation_id, "stderr"), None)
        stored_out = await out.close() if out else 0
        stored_err = await err.close() if err else 0
        # A host's reason is data: cut to the limit so that no host can make a command unreadable.
        reason = limits.truncate_utf8(report.reason, limits.REASON_BYTES.maximum)
        if stored_out != report.stdout_bytes or stored_err != report.stderr_bytes:
            missing = (
                f"output incomplete: controller stored {stored_out}/{report.stdout_bytes} stdout and "
                f"{stored_err}/{report.stderr_bytes} stderr bytes"
            )
            log.error("invocation %s: %s", report.invocation_id, missing)
            reason = limits.truncate_utf8(f"{reason}; {missing}" if reason else missing, limits.REASON_BYTES.maximum)
        if run is not None:
            # Free the slot now (the next host need not wait for this commit); the agent is
            # acknowledged only after the commit below, and a command is only marked finished
            # after its pending results are flushed (InvocationStore.finish_command).
            run.updated(report.invocation_id, report.state)
        await self._store.finish(
            report.invocation_id,
            {
                "state": report.state.value,
                "exit_code": report.exit_code,
                "reason": reason,
                "rebooted": report.rebooted,
                "task_report": None if report.task_report is None else dict(report.task_report),
                "stdout_tail": out.tail if out else b"",
                "stderr_tail": err.tail if err else b"",
                "stdout_bytes": report.stdout_bytes,
                "stderr_bytes": report.stderr_bytes,
                "started_at": report.started_at,
                "finished_at": report.finished_at or datetime.now(UTC),
            },
        )
        self._notify(command_id)
        task = self._agent_task.get(command_id)
        for listener, tasks in self._result_listeners:
            if tasks is not None and task is not None and task not in tasks:
                continue
            try:
                await listener(command_id, host_id, report)
            except Exception:
                log.exception("a listener failed on the result of invocation %s", report.invocation_id)
        return True
