"""``kind: Association``: a document kept applied to a target (docs/automation.md#associations).

An association has no update call: a changed spec replaces it (the old one is deleted, a new one
created with a new id; its compliance and history start again), audited as the
``association.delete`` and ``association.create`` the two calls record. A set's associations
must have names (the name is how apply finds them again). Creating one needs
``association.manage`` and the right to run its document on every host its target could ever
match, as for ``opsctl association create``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fleetops.common import documents, rates
from fleetops.common.errors import InvalidInput
from fleetops.controller.associations.models import check_interval, parse_schedule, validate_name
from fleetops.controller.associations.service import AssociationService, NewAssociation
from fleetops.controller.authz import Decision, authorize
from fleetops.controller.config import spec as fields
from fleetops.controller.config.interfaces import AuditEntry, Change, Checking, Spec
from fleetops.controller.documents.models import DocumentInfo, sha256
from fleetops.controller.fleet.models import Target

KEYS = ("document", "target", "hosts", "all", "schedule", "parameters", "max_concurrency", "max_errors", "check_every")
RANK = 60
REPLACED = "an association has no update: it is replaced (new id; its compliance and history start again)"


def rate_text(value: Any, where: str, parse: Any) -> str:
    """A rate as the association stores it: ``""`` (the default), ``10`` or ``25%``."""
    text = fields.text(str(value) if isinstance(value, int) and not isinstance(value, bool) else value, where)
    if not text.strip():
        return ""
    try:
        rate = parse(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}", exc.hint) from None
    return f"{rate.number}{'%' if rate.percent else ''}"


def target_of(spec: Spec) -> Target:
    return Target(selector=spec.get("target", ""), hosts=tuple(spec.get("hosts", ())), all=bool(spec.get("all")))


class AssociationKind:
    """Associations, through the calls of ``opsctl association create|delete``."""

    kind = "Association"
    rank = RANK
    read_action = "hosts.read"

    def __init__(self, associations: AssociationService) -> None:
        self._associations = associations

    def order(self, spec: Spec | None) -> int:
        return RANK

    def canonical(self, name: str, spec: Any) -> Spec:
        validate_name(name)
        given = fields.mapping(spec, "spec", KEYS)
        document = fields.text(given.get("document"), "document").strip()
        if not document:
            raise InvalidInput("document: an association needs a document", "document: NAME or NAME:VERSION")
        try:
            documents.split_reference(document)
        except InvalidInput as exc:
            raise InvalidInput(f"document: {exc.message}", exc.hint) from None
        out: Spec = {"document": document, **fields.target_fields(given, "spec")}
        schedule = fields.text(given.get("schedule"), "schedule")
        try:
            out["schedule"] = parse_schedule(schedule, datetime.now(UTC)).expression
        except InvalidInput as exc:
            raise InvalidInput(f"schedule: {exc.message}", exc.hint) from None
        if parameters := fields.string_map(given.get("parameters"), "parameters"):
            out["parameters"] = parameters
        if concurrency := rate_text(given.get("max_concurrency"), "max_concurrency", rates.max_concurrency):
            out["max_concurrency"] = concurrency
        if errors := rate_text(given.get("max_errors"), "max_errors", rates.max_errors):
            out["max_errors"] = errors
        if given.get("check_every") not in (None, "", 0, "0"):
            every = fields.seconds(given["check_every"], "check_every")
            try:
                check_interval(every)
            except InvalidInput as exc:
                raise InvalidInput(f"check_every: {exc.message}", exc.hint) from None
            out["check_every"] = fields.duration_text(every)
        return out

    async def current(self) -> dict[str, Spec]:
        out: dict[str, Spec] = {}
        for a in await self._associations.list():
            if not a.name:
                continue  # made by hand without a name: configuration cannot name it
            spec: Spec = {"document": a.document}
            if a.target.selector:
                spec["target"] = a.target.selector
            elif a.target.hosts:
                spec["hosts"] = list(a.target.hosts)
            else:
                spec["all"] = True
            spec["schedule"] = a.schedule
            if a.parameters:
                spec["parameters"] = dict(sorted(a.parameters.items()))
            if a.max_concurrency:
                spec["max_concurrency"] = a.max_concurrency
            if a.max_errors:
                spec["max_errors"] = a.max_errors
            if a.check_interval_seconds:
                spec["check_every"] = fields.duration_text(a.check_interval_seconds)
            out[a.name] = spec
        return out

    async def _prepare(
        self, actor: str, pending: Mapping[str, documents.Document], name: str, spec: Spec
    ) -> NewAssociation:
        """Checked as ``opsctl association create`` is; a document of the set not stored yet is *pending*."""
        doc_name, version = documents.split_reference(spec["document"])
        resolved = None
        if version is None and doc_name in pending:
            doc = pending[doc_name]
            now = datetime.now(UTC)
            info = DocumentInfo(doc_name, 1, "", doc.kind, doc.description, False, 1, 1, now, actor, sha256(""))
            resolved = (info, doc)
        return await self._associations.prepare(
            actor,
            name=name,
            document=spec["document"],
            parameters=dict(spec.get("parameters", {})),
            target=target_of(spec),
            schedule=spec["schedule"],
            max_concurrency=spec.get("max_concurrency", ""),
            max_errors=spec.get("max_errors", ""),
            check_interval_seconds=fields.seconds(spec["check_every"], "check_every") if "check_every" in spec else 0,
            resolved=resolved,
        )

    async def check(self, checking: Checking, name: str, after: Spec | None, before: Spec | None) -> list[Decision]:
        decisions = [authorize(checking.roles, "association.manage", user=checking.user, what="manage associations")]
        if after is not None and decisions[0]:
            new = await self._prepare(f"operator:{checking.user}", checking.documents, name, after)
            decisions.append(self._associations.creator_decision(checking.user, checking.roles, new))
        return decisions

    async def apply(self, actor: str, checking: Checking, change: Change) -> list[AuditEntry]:
        entries: list[AuditEntry] = []
        if change.action in ("delete", "update"):
            old = await self._associations.delete(change.name)
            entries.append(("association.delete", old.id, {"name": change.name}))
        if change.action in ("create", "update"):
            assert change.after is not None
            new = await self._prepare(actor, {}, change.name, change.after)  # stored by now
            decision = self._associations.creator_decision(checking.user, checking.roles, new)
            if not decision:
                raise decision.to_error()
            created = await self._associations.create(new)
            a = created
            details = {
                "name": change.name,
                "document": new.info.reference,
                "parameters": sorted(a.parameters),  # names only: values may be secrets
                "target": a.target.describe(),
                "schedule": a.schedule,
                "authz": [decision.to_audit()],
            }
            entries.append(("association.create", created.id, details))
        return entries
