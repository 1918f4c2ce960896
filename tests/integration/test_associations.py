"""Associations with real processes: applied at creation, to new hosts at once, drift and its fix, rights.

The document keeps a marker file per host (``$FLEETOPS_PARAM_DIR/$FLEETOPS_HOST_NAME``: the agents
run on this machine, each command knows its host's name); its check fails when the marker is gone.
Waits poll ``association show`` against a deadline, never a fixed sleep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import Agent, Controller, create_user, login, start_fleet

pytestmark = pytest.mark.slow

KEEP_MARKER = """
description: keep a marker file per host in a directory
parameters:
  dir: {type: string, pattern: '^/[A-Za-z0-9._/-]+$'}
  content: {type: string, default: kept, pattern: '^[a-z]+$'}
run:
  shell: |
    printf '%s\\n' "$FLEETOPS_PARAM_CONTENT" > "$FLEETOPS_PARAM_DIR/$FLEETOPS_HOST_NAME"
check:
  shell: |
    [ -f "$FLEETOPS_PARAM_DIR/$FLEETOPS_HOST_NAME" ] || { echo "marker missing"; exit 1; }
"""

MARKER_ROLLOUT = """
description: roll the marker out over a target, one host first
parameters:
  target: {type: string}
  dir: {type: string, pattern: '^/[A-Za-z0-9._/-]+$'}
steps:
  - name: roll
    run:
      document: keep-marker
      parameters: {dir: "{{ params.dir }}", content: rolled}
      target: "{{ params.target }}"
      batches: [1, "100%"]
"""

MANAGER_ONLY = """
name: association-manager
description: may manage associations, and run nothing
allow:
  - actions: [association.manage, hosts.read]
"""
MARKER_KEEPER = """
name: marker-keeper
description: may keep the marker on assoc web hosts
allow:
  - actions: [association.manage, hosts.read]
  - actions: [document.run]
    hosts: role=asweb
    documents: [keep-marker]
    logins: [root]
"""
RUNNER_ONLY = """
name: marker-runner
description: may run the marker document, not manage associations
allow:
  - actions: [document.run]
    hosts: role=asweb
    documents: [keep-marker]
    logins: [root]
  - actions: [hosts.read]
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("association-agents")


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the document keeps each host's marker (one file per host name)."""
    return tmp_path_factory.mktemp("association-markers")


@pytest.fixture(scope="module")
def fleet(module_controller: Controller, root: Path) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(module_controller, root, {"as-web-1": {"role": "asweb"}, "as-web-2": {"role": "asweb"}})
    yield agents
    for agent in agents.values():
        agent.stop()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def hosts_of(controller: Controller, key: str) -> dict[str, dict[str, Any]]:
    return {h["host_name"]: h for h in controller.opsctl_json("association", "show", key)["hosts"]}


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def statuses(controller: Controller, key: str) -> dict[str, str]:
    return {name: h["status"] for name, h in hosts_of(controller, key).items()}


