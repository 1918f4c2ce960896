"""The patching room's service: baselines, patch groups, scan and install fan-outs, compliance.

Scans and installs ride run command: a command whose invocations run the agent task
``patch.scan`` / ``patch.install`` (same targeting, rate control, exactly-once journal and output
capture). Each host's report is the invocation's stdout (JSON); when a result is committed the
report is read from the object store, evaluated against the host's baseline and kept as one row
of compliance history. An install carries the approved snapshots fixed when it started, so every
host of one operation installs from the same set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.errors import Conflict, FleetopsError, InvalidInput, NotFound
from fleetops.controller.commands.models import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_ERRORS,
    Command,
    CommandSpec,
    InvocationReport,
    InvocationState,
)
from fleetops.controller.commands.output import output_key
from fleetops.controller.commands.service import CommandService
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.objects.interfaces import ObjectStore
from fleetops.controller.patching.evaluation import (
    baseline_for_host,
    default_baselines,
    evaluate,
    snapshot,
    summarize,
    summarize_pending,
)
from fleetops.controller.patching.models import (
    BUILTIN_BASELINES,
    ApprovedSnapshot,
    Baseline,
    BaselineAssignment,
    InstallOutcome,
    PatchFinding,
    PatchScan,
    PendingApproval,
)
from fleetops.controller.store.models import (
    CommandRow,
    InvocationRow,
    PatchBaselineRow,
    PatchGroupRow,
    PatchOperationRow,
    PatchReportRow,
    PatchSeenRow,
)

log = logging.getLogger(__name__)

SCAN_TASK = "patch.scan"
INSTALL_TASK = "patch.install"
TASKS = {SCAN_TASK: "scan", INSTALL_TASK: "install"}
REBOOT_POLICIES = ("if-needed", "never")
#: A report larger than this is refused (a host with 100,000 packages stays well below).
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: Patch operations take long (index refresh, downloads): the default execution timeout.
DEFAULT_PATCH_TIMEOUT = 3600
CONTROLLER_ACTOR = "controller"
#: Sees the resolved hosts of an operation before anything is created; raises to refuse.
Authorize = Callable[[list[Host]], None]


@dataclass(frozen=True)
class PatchOptions:
    max_concurrency: str = DEFAULT_MAX_CONCURRENCY
    max_errors: str = DEFAULT_MAX_ERRORS
    timeout_seconds: int = DEFAULT_PATCH_TIMEOUT
    refresh: bool = True
    reboot: str = "if-needed"
    comment: str = ""


@dataclass(frozen=True)
class StoredBaseline:
    baseline: Baseline
    builtin: bool
    updated_at: datetime | None = None
    updated_by: str = ""


@dataclass(frozen=True)
class PatchGroup:
    name: str
    selector: str
    baseline: str
    priority: int


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
        stored = (self.report.summary or {}).get("pending_approval")
        if not isinstance(stored, dict):
            return None
        try:
            return PendingApproval.from_dict(stored)
        except (FleetopsError, KeyError, TypeError, ValueError):
            log.warning("the pending approvals of report %s are unreadable", self.report.id)
            return None


class PatchService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        fleet: FleetService,
        commands: CommandService,
        objects: ObjectStore,
    ) -> None:
        self._db = db
        self._fleet = fleet
        self._commands = commands
        self._objects = objects

    async def start(self) -> None:
        """Listen for results, and take in reports whose result came while the controller was down."""
        self._commands.on_result(self._on_result, agent_tasks=TASKS)
        async with self._db() as db:
            rows = (
                await db.execute(
                    select(InvocationRow.command_id, InvocationRow.host_id, InvocationRow.id, InvocationRow.state)
                    .join(CommandRow, CommandRow.id == InvocationRow.command_id)
                    .outerjoin(PatchReportRow, PatchReportRow.invocation_id == InvocationRow.id)
                    .where(CommandRow.agent_task.in_(list(TASKS)), PatchReportRow.id.is_(None))
                    .where(InvocationRow.state.in_([InvocationState.SUCCESS.value, InvocationState.FAILED.value]))
                )
            ).all()
        for command_id, host_id, invocation_id, state in rows:
            await self._ingest(command_id, host_id, invocation_id, InvocationState(state), rebooted=False)

    # -- baselines and patch groups -------------------------------------------------------------
    async def baselines(self) -> list[StoredBaseline]:
        async with self._db() as db:
            rows = (await db.scalars(select(PatchBaselineRow).order_by(PatchBaselineRow.name))).all()
        stored = [StoredBaseline(_baseline(row), False, row.updated_at, row.updated_by) for row in rows]
        names = {s.baseline.name for s in stored}
        builtin = [StoredBaseline(b, True) for b in BUILTIN_BASELINES.values() if b.name not in names]
        return builtin + stored

    async def baseline(self, name: str) -> StoredBaseline:
        for stored in await self.baselines():
            if stored.baseline.name == name:
                return stored
        raise NotFound(f"no patch baseline {name!r}", "list them with `opsctl patch baseline list`")

    async def create_baseline(self, actor: str, document: dict[str, Any]) -> StoredBaseline:
        """Raises: InvalidInput (a malformed document), Conflict (the name is taken)."""
        baseline = Baseline.from_dict(document)
        if baseline.name in {b.name for b in BUILTIN_BASELINES.values()}:
            raise Conflict(
                f"{baseline.name!r} is a built-in baseline", "create one with another name and mark it --default"
            )
        async with self._db.begin() as db:
            if await db.get(PatchBaselineRow, baseline.name) is not None:
                raise Conflict(
                    f"patch baseline {baseline.name!r} exists", "change it with `opsctl patch baseline update`"
                )
            await self._put_baseline(db, actor, baseline)
        return await self.baseline(baseline.name)

    async def update_baseline(self, actor: str, name: str, document: dict[str, Any]) -> StoredBaseline:
        baseline = Baseline.from_dict(document)
        if baseline.name != name:
            raise InvalidInput(
                f"the document names baseline {baseline.name!r}, not {name!r}", "baselines cannot be renamed"
            )
        async with self._db.begin() as db:
            row = await db.get(PatchBaselineRow, name)
            if row is None:
                raise NotFound(f"no stored patch baseline {name!r}", "create it with `opsctl patch baseline create`")
            if row.os_family != baseline.os_family:
                raise InvalidInput("a baseline's OS family cannot change", "create another baseline")
            await self._put_baseline(db, actor, baseline, row)
        return await self.baseline(name)

    async def delete_baseline(self, name: str) -> None:
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

    async def _put_baseline(
        self, db: AsyncSession, actor: str, baseline: Baseline, row: PatchBaselineRow | None = None
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

    async def assign(self, group: PatchGroup) -> PatchGroup:
        """Create or replace a patch group. Raises: InvalidInput, NotFound (no such baseline)."""
        stored = await self.baseline(group.baseline)
        if stored.builtin:
            raise InvalidInput(
                f"{group.baseline!r} is a built-in baseline and applies to every host without a group already",
                "assign a baseline you created",
            )
        BaselineAssignment(group.name, group.selector, stored.baseline, group.priority)  # validates
        async with self._db.begin() as db:
            row = await db.get(PatchGroupRow, group.name) or PatchGroupRow(name=group.name)
            row.selector, row.baseline, row.priority = group.selector, group.baseline, group.priority
            db.add(row)
        return group

    async def groups(self) -> list[PatchGroup]:
        async with self._db() as db:
            rows = (await db.scalars(select(PatchGroupRow).order_by(PatchGroupRow.priority, PatchGroupRow.name))).all()
        return [PatchGroup(r.name, r.selector, r.baseline, r.priority) for r in rows]

    async def delete_group(self, name: str) -> None:
        async with self._db.begin() as db:
            result = await db.execute(delete(PatchGroupRow).where(PatchGroupRow.name == name))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"no patch group {name!r}", "list them with `opsctl patch group list`")

    async def _assignments(self) -> tuple[list[BaselineAssignment], dict[str, Baseline]]:
        stored = {s.baseline.name: s.baseline for s in await self.baselines() if not s.builtin}
        assignments = [
            BaselineAssignment(g.name, g.selector, stored[g.baseline], g.priority)
            for g in await self.groups()
            if g.baseline in stored
        ]
        return assignments, default_baselines(stored.values())

    # -- operations -------------------------------------------------------------------------------
    async def scan(
        self, actor: str, target: Target, options: PatchOptions, *, authorize: Authorize | None = None
    ) -> tuple[Command, list[Host]]:
        request = {"refresh": options.refresh}
        spec = self._spec(SCAN_TASK, request, options)
        command, hosts = await self._commands.create(actor, target, spec, authorize=authorize)
        await self._record_operation(command.id, "scan", "", {})
        return command, hosts

    async def install(
        self, actor: str, target: Target, options: PatchOptions, *, authorize: Authorize | None = None
    ) -> tuple[Command, list[Host]]:
        """Fix the approved set now (per baseline, from the hosts' latest scans) and install it.

        Raises:
            InvalidInput: a bad reboot policy or limits.
            NotFound: no host matches.
            Conflict: some hosts were never scanned (named), or their patch groups tie.
        """
        if options.reboot not in REBOOT_POLICIES:
            raise InvalidInput(f"bad reboot policy {options.reboot!r}", "use --reboot if-needed or --reboot never")
        hosts = await self._fleet.resolve_target(target)
        if not hosts:
            raise NotFound(f"no host matches {target.describe()}", "check the selector with opsctl hosts list --target")
        if authorize is not None:
            authorize(hosts)
        latest = await self._latest_reports([h.id for h in hosts])
        unscanned = [h.name for h in hosts if h.id not in latest or latest[h.id].error]
        if unscanned:
            raise Conflict(
                f"{len(unscanned)} host(s) have no patch scan: {', '.join(sorted(unscanned)[:20])}",
                "scan them first: opsctl patch scan --target ...; an install applies what a scan found",
            )
        assignments, defaults = await self._assignments()
        now = datetime.now(UTC)
        by_baseline: dict[str, tuple[Baseline, list[PatchScan]]] = {}
        host_baseline: dict[str, str] = {}
        for host in hosts:
            report = latest[host.id]
            scan = PatchScan.from_dict(report.summary.get("scan", {}), host_id=host.id)
            choice = baseline_for_host(host.tags, scan.os_family or _os_family(host), assignments, defaults)
            by_baseline.setdefault(choice.baseline.name, (choice.baseline, []))[1].append(scan)
            host_baseline[host.id] = choice.baseline.name
        seen = await self._first_seen(s for _, scans in by_baseline.values() for s in scans)
        snapshots = {
            name: snapshot(baseline, scans, now, first_seen=seen) for name, (baseline, scans) in by_baseline.items()
        }
        request = {
            "reboot": options.reboot,
            "refresh": options.refresh,
            "hosts": host_baseline,
            "approved": {name: [p.to_dict() for p in snap.patches] for name, snap in snapshots.items()},
        }
        command, hosts = await self._commands.create(
            actor, Target(hosts=tuple(h.id for h in hosts)), self._spec(INSTALL_TASK, request, options)
        )
        await self._record_operation(
            command.id, "install", options.reboot, {name: snap.to_dict() for name, snap in snapshots.items()}
        )
        return command, hosts

    def _spec(self, task: str, request: dict[str, Any], options: PatchOptions) -> CommandSpec:
        return CommandSpec(
            agent_task=task,
            task_input=json.dumps(request, sort_keys=True).encode(),
            max_concurrency=options.max_concurrency,
            max_errors=options.max_errors,
            timeout_seconds=options.timeout_seconds,
            comment=options.comment or f"patch {TASKS[task]}",
        )

    async def _record_operation(self, command_id: str, operation: str, reboot: str, snapshots: dict[str, Any]) -> None:
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
        async with self._db() as db:
            row = await db.get(PatchOperationRow, command_id)
        if row is None:
            raise NotFound(f"command {command_id} is not a patch operation")
        return {name: ApprovedSnapshot.from_dict(doc) for name, doc in (row.snapshots or {}).items()}

    # -- reports --------------------------------------------------------------------------------
    async def _on_result(self, command_id: str, host_id: str, report: InvocationReport) -> None:
        async with self._db() as db:
            task = await db.scalar(select(CommandRow.agent_task).where(CommandRow.id == command_id))
        if task not in TASKS:
            return
        await self._ingest(command_id, host_id, report.invocation_id, report.state, rebooted=report.rebooted)

    async def _ingest(
        self, command_id: str, host_id: str, invocation_id: str, state: InvocationState, *, rebooted: bool
    ) -> None:
        """Turn one host's report into compliance; idempotent per invocation."""
        async with self._db() as db:
            command = await db.get(CommandRow, command_id)
            invocation = await db.get(InvocationRow, invocation_id)
        if command is None or invocation is None:
            return
        operation = TASKS[command.agent_task]
        row = PatchReportRow(
            invocation_id=invocation_id,
            command_id=command_id,
            host_id=host_id,
            host_name=invocation.host_name,
            operation=operation,
            reported_at=invocation.finished_at or datetime.now(UTC),
        )
        try:
            document = await self._read_report(command_id, invocation.host_name)
            await self._evaluate(row, document, host_id)
        except FleetopsError as exc:
            row.error = exc.message
            log.warning("patch %s report of host %s is unusable: %s", operation, invocation.host_name, exc.message)
        try:
            async with self._db.begin() as db:
                db.add(row)
        except IntegrityError:
            return  # taken in already (a re-sent result, or the start-up sweep racing the listener)
        if rebooted and operation == "install":
            # The host rebooted to finish the install: scan it again so compliance shows the result.
            await self._commands.create(
                CONTROLLER_ACTOR,
                Target(hosts=(host_id,)),
                self._spec(SCAN_TASK, {"refresh": False}, PatchOptions(comment="patch scan after reboot")),
            )

    async def _read_report(self, command_id: str, host_name: str) -> dict[str, Any]:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in self._objects.read(output_key(command_id, host_name, "stdout")):
                size += len(chunk)
                if size > MAX_REPORT_BYTES:
                    raise InvalidInput(f"the patch report is over {MAX_REPORT_BYTES} bytes")
                chunks.append(chunk)
        except NotFound:
            raise InvalidInput("the agent wrote no patch report", "see the command's stderr") from None
        text = b"".join(chunks).decode("utf-8", errors="replace").strip()
        if not text:
            raise InvalidInput("the agent wrote no patch report", "see the command's stderr")
        try:
            document = json.loads(text.splitlines()[-1])
        except ValueError as exc:
            raise InvalidInput(f"the patch report is not JSON: {exc}", "see the command's output") from exc
        if not isinstance(document, dict) or not isinstance(document.get("scan"), dict):
            raise InvalidInput("the patch report has no scan", "the agent may be older than the controller")
        return document

    async def _evaluate(self, row: PatchReportRow, document: dict[str, Any], host_id: str) -> None:
        scan = PatchScan.from_dict(document["scan"], host_id=host_id)
        outcomes = [
            InstallOutcome.from_dict(o)
            for o in document.get("outcomes") or ()
            if isinstance(o, dict) and (o.get("status") or o.get("state")) in ("installed", "failed")
        ]
        if row.operation == "scan":
            outcomes = await self._last_outcomes(host_id)
        host = await self._fleet.get_host(host_id)
        assignments, defaults = await self._assignments()
        choice = baseline_for_host(host.tags, scan.os_family or _os_family(host), assignments, defaults)
        seen = await self._remember_versions(scan)
        now = datetime.now(UTC)
        findings = evaluate(scan, choice.baseline, now, outcomes, first_seen=seen)
        summary = summarize(findings, host_id=host_id)
        pending = summarize_pending(scan, choice.baseline, now, first_seen=seen)
        row.os_family, row.provider = scan.os_family, scan.provider
        row.baseline, row.patch_group = choice.baseline.name, choice.patch_group
        row.reboot_pending = scan.reboot_pending
        row.compliant = summary.compliant
        row.summary = {
            "compliance": summary.to_dict(),
            "pending_approval": pending.to_dict(),
            "scan": document["scan"],
        }
        row.findings = [f.to_dict() for f in findings]
        row.outcomes = [o.to_dict() for o in outcomes]

    async def _last_outcomes(self, host_id: str) -> list[InstallOutcome]:
        async with self._db() as db:
            outcomes = await db.scalar(
                select(PatchReportRow.outcomes)
                .where(PatchReportRow.host_id == host_id, PatchReportRow.operation == "install")
                .order_by(PatchReportRow.reported_at.desc())
                .limit(1)
            )
        return [InstallOutcome.from_dict(o) for o in outcomes or ()]

    async def _remember_versions(self, scan: PatchScan) -> dict[tuple[str, str], datetime]:
        """Record when each offered version was first seen; the first-seen times of the scan's names."""
        now = datetime.now(UTC)
        known = await self._first_seen([scan])
        new = {(u.name, u.candidate_version) for u in scan.updates} - set(known)
        if not new:
            return known
        try:
            async with self._db.begin() as db:
                db.add_all(PatchSeenRow(name=n, version=v, first_seen=now) for n, v in new)
        except IntegrityError:
            return await self._first_seen([scan])  # another report recorded some first: theirs count
        return {**known, **dict.fromkeys(new, now)}

    async def _first_seen(self, scans: Iterable[PatchScan]) -> dict[tuple[str, str], datetime]:
        names = {u.name for scan in scans for u in scan.updates}
        if not names:
            return {}
        async with self._db() as db:
            rows = (await db.execute(select(PatchSeenRow).where(PatchSeenRow.name.in_(sorted(names))))).scalars()
            return {(r.name, r.version): r.first_seen for r in rows}

    async def _latest_reports(self, host_ids: list[str]) -> dict[str, PatchReportRow]:
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

    # -- compliance -------------------------------------------------------------------------------
    async def compliance(self, target: Target | None) -> list[HostReport]:
        """The latest report of every targeted host (every registered host without a target)."""
        hosts = await self._fleet.resolve_target(target if target is not None else Target(all=True))
        latest = await self._latest_reports([h.id for h in hosts])
        return [HostReport(h, latest.get(h.id)) for h in sorted(hosts, key=lambda h: h.name)]

    async def host_compliance(
        self, key: str, history: int = 10
    ) -> tuple[HostReport, list[PatchFinding], list[HostReport]]:
        host = await self._fleet.get_host(key)
        async with self._db() as db:
            rows = (
                await db.scalars(
                    select(PatchReportRow)
                    .where(PatchReportRow.host_id == host.id)
                    .order_by(PatchReportRow.id.desc())
                    .limit(history + 1)
                )
            ).all()
        if not rows:
            return HostReport(host, None), [], []
        findings = [PatchFinding.from_dict(f) for f in rows[0].findings or ()]
        return HostReport(host, rows[0]), findings, [HostReport(host, r) for r in rows[1:]]


def _baseline(row: PatchBaselineRow) -> Baseline:
    return Baseline.from_dict(row.document)


def _os_family(host: Host) -> str:
    return str((host.inventory or {}).get("os_family") or "linux")
