"""Signing and verifying fleetops webhooks (docs/events.md#verifying-a-webhook).

Every webhook carries ``Fleetops-Signature: t=TIMESTAMP,v1=HEX``: the hex HMAC-SHA256, keyed with
the subscription's secret, of ``TIMESTAMP.BODY`` (the Unix time in seconds, a dot, the raw body),
as Stripe signs its webhooks. The timestamp is signed with the body, so a receiver that refuses
old timestamps refuses replays of a captured request.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Fleetops-Signature"
#: Receivers should refuse signatures older than this (seconds): a captured request replayed later.
DEFAULT_TOLERANCE = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for *body* sent at *timestamp*."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None
) -> bool:
    """Whether *header* signs *body* with *secret*, at a time within *tolerance* seconds of now."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts.get("t", [""])[0])
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))
