"""Targeting by inventory facts with real processes: `-t inv.os_family=linux` picks hosts by what their
agents report, a bad fact is a clear error, tags may not take the prefix, and facts never decide access.

Both agents run on this (Linux) machine, so they report the same facts as this process collects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetops.agent.inventory import collect_inventory
from fleetops.common.selectors import inventory_facts

from harness import Agent, Controller, start_fleet

pytestmark = pytest.mark.slow

HERE = inventory_facts(collect_inventory().to_dict())

WEB_RUNNER = """
name: web-runner
allow:
  - actions: [command.run, hosts.read]
    hosts: "role=web"
    logins: [daemon]
"""


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("inventory-agents"),
        {"inv-web": {"role": "web"}, "inv-db": {"role": "db"}},
    )
    yield agents
    for agent in agents.values():
        agent.stop()


def names(controller: Controller, selector: str) -> list[str]:
    return sorted(h["name"] for h in controller.hosts("--target", selector))


def test_hosts_list_selects_by_reported_facts(module_controller: Controller, fleet: dict[str, Agent]) -> None:
    controller = module_controller
    assert HERE["inv.os_family"] == "linux"
    listed = controller.opsctl("hosts", "list", "-t", "inv.os_family=linux")
    assert "inv-web" in listed.stdout and "inv-db" in listed.stdout
    none = controller.opsctl("hosts", "list", "-t", "inv.os_family=windows")
    assert "(no hosts match)" in none.stdout and "inv-web" not in none.stdout

    assert names(controller, f"inv.arch={HERE['inv.arch']},role=web") == ["inv-web"]
    assert names(controller, f"inv.os_version in ({HERE['inv.os_version']},0.0)") == ["inv-db", "inv-web"]
    assert names(controller, f"inv.os_name={HERE['inv.os_name']},role!=web") == ["inv-db"]
    assert names(controller, "inv.os_family!=linux") == []
    assert names(controller, "!inv.cpu_count") == []


def test_a_bad_fact_is_an_error_that_names_the_known_ones(
    module_controller: Controller, fleet: dict[str, Agent]
) -> None:
    for argv in (["hosts", "list", "-t", "inv.os=linux"], ["run", "-t", "inv.os=linux", "--", "true"]):
        result = module_controller.opsctl(*argv, check=False)
        assert result.returncode == 2, result.stderr
        assert "unknown inventory fact 'inv.os'" in result.stderr and "inv.os_family" in result.stderr
        assert "Traceback" not in result.stderr
    upper = module_controller.opsctl("hosts", "list", "-t", "inv.os_family=Linux", check=False)
    assert upper.returncode == 2 and "write 'linux'" in upper.stderr


def test_run_and_patch_target_by_facts(module_controller: Controller, fleet: dict[str, Agent]) -> None:
    controller = module_controller
    ran = controller.opsctl("run", "-t", "inv.os_family=linux,role=web", "-o", "json", "--", "echo", "fact-ok")
    docs = [json.loads(line) for line in ran.stdout.splitlines() if line.strip()]
    assert [(d["host"], d["stdout"]) for d in docs] == [("inv-web", "fact-ok\n")]

    nothing = controller.opsctl("run", "-t", "inv.os_family=windows", "--", "true", check=False)
    assert nothing.returncode == 3 and "no host matches" in nothing.stderr
    patch = controller.opsctl("patch", "scan", "-t", "inv.os_family=windows", check=False)
    assert patch.returncode == 3 and "no host matches" in patch.stderr


def test_facts_never_decide_access(module_controller: Controller, fleet: dict[str, Agent], tmp_path: Path) -> None:
    controller = module_controller
    role_file = tmp_path / "linux-ops.yaml"
    role_file.write_text('name: linux-ops\nallow:\n  - actions: [command.run]\n    hosts: "inv.os_family=linux"\n')
    refused = controller.opsctl("admin", "role", "create", "linux-ops", "--file", str(role_file), check=False)
    assert refused.returncode == 2, refused.stderr
    assert "inv.os_family is an inventory fact, reported by the hosts themselves" in refused.stderr
    assert "operator-set tags only" in refused.stderr and "Traceback" not in refused.stderr
    assert "linux-ops" not in controller.opsctl("admin", "role", "list").stdout

    # A tag may not pose as a fact, on a host or an activation.
    tag = controller.opsctl("hosts", "tag", "inv-db", "inv.os_family=windows", check=False)
    assert tag.returncode == 2 and "reserved" in tag.stderr
    activation = controller.opsctl("activation", "create", "--tag", "inv.arch=x86", check=False)
    assert activation.returncode == 2 and "reserved" in activation.stderr
    assert names(controller, "inv.os_family=windows") == []

    # A role on role=web: a fact-only target reaches the db host too, so it is refused as a whole;
    # the same facts within role=web run.
    web_file = tmp_path / "web-runner.yaml"
    web_file.write_text(WEB_RUNNER)
    controller.opsctl("admin", "role", "create", "web-runner", "--file", str(web_file))
    profile = controller.issue_profile("carol", tmp_path / "carol", roles=("web-runner",))
    wide = controller.opsctl(
        "run", "-t", "inv.os_family=linux", "--as", "daemon", "--", "true", profile=profile, check=False
    )
    assert wide.returncode == 5, wide.stdout + wide.stderr
    mine = controller.opsctl(
        "run", "-t", "inv.os_family=linux,role=web", "--as", "daemon", "-o", "json", "--", "true", profile=profile
    )
    assert [json.loads(line)["host"] for line in mine.stdout.splitlines() if line.strip()] == ["inv-web"]
    ran_by_carol = [c for c in controller.opsctl_json("command", "list") if c["created_by"] == "operator:carol"]
    assert len(ran_by_carol) == 1  # the refused one was never made
