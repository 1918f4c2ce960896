"""What the events package hands out: subscriptions, deliveries and their attempts, as values."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleetops.common.errors import InvalidInput

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class Kind(enum.StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            f"bad subscription name {name!r}",
            "use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. oncall",
        )
    return name


@dataclass(frozen=True)
class StoredEvent:
    id: int
    event_id: str
    type: str
    subject: str
    host: str | None
    time: datetime
    data: dict[str, Any]
    position: int | None


@dataclass(frozen=True)
class Subscription:
    id: str
    name: str
    kind: Kind
    endpoint: str
    types: tuple[str, ...]
    target: str
    author: str
    created_at: datetime
    secret: str = field(repr=False, default="")
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Attempt:
    number: int
    at: datetime
    duration_ms: int
    ok: bool
    result: str


@dataclass(frozen=True)
class Delivery:
    id: int
    subscription_id: str
    event: StoredEvent
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None
    last_error: str
    attempt_log: tuple[Attempt, ...] = ()
    #: The subscription it goes to, when read with it (:meth:`EventStore.claim_due`).
    subscription: Subscription | None = None


@dataclass(frozen=True)
class SendResult:
    """What one try of a delivery came to: ``ok`` or not, in words (``HTTP 503``), and whether
    trying again can help (``final``: a refusal that will not change, dead-lettered at once)."""

    ok: bool
    result: str
    final: bool = False
