"""Which action each OperatorService RPC needs (docs/access.md#what-each-call-needs).

``RPC_ACTIONS`` maps every operator RPC method name to the action checked before it runs, or to
``None`` for the two calls that only need an enabled identity (``WhoAmI``, renewing one's own
certificate). An RPC missing from the table must be refused: fail closed.

``RPC_SCOPE`` says, for each RPC whose action is host-scoped, which hosts and which login to pass
to ``authorize`` (or that the results are filtered with ``permitted_hosts`` instead of refused).
RPCs of host-scoped actions that are not in ``RPC_SCOPE`` are checked without hosts ("on some
host"). The principles behind the table:

* ``admin`` is everything that changes who may do what, or which hosts exist: users, roles, login
  tokens, activations, tagging (tags are what role selectors match, so tagging *is* granting) and
  deregistering; also fleet-wide patch policy (baselines, patch groups). Holding ``admin`` is
  equivalent to holding every role, since an admin can give themselves any role.
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

RPC_ACTIONS: dict[str, str | None] = {
    # identity
    "WhoAmI": None,
    "RenewOperatorCertificate": None,
    # hosts
    "ListHosts": "hosts.read",
    "GetHost": "hosts.read",
    "TagHost": "admin",
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
    # sessions
    "Session": "session.start",
    "ListSessions": "session.start",
    "GetSession": "session.start",
    "KillSession": "session.start",
    "GetSessionTranscript": "audit.read",
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
    "RunCommand": ("the resolved target hosts", "run_as", "refuse"),
    "ListCommands": ("each command's hosts", "none", "filter: a command shows when all its hosts pass"),
    "GetCommand": ("the command's hosts", "none", "refuse"),
    "WatchCommand": ("the command's hosts", "none", "refuse"),
    "CancelCommand": ("the command's hosts", "none", "refuse"),
    "GetInvocationOutput": ("that invocation's host", "none", "refuse"),
    "Session": ("the session's host", "run_as (attach: the session's run_as)", "refuse"),
    "ListSessions": ("each session's host", "none", "filter"),
    "GetSession": ("the session's host", "none", "refuse"),
    "KillSession": ("the session's host", "none", "refuse"),
    "ScanPatches": ("the resolved target hosts", "none", "refuse"),
    "InstallPatches": ("the resolved target hosts", "none", "refuse"),
    "GetPatchCompliance": ("the target's hosts, or the one host asked for", "none", "filter (one host: refuse)"),
}

#: The action a window task of each type needs of its author, and of whoever changes its window.
TASK_ACTIONS: Mapping[str, str] = {"run": "command.run", "patch-scan": "patch.scan", "patch-install": "patch.install"}


def action_for(method: str) -> str | None:
    """The action *method* needs (``None``: an enabled identity is enough).

    Raises:
        KeyError: *method* is not in the table; the caller must refuse the call.
    """
    return RPC_ACTIONS[method]
