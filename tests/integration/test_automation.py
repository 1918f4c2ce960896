"""Runbooks with real processes: a rollout gated on health, approvals, and a controller killed mid-run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness import Agent, Controller, create_user, login, start_fleet, wait_until

pytestmark = pytest.mark.slow

CHANGE = """
description: record a change on the host
parameters:
  dir: {type: string}
  what: {type: string, default: change}
run: echo "$FLEETOPS_PARAM_WHAT" >> "$FLEETOPS_PARAM_DIR/$FLEETOPS_HOST_NAME.log"
"""
HEALTH = """
description: healthy unless the host is listed as bad
parameters:
  dir: {type: string}
run: test ! -e "$FLEETOPS_PARAM_DIR/$FLEETOPS_HOST_NAME.bad"
"""
ROLLOUT = """
description: change the hosts canary first, widening while healthy; roll back when not
parameters:
  dir: {type: string}
  target: {type: string, default: 'group=roll'}
steps:
  - name: deploy
    run:
      document: rec-change
      parameters: {dir: "{{ params.dir }}"}
      target: "{{ params.target }}"
      batches: [1, 3, "100%"]
      max_concurrency: "1"
      health:
        document: rec-health
        parameters: {dir: "{{ params.dir }}"}
    on_failure: rollback
    next: end
  - name: rollback
    run:
      document: rec-change
      parameters: {dir: "{{ params.dir }}", what: rollback}
      target: "{{ params.target }}"
    next: abort
"""


@pytest.fixture(scope="module")
def six(module_controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    agents = start_fleet(
        module_controller,
        tmp_path_factory.mktemp("roll-agents"),
        {f"roll-{i}": {"group": "roll"} for i in range(1, 7)},
    )
    yield agents
    for agent in agents.values():
        agent.stop()


def create_docs(controller: Controller, tmp_path: Path, docs: dict[str, str]) -> None:
    for name, text in docs.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        if controller.opsctl("doc", "show", name, check=False).returncode == 0:
            controller.opsctl("doc", "update", name, "-f", str(path), "--make-default", check=False)
        else:
            controller.opsctl("doc", "create", name, "-f", str(path))


def execution(controller: Controller, execution_id: str) -> dict[str, Any]:
    return dict(controller.opsctl_json("automation", "show", execution_id))


def ended(controller: Controller, execution_id: str, timeout: float = 120) -> dict[str, Any]:
    return wait_until(
        lambda: (e := execution(controller, execution_id))["status"] in ("success", "failed", "cancelled") and e,
        timeout,
        f"automation {execution_id} to end",
        interval=0.5,
    )


def logs(directory: Path, hosts: int = 6) -> dict[str, list[str]]:
    out = {}
    for i in range(1, hosts + 1):
        log = directory / f"roll-{i}.log"
        out[f"roll-{i}"] = log.read_text().splitlines() if log.exists() else []
    return out


def test_a_rollout_widens_while_healthy_and_stops_at_the_unhealthy_batch(
    module_controller: Controller, six: dict[str, Agent], tmp_path: Path
) -> None:
    controller = module_controller
    create_docs(controller, tmp_path, {"rec-change": CHANGE, "rec-health": HEALTH, "rollout": ROLLOUT})
    state = tmp_path / "hosts"
    state.mkdir()

    # All healthy: canary, then up to 3, then the rest; each batch's probe passes.
    result = controller.opsctl("automation", "start", "rollout", "--param", f"dir={state}", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "── deploy (run) success" in result.stdout and "success" in result.stdout.splitlines()[-1]
    assert logs(state) == {f"roll-{i}": ["change"] for i in range(1, 7)}
    done = controller.opsctl_json("automation", "list")[0]
    shown = execution(controller, done["id"])
    deploy = shown["steps"][0]
    assert deploy["outputs"]["succeeded"] == "6" and len(deploy["command_ids"]) == 6  # 3 batches + 3 probes
    assert [s["name"] for s in shown["steps"]] == ["deploy"]
    last_batch = controller.opsctl_json("command", "show", deploy["command_ids"][2])["command"]
    assert last_batch["max_concurrency"] == "1" and last_batch["total"] == 3  # the step's rate control

    # roll-2 turns unhealthy: the second batch (roll-2, roll-3) fails its probe, the third never
    # starts, and the rollback step runs; the execution ends failed.
    for log in state.glob("*.log"):
        log.unlink()
    (state / "roll-2.bad").touch()
    result = controller.opsctl("automation", "start", "rollout", "--param", f"dir={state}", check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = execution(controller, controller.opsctl_json("automation", "list")[0]["id"])
    assert failed["status"] == "failed" and "step deploy failed: batch 2 of 3: health probe failed" in failed["reason"]
    assert [(s["name"], s["status"]) for s in failed["steps"]] == [("deploy", "failed"), ("rollback", "success")]
    assert failed["steps"][0]["outputs"]["succeeded"] == "3"
    after = logs(state)
    assert after["roll-1"] == after["roll-2"] == after["roll-3"] == ["change", "rollback"]
    assert after["roll-4"] == after["roll-5"] == after["roll-6"] == ["rollback"]  # never changed

    # Parameters are checked before anything starts.
    bad = controller.opsctl("automation", "start", "rollout", "--param", "dri=x", check=False)
    assert bad.returncode == 2 and "did you mean dir?" in bad.stderr
    not_runbook = controller.opsctl("automation", "start", "rec-change", "--param", "dir=x", check=False)
    assert not_runbook.returncode == 2 and "is not a runbook" in not_runbook.stderr


APPROVAL = """
description: a change that waits for a sign-off
parameters:
  dir: {type: string}