def test_applied_at_creation_to_new_hosts_at_once_and_drift_is_fixed(
    module_controller: Controller, fleet: dict[str, Agent], root: Path, markers: Path, tmp_path: Path
) -> None:
    controller = module_controller
    controller.opsctl("doc", "create", "keep-marker", "-f", write(tmp_path, "keep.yaml", KEEP_MARKER))
    create = ("association", "create", "--doc", "keep-marker", "--param", f"dir={markers}", "--target", "role=asweb")
    create = (*create, "--schedule")

    # Every mistake is an input error before anything is stored.
    refused = {
        "unknown parameter 'contnt'": ("rate(1 minute)", "--param", "contnt=x"),
        'parameter dir: "relative" does not match the pattern': ("rate(1 minute)", "--param", "dir=relative"),
        'parameter content: "BAD" does not match the pattern': ("rate(1 minute)", "--param", "content=BAD"),
        "would apply it once": ("at(2030-01-01T00:00)",),
        "bad rate expression": ("rate(0.5 minutes)",),
        "--check-every 2s is out of range": ("rate(1 minute)", "--check-every", "2s"),
    }
    for message, args in refused.items():
        result = controller.opsctl(*create, *args, check=False)
        assert result.returncode == 2 and message in result.stderr, (message, result.stderr)
        assert "Traceback" not in result.stderr
    assert controller.opsctl_json("association", "list") == []

    association_id = controller.opsctl(*create, "rate(1 minute)", "marker", "--check-every", "5s").stdout.strip()
    assert association_id.startswith("assoc-")
    # The first application is at creation: both hosts are compliant long before the first minute.
    wait_for("both hosts compliant", lambda: statuses(controller, "marker") == dict.fromkeys(fleet, "compliant"))
    assert {p.name: p.read_text() for p in markers.iterdir()} == dict.fromkeys(fleet, "kept\n")
    shown = controller.opsctl_json("association", "show", association_id)["association"]
    assert shown["name"] == "marker" and shown["author"] == "operator:admin" and shown["status"] == "compliant"
    assert shown["counts"] == {"compliant": 2}
    assert "compliant" in controller.opsctl("association", "show", "marker").stdout

    # A host registered after the association is reached within a tick, not at the next occurrence.
    started = time.monotonic()
    late = start_fleet(controller, root, {"as-web-3": {"role": "asweb"}})["as-web-3"]
    try:
        wait_for("the new host compliant", lambda: statuses(controller, "marker").get("as-web-3") == "compliant", 15)
        assert time.monotonic() - started < 15
        assert (markers / "as-web-3").exists()
        # A host the target no longer matches (here: deregistered) is dropped from the association.
        controller.opsctl("hosts", "deregister", "as-web-3", "--yes")
        wait_for("the deregistered host dropped", lambda: "as-web-3" not in statuses(controller, "marker"), 10)
    finally:
        late.stop()
    history = controller.opsctl_json("association", "history", "marker")
    assert [(r["trigger"], r["hosts"]) for r in history if r["trigger"] != "check"][-2:] == [
        ("new-host", 1),
        ("schedule", 2),
    ]

    # The check finds the drift; an application fixes it.
    (markers / "as-web-1").unlink()
    wait_for("as-web-1 drifted", lambda: hosts_of(controller, "marker")["as-web-1"]["status"] == "drifted")
    drifted = hosts_of(controller, "marker")
    assert drifted["as-web-1"]["detail"] == "marker missing" and drifted["as-web-2"]["status"] == "compliant"
    assert controller.opsctl_json("association", "show", "marker")["association"]["status"] == "drifted"
    # A host shows its compliance with each association next to its inventory.
    host = controller.opsctl_json("hosts", "show", "as-web-1")
    assert [(a["name"], a["status"]["status"]) for a in host["associations"]] == [("marker", "drifted")]
    assert "marker" in controller.opsctl("hosts", "show", "as-web-1").stdout
    applied = controller.opsctl("association", "apply", "marker")
    assert "on 2 hosts" in applied.stdout, applied.stdout
    wait_for("as-web-1 compliant again", lambda: statuses(controller, "marker").get("as-web-1") == "compliant")
    assert (markers / "as-web-1").exists()
    triggers = {r["trigger"] for r in controller.opsctl_json("association", "history", "marker")}
    assert {"schedule", "new-host", "check", "manual"} <= triggers
    command = controller.opsctl_json("run", "show", history[0]["command_id"])["command"]
    assert command["created_by"] == f"operator:admin via association:{association_id}", command
    runs = controller.opsctl_json("audit", "list", "--action", "association.run")
    assert runs and all(e["actor"] == "operator:admin" for e in runs)

    controller.opsctl("association", "delete", "marker")
    gone = controller.opsctl("association", "show", "marker", check=False)
    assert gone.returncode == 3 and "no association 'marker'" in gone.stderr


