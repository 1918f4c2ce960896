"""Resolving a selector against hosts: tags (the host's own too) and inventory facts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fleetops.common.errors import SelectorError
from fleetops.controller.fleet.models import Host, HostStatus, Target
from fleetops.controller.fleet.service import FleetService

LINUX = {"os_family": "linux", "os_name": "Debian GNU/Linux", "os_version": "12", "arch": "x86_64"}
MAC = {"os_family": "darwin", "os_name": "macOS", "os_version": "14.4.1", "arch": "arm64"}


def row(name: str, inventory: dict[str, Any], tags: dict[str, str], host_tags: dict[str, str] | None = None) -> Host:
    return Host(
        id=f"h-{name}",
        name=name,
        status=HostStatus.OFFLINE,
        tags=tags,
        host_tags=host_tags or {},
        inventory=inventory,
        activation_id="a",
        registered_at=datetime.now(UTC),
        last_seen_at=None,
        connected_at=None,
        certificate_expires_at=None,
    )


ROWS = [
    row("web-1", LINUX, {"role": "web"}),
    row("web-2", MAC, {"role": "web"}, {"rack": "r1"}),
    row("db-1", LINUX, {"role": "db", "inv.os_family": "windows"}),  # a legacy tag under inv. counts for nothing
    row("new-1", {}, {}),  # no inventory reported (yet)
]
FLEET = FleetService(None, None, heartbeat_interval=1.0)  # type: ignore[arg-type]  # _select touches neither


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("inv.os_family=linux", ["web-1", "db-1"]),
        ("inv.os_family=windows", []),
        ("inv.os_family=darwin,rack=r1", ["web-2"]),
        ("role=web,inv.arch in (arm64,x86)", ["web-2"]),
        ("inv.os_version in (11,12)", ["web-1", "db-1"]),
        ("inv.os_name=debian-gnu-linux,role!=db", ["web-1"]),
        ("!inv.os_family", ["new-1"]),
        ("inv.os_family!=linux", ["web-2", "new-1"]),
    ],
)
def test_selectors_see_facts(selector: str, names: list[str]) -> None:
    assert [r.name for r in FLEET._select(ROWS, Target(selector=selector))] == names


def test_an_unknown_fact_is_an_error_not_an_empty_match() -> None:
    with pytest.raises(SelectorError, match="unknown inventory fact 'inv.os'"):
        FLEET._select(ROWS, Target(selector="inv.os=linux"))