steps:
  - name: sign-off
    approve:
      approvers: [alice]
      timeout: 10m
      message: "change {{ params.dir }}?"
  - name: apply
    run:
      document: rec-change
      parameters: {dir: "{{ params.dir }}", what: approved}
      target: 'group=roll'
      batches: ["100%"]
"""


def test_an_approval_is_given_by_an_approver_and_refused_to_others(
    module_controller: Controller, six: dict[str, Agent], tmp_path: Path
) -> None:
    controller = module_controller
    create_docs(controller, tmp_path, {"rec-change": CHANGE, "signed-change": APPROVAL})
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    login(controller, alice, create_user(controller, "alice", "auditor"))
    login(controller, bob, create_user(controller, "bob", "auditor"))
    state = tmp_path / "hosts"
    state.mkdir()

    started = controller.opsctl_json("automation", "start", "signed-change", "--param", f"dir={state}")
    execution_id = started["id"]
    waiting = wait_until(
        lambda: (e := execution(controller, execution_id))["status"] == "waiting_approval" and e,
        60,
        "the approval step",
    )
    assert waiting["approvers"] == ["alice"] and waiting["approval_message"] == f"change {state}?"
    assert logs(state) == {f"roll-{i}": [] for i in range(1, 7)}  # nothing ran before the approval

    refused = controller.opsctl("automation", "approve", execution_id, profile=bob, check=False)
    assert refused.returncode == 5 and "bob may not answer the approval" in refused.stderr
    assert "the step's approvers are alice" in refused.stderr
    controller.opsctl("automation", "approve", execution_id, "--comment", "looks good", profile=alice)
    again = controller.opsctl("automation", "approve", execution_id, profile=alice, check=False)
    assert again.returncode == 4

    done = ended(controller, execution_id)
    assert done["status"] == "success", done
    assert done["steps"][0]["outputs"]["approved_by"] == "alice"
    assert logs(state) == {f"roll-{i}": ["approved"] for i in range(1, 7)}
    events = controller.opsctl_json("audit", "list", "--action", "automation.approve")
    outcomes = {(e["actor"], e["outcome"]) for e in events}
    assert ("operator:alice", "ok") in outcomes and ("operator:bob", "denied") in outcomes

    # A denial fails the step, and the run after it never happens.
    denied_id = controller.opsctl_json("automation", "start", "signed-change", "--param", f"dir={state}")["id"]
    wait_until(lambda: execution(controller, denied_id)["status"] == "waiting_approval", 60, "the approval step")
    controller.opsctl("automation", "deny", denied_id, "--comment", "not today", profile=alice)
    denied = ended(controller, denied_id)
    assert denied["status"] == "failed" and "denied by alice: not today" in denied["reason"]
    assert logs(state) == {f"roll-{i}": ["approved"] for i in range(1, 7)}


SLOW = """
description: three changes, the middle one slow
parameters:
  dir: {type: string}
steps:
  - name: one
    run: {document: rec-change, parameters: {dir: "{{ params.dir }}", what: one}, target: 'group=crash'}
  - name: two
    run: {document: rec-slow, parameters: {dir: "{{ params.dir }}"}, target: 'group=crash'}
  - name: three
    run: {document: rec-change, parameters: {dir: "{{ params.dir }}", what: three}, target: 'group=crash'}
"""
SLOW_CHANGE = """
parameters:
  dir: {type: string}
run: |
  until [ -e "$FLEETOPS_PARAM_DIR/go" ]; do sleep 0.1; done
  echo two >> "$FLEETOPS_PARAM_DIR/$FLEETOPS_HOST_NAME.log"
