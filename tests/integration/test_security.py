"""Bad input and security: every refusal is clear, audited, and loses nothing accepted before."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from fleetops.common import pki
from fleetops.common.profile import write_profile
from fleetops.v1 import enrollment_pb2, enrollment_pb2_grpc

from harness import Agent, Controller, wait_until

pytestmark = pytest.mark.slow

EXIT_REVOKED = 78


def audit(controller: Controller, *args: str) -> list[dict]:
    return json.loads(controller.opsctl("audit", "list", "--limit", "1000", *args, "-o", "json").stdout)


def test_wrong_code_expired_and_exhausted_activations_are_refused(
    controller: Controller, make_agent: Callable[[str], Agent]
) -> None:
    activation_id, code = controller.create_activation("--limit", "1", "--tag", "env=prod")
    wrong = make_agent("wrong").register(controller, activation_id, code + "x", check=False)
    assert wrong.returncode == 5 and "activation id or code is wrong" in wrong.stderr and "hint:" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    first = make_agent("first")
    first.register(controller, activation_id, code)
    exhausted = make_agent("second").register(controller, activation_id, code, check=False)
    assert exhausted.returncode == 5 and "reached its registration limit of 1" in exhausted.stderr

    expiring_id, expiring_code = controller.create_activation("--expires", "1s")
    wait_until(
        lambda: (
            json.loads(controller.opsctl("activation", "list", "-o", "json").stdout)
            and any(
                a["id"] == expiring_id and a.get("expired")
                for a in json.loads(controller.opsctl("activation", "list", "-o", "json").stdout)
            )
        ),
        5,
        "activation to expire",
    )
    expired = make_agent("late").register(controller, expiring_id, expiring_code, check=False)
    assert expired.returncode == 5 and "expired" in expired.stderr

    # The host accepted earlier is still there, with the activation's default tags.
    hosts = controller.hosts()
    assert [h["name"] for h in hosts] == ["first"] and hosts[0]["tags"] == {"env": "prod"}
    refused = audit(controller, "--action", "host.register", "--outcome", "refused")
    assert len(refused) == 3


def test_garbage_csr_is_refused_without_using_the_activation(
    controller: Controller, make_agent: Callable[[str], Agent]
) -> None:
    activation_id, code = controller.create_activation("--limit", "1")
    ca_pem = (controller.state_dir / "ca" / "ca.pem").read_bytes()
    with grpc.secure_channel(
        f"127.0.0.1:{controller.ports['enroll']}", grpc.ssl_channel_credentials(ca_pem)
    ) as channel:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Register(
                enrollment_pb2.RegisterRequest(activation_id=activation_id, activation_code=code, csr_pem=b"not a csr"),
                timeout=10,
            )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "CSR" in info.value.details() or "certificate request" in info.value.details()
    # the activation's single registration is still available
    make_agent("ok").register(controller, activation_id, code)


def test_ca_fingerprint_pinning(controller: Controller, make_agent: Callable[[str], Agent]) -> None:
    activation_id, code = controller.create_activation("--limit", "1")
    wrong = make_agent("pinned-wrong").register(controller, activation_id, code, pin="ab" * 32, check=False)
    assert wrong.returncode == 5 and "fingerprint" in wrong.stderr
    make_agent("pinned").register(controller, activation_id, code, pin=controller.ca_fingerprint())


def test_deregistered_host_is_dropped_at_once_and_cannot_reconnect(
    controller: Controller, enrolled: Callable[..., Agent]
) -> None:
    agent = enrolled("victim")
    enrolled("bystander")
    controller.opsctl("hosts", "deregister", "victim", "--yes")
    assert agent.process is not None
    # The controller closes the live link itself; the agent exits without a restart loop.
    assert agent.process.proc.wait(10) == EXIT_REVOKED
    assert "revoked" in agent.process.output()
    assert controller.host_status("victim") == "deregistered"
    agent.start(wait_connected=False)
    assert agent.process.proc.wait(15) == EXIT_REVOKED
    assert "deregistered" in agent.process.output()
    assert controller.host_status("bystander") == "online"
    refused = audit(controller, "--action", "agent.connect", "--outcome", "refused")
    assert any(e["target"] == agent.host_id for e in refused)


def test_a_host_claiming_another_hosts_id_is_refused_and_audited(
    controller: Controller, enrolled: Callable[..., Agent]
) -> None:
    victim = enrolled("victim2")
    impostor = enrolled("impostor", start=False)
    meta = impostor.state_dir / "agent.json"
    doc = json.loads(meta.read_text())
    doc["host_id"] = victim.host_id
    meta.write_text(json.dumps(doc))
    impostor.start(wait_connected=False)
    assert impostor.process is not None
    assert impostor.process.proc.wait(15) == EXIT_REVOKED
    events = audit(controller, "--action", "agent.connect", "--outcome", "refused")
    assert any(impostor.host_id in e["actor"] and victim.host_id in e["details_json"] for e in events)
    assert controller.host_status("victim2") == "online"


def test_client_certificate_from_a_foreign_ca_is_rejected(
    controller: Controller, make_controller: Callable[..., Controller], tmp_path: Path
) -> None:
    other = make_controller("other")
    other.init()
    foreign_profile = other.issue_profile("mallory", tmp_path / "foreign", address=controller.address)
    (foreign_profile / "ca.pem").write_bytes((controller.state_dir / "ca" / "ca.pem").read_bytes())
    result = controller.opsctl("hosts", "list", profile=foreign_profile, check=False)
    assert result.returncode == 6 and "cannot reach" in result.stderr and "Traceback" not in result.stderr


def test_expired_operator_certificate_is_rejected(controller: Controller, tmp_path: Path) -> None:
    authority = pki.CertificateAuthority.load(controller.state_dir / "ca")
    key = pki.generate_private_key()
    cert = authority.issue_operator_certificate(pki.load_csr(pki.build_csr(key, "old")), "old", timedelta(seconds=1))
    profile = write_profile(
        tmp_path / "expired",
        controller=controller.address,
        operator="old",
        key_pem=pki.private_key_pem(key),
        cert_pem=pki.cert_pem(cert),
        ca_pem=pki.cert_pem(authority.cert),
    )
    wait_until(lambda: datetime.now(UTC) > cert.not_valid_after_utc, 5, "the certificate to expire")
    result = controller.opsctl("hosts", "list", profile=profile.directory, check=False)
    assert result.returncode == 6 and "cannot reach" in result.stderr and "Traceback" not in result.stderr


def test_host_certificate_cannot_call_operator_service(
    controller: Controller, enrolled: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = enrolled("sneaky", start=False)
    profile = tmp_path / "host-as-operator"
    write_profile(
        profile,
        controller=controller.address,
        operator="sneaky",
        key_pem=(agent.state_dir / "host.key").read_bytes(),
        cert_pem=(agent.state_dir / "host.pem").read_bytes(),
        ca_pem=(agent.state_dir / "ca.pem").read_bytes(),
    )
    result = controller.opsctl("hosts", "list", profile=profile, check=False)
    assert result.returncode == 5 and "not an operator identity" in result.stderr
    denied = audit(controller, "--outcome", "denied")
    assert any(e["actor"] == f"host:{agent.host_id}" and e["action"] == "hosts.list" for e in denied)


def test_agent_waits_for_a_controller_that_is_down_without_flooding_the_log(
    controller: Controller, make_agent: Callable[[str], Agent]
) -> None:
    activation_id, code = controller.create_activation()
    agent = make_agent("patient")
    agent.register(controller, activation_id, code)
    controller.stop()
    agent.start(wait_connected=False)
    assert agent.process is not None
    agent.process.wait_for_line(r"unreachable .* retrying in", timeout=15)
    controller.start()  # on the same ports
    agent.wait_connected(timeout=90, start=agent.process.next_index)
    assert agent.process.proc.poll() is None
    warnings = [line for line in agent.process.lines if "unreachable" in line]
    assert len(warnings) <= 2, warnings  # one per minute at most, not one per attempt
    assert controller.host_status("patient") == "online"
