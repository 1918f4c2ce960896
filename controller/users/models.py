"""Operators as the users room sees them: users, login tokens, and the names they may have."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleetops.common.errors import InvalidInput

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
DEFAULT_TOKEN_TTL = timedelta(hours=24)
MAX_TOKEN_TTL = timedelta(days=7)
TOKEN_SEPARATOR = "."
#: A login certificate is backdated this much (clock skew); valid_after checks allow the same.
CLOCK_SKEW = timedelta(minutes=5)


def check_user_name(name: str) -> str:
    """Raises: InvalidInput (not a user name)."""
    if not _NAME.fullmatch(name or ""):
        raise InvalidInput(
            f"bad user name {name!r}", "use lower-case letters, digits, '.', '_' or '-', starting with a letter"
        )
    return name


def parse_token(token: str) -> tuple[str, str, str]:
    """``(id, secret, ca_fingerprint)`` of a login token.

    Raises:
        InvalidInput: not a token as ``opsctl admin user create`` prints it.
    """
    parts = token.strip().split(TOKEN_SEPARATOR)
    if len(parts) != 3 or not all(parts):
        raise InvalidInput(
            "that is not a fleetops login token", "copy the whole token `opsctl admin user create` printed"
        )
    return parts[0], parts[1], parts[2]


@dataclass(frozen=True)
class User:
    name: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime
    created_by: str
    valid_after: datetime
    last_login_at: datetime | None = None
    certificate_expires_at: datetime | None = None


@dataclass(frozen=True)
class LoginToken:
    """A one-time token: ``<id>.<secret>.<CA fingerprint>``; the fingerprint lets opsctl pin the CA."""

    token: str
    expires_at: datetime


@dataclass(frozen=True)
class StoredToken:
    """What is kept of a login token: its id, the SHA-256 of its secret, its expiry."""

    id: str
    sha256: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenHolder:
    """The user a pending login token belongs to, as a login attempt sees it."""

    user: str
    sha256: str
    expires_at: datetime | None
    disabled: bool
