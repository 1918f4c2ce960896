"""What refusals reveal, the scoped tagging right and deregistering, with real controller and agents.

alice may read and run commands on env=dev hosts only; tom may read and tag env=dev hosts only.
Neither may learn anything about the prod hosts from a refusal: not their names, not how many.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import BASE_ENV, PYTHON, Agent, Controller, start_fleet

pytestmark = pytest.mark.slow

DEV_OPS = """
name: dev-ops
allow:
  - actions: [hosts.read, command.run]
    hosts: env=dev
    logins: [daemon]
"""
DEV_TAGGER = """
name: dev-tagger
allow:
  - actions: [hosts.read, hosts.tag]
    hosts: env=dev
"""
FLEET = {
    "dev-web": {"env": "dev", "role": "web"},
    "dev-db": {"env": "dev", "role": "db"},
    "prod-1": {"env": "prod", "role": "web"},
    "prod-2": {"env": "prod", "role": "db"},
    "spare": {"env": "test"},
}
SECRETS = ("prod-1", "prod-2", "prod", "spare", "5 hosts", "4 hosts", "3 hosts", "2 hosts")


@pytest.fixture(scope="module")
def stack(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The fleet, and alice's and tom's profiles."""
    controller = module_controller
    root = tmp_path_factory.mktemp("tagging")
    agents: dict[str, Agent] = start_fleet(controller, root / "agents", FLEET)
    profiles = {}
    for user, name, text in (("alice", "dev-ops", DEV_OPS), ("tom", "dev-tagger", DEV_TAGGER)):
        role_file = root / f"{name}.yaml"
        role_file.write_text(text)
        controller.opsctl("admin", "role", "create", name, "--file", str(role_file))
        token = controller.opsctl_json("admin", "user", "create", user, "--role", name)["token"]
        profiles[user] = root / user
        controller.opsctl(
            "login", "--controller", controller.address, "--enroll-port", str(controller.ports["enroll"]),
            "--token", token, profile=profiles[user],
        )  # fmt: skip
    yield profiles
    for agent in agents.values():
        agent.stop()


def tags_of(controller: Controller, name: str) -> dict[str, str]:
    return dict(json.loads(controller.opsctl("hosts", "show", name, "-o", "json").stdout)["tags"])


def audit(controller: Controller, actor: str, action: str) -> list[dict[str, Any]]:
    events = controller.opsctl_json("audit", "list", "--actor", f"operator:{actor}", "--action", action)
    return [e for e in events if e["actor"] == f"operator:{actor}"]


