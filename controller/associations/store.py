"""Associations in the database: the one place their rows become domain objects.

Three tables (``controller/store/models.py``): ``associations`` (the definitions, with the next
application the schedule wants), ``association_hosts`` (each matched host's compliance) and
``association_runs`` (the commands each application or check made).

Every replica runs the same loop; what must happen once is claimed in one statement:

* an occurrence of the schedule by moving ``next_run_at`` from the value read to the next one
  (``UPDATE ... WHERE next_run_at = :old``: the replica whose update changed the row applies it),
  and in the same transaction the hosts it applies to get their rows, so that no replica takes
  them for new hosts meanwhile;
* a new host by inserting its ``association_hosts`` row (the primary key lets one insert win);
* a check by moving ``next_check_at`` likewise.

A result changes a host's row only when it still describes that row: an application's result when
the row still waits on that command (``pending`` with it as ``last_command_id``), a check's when
nothing was applied since the check started and no later check was recorded. Results can then be
recorded twice (the listener, and the catch-up after a restart) with the same outcome.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, NotFound
from fleetops.controller.associations.models import (
    CHECKED,
    Association,
    AssociationRun,
    HostCompliance,
    Status,
    Trigger,
    is_id,
)
from fleetops.controller.fleet.models import Target
from fleetops.controller.store.models import AssociationHostRow, AssociationRow, AssociationRunRow

LIST_HINT = "list them with opsctl association list"
#: Runs kept per association (the oldest recorded ones beyond are dropped as new ones start).
RUNS_KEPT = 200

#: One host's new status: ``(host id, status, detail, when)``.
Outcome = tuple[str, Status, str, datetime]


def _target_data(target: Target) -> dict[str, Any]:
    return {"selector": target.selector, "hosts": list(target.hosts), "all": target.all}


def _target(data: Mapping[str, Any]) -> Target:
    return Target(
        selector=str(data.get("selector", "")),
        hosts=tuple(str(h) for h in data.get("hosts", ())),
        all=bool(data.get("all", False)),
    )


def _association(row: AssociationRow, counts: Mapping[str, int] | None = None) -> Association:
    return Association(
        id=row.id,
        name=row.name or "",
        document=row.document,
        parameters={str(k): str(v) for k, v in (row.parameters or {}).items()},
        target=_target(row.target or {}),
        schedule=row.schedule,
        max_concurrency=row.max_concurrency,
        max_errors=row.max_errors,
        check_interval_seconds=row.check_interval_seconds,
        author=row.author,
        created_at=row.created_at,
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        next_check_at=row.next_check_at,
        counts=dict(counts or {}),
    )


def _host(row: AssociationHostRow) -> HostCompliance:
    return HostCompliance(
        association_id=row.association_id,
        host_id=row.host_id,
        status=Status(row.status),
        detail=row.detail,
        last_applied_at=row.last_applied_at,
        last_command_id=row.last_command_id,
        last_check_at=row.last_check_at,
        updated_at=row.updated_at,
    )


def _run(row: AssociationRunRow) -> AssociationRun:
    return AssociationRun(
        association_id=row.association_id,
        command_id=row.command_id,
        trigger=Trigger(row.trigger),
        started_at=row.started_at,
        hosts=row.hosts,
        recorded=row.recorded,
    )


def _insert(db: AsyncSession) -> Any:
    """The database's INSERT with ON CONFLICT (SQLite and PostgreSQL spell it alike in SQLAlchemy)."""
    return postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert


def _gone(association_id: str) -> NotFound:
    return NotFound(f"no association {association_id!r} (it was deleted)", LIST_HINT)


