"""The contract of configuration as code: objects, planned changes, and what each kind provides.

A configuration set is a list of :class:`ConfigObject` (``kind``, ``name``, ``spec``). Each kind
is one :class:`KindHandler` module (``role.py``, ``window.py``...) registered in
``registry.py``; the service (``service.py``) plans, authorizes and applies a set through them
and knows nothing of any one kind. Adding a kind is one module and one line in the registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from fleetops.common.documents import Document
from fleetops.common.roles import Role
from fleetops.controller.authz import Decision

Action = Literal["create", "update", "delete", "unchanged"]
Spec = dict[str, Any]


@dataclass(frozen=True)
class ConfigObject:
    """One object of a set: its kind, name and spec as plain data; ``origin`` says where it was read."""

    kind: str
    name: str
    spec: Spec
    origin: str = ""

    @property
    def label(self) -> str:
        """``Role web-ops``, for messages."""
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class FieldChange:
    """One field that changes: ``path`` (``allow[0].actions``), values before and after (``None``: absent)."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """What applying a set does to one object."""

    kind: str
    name: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    origin: str = ""
    #: How the change is made when it is not a plain update (an association is replaced).
    note: str = ""
    before: Spec | None = None
    after: Spec | None = None


@dataclass
class Checking:
    """What a kind's checks know of the caller and of the rest of the set.

    ``documents`` are the set's documents as they will be stored (by name), so that an association
    or a window task may use a document created by the same apply.
    """

    user: str
    roles: Sequence[Role]
    documents: Mapping[str, Document] = field(default_factory=dict)
    #: The names of each kind as they will be after the apply (the set's, and stored ones kept).
    names: Mapping[str, frozenset[str]] = field(default_factory=dict)


#: An audit event an applied change records: ``(action, target, details)``, as the per-kind call.
AuditEntry = tuple[str, str, dict[str, Any]]


class KindHandler(Protocol):
    """One kind of object: how its spec is read, compared, authorized and applied.

    ``rank`` orders kinds: lower ranks are created and updated first and deleted last (roles
    before what could reference them, documents before associations and window tasks, baselines
    before patch groups). Every change calls the same service methods as the kind's own RPCs.
    """

    kind: str
    rank: int
    #: The action reading this kind needs (as its List RPC): exporting or planning it needs it.
    read_action: str

    def order(self, spec: Spec | None) -> int:
        """Where an object goes in the apply order (usually ``rank``; a runbook after documents)."""
        ...

    def canonical(self, name: str, spec: Any) -> Spec:
        """The spec checked and in canonical form (what :meth:`current` returns for the same object).

        Raises:
            InvalidInput: an unknown field or a bad value, naming the field.
        """
        ...

    async def current(self) -> dict[str, Spec]:
        """Every stored object of this kind that configuration may manage (no built-ins), by name."""
        ...

    async def check(self, checking: Checking, name: str, after: Spec | None, before: Spec | None) -> list[Decision]:
        """Check a change against the store and decide it for the caller; nothing changes.

        *after* is ``None`` for a deletion, *before* ``None`` for a creation. Returns every
        authorization decision made, allowed or not: the service refuses the set on the first refusal.

        Raises:
            InvalidInput, NotFound: the change cannot be made (a missing document, a bad parameter).
        """
        ...

    async def apply(self, actor: str, checking: Checking, change: Change) -> list[AuditEntry]:
        """Make *change* through the kind's service; the audit events to record, one per call made."""
        ...