def test_creating_needs_association_manage_and_the_right_to_run_the_document_everywhere_it_could_match(
    module_controller: Controller, fleet: dict[str, Agent], markers: Path, tmp_path: Path
) -> None:
    controller = module_controller
    if not any(d["name"] == "keep-marker" for d in controller.opsctl_json("doc", "list")):
        controller.opsctl("doc", "create", "keep-marker", "-f", write(tmp_path, "keep.yaml", KEEP_MARKER))
    profiles = {}
    for user, role, text in (
        ("ann", "association-manager", MANAGER_ONLY),
        ("kim", "marker-keeper", MARKER_KEEPER),
        ("ray", "marker-runner", RUNNER_ONLY),
    ):
        controller.opsctl("admin", "role", "create", role, "--file", write(tmp_path, f"{role}.yaml", text))
        profiles[user] = tmp_path / user
        login(controller, profiles[user], create_user(controller, user, role))
    create = ("association", "create", "--doc", "keep-marker", "--param", f"dir={markers}", "--schedule", "rate(1 day)")

    result = controller.opsctl(*create, "--target", "role=asweb", profile=profiles["ray"], check=False)
    assert result.returncode == 5 and "may not create associations" in result.stderr, result.stderr
    result = controller.opsctl(*create, "--target", "role=asweb", profile=profiles["ann"], check=False)
    assert result.returncode == 5 and "may not run document keep-marker" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    # kim may run it on assoc web hosts, so on every host role=asweb could match; --all is more.
    result = controller.opsctl(*create, "--all", profile=profiles["kim"], check=False)
    assert result.returncode == 5 and "may not run document keep-marker" in result.stderr, result.stderr
    kept = controller.opsctl(*create, "--target", "role=asweb", profile=profiles["kim"]).stdout.strip()
    assert controller.opsctl_json("association", "list")[0]["author"] == "operator:kim"

    denied = controller.opsctl_json("audit", "list", "--action", "association.create", "--outcome", "denied")
    assert {e["actor"] for e in denied} == {"operator:ann", "operator:kim", "operator:ray"}
    ann = next(e for e in denied if e["actor"] == "operator:ann")
    assert "may not run document keep-marker" in json.dumps(json.loads(ann["details_json"]))

    # Each application acts for its author, decided then: once kim is disabled, it applies nowhere.
    wait_for("kim's association applied", lambda: set(statuses(controller, kept).values()) == {"compliant"})
    controller.opsctl("admin", "user", "disable", "kim")
    result = controller.opsctl("association", "apply", kept, check=False)
    assert result.returncode == 4 and "the author 'kim' is disabled" in result.stderr, result.stderr
    assert {h["detail"] for h in hosts_of(controller, kept).values()} == {"the author 'kim' is disabled"}
    assert set(statuses(controller, kept).values()) == {"failed"}
    refusal = controller.opsctl_json("audit", "list", "--action", "association.run", "--outcome", "denied")[-1]
    assert refusal["actor"] == "operator:kim" and refusal["target"] == kept
    controller.opsctl("association", "delete", kept)


def test_a_runbook_association_starts_one_execution_on_its_target_as_its_author(
    module_controller: Controller, fleet: dict[str, Agent], markers: Path, tmp_path: Path
) -> None:
    controller = module_controller
    if not any(d["name"] == "keep-marker" for d in controller.opsctl_json("doc", "list")):
        controller.opsctl("doc", "create", "keep-marker", "-f", write(tmp_path, "keep.yaml", KEEP_MARKER))
    controller.opsctl("doc", "create", "marker-rollout", "-f", write(tmp_path, "rollout.yaml", MARKER_ROLLOUT))
    create = ("association", "create", "--doc", "marker-rollout", "--param", f"dir={markers}", "--schedule")
    create = (*create, "rate(1 day)")

    # A runbook takes the association's selector as its target parameter: named hosts cannot be one.
    result = controller.opsctl(*create, "--host", "as-web-1", check=False)
    assert result.returncode == 2 and "is a runbook: an association starts it on a selector" in result.stderr
    result = controller.opsctl(*create, "--target", "role=asweb", "--param", "target=role=db", check=False)
    assert result.returncode == 2 and "--param target is given by the association" in result.stderr

    key = controller.opsctl(*create, "--target", "role=asweb", "rollout").stdout.strip()
    wait_for("both hosts compliant", lambda: statuses(controller, "rollout") == dict.fromkeys(fleet, "compliant"), 60)
    assert {name: (markers / name).read_text() for name in fleet} == dict.fromkeys(fleet, "rolled\n")
    (run,) = controller.opsctl_json("association", "history", "rollout")
    assert run["command_id"].startswith("auto-") and run["status"] == "success" and run["hosts"] == 2
    execution = controller.opsctl_json("automation", "show", run["command_id"])
    assert execution["started_by"] == "operator:admin" and execution["started_via"] == f"association:{key}"
    assert execution["parameters"] == {"target": "role=asweb", "dir": str(markers)}
    assert [len(s["command_ids"]) for s in execution["steps"]] == [2]  # the canary, then the rest
    controller.opsctl("association", "delete", "rollout")
