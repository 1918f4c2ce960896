"""Authorization room: roles and the decisions made from them (docs/access.md).

Pure domain logic: no wire types, no I/O. The RPC layer resolves the caller's roles, asks
:func:`authorize` before each call (action from ``RPC_ACTIONS``), records ``Decision.to_audit()``
as an audit event whatever the answer, and raises ``Decision.to_error()`` when refused.

``models``    ``ACTIONS``, ``HOST_SCOPED_ACTIONS``, ``GLOBAL_ACTIONS``, ``LOGIN_ACTIONS``, ``Rule``,
              ``Role``, ``BUILTIN_ROLES``, ``role_from_text``/``role_to_text``, ``ensure_mutable``
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
from fleetops.controller.authz.models import (
    ACTIONS,
    ANY,
    BUILTIN_ROLES,
    GLOBAL_ACTIONS,
    HOST_SCOPED_ACTIONS,
    LOGIN_ACTIONS,
    ROOT,
    Role,
    Rule,
    ensure_mutable,
    is_valid_login,
    role_from_text,
    role_to_text,
    validate_role_name,
)
from fleetops.controller.authz.retag import Retagged, authorize_retag, new_rights

__all__ = [
    "ACTIONS",
    "ACTION_PHRASES",
    "ANY",
    "BUILTIN_ROLES",
    "GLOBAL_ACTIONS",
    "HOST_SCOPED_ACTIONS",
    "LOGIN_ACTIONS",
    "MAX_AUDIT_HOSTS",
    "MAX_NAMED_HOSTS",
    "ROOT",
    "RPC_ACTIONS",
    "RPC_PHRASES",
    "RPC_SCOPE",
    "TASK_ACTIONS",
    "Decision",
    "Retagged",
    "HostLike",
    "Role",
    "Rule",
    "action_for",
    "authorize",
    "authorize_retag",
    "authorize_selector",
    "ensure_mutable",
    "is_valid_login",
    "may_overlap",
    "new_rights",
    "permitted_hosts",
    "phrase",
    "phrase_for",
    "role_from_text",
    "role_to_text",
    "satisfiable",
    "validate_role_name",
    "visible_hosts",
    "within",
    "within_any",
]
