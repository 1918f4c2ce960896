"""The patching room's service: baselines, patch groups, scan and install fan-outs, compliance.

Scans and installs ride run command: a command whose invocations run the agent task
``patch.scan`` / ``patch.install`` (same targeting, rate control, exactly-once journal and output
capture). Each host's report comes with the invocation's result (``fleetops.v1.PatchReport``,
kept with the invocation; its stdout is only a summary for operators); when a result is
committed the report is evaluated against the host's baseline and kept as one row of compliance
history. An install carries the approved snapshots fixed when it started, so every
host of one operation installs from the same set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common.baselines import Baseline
from fleetops.common.errors import Conflict, FleetopsError, InvalidInput, NotFound
from fleetops.common.patch_report import PatchReport, PatchScan
from fleetops.common.rates import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ERRORS
from fleetops.common.selectors import Selector
from fleetops.common.states import InvocationState
from fleetops.controller.commands.models import Command, CommandSpec, InvocationReport
from fleetops.controller.commands.service import CommandService
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.patching import store
from fleetops.controller.patching.compliance import PatchFinding
from fleetops.controller.patching.evaluation import (
    baseline_for_host,
    default_baselines,
    evaluate,
    snapshot,
    summarize,
    summarize_pending,
)
from fleetops.controller.patching.groups import BUILTIN_BASELINES, BaselineAssignment
from fleetops.controller.patching.models import PatchGroup, StoredBaseline
from fleetops.controller.patching.snapshots import ApprovedSnapshot
from fleetops.controller.patching.store import HostReport, PatchStore

log = logging.getLogger(__name__)

SCAN_TASK = "patch.scan"
INSTALL_TASK = "patch.install"
TASKS = {SCAN_TASK: "scan", INSTALL_TASK: "install"}
REBOOT_POLICIES = ("if-needed", "never")
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
    # When a document (fleetops-PatchScan, fleetops-PatchInstall) asked for it: NAME:VERSION and
    # its parameters, recorded with the command.
    document: str = ""
    parameters: dict[str, str] = field(default_factory=dict)


class PatchService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        fleet: FleetService,
        commands: CommandService,
    ) -> None:
        self._store = PatchStore(db)
        self._fleet = fleet
        self._commands = commands

    async def start(self) -> None:
        """Listen for results, and take in reports whose result came while the controller was down."""
        self._commands.on_result(self._on_result, agent_tasks=TASKS)
        final = [InvocationState.SUCCESS.value, InvocationState.FAILED.value]
        for result in await self._store.untaken_results(TASKS, final):
            await self._ingest(
                result.command_id, result.host_id, result.invocation_id, result.task_report, rebooted=False
            )

    # -- baselines and patch groups -------------------------------------------------------------
    async def baselines(self) -> list[StoredBaseline]:
        stored = await self._store.baselines()
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
        await self._store.create_baseline(actor, baseline)
        return await self.baseline(baseline.name)

    async def update_baseline(self, actor: str, name: str, document: dict[str, Any]) -> StoredBaseline:
        baseline = Baseline.from_dict(document)
        if baseline.name != name:
            raise InvalidInput(
                f"the document names baseline {baseline.name!r}, not {name!r}", "baselines cannot be renamed"
            )
        await self._store.update_baseline(actor, baseline)
        return await self.baseline(name)

    async def delete_baseline(self, name: str) -> None:
        """Raises: NotFound (not stored), Conflict (patch groups use it)."""
        await self._store.delete_baseline(name)

    async def assign(self, group: PatchGroup) -> PatchGroup:
        """Create or replace a patch group. Raises: InvalidInput, NotFound (no such baseline)."""
        stored = await self.baseline(group.baseline)
        if stored.builtin:
            raise InvalidInput(
                f"{group.baseline!r} is a built-in baseline and applies to every host without a group already",
                "assign a baseline you created",
            )
        BaselineAssignment(group.name, Selector.parse(group.selector), stored.baseline, group.priority)  # validates
        await self._store.put_group(group)
        return group

    async def groups(self) -> list[PatchGroup]:
        return await self._store.groups()

    async def delete_group(self, name: str) -> None:
        await self._store.delete_group(name)

    async def _assignments(self) -> tuple[list[BaselineAssignment], dict[str, Baseline]]:
        stored = {s.baseline.name: s.baseline for s in await self.baselines() if not s.builtin}
        assignments = [
            BaselineAssignment(g.name, Selector.parse(g.selector), stored[g.baseline], g.priority)
            for g in await self.groups()
            if g.baseline in stored
        ]
        return assignments, default_baselines(stored.values())

    # -- operations -------------------------------------------------------------------------------
    async def scan(
        self,
        actor: str,
        target: Target,
        options: PatchOptions,
        *,
        authorize: Authorize | None = None,
        command_id: str | None = None,
    ) -> tuple[Command, list[Host]]:
        request = {"refresh": options.refresh}
        spec = self._spec(SCAN_TASK, request, options)
        command, hosts = await self._commands.create(actor, target, spec, authorize=authorize, command_id=command_id)
        await self._store.record_operation(command.id, "scan", "", {})
        return command, hosts

    async def install(
        self,
        actor: str,
        target: Target,
        options: PatchOptions,
        *,
        authorize: Authorize | None = None,
        command_id: str | None = None,
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
        latest = await self._store.latest_reports([h.id for h in hosts])
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
            scan = store.scan_of(report, host.id)
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
            actor,
            Target(hosts=tuple(h.id for h in hosts)),
            self._spec(INSTALL_TASK, request, options),
            command_id=command_id,
        )
        await self._store.record_operation(
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
            document=options.document,
            parameters=dict(options.parameters),
        )

    async def snapshots(self, command_id: str) -> dict[str, ApprovedSnapshot]:
        """Raises: NotFound (not a patch operation)."""
        return await self._store.snapshots(command_id)

    # -- reports --------------------------------------------------------------------------------
    async def _on_result(self, command_id: str, host_id: str, report: InvocationReport) -> None:
        if await self._store.agent_task(command_id) not in TASKS:
            return
        await self._ingest(command_id, host_id, report.invocation_id, report.task_report, rebooted=report.rebooted)

    async def _ingest(
        self,
        command_id: str,
        host_id: str,
        invocation_id: str,
        task_report: Mapping[str, Any] | None,
        *,
        rebooted: bool,
    ) -> None:
        """Turn one host's report into compliance; idempotent per invocation."""
        found = await self._store.invocation(command_id, invocation_id)
        if found is None:
            return
        agent_task, host_name, finished_at = found
        operation = TASKS[agent_task]
        row: dict[str, Any] = {
            "invocation_id": invocation_id,
            "command_id": command_id,
            "host_id": host_id,
            "host_name": host_name,
            "operation": operation,
            "reported_at": finished_at or datetime.now(UTC),
        }
        try:
            row.update(await self._evaluate(operation, store.task_report_of(task_report, host_id), host_id))
        except FleetopsError as exc:
            row["error"] = exc.message
            log.warning("patch %s report of host %s is unusable: %s", operation, host_name, exc.message)
        if not await self._store.add_report(row):
            return  # taken in already (a re-sent result, or the start-up sweep racing the listener)
        if rebooted and operation == "install":
            # The host rebooted to finish the install: scan it again so compliance shows the result.
            await self._commands.create(
                CONTROLLER_ACTOR,
                Target(hosts=(host_id,)),
                self._spec(SCAN_TASK, {"refresh": False}, PatchOptions(comment="patch scan after reboot")),
            )

    async def _evaluate(self, operation: str, report: PatchReport, host_id: str) -> dict[str, Any]:
        """The report row's evaluated columns."""
        scan = report.scan
        outcomes = list(report.evaluated_outcomes())
        if operation == "scan":
            outcomes = await self._store.last_outcomes(host_id)
        host = await self._fleet.get_host(host_id)
        assignments, defaults = await self._assignments()
        choice = baseline_for_host(host.tags, scan.os_family or _os_family(host), assignments, defaults)
        seen = await self._remember_versions(scan)
        now = datetime.now(UTC)
        findings = evaluate(scan, choice.baseline, now, outcomes, first_seen=seen)
        summary = summarize(findings, host_id=host_id)
        pending = summarize_pending(scan, choice.baseline, now, first_seen=seen)
        return {
            "os_family": scan.os_family,
            "provider": scan.provider,
            "baseline": choice.baseline.name,
            "patch_group": choice.patch_group,
            "reboot_pending": scan.reboot_pending,
            "compliant": summary.compliant,
            "summary": {
                "compliance": summary.to_dict(),
                "pending_approval": pending.to_dict(),
                "scan": scan.to_dict(),
            },
            "findings": [f.to_dict() for f in findings],
            "outcomes": [o.to_dict() for o in outcomes],
        }

    async def _remember_versions(self, scan: PatchScan) -> dict[tuple[str, str], datetime]:
        """Record when each offered version was first seen; the first-seen times of the scan's names."""
        now = datetime.now(UTC)
        known = await self._first_seen([scan])
        new = {(u.name, u.candidate_version) for u in scan.updates} - set(known)
        if not new:
            return known
        if not await self._store.record_first_seen(new, now):
            return await self._first_seen([scan])  # another report recorded some first: theirs count
        return {**known, **dict.fromkeys(new, now)}

    async def _first_seen(self, scans: Iterable[PatchScan]) -> dict[tuple[str, str], datetime]:
        return await self._store.first_seen(u.name for scan in scans for u in scan.updates)

    # -- compliance -------------------------------------------------------------------------------
    async def compliance(self, target: Target | None) -> list[HostReport]:
        """The latest report of every targeted host (every registered host without a target)."""
        hosts = await self._fleet.resolve_target(target if target is not None else Target(all=True))
        latest = await self._store.latest_reports([h.id for h in hosts])
        return [HostReport(h, latest.get(h.id)) for h in sorted(hosts, key=lambda h: h.name)]

    async def host_compliance(
        self, key: str, history: int = 10
    ) -> tuple[HostReport, list[PatchFinding], list[HostReport]]:
        host = await self._fleet.get_host(key)
        rows = await self._store.host_reports(host.id, history + 1)
        if not rows:
            return HostReport(host, None), [], []
        findings = store.findings_of(rows[0])
        return HostReport(host, rows[0]), findings, [HostReport(host, r) for r in rows[1:]]


def _os_family(host: Host) -> str:
    return str((host.inventory or {}).get("os_family") or "linux")
