"""One command's fan-out: who gets it when, under SSM's max-concurrency and max-errors.

Rules (docs/run-command.md):
- at most ``concurrency_limit`` invocations are in flight (sent, delivered or running);
- once more than ``error_limit`` invocations failed or timed out, nothing new is sent and every
  invocation not yet sent ends ``not_started``; those in flight finish;
- an invocation whose host is offline waits until ``delivery_timeout`` after the command was
  created, then ends ``undeliverable`` (a queued invocation of an online host keeps waiting for a
  slot: it is not undeliverable, only slow);
- cancel: nothing new is sent, unsent invocations end ``cancelled``, running ones are told to stop;
- a sent invocation the host does not acknowledge (no ``delivered`` and no result) within the
  ack timeout while it is connected ends ``failed``; so does one sent ``MAX_SENDS`` times without
  an acknowledgement (the host drops the link each time it gets it), and one the channel cannot
  send at all (larger than an agent accepts). None of them can keep a host in a reconnect loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fleetops.common.errors import InvalidInput
from fleetops.common.session_flow import Timer
from fleetops.common.states import CommandStatus, InvocationState
from fleetops.controller.commands.interfaces import AgentChannel
from fleetops.controller.commands.models import Command, RunInstruction
from fleetops.controller.commands.store import InvocationStore

log = logging.getLogger(__name__)

# How many RunInvocations are written concurrently (see _send_more).
SEND_CHUNK = 128
SEND_CHUNKS_IN_FLIGHT = 4
# An invocation in flight with no word from its host for this long past its own timeouts ends failed.
RESULT_GRACE = timedelta(minutes=5)
# How long a connected host has to acknowledge a sent invocation (settings: command_ack_timeout).
DEFAULT_ACK_TIMEOUT = 120.0
# Sends of one invocation without an acknowledgement after which it ends failed (a host that drops
# its link whenever it gets the invocation would otherwise get it again at every reconnect).
MAX_SENDS = 3
#: How often (on the run's clock) the loop looks for unacknowledged and silent invocations.
EXPIRY_CHECK_INTERVAL = timedelta(seconds=1)


class RunClock(Protocol):
    """What a command run needs of time: the real clock by default (:class:`SystemClock`), a manual one in tests.

    Its deadlines are wall-clock times (a command's ``created_at`` is stored), so ``now`` is a UTC datetime.
    """

    def now(self) -> datetime: ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer: ...


class SystemClock:
    """The wall clock and the running event loop's timers."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)


@dataclass
class Slot:
    invocation_id: str
    host_id: str
    host_name: str
    state: InvocationState
    sent: bool
    sent_at: datetime | None = None
    sends: int = 0  # sends by this controller process without an acknowledgement yet
    last_sent: datetime | None = None


@dataclass
class _Tally:
    final: int = 0
    errors: int = 0
    in_flight: int = 0
    unsent: int = 0


class CommandRun:
    """The task that fans one command out to its hosts and ends each invocation (see the module's rules).

    Args:
        ack_timeout: seconds a connected host has to acknowledge a sent invocation.
        clock: tells the time the run's deadlines are checked against and wakes its loop when the next
            one is due; default: :class:`SystemClock`.
    """

    def __init__(
        self,
        command: Command,
        slots: list[Slot],
        store: InvocationStore,
        channel: AgentChannel,
        instruction: Callable[[Slot], RunInstruction],
        on_change: Callable[[str], None],
        on_done: Callable[[str], Awaitable[None]],
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        clock: RunClock | None = None,
    ) -> None:
        self.command_id = command.id
        self._command = command
        self._store = store
        self._channel = channel
        self._instruction = instruction
        self._on_change = on_change
        self._on_done = on_done
        self.slots = {s.invocation_id: s for s in slots}
        self.by_host = {s.host_id: s for s in slots}
        self.cancel_requested = command.cancel_requested
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        spec = command.spec
        self._delivery_timeout = spec.delivery_timeout_seconds
        self._delivery_deadline = command.created_at + timedelta(seconds=spec.delivery_timeout_seconds)
        self._result_deadline = timedelta(seconds=spec.timeout_seconds + spec.delivery_timeout_seconds) + RESULT_GRACE
        self._ack_timeout = timedelta(seconds=ack_timeout)
        self._clock: RunClock = clock or SystemClock()
        started = self._clock.now()
        for slot in slots:
            if slot.sent and slot.state is InvocationState.PENDING and slot.last_sent is None:
                slot.last_sent = started  # resumed: the clock starts again with this process

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=f"command-{self.command_id}")

    def instruction(self, slot: Slot) -> RunInstruction:
        """What ``slot``'s host is told to run (again, after a reconnect)."""
        return self._instruction(slot)

    # -- events from outside ----------------------------------------------------------------
    def updated(self, invocation_id: str, state: InvocationState) -> None:
        slot = self.slots.get(invocation_id)
        if slot is None or slot.state.final:
            return
        slot.state = state
        self.wake.set()

    def heard(self, invocation_id: str) -> None:
        """The host sent output of the invocation: it has it (its DELIVERED may come later or not at all)."""
        slot = self.slots.get(invocation_id)
        if slot is not None:
            slot.sends, slot.last_sent = 0, None

    def host_connected(self, host_id: str) -> None:
        self.wake.set()

    async def resend(self, slot: Slot) -> None:
        """Send ``slot``'s invocation again (its host reconnected); fail it after MAX_SENDS unacknowledged sends."""
        if slot.state.final:
            return
        if slot.state is InvocationState.PENDING and slot.sends >= MAX_SENDS:
            await self._fail(
                [slot],
                f"the host did not acknowledge the invocation after it was sent {slot.sends} times; "
                "it cannot accept it (see the agent's log)",
            )
            return
        await self._send(slot)

    def request_cancel(self) -> None:
        self.cancel_requested = True
        self.wake.set()

    # -- what watchers see (waiting reasons) ------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Invocations sent and not final."""
        return len(self._in_flight())

    @property
    def stopped_by_errors(self) -> bool:
        """More invocations failed than max-errors allows: nothing new is sent."""
        return self._errors() > self._command.error_limit

    @property
    def delivery_deadline(self) -> datetime:
        """When unsent invocations of offline hosts end undeliverable."""
        return self._delivery_deadline

    # -- the loop ---------------------------------------------------------------------------
    def _tally(self) -> _Tally:
        """How many slots are final (and of those, errors), in flight and unsent, in one pass."""
        tally = _Tally()
        for s in self.slots.values():
            if s.state.final:
                tally.final += 1
                tally.errors += s.state.counts_as_error
            elif s.sent:
                tally.in_flight += 1
            else:
                tally.unsent += 1
        return tally

    def _in_flight(self) -> list[Slot]:
        return [s for s in self.slots.values() if not s.state.final and s.sent]

    def _unsent(self) -> list[Slot]:
        return [s for s in self.slots.values() if not s.state.final and not s.sent]

    def _errors(self) -> int:
        return sum(1 for s in self.slots.values() if s.state.counts_as_error)

    async def _end_unsent(self, slots: list[Slot], state: InvocationState, reason: str) -> None:
        await self._store.finish_now([s.invocation_id for s in slots], state, reason)
        for s in slots:
            s.state = state
        if slots:
            self._on_change(self.command_id)

    async def _loop(self) -> None:
        cancel_sent: set[str] = set()
        expired_at: datetime | None = None
        while True:
            self.wake.clear()
            now = self._clock.now()
            before = self._tally()
            if self.cancel_requested:
                await self._end_unsent(self._unsent(), InvocationState.CANCELLED, "cancelled before it was sent")
                for slot in self._in_flight():
                    if slot.invocation_id not in cancel_sent:
                        await self._channel.cancel(slot.host_id, slot.invocation_id)
                        cancel_sent.add(slot.invocation_id)
            elif before.errors > self._command.error_limit:
                await self._end_unsent(
                    self._unsent(),
                    InvocationState.NOT_STARTED,
                    f"not started: more than {self._command.error_limit} invocations failed (max-errors)",
                )
            else:
                await self._send_more(before)
                if now >= self._delivery_deadline:
                    offline = [s for s in self._unsent() if not self._channel.is_connected(s.host_id)]
                    await self._end_unsent(
                        offline,
                        InvocationState.UNDELIVERABLE,
                        f"host was offline for the whole delivery timeout ({self._delivery_timeout}s)",
                    )
            # The timeouts are minutes long: looking for them once a second (on the run's clock) is
            # enough, and spares a fan-out to thousands of hosts two scans of every slot per result.
            if expired_at is None or now - expired_at >= EXPIRY_CHECK_INTERVAL:
                expired_at = now
                await self._expire_unacknowledged(now)
                await self._expire_silent(now)
            tally = self._tally()
            if tally.final == len(self.slots):
                await self._finish()
                return
            timeout = None
            if tally.unsent and not self.cancel_requested:
                timeout = max(0.05, (self._delivery_deadline - now).total_seconds())
            if tally.in_flight:
                timeout = min(timeout or 60.0, 60.0, max(0.05, self._ack_timeout.total_seconds() / 2))
            await self._sleep(timeout)

    async def _sleep(self, timeout: float | None) -> None:
        """Until something happens (:attr:`wake`) or ``timeout`` seconds pass on the run's clock."""
        timer = self._clock.call_later(timeout, self.wake.set) if timeout is not None else None
        try:
            await self.wake.wait()
        finally:
            if timer is not None:
                timer.cancel()

    async def _send_more(self, tally: _Tally) -> None:
        room = self._command.concurrency_limit - tally.in_flight
        if room <= 0 or not tally.unsent:
            return
        ready = sorted((s for s in self._unsent() if self._channel.is_connected(s.host_id)), key=lambda s: s.host_name)[
            :room
        ]
        if not ready:
            return
        await self._store.mark_sent([s.invocation_id for s in ready])  # persisted before sent
        now = self._clock.now()
        for slot in ready:
            slot.sent, slot.sent_at = True, now
        # Concurrent writes to many links, in chunks: one at a time serialises the fan-out behind
        # every reply the event loop handles in between; all at once delays everything else.
        # A few chunks at a time: a chunk's sends to hosts held by other replicas wait for a peer's
        # round trip (peer_client batches them), which must not hold back the next chunk's.
        in_flight: set[asyncio.Future[list[None]]] = set()
        for start in range(0, len(ready), SEND_CHUNK):
            if len(in_flight) >= SEND_CHUNKS_IN_FLIGHT:
                _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            chunk = ready[start : start + SEND_CHUNK]
            in_flight.add(asyncio.gather(*(self._send(s) for s in chunk)))
        if in_flight:
            await asyncio.gather(*in_flight)

    async def _send(self, slot: Slot) -> None:
        """Send one invocation; one the channel refuses (too large for an agent) ends failed at once."""
        try:
            sent = await self._channel.run(slot.host_id, self._instruction(slot))
        except InvalidInput as exc:
            log.error("invocation %s cannot be sent to host %s: %s", slot.invocation_id, slot.host_name, exc.message)
            await self._fail([slot], f"not sent: {exc.message}")
            return
        if sent and slot.state is InvocationState.PENDING:
            slot.sends += 1
            slot.last_sent = self._clock.now()

    async def _fail(self, slots: list[Slot], reason: str) -> None:
        slots = [s for s in slots if not s.state.final]
        if not slots:
            return
        await self._store.finish_now([s.invocation_id for s in slots], InvocationState.FAILED, reason)
        for s in slots:
            s.state = InvocationState.FAILED
        self._on_change(self.command_id)
        self.wake.set()

    async def _expire_unacknowledged(self, now: datetime) -> None:
        """Sent, still pending, the host connected, and no word from it within the ack timeout."""
        late = [
            s
            for s in self._in_flight()
            if s.state is InvocationState.PENDING
            and s.last_sent is not None
            and now - s.last_sent > self._ack_timeout
            and self._channel.is_connected(s.host_id)
        ]
        await self._fail(
            late,
            f"the host did not acknowledge the invocation within {self._ack_timeout.total_seconds():g}s "
            "of receiving it (the controller's --command-ack-timeout); it may not be able to accept it "
            "(see the agent's log)",
        )

    async def _expire_silent(self, now: datetime) -> None:
        silent = [s for s in self._in_flight() if s.sent_at is not None and now - s.sent_at > self._result_deadline]
        if silent:
            await self._store.finish_now(
                [s.invocation_id for s in silent], InvocationState.FAILED, "no result from the host in time"
            )
            for s in silent:
                s.state = InvocationState.FAILED
            self._on_change(self.command_id)

    async def _finish(self) -> None:
        states = [s.state for s in self.slots.values()]
        if self.cancel_requested:
            status = CommandStatus.CANCELLED
        elif all(s is InvocationState.SUCCESS for s in states):
            status = CommandStatus.SUCCESS
        else:
            status = CommandStatus.FAILED
        await self._store.finish_command(self.command_id, status)
        log.info("command %s finished: %s", self.command_id, status.value)
        await self._on_done(self.command_id)
