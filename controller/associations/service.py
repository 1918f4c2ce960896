"""Associations: create, list, apply on schedule and to new hosts, compliance per host.

docs/automation.md#associations is the user's version of this text.

Creating one checks everything before it is stored: the document exists, the parameters resolve
against it (a runbook's ``target`` parameter is the association's selector), the schedule is
``rate()`` or ``cron()``, the target is valid, and the creator may run (or, a runbook, start)
the document on every host the target could ever match (decided by the caller's adapter with
:meth:`AssociationService.creator_decision`). The creator is the author.

Every replica runs the same loop (:meth:`AssociationService.start`), every ``tick`` seconds (and at
once when an association is created here):

1. **Due applications.** An association whose ``next_run_at`` has come is claimed by moving it to
   the schedule's next occurrence (``store.claim_application``: one replica wins), then applied to
   every host its target matches now. A new association is due at once: the first application
   is at creation, as in SSM State Manager; a ``rate()`` schedule counts from there. Occurrences
   missed while no controller ran are not made up one by one: it applies once, then follows the schedule.
2. **New hosts.** A host the target matches that has no compliance row yet (registered since, or
   retagged into the target) gets one (``store.claim_hosts``: one replica wins) and the document
   at once (trigger ``new-host``), without waiting for the schedule. Hosts the target no longer
   matches (deregistered, retagged out) lose their row: they are no longer the association's, and
   one that matches again is a new host. This pass runs when the hosts or the associations
   changed since the last one, and at least every ``FULL_PASS_SECONDS``.
3. **Checks.** When the document declares ``check:`` scripts and the association has a check
   interval, the check runs as its own command (same ``FLEETOPS_PARAM_*`` variables, trigger
   ``check``) on the online hosts where the document was applied successfully. Exit 0 keeps the
   host compliant (or makes a drifted one compliant again); any other exit makes it ``drifted``
   with the check's first output line. The next application fixes it.
4. **Runbooks.** A runbook acts on its target as a whole: each application starts one execution
   of it (as the author, ``via association:ID``) with its ``target`` parameter set to the
   association's selector, and every host it matched then shares the execution's outcome. One
   execution runs at a time: an occurrence or a new host that comes while one runs waits for it
   to end (a manual apply is refused). The loop looks at the executions it follows every pass.
5. **Catch-up.** Results arrive through ``CommandService.on_result``; a run whose command ended
   without all of them being recorded (hosts never reached, a replica that stopped between the
   commit and the listener) is recorded from the command's stored results.

Each application and check acts for the author, decided again when it runs
(``authz.acting.Acting``): a disabled or deleted author fails it, hosts outside the author's
rights are left out (``failed``, saying why), and every decision is an audit event
``association.run`` with the author as actor and ``via: association:ID``. The commands are made
through the same path as ``opsctl run --doc`` (``documents.runs.start_document_run``), with the
actor ``AUTHOR via association:ID`` and the comment ``association ID``. An application to more
than ``MAX_COMMAND_HOSTS`` hosts is split into commands of at most that many (each with the
association's rates).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fleetops.common import limits, rates
from fleetops.common.documents import Document, split_reference
from fleetops.common.errors import AuthError, Conflict, FleetopsError, InvalidInput, NotFound
from fleetops.common.roles import Role
from fleetops.common.selectors import Selector, inventory_facts
from fleetops.common.states import CommandStatus, InvocationState
from fleetops.controller.associations.models import (
    CHECKED,
    Association,
    AssociationRun,
    HostCompliance,
    HostResult,
    Trigger,
    application_outcome,
    check_interval,
    check_outcome,
    chunks,
    execution_outcome,
    matching,
    new_association_id,
    parse_schedule,
    validate_name,
)
from fleetops.controller.associations.store import AssociationStore, Outcome
from fleetops.controller.audit.models import Outcome as AuditOutcome
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.authz import MAX_AUDIT_HOSTS, Decision
from fleetops.controller.authz.acting import Acting
from fleetops.controller.authz.documents import (
    Choice,
    decide,
    decide_selector,
    document_choices,
    permitted,
    runbook_choices,
)
from fleetops.controller.automation.models import new_execution_id
from fleetops.controller.commands.models import DEFAULT_DELIVERY_TIMEOUT_SECONDS, CommandSpec, InvocationReport
from fleetops.controller.commands.service import CommandService, check_target, new_command_id
from fleetops.controller.documents.models import DocumentInfo
from fleetops.controller.documents.runs import RunOptions, start_document_run
from fleetops.controller.documents.service import DocumentService, check_platforms, command_spec
from fleetops.controller.fleet.models import Host, HostStatus, Target
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.patching.service import PatchService
from fleetops.controller.windows.interfaces import EXECUTION_PREFIX, RunbookLauncher

log = logging.getLogger(__name__)

#: Seconds between passes of the loop (due applications, new hosts, checks).
TICK_SECONDS = 2.0
#: Seconds between looks for runs whose results are not all recorded (the catch-up).
SWEEP_SECONDS = 10.0
#: The new-host pass runs at least this often even when nothing seemed to change.
FULL_PASS_SECONDS = 30.0
#: A run recorded without its command this long (the controller stopped between the two) is given up.
ABANDON_AFTER = timedelta(minutes=2)
#: Hosts per command: an application to more hosts is made of several commands.
MAX_COMMAND_HOSTS = limits.TARGET_HOSTS.maximum
#: ``max-errors`` when the association gives none: one failing host does not stop the others.
DEFAULT_MAX_ERRORS = "100%"
#: The longest a check may run on a host (the document's timeout, when shorter).
CHECK_TIMEOUT_SECONDS = 300
#: The runbook parameter an association sets to its selector (the hosts the runbook acts on).
RUNBOOK_TARGET = "target"
RUNBOOK_TARGET_HINT = (
    "declare it (parameters: {target: {type: string}}) and select the steps' hosts with target: '{{ params.target }}'"
)
#: The audit action of each application's (and check's) decision, recorded by the controller.
RUN_ACTION = "association.run"
AUTHOR_HINT = (
    "an operator with the rights it needs must create the association again (opsctl association create); "
    "until then it applies nowhere"
)
#: When ``next_after`` has no answer (past year 9999): effectively never.
_NEVER = timedelta(days=365 * 100)


def _now() -> datetime:
    return datetime.now(UTC)


def _rate_text(parse: Callable[[str], rates.Rate], text: str) -> str:
    """A rate as stored: checked, in its shortest form (``050`` is ``50``); ``""`` for the default."""
    if not text.strip():
        return ""
    rate = parse(text)
    return f"{rate.number}{'%' if rate.percent else ''}"


def _choices(name: str, doc: Document) -> builtins.list[Choice]:
    """What may allow an application of document *name*: starting it (a runbook), or running it."""
    return runbook_choices(name) if doc.kind == "runbook" else document_choices(name, doc, "")


def application_values(info: DocumentInfo, doc: Document, given: dict[str, str], target: Target) -> dict[str, Any]:
    """The document's parameter values for an application to *target*, checked.

    A runbook is started with its ``target`` parameter set to the association's selector: it must
    declare one (a string), and the target must be a selector (its steps select hosts by tag).

    Raises:
        InvalidInput: parameters the document refuses (naming the parameter), or a runbook that
            cannot take the target.
    """
    if doc.kind != "runbook":
        return doc.resolve(given)
    if not target.selector:
        raise InvalidInput(
            f"{info.name} is a runbook: an association starts it on a selector",
            "give --target SELECTOR (its steps select hosts by tag), not --host or --all",
        )
    declared = next((p for p in doc.parameters if p.name == RUNBOOK_TARGET), None)
    if declared is None or declared.type != "string":
        raise InvalidInput(
            f"runbook {info.reference} has no string parameter {RUNBOOK_TARGET!r} to take the association's target",
            RUNBOOK_TARGET_HINT,
        )
    return doc.resolve(runbook_parameters(given, target))


def runbook_parameters(given: dict[str, str], target: Target) -> dict[str, str]:
    """A runbook's parameters as an association starts it: its own, and ``target`` its selector."""
    return {**given, RUNBOOK_TARGET: target.selector}


