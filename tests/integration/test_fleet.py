"""Three real agents on a real controller over mTLS: listing, selectors, presence, inventory."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psutil
import pytest

from events import of_type, wait_for_events
from harness import Agent, Controller, start_fleet, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def controller(module_controller: Controller) -> Controller:
    return module_controller


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    """Agents with distinct state directories and tags, shared by this module's tests."""
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("agents"),
        {
            "web-1": {"env": "prod", "role": "web"},
            "web-2": {"env": "prod", "role": "web", "canary": "true"},
            "db-1": {"env": "staging", "role": "db"},
        },
    )
    yield agents
    for agent in agents.values():
        agent.stop()


def names(hosts: list[dict]) -> list[str]:
    return sorted(h["name"] for h in hosts)


def test_hosts_list_shows_every_agent_online_with_inventory_and_tags(
    controller: Controller, fleet: dict[str, Agent]
) -> None:
    hosts = {h["name"]: h for h in controller.hosts()}
    assert sorted(hosts) == ["db-1", "web-1", "web-2"]
    for name, host in hosts.items():
        assert host["status"] == "online", host
        inv = host["inventory"]
        assert inv["os_family"] == "linux"
        assert int(inv["cpu_count"]) >= 1 and int(inv["memory_bytes"]) > 0
        assert inv["kernel"] and inv["agent_version"] and inv["boot_time"]
        assert host["id"] == fleet[name].host_id
    assert hosts["web-2"]["tags"] == {"env": "prod", "role": "web", "canary": "true"}

    table = controller.opsctl("hosts", "list").stdout
    assert "web-1" in table and "online" in table


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", ["web-1", "web-2"]),
        ("env!=prod", ["db-1"]),
        ("role in (web,db),!canary", ["db-1", "web-1"]),
        ("role notin (db)", ["web-1", "web-2"]),
        ("canary", ["web-2"]),
        ("env=prod,role=web,!canary", ["web-1"]),
        ("role=api", []),
    ],
)
def test_selectors_pick_the_right_hosts(
    controller: Controller, fleet: dict[str, Agent], selector: str, expected: list[str]
) -> None:
    assert names(controller.hosts("--target", selector)) == expected


def test_explicit_hosts_and_all(controller: Controller, fleet: dict[str, Agent]) -> None:
    assert names(controller.hosts("--host", "db-1", "--host", fleet["web-1"].host_id)) == ["db-1", "web-1"]
    assert names(controller.hosts("--all")) == ["db-1", "web-1", "web-2"]
    missing = controller.opsctl("hosts", "list", "--host", "nope", check=False)
    assert missing.returncode == 3 and "no such host: nope" in missing.stderr


def test_bad_selector_points_at_the_bad_character(controller: Controller, fleet: dict[str, Agent]) -> None:
    result = controller.opsctl("hosts", "list", "--target", "env=prod,,role=web", check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: bad selector at column 10")
    caret_line = next(i for i, line in enumerate(lines) if line.strip() == "^")
    assert lines[caret_line].index("^") == lines[caret_line - 1].index("env=prod,,role=web") + 9
    assert any(line.startswith("hint:") for line in lines)


def test_tags_set_and_remove(controller: Controller, fleet: dict[str, Agent]) -> None:
    out = controller.opsctl("hosts", "tag", "web-1", "tier=frontend", "role-").stdout
    assert "tier=frontend" in out and "role=" not in out
    assert names(controller.hosts("--target", "tier=frontend")) == ["web-1"]
    assert names(controller.hosts("--target", "role=web")) == ["web-2"]
    bad = controller.opsctl("hosts", "tag", "web-1", "bad key=x", check=False)
    assert bad.returncode == 2 and "hint:" in bad.stderr
    controller.opsctl("hosts", "tag", "web-1", "role=web", "tier-")
    assert names(controller.hosts("--target", "role=web")) == ["web-1", "web-2"]


def test_killed_agent_goes_offline_and_comes_back(controller: Controller, fleet: dict[str, Agent]) -> None:
    agent = fleet["web-2"]
    agent.kill()
    # The stream breaks when the process dies; the bound is three heartbeats (1 s each here).
    wait_until(lambda: controller.host_status("web-2") == "offline", 5, "web-2 offline")
    assert controller.host_status("web-1") == "online"
    agent.start()
    assert controller.host_status("web-2") == "online"

    # Registered once each; web-2 went offline once and came back (heartbeats write no event).
    where = controller.database_url or controller.state_dir
    events = wait_for_events(
        where, lambda es: [e.type for e in es if e.host == "web-2"][-2:] == [OFFLINE, ONLINE], "fleetops.host."
    )
    registered = {e.host: e.data for e in of_type(events, "fleetops.host.registered")}
    assert sorted(registered) == ["db-1", "web-1", "web-2"]
    assert registered["web-2"]["host_id"] == agent.host_id and registered["web-2"]["activation"]
    assert [e.type for e in events if e.host == "web-2" and e.type != "fleetops.host.registered"] == [
        ONLINE,
        OFFLINE,
        ONLINE,
    ]
    assert [e.type for e in events if e.host == "web-1"] == ["fleetops.host.registered", ONLINE]


ONLINE, OFFLINE = "fleetops.host.online", "fleetops.host.offline"


def test_agent_holds_no_listening_socket(fleet: dict[str, Agent]) -> None:
    for agent in fleet.values():
        assert agent.process is not None
        proc = psutil.Process(agent.process.pid)
        conns = proc.net_connections(kind="all")
        listening = [c for c in conns if c.status == psutil.CONN_LISTEN]
        assert listening == [], listening
        # ...and it does hold its one outbound connection to the controller.
        assert any(c.status == psutil.CONN_ESTABLISHED and c.raddr for c in conns)


def test_hosts_show_and_audit_of_operator_calls(controller: Controller, fleet: dict[str, Agent]) -> None:
    text = controller.opsctl("hosts", "show", "db-1").stdout
    assert "role=db" in text and "kernel" in text and "online" in text
    events = json.loads(controller.opsctl("audit", "list", "--action", "hosts.show", "-o", "json").stdout)
    assert events and events[-1]["actor"] == "operator:admin" and events[-1]["target"] == fleet["db-1"].host_id
    verify = controller.opsctl("audit", "verify")
    assert "audit chain intact" in verify.stdout
