"""Users room: operator identities, one-time login tokens, certificate issue and revocation checks.

``models`` (``User``, ``LoginToken``, names and token text), ``store`` (rows <-> users), ``service``
(``UserService``: administration, login, revocation checks).
"""

from __future__ import annotations

from fleetops.controller.users.models import LoginToken, User, check_user_name, parse_token
from fleetops.controller.users.service import UserService

__all__ = ["LoginToken", "User", "UserService", "check_user_name", "parse_token"]
