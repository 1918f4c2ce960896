"""Whose rights deferred work runs with: its author's, looked up again each time it runs.

A maintenance-window task, an association and a runbook execution act for the operator who made
them (``operator:NAME``). Each time they run, :meth:`Acting.roles_of` finds that operator's roles
*now*: one who was disabled or deleted since acts no more, and a role changed since counts as it
is now (docs/access.md#deferred-work-window-tasks).
"""

from __future__ import annotations

from fleetops.common.errors import NotFound, PermissionDenied
from fleetops.common.roles import Role
from fleetops.controller.authz.store import RoleStore
from fleetops.controller.users.service import UserService

OPERATOR_PREFIX = "operator:"


def author_name(author: str) -> str:
    """``alice`` for ``operator:alice``; ``""`` when *author* is not an operator."""
    return author[len(OPERATOR_PREFIX) :] if author.startswith(OPERATOR_PREFIX) else ""


class Acting:
    def __init__(self, users: UserService, roles: RoleStore) -> None:
        self._users = users
        self._roles = roles

    async def roles_of(self, author: str, hint: str) -> tuple[str, list[Role]]:
        """The author's name and roles, if they may still act; *hint* says what to do otherwise.

        Raises:
            PermissionDenied: the author is not an operator, no longer exists, or is disabled.
        """
        name = author_name(author)
        if not name:
            raise PermissionDenied(f"the author {author or '(none)'!r} is not an operator", hint)
        try:
            user = await self._users.get(name)
        except NotFound:
            raise PermissionDenied(f"the author {name!r} was deleted", hint) from None
        if user.disabled:
            raise PermissionDenied(f"the author {name!r} is disabled", hint)
        return name, await self._roles.resolve(user.roles)
