"""Issue 11 §1, repeated as the attacker did it: maintenance windows must not bypass RBAC.

Real controller and agents. Each window task acts for its author and is authorized as them when it
runs, on the hosts it resolves to then; a selector is authorized as a selector; changing a window
needs the rights its tasks need. The controller runs with ``--window-min-duration 1s`` and windows
use one-off ``at()`` schedules a few seconds ahead (as tests/integration/test_windows.py does).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness import Agent, Controller, start_fleet, wait_until

pytestmark = pytest.mark.slow

FAST = ["--window-min-duration", "1s"]

WEB_OPS = """
name: {name}
description: run as daemon on {hosts} hosts; manage maintenance windows
allow:
  - actions: [command.run, hosts.read]
    hosts: "{hosts}"
    logins: [daemon]
  - actions: [window.manage]
"""
MANAGER = """
name: window-manager
description: maintenance windows only
allow:
  - actions: [window.manage]
"""


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    c = Controller(tmp_path_factory.mktemp("window-rights") / "c", name="window rights controller", extra_args=FAST)
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def fleet(controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        controller,
        tmp_path_factory.mktemp("window-rights-agents"),
        {"web-1": {"role": "web", "env": "dev"}, "web-2": {"role": "web", "env": "prod"}, "db-1": {"role": "db"}},
    )
    yield agents
    for agent in agents.values():
        agent.stop()


def role(controller: Controller, tmp_path: Path, text: str, verb: str = "create") -> None:
    name = text.split("name: ", 1)[1].split()[0]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    controller.opsctl("admin", "role", verb, name, "--file", str(path))


def operator(controller: Controller, tmp_path: Path, name: str, *roles: str) -> Path:
    return controller.issue_profile(name, tmp_path / f"profile-{name}", roles=roles)


def at(seconds: float) -> str:
    moment = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(seconds=1)
    return f"at({moment:%Y-%m-%dT%H:%M:%S})"


def as_json(controller: Controller, profile: Path, *args: str) -> Any:
    return json.loads(controller.opsctl(*args, "-o", "json", profile=profile).stdout)


def finished(controller: Controller, window: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        runs = controller.opsctl_json("window", "history", window)
        return runs[0] if runs and runs[0]["status"] != "in_progress" else None

    return wait_until(done, 60, f"window {window} to finish")


def events(controller: Controller, actor: str, action: str, outcome: str = "") -> list[dict[str, Any]]:
    found = controller.opsctl_json("audit", "list", "--actor", actor, "--action", action, "--outcome", outcome)
    return [e for e in found if e["actor"] == actor and e["action"] == action]


def create(window: str, schedule: str) -> list[str]:
    return ["window", "create", window, "--schedule", schedule, "--duration", "60s", "--cutoff", "10s"]


def task_add(window: str, *target: str, run_as: str = "daemon", extra: tuple[str, ...] = ()) -> list[str]:
    as_ = ["--as", run_as] if run_as else []
    return ["window", "task", "add", window, "--priority", "1", "--type", "run", *target, *as_, *extra, "--", "true"]


def test_a_selector_is_authorized_as_a_selector_not_by_the_hosts_it_matches_today(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    role(controller, tmp_path, WEB_OPS.format(name="web-ops", hosts="role=web"))
    carol = operator(controller, tmp_path, "carol", "web-ops")
    controller.opsctl(*create("carols", "cron(0 3 1 1 *)"), profile=carol)

    # The attack: a selector that matches no host yet. Refused at add time, whatever it matches today.
    empty = controller.opsctl(*task_add("carols", "--target", "team=blue"), profile=carol, check=False)
    assert empty.returncode == 5, empty.stderr
    assert "could match hosts outside the hosts your roles allow (role=web)" in empty.stderr
    assert "--target 'team=blue,role=web'" in empty.stderr  # the hint says what would pass
    refusal = events(controller, "operator:carol", "window.task.add", "denied")[-1]
    assert '"selector": "team=blue"' in refusal["details_json"] and '"allowed": false' in refusal["details_json"]
    # An admin tagging a host into that selector later changes nothing: the task was never added.
    controller.opsctl("hosts", "tag", "db-1", "team=blue")
    assert controller.opsctl_json("window", "show", "carols")["tasks"] == []

    # --all needs the action on every host; root needs root; explicit hosts are decided one by one.
    for target, run_as in ((("--all",), "daemon"), (("--target", "role=web"), "root"), (("--host", "db-1"), "daemon")):
        refused = controller.opsctl(*task_add("carols", *target, run_as=run_as), profile=carol, check=False)
        assert refused.returncode == 5, (target, refused.stderr)

    # Within her rights: accepted, and the task names her as the operator it acts for.
    adding = task_add("carols", "--target", "role=web,team=blue", extra=("-o", "json"))
    added = json.loads(controller.opsctl(*adding, profile=carol).stdout)
    assert added["author"] == "operator:carol"
    shown = controller.opsctl("window", "show", "carols").stdout
    assert "AUTHOR" in shown and "operator:carol" in shown
    assert controller.opsctl_json("window", "task", "list", "carols")[0]["author"] == "operator:carol"
    controller.opsctl("hosts", "tag", "db-1", "team-")


def test_hosts_outside_the_authors_rights_at_run_time_are_refused_and_named_the_rest_run(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    role(controller, tmp_path, WEB_OPS.format(name="erin-ops", hosts="role=web"))
    erin = operator(controller, tmp_path, "erin", "erin-ops")
    controller.opsctl(*create("erins", at(4)), profile=erin)
    controller.opsctl(*task_add("erins", "--target", "role=web", extra=("--max-errors", "1")), profile=erin)
    # After she added it, an admin narrows her role to the dev web hosts: web-2 (prod) leaves her rights.
    role(controller, tmp_path, WEB_OPS.format(name="erin-ops", hosts="role=web,env=dev"), verb="update")

    execution = finished(controller, "erins")
    (task,) = execution["tasks"]
    assert task["author"] == "operator:erin"
    assert task["refused_hosts"] == ["web-2"] and task["status"] == "failed"
    assert task["counts"]["refused"] == 1 and task["counts"]["success"] == 1, task  # web-1 still ran
    assert "web-2" in task["reason"]
    invocations = controller.opsctl_json("command", "show", task["command_id"])["invocations"]
    assert [i["host_name"] for i in invocations] == ["web-1"]  # web-2 was never sent anything
    text = controller.opsctl("window", "history", "erins").stdout
    assert "refused, outside operator:erin's rights (sent nothing): web-2" in text

    (decision,) = events(controller, "operator:erin", "window.task.run")
    assert decision["outcome"] == "denied" and decision["target"] == f"erins/{task['task_id']}"
    details = json.loads(decision["details_json"])
    assert details["via"] == "window:erins" and details["execution"] == execution["id"]
    assert details["refused_hosts"] == ["web-2"] and details["permitted"] == 1


def test_a_disabled_author_fails_the_task_with_that_reason(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    role(controller, tmp_path, WEB_OPS.format(name="dave-ops", hosts="role=web"))
    dave = operator(controller, tmp_path, "dave", "dave-ops")
    controller.opsctl(*create("daves", at(4)), profile=dave)
    controller.opsctl(*task_add("daves", "--target", "role=web"), profile=dave)
    controller.opsctl("admin", "user", "disable", "dave")

    execution = finished(controller, "daves")
    (task,) = execution["tasks"]
    assert execution["status"] == "failed" and task["status"] == "failed"
    assert "disabled" in task["reason"] and not task["command_id"]
    assert "disabled" in controller.opsctl("window", "history", "daves").stdout
    assert not [c for c in controller.opsctl_json("command", "list") if c["created_by"].startswith("operator:dave")]
    (decision,) = events(controller, "operator:dave", "window.task.run", "denied")
    details = json.loads(decision["details_json"])
    assert details["via"] == "window:daves" and "disabled" in details["error"]


def test_window_manage_alone_cannot_change_an_admins_window_with_a_root_task(
    controller: Controller, fleet: dict[str, Agent], tmp_path: Path
) -> None:
    role(controller, tmp_path, MANAGER)
    mallory = operator(controller, tmp_path, "mallory", "window-manager")
    controller.opsctl(*create("admins", "cron(0 3 1 1 *)"))
    controller.opsctl(*task_add("admins", "--all", run_as=""))  # as the agent's own account: root
    task_id = controller.opsctl_json("window", "show", "admins")["tasks"][0]["id"]
    soon = at(4)
    # A window of the admin's opening at the moment mallory asks for: when it has run, that moment passed.
    controller.opsctl(*create("canary", soon))
    controller.opsctl(*task_add("canary", "--host", "web-1"))

    attempts = {
        "window.update": ("window", "update", "admins", "--schedule", soon),
        "window.enable": ("window", "disable", "admins"),
        "window.task.remove": ("window", "task", "remove", "admins", task_id),
        "window.task.add": tuple(task_add("admins", "--host", "web-1", run_as="")),
        "window.delete": ("window", "delete", "admins"),
    }
    for action, argv in attempts.items():
        refused = controller.opsctl(*argv, profile=mallory, check=False)
        assert refused.returncode == 5, (argv, refused.stdout, refused.stderr)
        if action != "window.task.add":
            assert "needs the rights of each of its tasks" in refused.stderr, refused.stderr
        assert "root" in refused.stderr
        assert events(controller, "operator:mallory", action, "denied"), action

    finished(controller, "canary")
    detail = controller.opsctl_json("window", "show", "admins")
    assert detail["window"]["schedule"] == "cron(0 3 1 1 *)" and detail["window"]["enabled"]
    assert [t["id"] for t in detail["tasks"]] == [task_id]
    assert controller.opsctl_json("window", "history", "admins") == []  # her schedule never ran it

    # Nothing else broke: she still reads windows and manages her own (one without tasks).
    assert as_json(controller, mallory, "window", "show", "admins")["window"]["name"] == "admins"
    controller.opsctl(*create("mallorys", "cron(0 4 1 1 *)"), profile=mallory)
    controller.opsctl("window", "disable", "mallorys", profile=mallory)
    controller.opsctl("window", "delete", "mallorys", profile=mallory)
