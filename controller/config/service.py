"""Plan and apply a configuration set, and export the stored configuration (docs/apply.md).

Applying is in two phases. First every object is read (an unknown field or a bad value is an
error naming the object and the field), compared with what is stored, checked against the store
(documents named, parameters, hosts) and decided for the caller: if any object is invalid or
refused, the whole set is refused and nothing has changed. Then the changes are made in
dependency order (creations and updates by kind rank, deletions after them in reverse), each
through the kind's own service call and audited as that call would be.

The services are separate rooms with their own transactions, so the second phase is not one
transaction: if the controller stops in the middle, the changes made so far stay, and applying
the same set again makes the rest (every change is computed from what is stored).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from fleetops.common import documents
from fleetops.common.errors import FleetopsError, InvalidInput, PermissionDenied
from fleetops.common.roles import Role
from fleetops.controller.audit.service import AuditLog
from fleetops.controller.authz import Decision, authorize
from fleetops.controller.config.diff import field_changes
from fleetops.controller.config.interfaces import Change, Checking, ConfigObject, KindHandler, Spec
from fleetops.controller.config.store import AppliedObjects

#: Objects one set may hold.
MAX_OBJECTS = 2000
MAX_SOURCE = 255


def _prefixed(exc: FleetopsError, where: str) -> FleetopsError:
    """*exc* with *where* (the object, and where it was read) in front of its message."""
    return type(exc)(f"{where}: {exc.message}", exc.hint)


def _where(obj: ConfigObject) -> str:
    return f"{obj.origin}: {obj.label}" if obj.origin else obj.label


class ConfigService:
    """Configuration as code over the kinds in *kinds* (``registry.py`` builds the default set)."""

    def __init__(self, kinds: Sequence[KindHandler], provenance: AppliedObjects, audit: AuditLog) -> None:
        self._kinds = {k.kind: k for k in kinds}
        self._provenance = provenance
        self._audit = audit

    @property
    def kinds(self) -> list[str]:
        """The kind names, in apply order."""
        return [k.kind for k in sorted(self._kinds.values(), key=lambda k: k.rank)]

    def _handler(self, kind: str, where: str) -> KindHandler:
        handler = self._kinds.get(kind)
        if handler is None:
            raise InvalidInput(f"{where}: unknown kind {kind!r}", f"kinds are {', '.join(self.kinds)}")
        return handler

    def read(self, objects: Iterable[ConfigObject]) -> list[ConfigObject]:
        """Every object checked and its spec made canonical; an error for each bad one, all at once.

        Raises:
            InvalidInput: one line per bad object, each naming where it was read, the object and the field.
        """
        out: list[ConfigObject] = []
        errors: list[FleetopsError] = []
        seen: dict[tuple[str, str], str] = {}
        for obj in objects:
            where = _where(obj)
            try:
                handler = self._handler(obj.kind, obj.origin or "the set")
                if (obj.kind, obj.name) in seen:
                    raise InvalidInput(
                        f"{where}: given twice (also {seen[obj.kind, obj.name]})", "give each object once"
                    )
                seen[obj.kind, obj.name] = obj.origin or "the set"
                try:
                    spec = handler.canonical(obj.name, obj.spec)
                except FleetopsError as exc:
                    raise _prefixed(exc, where) from None
                out.append(ConfigObject(obj.kind, obj.name, spec, obj.origin))
            except FleetopsError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise InvalidInput(
                f"{len(errors)} objects are invalid; nothing was applied:\n  " + "\n  ".join(e.message for e in errors),
                errors[0].hint,
            )
        if len(out) > MAX_OBJECTS:
            raise InvalidInput(f"the set has {len(out)} objects", f"apply at most {MAX_OBJECTS} at once; split it")
        return out

    async def _current(self, kind: str) -> dict[str, Spec]:
        handler = self._kinds[kind]
        out = {}
        for name, spec in (await handler.current()).items():
            try:  # what was made by hand in another spelling compares as the set's canonical form
                out[name] = handler.canonical(name, spec)
            except FleetopsError:
                out[name] = spec
        return out

    async def plan(
        self, objects: Sequence[ConfigObject], *, prune: bool, source: str
    ) -> tuple[list[Change], dict[str, dict[str, Spec]]]:
        """The changes applying *objects* (already :meth:`read`) would make, in apply order."""
        kinds = {o.kind for o in objects}
        pruned: list[tuple[str, str]] = []
        if prune:
            wanted = {(o.kind, o.name) for o in objects}
            pruned = [(k, n) for k, n in await self._provenance.of_source(source) if (k, n) not in wanted]
            kinds |= {k for k, _ in pruned if k in self._kinds}
        current = {kind: await self._current(kind) for kind in sorted(kinds)}
        changes: list[Change] = []
        for obj in objects:
            before = current[obj.kind].get(obj.name)
            if before is None:
                changes.append(Change(obj.kind, obj.name, "create", origin=obj.origin, after=obj.spec))
            elif before == obj.spec:
                changes.append(
                    Change(obj.kind, obj.name, "unchanged", origin=obj.origin, before=before, after=obj.spec)
                )
            else:
                note = getattr(self._kinds[obj.kind], "update_note", "")
                fields = tuple(field_changes(before, obj.spec))
                changes.append(Change(obj.kind, obj.name, "update", fields, obj.origin, note, before, obj.spec))
        for kind, name in pruned:
            if kind in current and name in current[kind]:
                changes.append(Change(kind, name, "delete", before=current[kind][name]))
        return self._ordered(changes), current

    def _ordered(self, changes: list[Change]) -> list[Change]:
        def rank(c: Change) -> int:
            return self._kinds[c.kind].order(c.after if c.after is not None else c.before)

        made = sorted((c for c in changes if c.action != "delete"), key=lambda c: (rank(c), c.kind, c.name))
        deleted = sorted((c for c in changes if c.action == "delete"), key=lambda c: (-rank(c), c.kind, c.name))
        return made + deleted

    async def apply(
        self,
        actor: str,
        user: str,
        roles: Sequence[Role],
        objects: Iterable[ConfigObject],
        *,
        dry_run: bool,
        prune: bool,
        source: str,
        decisions: list[Decision],
    ) -> list[Change]:
        """Plan *objects*, check and decide every change, then (unless *dry_run*) make them.

        Every authorization decision is appended to *decisions* (the call's audit event).

        Raises:
            InvalidInput, NotFound: an object is invalid (naming it and the field); nothing changed.
            PermissionDenied: the caller may not make one of the changes; nothing changed.
            FleetopsError: a change failed while applying; the ones before it were made.
        """
        if not source or len(source) > MAX_SOURCE or "\0" in source:
            raise InvalidInput("the set needs a source name of 1-255 characters", "give --source NAME")
        read = self.read(objects)
        changes, current = await self.plan(read, prune=prune, source=source)
        for kind in sorted({c.kind for c in changes}):
            decision = authorize(roles, self._kinds[kind].read_action, user=user)
            decisions.append(decision)
            if not decision:
                raise PermissionDenied(f"{kind}: {decision.message}", decision.hint)
        checking = self._checking(user, roles, read, changes, current)
        per_change: dict[tuple[str, str], list[Decision]] = {}
        refused: list[FleetopsError] = []
        for change in changes:
            if change.action == "unchanged":
                continue
            where = f"{change.origin}: {change.kind} {change.name}" if change.origin else f"{change.kind} {change.name}"
            try:
                made = await self._kinds[change.kind].check(checking, change.name, change.after, change.before)
            except FleetopsError as exc:
                raise _prefixed(exc, where) from None
            decisions.extend(made)
            per_change[change.kind, change.name] = made
            refused += [_prefixed(d.to_error(), where) for d in made if not d]
        if refused:
            raise refused[0]
        if dry_run:
            return changes
        for change in changes:
            if change.action == "unchanged":
                continue
            entries = await self._kinds[change.kind].apply(actor, checking, change)
            authz = [d.to_audit() for d in per_change.get((change.kind, change.name), [])]
            for action, target, details in entries:
                details = {"source": source, "via": "config.apply", "roles": [r.name for r in roles], **details}
                details.setdefault("authz", authz)
                await self._audit.record(actor=actor, action=action, target=target, details=details)
            if change.action == "delete":
                await self._provenance.forget(change.kind, change.name)
        await self._provenance.record(source, actor, [(o.kind, o.name) for o in read])
        return changes

    def _checking(
        self,
        user: str,
        roles: Sequence[Role],
        read: Sequence[ConfigObject],
        changes: Sequence[Change],
        current: dict[str, dict[str, Spec]],
    ) -> Checking:
        deleted = {(c.kind, c.name) for c in changes if c.action == "delete"}
        names: dict[str, set[str]] = {
            kind: {n for n in specs if (kind, n) not in deleted} for kind, specs in current.items()
        }
        for obj in read:
            names.setdefault(obj.kind, set()).add(obj.name)
        # What the set's objects name may be stored already even when the set does not hold its kind.
        pending = {o.name: documents.from_data(o.spec) for o in read if o.kind == "Document"}
        return Checking(user, roles, pending, {k: frozenset(v) for k, v in names.items()})

    async def export(self, kinds: Sequence[str]) -> list[ConfigObject]:
        """The stored configuration of *kinds* (all when empty) as objects, in apply order then by name.

        Raises:
            InvalidInput: an unknown kind.
        """
        wanted = list(kinds) or self.kinds
        for kind in wanted:
            self._handler(kind, "export")
        out = []
        for kind in [k for k in self.kinds if k in wanted]:
            current = await self._current(kind)
            out += [ConfigObject(kind, name, current[name]) for name in sorted(current)]
        return out

    def read_actions(self, kinds: Sequence[str]) -> list[str]:
        """The actions reading *kinds* (all when empty) needs, sorted.

        Raises:
            InvalidInput: an unknown kind.
        """
        return sorted({self._handler(k, "export").read_action for k in (kinds or self.kinds)})


def spec_json(spec: Any) -> str:
    return json.dumps(spec, sort_keys=False, separators=(",", ":"), ensure_ascii=False)
