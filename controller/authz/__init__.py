"""Authorization room: roles and the decisions made from them (docs/access.md).

Pure domain logic: no wire types, no I/O. The RPC layer resolves the caller's roles, asks
:func:`authorize` before each call (action from ``RPC_ACTIONS``), records ``Decision.to_audit()``
as an audit event whatever the answer, and raises ``Decision.to_error()`` when refused.

``models``    ``ensure_mutable`` (the role document itself, ``Role``, ``Rule``, ``ACTIONS``,
              ``BUILTIN_ROLES``, ``role_from_text``..., is ``fleetops.common.roles``)
``decision``  ``authorize``, ``authorize_selector``, ``Decision``, ``permitted_hosts``, ``visible_hosts``,
              ``HostLike``
``implication`` ``within``, ``within_any``, ``may_overlap``, ``satisfiable``: selectors as sets of hosts
``retag``     ``authorize_retag``, ``new_rights``: tag changes, decided before and after (no escalation)
``actions``   ``RPC_ACTIONS`` (operator RPC -> action), ``RPC_PHRASES`` (-> words), ``RPC_SCOPE``, ``TASK_ACTIONS``
"""

from __future__ import annotations

from fleetops.controller.authz.actions import (
    RPC_ACTIONS,
    RPC_PHRASES,
    RPC_SCOPE,
    TASK_ACTIONS,
    action_for,
    phrase_for,
)
from fleetops.controller.authz.decision import (
    ACTION_PHRASES,
    MAX_AUDIT_HOSTS,
    MAX_NAMED_HOSTS,
    Decision,
    HostLike,
    authorize,
    authorize_selector,
    permitted_hosts,
    phrase,
    visible_hosts,
)
from fleetops.controller.authz.implication import may_overlap, satisfiable, within, within_any
from fleetops.controller.authz.models import ensure_mutable
from fleetops.controller.authz.retag import Retagged, authorize_retag, new_rights

__all__ = [
    "ACTION_PHRASES",
    "MAX_AUDIT_HOSTS",
    "MAX_NAMED_HOSTS",
    "RPC_ACTIONS",
    "RPC_PHRASES",
    "RPC_SCOPE",
    "TASK_ACTIONS",
    "Decision",
    "Retagged",
    "HostLike",
    "action_for",
    "authorize",
    "authorize_retag",
    "authorize_selector",
    "ensure_mutable",
    "may_overlap",
    "new_rights",
    "permitted_hosts",
    "phrase",
    "phrase_for",
    "satisfiable",
    "visible_hosts",
    "within",
    "within_any",
]
