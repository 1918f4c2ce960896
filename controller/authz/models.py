"""The controller's policy over stored roles: built-in ones cannot be changed (the document: common/roles.py)."""

from __future__ import annotations

from fleetops.common.errors import Conflict
from fleetops.common.roles import BUILTIN_ROLES


def ensure_mutable(name: str, done: str = "changed") -> None:
    """Raise :class:`Conflict` when *name* is a built-in role; *done* is ``created``, ``updated``, ``deleted``."""
    if name in BUILTIN_ROLES:
        raise Conflict(
            f"role {name!r} is built in and cannot be {done}",
            "built-in roles are read-only; create a role with another name (opsctl admin role create -f FILE)",
        )
