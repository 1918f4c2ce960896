"""Exactly once across crashes: kill -9 the controller or an agent mid-command; reboot requests; S3 output."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import PYTHON, Agent, Controller, wait_until
from s3server import SeaweedS3

pytestmark = pytest.mark.slow


def command_detail(controller: Controller, command_id: str) -> dict:
    return json.loads(controller.opsctl("command", "show", command_id, "-o", "json").stdout)


def counts(controller: Controller, command_id: str) -> dict[str, int]:
    return command_detail(controller, command_id)["command"]["counts"]


def watch(controller: Controller, command_id: str) -> dict[str, dict]:
    result = controller.opsctl("run", "watch", command_id, "-o", "json", check=False)
    return {d["host"]: d for d in (json.loads(line) for line in result.stdout.splitlines() if line.startswith("{"))}


def enroll(controller: Controller, make_agent: Callable[[str], Agent], names: list[str]) -> list[Agent]:
    agents = []
    for name in names:
        activation_id, code = controller.create_activation()
        agent = make_agent(name)
        agent.register(controller, activation_id, code)
        agent.start()
        agents.append(agent)
    return agents


def test_controller_killed_mid_fan_out_runs_every_invocation_exactly_once(
    make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent], tmp_path: Path
) -> None:
    controller = make_controller("crashy")
    controller.start()
    agents = enroll(controller, make_agent, ["h1", "h2", "h3", "h4"])
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    script = f'echo "$FLEETOPS_INVOCATION_ID" >> {ledger}/"$FLEETOPS_HOST_NAME"; sleep 2; echo done'
    started = controller.opsctl("run", "--all", "--max-concurrency", "2", "--detach", "--", "sh", "-c", script)
    command_id = started.stdout.strip().splitlines()[-1]
    wait_until(lambda: len(list(ledger.iterdir())) >= 2, 20, "two invocations to start running")
    controller.kill()  # kill -9 while two invocations run and two were never sent
    controller.start()  # same ports and database: agents reconnect, the command resumes
    for agent in agents:
        agent.wait_connected(timeout=60, start=agent.process.next_index if agent.process else 0)
    results = watch(controller, command_id)
    assert sorted(results) == ["h1", "h2", "h3", "h4"]
    assert all(r["state"] == "success" and r["stdout"] == "done\n" for r in results.values()), results
    for name in results:
        lines = (ledger / name).read_text().splitlines()
        assert len(lines) == 1, f"{name} ran {len(lines)} times"
    assert command_detail(controller, command_id)["command"]["status"] == "success"


def test_agent_killed_mid_command_ends_failed_and_is_not_rerun(
    make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent], tmp_path: Path
) -> None:
    controller = make_controller("agentcrash")
    controller.start()
    (agent,) = enroll(controller, make_agent, ["victim"])
    ledger = tmp_path / "ran"
    started = controller.opsctl(
        "run", "--host", "victim", "--detach", "--", "sh", "-c", f"echo once >> {ledger}; sleep 2"
    )
    command_id = started.stdout.strip().splitlines()[-1]
    wait_until(lambda: counts(controller, command_id).get("running") == 1, 20, "the command to run")
    agent.kill()  # kill -9 the agent; its command keeps running on its own
    agent.start()
    results = watch(controller, command_id)
    assert results["victim"]["state"] == "failed"
    assert re.search(r"agent (stopped|restarted) while the command was running", results["victim"]["reason"])
    assert ledger.read_text().splitlines() == ["once"]  # never re-run


def test_reboot_request_reboots_through_the_reboot_interface(
    make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent], tmp_path: Path
) -> None:
    controller = make_controller("reboot")
    controller.start()
    marker = tmp_path / "rebooted"
    activation_id, code = controller.create_activation()
    agent = make_agent("rebooter")
    agent.register(controller, activation_id, code)
    agent.start(args=["--reboot-command", f"touch {marker}"])
    started = controller.opsctl("run", "--host", "rebooter", "--detach", "--", "sh", "-c", "echo patched; exit 194")
    command_id = started.stdout.strip().splitlines()[-1]
    wait_until(marker.exists, 20, "the reboot interface to be called")
    agent.stop()  # the "reboot": the agent comes back as a new process
    agent.start()
    results = watch(controller, command_id)
    assert results["rebooter"]["state"] == "success" and results["rebooter"]["rebooted"] is True
    assert results["rebooter"]["stdout"] == "patched\n"


def test_output_goes_to_s3_and_round_trips_byte_exact(
    seaweed: SeaweedS3, make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent], tmp_path: Path
) -> None:
    bucket = seaweed.new_bucket("out")
    controller = make_controller(
        "s3",
        extra_args=["--object-store", f"s3://{bucket}/fleet?endpoint={seaweed.endpoint}&path_style=true"],
        env={"AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": seaweed.secret_key},
    )
    controller.start()
    enroll(controller, make_agent, ["s3-host"])
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(12 * 1024 * 1024))
    result = controller.opsctl("run", "--host", "s3-host", "-o", "json", "--", "cat", str(blob))
    doc = json.loads(result.stdout.splitlines()[0])
    assert doc["state"] == "success" and doc["stdout_bytes"] == blob.stat().st_size
    command_id = json.loads(controller.opsctl("command", "list", "-o", "json").stdout)[0]["id"]
    raw = subprocess.run(
        [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), "run", "output", command_id, "s3-host"],
        capture_output=True,
        timeout=120,
        env={**os.environ, "GRPC_VERBOSITY": "ERROR"},
    )
    assert raw.returncode == 0, raw.stderr
    assert hashlib.sha256(raw.stdout).digest() == hashlib.sha256(blob.read_bytes()).digest()
    assert seaweed.object_etag(bucket, f"fleet/commands/{command_id}/s3-host/stdout")
