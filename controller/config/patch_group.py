"""``kind: PatchGroup``: hosts matching ``target`` use ``baseline`` (``opsctl patch baseline assign``)."""

from __future__ import annotations

from typing import Any

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.controller.authz import Decision, authorize
from fleetops.controller.config import spec as fields
from fleetops.controller.config.interfaces import AuditEntry, Change, Checking, Spec
from fleetops.controller.patching.models import PatchGroup
from fleetops.controller.patching.service import PatchService
from fleetops.controller.windows.models import check_name

KEYS = ("baseline", "target", "priority")
DEFAULT_PRIORITY = 100


class PatchGroupKind:
    """Patch groups; assigning one replaces its selector, baseline and priority."""

    kind = "PatchGroup"
    rank = 30  # after the baselines they name
    read_action = "hosts.read"

    def __init__(self, patching: PatchService) -> None:
        self._patching = patching

    def order(self, spec: Spec | None) -> int:
        return self.rank

    def canonical(self, name: str, spec: Any) -> Spec:
        check_name(name, "patch group")
        given = fields.mapping(spec, "spec", KEYS)
        baseline = fields.text(given.get("baseline"), "baseline")
        if not baseline:
            raise InvalidInput("baseline: a patch group needs a baseline", "baseline: NAME of a PatchBaseline")
        if given.get("target") is None:
            raise InvalidInput("target: a patch group needs a tag selector", "target: 'env=prod,role=web'")
        target = fields.target_fields({"target": given.get("target")}, "spec")
        priority = fields.integer(given.get("priority"), "priority", DEFAULT_PRIORITY)
        return {"baseline": baseline, "target": target["target"], "priority": priority}

    async def current(self) -> dict[str, Spec]:
        return {
            g.name: {"baseline": g.baseline, "target": g.selector, "priority": g.priority}
            for g in await self._patching.groups()
        }

    async def check(self, checking: Checking, name: str, after: Spec | None, before: Spec | None) -> list[Decision]:
        if after is not None and after["baseline"] not in checking.names.get("PatchBaseline", frozenset()):
            raise NotFound(
                f"baseline: no baseline {after['baseline']!r}", "add a PatchBaseline of that name to the set"
            )
        return [authorize(checking.roles, "admin", user=checking.user, what="manage patch groups")]

    async def apply(self, actor: str, checking: Checking, change: Change) -> list[AuditEntry]:
        if change.action == "delete":
            await self._patching.delete_group(change.name)
            return [("patch.group.delete", change.name, {})]
        after = change.after
        assert after is not None
        await self._patching.assign(PatchGroup(change.name, after["target"], after["baseline"], after["priority"]))
        return [("patch.group.assign", change.name, {})]
