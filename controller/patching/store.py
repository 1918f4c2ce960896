"""The patching tables, and rows -> the room's domain objects, in one place.

:class:`PatchStore` is the room's only reader and writer of its tables (and of the commands and
invocations it takes reports from); every reading of a stored JSON document (a baseline, a scan,
findings, pending approvals, install outcomes, snapshots, an agent task's report) goes through
the functions below, so a change of stored form has one place to change.

:class:`HostReport` still carries its report row to controller/rpc/convert.py (which reads its
columns); turning it into a domain object is left for later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.baselines import Baseline
from fleetops.common.errors import Conflict, FleetopsError, InvalidInput, NotFound
from fleetops.common.patch_report import InstallOutcome, PatchReport, PatchScan
from fleetops.controller.events.outbox import record_event
from fleetops.controller.fleet.models import Host
from fleetops.controller.patching.compliance import PatchFinding, PendingApproval
from fleetops.controller.patching.models import PatchGroup, StoredBaseline
from fleetops.controller.patching.snapshots import ApprovedSnapshot
from fleetops.controller.store.models import (
    CommandRow,
    HostRow,
    InvocationRow,
    PatchBaselineRow,
    PatchGroupRow,
    PatchOperationRow,
    PatchReportRow,
    PatchSeenRow,
)

log = logging.getLogger(__name__)


def baseline_of(row: PatchBaselineRow) -> Baseline:
    return Baseline.from_dict(row.document)


def group_of(row: PatchGroupRow) -> PatchGroup:
    return PatchGroup(row.name, row.selector, row.baseline, row.priority)


def scan_of(row: PatchReportRow, host_id: str) -> PatchScan:
    """The scan a report row keeps (the host's state the last evaluation saw)."""
    return PatchScan.from_dict((row.summary or {}).get("scan", {}), host_id=host_id)


def findings_of(row: PatchReportRow) -> list[PatchFinding]:
    return [PatchFinding.from_dict(f) for f in row.findings or ()]


def outcomes_of(stored: Any) -> list[InstallOutcome]:
    """The install outcomes a report row keeps (``PatchReportRow.outcomes``)."""
    return [InstallOutcome.from_dict(o) for o in stored or ()]


def pending_of(row: PatchReportRow) -> PendingApproval | None:
    """The offered updates not approved yet when the report was evaluated; None for a report made
    before the controller kept them, or one that is unreadable (logged)."""
    stored = (row.summary or {}).get("pending_approval")
    if not isinstance(stored, dict):
        return None
    try:
        return PendingApproval.from_dict(stored)
    except (FleetopsError, KeyError, TypeError, ValueError):
        log.warning("the pending approvals of report %s are unreadable", row.id)
        return None


def snapshots_of(row: PatchOperationRow) -> dict[str, ApprovedSnapshot]:
    return {name: ApprovedSnapshot.from_dict(doc) for name, doc in (row.snapshots or {}).items()}


def task_report_of(stored: Mapping[str, Any] | None, host_id: str) -> PatchReport:
    """The patch report kept with an invocation (``InvocationRow.task_report``).

    Raises:
        InvalidInput: the agent sent none, or the one it sent was refused (the stored error says why).
    """
    if stored is None:
        raise InvalidInput(
            "the agent sent no patch report",
            "see the task's output (opsctl run output COMMAND HOST); the agent may be older than the controller",
        )
    if "error" in stored:
        raise InvalidInput(str(stored["error"]), "see the task's output (opsctl run output COMMAND HOST)")
    return PatchReport.from_dict(stored, host_id=host_id)


def _noncompliant_data(row: PatchReportRow, previous: Any) -> dict[str, Any]:
    """The ``host.noncompliant`` event's data (docs/events.md): counts, never the findings themselves."""
    compliance = (row.summary or {}).get("compliance") or {}
    counts = compliance.get("counts") or {}
    return {
        "host": row.host_name,
        "host_id": row.host_id,
        "baseline": row.baseline,
        "patch_group": row.patch_group,
        "operation": row.operation,
        "command_id": row.command_id,
        "previous": "not_scanned" if previous is None or previous.error else "compliant",
        "missing": int(counts.get("missing", 0)),
        "failed": int(counts.get("failed", 0)),
        "missing_by_severity": {k: v for k, v in (compliance.get("missing_by_severity") or {}).items() if v},
        "highest_level": compliance.get("highest_level"),
    }


@dataclass(frozen=True)
class HostReport:
    """A host's latest (or an earlier) patch report; ``report`` is None when never scanned."""

    host: Host
    report: PatchReportRow | None

    @property
    def status(self) -> str:
        if self.report is None or self.report.error:
            return "not_scanned"
        return "compliant" if self.report.compliant else "non_compliant"

    @property
    def pending(self) -> PendingApproval | None:
        """The offered updates not approved yet when the report was evaluated; None for a report
        made before the controller kept them (or none at all)."""
        if self.report is None or self.report.error:
            return None
        return pending_of(self.report)


@dataclass(frozen=True)
class TakenResult:
    """A patch task's result as the patching service takes it in."""

    command_id: str
    host_id: str
    invocation_id: str
    task_report: Mapping[str, Any] | None


class PatchStore:
    """The patching room's tables (and the commands/invocations its reports come from)."""

    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    # -- results not taken in yet ----------------------------------------------------------------
    async def untaken_results(self, tasks: Iterable[str], final_states: Iterable[str]) -> list[TakenResult]:
        """Results of patch tasks that have no report row yet (they came while nobody listened)."""
        async with self._db() as db:
            rows = (
                await db.execute(
                    select(InvocationRow.command_id, InvocationRow.host_id, InvocationRow.id, InvocationRow.task_report)
                    .join(CommandRow, CommandRow.id == InvocationRow.command_id)
                    .outerjoin(PatchReportRow, PatchReportRow.invocation_id == InvocationRow.id)
                    .where(CommandRow.agent_task.in_(list(tasks)), PatchReportRow.id.is_(None))
                    .where(InvocationRow.state.in_(list(final_states)))
                )
            ).all()
        return [TakenResult(c, h, i, r) for c, h, i, r in rows]

    async def agent_task(self, command_id: str) -> str | None:
        async with self._db() as db:
            return await db.scalar(select(CommandRow.agent_task).where(CommandRow.id == command_id))

    async def invocation(self, command_id: str, invocation_id: str) -> tuple[str, str, datetime | None] | None:
        """(agent task, host name, finished at) of an invocation; None when either is gone."""
        async with self._db() as db:
            command = await db.get(CommandRow, command_id)
            invocation = await db.get(InvocationRow, invocation_id)
        if command is None or invocation is None:
            return None
        return command.agent_task, invocation.host_name, invocation.finished_at

    # -- baselines and groups ----------------------------------------------------------------------
    async def baselines(self) -> list[StoredBaseline]:
        async with self._db() as db:
            rows = (await db.scalars(select(PatchBaselineRow).order_by(PatchBaselineRow.name))).all()
        return [StoredBaseline(baseline_of(row), False, row.updated_at, row.updated_by) for row in rows]

    async def create_baseline(self, actor: str, baseline: Baseline) -> None:
        """Raises: Conflict (the name is taken)."""
        async with self._db.begin() as db:
            if await db.get(PatchBaselineRow, baseline.name) is not None:
                raise Conflict(
                    f"patch baseline {baseline.name!r} exists", "change it with `opsctl patch baseline update`"
                )
            await self._put_baseline(db, actor, baseline)

    async def update_baseline(self, actor: str, baseline: Baseline) -> None:
        """Raises: NotFound (not stored), InvalidInput (the OS family changes)."""
        async with self._db.begin() as db:
            row = await db.get(PatchBaselineRow, baseline.name)
            if row is None:
                raise NotFound(
                    f"no stored patch baseline {baseline.name!r}", "create it with `opsctl patch baseline create`"
                )
            if row.os_family != baseline.os_family:
                raise InvalidInput("a baseline's OS family cannot change", "create another baseline")
            await self._put_baseline(db, actor, baseline, row)

    async def delete_baseline(self, name: str) -> None:
        """Raises: NotFound (not stored), Conflict (patch groups use it)."""
        async with self._db.begin() as db:
            row = await db.get(PatchBaselineRow, name)
            if row is None:
                raise NotFound(f"no stored patch baseline {name!r}", "built-in baselines cannot be deleted")
            groups = (await db.scalars(select(PatchGroupRow.name).where(PatchGroupRow.baseline == name))).all()
            if groups:
                raise Conflict(
                    f"patch baseline {name!r} is used by patch group(s) {', '.join(groups)}",
                    "delete or reassign those groups first (opsctl patch group delete GROUP)",
                )
            await db.delete(row)

    @staticmethod
    async def _put_baseline(
        db: AsyncSession, actor: str, baseline: Baseline, row: PatchBaselineRow | None = None
    ) -> None:
        if baseline.is_default:
            others = await db.scalars(
                select(PatchBaselineRow).where(
                    PatchBaselineRow.os_family == baseline.os_family, PatchBaselineRow.name != baseline.name
                )
            )
            for other in others:
                if other.is_default:
                    other.is_default = False
                    other.document = {**other.document, "is_default": False}
        row = row or PatchBaselineRow(name=baseline.name)
        row.os_family = baseline.os_family
        row.document = baseline.to_dict()
        row.is_default = baseline.is_default
        row.updated_at = datetime.now(UTC)
        row.updated_by = actor
        db.add(row)

    async def put_group(self, group: PatchGroup) -> None:
        async with self._db.begin() as db:
            row = await db.get(PatchGroupRow, group.name) or PatchGroupRow(name=group.name)
            row.selector, row.baseline, row.priority = group.selector, group.baseline, group.priority
            db.add(row)

    async def groups(self) -> list[PatchGroup]:
        async with self._db() as db:
            rows = (await db.scalars(select(PatchGroupRow).order_by(PatchGroupRow.priority, PatchGroupRow.name))).all()
        return [group_of(r) for r in rows]

    async def delete_group(self, name: str) -> None:
        """Raises: NotFound."""
        async with self._db.begin() as db:
            result = await db.execute(delete(PatchGroupRow).where(PatchGroupRow.name == name))
        if result.rowcount == 0:  # type: ignore[attr-defined]  # Result lacks rowcount in the stubs; CursorResult has it
            raise NotFound(f"no patch group {name!r}", "list them with `opsctl patch group list`")

    # -- operations ------------------------------------------------------------------------------
    async def record_operation(self, command_id: str, operation: str, reboot: str, snapshots: dict[str, Any]) -> None:
        async with self._db.begin() as db:
            db.add(
                PatchOperationRow(
                    command_id=command_id,
                    operation=operation,
                    reboot=reboot,
                    snapshots=snapshots,
                    created_at=datetime.now(UTC),
                )
            )

    async def snapshots(self, command_id: str) -> dict[str, ApprovedSnapshot]:
        """Raises: NotFound (not a patch operation)."""
        async with self._db() as db:
            row = await db.get(PatchOperationRow, command_id)
        if row is None:
            raise NotFound(f"command {command_id} is not a patch operation")
        return snapshots_of(row)

    # -- reports ---------------------------------------------------------------------------------
    async def add_report(self, values: Mapping[str, Any]) -> bool:
        """Keep one report row; False when the invocation has one already (a re-sent result).

        A usable non-compliant report whose host's previous report was compliant or unusable (or
        that is its first) writes ``fleetops.host.noncompliant`` in the same transaction. The
        host's row is locked first where the database can, so two reports of one host are
        compared one after the other.
        """
        try:
            async with self._db.begin() as db:
                row = PatchReportRow(**values)
                if row.error or row.compliant:
                    db.add(row)
                    return True
                await db.execute(select(HostRow.id).where(HostRow.id == row.host_id).with_for_update())
                db.add(row)
                await db.flush()  # the insert first: on SQLite the transaction now holds the write lock
                previous = (
                    await db.execute(
                        select(PatchReportRow.compliant, PatchReportRow.error)
                        .where(PatchReportRow.host_id == row.host_id, PatchReportRow.id < row.id)
                        .order_by(PatchReportRow.id.desc())
                        .limit(1)
                    )
                ).first()
                if previous is None or previous.compliant or previous.error:
                    record_event(
                        db,
                        "fleetops.host.noncompliant",
                        subject=f"host/{row.host_name}",
                        host=row.host_name,
                        data=_noncompliant_data(row, previous),
                    )
        except IntegrityError:
            return False
        return True

    async def last_outcomes(self, host_id: str) -> list[InstallOutcome]:
        """The outcomes of the host's latest install."""
        async with self._db() as db:
            outcomes = await db.scalar(
                select(PatchReportRow.outcomes)
                .where(PatchReportRow.host_id == host_id, PatchReportRow.operation == "install")
                .order_by(PatchReportRow.reported_at.desc())
                .limit(1)
            )
        return outcomes_of(outcomes)

    async def first_seen(self, names: Iterable[str]) -> dict[tuple[str, str], datetime]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        async with self._db() as db:
            rows = (await db.execute(select(PatchSeenRow).where(PatchSeenRow.name.in_(wanted)))).scalars()
            return {(r.name, r.version): r.first_seen for r in rows}

    async def record_first_seen(self, versions: Iterable[tuple[str, str]], at: datetime) -> bool:
        """Record (name, version) pairs as first seen at *at*; False when another report raced us."""
        try:
            async with self._db.begin() as db:
                db.add_all(PatchSeenRow(name=n, version=v, first_seen=at) for n, v in versions)
        except IntegrityError:
            return False
        return True

    async def latest_reports(self, host_ids: list[str]) -> dict[str, PatchReportRow]:
        if not host_ids:
            return {}
        newest = (
            select(PatchReportRow.host_id, func.max(PatchReportRow.id).label("id"))
            .where(PatchReportRow.host_id.in_(host_ids))
            .group_by(PatchReportRow.host_id)
            .subquery()
        )
        async with self._db() as db:
            rows = (
                await db.scalars(
                    select(PatchReportRow).join(
                        newest, and_(newest.c.host_id == PatchReportRow.host_id, newest.c.id == PatchReportRow.id)
                    )
                )
            ).all()
        return {r.host_id: r for r in rows}

    async def host_reports(self, host_id: str, limit: int) -> list[PatchReportRow]:
        """The host's latest *limit* reports, newest first."""
        async with self._db() as db:
            return list(
                (
                    await db.scalars(
                        select(PatchReportRow)
                        .where(PatchReportRow.host_id == host_id)
                        .order_by(PatchReportRow.id.desc())
                        .limit(limit)
                    )
                ).all()
            )