def details(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("details", event.get("details_json"))
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def test_a_refusal_tells_alice_nothing_about_hosts_she_may_not_see(
    module_controller: Controller, stack: dict[str, Path]
) -> None:
    controller, alice = module_controller, stack["alice"]
    listed = json.loads(controller.opsctl("hosts", "list", "-o", "json", profile=alice).stdout)
    assert sorted(h["name"] for h in listed) == ["dev-db", "dev-web"]

    refused = controller.opsctl("run", "--all", "--as", "daemon", "--", "true", profile=alice, check=False)
    assert refused.returncode == 5, refused.stderr
    assert "alice may not run commands as daemon: the target matches hosts outside your access" in refused.stderr
    assert "the whole request is refused" in refused.stderr and "opsctl hosts list" in refused.stderr
    for secret in SECRETS:
        assert secret not in refused.stderr, (secret, refused.stderr)

    # A prod host she names herself: refused, and nothing said about it.
    shown = controller.opsctl("hosts", "show", "prod-1", profile=alice, check=False)
    assert shown.returncode == 5
    assert "alice may not read host details: the host is outside your access" in shown.stderr
    assert "env=prod" not in shown.stderr and "role=web" not in shown.stderr

    # Without hosts.tag anywhere she is refused before any host is looked up.
    tag = controller.opsctl("hosts", "tag", "--target", "env=prod", "team=x", profile=alice, check=False)
    assert tag.returncode == 5 and "alice may not tag hosts on any host: that needs hosts.tag" in tag.stderr

    # Global refusals say what was refused, in words.
    users = controller.opsctl("admin", "user", "list", profile=alice, check=False)
    assert users.returncode == 5 and "alice may not list users: that needs admin" in users.stderr

    # The audit log keeps the whole truth for whoever may read it.
    runs = [e for e in audit(controller, "alice", "command.run") if e["outcome"] == "denied"]
    decision = details(runs[-1])["authz"][0]
    assert sorted(decision["denied_hosts"]) == ["prod-1", "prod-2", "spare"]
    assert sorted(decision["hidden_hosts"]) == ["prod-1", "prod-2", "spare"] and decision["hosts"] == 5


def test_a_dev_tagger_tags_within_dev_and_cannot_move_hosts_in_or_out(
    module_controller: Controller, stack: dict[str, Path]
) -> None:
    controller, tom = module_controller, stack["tom"]

    # --dry-run shows the change and makes none.
    dry = controller.opsctl("hosts", "tag", "--target", "env=dev", "team=blue", "--dry-run", profile=tom)
    assert "would change the tags of 2 hosts (dry run: nothing was changed)" in dry.stdout
    assert "env=dev,role=web,team=blue" in dry.stdout
    assert "team" not in tags_of(controller, "dev-web") and "team" not in tags_of(controller, "dev-db")

    done = controller.opsctl("hosts", "tag", "--target", "env=dev", "team=blue", "-o", "json", profile=tom)
    result = json.loads(done.stdout)
    assert result.get("dry_run", False) is False
    assert sorted((h["host_name"], h["after"]["team"], h["changed"]) for h in result["hosts"]) == [
        ("dev-db", "blue", True),
        ("dev-web", "blue", True),
    ]
    assert tags_of(controller, "dev-web")["team"] == "blue"
    # The single-host form still works, and an unchanged host is said to be unchanged.
    assert (
        "dev-db: env=dev,role=db,team=red"
        in controller.opsctl("hosts", "tag", "dev-db", "team=red", profile=tom).stdout
    )
    again = controller.opsctl("hosts", "tag", "dev-db", "team=red", "--dry-run", profile=tom).stdout
    assert "would change the tags of 0 hosts; 1 host already as asked" in again and "(unchanged)" in again

    # After-check: a dev host cannot be retagged out of dev (nor its env removed).
    out = controller.opsctl("hosts", "tag", "dev-web", "env=prod", profile=tom, check=False)
    assert out.returncode == 5, out.stderr
    assert "tom may not tag hosts so that they leave the hosts tom may tag: dev-web" in out.stderr
    assert tags_of(controller, "dev-web")["env"] == "dev"
    assert controller.opsctl("hosts", "tag", "dev-web", "env-", profile=tom, check=False).returncode == 5

    # Before-check: a prod host cannot be tagged (into dev or at all), and is not named.
    into = controller.opsctl("hosts", "tag", "prod-1", "env=dev", profile=tom, check=False)
    assert into.returncode == 5 and "tom may not tag hosts: the host is outside your access" in into.stderr
    assert tags_of(controller, "prod-1")["env"] == "prod"
    # All or nothing: --all touches prod hosts, so the dev hosts are not changed either.
    every = controller.opsctl("hosts", "tag", "--all", "team=green", profile=tom, check=False)
    assert every.returncode == 5 and "outside your access" in every.stderr
    for secret in SECRETS:
        assert secret not in every.stderr, (secret, every.stderr)
    assert tags_of(controller, "dev-web")["team"] == "blue"

    # The audit events have each host's tags before and after (refusals too), and the hidden hosts.
    events = audit(controller, "tom", "hosts.tag")
    ok = [details(e) for e in events if e["outcome"] == "ok" and not details(e)["tags"]["dry_run"]]
    change = next(c for d in ok for c in d["tags"]["changed"] if c["host"] == "dev-web")
    assert change["before"] == {"env": "dev", "role": "web"}
    assert change["after"] == {"env": "dev", "role": "web", "team": "blue"}
    refused = [details(e) for e in events if e["outcome"] == "denied"]
    decisions = [a for d in refused for a in d["authz"]]
    assert any(a.get("phase") == "after" and a["denied_hosts"] == ["dev-web"] for a in decisions)
    assert any(sorted(a.get("hidden_hosts", [])) == ["prod-1", "prod-2", "spare"] for a in decisions)


def test_deregister_asks_on_a_terminal_and_refuses_without_one(
    module_controller: Controller, stack: dict[str, Path]
) -> None:
    from terminal import PtyProcess

    controller = module_controller
    no_tty = controller.opsctl("hosts", "deregister", "spare", check=False)
    assert no_tty.returncode == 2 and "--yes" in no_tty.stderr and "Traceback" not in no_tty.stderr
    assert "deregistered" not in controller.host_status("spare").lower()

    argv = [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), "hosts", "deregister", "spare"]
    env = {**os.environ, **BASE_ENV}
    term = PtyProcess(argv, env, cols=120, rows=24)
    try:
        term.expect(r"Type the host name \(spare\) to confirm: ")
        term.send("nope\r")
        term.expect(r"not deregistered")
        assert term.wait() == 1
    finally:
        term.close()
    assert "deregistered" not in controller.host_status("spare").lower()

    term = PtyProcess(argv, env, cols=120, rows=24)
    try:
        term.expect(r"to confirm: ")
        term.send("spare\r")
        term.expect(r"deregistered spare \(h-[0-9a-f]+\); its certificate is revoked")
        assert term.wait() == 0
    finally:
        term.close()
    assert "deregistered" in controller.host_status("spare").lower()
    # --yes needs no terminal; a deregistered host is said to be one.
    again = controller.opsctl("hosts", "deregister", "spare", "--yes", check=False)
    assert again.returncode == 4 and "already deregistered" in again.stderr
