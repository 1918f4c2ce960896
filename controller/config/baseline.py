"""``kind: PatchBaseline``: a baseline document (docs/patching.md) without its name; changes need ``admin``."""

from __future__ import annotations

from typing import Any

from fleetops.common.baselines import BASELINE_KEYS, Baseline
from fleetops.controller.authz import Decision, authorize
from fleetops.controller.config import spec as fields
from fleetops.controller.config.interfaces import AuditEntry, Change, Checking, Spec
from fleetops.controller.patching.service import PatchService

KEYS = tuple(k for k in BASELINE_KEYS if k != "name")  # the name is the object's


class BaselineKind:
    """Patch baselines, through the calls of ``opsctl patch baseline create|update|delete``."""

    kind = "PatchBaseline"
    rank = 20
    read_action = "hosts.read"

    def __init__(self, patching: PatchService) -> None:
        self._patching = patching

    def order(self, spec: Spec | None) -> int:
        return self.rank

    def canonical(self, name: str, spec: Any) -> Spec:
        given = fields.mapping(spec, "spec", KEYS)
        document = Baseline.from_dict({"name": name, **given}).to_dict()
        del document["name"]
        return document

    async def current(self) -> dict[str, Spec]:
        out = {}
        for stored in await self._patching.baselines():
            document = stored.baseline.to_dict()
            del document["name"]
            out[stored.baseline.name] = document
        return out

    async def check(self, checking: Checking, name: str, after: Spec | None, before: Spec | None) -> list[Decision]:
        return [authorize(checking.roles, "admin", user=checking.user, what="manage patch baselines")]

    async def apply(self, actor: str, checking: Checking, change: Change) -> list[AuditEntry]:
        if change.action == "delete":
            await self._patching.delete_baseline(change.name)
            return [("patch.baseline.delete", change.name, {})]
        assert change.after is not None
        document = {"name": change.name, **change.after}
        if change.action == "create":
            await self._patching.create_baseline(actor, document)
        else:
            await self._patching.update_baseline(actor, change.name, document)
        return [(f"patch.baseline.{change.action}", change.name, {})]
