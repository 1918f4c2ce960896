"""Why an invocation has not finished yet, in words an operator acts on.

``opsctl run`` prints these next to the hosts it still waits for, so "3 pending" never leaves the
operator guessing: the host is offline (since when, and when the invocation gives up), the
command's max-concurrency holds it back, the host has not acknowledged it, or it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from fleetops.common.states import InvocationState
from fleetops.controller.commands.dispatch import Slot
from fleetops.controller.commands.models import Command, Invocation
from fleetops.controller.commands.output import OutputSink
from fleetops.controller.fleet.models import HostPresence, HostStatus


@dataclass(frozen=True)
class WaitingContext:
    """What the reason depends on besides the invocation's own state.

    Attributes:
        sent: the invocation went out to its host (at least once).
        host_online: the host has a live link to some controller replica.
        offline_since: when the host was last seen (None: never connected), for an offline host.
        in_flight: the command's invocations sent and not final.
        concurrency_limit: the command's resolved max-concurrency.
        cancelling: the operator cancelled the command.
        stopped_by_errors: more invocations failed than max-errors allows: nothing new is sent.
        undeliverable_at: when an unsent invocation of an offline host ends undeliverable.
        now: the time the reason is for.
    """

    sent: bool
    host_online: bool
    offline_since: datetime | None
    in_flight: int
    concurrency_limit: int
    cancelling: bool = False
    stopped_by_errors: bool = False
    undeliverable_at: datetime | None = None
    now: datetime | None = None


def when(moment: datetime, now: datetime | None) -> str:
    """``12:01:07Z`` on the same (UTC) day as ``now``, ``2026-12-04 12:01:07Z`` otherwise."""
    if now is not None and moment.date() == now.date():
        return moment.strftime("%H:%M:%SZ")
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def waiting_reason(state: InvocationState, context: WaitingContext) -> str:
    """The reason an invocation in ``state`` is not final yet; ``""`` for a final one."""
    if state.final:
        return ""
    c = context
    if c.host_online:
        offline = ""
    elif c.offline_since is None:
        offline = "host has never connected"
    else:
        offline = f"host offline since {when(c.offline_since, c.now)}"
    if not c.sent:
        if c.cancelling:
            return "cancelling: it will not be sent"
        if c.stopped_by_errors:
            return "will not be sent: more invocations failed than max-errors allows"
        if offline:
            gives_up = f"; undeliverable at {when(c.undeliverable_at, c.now)}" if c.undeliverable_at else ""
            return f"{offline}, not yet sent{gives_up}"
        if c.in_flight >= c.concurrency_limit:
            return f"not yet sent: max concurrency {c.concurrency_limit} reached"
        return "not yet sent"
    if state is InvocationState.PENDING:
        step = "sent, waiting for the host to acknowledge"
    elif state is InvocationState.DELIVERED:
        step = "delivered, starting"
    else:
        step = "running"
    if c.cancelling:
        step = f"{step}; cancel requested"
    if offline:
        # The agent keeps running it and journals the result; it comes when the host reconnects.
        return f"{offline}; {step}, the result comes when it reconnects"
    return step


# Non-final states in the order an invocation moves through them.
_PROGRESS = (InvocationState.PENDING, InvocationState.DELIVERED, InvocationState.RUNNING)


def as_it_stands(
    i: Invocation,
    *,
    slot: Slot | None,
    host: HostPresence | None,
    command: Command,
    in_flight: int,
    out: OutputSink | None,
    err: OutputSink | None,
    now: datetime,
    tails: bool,
    stopped_by_errors: bool,
    undeliverable_at: datetime | None,
) -> Invocation:
    """Unfinished invocation ``i`` as stored, updated with what its running command knows in memory:
    a state ahead of the write-behind, the output received so far (``out``/``err``; tails only
    with ``tails``), and why it waits (with ``host_offline_since`` from the host's presence).
    ``stopped_by_errors`` and ``undeliverable_at`` are the running command's (see WaitingContext;
    False and None when no run holds it here)."""
    state = i.state
    if slot is not None and not slot.state.final and _PROGRESS.index(slot.state) > _PROGRESS.index(state):
        state = slot.state  # the database gets it with the next write-behind batch
    online = host is not None and host.status is HostStatus.ONLINE
    offline_since = None if online or host is None else host.last_seen_at
    context = WaitingContext(
        sent=slot.sent if slot is not None else (i.sent_at is not None or state is not InvocationState.PENDING),
        host_online=online,
        offline_since=offline_since,
        in_flight=in_flight,
        concurrency_limit=command.concurrency_limit,
        cancelling=command.cancel_requested,
        stopped_by_errors=stopped_by_errors,
        undeliverable_at=undeliverable_at,
        now=now,
    )
    return replace(
        i,
        state=state,
        stdout_bytes=out.received if out else i.stdout_bytes,
        stderr_bytes=err.received if err else i.stderr_bytes,
        stdout_tail=out.tail if out and tails else i.stdout_tail,
        stderr_tail=err.tail if err and tails else i.stderr_tail,
        waiting_reason=waiting_reason(state, context),
        host_offline_since=offline_since,
    )


__all__ = ["WaitingContext", "as_it_stands", "waiting_reason", "when"]
