"""Documents with real processes: parameters, injection as inert data, versions, document-only roles."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Agent, Controller, create_user, login, start_fleet

pytestmark = pytest.mark.slow

GREET = """
description: Say hello, and show each parameter as the script gets it
parameters:
  name:
    type: string
    description: who to greet
    pattern: '^[^\\n]{1,1024}$'
  times: {type: integer, allowed: [1, 2, 3], default: 1}
  loud: {type: boolean, default: false}
  extras: {type: string_list, default: []}
run:
  shell: |
    i=0
    while [ "$i" -lt "$FLEETOPS_PARAM_TIMES" ]; do
      if [ "$FLEETOPS_PARAM_LOUD" = true ]; then printf 'HELLO %s\\n' "$FLEETOPS_PARAM_NAME"
      else printf 'hello %s\\n' "$FLEETOPS_PARAM_NAME"; fi
      i=$((i + 1))
    done
    printf 'extras %s\\n' "$FLEETOPS_PARAM_EXTRAS"
  powershell: |
    Write-Output "hello $env:FLEETOPS_PARAM_NAME"
"""


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("doc-agents"),
        {"doc-web-1": {"role": "web"}, "doc-web-2": {"role": "web"}, "doc-db-1": {"role": "db"}},
    )
    yield agents
    for agent in agents.values():
        agent.stop()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_doc(controller: Controller, *args: str, profile: Path | None = None) -> dict[str, str]:
    result = controller.opsctl("run", "-o", "json", *args, profile=profile)
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(d["state"] == "success" for d in docs), docs
    return {d["host"]: d["stdout"] for d in docs}


def test_parameters_are_checked_before_anything_runs_and_arrive_as_inert_data(
    module_controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    controller = module_controller
    controller.opsctl("doc", "create", "greet", "-f", write(tmp_path, "greet.yaml", GREET))

    out = run_doc(
        controller, "--target", "role=web", "--doc", "greet",
        "--param", "name=ops", "--param", "times=2", "--param", "loud=yes", "--param", "extras=a,b",
    )  # fmt: skip
    assert out == {h: 'HELLO ops\nHELLO ops\nextras ["a","b"]\n' for h in ("doc-web-1", "doc-web-2")}

    # Shell syntax in a value is data: nothing it names runs, and the script prints it verbatim.
    canary = Path("/tmp") / f"fleetops-pwned-{uuid.uuid4().hex}"
    hostile = f"x; rm -rf /; touch {canary} $(touch {canary}) `touch {canary}` '\" && touch {canary}"
    out = run_doc(controller, "--host", "doc-web-1", "--doc", "greet", "--param", f"name={hostile}")
    assert out == {"doc-web-1": f"hello {hostile}\nextras []\n"}
    assert not canary.exists()
    shown = controller.opsctl_json("command", "list")[0]
    assert shown["document"] == "greet:1" and shown["parameters"]["name"] == hostile

    before = len(controller.opsctl_json("command", "list", "--limit", "1000"))
    refused = {
        "unknown parameter 'nmae'": ["--param", "nmae=x"],
        "parameter name is required": [],
        "does not match the pattern": ["--param", "name=two\nlines"],
        "not one of the allowed values": ["--param", "name=x", "--param", "times=4"],
        "expected an integer": ["--param", "name=x", "--param", "times=two"],
        "expected true or false": ["--param", "name=x", "--param", "loud=maybe"],
    }
    for message, params in refused.items():
        result = controller.opsctl("run", "--target", "role=web", "--doc", "greet", *params, check=False)
        assert result.returncode == 2 and message in result.stderr, (message, result.stderr)
        assert "Traceback" not in result.stderr
    assert (
        "did you mean name?"
        in controller.opsctl("run", "--all", "--doc", "greet", "--param", "nmae=x", check=False).stderr
    )
    assert len(controller.opsctl_json("command", "list", "--limit", "1000")) == before  # nothing was created

    # A document without a PowerShell script is not sent to hosts that report Windows; --param
    # without --doc is refused; a bad file names the file and the field.
    bad = write(tmp_path, "bad.yaml", "parameters: {x: {type: float}}\nrun: {shell: 'true'}\n")
    result = controller.opsctl("doc", "create", "bad", "-f", bad, check=False)
    assert result.returncode == 2 and "bad.yaml: parameters.x.type: unknown type 'float'" in result.stderr
    twice = write(tmp_path, "twice.yaml", "run: {shell: 'true'}\nrun: {shell: 'false'}\n")
    result = controller.opsctl("doc", "create", "twice", "-f", twice, check=False)
    assert result.returncode == 2 and "given twice" in result.stderr
    result = controller.opsctl("run", "--all", "--param", "a=b", "--", "true", check=False)
    assert result.returncode == 2 and "--param is for documents" in result.stderr


def test_versions_are_immutable_and_runs_follow_the_default(
    module_controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    controller = module_controller
    v1 = "description: which version\nrun: {shell: 'echo one'}\n"
    v2 = "description: which version\nrun: {shell: 'echo two'}\n"
    controller.opsctl("doc", "create", "which", "-f", write(tmp_path, "v1.yaml", v1))
    updated = controller.opsctl("doc", "update", "which", "-f", write(tmp_path, "v2.yaml", v2))
    assert "version 2 (the default is still 1" in updated.stdout
    same = controller.opsctl("doc", "update", "which", "-f", str(tmp_path / "v2.yaml"), check=False)
    assert same.returncode == 4 and "already has this content" in same.stderr

    assert run_doc(controller, "--host", "doc-db-1", "--doc", "which") == {"doc-db-1": "one\n"}
    assert run_doc(controller, "--host", "doc-db-1", "--doc", "which:2") == {"doc-db-1": "two\n"}
    controller.opsctl("doc", "set-default", "which", "2")
    assert run_doc(controller, "--host", "doc-db-1", "--doc", "which") == {"doc-db-1": "two\n"}
    assert [c["document"] for c in controller.opsctl_json("command", "list")[:3]] == ["which:2", "which:2", "which:1"]

    versions = controller.opsctl_json("doc", "versions", "which")
    assert [(v["version"], v["default_version"]) for v in versions] == [(1, 2), (2, 2)]
    diff = controller.opsctl("doc", "diff", "which", "1", "2", check=False)
    assert (
        diff.returncode == 1
        and "-run: {shell: 'echo one'}" in diff.stdout
        and "+run: {shell: 'echo two'}" in diff.stdout
    )
    shown = controller.opsctl("doc", "show", "which:1").stdout
    assert "which version 1 of 2 (default is 2)" in shown and "echo one" in shown
    missing = controller.opsctl("run", "--all", "--doc", "which:7", check=False)
    assert missing.returncode == 3 and "has no version 7" in missing.stderr

    # Built-in documents are listed and runnable, and read-only.
    listed = {d["name"]: d for d in controller.opsctl_json("doc", "list")}
    assert listed["fleetops-RunShellScript"]["builtin"] and listed["which"]["default_version"] == 2
    out = run_doc(
        controller, "--host", "doc-db-1", "--doc", "fleetops-RunShellScript", "--param", "commands=echo built; echo in"
    )
    assert out == {"doc-db-1": "built\nin\n"}
    for args in (
        ("update", "fleetops-RunShellScript", "-f", str(tmp_path / "v1.yaml")),
        ("delete", "fleetops-PatchScan"),
    ):
        result = controller.opsctl("doc", *args, check=False)
        assert result.returncode == 4 and "read-only" in result.stderr

    assert "2 versions" in controller.opsctl("doc", "delete", "which").stdout
    assert controller.opsctl("doc", "show", "which", check=False).returncode == 3


RESTARTER = """
name: web-restarter
description: may run the restart documents on web hosts, and nothing else
allow:
  - actions: [document.run]
    hosts: role=web
    documents: [restart-*]
    logins: [root]
  - actions: [hosts.read]
