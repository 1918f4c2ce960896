"""Issue 11, section 4: storage trouble never stops the fleet.

Against SeaweedFS with SigV4 authentication on, real controller and agent processes:

- a wrong S3 secret used to make the agent exit 78 ("revoked") at the first command with output,
  and the systemd unit would never restart it;
- a missing bucket let ``serve`` start, then agent links flapped and wrote refused-message rows.

Now ``serve`` refuses to start on a failing store (exit 78, naming the store, the failed step and
the fix) unless ``--allow-degraded-storage``; degraded, it spools output, reports itself degraded
(health service ``fleetops.ObjectStore``, ``fleetops_object_store_up``, a log line) and catches up
when the store works again; agents never notice. Only an explicit revocation stops an agent.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness import BASE_ENV, PYTHON, Agent, Controller, run, wait_until
from s3server import SeaweedS3

pytestmark = pytest.mark.slow

EXIT_REVOKED = 78
EXIT_CONFIG = 78
STORE_SERVICE = "fleetops.ObjectStore"
OUTPUT_BYTES = 3 * 1024 * 1024 + 17  # several chunks, not a whole number of them


def store_url(seaweed: SeaweedS3, bucket: str) -> str:
    return f"s3://{bucket}/fleet?endpoint={seaweed.endpoint}&path_style=true"


def s3_env(seaweed: SeaweedS3, secret: str | None = None) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": secret or seaweed.secret_key}


def serve_once(controller: Controller, url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``serve`` as an operator would start it, expected to refuse (it must not hang)."""
    controller.init()
    args = [
        PYTHON,
        "-m",
        "fleetops.controller",
        "serve",
        "--state-dir",
        str(controller.state_dir),
        "--listen",
        "127.0.0.1:0",
        "--enroll-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--object-store",
        url,
    ]
    return run(args, env=env, timeout=60)


def store_health(controller: Controller, service: str = STORE_SERVICE) -> int:
    profile = controller.profile
    creds = grpc.ssl_channel_credentials(
        (profile / "ca.pem").read_bytes(),
        (profile / "operator.key").read_bytes(),
        (profile / "operator.pem").read_bytes(),
    )
    with grpc.secure_channel(controller.address, creds) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return int(answer.status)


def metric(controller: Controller, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{controller.ports['metrics']}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def enroll(controller: Controller, make_agent: Callable[[str], Agent], name: str) -> Agent:
    activation_id, code = controller.create_activation("--limit", "1")
    agent = make_agent(name)
    agent.register(controller, activation_id, code)
    agent.start()
    return agent


def run_with_output(controller: Controller, host: str, blob: Path) -> str:
    """Run ``cat BLOB`` on ``host``; returns the command id once it succeeded with every byte counted."""
    result = controller.opsctl("run", "--host", host, "-o", "json", "--", "cat", str(blob))
    doc = json.loads(result.stdout.splitlines()[0])
    assert doc["state"] == "success", doc
    assert doc["stdout_bytes"] == blob.stat().st_size, doc
    assert "incomplete" not in doc.get("reason", ""), doc
    return latest_command(controller)


def latest_command(controller: Controller) -> str:
    return str(json.loads(controller.opsctl("command", "list", "-o", "json").stdout)[0]["id"])


def read_output(controller: Controller, command_id: str, host: str) -> bytes:
    raw = subprocess.run(
        [PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile), "run", "output", command_id, host],
        capture_output=True,
        timeout=120,
        env=BASE_ENV,
    )
    assert raw.returncode == 0, raw.stderr
    return raw.stdout


def s3_object(seaweed: SeaweedS3, bucket: str, key: str) -> bytes | None:
    status, _, body = seaweed.request("GET", f"/{bucket}/fleet/{key}", timeout=30)
    return body if status == 200 else None


def spooled(controller: Controller) -> list[str]:
    directory = controller.state_dir / "output-spool"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def refused(controller: Controller) -> list[dict]:
    out = controller.opsctl("audit", "list", "--outcome", "refused", "--limit", "1000", "-o", "json").stdout
    return list(json.loads(out))


def assert_agent_untouched(agent: Agent, pid: int, controller: Controller) -> None:
    assert agent.process is not None
    assert agent.process.pid == pid and agent.process.proc.poll() is None, agent.process.output()
    assert "revoked" not in agent.process.output()
    assert controller.host_status(agent.name) == "online"


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(OUTPUT_BYTES))
    return path


