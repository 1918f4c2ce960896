"""Which action each OperatorService RPC needs (docs/access.md#what-each-call-needs).

``RPC_ACTIONS`` maps every operator RPC method name to the action checked before it runs, or to
``None`` for the calls that only need an enabled identity (``WhoAmI``, renewing one's own
certificate) or that decide on something else (``DecideAutomationApproval``: the approve step's
approvers and role). An RPC missing from the table must be refused: fail closed.

``RPC_SCOPE`` says, for each RPC whose action is host-scoped, which hosts and which login to pass
to ``authorize`` (or that the results are filtered with ``permitted_hosts`` instead of refused).
RPCs of host-scoped actions that are not in ``RPC_SCOPE`` are checked without hosts ("on some
host"). The principles behind the table:

* ``admin`` is everything that changes who may do what, or which hosts exist: users, roles, login
  tokens, activations and deregistering; also fleet-wide patch policy (baselines, patch groups).
  Holding ``admin`` is equivalent to holding every role, since an admin can give themselves any role.
* Tags are what role selectors match, so tagging *is* granting: ``hosts.tag`` is host-scoped and
  decided on each host's tags both before and after the change (``authz.retag.authorize_retag``),
  and a change that would give the caller a right on the host they did not have is refused. So it
  neither pulls a host into nor pushes one out of the caller's reach.
* Work done on hosts is visible to whoever may do that work there: commands (text, status and
  output) need ``command.run`` on their hosts, sessions ``session.start`` on theirs. Such reads
  check no login.
* Session transcripts replay everything typed and shown, by anyone: they are audit evidence and
  need ``audit.read``.
* Inventory and compliance are ``hosts.read``, filtered host by host; baselines and patch groups
  are readable by anyone who may read some host (compliance refers to them).
* Maintenance windows hold commands and scripts that run unattended: reading and changing them is
  ``window.manage``. Changing a window (``UpdateWindow``, ``SetWindowEnabled``, ``DeleteWindow``,
  ``AddWindowTask``, ``RemoveWindowTask``) also needs each of its tasks' own action
  (``TASK_ACTIONS``) on every host the task's target could ever match, with its ``run_as`` as
  login (``authorize_selector``; ``controller/windows/authority.py``), so ``window.manage`` can
  neither run nor reschedule what its holder could not run directly. Each run of a task is
  decided again as its author, on the hosts resolved then.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Actions no RPC needs: decided once per SSH session for what happens inside the connection
#: (``authz.ssh``; docs/ssh.md).
SSH_SESSION_ACTIONS = frozenset({"ssh.forward", "ssh.forward_remote", "ssh.agent", "file.transfer"})
#: Actions an RPC accepts instead of its own for some requests: a run of a document
#: (``RunCommand`` with a document) is allowed by ``document.run`` for that document.
ALTERNATIVE_ACTIONS = {"RunCommand": ("document.run", "patch.scan", "patch.install")}

RPC_ACTIONS: dict[str, str | None] = {
    # identity
    "WhoAmI": None,
    "RenewOperatorCertificate": None,
    "CreateConsoleLink": None,  # a link for oneself: the session has the caller's rights
    # hosts
    "ListHosts": "hosts.read",
    "GetHost": "hosts.read",
    "TagHost": "hosts.tag",
    "TagHosts": "hosts.tag",
    "DeregisterHost": "admin",
    # enrollment
    "CreateActivation": "admin",
    "ListActivations": "admin",
    "DeleteActivation": "admin",
    # run command
    "RunCommand": "command.run",
    "ListCommands": "command.run",
    "GetCommand": "command.run",
    "WatchCommand": "command.run",
    "CancelCommand": "command.run",
    "GetInvocationOutput": "command.run",
    "WatchOutput": "command.run",
    # documents: reading them is as reading baselines; changing one changes what document.run runs
    "CreateDocument": "document.manage",
    "UpdateDocument": "document.manage",
    "SetDefaultDocumentVersion": "document.manage",
    "DeleteDocument": "document.manage",
    "ListDocuments": "hosts.read",
    "GetDocument": "hosts.read",
    "ListDocumentVersions": "hosts.read",
    # associations: scheduled applications of a document, each authorized as the author when it runs
    "CreateAssociation": "association.manage",
    "DeleteAssociation": "association.manage",
    "ApplyAssociation": "association.manage",
    "ListAssociations": "hosts.read",
    "GetAssociation": "hosts.read",
    "AssociationHistory": "hosts.read",
    # automation: starting or cancelling a runbook is document.run for it (each step is authorized
    # as the starter when it runs); approving is decided by the step's approvers, not by a role action
    "StartAutomation": "document.run",
    "CancelAutomation": "document.run",
    "ListAutomations": "hosts.read",
    "GetAutomation": "hosts.read",
    "WatchAutomation": "hosts.read",
    "DecideAutomationApproval": None,
    # events and subscriptions (docs/events.md): each delivery is decided again as the author
    "WatchEvents": "events.read",
    "ListEventTypes": "events.read",
    "CreateSubscription": "subscription.manage",
    "ListSubscriptions": "subscription.manage",
    "GetSubscription": "subscription.manage",
    "TestSubscription": "subscription.manage",
    "RedeliverSubscription": "subscription.manage",
    "DeleteSubscription": "subscription.manage",
    # sessions
    "Session": "session.start",
    "ListSessions": "session.start",
    "GetSession": "session.start",
    "KillSession": "session.start",
    "GetSessionTranscript": "audit.read",
    # ssh (the certificate alone reaches nothing: each connection is a session, authorized as one)
    "IssueSshCertificate": "session.start",
    # agent releases: replacing the program that runs as root on every host is an admin's call
    "ListAgentReleases": "hosts.read",
    "UpdateAgents": "admin",
    # patching
    "ScanPatches": "patch.scan",
    "InstallPatches": "patch.install",
    "GetPatchCompliance": "hosts.read",
    "CreatePatchBaseline": "admin",
    "UpdatePatchBaseline": "admin",
    "DeletePatchBaseline": "admin",
    "ListPatchBaselines": "hosts.read",
    "GetPatchBaseline": "hosts.read",
    "AssignPatchBaseline": "admin",
    "ListPatchGroups": "hosts.read",
    "DeletePatchGroup": "admin",
    # maintenance windows
    "CreateWindow": "window.manage",
    "UpdateWindow": "window.manage",
    "ListWindows": "window.manage",
    "GetWindow": "window.manage",
    "DeleteWindow": "window.manage",
    "SetWindowEnabled": "window.manage",
    "NextWindowRuns": "window.manage",
    "AddWindowTask": "window.manage",
    "RemoveWindowTask": "window.manage",
    "WindowHistory": "window.manage",
    # operators and roles
    "CreateUser": "admin",
    "ListUsers": "admin",
    "UpdateUser": "admin",
    "DeleteUser": "admin",
    "IssueLoginToken": "admin",
    "CreateRole": "admin",
    "UpdateRole": "admin",
    "ListRoles": "admin",
    "GetRole": "admin",
    "DeleteRole": "admin",
    # configuration as code: each object is decided as its own call would be (controller/config)
    "ApplyConfiguration": None,
    "ExportConfiguration": None,
    # audit
    "GetAuditEvent": "audit.read",
    "ListAuditEvents": "audit.read",
    "ExportAudit": "audit.read",
    "VerifyAudit": "audit.read",
}

#: For host-scoped RPCs: ``(hosts to pass, login to pass, "refuse" | "filter")``.
RPC_SCOPE: dict[str, tuple[str, str, str]] = {
    "ListHosts": ("every host listed", "none", "filter"),
    "GetHost": ("that host", "none", "refuse"),
    "TagHost": ("that host, with its tags before and after the change", "none", "refuse"),
    "TagHosts": ("the resolved target hosts, with their tags before and after the change", "none", "refuse"),
    "RunCommand": ("the resolved target hosts", "run_as", "refuse"),
    "StartAutomation": ("none: the runbook, on some host", "none", "refuse"),
    "CancelAutomation": ("none: the runbook, on some host", "none", "refuse"),
    "ListCommands": ("each command's hosts", "none", "filter: a command shows when all its hosts pass"),
    "GetCommand": ("the command's hosts", "none", "refuse"),
    "WatchCommand": ("the command's hosts", "none", "refuse"),
    "CancelCommand": ("the command's hosts", "none", "refuse"),
    "GetInvocationOutput": ("that invocation's host", "none", "refuse"),
    "WatchOutput": ("the command's hosts", "none", "refuse"),
    "Session": ("the session's host", "run_as (attach: the session's run_as)", "refuse"),
    "ListSessions": ("each session's host", "none", "filter"),
    "GetSession": ("the session's host", "none", "refuse"),
    "KillSession": ("the session's host", "none", "refuse"),
    "ScanPatches": ("the resolved target hosts", "none", "refuse"),
    "InstallPatches": ("the resolved target hosts", "none", "refuse"),
    "GetPatchCompliance": ("the target's hosts, or the one host asked for", "none", "filter (one host: refuse)"),
}

#: What each RPC does, in words, for refusals ("alice may not manage users"); an RPC missing here
#: is described by its action's phrase (``authz.decision.ACTION_PHRASES``).
RPC_PHRASES: dict[str, str] = {
    "ListAgentReleases": "list agent releases",
    "UpdateAgents": "update agents",
    "ListHosts": "list hosts",
    "GetHost": "read host details",
    "TagHost": "tag hosts",
    "TagHosts": "tag hosts",
    "DeregisterHost": "deregister hosts",
    "CreateActivation": "manage activations",
    "ListActivations": "list activations",
    "DeleteActivation": "manage activations",
    "RunCommand": "run commands",
    "ListCommands": "list commands",
    "GetCommand": "read commands and their results",
    "WatchCommand": "watch commands",
    "CancelCommand": "cancel commands",
    "GetInvocationOutput": "read command output",
    "WatchOutput": "read command output",
    "Session": "start sessions",
    "ListSessions": "list sessions",
    "GetSession": "read sessions",
    "KillSession": "kill sessions",
    "GetSessionTranscript": "read session transcripts",
    "IssueSshCertificate": "get SSH certificates",
    "ScanPatches": "scan for patches",
    "InstallPatches": "install patches",
    "GetPatchCompliance": "read patch compliance",
    "CreatePatchBaseline": "manage patch baselines",
    "UpdatePatchBaseline": "manage patch baselines",
    "DeletePatchBaseline": "manage patch baselines",
    "ListPatchBaselines": "read patch baselines",
    "GetPatchBaseline": "read patch baselines",
    "AssignPatchBaseline": "manage patch groups",
    "ListPatchGroups": "read patch groups",
    "DeletePatchGroup": "manage patch groups",
    "CreateWindow": "create maintenance windows",
    "UpdateWindow": "change maintenance windows",
    "ListWindows": "read maintenance windows",
    "GetWindow": "read maintenance windows",
    "DeleteWindow": "delete maintenance windows",
    "SetWindowEnabled": "enable or disable maintenance windows",
    "NextWindowRuns": "read maintenance windows",
    "AddWindowTask": "change maintenance windows",
    "RemoveWindowTask": "change maintenance windows",
    "WindowHistory": "read maintenance window history",
    "CreateDocument": "create documents",
    "UpdateDocument": "change documents",
    "SetDefaultDocumentVersion": "change documents",
    "DeleteDocument": "delete documents",
    "ListDocuments": "read documents",
    "GetDocument": "read documents",
    "ListDocumentVersions": "read documents",
    "CreateAssociation": "create associations",
    "DeleteAssociation": "delete associations",
    "ApplyAssociation": "apply associations",
    "ListAssociations": "read associations",
    "GetAssociation": "read associations",
    "AssociationHistory": "read associations",
    "StartAutomation": "start runbooks",
    "CancelAutomation": "cancel runbooks",
    "ListAutomations": "read automation executions",
    "GetAutomation": "read automation executions",
    "WatchAutomation": "read automation executions",
    "WatchEvents": "watch events",
    "ListEventTypes": "list event types",
    "CreateSubscription": "create event subscriptions",
    "ListSubscriptions": "read event subscriptions",
    "GetSubscription": "read event subscriptions",
    "TestSubscription": "test event subscriptions",
    "RedeliverSubscription": "redeliver events",
    "DeleteSubscription": "delete event subscriptions",
    "CreateUser": "manage users",
    "ListUsers": "list users",
    "UpdateUser": "manage users",
    "DeleteUser": "manage users",
    "IssueLoginToken": "issue login tokens",
    "CreateRole": "manage roles",
    "UpdateRole": "manage roles",
    "ListRoles": "list roles",
    "GetRole": "read roles",
    "DeleteRole": "manage roles",
    "GetAuditEvent": "read the audit log",
    "ListAuditEvents": "read the audit log",
    "ExportAudit": "export the audit log",
    "VerifyAudit": "verify the audit log",
}

#: The action a window task of each type needs of its author, and of whoever changes its window.
TASK_ACTIONS: Mapping[str, str] = {
    "run": "command.run",
    "patch-scan": "patch.scan",
    "patch-install": "patch.install",
    # decided on the document: its own action, or document.run for it (authz.documents)
    "document": "document.run",
    "automation": "document.run",
}


def phrase_for(method: str) -> str:
    """What *method* does, in words ("manage users"); ``""`` when the table has no phrase for it."""
    return RPC_PHRASES.get(method, "")


def action_for(method: str) -> str | None:
    """The action *method* needs (``None``: an enabled identity is enough).

    Raises:
        KeyError: *method* is not in the table; the caller must refuse the call.
    """
    return RPC_ACTIONS[method]