"""


def test_a_controller_killed_mid_runbook_resumes_at_the_same_step_without_repeating_one(
    make_controller: Callable[..., Controller], tmp_path: Path
) -> None:
    controller = make_controller("crash")
    controller.start()
    agents = start_fleet(controller, tmp_path / "agents", {f"crash-{i}": {"group": "crash"} for i in (1, 2)})
    create_docs(controller, tmp_path, {"rec-change": CHANGE, "rec-slow": SLOW_CHANGE, "three-steps": SLOW})
    state = tmp_path / "hosts"
    state.mkdir()
    execution_id = controller.opsctl_json("automation", "start", "three-steps", "--param", f"dir={state}")["id"]

    # Step two's command is out on the hosts, held until the go file appears: kill -9 now.
    wait_until(
        lambda: any(s["name"] == "two" and s["command_ids"] for s in execution(controller, execution_id)["steps"]),
        60,
        "step two's command",
    )
    controller.kill()
    (state / "go").touch()
    controller.start()
    for agent in agents.values():
        agent.wait_connected(timeout=60, start=agent.process.next_index if agent.process else 0)

    done = ended(controller, execution_id)
    assert done["status"] == "success", done
    assert [s["name"] for s in done["steps"]] == ["one", "two", "three"]
    assert len(done["steps"][1]["command_ids"]) == 1  # step two's command was not made again
    for i in (1, 2):
        assert (state / f"crash-{i}.log").read_text().splitlines() == ["one", "two", "three"]
    commands = [c for c in controller.opsctl_json("command", "list") if "automation" in c.get("comment", "")]
    assert len(commands) == 3, json.dumps(commands, indent=1)
    for agent in agents.values():
        agent.stop()


WINDOWED = """
description: one change, started by a maintenance window
parameters:
  dir: {type: string}
steps:
  - name: apply
    run:
      document: rec-change
      parameters: {dir: "{{ params.dir }}", what: runbook}
      target: 'group=win'
"""


def test_a_window_runs_a_document_task_and_starts_a_runbook_as_its_author(
    make_controller: Callable[..., Controller], tmp_path: Path
) -> None:
    controller = make_controller("win", extra_args=["--window-min-duration", "1s"])
    controller.start()
    agents = start_fleet(controller, tmp_path / "agents", {"win-1": {"group": "win"}})
    create_docs(controller, tmp_path, {"rec-change": CHANGE, "windowed": WINDOWED})
    state = tmp_path / "hosts"
    state.mkdir()
    moment = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    controller.opsctl(
        "window", "create", "docs", "--schedule", f"at({moment:%Y-%m-%dT%H:%M:%S})", "--duration", "60s",
        "--cutoff", "10s",
    )  # fmt: skip
    controller.opsctl(
        "window", "task", "add", "docs", "--priority", "1", "--type", "document", "--doc", "rec-change",
        "--param", f"dir={state}", "--param", "what=window", "--target", "group=win",
    )  # fmt: skip
    controller.opsctl(
        "window", "task", "add", "docs", "--priority", "2", "--type", "automation", "--doc", "windowed",
        "--param", f"dir={state}",
    )  # fmt: skip
    # What a task would run is checked when it is added, as for a direct run.
    bad = controller.opsctl(
        "window", "task", "add", "docs", "--priority", "3", "--type", "document", "--doc", "rec-change",
        "--param", "dri=x", "--target", "group=win", check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "did you mean dir?" in bad.stderr
    wrong = controller.opsctl(
        "window", "task", "add", "docs", "--priority", "3", "--type", "document", "--doc", "windowed",
        "--param", f"dir={state}", "--target", "group=win", check=False,
    )  # fmt: skip
    assert wrong.returncode == 2 and "use --type automation" in wrong.stderr

    def finished() -> dict[str, Any] | None:
        runs = controller.opsctl_json("window", "history", "docs")
        return runs[0] if runs and runs[0]["status"] != "in_progress" else None

    run = wait_until(finished, 90, "window docs to finish")
    assert run["status"] == "success", run
    document_task, automation_task = sorted(run["tasks"], key=lambda t: t["priority"])
    assert document_task["status"] == "success" and automation_task["status"] == "success"
    assert automation_task["command_id"].startswith("auto-")
    started = execution(controller, automation_task["command_id"])
    assert started["started_by"] == "operator:admin" and started["started_via"] == "window:docs"
    assert (state / "win-1.log").read_text().splitlines() == ["window", "runbook"]
    for agent in agents.values():
        agent.stop()