@dataclass(frozen=True)
class NewAssociation:
    """An association checked and ready to store, with what its creator's decision needs."""

    association: Association
    info: DocumentInfo
    doc: Document
    #: Named hosts (``--host``) as they resolve now.
    named: tuple[Host, ...] = ()


@dataclass(frozen=True)
class _Plan:
    """What one run may do, decided as the author."""

    user: str
    roles: list[Role]
    info: DocumentInfo
    doc: Document  # for a check: the check as the document's run
    values: dict[str, Any]
    choices: list[Choice]
    hosts: list[Host]


class AssociationService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        fleet: FleetService,
        commands: CommandService,
        patching: PatchService,
        documents: DocumentService,
        acting: Acting,
        audit: AuditLog,
        replica: str,
    ) -> None:
        self._db = db
        self._fleet = fleet
        self._commands = commands
        self._patching = patching
        self._documents = documents
        self._acting = acting
        self._audit = audit
        self.replica = replica
        self.store = AssociationStore(db)
        #: Seconds between passes of the loop (tests may lower it before start()).
        self.tick = TICK_SECONDS
        #: Starts runbook executions (set by the composition root; associations of runbooks need it).
        self.runbooks: RunbookLauncher | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # Runs whose results this replica takes in as they come (command id -> run, results still due).
        self._mine: dict[str, AssociationRun] = {}
        self._left: dict[str, int] = {}
        # Runbook executions this replica follows (execution id -> run).
        self._executions: dict[str, AssociationRun] = {}
        self._seen: int | None = None  # fingerprint of the hosts and associations at the last new-host pass
        self._full_pass = datetime.min.replace(tzinfo=UTC)
        self._swept = datetime.min.replace(tzinfo=UTC)

    def start(self) -> None:
        """Start applying associations (every replica runs this; each application happens once)."""
        self._commands.on_result(self._on_result)
        self._task = asyncio.create_task(self._loop(), name="associations")

    async def stop(self) -> None:
        """Stop applying; what was started goes on as commands."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # -- operator calls ------------------------------------------------------------------------------
    async def prepare(
        self,
        author: str,
        *,
        name: str,
        document: str,
        parameters: dict[str, str],
        target: Target,
        schedule: str,
        max_concurrency: str = "",
        max_errors: str = "",
        check_interval_seconds: int = 0,
        resolved: tuple[DocumentInfo, Document] | None = None,
    ) -> NewAssociation:
        """Check a new association; nothing is stored.

        *resolved* is its document when it is not stored yet (``opsctl apply`` checks a set whose
        documents are stored before its associations); by default the stored one is looked up.

        Raises:
            InvalidInput: a bad name, parameters the document refuses, a bad or ``at()`` schedule,
                an empty or malformed target, bad rates or check interval, a check interval for a
                document without a check; for a runbook: a target that is not a selector, no
                ``target`` parameter (or one given), rates (its steps set theirs).
            NotFound: no such document (version), or a named host that does not exist.
        """
        validate_name(name)
        if not document.strip():
            raise InvalidInput("no document given", "give --doc NAME or --doc NAME:VERSION")
        doc_name, version = split_reference(document.strip())
        info, doc = resolved or await self._documents.resolve(document.strip())
        named = await self._check_target(target)
        if doc.kind == "runbook":
            if max_concurrency.strip() or max_errors.strip():
                raise InvalidInput(
                    f"{info.name} is a runbook: --max-concurrency and --max-errors are for command documents",
                    "its run steps set their own batches, max_concurrency and max_errors",
                )
            if RUNBOOK_TARGET in parameters:
                raise InvalidInput(
                    f"--param {RUNBOOK_TARGET} is given by the association",
                    f"the runbook is started with {RUNBOOK_TARGET} set to the association's --target",
                )
        application_values(info, doc, parameters, target)  # InvalidInput naming the parameter
        now = _now()
        parsed = parse_schedule(schedule, now)
        concurrency = _rate_text(rates.max_concurrency, max_concurrency)
        errors = _rate_text(rates.max_errors, max_errors)
        interval = check_interval(check_interval_seconds)
        if interval and doc.check is None:
            raise InvalidInput(
                f"document {info.reference} has no check, so --check-every has nothing to run",
                "add check: scripts to the document (docs/automation.md#documents), or leave out --check-every",
            )
        association = Association(
            id=new_association_id(),
            name=name,
            document=doc_name if version is None else f"{doc_name}:{version}",
            parameters=dict(parameters),
            target=target,
            schedule=parsed.expression,
            max_concurrency=concurrency,
            max_errors=errors,
            check_interval_seconds=interval,
            author=author,
            created_at=now,
            next_run_at=now,  # the first application is at creation
            next_check_at=now + timedelta(seconds=interval) if interval else None,
        )
        return NewAssociation(association, info, doc, tuple(named))

    async def _check_target(self, target: Target) -> builtins.list[Host]:
        """Raises InvalidInput (empty, mixed, malformed, too long), NotFound (a named host)."""
        if target.empty:
            raise InvalidInput(
                "no target given", "give --target SELECTOR, --host NAME (repeatable) or --all for every host"
            )
        if sum(bool(x) for x in (target.selector, target.hosts, target.all)) > 1:
            raise InvalidInput(
                "give only one of --target, --host or --all",
                "combine conditions inside the selector instead, e.g. env=prod,role=web",
            )
        check_target(target)
        if target.selector:
            Selector.parse(target.selector)
            return []
        if target.hosts:
            return await self._fleet.resolve_target(target)
        return []

    def creator_decision(self, user: str, roles: Sequence[Role], new: NewAssociation) -> Decision:
        """Whether *user* may run the document on every host the target could ever match.

        A selector is decided as a selector (every host it could match, ``authorize_selector``),
        ``--all`` needs the right on every host, named hosts are decided one by one. The document is
        allowed by its own action (``command.run`` as root, or the patch action) or ``document.run``.
        """
        a = new.association
        choices = _choices(new.info.name, new.doc)
        if a.target.hosts:
            return decide(roles, choices, list(new.named), user=user)
        selector = None if a.target.all else Selector.parse(a.target.selector)
        return decide_selector(roles, choices, selector, user=user, deferred="An association")

    async def create(self, new: NewAssociation) -> Association:
        """Store *new* (checked and decided); its first application follows at once.

        Raises:
            Conflict: its name is taken.
        """
        created = await self.store.create(new.association)
        self._wake.set()
        return created

    async def list(self) -> builtins.list[Association]:
        return await self.store.list()

    async def get(self, key: str) -> Association:
        """Raises NotFound."""
        return await self.store.get(key)

    async def detail(self, key: str) -> tuple[Association, builtins.list[HostCompliance]]:
        """The association and each host's compliance (by host name). Raises NotFound."""
        association = await self.store.get(key)
        rows = await self.store.hosts(association.id)
        names = {h.id: h.name for h in await self._fleet.list_hosts(Target(all=True), include_deregistered=True)}
        named = [replace(r, host_name=names.get(r.host_id, r.host_id)) for r in rows]
        return association, sorted(named, key=lambda r: r.host_name)

    async def history(self, key: str, limit: int) -> tuple[Association, builtins.list[AssociationRun]]:
        """The association's latest runs (newest first), each with its command's status. Raises NotFound."""
        association = await self.store.get(key)
        runs = []
        for run in await self.store.runs(association.id, max(1, min(limit, 1000))):
            try:
                if run.command_id.startswith(EXECUTION_PREFIX) and self.runbooks is not None:
                    status = (await self.runbooks.outcome(run.command_id))[1]
                else:
                    status = (await self._commands.command(run.command_id)).status.value
            except NotFound:
                status = InvocationState.NOT_STARTED.value
            runs.append(replace(run, status=status))
        return association, runs

    async def apply_now(self, key: str) -> builtins.list[AssociationRun]:
        """Apply it now on every host its target matches (trigger ``manual``); the runs made.

        Raises:
            NotFound: no such association, or no host matches its target now.
            Conflict: it could be applied nowhere (its author may no longer act, its document is
                gone, every host is outside the author's rights): the hosts say why; or the
                execution of its runbook it started last is still running.
        """
        association = await self.store.get(key)
        running = await self._running_execution(association.id)
        if running:
            raise Conflict(
                f"association {association.label} is still running its runbook: execution {running}",
                f"wait for it to end (opsctl automation watch {running}), or cancel it first",
            )
        hosts = matching(association.target, await self._fleet.list_hosts(Target(all=True)))
        if not hosts:
            raise NotFound(
                f"no host matches {association.target.describe()}", "check it with opsctl hosts list --target"
            )
        runs, problem = await self._apply(association, Trigger.MANUAL, hosts, _now())
        if not runs:
            raise Conflict(
                f"association {association.label} applied nowhere: {problem}",
                f"see why on each host: opsctl association show {association.id}",
            )
        return runs

    async def delete(self, key: str) -> Association:
        """Delete it: no more applications (commands already made go on). Raises NotFound."""
        association = await self.store.get(key)
        await self.store.delete(association.id)
        for command_id, run in builtins.list(self._mine.items()):
            if run.association_id == association.id:
                self._forget(command_id)
        for execution_id, run in builtins.list(self._executions.items()):
            if run.association_id == association.id:
                del self._executions[execution_id]
        return association

    # -- the loop ----------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            try:
                await self.pass_once()
            except Exception:  # the database may be away for a moment: look again later
                log.exception("the association loop failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick)
            self._wake.clear()

    async def pass_once(self) -> None:
        """One pass: catch up on results, apply what is due, reach new hosts, run due checks."""
        now = _now()
        if now - self._swept >= timedelta(seconds=SWEEP_SECONDS):
            await self._sweep(now)
            self._swept = now
        await self._follow_executions(now)
        associations = await self.store.list(counts=False)
        if not associations:
            return  # nothing to apply: the hosts need not be listed
        hosts = await self._fleet.list_hosts(Target(all=True))
        await self._apply_due(now, hosts, [a for a in associations if a.next_run_at <= now])
        # As listed before the applications: one applied just now for the first time is left to the
        # next pass (its rows are there by then).
        await self._new_hosts(now, hosts, associations)
        await self._checks(now, hosts, associations)

    async def _apply_due(self, now: datetime, hosts: builtins.list[Host], due: builtins.list[Association]) -> None:
        for association in due:
            try:
                if await self._running_execution(association.id):
                    continue  # its runbook still runs: this occurrence waits for it to end
                schedule = parse_schedule(association.schedule, association.created_at)
                following = schedule.next_after(now) or now + _NEVER
                matched = matching(association.target, hosts)
                claimed = await self.store.claim_application(
                    association.id, association.next_run_at, following, now, [h.id for h in matched]
                )
                if claimed:
                    await self._apply(association, Trigger.SCHEDULE, matched, now)
            except Exception:
                log.exception("association %s: the scheduled application failed", association.id)

    async def _new_hosts(
        self, now: datetime, hosts: builtins.list[Host], associations: builtins.list[Association]
    ) -> None:
        fingerprint = hash(
            (
                tuple(
                    (h.id, tuple(sorted(h.all_tags.items())), tuple(sorted(inventory_facts(h.inventory).items())))
                    for h in hosts
                ),
                tuple((a.id, a.last_run_at is None) for a in associations),
            )
        )
        if fingerprint == self._seen and now - self._full_pass < timedelta(seconds=FULL_PASS_SECONDS):
            return
        keys = await self.store.host_keys()
        waiting = False
        for association in associations:
            if association.last_run_at is None:
                continue  # its first application (the schedule's) takes every host
            try:
                matched = matching(association.target, hosts)
                have = keys.get(association.id, set())
                await self.store.drop_hosts(association.id, have - {h.id for h in matched}, now)
                new = [h for h in matched if h.id not in have]
                if new and await self._running_execution(association.id):
                    waiting = True  # its runbook still runs: the new hosts wait for it to end
                    continue
                claimed = await self.store.claim_hosts(association.id, [h.id for h in new], _now())
                if claimed:
                    await self._apply(
                        association, Trigger.NEW_HOST, [h for h in new if h.id in claimed], now, whole=matched
                    )
            except Exception:
                log.exception("association %s: applying to new hosts failed", association.id)
                return  # the next pass looks again
        if not waiting:  # else the next pass looks again
            self._seen, self._full_pass = fingerprint, now

    async def _checks(
        self, now: datetime, hosts: builtins.list[Host], associations: builtins.list[Association]
    ) -> None:
        for association in associations:
            due = association.next_check_at
            if not association.check_interval_seconds or due is None or due > now:
                continue
            try:
                following = now + timedelta(seconds=association.check_interval_seconds)
                if not await self.store.claim_check(association.id, due, following):
                    continue
                applied = {r.host_id for r in await self.store.hosts(association.id) if r.status in CHECKED}
                online = [
                    h for h in matching(association.target, hosts) if h.id in applied and h.status is HostStatus.ONLINE
                ]
                if online:
                    await self._apply(association, Trigger.CHECK, online, now)
            except Exception:
                log.exception("association %s: the check failed", association.id)

    # -- one run -------------------------------------------------------------------------------------------
    async def _apply(
        self,
        association: Association,
        trigger: Trigger,
        hosts: builtins.list[Host],
        now: datetime,
        *,
        whole: builtins.list[Host] | None = None,
    ) -> tuple[builtins.list[AssociationRun], str]:
        """Run the document (or its check) on *hosts* as the author; the runs made, or why none was.

        A runbook is started on the whole target: *whole* (every host it matches) when *hosts*
        are only the new ones.
        """
        plan, problem = await self._plan(association, trigger, hosts, now, whole=whole)
        if plan is None:
            return [], problem
        if plan.doc.kind == "runbook":
            return await self._start_runbook(association, plan, trigger, now)
        runs: builtins.list[AssociationRun] = []
        actor = f"{association.author} via association:{association.id}"
        for ids in chunks([h.id for h in plan.hosts], MAX_COMMAND_HOSTS):
            run = AssociationRun(association.id, new_command_id(), trigger, now, len(ids))
            try:
                await self.store.start_run(run, ids)
            except NotFound:  # deleted meanwhile: nothing more to do
                return runs, "it was deleted"
            self._mine[run.command_id] = run
            self._left[run.command_id] = len(ids)
            try:
                await self._make_command(association, plan, run, actor, ids)
            except FleetopsError as exc:
                self._forget(run.command_id)
                problem = f"the command could not be made: {exc.message}"
                log.warning("association %s: %s", association.id, problem)
                await self.store.abandon_run(run.command_id, problem, now)
                continue
            runs.append(run)
        return runs, problem

    async def _start_runbook(
        self, association: Association, plan: _Plan, trigger: Trigger, now: datetime
    ) -> tuple[builtins.list[AssociationRun], str]:
        """Start one execution of the runbook on the association's selector, as the author."""
        assert self.runbooks is not None  # _plan refuses runbooks without a launcher
        run = AssociationRun(association.id, new_execution_id(), trigger, now, len(plan.hosts))
        try:
            await self.store.start_run(run, [h.id for h in plan.hosts])
        except NotFound:  # deleted meanwhile
            return [], "it was deleted"
        self._executions[run.command_id] = run
        try:
            await self.runbooks.launch(
                association.author,
                plan.info.reference,
                runbook_parameters(association.parameters, association.target),
                f"association:{association.id}",
                execution_id=run.command_id,
            )
        except FleetopsError as exc:
            self._executions.pop(run.command_id, None)
            problem = f"the runbook could not be started: {exc.message}"
            log.warning("association %s: %s", association.id, problem)
            await self.store.abandon_run(run.command_id, problem, now)
            return [], problem
        return [run], ""

    async def _running_execution(self, association_id: str) -> str:
        """The id of the runbook execution the association started that has not ended (``""``: none)."""
        for run in await self.store.unrecorded(association_id):
            if run.command_id.startswith(EXECUTION_PREFIX):
                return run.command_id
        return ""

    async def _make_command(
        self, association: Association, plan: _Plan, run: AssociationRun, actor: str, ids: builtins.list[str]
    ) -> None:
        target = Target(hosts=tuple(ids))
        concurrency = association.max_concurrency or rates.DEFAULT_MAX_CONCURRENCY

        def recheck(hosts: Sequence[Host]) -> None:
            decide(plan.roles, plan.choices, hosts, user=plan.user).check()

        if run.trigger is Trigger.CHECK:
            timeout = min(plan.doc.timeout_seconds or CHECK_TIMEOUT_SECONDS, CHECK_TIMEOUT_SECONDS)
            base = CommandSpec(
                script=b"-",  # replaced by the check's
                max_concurrency=concurrency,
                max_errors="100%",  # a drifted host is a failed check, not a reason to stop checking
                timeout_seconds=timeout,
                delivery_timeout_seconds=max(
                    60, min(association.check_interval_seconds, DEFAULT_DELIVERY_TIMEOUT_SECONDS)
                ),
                comment=f"association {association.id} check",
            )
            spec = command_spec(plan.info, plan.doc, plan.values, base)
            await self._commands.create(actor, target, spec, authorize=recheck, command_id=run.command_id)
            return
        options = RunOptions(
            max_concurrency=concurrency,
            max_errors=association.max_errors or DEFAULT_MAX_ERRORS,
            comment=f"association {association.id}",
        )
        await start_document_run(
            self._commands,
            self._patching,
            actor,
            target,
            plan.info,
            plan.doc,
            plan.values,
            options,
            authorize=lambda hosts, _action, _login: recheck(hosts),
            command_id=run.command_id,
        )

    async def _plan(
        self,
        association: Association,
        trigger: Trigger,
        hosts: builtins.list[Host],
        now: datetime,
        *,
        whole: builtins.list[Host] | None = None,
    ) -> tuple[_Plan | None, str]:
        """Decide a run as the author, now; record and audit what may not run. ``(None, why)``: nothing may.

        A runbook is decided on the whole target (*whole*, else *hosts*), all or nothing: its
        execution acts on all of it (and each step is decided again as the author when it runs).
        """
        applying = trigger is not Trigger.CHECK
        try:
            user, roles = await self._acting.roles_of(association.author, AUTHOR_HINT)
            info, doc = await self._documents.resolve(association.document)
            values = application_values(info, doc, association.parameters, association.target)
            if doc.kind == "runbook" and self.runbooks is None:
                raise InvalidInput("this controller cannot start runbooks", "this is a controller bug")
        except FleetopsError as exc:
            outcome: AuditOutcome = "denied" if isinstance(exc, AuthError) else "error"
            await self._record(association, trigger, outcome, {"error": exc.message, "hosts": len(hosts)})
            if applying:
                await self.store.set_failed(association.id, {h.id: exc.message for h in hosts}, now)
            return None, exc.message
        if not applying:
            if doc.check is None:
                return None, f"document {info.reference} has no check"
            doc = replace(doc, run=doc.check, action="")  # the check runs as a script of the document
        runbook = doc.kind == "runbook"
        if runbook and whole is not None:
            hosts = whole
        choices = _choices(info.name, doc)
        decision = decide(roles, choices, hosts, user=user)
        allowed = {h.id for h in permitted(roles, choices, hosts)}
        refused = [h.name for h in hosts if h.id not in allowed]
        if runbook and not decision.allowed:
            allowed = set()  # it acts on the whole target: all of it, or nowhere
        failures: dict[str, str] = {}
        runnable: builtins.list[Host] = []
        for host in hosts:
            if host.id not in allowed:
                failures[host.id] = (
                    f"outside the author's rights: {decision.message}"
                    if runbook
                    else f"outside the author's rights: {user} may not run document {info.name} here"
                )
                continue
            try:
                if not runbook:
                    check_platforms(info, doc, [host])
            except InvalidInput as exc:
                failures[host.id] = exc.message
                continue
            runnable.append(host)
        details: dict[str, Any] = {
            "document": info.reference,
            "authz": [decision.to_audit()],
            "hosts": len(hosts),
            "permitted": len(allowed),
            "refused_hosts": refused[:MAX_AUDIT_HOSTS],
            "refused_count": len(refused),
        }
        problem = ""
        if not runnable:
            problem = decision.message if not allowed else next(iter(failures.values()), "no host to run on")
            details["error"] = problem
        await self._record(association, trigger, "ok" if decision.allowed else "denied", details)
        if applying:
            await self.store.set_failed(association.id, failures, now)
        if not runnable:
            return None, problem
        return _Plan(user, roles, info, doc, values, choices, runnable), ""

    async def _record(
        self, association: Association, trigger: Trigger, outcome: AuditOutcome, details: dict[str, Any]
    ) -> None:
        await self._audit.record(
            actor=association.author or f"association:{association.id}",
            action=RUN_ACTION,
            target=association.id,
            outcome=outcome,
            details={
                "via": f"association:{association.id}",
                "association": association.id,
                "name": association.name,
                "trigger": trigger.value,
                **details,
            },
        )

    # -- results -------------------------------------------------------------------------------------------
    async def _on_result(self, command_id: str, host_id: str, report: InvocationReport) -> None:
        """A final result of any command: taken in when it is one of this replica's runs (cheap otherwise)."""
        run = self._mine.get(command_id)
        if run is None:
            return
        output = b""
        if run.trigger is Trigger.CHECK and report.state is InvocationState.FAILED:
            _, invocations = await self._commands.view(command_id, only=[report.invocation_id])
            if invocations:
                output = invocations[0].stdout_tail or invocations[0].stderr_tail
        result = HostResult(
            host_id, report.state, report.exit_code, report.reason, report.finished_at or _now(), output
        )
        await self._take_in(run, [result])
        left = self._left.get(command_id, 0) - 1
        self._left[command_id] = left
        if left <= 0:
            await self.store.mark_recorded(command_id)
            self._forget(command_id)

    async def _take_in(self, run: AssociationRun, results: Sequence[HostResult]) -> None:
        outcomes: builtins.list[Outcome] = []
        if run.trigger is Trigger.CHECK:
            for r in results:
                found = check_outcome(r)
                if found is not None:
                    outcomes.append((r.host_id, found[0], found[1], r.at))
            await self.store.record_check(run.association_id, run.started_at, outcomes)
        else:
            for r in results:
                status, detail = application_outcome(r)
                outcomes.append((r.host_id, status, detail, r.at))
            await self.store.record_application(run.association_id, run.command_id, outcomes)

    def _forget(self, command_id: str) -> None:
        self._mine.pop(command_id, None)
        self._left.pop(command_id, None)

    async def _sweep(self, now: datetime) -> None:
        """Record the runs whose commands ended without every result taken in (and give up runs
        whose command was never made); follow the running ones' results as they come."""
        for run in await self.store.unrecorded():
            if run.command_id.startswith(EXECUTION_PREFIX):
                self._executions.setdefault(run.command_id, run)  # followed (or given up) every pass
                continue
            try:
                command = await self._commands.command(run.command_id)
            except NotFound:
                if now - run.started_at > ABANDON_AFTER:
                    self._forget(run.command_id)
                    await self.store.abandon_run(
                        run.command_id, "the controller stopped before the command was made; the next run retries", now
                    )
                continue
            if command.status is CommandStatus.IN_PROGRESS:
                if run.command_id not in self._mine:
                    self._mine[run.command_id] = run
                    self._left[run.command_id] = run.hosts
                continue
            _, invocations = await self._commands.view(run.command_id)
            results = [
                HostResult(
                    i.host_id,
                    i.state,
                    i.exit_code,
                    i.reason,
                    i.finished_at or i.updated_at,
                    i.stdout_tail or i.stderr_tail,
                )
                for i in invocations
                if i.state.final
            ]
            await self._take_in(run, results)
            await self.store.mark_recorded(run.command_id)
            self._forget(run.command_id)

    async def _follow_executions(self, now: datetime) -> None:
        """Record the outcome of each followed execution (started here, or found by the sweep) that
        has ended on the hosts waiting on it; give up one recorded but never started."""
        if self.runbooks is None:
            return
        for execution_id, run in builtins.list(self._executions.items()):
            try:
                ended, status, reason = await self.runbooks.outcome(execution_id)
            except NotFound:
                if now - run.started_at > ABANDON_AFTER:  # the controller stopped between record and start
                    self._executions.pop(execution_id, None)
                    await self.store.abandon_run(
                        execution_id, "the controller stopped before the runbook was started; the next run retries", now
                    )
                continue
            if not ended:
                continue
            outcome, detail = execution_outcome(execution_id, status, reason)
            at = _now()
            rows = await self.store.hosts(run.association_id)
            waiting = [r.host_id for r in rows if r.last_command_id == execution_id]
            await self.store.record_application(
                run.association_id, execution_id, [(h, outcome, detail, at) for h in waiting]
            )
            await self.store.mark_recorded(execution_id)
            self._executions.pop(execution_id, None)
