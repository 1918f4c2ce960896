"""Certificate renewal over the link, health, reflection, metrics, the audit chain, dev mode."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fleetops.common import pki

from databases import new_postgres_database
from harness import PYTHON, Agent, Controller, Process, run, wait_until

pytestmark = pytest.mark.slow


def test_agent_renews_its_certificate_before_expiry_and_stays_online(
    make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent]
) -> None:
    controller = make_controller("short", extra_args=["--host-cert-lifetime", "6s"])
    controller.start()
    activation_id, code = controller.create_activation()
    agent = make_agent("renewer")
    agent.register(controller, activation_id, code)
    first = pki.load_cert((agent.state_dir / "host.pem").read_bytes())
    agent.start()
    assert agent.process is not None
    # Renewal at two thirds of 6 s, then a reconnect with the new certificate; twice, to outlive
    # the first certificate by a wide margin.
    agent.process.wait_for_line(r"certificate renewed", timeout=20)
    agent.process.wait_for_line(r"certificate renewed", timeout=20, start=agent.process.next_index)
    agent.wait_connected(start=agent.process.next_index)
    current = pki.load_cert((agent.state_dir / "host.pem").read_bytes())
    assert current.serial_number != first.serial_number
    assert current.not_valid_after_utc > first.not_valid_after_utc
    assert pki.identity_from_cert(current).name == agent.host_id
    assert (agent.state_dir / "host.key").stat().st_mode & 0o777 == 0o600
    wait_until(lambda: controller.host_status("renewer") == "online", 10, "renewer online after renewing")
    events = json.loads(controller.opsctl("audit", "list", "--action", "host.certificate.renew", "-o", "json").stdout)
    assert len(events) >= 2


def test_health_reflection_and_metrics(controller: Controller, enrolled: Callable[..., Agent]) -> None:
    enrolled("metered")
    profile = controller.profile
    creds = grpc.ssl_channel_credentials(
        (profile / "ca.pem").read_bytes(),
        (profile / "operator.key").read_bytes(),
        (profile / "operator.pem").read_bytes(),
    )
    with grpc.secure_channel(controller.address, creds) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="fleetops.v1.AgentService"), timeout=10)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        services = {s.name for r in responses for s in r.list_services_response.service}
        assert {"fleetops.v1.AgentService", "fleetops.v1.OperatorService", "grpc.health.v1.Health"} <= services
    with urllib.request.urlopen(f"http://127.0.0.1:{controller.ports['metrics']}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert "fleetops_connected_agents 1.0" in text
    assert (
        'fleetops_grpc_server_handled_total{code="OK",method="/fleetops.v1.OperatorService/CreateActivation"}' in text
    )


def test_audit_verify_names_the_edited_event(controller: Controller, enrolled: Callable[..., Agent]) -> None:
    enrolled("audited")
    controller.opsctl("hosts", "list")
    events = json.loads(controller.opsctl("audit", "list", "-o", "json").stdout)
    victim = events[len(events) // 2]
    with sqlite3.connect(controller.state_dir / "fleetops.db") as db:
        db.execute("UPDATE audit_events SET actor = 'operator:nobody' WHERE id = ?", (int(victim["id"]),))
    result = controller.opsctl("audit", "verify", check=False)
    assert result.returncode == 1
    assert f"BROKEN at event {victim['id']}" in result.stdout


def test_dev_mode_starts_a_controller_and_an_enrolled_agent(tmp_path: Path) -> None:
    env = {"FLEETOPS_CONFIG_DIR": str(tmp_path / "config")}

    def start_dev(name: str, port: int, *extra: str) -> Process:
        args = ["--state-dir", str(tmp_path / "dev"), "--port", str(port), "--metrics-port", "0"]
        return Process(name, [PYTHON, "-m", "fleetops.controller", "dev", *args, *extra], env=env)

    def opsctl(*args: str) -> subprocess.CompletedProcess[str]:
        return run([PYTHON, "-m", "fleetops.opsctl", *args], env=env)

    # dev takes serve's timeouts and limits: a window shorter than the default 1h minimum.
    dev = start_dev("dev", 0, "--window-min-duration", "1m")  # 0: the OS picks, the banner tells
    try:
        dev.wait_for_line(r"fleetops is running", timeout=60)
        port = int(dev.wait_for_line(r"controller +localhost:(\d+) \(mTLS\)").group(1))
        dev.wait_for_line(r"connected to .* as host", timeout=30)
        result = opsctl("hosts", "list", "-o", "json")
        assert result.returncode == 0, result.stderr
        hosts = json.loads(result.stdout)
        assert len(hosts) == 1 and hosts[0]["status"] == "online" and hosts[0]["tags"] == {"env": "dev"}
        first_id = hosts[0]["id"]
        # The banner suggests what to type next, with the real host name; never to start the agent it started.
        assert "start the agent" not in dev.output()
        assert f"opsctl hosts show {hosts[0]['name']}" in dev.output()
        daily = ("--schedule", "rate(1 day)")
        assert opsctl("window", "create", "quick", *daily, "--duration", "2m", "--cutoff", "1m").returncode == 0
        short = opsctl("window", "create", "quicker", *daily, "--duration", "30s", "--cutoff", "10s")
        assert short.returncode == 2, short.stderr
        assert "shorter than this controller's minimum of 1m (its --window-min-duration setting)" in short.stderr
    finally:
        assert dev.stop() == 0
    # A second start reuses the CA, the database and the agent's identity (and the port the agent knows).
    again = start_dev("dev again", port)
    try:
        again.wait_for_line(r"connected to .* as host", timeout=60)
        hosts = json.loads(run([PYTHON, "-m", "fleetops.opsctl", "hosts", "list", "-o", "json"], env=env).stdout)
        assert [h["id"] for h in hosts] == [first_id]  # the same host, not a second registration
    finally:
        again.stop()


def test_controller_process_on_postgresql(
    postgres_server: str, make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent]
) -> None:
    controller = make_controller("pg", database_url=new_postgres_database(postgres_server))
    controller.start()
    activation_id, code = controller.create_activation("--tag", "db=postgres", "--limit", "2")
    agent = make_agent("pg-host")
    agent.register(controller, activation_id, code)
    agent.start()
    second = make_agent("pg-host-2")
    second.register(controller, activation_id, code)
    second.start()
    hosts = controller.hosts("--target", "db=postgres")
    assert [h["name"] for h in hosts] == ["pg-host", "pg-host-2"]
    assert all(h["status"] == "online" for h in hosts)
    # A fan-out whose results are committed in one batch (executemany) on PostgreSQL.
    ran = controller.opsctl(
        "run", "--target", "db=postgres", "-o", "json", "--", "sh", "-c", "echo $FLEETOPS_HOST_NAME"
    )
    docs = [json.loads(line) for line in ran.stdout.splitlines()]
    assert sorted((d["host"], d["state"], d["stdout"]) for d in docs) == [
        ("pg-host", "success", "pg-host\n"),
        ("pg-host-2", "success", "pg-host-2\n"),
    ]
    # Restart the controller: the host, its tags and the audit chain are all still there.
    controller.stop()
    controller.start()
    agent.wait_connected(timeout=60, start=agent.process.next_index if agent.process else 0)
    # Presence is written behind (fleet/presence.py): "online" follows the agent's connect shortly.
    wait_until(lambda: controller.host_status("pg-host") == "online", 10, "pg-host online after the restart")
    assert "audit chain intact" in controller.opsctl("audit", "verify").stdout


def test_dev_help_lists_the_settings_it_shares_with_serve() -> None:
    dev = run([PYTHON, "-m", "fleetops.controller", "dev", "--help"])
    serve = run([PYTHON, "-m", "fleetops.controller", "serve", "--help"])
    assert dev.returncode == 0 and serve.returncode == 0, dev.stderr + serve.stderr
    for flag in (
        "--window-min-duration",
        "--session-idle-timeout",
        "--session-max-duration",
        "--heartbeat-interval",
        "--command-ack-timeout",
        "--lockout-after",
    ):
        assert flag in dev.stdout and flag in serve.stdout, flag
