"""The replica registry's records (see docs/architecture.md "Replicas")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Replica:
    """A controller replica sharing this database."""

    id: str
    address: str  # host:port of its mutual-TLS listener, where the other replicas reach it
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = None

    def alive(self, now: datetime, dead_after: timedelta) -> bool:
        """Started, not stopped, and heard from within ``dead_after``."""
        return self.stopped_at is None and now - self.heartbeat_at <= dead_after


@dataclass(frozen=True)
class Route:
    """Which replica holds a host's control stream, as of the link it opened at ``connected_at``.

    ``connected_at`` is the link epoch: a replica clears a route only while it still names the
    link that replica wrote, so a late disconnect never erases a newer connection elsewhere.
    """

    host_id: str
    replica_id: str
    connected_at: datetime | None


#: Route notification kinds: hosts now held by a replica, hosts it let go, "reload everything".
CONNECTED, DISCONNECTED, RELOAD = "+", "-", "*"


def route_payloads(kind: str, replica_id: str, host_ids: list[str], max_bytes: int) -> list[str]:
    """NOTIFY payloads ``"<kind><replica> <host> <host>..."``, each at most ``max_bytes`` long."""
    payloads: list[str] = []
    head = f"{kind}{replica_id}"
    current = head
    for host_id in host_ids:
        if len(current) + 1 + len(host_id) > max_bytes and current != head:
            payloads.append(current)
            current = head
        current += " " + host_id
    if current != head:
        payloads.append(current)
    return payloads


def parse_route_payload(payload: str) -> tuple[str, str, list[str]]:
    """``(kind, replica id, host ids)`` of a route notification; kind "" when it is not one."""
    if not payload or payload[0] not in (CONNECTED, DISCONNECTED, RELOAD):
        return "", "", []
    replica_id, *host_ids = payload[1:].split(" ")
    return payload[0], replica_id, host_ids
