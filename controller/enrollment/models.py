"""Activations and registrations as the enrollment room sees them (no rows, no wire types)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Activation:
    id: str
    description: str
    default_tags: dict[str, str]
    registration_limit: int
    registrations_count: int
    created_at: datetime
    expires_at: datetime
    created_by: str
    allowed_host_tags: tuple[str, ...] = ()
    failed_codes: int = 0
    locked_at: datetime | None = None

    @property
    def expired(self) -> bool:
        return datetime.now(UTC) >= self.expires_at

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


@dataclass(frozen=True)
class Registration:
    host_id: str
    hostname: str
    tags: dict[str, str]  # all of them: the activation's and the host's own
    certificate_pem: bytes
    ca_pem: bytes
    host_tags: dict[str, str] | None = None  # the ones the host set (under allowed keys)
