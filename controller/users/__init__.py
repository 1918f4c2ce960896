"""Users room: operator identities, one-time login tokens, certificate issue and revocation checks."""

from __future__ import annotations

from fleetops.controller.users.service import LoginToken, User, UserService, check_user_name, parse_token

__all__ = ["LoginToken", "User", "UserService", "check_user_name", "parse_token"]