class AssociationStore:
    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    # -- definitions ----------------------------------------------------------------------------
    async def create(self, association: Association) -> Association:
        """Store a new association. Raises Conflict when its name is taken."""
        a = association
        row = AssociationRow(
            id=a.id,
            name=a.name or None,
            document=a.document,
            parameters=dict(a.parameters),
            target=_target_data(a.target),
            schedule=a.schedule,
            max_concurrency=a.max_concurrency,
            max_errors=a.max_errors,
            check_interval_seconds=a.check_interval_seconds,
            author=a.author,
            created_at=a.created_at,
            next_run_at=a.next_run_at,
            last_run_at=a.last_run_at,
            next_check_at=a.next_check_at,
        )
        taken = Conflict(
            f"association {a.name!r} exists",
            f"choose another name, or delete it first (opsctl association delete {a.name})",
        )
        try:
            async with self._db.begin() as db:
                if a.name and await db.scalar(select(AssociationRow.id).where(AssociationRow.name == a.name)):
                    raise taken
                db.add(row)
        except IntegrityError:
            raise taken from None
        return a

    async def get(self, key: str) -> Association:
        """The association with id or name *key*, with its hosts' counts. Raises NotFound."""
        async with self._db() as db:
            row = await db.get(AssociationRow, key) if is_id(key) else None
            if row is None:
                row = await db.scalar(select(AssociationRow).where(AssociationRow.name == key))
            if row is None:
                raise NotFound(f"no association {key[:140]!r}", LIST_HINT)
            counts = await self._counts(db, [row.id])
        return _association(row, counts.get(row.id))

    async def list(self, *, counts: bool = True) -> builtins.list[Association]:
        """Every association, oldest first (with its hosts' counts unless *counts* is false)."""
        async with self._db() as db:
            rows = (await db.scalars(select(AssociationRow).order_by(AssociationRow.created_at))).all()
            per = await self._counts(db, None) if counts and rows else {}
        return [_association(r, per.get(r.id)) for r in rows]

    @staticmethod
    async def _counts(db: AsyncSession, ids: Sequence[str] | None) -> dict[str, dict[str, int]]:
        query = select(AssociationHostRow.association_id, AssociationHostRow.status, func.count()).group_by(
            AssociationHostRow.association_id, AssociationHostRow.status
        )
        if ids is not None:
            query = query.where(AssociationHostRow.association_id.in_(ids))
        out: dict[str, dict[str, int]] = {}
        for association_id, status, count in (await db.execute(query)).all():
            out.setdefault(association_id, {})[status] = int(count)
        return out

    async def delete(self, association_id: str) -> None:
        """Delete it with its hosts' rows and its runs (the commands stay). Raises NotFound."""
        async with self._db.begin() as db:
            await db.execute(delete(AssociationRunRow).where(AssociationRunRow.association_id == association_id))
            await db.execute(delete(AssociationHostRow).where(AssociationHostRow.association_id == association_id))
            result = await db.execute(delete(AssociationRow).where(AssociationRow.id == association_id))
            if not result.rowcount:  # type: ignore[attr-defined]  # CursorResult of a DELETE has rowcount
                raise _gone(association_id)

    # -- claims ------------------------------------------------------------------------------------
    async def claim_application(
        self, association_id: str, old: datetime, new: datetime, now: datetime, host_ids: Sequence[str]
    ) -> bool:
        """Move the next application from *old* to *new*; True when this call did (it applies now).

        The winner's *host_ids* get their rows (``pending``) in the same transaction.
        """
        async with self._db.begin() as db:
            result = await db.execute(
                update(AssociationRow)
                .where(AssociationRow.id == association_id, AssociationRow.next_run_at == old)
                .values(next_run_at=new, last_run_at=now)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE has rowcount
                return False
            if host_ids:
                insert = _insert(db)
                await db.execute(
                    insert(AssociationHostRow)
                    # Stamped now, not at the pass's start: see drop_hosts.
                    .values([self._pending(association_id, h, datetime.now(UTC)) for h in host_ids])
                    .on_conflict_do_nothing()
                )
        return True

    async def claim_check(self, association_id: str, old: datetime, new: datetime) -> bool:
        """Move the next check from *old* to *new*; True when this call did (it checks now)."""
        async with self._db.begin() as db:
            result = await db.execute(
                update(AssociationRow)
                .where(AssociationRow.id == association_id, AssociationRow.next_check_at == old)
                .values(next_check_at=new)
            )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult of an UPDATE has rowcount

    async def host_keys(self) -> dict[str, set[str]]:
        """The hosts each association has a row for."""
        async with self._db() as db:
            rows = (await db.execute(select(AssociationHostRow.association_id, AssociationHostRow.host_id))).all()
        out: dict[str, set[str]] = {}
        for association_id, host_id in rows:
            out.setdefault(association_id, set()).add(host_id)
        return out

    async def claim_hosts(self, association_id: str, host_ids: Sequence[str], now: datetime) -> set[str]:
        """Insert ``pending`` rows for *host_ids*; the hosts whose row this call inserted (it applies there)."""
        if not host_ids:
            return set()
        try:
            async with self._db.begin() as db:
                insert = _insert(db)
                result = await db.execute(
                    insert(AssociationHostRow)
                    .values([self._pending(association_id, h, now) for h in host_ids])
                    .on_conflict_do_nothing()
                    .returning(AssociationHostRow.host_id)
                )
                return set(result.scalars().all())
        except IntegrityError:  # the association was deleted meanwhile
            return set()

    @staticmethod
    def _pending(association_id: str, host_id: str, now: datetime) -> dict[str, Any]:
        return {
            "association_id": association_id,
            "host_id": host_id,
            "status": Status.PENDING.value,
            "detail": "",
            "last_command_id": "",
            "updated_at": now,
        }

    async def drop_hosts(self, association_id: str, host_ids: Iterable[str], before: datetime) -> None:
        """Forget hosts the target no longer matches (deregistered, or retagged out of it).

        Only rows unchanged since *before* (when the hosts were listed): a row another replica
        made for a host registered since is not the row of a host gone.
        """
        wanted = builtins.list(host_ids)
        if not wanted:
            return
        async with self._db.begin() as db:
            await db.execute(
                delete(AssociationHostRow).where(
                    AssociationHostRow.association_id == association_id,
                    AssociationHostRow.host_id.in_(wanted),
                    AssociationHostRow.updated_at < before,
                )
            )

    async def of_host(self, host_id: str) -> builtins.list[tuple[Association, HostCompliance]]:
        """Each association the host is in, with its compliance, by association name or id."""
        async with self._db() as db:
            rows = (
                await db.execute(
                    select(AssociationRow, AssociationHostRow)
                    .join(AssociationHostRow, AssociationHostRow.association_id == AssociationRow.id)
                    .where(AssociationHostRow.host_id == host_id)
                )
            ).all()
        pairs = [(_association(a), _host(h)) for a, h in rows]
        return sorted(pairs, key=lambda p: p[0].name or p[0].id)

    async def hosts(self, association_id: str) -> builtins.list[HostCompliance]:
        async with self._db() as db:
            rows = (
                await db.scalars(select(AssociationHostRow).where(AssociationHostRow.association_id == association_id))
            ).all()
        return [_host(r) for r in rows]

    # -- runs and their results ------------------------------------------------------------------------
    async def start_run(self, run: AssociationRun, host_ids: Sequence[str]) -> None:
        """Record a run before its command is made; an application's hosts wait on it (``pending``).

        Raises:
            NotFound: the association was deleted meanwhile (nothing is recorded).
        """
        now = run.started_at
        try:
            async with self._db.begin() as db:
                db.add(
                    AssociationRunRow(
                        command_id=run.command_id,
                        association_id=run.association_id,
                        trigger=run.trigger.value,
                        started_at=run.started_at,
                        hosts=run.hosts,
                        recorded=False,
                    )
                )
                await db.flush()
                if run.trigger is not Trigger.CHECK and host_ids:
                    insert = _insert(db)
                    values = {"status": Status.PENDING.value, "detail": "", "last_command_id": run.command_id}
                    await db.execute(
                        insert(AssociationHostRow)
                        .values([{**self._pending(run.association_id, h, now), **values} for h in host_ids])
                        .on_conflict_do_update(
                            index_elements=[AssociationHostRow.association_id, AssociationHostRow.host_id],
                            set_={**values, "updated_at": now},
                        )
                    )
                await self._prune(db, run.association_id)
        except IntegrityError:
            raise _gone(run.association_id) from None

    @staticmethod
    async def _prune(db: AsyncSession, association_id: str) -> None:
        oldest_kept = await db.scalar(
            select(AssociationRunRow.started_at)
            .where(AssociationRunRow.association_id == association_id)
            .order_by(AssociationRunRow.started_at.desc())
            .offset(RUNS_KEPT - 1)
            .limit(1)
        )
        if oldest_kept is not None:
            await db.execute(
                delete(AssociationRunRow).where(
                    AssociationRunRow.association_id == association_id,
                    AssociationRunRow.started_at < oldest_kept,
                    AssociationRunRow.recorded.is_(True),
                )
            )

    async def abandon_run(self, command_id: str, detail: str, now: datetime) -> None:
        """A run whose command was never made: its hosts fail with *detail*, and the run is forgotten."""
        async with self._db.begin() as db:
            await db.execute(
                update(AssociationHostRow)
                .where(
                    AssociationHostRow.last_command_id == command_id,
                    AssociationHostRow.status == Status.PENDING.value,
                )
                .values(status=Status.FAILED.value, detail=detail, last_command_id="", updated_at=now)
            )
            await db.execute(delete(AssociationRunRow).where(AssociationRunRow.command_id == command_id))

    async def set_failed(self, association_id: str, failures: Mapping[str, str], now: datetime) -> None:
        """Hosts where an application could not be made: ``failed``, with why (host id -> detail)."""
        if not failures:
            return
        try:
            async with self._db.begin() as db:
                insert = _insert(db)
                statement = insert(AssociationHostRow).values(
                    [
                        {**self._pending(association_id, h, now), "status": Status.FAILED.value, "detail": detail}
                        for h, detail in failures.items()
                    ]
                )
                await db.execute(
                    statement.on_conflict_do_update(
                        index_elements=[AssociationHostRow.association_id, AssociationHostRow.host_id],
                        set_={"status": Status.FAILED.value, "detail": statement.excluded.detail, "updated_at": now},
                    )
                )
        except IntegrityError:  # the association was deleted meanwhile: nothing to record
            return

    async def record_application(self, association_id: str, command_id: str, outcomes: Sequence[Outcome]) -> int:
        """An application's results, on the hosts still waiting on *command_id*; how many rows changed."""
        changed = 0
        async with self._db.begin() as db:
            for host_id, status, detail, at in outcomes:
                result = await db.execute(
                    update(AssociationHostRow)
                    .where(
                        AssociationHostRow.association_id == association_id,
                        AssociationHostRow.host_id == host_id,
                        AssociationHostRow.last_command_id == command_id,
                        AssociationHostRow.status == Status.PENDING.value,
                    )
                    .values(status=status.value, detail=detail, last_applied_at=at, updated_at=at)
                )
                changed += result.rowcount or 0  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return changed

    async def record_check(self, association_id: str, started_at: datetime, outcomes: Sequence[Outcome]) -> int:
        """A check's results (started at *started_at*) on applied hosts; how many rows changed.

        A host applied since the check started, or checked by a later check already, keeps its row.
        """
        changed = 0
        async with self._db.begin() as db:
            for host_id, status, detail, at in outcomes:
                result = await db.execute(
                    update(AssociationHostRow)
                    .where(
                        AssociationHostRow.association_id == association_id,
                        AssociationHostRow.host_id == host_id,
                        AssociationHostRow.status.in_([s.value for s in CHECKED]),
                        or_(
                            AssociationHostRow.last_applied_at.is_(None),
                            AssociationHostRow.last_applied_at <= started_at,
                        ),
                        or_(AssociationHostRow.last_check_at.is_(None), AssociationHostRow.last_check_at <= started_at),
                    )
                    .values(status=status.value, detail=detail, last_check_at=started_at, updated_at=at)
                )
                changed += result.rowcount or 0  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return changed

    async def unrecorded(self, association_id: str = "") -> builtins.list[AssociationRun]:
        """Runs whose results are not all taken in yet (oldest first); of one association when given."""
        query = select(AssociationRunRow).where(AssociationRunRow.recorded.is_(False))
        if association_id:
            query = query.where(AssociationRunRow.association_id == association_id)
        async with self._db() as db:
            rows = (await db.scalars(query.order_by(AssociationRunRow.started_at))).all()
        return [_run(r) for r in rows]

    async def mark_recorded(self, command_id: str) -> None:
        async with self._db.begin() as db:
            await db.execute(
                update(AssociationRunRow).where(AssociationRunRow.command_id == command_id).values(recorded=True)
            )

    async def runs(self, association_id: str, limit: int) -> builtins.list[AssociationRun]:
        """The association's latest *limit* runs, newest first."""
        async with self._db() as db:
            rows = (
                await db.scalars(
                    select(AssociationRunRow)
                    .where(AssociationRunRow.association_id == association_id)
                    .order_by(AssociationRunRow.started_at.desc())
                    .limit(limit)
                )
            ).all()
        return [_run(r) for r in rows]
