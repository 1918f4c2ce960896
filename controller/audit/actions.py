"""Which audit actions only read, and which change something: what ``opsctl audit list`` shows by default.

Every operator call is recorded, reads included, but a log where each ``hosts list`` is an event
buries the changes a reviewer looks for. ``audit list`` therefore leaves out reads unless asked
(``--reads``), asked for by name (``--action hosts.show``), or refused (``denied``/``refused``: a
refused read is someone probing, which a reviewer wants to see).

The table below names every action an operator call records. An action missing from it (one that
hosts, the controller or enrollment record, or a newer one) counts as a change: when in doubt, show
it. ``tests/unit/controller/audit/test_actions.py`` checks that every OperatorService RPC's action is
listed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Kind = Literal["read", "change"]

#: Every action an OperatorService call records, with what it does.
OPERATOR_ACTIONS: Mapping[str, Kind] = {
    # identity
    "whoami": "read",
    "user.renew": "change",  # issues a certificate
    "console.link": "change",  # issues a one-time sign-in link
    # (the console records console.login and console.logout itself: changes, as unlisted actions are)
    # hosts and enrollment
    "hosts.list": "read",
    "hosts.show": "read",
    "hosts.tag": "change",
    "hosts.deregister": "change",
    "activation.create": "change",
    "activation.list": "read",
    "activation.delete": "change",
    # run command
    "command.run": "change",
    "command.list": "read",
    "command.show": "read",
    "command.watch": "read",
    "command.output": "read",
    "command.cancel": "change",
    # documents
    "document.create": "change",
    "document.update": "change",
    "document.default": "change",
    "document.delete": "change",
    "document.list": "read",
    "document.show": "read",
    "document.versions": "read",
    # events and subscriptions (a watch stays a read; a test sends a message)
    "events.watch": "read",
    "events.types": "read",
    "subscription.create": "change",
    "subscription.update": "change",  # by opsctl apply
    "subscription.list": "read",
    "subscription.show": "read",
    "subscription.test": "change",
    "subscription.redeliver": "change",
    "subscription.delete": "change",
    # associations
    "association.create": "change",
    "association.delete": "change",
    "association.apply": "change",
    "association.list": "read",
    "association.show": "read",
    "association.history": "read",
    # automation
    "automation.start": "change",
    "automation.cancel": "change",
    "automation.approve": "change",
    "automation.list": "read",
    "automation.show": "read",
    "automation.watch": "read",
    # sessions (session.start, .attach and .end are recorded by the session broker)
    "session.start": "change",
    "session.attach": "change",
    "session.list": "read",
    "session.show": "read",
    "session.kill": "change",
    "session.transcript": "read",
    # ssh (each connection is a session: session.start and .end)
    "ssh.certificate": "change",
    # patching
    "agent.release.list": "read",
    "agent.update": "change",
    "patch.scan": "change",
    "patch.install": "change",
    "patch.compliance": "read",
    "patch.baseline.create": "change",
    "patch.baseline.update": "change",
    "patch.baseline.delete": "change",
    "patch.baseline.list": "read",
    "patch.baseline.show": "read",
    "patch.group.assign": "change",
    "patch.group.list": "read",
    "patch.group.delete": "change",
    # maintenance windows
    "window.create": "change",
    "window.update": "change",
    "window.delete": "change",
    "window.enable": "change",
    "window.list": "read",
    "window.show": "read",
    "window.next": "read",
    "window.history": "read",
    "window.task.add": "change",
    "window.task.remove": "change",
    # operators and roles
    "user.create": "change",
    "user.token": "change",
    "user.update": "change",
    "user.delete": "change",
    "user.list": "read",
    "config.apply": "change",  # each change is also recorded as its own call's action
    "config.export": "read",
    "role.create": "change",
    "role.update": "change",
    "role.delete": "change",
    "role.list": "read",
    "role.show": "read",
    # audit review
    "audit.list": "read",
    "audit.show": "read",
    "audit.verify": "read",
    "audit.export": "change",  # writes the object store's copy
}

#: The actions ``audit list`` leaves out unless asked for.
READ_ACTIONS: frozenset[str] = frozenset(a for a, kind in OPERATOR_ACTIONS.items() if kind == "read")

#: Outcomes that show even for a read.
ALWAYS_SHOWN_OUTCOMES: frozenset[str] = frozenset({"denied", "refused"})


def kind_of(action: str) -> Kind:
    """``read`` or ``change``; an action not in the table is a change (shown by default)."""
    return OPERATOR_ACTIONS.get(action, "change")
