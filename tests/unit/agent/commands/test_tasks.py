"""Agent tasks become a child process of the agent's own program, before they are journaled."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fleetops.agent.commands.tasks import REPORT_ENV, REQUEST_ENV, UnknownTask, expand_agent_task
from fleetops.v1 import agent_pb2


def test_a_patch_scan_runs_the_agent_program_with_the_request_in_its_environment(tmp_path: Path) -> None:
    spec = agent_pb2.RunInvocation(
        invocation_id="inv-1", agent_task="patch.scan", task_input=b'{"refresh": true}', env={"A": "1"}
    )
    expanded = expand_agent_task(spec, tmp_path, tmp_path / "inv-1" / "task-report.pb")
    assert list(expanded.argv) == [
        sys.executable,
        "-m",
        "fleetops.agent",
        "--state-dir",
        str(tmp_path),
        "patch",
        "scan",
    ]
    assert expanded.env[REQUEST_ENV] == '{"refresh": true}' and expanded.env["A"] == "1"
    assert expanded.env[REPORT_ENV] == str(tmp_path / "inv-1" / "task-report.pb")
    assert not expanded.agent_task and not expanded.task_input and expanded.invocation_id == "inv-1"


def test_an_ordinary_command_is_left_alone(tmp_path: Path) -> None:
    spec = agent_pb2.RunInvocation(invocation_id="inv-2", argv=["true"])
    assert expand_agent_task(spec, tmp_path, tmp_path / "report") is spec


def test_an_unknown_task_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UnknownTask, match="upgrade the agent"):
        expand_agent_task(
            agent_pb2.RunInvocation(invocation_id="inv-3", agent_task="coffee.make"), tmp_path, tmp_path / "r"
        )


def test_an_agent_update_runs_the_agent_program_and_may_leave_its_status(tmp_path: Path) -> None:
    from fleetops.agent.commands.tasks import STATUS_ENV

    spec = agent_pb2.RunInvocation(invocation_id="inv-2", agent_task="agent.update", task_input=b"{}")
    expanded = expand_agent_task(spec, tmp_path, tmp_path / "inv-2" / "task-report.pb")
    assert list(expanded.argv)[-1] == "update"
    assert expanded.env[STATUS_ENV] == str(tmp_path / "inv-2" / "task-status.json")


def test_the_status_a_task_left_is_read_back(tmp_path: Path) -> None:
    from fleetops.agent.commands.executor import read_task_status

    path = tmp_path / "task-status.json"
    assert read_task_status(path) is None
    path.write_text('{"exit_code": 1, "reason": "rolled back to 0.1.0-1"}')
    assert read_task_status(path) == (1, "rolled back to 0.1.0-1")
    path.write_text("{")
    assert read_task_status(path) is None