def test_wrong_s3_secret_degrades_the_controller_not_the_fleet(
    seaweed: SeaweedS3, make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent], blob: Path
) -> None:
    bucket = seaweed.new_bucket("wrong-secret")
    url = store_url(seaweed, bucket)
    controller = make_controller("wrong-secret", extra_args=["--object-store", url], env=s3_env(seaweed, "rotated"))

    # serve refuses to start, saying which store, which step, what to fix, with the config exit code.
    refusal = serve_once(controller, url, {**BASE_ENV, **s3_env(seaweed, "rotated")})
    assert refusal.returncode == EXIT_CONFIG, refusal.stderr
    assert "refusing to start: object store check failed" in refusal.stderr
    assert seaweed.endpoint in refusal.stderr and bucket in refusal.stderr
    assert "rejected the controller's credentials" in refusal.stderr
    assert "AWS_SECRET_ACCESS_KEY" in refusal.stderr and "--allow-degraded-storage" in refusal.stderr
    assert "Traceback" not in refusal.stderr

    # Told to start degraded, it serves; the agent never learns about the store.
    controller.start(extra_args=["--allow-degraded-storage", "--object-store-retry-interval", "1s"])
    assert controller.process is not None
    controller.process.wait_for_line(r"object store DEGRADED \(credentials\).*to fix: check the access key")
    assert store_health(controller) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert store_health(controller, "") == health_pb2.HealthCheckResponse.SERVING
    assert metric(controller, "fleetops_object_store_up") == 0.0

    agent = enroll(controller, make_agent, "keeps-running")
    assert agent.process is not None
    pid = agent.process.pid
    command_id = run_with_output(controller, "keeps-running", blob)
    second = run_with_output(controller, "keeps-running", blob)  # and the link is still usable
    assert_agent_untouched(agent, pid, controller)
    # Kept locally and readable meanwhile, from the spool.
    assert len([n for n in spooled(controller) if n.endswith(".done")]) == 2
    assert (
        hashlib.sha256(read_output(controller, command_id, "keeps-running")).digest()
        == hashlib.sha256(blob.read_bytes()).digest()
    )
    assert metric(controller, "fleetops_output_spool_pending") == 2.0
    assert s3_object(seaweed, bucket, f"commands/{command_id}/keeps-running/stdout") is None
    assert not [e for e in refused(controller) if e["action"] == "agent.message"]

    # The key is fixed and the controller restarted: the spool drains, nothing lost.
    controller.env = s3_env(seaweed)
    mark = agent.process.line_count()
    controller.start()
    agent.wait_connected(start=mark)
    wait_until(lambda: spooled(controller) == [], 30, "the output spool to drain")
    for cid in (command_id, second):
        assert s3_object(seaweed, bucket, f"commands/{cid}/keeps-running/stdout") == blob.read_bytes()
        assert read_output(controller, cid, "keeps-running") == blob.read_bytes()
    assert store_health(controller) == health_pb2.HealthCheckResponse.SERVING
    assert metric(controller, "fleetops_object_store_up") == 1.0
    assert agent.process.pid == pid and agent.process.proc.poll() is None
    assert "revoked" not in agent.process.output()


def test_missing_bucket_catches_up_when_created_without_a_restart(
    seaweed: SeaweedS3, make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent], blob: Path
) -> None:
    bucket = f"absent-{uuid.uuid4().hex[:12]}"
    url = store_url(seaweed, bucket)
    controller = make_controller("no-bucket", extra_args=["--object-store", url], env=s3_env(seaweed))

    refusal = serve_once(controller, url, {**BASE_ENV, **s3_env(seaweed)})
    assert refusal.returncode == EXIT_CONFIG, refusal.stderr
    assert f"bucket '{bucket}' does not exist at {seaweed.endpoint}" in refusal.stderr
    assert "create the bucket" in refusal.stderr and "Traceback" not in refusal.stderr

    controller.start(extra_args=["--allow-degraded-storage", "--object-store-retry-interval", "1s"])
    assert controller.process is not None
    controller.process.wait_for_line(r"object store DEGRADED \(bucket\).*to fix: create the bucket")
    agent = enroll(controller, make_agent, "steady")
    assert agent.process is not None
    pid = agent.process.pid
    command_id = run_with_output(controller, "steady", blob)
    # Several heartbeats and retry intervals later: one link, no refusals, no flapping.
    connects = agent.process.output().count("connected to")
    wait_until(lambda: metric(controller, "fleetops_agent_heartbeats_total") >= 4, 30, "a few heartbeats")
    assert_agent_untouched(agent, pid, controller)
    assert agent.process.output().count("connected to") == connects == 1
    assert len(refused(controller)) <= 1, refused(controller)  # at most one (never an agent's)
    assert not [e for e in refused(controller) if e["target"] == agent.host_id]
    assert store_health(controller) == health_pb2.HealthCheckResponse.NOT_SERVING

    # Someone creates the bucket: the controller notices by itself and uploads what it kept.
    seaweed.create_bucket(bucket)
    wait_until(lambda: spooled(controller) == [], 30, "the output spool to drain")
    assert s3_object(seaweed, bucket, f"commands/{command_id}/steady/stdout") == blob.read_bytes()
    assert read_output(controller, command_id, "steady") == blob.read_bytes()
    assert store_health(controller) == health_pb2.HealthCheckResponse.SERVING
    assert metric(controller, "fleetops_object_store_up") == 1.0
    controller.process.wait_for_line(r"object store is back")
    # New output now goes straight through.
    after = run_with_output(controller, "steady", blob)
    assert s3_object(seaweed, bucket, f"commands/{after}/steady/stdout") == blob.read_bytes()
    assert_agent_untouched(agent, pid, controller)


def test_deregistering_still_stops_the_agent_even_with_the_store_down(
    seaweed: SeaweedS3, make_controller: Callable[..., Controller], make_agent: Callable[[str], Agent]
) -> None:
    url = store_url(seaweed, f"absent-{uuid.uuid4().hex[:12]}")
    controller = make_controller("revoker", extra_args=["--object-store", url], env=s3_env(seaweed))
    controller.start(extra_args=["--allow-degraded-storage"])
    victim = enroll(controller, make_agent, "victim")
    bystander = enroll(controller, make_agent, "bystander")
    assert victim.process is not None and bystander.process is not None

    controller.opsctl("hosts", "deregister", "victim", "--yes")
    assert victim.process.proc.wait(15) == EXIT_REVOKED  # the live link's Disconnect{revoked}
    assert "revoked" in victim.process.output()
    victim.start(wait_connected=False)
    assert victim.process.proc.wait(15) == EXIT_REVOKED  # the refused reconnect's revocation marker
    assert "deregistered" in victim.process.output()
    assert bystander.process.proc.poll() is None
    assert controller.host_status("bystander") == "online"
    events = refused(controller)
    assert any(e["action"] == "agent.connect" and e["target"] == victim.host_id for e in events)
