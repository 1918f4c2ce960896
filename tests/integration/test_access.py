"""Operators and roles with real processes: login with a token, host- and login-scoped roles, revocation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Agent, Controller, create_user, login, start_fleet

pytestmark = pytest.mark.slow

WEB_OPS = """
name: web-ops
description: run commands and sessions on web hosts, as the deploy account only
allow:
  - actions: [command.run, session.start, hosts.read]
    hosts: "role=web"
    logins: [daemon]
"""


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("access-agents"),
        {"web-1": {"role": "web"}, "web-2": {"role": "web"}, "db-1": {"role": "db"}},
    )
    yield agents
    for agent in agents.values():
        agent.stop()


def denied_events(controller: Controller, actor: str) -> list[dict]:
    events = controller.opsctl_json("audit", "list", "--actor", actor, "--outcome", "denied")
    return [e for e in events if e["actor"] == actor]


def test_a_web_only_role_runs_on_web_hosts_and_is_refused_elsewhere(
    module_controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    controller = module_controller
    role_file = tmp_path / "web-ops.yaml"
    role_file.write_text(WEB_OPS)
    controller.opsctl("admin", "role", "create", "web-ops", "--file", str(role_file))
    token = create_user(controller, "alice", "web-ops")
    profile = tmp_path / "alice"
    assert "as alice" in login(controller, profile, token)

    # The token was for one login only.
    again = controller.opsctl(
        "login", "--controller", controller.address, "--enroll-port", str(controller.ports["enroll"]),
        "--token", token, profile=tmp_path / "again", check=False,
    )  # fmt: skip
    assert again.returncode == 5 and "token" in again.stderr

    ok = controller.opsctl(
        "run", "--target", "role=web", "--as", "daemon", "-o", "json", "--", "id", "-un", profile=profile
    )
    docs = [json.loads(line) for line in ok.stdout.splitlines()]
    assert sorted(d["host"] for d in docs) == ["web-1", "web-2"] and {d["stdout"] for d in docs} == {"daemon\n"}

    # A fan-out that touches a host she may not reach is refused as a whole; she may not see db-1,
    # so the refusal neither names nor counts it (the audit event does, below).
    mixed = controller.opsctl("run", "--all", "--as", "daemon", "--", "true", profile=profile, check=False)
    assert mixed.returncode == 5 and "outside your access" in mixed.stderr
    assert "db-1" not in mixed.stderr and "3 hosts" not in mixed.stderr and "web-1" not in mixed.stderr
    commands = controller.opsctl_json("command", "list")
    assert not [c for c in commands if c["created_by"] == "operator:alice" and "all" in c["target"]]

    # No root unless granted explicitly: neither --as root nor the agent's own account.
    as_root = controller.opsctl(
        "run", "--target", "role=web", "--as", "root", "--", "true", profile=profile, check=False
    )
    assert as_root.returncode == 5 and "root" in as_root.stderr
    default_user = controller.opsctl("run", "--target", "role=web", "--", "true", profile=profile, check=False)
    assert default_user.returncode == 5

    # Commands on hosts she may not reach are not hers to read or cancel; her own are.
    db_command = controller.opsctl("run", "--target", "role=db", "--detach", "--", "true").stdout.split()[-1]
    assert controller.opsctl("command", "show", db_command, profile=profile, check=False).returncode == 5
    assert controller.opsctl("command", "cancel", db_command, profile=profile, check=False).returncode == 5
    own = [c for c in controller.opsctl_json("command", "list") if c["created_by"] == "operator:alice"]
    controller.opsctl("command", "show", own[0]["id"], profile=profile)
    listed = json.loads(controller.opsctl("command", "list", "-o", "json", profile=profile).stdout)
    assert db_command not in {c["id"] for c in listed} and own[0]["id"] in {c["id"] for c in listed}

    # She sees only the hosts she may read, and may not administer anything.
    hosts = json.loads(controller.opsctl("hosts", "list", "-o", "json", profile=profile).stdout)
    assert sorted(h["name"] for h in hosts) == ["web-1", "web-2"]
    admin_call = controller.opsctl("admin", "user", "list", profile=profile, check=False)
    assert admin_call.returncode == 5 and "alice may not list users: that needs admin" in admin_call.stderr

    refusals = denied_events(controller, "operator:alice")
    assert any("db-1" in e["details_json"] for e in refusals)
    assert any('"login": "root"' in e["details_json"] or "root" in e["details_json"] for e in refusals)
    allowed = controller.opsctl_json("audit", "list", "--actor", "operator:alice", "--action", "command.run")
    assert any(e["outcome"] == "ok" and '"allowed": true' in e["details_json"] for e in allowed)


def test_renewal_and_disabling_revokes_at_once(
    module_controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    controller = module_controller
    token = create_user(controller, "bob", "auditor")
    profile = tmp_path / "bob"
    login(controller, profile, token)
    before = (profile / "operator.pem").read_bytes()
    renewed = controller.opsctl("login", profile=profile)
    assert "bob" in renewed.stdout and (profile / "operator.pem").read_bytes() != before
    controller.opsctl("audit", "list", profile=profile)  # auditor may read the log

    controller.opsctl("admin", "user", "disable", "bob")
    refused = controller.opsctl("audit", "list", profile=profile, check=False)
    assert refused.returncode == 5 and "disabled" in refused.stderr
    # Enabling again does not bring the old certificate back: bob needs a new token.
    controller.opsctl("admin", "user", "enable", "bob")
    still = controller.opsctl("audit", "list", profile=profile, check=False)
    assert still.returncode == 5
    login(controller, profile, controller.opsctl_json("admin", "user", "token", "bob")["token"])
    controller.opsctl("audit", "list", profile=profile)
    assert denied_events(controller, "operator:bob")
