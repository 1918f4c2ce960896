"""Persistence of commands and invocations, with batched writes.

A fan-out to a thousand hosts produces thousands of state changes within a second; one
transaction each would make the database the bottleneck. Progress (delivered, running) is
written behind and coalesced; a final result is committed in the next batch and its caller waits
for that commit before acknowledging the result to the agent (so an acknowledged result is never
lost). Marking invocations as sent is committed before they are sent.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.states import FINAL_STATE_NAMES, CommandStatus, InvocationState
from fleetops.controller.commands.models import Command, CommandSpec, Invocation
from fleetops.controller.events.outbox import record_event
from fleetops.controller.store import notify
from fleetops.controller.store.models import CommandRow, InvocationRow, ReplicaRow

#: Kinds of notification on notify.COMMANDS: "cancel <command id>", "changed <command id>...".
CANCEL, CHANGED = "cancel", "changed"

#: The invocations table, for Core statements (bulk insert; executemany updates).
_INVOCATIONS = cast(Table, InvocationRow.__table__)

log = logging.getLogger(__name__)


@dataclass
class _Progress:
    state: InvocationState
    at: datetime


class InvocationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], linger: float = 0.005) -> None:
        self._sessions = sessions
        self._linger = linger
        self._progress: dict[str, _Progress] = {}
        self._finals: dict[str, tuple[dict[str, Any], asyncio.Future[None]]] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="invocation-writer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(self._linger)  # let a burst of results share one transaction
            try:
                await self.flush()
            except Exception:
                log.exception("writing invocation updates failed; retrying")
                await asyncio.sleep(0.5)
                self._wakeup.set()

    # -- commands ---------------------------------------------------------------------------
    async def create(
        self, command: Command, invocations: list[tuple[str, str, str]], now: datetime, owner: str = ""
    ) -> None:
        """Store ``command`` (its fan-out run by replica ``owner``) and its invocations, each
        ``(invocation id, host id, host name)``, pending."""
        spec = command.spec
        row = CommandRow(
            id=command.id,
            created_at=command.created_at,
            created_by=command.created_by,
            argv=list(spec.argv),
            script=spec.script,
            cwd=spec.cwd,
            env=dict(spec.env),
            run_as=spec.run_as,
            target=command.target,
            comment=spec.comment,
            max_concurrency=spec.max_concurrency,
            max_errors=spec.max_errors,
            concurrency_limit=command.concurrency_limit,
            error_limit=command.error_limit,
            timeout_seconds=spec.timeout_seconds,
            delivery_timeout_seconds=spec.delivery_timeout_seconds,
            kill_grace_seconds=spec.kill_grace_seconds,
            status=command.status.value,
            cancel_requested=command.cancel_requested,
            total=command.total,
            agent_task=spec.agent_task,
            task_input=spec.task_input or None,
            owner_replica=owner,
            document=spec.document,
            parameters=dict(spec.parameters),
            windows_script=spec.windows_script,
        )
        rows = [
            {
                "id": invocation_id,
                "command_id": command.id,
                "host_id": host_id,
                "host_name": host_name,
                "state": InvocationState.PENDING.value,
                "sent_at": None,
                "send_count": 0,
                "delivered_at": None,
                "started_at": None,
                "finished_at": None,
                "exit_code": None,
                "reason": "",
                "rebooted": False,
                "stdout_tail": b"",
                "stderr_tail": b"",
                "stdout_bytes": 0,
                "stderr_bytes": 0,
                "updated_at": now,
            }
            for invocation_id, host_id, host_name in invocations
        ]
        async with self._sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            if rows:
                await session.execute(_INVOCATIONS.insert(), rows)

    async def _command_row(self, command_id: str) -> CommandRow | None:
        async with self._sessions() as session:
            return await session.get(CommandRow, command_id)

    async def hosts_of(self, command_ids: list[str]) -> dict[str, list[str]]:
        if not command_ids:
            return {}
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(InvocationRow.command_id, InvocationRow.host_id).where(
                        InvocationRow.command_id.in_(command_ids)
                    )
                )
            ).all()
        found: dict[str, list[str]] = {}
        for command_id, host_id in rows:
            found.setdefault(command_id, []).append(host_id)
        return found

    async def command(self, command_id: str) -> Command | None:
        row = await self._command_row(command_id)
        if row is None:
            return None
        return to_command(row, await self.counts(command_id))

    async def commands(self, limit: int, host_id: str = "") -> list[Command]:
        """The latest *limit* commands (with an invocation on *host_id*, when given)."""
        query = select(CommandRow)
        if host_id:
            on_host = select(InvocationRow.command_id).where(InvocationRow.host_id == host_id)
            query = query.where(CommandRow.id.in_(on_host))
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(CommandRow.created_at.desc()).limit(limit))).scalars().all()
            counts = await self._counts(session, [r.id for r in rows])
        return [to_command(r, counts.get(r.id, {})) for r in rows]

    async def in_progress(self, owner: str) -> list[Command]:
        """Commands still running that replica ``owner`` runs (to resume), with their agent task's
        input; without counts. Commands without an owner (created before replicas had ids) become
        ``owner``'s first."""
        running = CommandRow.status == CommandStatus.IN_PROGRESS.value
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(CommandRow).where(running, CommandRow.owner_replica == "").values(owner_replica=owner)
            )
            stmt = select(CommandRow).where(running, CommandRow.owner_replica == owner)
            rows = (await session.execute(stmt)).scalars().all()
        return [to_command(r, {}, with_input=True) for r in rows]

    async def adopt(self, owner: str, gone: Iterable[str], gone_before: datetime) -> list[Command]:
        """Make ``owner`` run the unfinished commands of replicas that are gone; the adopted commands.

        A replica counts as gone only if its row still says so when the update runs (stopped, or
        no heartbeat since ``gone_before``): one that came back meanwhile keeps its commands, and
        of two survivors adopting at once, one wins each command.
        """
        gone_ids = list(gone)
        if not gone_ids:
            return []
        still_gone = select(ReplicaRow.id).where(
            ReplicaRow.id.in_(gone_ids),
            or_(ReplicaRow.stopped_at.is_not(None), ReplicaRow.heartbeat_at < gone_before),
        )
        running = CommandRow.status == CommandStatus.IN_PROGRESS.value
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(CommandRow)
                .where(running, CommandRow.owner_replica.in_(still_gone))
                .values(owner_replica=owner)
                .returning(CommandRow.id)
            )
            ids = [row[0] for row in result.all()]
            if not ids:
                return []
            rows = (await session.execute(select(CommandRow).where(CommandRow.id.in_(ids)))).scalars().all()
        return [to_command(r, {}, with_input=True) for r in rows]

    async def owned_elsewhere(self, owner: str, command_ids: Iterable[str]) -> list[str]:
        """Which of these commands another replica runs now (it adopted them while this one was cut off)."""
        wanted = list(command_ids)
        if not wanted:
            return []
        stmt = select(CommandRow.id).where(CommandRow.id.in_(wanted), CommandRow.owner_replica != owner)
        async with self._sessions() as session:
            return list((await session.execute(stmt)).scalars().all())

    async def invocation_route(self, invocation_id: str) -> tuple[str, str, bool, str] | None:
        """``(command id, host id, final, owner replica)`` of an invocation, None when unknown."""
        stmt = (
            select(InvocationRow.command_id, InvocationRow.host_id, InvocationRow.state, CommandRow.owner_replica)
            .join(CommandRow, CommandRow.id == InvocationRow.command_id)
            .where(InvocationRow.id == invocation_id)
        )
        async with self._sessions() as session:
            row = (await session.execute(stmt)).first()
        if row is None:
            return None
        command_id, host_id, state, owner = row
        return command_id, host_id, state in FINAL_STATE_NAMES, owner

    async def counts(self, command_id: str) -> dict[str, int]:
        async with self._sessions() as session:
            return (await self._counts(session, [command_id])).get(command_id, {})

    async def _counts(self, session: AsyncSession, command_ids: list[str]) -> dict[str, dict[str, int]]:
        if not command_ids:
            return {}
        stmt = (
            select(InvocationRow.command_id, InvocationRow.state, func.count())
            .where(InvocationRow.command_id.in_(command_ids))
            .group_by(InvocationRow.command_id, InvocationRow.state)
        )
        result: dict[str, dict[str, int]] = {}
        for command_id, state, n in (await session.execute(stmt)).all():
            result.setdefault(command_id, {})[state] = n
        return result

    async def set_cancel_requested(self, command_id: str) -> None:
        """Record the cancel and wake the replica running the command (NOTIFY, at commit)."""
        async with self._sessions() as session, session.begin():
            await session.execute(update(CommandRow).where(CommandRow.id == command_id).values(cancel_requested=True))
            await notify.notify(session, notify.COMMANDS, f"{CANCEL} {command_id}")

    async def announce_changes(self, command_ids: Iterable[str]) -> None:
        """Wake watchers of these commands on other replicas (one NOTIFY per payload's worth)."""
        ids = list(command_ids)
        async with self._sessions() as session, session.begin():
            for start in range(0, len(ids), 200):
                await notify.notify(session, notify.COMMANDS, " ".join([CHANGED, *ids[start : start + 200]]))

    async def finish_command(self, command_id: str, status: CommandStatus) -> bool:
        """Mark the command ended (after its pending results are written); False when it had ended already.

        Its event (``fleetops.command.succeeded`` or ``.failed``) is written in the same
        transaction, only by the update that moves it out of in-progress: a command finished twice
        (a race, a replica that adopted it) has one event.
        """
        await self.flush()
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(CommandRow)
                .where(CommandRow.id == command_id, CommandRow.status == CommandStatus.IN_PROGRESS.value)
                .values(status=status.value, finished_at=datetime.now(UTC))
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult has rowcount
                return False
            row = await session.get(CommandRow, command_id)
            assert row is not None
            counts = (await self._counts(session, [command_id])).get(command_id, {})
            succeeded = status is CommandStatus.SUCCESS
            record_event(
                session,
                "fleetops.command.succeeded" if succeeded else "fleetops.command.failed",
                subject=f"command/{command_id}",
                data=command_event_data(row, status, counts),
            )
        return True

    # -- invocations ------------------------------------------------------------------------
    async def invocations(self, command_id: str, *, tails: bool = True) -> list[Invocation]:
        """The command's invocations by host name; without ``tails`` their output tails are not loaded
        (a watcher re-reading a fan-out to thousands of hosts needs the states, not 128 KiB each)."""
        async with self._sessions() as session:
            if not tails:
                # Plain rows of the listed columns, no ORM objects: a watcher reads ten thousand of
                # them every few hundred milliseconds, and loading entities cost most of its time.
                listed = select(*_LISTED_COLUMNS).where(InvocationRow.command_id == command_id)
                found = (await session.execute(listed.order_by(InvocationRow.host_name))).all()
                return [to_invocation(r, tails=False) for r in found]
            stmt = select(InvocationRow).where(InvocationRow.command_id == command_id).order_by(InvocationRow.host_name)
            rows = (await session.execute(stmt)).scalars().all()
            return [to_invocation(r) for r in rows]

    async def invocations_by_id(self, invocation_ids: Iterable[str]) -> list[Invocation]:
        """These invocations (with their tails), by host name; unknown ids are left out."""
        wanted = list(invocation_ids)
        if not wanted:
            return []
        async with self._sessions() as session:
            stmt = select(InvocationRow).where(InvocationRow.id.in_(wanted)).order_by(InvocationRow.host_name)
            rows = (await session.execute(stmt)).scalars().all()
        return [to_invocation(r) for r in rows]

    async def mark_sent(self, invocation_ids: list[str]) -> None:
        """Durably record that these are about to be sent (persist before send)."""
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(InvocationRow)
                .where(InvocationRow.id.in_(invocation_ids))
                .values(sent_at=now, send_count=InvocationRow.send_count + 1, updated_at=now)
            )

    async def finish_now(self, invocation_ids: list[str], state: InvocationState, reason: str) -> None:
        """Final states decided by the controller (not started, undeliverable, cancelled before sending).

        A failed or timed-out invocation gets its event in the same transaction, for the rows this
        update moved out of a non-final state (``RETURNING``: one already final is left alone).
        """
        if not invocation_ids:
            return
        now = datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            stmt = (
                update(InvocationRow)
                .where(InvocationRow.id.in_(invocation_ids))
                .where(InvocationRow.state.not_in(FINAL_STATE_NAMES))
                .values(state=state.value, reason=reason, finished_at=now, updated_at=now)
            )
            if state.value not in _EVENT_OF_STATE:
                await session.execute(stmt)
                return
            ended = (await session.execute(stmt.returning(*_EVENT_COLUMNS))).all()
            _record_invocation_events(session, ended)

    def progress(self, invocation_id: str, state: InvocationState, at: datetime) -> None:
        """Write-behind: delivered/running; a later state for the same invocation replaces it."""
        current = self._progress.get(invocation_id)
        if current is None or (current.state is InvocationState.DELIVERED and state is InvocationState.RUNNING):
            self._progress[invocation_id] = _Progress(state, at)
            self._wakeup.set()

    async def finish(self, invocation_id: str, values: dict[str, Any]) -> None:
        """Commit a final state in the next batch; returns once it is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finals[invocation_id] = (values, future)
        self._wakeup.set()
        await future

    async def flush(self) -> None:
        async with self._lock:
            progress, self._progress = self._progress, {}
            finals, self._finals = self._finals, {}
            if not progress and not finals:
                return
            now = datetime.now(UTC)
            try:
                async with self._sessions() as session, session.begin():
                    await self._write_progress(session, progress, now, skip=set(finals))
                    await self._write_finals(session, finals, now)
            except BaseException as exc:
                for _, future in finals.values():
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                raise
            for _, future in finals.values():
                if not future.done():
                    future.set_result(None)

    async def _write_progress(
        self, session: AsyncSession, progress: dict[str, _Progress], now: datetime, skip: set[str]
    ) -> None:
        for state in (InvocationState.DELIVERED, InvocationState.RUNNING):
            rows = [
                {"b_id": i, "b_at": p.at, "b_now": now}
                for i, p in progress.items()
                if p.state is state and i not in skip
            ]
            if not rows:
                continue
            column = "delivered_at" if state is InvocationState.DELIVERED else "started_at"
            allowed = ["pending"] if state is InvocationState.DELIVERED else ["pending", "delivered"]
            table = _INVOCATIONS
            stmt = (
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .where(_state_in(table.c.state, allowed))
                .values({"state": state.value, column: bindparam("b_at"), "updated_at": bindparam("b_now")})
            )
            await session.execute(stmt, rows)

    async def _write_finals(
        self, session: AsyncSession, finals: dict[str, tuple[dict[str, Any], asyncio.Future[None]]], now: datetime
    ) -> None:
        if not finals:
            return
        rows = [
            {"b_id": i, **{f"b_{k}": v for k, v in values.items()}, "b_now": now} for i, (values, _) in finals.items()
        ]
        columns = list(next(iter(finals.values()))[0])
        # Core (not ORM) executemany: one statement, a row of parameters per invocation.
        table = _INVOCATIONS
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .where(~_state_in(table.c.state, FINAL_STATE_NAMES))
            .values({**{k: bindparam(f"b_{k}") for k in columns}, "updated_at": bindparam("b_now")})
        )
        await session.execute(stmt, rows)
        # The events of the failures this statement wrote. An executemany tells no row apart, but
        # the rows it changed carry this batch's ``updated_at`` and, this transaction holding their
        # write locks until it commits, nobody else can have written them since; a result that
        # found its invocation already final (a re-sent result, a timeout first) matched no row.
        failed = [i for i, (values, _) in finals.items() if values.get("state") in _EVENT_OF_STATE]
        for start in range(0, len(failed), _IDS_PER_QUERY):
            written = select(*_EVENT_COLUMNS).where(
                InvocationRow.id.in_(failed[start : start + _IDS_PER_QUERY]), InvocationRow.updated_at == now
            )
            _record_invocation_events(session, (await session.execute(written)).all())


#: The invocation states that have an event, and its type.
_EVENT_OF_STATE = {
    InvocationState.FAILED.value: "fleetops.invocation.failed",
    InvocationState.TIMED_OUT.value: "fleetops.invocation.timed_out",
}
#: What an invocation's event is made of.
_EVENT_COLUMNS = (
    InvocationRow.id,
    InvocationRow.command_id,
    InvocationRow.host_name,
    InvocationRow.state,
    InvocationRow.exit_code,
    InvocationRow.reason,
)
#: Invocation ids in one ``IN (...)``.
_IDS_PER_QUERY = 1000
#: The longest piece of text (a reason, an argv) an event's data carries.
_EVENT_TEXT = 500


def _record_invocation_events(session: AsyncSession, rows: Iterable[Row[Any, *tuple[Any, ...]]]) -> None:
    for invocation_id, command_id, host_name, state, exit_code, reason in rows:
        record_event(
            session,
            _EVENT_OF_STATE[state],
            subject=f"host/{host_name}",
            host=host_name,
            data={
                "command_id": command_id,
                "invocation_id": invocation_id,
                "host": host_name,
                "status": state,
                "exit_code": exit_code,
                "error": (reason or "")[:_EVENT_TEXT],
            },
        )


def command_what(row: CommandRow) -> str:
    """What a command runs, as its event names it: ``doc NAME:VERSION``, ``task NAME``, its argv, or
    ``script (N bytes)`` (a script's text is left out: it may hold what should not travel)."""
    if row.document:
        return f"doc {row.document}"
    if row.agent_task:
        return f"task {row.agent_task}"
    if row.argv:
        return shlex.join(row.argv)[:_EVENT_TEXT]
    return f"script ({len(row.script or b'')} bytes)"


def command_event_data(row: CommandRow, status: CommandStatus, counts: dict[str, int]) -> dict[str, Any]:
    """The ``data`` of a command's event (docs/events.md)."""
    return {
        "command_id": row.id,
        "what": command_what(row),
        "document": row.document or "",
        "started_by": row.created_by,
        "target": (row.target or "")[:_EVENT_TEXT],
        "comment": (row.comment or "")[:_EVENT_TEXT],
        "status": status.value,
        "total": row.total,
        "counts": dict(sorted(counts.items())),
    }


def _state_in(column: Any, states: Iterable[str]) -> Any:
    """``state IN (...)`` with the states inlined: executemany cannot take expanding parameters."""
    return or_(*(column == literal_column(f"'{s}'") for s in states))


def to_command(row: CommandRow, counts: dict[str, int], *, with_input: bool = False) -> Command:
    """A command row as the room sees it; an agent task's input only ``with_input`` (listings leave it out)."""
    return Command(
        id=row.id,
        created_at=row.created_at,
        created_by=row.created_by,
        spec=CommandSpec(
            argv=tuple(row.argv or ()),
            script=row.script,
            cwd=row.cwd,
            env=dict(row.env or {}),
            run_as=row.run_as,
            max_concurrency=row.max_concurrency,
            max_errors=row.max_errors,
            timeout_seconds=row.timeout_seconds,
            delivery_timeout_seconds=row.delivery_timeout_seconds,
            kill_grace_seconds=row.kill_grace_seconds,
            comment=row.comment,
            agent_task=row.agent_task or "",
            task_input=(row.task_input or b"") if with_input else b"",
            document=row.document or "",
            parameters=dict(row.parameters or {}),
            windows_script=row.windows_script,
        ),
        target=row.target,
        concurrency_limit=row.concurrency_limit,
        error_limit=row.error_limit,
        status=CommandStatus(row.status),
        total=row.total,
        counts=counts,
        finished_at=row.finished_at,
        cancel_requested=row.cancel_requested,
    )


#: What to_invocation reads of a row when the tails are left out.
_LISTED_COLUMNS = (
    InvocationRow.id,
    InvocationRow.command_id,
    InvocationRow.host_id,
    InvocationRow.host_name,
    InvocationRow.state,
    InvocationRow.exit_code,
    InvocationRow.reason,
    InvocationRow.stdout_bytes,
    InvocationRow.stderr_bytes,
    InvocationRow.delivered_at,
    InvocationRow.started_at,
    InvocationRow.finished_at,
    InvocationRow.rebooted,
    InvocationRow.updated_at,
    InvocationRow.sent_at,
)


def to_invocation(row: InvocationRow | Row[Any, *tuple[Any, ...]], *, tails: bool = True) -> Invocation:
    """An invocation from its row (or, without ``tails``, a row of _LISTED_COLUMNS)."""
    return Invocation(
        id=row.id,
        command_id=row.command_id,
        host_id=row.host_id,
        host_name=row.host_name,
        state=InvocationState(row.state),
        exit_code=row.exit_code,
        reason=row.reason,
        stdout_tail=(row.stdout_tail or b"") if tails else b"",
        stderr_tail=(row.stderr_tail or b"") if tails else b"",
        stdout_bytes=row.stdout_bytes,
        stderr_bytes=row.stderr_bytes,
        delivered_at=row.delivered_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        rebooted=row.rebooted,
        updated_at=row.updated_at,
        sent_at=row.sent_at,
    )
