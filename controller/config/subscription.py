"""``kind: Subscription``: where events go (docs/events.md#subscriptions); changes need ``subscription.manage``.

A webhook subscription applied here gets a secret of its own, as ``opsctl subscription create``
does; it is never part of a spec (nor exported): read it with ``opsctl subscription show NAME
--show-secret``. A changed spec updates the subscription in place: its author, secret and delivery
history stay. The author of one created by apply is whoever applied it, and each delivery is
decided again as them.
"""

from __future__ import annotations

from typing import Any

from fleetops.common.errors import InvalidInput
from fleetops.controller.authz import Decision, authorize
from fleetops.controller.config import spec as fields
from fleetops.controller.config.interfaces import AuditEntry, Change, Checking, Spec
from fleetops.controller.events.catalog import PREFIX
from fleetops.controller.events.service import EventService

KEYS = ("webhook", "email", "types", "target")
RANK = 70


class SubscriptionKind:
    """Subscriptions, through the calls of ``opsctl subscription create|delete`` (and an update)."""

    kind = "Subscription"
    rank = RANK
    read_action = "subscription.manage"

    def __init__(self, events: EventService) -> None:
        self._events = events

    def order(self, spec: Spec | None) -> int:
        return RANK

    def canonical(self, name: str, spec: Any) -> Spec:
        given = fields.mapping(spec, "spec", KEYS)
        webhook = fields.text(given.get("webhook"), "webhook").strip()
        email = fields.text(given.get("email"), "email").strip()
        raw_types = given.get("types", [])
        if isinstance(raw_types, str) or not isinstance(raw_types, list):
            raise InvalidInput("types: a list of event types", "e.g. types: [command.failed, window.*]")
        types = [fields.text(t, f"types[{i}]") for i, t in enumerate(raw_types)]
        target = fields.text(given.get("target"), "target").strip()
        try:
            _, endpoint, patterns = self._events.check(
                name=name, webhook=webhook, email=email, types=types, target=target
            )
        except InvalidInput as exc:
            field = "webhook" if webhook and "URL" in exc.message else "email" if email else "types"
            if "selector" in exc.message or "selector" in exc.hint:
                field = "target"
            raise InvalidInput(f"{field}: {exc.message}", exc.hint) from None
        out: Spec = {"webhook": endpoint} if webhook else {"email": endpoint}
        if patterns:
            out["types"] = [p.removeprefix(PREFIX) for p in patterns]
        if target:
            out["target"] = target
        return out

    async def current(self) -> dict[str, Spec]:
        out: dict[str, Spec] = {}
        for s in await self._events.list_subscriptions():
            spec: Spec = {s.kind.value: s.endpoint}
            if s.types:
                spec["types"] = [t.removeprefix(PREFIX) for t in s.types]
            if s.target:
                spec["target"] = s.target
            out[s.name] = spec
        return out

    async def check(self, checking: Checking, name: str, after: Spec | None, before: Spec | None) -> list[Decision]:
        return [authorize(checking.roles, "subscription.manage", user=checking.user, what="manage event subscriptions")]

    async def apply(self, actor: str, checking: Checking, change: Change) -> list[AuditEntry]:
        if change.action == "delete":
            await self._events.delete(change.name)
            return [("subscription.delete", change.name, {})]
        assert change.after is not None
        spec = change.after
        given = {
            "webhook": spec.get("webhook", ""),
            "email": spec.get("email", ""),
            "types": list(spec.get("types", [])),
            "target": spec.get("target", ""),
        }
        details = {
            "kind": "webhook" if given["webhook"] else "email",
            "endpoint": given["webhook"] or given["email"],
            "types": given["types"],
            "target": given["target"],
        }
        if change.action == "create":
            await self._events.create(actor, name=change.name, **given)
            return [("subscription.create", change.name, details)]
        await self._events.update(change.name, **given)
        return [("subscription.update", change.name, details)]
