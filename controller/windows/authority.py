"""Whose rights a window task runs with: its author's, decided again each time it runs.

A task carries the operator it acts for (its author: whoever added it). When a window opens, each
task is authorized *as its author, then*, against the hosts its target resolves to at that moment,
with the same decision code as a direct call (``fleetops.controller.authz``):

* an author who is disabled, deleted or not an operator fails the task with that reason;
* hosts outside the author's rights are refused: never sent anything, named in the task's history
  and counted as errors (they use up ``max-errors`` first; more refused hosts than it allows and
  nothing starts), while the hosts within their rights run;
* every decision is an audit event with the author as actor, ``via window:NAME`` and the window,
  task and execution in its details.

docs/maintenance-windows.md#whose-rights-a-task-runs-with is the user's version of this text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fleetops.common import rates
from fleetops.common.documents import Document, split_reference
from fleetops.common.errors import FleetopsError, NotFound, PermissionDenied
from fleetops.common.roles import Role
from fleetops.common.selectors import Selector
from fleetops.controller.audit.models import Outcome
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.authz import MAX_AUDIT_HOSTS, Decision, authorize, authorize_selector, permitted_hosts
from fleetops.controller.authz.acting import Acting
from fleetops.controller.authz.documents import Choice, decide, decide_selector, document_choices, runbook_choices
from fleetops.controller.authz.documents import permitted as permitted_for
from fleetops.controller.authz.store import RoleStore
from fleetops.controller.documents.service import DocumentService
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.fleet.service import FleetService
from fleetops.controller.users.service import UserService
from fleetops.controller.windows.models import TaskType, WindowTask

#: The audit action of a task's run-time authorization.
RUN_ACTION = "window.task.run"


@dataclass(frozen=True)
class Grant:
    """What a task may do now: the hosts to run on, the hosts refused, and the decision behind it.

    ``error`` says why nothing may run although the author may act (every host refused, or more
    than ``max-errors`` allows); ``refused`` is filled either way.
    """

    user: str
    roles: list[Role]
    hosts: list[Host]
    refused: list[str]
    decision: Decision
    #: ``max-errors`` left for the command once the refused hosts are counted (as a count).
    max_errors: str
    error: str = ""
    #: A document or automation task: what may allow it (its document's action, or document.run).
    choices: list[Choice] | None = None

    def check(self, action: str, login: str | None, hosts: Sequence[Host]) -> None:
        """Decide again, on *hosts*, just before the command is made; raises PermissionDenied."""
        if self.choices is not None:
            decide(self.roles, self.choices, hosts, user=self.user).check()
        else:
            authorize(self.roles, action, hosts=hosts, login=login, user=self.user).check()


@dataclass(frozen=True)
class RunContext:
    """Which run of which task is being decided (for messages and the audit event)."""

    window: str
    task: WindowTask
    execution: str

    @property
    def via(self) -> str:
        return f"window:{self.window}"


class TaskAuthority:
    """Decides each run of a window task as its author, and audits the decision."""

    def __init__(
        self,
        fleet: FleetService,
        users: UserService,
        roles: RoleStore,
        audit: AuditLog,
        documents: DocumentService | None = None,
    ) -> None:
        self._fleet = fleet
        self._users = users
        self._roles = roles
        self._audit = audit
        self._documents = documents

    async def choices_for(self, task: WindowTask, pending: Mapping[str, Document] | None = None) -> list[Choice] | None:
        """What may allow a document or automation task (``None`` for the others: their action).

        A document task is allowed by its document's own action (``command.run`` as its run-as, or
        the patch action) or ``document.run`` for it; an automation task by ``document.run`` for the
        runbook or ``command.run`` somewhere (each of its steps is decided again when it runs).

        *pending* are documents about to be stored by the same change (``opsctl apply``), by name:
        a task naming one without a version is decided on it.

        Raises:
            NotFound: the document does not exist (any more). InvalidInput: a malformed reference.
        """
        if not task.runs_document:
            return None
        name, version = split_reference(task.document)
        if task.type == TaskType.AUTOMATION:
            return runbook_choices(name)
        if pending and version is None and name in pending:
            return document_choices(name, pending[name], task.run_as)
        if self._documents is None:
            raise NotFound(f"document {task.document!r} cannot be looked up here", "this is a controller bug")
        _, doc = await self._documents.resolve(task.document)
        return document_choices(name, doc, task.run_as)

    async def roles_of(self, author: str) -> tuple[str, list[Role]]:
        """The author's name and roles, if they may still act.

        Raises:
            PermissionDenied: the author is not an operator, no longer exists, or is disabled.
        """
        hint = "an operator with the rights it needs must add the task again (opsctl window task add)"
        try:
            return await Acting(self._users, self._roles).roles_of(author, hint)
        except PermissionDenied as exc:
            raise PermissionDenied(exc.message.replace("the author", "the task's author", 1), exc.hint) from None

    async def grant(self, run: RunContext) -> Grant:
        """Decide *run* as its author on the hosts its target resolves to now; audited whatever the answer.

        Raises:
            PermissionDenied: the author may no longer act (disabled, deleted, not an operator).
            NotFound: no host matches the target (or a named host is gone): nothing to decide.
            InvalidInput: the target or its limits are malformed.
        """
        task = run.task
        try:
            name, roles = await self.roles_of(task.author)
        except PermissionDenied as exc:
            await self._record(run, "denied", {"error": exc.message})
            raise
        try:
            choices = await self.choices_for(task)
        except FleetopsError as exc:
            await self._record(run, "denied", {"error": exc.message})
            raise
        if task.type == TaskType.AUTOMATION:
            assert choices is not None
            decision = decide(roles, choices, [], user=name)
            await self._record(run, "ok" if decision else "denied", {"authz": [decision.to_audit()]})
            decision.check()
            return Grant(name, roles, [], [], decision, "0", choices=choices)
        hosts = await self._fleet.resolve_target(task.target)
        if not hosts:
            raise NotFound(f"no host matches {task.target.describe()}", "nothing ran; check the task's target")
        return await self._decide(run, name, roles, hosts, choices)

    async def _decide(
        self, run: RunContext, name: str, roles: list[Role], hosts: Sequence[Host], choices: list[Choice] | None
    ) -> Grant:
        task = run.task
        if choices is not None:
            decision = decide(roles, choices, hosts, user=name)
            permitted = permitted_for(roles, choices, hosts)
        else:
            decision = authorize(roles, task.action, hosts=hosts, login=task.login, user=name)
            permitted = permitted_hosts(roles, task.action, hosts, login=task.login)
        allowed = {h.id for h in permitted}
        refused = [h.name or h.id for h in hosts if h.id not in allowed]
        limit = rates.max_errors(task.max_errors).resolve(len(hosts))
        details: dict[str, Any] = {
            "authz": [decision.to_audit()],
            "permitted": len(permitted),
            "refused_hosts": refused[:MAX_AUDIT_HOSTS],
            "refused_count": len(refused),
        }
        error = ""
        if not permitted:
            error = f"refused on every host its target matched: {decision.message}"
        elif len(refused) > limit:
            error = (
                f"{len(refused)} of {len(hosts)} hosts are outside {name}'s rights, more than max-errors "
                f"({limit}) allows; nothing was started: {decision.message}"
            )
        if error:
            details["error"] = error
        await self._record(run, "ok" if decision.allowed else "denied", details)
        left = str(max(limit - len(refused), 0))
        return Grant(name, roles, list(permitted), refused, decision, left, error, choices)

    # -- who may change a window -------------------------------------------------------------------
    async def editor_decisions(
        self,
        user: str,
        roles: Sequence[Role],
        window: str,
        tasks: Sequence[WindowTask],
        *,
        new: WindowTask | None = None,
        pending: Mapping[str, Document] | None = None,
    ) -> list[Decision]:
        """Whether *user* (holding *roles*) holds the rights each task needs; up to the first refusal.

        Changing a window (its schedule, enablement, tasks, or deleting it) changes what runs on
        its tasks' authors' behalf, so it needs what its tasks need: for each task, its action on
        every host its target could ever match, with its ``run_as``. A selector is decided as a
        selector (``authorize_selector``; its inventory facts, ``inv.*``, are reported by the hosts and
        so left out: it is decided as the wider selector without them, and each run still decides the
        hosts it matches then one by one, on their tags), ``--all`` needs the action on every host, and named hosts
        are decided one by one; a named host that no longer exists could be re-registered under that
        name, so it needs the action on every host. *new* is a task being added: a named host that
        does not exist is an error for it (``NotFound``), as for a direct call. *pending* are documents
        about to be stored by the same change (:meth:`choices_for`).

        Raises:
            NotFound: *new* names a host that does not exist.
            InvalidInput: *new* has a malformed selector.
        """
        every = [t for t in (new, *tasks) if t is not None]
        by_key: dict[str, Host] = {}
        if any(t.target.hosts for t in every):
            for host in await self._fleet.list_hosts(Target(all=True), include_deregistered=True):
                by_key.setdefault(host.id, host)
                by_key.setdefault(host.name, host)
        if new is not None and new.target.hosts:
            await self._fleet.resolve_target(new.target)  # NotFound naming a host that does not exist
        decisions = []
        for task in every:
            decision = _editor_decision(user, roles, task, by_key, await self.choices_for(task, pending))
            if task is not new:
                message = f"changing window {window!r} needs the rights of each of its tasks; task {task.id}: "
                message += decision.message
                decision = replace(decision, message=message, reason=f"{message} — {decision.hint}")
            decisions.append(decision)
            if not decision:
                break
        return decisions

    async def refuse(self, run: RunContext, error: str) -> None:
        """Audit a refusal found after the grant (the hosts changed before the command was made)."""
        await self._record(run, "denied", {"error": error})

    async def _record(self, run: RunContext, outcome: Outcome, details: dict[str, Any]) -> None:
        task = run.task
        await self._audit.record(
            actor=task.author or run.via,
            action=RUN_ACTION,
            target=f"{run.window}/{task.id}",
            outcome=outcome,
            details={
                "via": run.via,
                "window": run.window,
                "task": task.id,
                "execution": run.execution,
                "type": task.type.value,
                "action": task.action,
                "login": task.login,
                **details,
            },
        )


def _editor_decision(
    user: str, roles: Sequence[Role], task: WindowTask, hosts: Mapping[str, Host], choices: list[Choice] | None
) -> Decision:
    target = task.target

    def on_hosts(found: Sequence[Host]) -> Decision:
        if choices is not None:
            return decide(roles, choices, found, user=user)
        return authorize(roles, task.action, hosts=found, login=task.login, user=user)

    def on_selector(selector: Selector | None) -> Decision:
        if choices is not None:
            return decide_selector(roles, choices, selector, user=user)
        return authorize_selector(roles, task.action, selector, login=task.login, user=user)

    if task.type == TaskType.AUTOMATION:
        return on_hosts([])
    if target.hosts:
        found = [hosts[h] for h in target.hosts if h in hosts]
        missing = [h for h in target.hosts if h not in hosts]
        decision = on_hosts(found)
        if decision and missing:
            anywhere = on_selector(None)
            if not anywhere:
                message = (
                    f"{user} may not {task.action} on {', '.join(missing[:20])}: no such host now, and a host "
                    "could register under that name; only a role that allows it on every host may keep it"
                )
                hint = f"remove the task (opsctl window task remove {task.window} {task.id}), or ask an admin"
                return replace(anywhere, message=message, hint=hint, reason=f"{message} — {hint}")
            return anywhere
        return decision
    selector = None if target.all else Selector.parse(target.selector)
    return on_selector(selector)
