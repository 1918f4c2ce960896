"""``kind: Role``: a role document (docs/access.md#roles) without its name; changes need ``admin``."""

from __future__ import annotations

from typing import Any

from fleetops.common.roles import BUILTIN_ROLES, Role
from fleetops.controller.authz import Decision, authorize
from fleetops.controller.authz.store import RoleStore
from fleetops.controller.config import spec as fields
from fleetops.controller.config.interfaces import AuditEntry, Change, Checking, Spec

KEYS = ("description", "allow", "deny")


class RoleKind:
    """Roles, through the same store calls as ``opsctl admin role create|update|delete``."""

    kind = "Role"
    rank = 10
    read_action = "admin"

    def __init__(self, roles: RoleStore) -> None:
        self._roles = roles

    def order(self, spec: Spec | None) -> int:
        return self.rank

    def canonical(self, name: str, spec: Any) -> Spec:
        given = fields.mapping(spec, "spec", KEYS)
        document = Role.from_dict({"name": name, **given}).to_dict()
        del document["name"]
        return document

    async def current(self) -> dict[str, Spec]:
        out = {}
        for role in await self._roles.list():
            if role.name not in BUILTIN_ROLES:
                document = role.to_dict()
                del document["name"]
                out[role.name] = document
        return out

    async def check(self, checking: Checking, name: str, after: Spec | None, before: Spec | None) -> list[Decision]:
        return [authorize(checking.roles, "admin", user=checking.user, what="manage roles")]

    async def apply(self, actor: str, checking: Checking, change: Change) -> list[AuditEntry]:
        if change.action == "delete":
            await self._roles.delete(change.name)
            return [("role.delete", change.name, {})]
        assert change.after is not None
        await self._roles.put(actor, {"name": change.name, **change.after}, create=change.action == "create")
        return [(f"role.{change.action}", change.name, {})]