"""


def test_a_role_may_run_certain_documents_and_nothing_else(
    module_controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    controller = module_controller
    controller.opsctl(
        "doc", "create", "restart-web", "-f", write(tmp_path, "r.yaml", "run: {shell: 'echo restarted'}\n")
    )
    controller.opsctl("doc", "create", "wipe-web", "-f", write(tmp_path, "w.yaml", "run: {shell: 'echo wiped'}\n"))
    controller.opsctl("admin", "role", "create", "web-restarter", "--file", write(tmp_path, "role.yaml", RESTARTER))
    profile = tmp_path / "carol"
    login(controller, profile, create_user(controller, "carol", "web-restarter"))

    out = run_doc(controller, "--target", "role=web", "--doc", "restart-web", profile=profile)
    assert out == {"doc-web-1": "restarted\n", "doc-web-2": "restarted\n"}

    refusals = {
        "run document wipe-web": ("--target", "role=web", "--doc", "wipe-web"),
        "run document restart-web as the agent's own account (decided as root) on doc-db-1": (
            "--target",
            "role=db",
            "--doc",
            "restart-web",
        ),
        "may not run commands": ("--target", "role=web", "--", "id"),
    }
    for message, args in refusals.items():
        result = controller.opsctl("run", *args, profile=profile, check=False)
        assert result.returncode == 5 and message in result.stderr, (message, result.stderr)
    # She may run documents, not write them: a new "restart-" document would be a shell.
    result = controller.opsctl(
        "doc", "create", "restart-evil", "-f", str(tmp_path / "w.yaml"), profile=profile, check=False
    )
    assert result.returncode == 5 and "document.manage" in result.stderr

    events = controller.opsctl_json("audit", "list", "--actor", "operator:carol", "--action", "command.run")
    ran = [json.loads(e["details_json"]) for e in events if e["outcome"] == "ok"]
    assert ran and ran[0]["document"] == "restart-web:1" and ran[0]["parameters"] == []
    assert any(d["action"] == "document.run" and d["allowed"] for d in ran[0]["authz"])
    denied = [json.loads(e["details_json"]) for e in events if e["outcome"] == "denied"]
    assert any(d.get("document") == "wipe-web:1" for d in denied)
