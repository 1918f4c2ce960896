"""The caller's authorization for one operator call (docs/access.md).

The decorators in rpc/operator/base.py build an :class:`Access` from the caller's roles and the
action the RPC needs (``fleetops.controller.authz.actions``). Global actions are decided before
the handler runs; host-scoped ones by the handler, once it knows the hosts (``require``) or to
filter what it returns (``visible``). A handler of a host-scoped RPC that decides nothing is
refused afterwards: authorization fails closed. Every decision goes into the call's audit event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from fleetops.common.errors import PermissionDenied
from fleetops.common.roles import Role
from fleetops.controller.authz.decision import Decision, HostLike, authorize, permitted_hosts
from fleetops.controller.authz.retag import authorize_retag
from fleetops.controller.users.models import User

H = TypeVar("H", bound=HostLike)


class Access:
    """*user*'s roles and the *action* their call needs; *what* is the call in words ("manage users")."""

    def __init__(self, user: User, roles: Sequence[Role], action: str | None, what: str = "") -> None:
        self.user = user
        self.roles = list(roles)
        self.action = action
        self.what = what
        self.decisions: list[Decision] = []
        self.filtered = False
        #: More for the call's audit event (a tag change's hosts with their tags before and after).
        self.details: dict[str, Any] = {}

    @property
    def decided(self) -> bool:
        return self.action is None or bool(self.decisions) or self.filtered

    def require(self, hosts: Sequence[HostLike] = (), login: str | None = None, action: str | None = None) -> None:
        """Allow the call, or raise PermissionDenied naming the hosts refused (the whole call is refused)."""
        wanted = action or self.action
        assert wanted is not None
        what = self.what if wanted == self.action else ""
        decision = authorize(
            self.roles, wanted, hosts=hosts, login=login, user=self.user.name, what=what, hide_unseen=True
        )
        self.decisions.append(decision)
        decision.check()

    def require_one_of(self, hosts: Sequence[HostLike], choices: Sequence[tuple[str, str | None, str | None]]) -> None:
        """Allow the call when one of *choices* (``(action, login, document)``, in order) is allowed
        on every host; else raise the last one's refusal, naming the others as alternatives.

        A run of a document is allowed by the action it performs (``command.run``, or the patch
        action) or by ``document.run`` for that document.
        """
        refused: list[Decision] = []
        for action, login, document in choices:
            decision = authorize(
                self.roles,
                action,
                hosts=hosts,
                login=login,
                user=self.user.name,
                hide_unseen=True,
                document=document,
            )
            if decision.allowed:
                self.decisions.append(decision)
                return
            refused.append(decision)
        self.decisions.extend(refused)
        last = refused[-1]
        others = ", ".join(d.action for d in refused[:-1])
        raise PermissionDenied(last.message, last.hint + (f" (or {others} on those hosts)" if others else ""))

    def require_retag(self, changes: Sequence[tuple[HostLike, Mapping[str, str]]]) -> None:
        """Allow a tag change (each host with its tags as they would be after), or raise PermissionDenied.

        ``hosts.tag`` on every host before and after, and no right gained (``authz.retag``).
        """
        decision = authorize_retag(self.roles, changes, user=self.user.name, what=self.what)
        self.decisions.append(decision)
        decision.check()

    def everywhere(self, action: str | None = None) -> bool:
        """Whether the roles allow ``action`` on every host with no deny rule for it (no login involved).

        Then a read of something spread over many hosts (a command's results) need not load them.
        """
        wanted = action or self.action
        assert wanted is not None
        allowed = any(r.covers_action(wanted) and not r.hosts for role in self.roles for r in role.allow)
        denied = any(r.covers_action(wanted) for role in self.roles for r in role.deny)
        return allowed and not denied

    def require_everywhere(self, action: str | None = None) -> bool:
        """Record an allow decision when :meth:`everywhere` holds; False when hosts must be checked."""
        if not self.everywhere(action):
            return False
        self.require(action=action)
        return True

    def visible(self, hosts: Iterable[H], action: str | None = None, *, document: str | None = None) -> list[H]:
        """The hosts the caller may see for this action (results are filtered, not refused)."""
        wanted = action or self.action
        assert wanted is not None
        self.filtered = True
        return permitted_hosts(self.roles, wanted, list(hosts), document=document)

    def audit(self) -> dict[str, Any]:
        details: dict[str, Any] = {"roles": [r.name for r in self.roles]}
        if self.decisions:
            details["authz"] = [d.to_audit() for d in self.decisions]
        elif self.filtered:
            details["authz"] = {"action": self.action, "filtered": True}
        details.update(self.details)
        return details
