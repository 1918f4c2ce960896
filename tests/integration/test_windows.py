"""Maintenance windows on the real clock: real controllers, real agents, second-scale windows.

The controllers run with ``--window-min-duration 1s`` (production keeps AWS's one hour). Windows
use one-off ``at()`` schedules a few seconds ahead, so each test waits for wall-clock time to pass:
that is the behaviour under test, not a stand-in for an event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from databases import new_postgres_database
from harness import Agent, Controller, wait_until

pytestmark = pytest.mark.slow

FAST = ["--window-min-duration", "1s"]


def at(seconds: float) -> tuple[str, datetime]:
    """An at() schedule (UTC) this many seconds from now, and that instant."""
    moment = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(seconds=1)
    return f"at({moment:%Y-%m-%dT%H:%M:%S})", moment


def enroll(controller: Controller, make_agent: Callable[[str], Agent], name: str) -> Agent:
    activation_id, code = controller.create_activation(tags={"role": "maint"})
    agent = make_agent(name)
    agent.register(controller, activation_id, code)
    agent.start(env={"FLEETOPS_PATCH_REFRESH": "never"})  # no package index refresh over the network
    return agent


def history(controller: Controller, window: str) -> list[dict]:
    return list(controller.opsctl_json("window", "history", window))


def finished(controller: Controller, window: str, timeout: float = 90) -> dict:
    def done() -> dict | None:
        runs = history(controller, window)
        return runs[0] if runs and runs[0]["status"] != "in_progress" else None

    return wait_until(done, timeout, f"window {window} to finish")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_a_window_opens_on_time_and_runs_its_tasks_in_priority_order(
    make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent]
) -> None:
    controller = make_controller("win", extra_args=FAST)
    controller.start()
    enroll(controller, make_agent, "maint-1")
    schedule, opens = at(4)
    controller.opsctl("window", "create", "nightly", "--schedule", schedule, "--duration", "60s", "--cutoff", "10s")
    next_runs = controller.opsctl_json("window", "next", "nightly")
    assert parse(next_runs["starts"][0]) == opens
    controller.opsctl(
        "window", "task", "add", "nightly", "--priority", "1", "--type", "patch-scan", "--host", "maint-1"
    )
    controller.opsctl(
        "window", "task", "add", "nightly", "--priority", "2", "--type", "run", "--host", "maint-1",
        "--", "sh", "-c", "echo maintained",
    )  # fmt: skip

    execution = finished(controller, "nightly")
    assert execution["status"] == "success", execution
    assert parse(execution["scheduled_at"]) == opens and parse(execution["started_at"]) >= opens
    scan, run = sorted(execution["tasks"], key=lambda t: t["priority"])
    assert scan["type"] == "patch-scan" and scan["status"] == "success" and scan["command_id"]
    assert run["type"] == "run" and run["status"] == "success" and run["counts"] == {"success": 1}
    assert parse(run["started_at"]) >= parse(scan["finished_at"])  # priority 2 waited for priority 1

    output = controller.opsctl("command", "output", run["command_id"], "maint-1").stdout
    assert output == "maintained\n"
    compliance = controller.opsctl_json("patch", "compliance", "--host", "maint-1")
    assert compliance["hosts"][0]["status"] in ("compliant", "non_compliant")
    assert compliance["hosts"][0]["command_id"] == scan["command_id"]
    assert len(history(controller, "nightly")) == 1  # a one-off runs once


def test_cutoff_cancels_running_tasks_and_skips_the_rest(
    make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent]
) -> None:
    controller = make_controller("cutoff", extra_args=FAST)
    controller.start()
    enroll(controller, make_agent, "maint-2")
    schedule, _ = at(3)
    controller.opsctl(
        "window", "create", "short", "--schedule", schedule, "--duration", "8s", "--cutoff", "4s",
        "--cutoff-behavior", "cancel",
    )  # fmt: skip
    controller.opsctl(
        "window", "task", "add", "short", "--priority", "1", "--type", "run", "--host", "maint-2", "--", "sleep", "60"
    )
    controller.opsctl(
        "window", "task", "add", "short", "--priority", "5", "--type", "run", "--host", "maint-2", "--", "true"
    )
    execution = finished(controller, "short")
    assert execution["status"] == "timed_out", execution
    slow, later = sorted(execution["tasks"], key=lambda t: t["priority"])
    assert slow["status"] == "timed_out" and "cutoff" in slow["reason"]
    assert later["status"] == "skipped" and "cutoff" in later["reason"] and not later.get("command_id")
    command = controller.opsctl_json("command", "show", slow["command_id"])
    assert command["command"]["status"] == "cancelled"


def test_after_downtime_a_window_starts_late_before_its_cutoff_and_is_missed_after(
    make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent]
) -> None:
    controller = make_controller("misfire", extra_args=FAST)
    controller.start()
    enroll(controller, make_agent, "maint-3")
    schedule, opens = at(3)
    controller.opsctl("window", "create", "roomy", "--schedule", schedule, "--duration", "120s", "--cutoff", "10s")
    controller.opsctl("window", "create", "tight", "--schedule", schedule, "--duration", "6s", "--cutoff", "2s")
    for window in ("roomy", "tight"):
        controller.opsctl(
            "window", "task", "add", window, "--priority", "1", "--type", "run", "--host", "maint-3", "--", "true"
        )
    controller.stop()
    # Down across both openings and past "tight"'s cutoff (opens + 4 s).
    wait_until(lambda: datetime.now(UTC) > opens + timedelta(seconds=5), 30, "the windows' start to pass")
    controller.start()
    roomy = finished(controller, "roomy")
    assert roomy["status"] == "success" and "late" in roomy["reason"]
    tight = history(controller, "tight")
    assert [e["status"] for e in tight] == ["missed"] and not tight[0].get("tasks")
    # A restart does not run anything twice.
    controller.start()
    assert len(history(controller, "roomy")) == 1 and len(history(controller, "tight")) == 1


def test_two_controllers_on_one_postgresql_run_each_occurrence_once(
    postgres_server: str, make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent]
) -> None:
    url = new_postgres_database(postgres_server)
    first = make_controller("pg-a", database_url=url, extra_args=FAST)
    first.start()
    second = make_controller("pg-b", database_url=url, extra_args=FAST)
    second.start()
    enroll(first, make_agent, "maint-4")
    names = [f"w{n}" for n in range(6)]
    for n, name in enumerate(names):
        schedule, _ = at(4 + n % 2)
        first.opsctl("window", "create", name, "--schedule", schedule, "--duration", "60s", "--cutoff", "5s")
        first.opsctl(
            "window", "task", "add", name, "--priority", "1", "--type", "run", "--host", "maint-4",
            "--timeout", "30s", "--", "true",
        )  # fmt: skip

    def started(name: str) -> list[dict] | None:
        executions = history(first, name)
        begun = executions and executions[0]["tasks"] and all(t.get("command_id") for t in executions[0]["tasks"])
        return executions if begun else None

    runs = {name: wait_until(lambda name=name: started(name), 60, f"{name} to start its task") for name in names}
    controllers = set()
    for name, executions in runs.items():
        assert len(executions) == 1, (name, executions)
        assert len(executions[0]["tasks"]) == 1 and executions[0]["tasks"][0].get("command_id"), executions
        controllers.add(executions[0]["controller"])
    commands = [c for c in first.opsctl_json("command", "list") if "window" in c.get("comment", "")]
    assert len(commands) == len(names)  # one command per occurrence, whichever replica claimed it
    assert controllers  # the replica that ran each is recorded (either may have claimed any)
