"""The streaming reads of run command: WatchCommand, GetInvocationOutput and WatchOutput.

OperatorService (rpc/operator/commands.py) authorizes and audits each call (exactly like GetCommand: ``command.run`` on
the command's hosts), then delegates here; these turn the run-command room's live view and
output feed (``controller/commands/live.py``) into messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fleetops.common.errors import NotFound
from fleetops.common.states import CommandStatus
from fleetops.controller.commands.live import InvocationEnded, OutputPiece, WatchEvent
from fleetops.controller.commands.models import Invocation
from fleetops.controller.commands.service import CommandService
from fleetops.controller.rpc import convert
from fleetops.v1 import operator_pb2

# Shortest time between two progress messages of one watched command: a fan-out to thousands of
# hosts changes state thousands of times a second; watchers get coalesced snapshots.
WATCH_INTERVAL = 0.1
# ...and at least this many times what the previous read and message took: re-reading ten thousand
# invocations costs the controller tens of milliseconds of the event loop that delivers the command,
# so a watcher of a big fan-out reads less often rather than slowing it down.
WATCH_COST_FACTOR = 4.0
# Longest time between two reads of a watched command's state when nothing wakes the watcher
# (a host going offline, another replica's progress).
WATCH_RECHECK = 2.0


def _signature(i: Invocation) -> tuple[Any, ...]:
    """What makes an invocation worth sending again to a WatchCommand client."""
    return (i.state, i.waiting_reason, i.host_offline_since, i.exit_code, i.reason, i.rebooted)


async def watch_command(commands: CommandService, command_id: str, include_output: bool) -> AsyncIterator[Any]:
    """CommandDetail messages until the command ends: the counts, and the invocations that changed
    since the previous message (the first message: all of them), each unfinished one with why it waits."""
    queue = commands.subscribe(command_id)
    loop = asyncio.get_running_loop()
    sent: dict[str, tuple[Any, ...]] = {}
    ran_here = commands.runs_here(command_id)  # at any time since the watch began
    try:
        while True:
            last_read = loop.time()
            command, invocations = await commands.view(command_id, tails=False)
            changed = [i for i in invocations if _signature(i) != sent.get(i.id)]
            if include_output and changed:
                _, changed = await commands.view(command_id, tails=True, only=[i.id for i in changed])
            for i in changed:
                sent[i.id] = _signature(i)
            done = command.status is not CommandStatus.IN_PROGRESS
            yield operator_pb2.CommandDetail(
                command=convert.command_to_proto(command),
                invocations=[convert.invocation_to_proto(i, include_output) for i in changed],
                done=done,
            )
            if done:
                return
            ran_here = ran_here or commands.runs_here(command_id)
            await _until_next_read(commands, command_id, queue, last_read, loop.time() - last_read, ran_here)
    finally:
        commands.unsubscribe(command_id, queue)


async def _until_next_read(
    commands: CommandService,
    command_id: str,
    queue: asyncio.Queue[None],
    last_read: float,
    cost: float,
    ran_here: bool,
) -> None:
    """Wait for a change (or WATCH_RECHECK), and until the throttle allows the next read (``cost``: what
    the last read and message took). The end of the command's run on this replica (``ran_here``: it
    ran here at some time during the watch) cuts both waits short: its final state goes out at once."""
    loop = asyncio.get_running_loop()
    earliest = last_read + max(WATCH_INTERVAL, WATCH_COST_FACTOR * cost)
    recheck_at = max(last_read + WATCH_RECHECK, earliest)

    def ended_here() -> bool:
        return ran_here and not commands.runs_here(command_id)

    if ended_here():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(queue.get(), recheck_at - loop.time())
    # A change (or the recheck): wait out the throttle, looking every WATCH_INTERVAL for the run's end.
    while not ended_here() and (left := earliest - loop.time()) > 0:
        await asyncio.sleep(min(left, WATCH_INTERVAL))


def find_invocation(invocations: list[Invocation], command_id: str, host: str) -> Invocation:
    """The invocation on ``host`` (a name or an id).

    Raises:
        NotFound: the command has none there.
    """
    for i in invocations:
        if host in (i.host_name, i.host_id):
            return i
    raise NotFound(f"command {command_id} has no invocation on host {host}", f"see opsctl run show {command_id}")


def output_data(piece: OutputPiece) -> operator_pb2.OutputData:
    return operator_pb2.OutputData(data=piece.data, offset=piece.offset, skipped=piece.skipped)


def output_event(event: WatchEvent) -> operator_pb2.OutputEvent:
    if isinstance(event, InvocationEnded):
        return operator_pb2.OutputEvent(
            host_name=event.invocation.host_name,
            finished=convert.invocation_to_proto(event.invocation, include_output=False),
        )
    return operator_pb2.OutputEvent(
        host_name=event.host_name,
        output=operator_pb2.LiveOutput(
            stderr=event.stderr, offset=event.offset, data=event.data, skipped=event.skipped
        ),
    )


def select_hosts(invocations: list[Invocation], command_id: str, hosts: list[str]) -> list[Invocation]:
    """The invocations on ``hosts`` (names or ids; none: all of them).

    Raises:
        NotFound: a host the command does not run on.
    """
    if not hosts:
        return invocations
    chosen: dict[str, Invocation] = {}
    for host in hosts:
        i = find_invocation(invocations, command_id, host)
        chosen[i.id] = i
    return sorted(chosen.values(), key=lambda i: i.host_name)


__all__ = ["find_invocation", "output_data", "output_event", "select_hosts", "watch_command"]
