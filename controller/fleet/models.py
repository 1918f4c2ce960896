"""Domain objects of the fleet room (no gRPC, no SQLAlchemy rows cross this boundary)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleetops.common.selectors import inventory_facts

#: A host's registration state in the database (``hosts.state``): deregistration is final.
ACTIVE = "active"
DEREGISTERED = "deregistered"


class HostStatus(enum.Enum):
    ONLINE = "online"
    OFFLINE = "offline"
    DEREGISTERED = "deregistered"


@dataclass(frozen=True)
class HostPresence:
    """What a host's status is and when it was last heard of: all a waiting reason needs."""

    status: HostStatus
    last_seen_at: datetime | None


@dataclass(frozen=True)
class Host:
    """A registered host.

    ``tags`` are the operator-set tags only (the activation's and ``opsctl hosts tag``): they are
    what access decisions see (``fleetops.controller.authz.HostLike``), so a host can never tag
    itself into a role. ``host_tags`` are the ones the host chose at registration under keys its
    activation allowed; targeting (``--target``) matches ``all_tags``, the two together, and the
    inventory facts (``inv.os_family=linux``, ``fleetops.common.selectors.inventory_facts``), which
    access decisions never see either.
    """

    id: str
    name: str
    status: HostStatus
    tags: dict[str, str]
    inventory: dict[str, Any]
    activation_id: str
    registered_at: datetime
    last_seen_at: datetime | None
    connected_at: datetime | None
    certificate_expires_at: datetime | None
    peer_address: str = ""
    replica: str = ""  # the controller replica holding its control stream while online
    host_tags: dict[str, str] = field(default_factory=dict)
    ssh_host_key: str = ""  # the agent's SSH host public key (OpenSSH line), as its last Hello said

    @property
    def platform(self) -> str:
        """The OS family the host reported (``linux``, ``darwin``, ``windows``...), ``""`` if none."""
        return inventory_facts(self.inventory).get("inv.os_family", "")

    @property
    def all_tags(self) -> dict[str, str]:
        """Operator-set and host-set tags together (their keys never overlap)."""
        return {**self.host_tags, **self.tags}


@dataclass(frozen=True)
class Target:
    """Which hosts an operation applies to: exactly one of selector, hosts or all."""

    selector: str = ""
    hosts: tuple[str, ...] = field(default_factory=tuple)
    all: bool = False

    @property
    def empty(self) -> bool:
        return not self.selector and not self.hosts and not self.all

    def describe(self) -> str:
        if self.all:
            return "--all"
        if self.hosts:
            return "hosts " + ",".join(self.hosts)
        return self.selector


def is_windows(host: Host) -> bool:
    """Whether *host* runs Windows (its scripts are PowerShell), as its inventory says."""
    return host.platform == "windows"
