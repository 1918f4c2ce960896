"""Runs of a document, decided (docs/automation.md#who-may-run-a-document).

A run of a document is allowed by the action the document performs (``command.run`` with the
login, or ``patch.scan``/``patch.install`` for the patch documents) or by ``document.run`` for
that document. Direct runs decide the whole target at once (``rpc.access.Access.require_one_of``);
what runs later on someone's behalf (an association, a runbook's step, a window task) is decided
here, as its author, on the hosts resolved when it runs: a host is permitted when either action
allows it there.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetops.common.documents import Document
from fleetops.common.roles import Role
from fleetops.common.selectors import Selector
from fleetops.controller.authz.decision import Decision, H, authorize, authorize_selector, permitted_hosts

Choice = tuple[str, str | None, str | None]  # (action, login, document)


def document_choices(name: str, doc: Document, login: str) -> list[Choice]:
    """What may allow a run of document *name* as *login*: its own action, then ``document.run``."""
    own: Choice = (doc.action, None, None) if doc.kind == "action" else ("command.run", login, None)
    return [own, ("document.run", login, name)]


def runbook_choices(name: str) -> list[Choice]:
    """What may allow starting runbook *name*: ``document.run`` for it, or ``command.run`` (its steps
    are each decided again, as the starter, on their hosts when they run)."""
    return [("document.run", None, name), ("command.run", None, None)]


def decide(roles: Sequence[Role], choices: Sequence[Choice], hosts: Sequence[H], *, user: str) -> Decision:
    """The first of *choices* allowed on every host in *hosts*, else the last refusal."""
    decision: Decision | None = None
    for action, login, document in choices:
        decision = authorize(roles, action, hosts=hosts, login=login, user=user, document=document)
        if decision:
            return decision
    assert decision is not None
    return decision


def decide_selector(
    roles: Sequence[Role],
    choices: Sequence[Choice],
    selector: Selector | None,
    *,
    user: str,
    deferred: str = "A window task",
) -> Decision:
    """As :func:`decide`, for every host *selector* could ever match (``None``: every host);
    *deferred* names what runs later in a refusal (see ``authorize_selector``)."""
    decision: Decision | None = None
    for action, login, document in choices:
        decision = authorize_selector(
            roles, action, selector, login=login, user=user, document=document, deferred=deferred
        )
        if decision:
            return decision
    assert decision is not None
    return decision


def permitted(roles: Sequence[Role], choices: Sequence[Choice], hosts: Sequence[H]) -> list[H]:
    """The hosts (in order) on which one of *choices* is allowed."""
    allowed: set[int] = set()
    for action, login, document in choices:
        allowed.update(id(h) for h in permitted_hosts(roles, action, hosts, login=login, document=document))
    return [h for h in hosts if id(h) in allowed]
