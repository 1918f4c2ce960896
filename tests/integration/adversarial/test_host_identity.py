"""Issue 11 §3, repeated as the attacker did it: a host must not choose its own identity attributes.

Real controller and agents. The activation's tags are authoritative (a host sets a tag only under a
key the activation allows), host-set tags never satisfy a role's host selector, a hostile reported
host name gets a generated one, and host-reported text is printed with control characters escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from fleetops.common import pki
from fleetops.v1 import common_pb2, enrollment_pb2, enrollment_pb2_grpc

from harness import Agent, Controller

pytestmark = pytest.mark.slow

RACK_OPS = """
name: rack-ops
description: run commands on the hosts of rack r1
allow:
  - actions: [command.run, hosts.read]
    hosts: "rack=r1"
    logins: [daemon]
"""
HOSTILE = "web-9\n\x1b[2K\x1b[32mdb-1  h-0000  online\x1b[0m"
HOST_ID = re.compile(r"h-[0-9a-f]{20}")


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    c = Controller(tmp_path_factory.mktemp("host-identity") / "c", name="host identity controller")
    c.start()
    yield c
    c.stop()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for a in started:
        a.stop()


def activations(controller: Controller) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in controller.opsctl_json("activation", "list")}


def raw_register(controller: Controller, activation_id: str, code: str, *, hostname: str, name: str = "") -> Any:
    """Register as a forged agent would: any inventory, no agent code in between."""
    ca = (controller.state_dir / "ca" / "ca.pem").read_bytes()
    with grpc.secure_channel(
        f"127.0.0.1:{controller.ports['enroll']}", grpc.ssl_channel_credentials(root_certificates=ca)
    ) as channel:
        return enrollment_pb2_grpc.EnrollmentServiceStub(channel).Register(
            enrollment_pb2.RegisterRequest(
                activation_id=activation_id,
                activation_code=code,
                csr_pem=pki.build_csr(pki.generate_private_key(), "forged"),
                inventory=common_pb2.Inventory(hostname=hostname, os_family="linux", os_name="Evil\x1b]0;pwned\x07OS"),
                name=name,
            ),
            timeout=15,
        )


def test_a_host_cannot_override_or_add_tags_its_activation_does_not_allow(
    controller: Controller, agents: list[Agent], tmp_path: Path
) -> None:
    activation_id, code = controller.create_activation("--limit", "2", tags={"env": "dev"})
    intruder = Agent(tmp_path, "intruder")
    agents.append(intruder)
    refused = intruder.register(controller, activation_id, code, {"env": "prod", "role": "db"}, check=False)
    assert refused.returncode == 5, refused.stderr
    assert "may not set the tags env, role" in refused.stderr and "the activation sets env=dev" in refused.stderr
    assert "--allow-host-tag" in refused.stderr and "Traceback" not in refused.stderr
    # Nothing was registered, no slot was used, and the refusal is in the audit log naming the keys.
    assert controller.hosts() == [] and activations(controller)[activation_id]["registrations_count"] == 0
    audited = controller.opsctl_json("audit", "list", "--action", "host.register", "--outcome", "refused")
    assert any("may not set the tags env, role" in e["details_json"] for e in audited), audited

    # The same host without --tag gets exactly the activation's tags.
    intruder.register(controller, activation_id, code)
    (host,) = controller.hosts()
    assert host["name"] == "intruder" and host["tags"] == {"env": "dev"} and not host.get("host_tags")


def test_allowed_host_tags_select_hosts_but_never_grant_access(
    controller: Controller, agents: list[Agent], tmp_path: Path
) -> None:
    activation_id, code = controller.create_activation("--allow-host-tag", "rack", tags={"env": "dev"})
    listed = activations(controller)[activation_id]
    assert listed["allowed_host_tags"] == ["rack"] and listed["default_tags"] == {"env": "dev"}
    table = controller.opsctl("activation", "list").stdout
    assert "HOSTS MAY SET" in table and re.search(rf"{activation_id}.*env=dev\s+rack\b", table)

    racked = Agent(tmp_path, "racked")
    agents.append(racked)
    racked.register(controller, activation_id, code, {"rack": "r1"})
    racked.start()
    doc = controller.opsctl_json("hosts", "show", "racked")
    assert doc["tags"] == {"env": "dev", "rack": "r1"} and doc["host_tags"] == {"rack": "r1"}
    assert "rack=r1*" in controller.opsctl("hosts", "show", "racked").stdout
    # Targeting sees the host's own tags...
    assert [h["name"] for h in controller.hosts("--target", "rack=r1")] == ["racked"]

    # ...access decisions do not: a role for rack=r1 does not reach a host that put itself there.
    role_file = tmp_path / "rack-ops.yaml"
    role_file.write_text(RACK_OPS)
    controller.opsctl("admin", "role", "create", "rack-ops", "--file", str(role_file))
    dave = controller.issue_profile("dave", tmp_path / "dave", roles=("rack-ops",))
    run = ["run", "--host", "racked", "--as", "daemon", "-o", "json", "--", "id", "-un"]
    denied = controller.opsctl(*run, profile=dave, check=False)
    # dave may not see racked either: the refusal says it is outside his access, and nothing more.
    assert denied.returncode == 5 and "outside your access" in denied.stderr, denied.stderr
    assert controller.opsctl("hosts", "list", "-o", "json", profile=dave).stdout.strip() == "[]"

    # Once an operator sets the tag, it is operator-set and the role applies.
    controller.opsctl("hosts", "tag", "racked", "rack=r1")
    doc = controller.opsctl_json("hosts", "show", "racked")
    assert doc["tags"] == {"env": "dev", "rack": "r1"} and not doc.get("host_tags")
    ran = [json.loads(line) for line in controller.opsctl(*run, profile=dave).stdout.splitlines()]
    assert [(d["host"], d["stdout"]) for d in ran] == [("racked", "daemon\n")]


def test_a_hostile_reported_host_name_gets_a_generated_one(controller: Controller) -> None:
    before = {h["id"] for h in controller.hosts()}
    activation_id, code = controller.create_activation("--limit", "3")
    escaped = raw_register(controller, activation_id, code, hostname=HOSTILE)
    huge = raw_register(controller, activation_id, code, hostname="a" * 10_000)
    for response in (escaped, huge):
        assert HOST_ID.fullmatch(response.hostname) and response.hostname == response.host_id

    # An explicit bad --name is refused, not replaced (the message shows it escaped and short).
    with pytest.raises(grpc.RpcError) as info:
        raw_register(controller, activation_id, code, hostname="ok", name="x" * 300)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "300 characters" in (info.value.details() or "")

    new = [h for h in controller.hosts() if h["id"] not in before]
    assert sorted(h["name"] for h in new) == sorted((escaped.host_id, huge.host_id))
    table = controller.opsctl("hosts", "list").stdout
    assert "\x1b" not in table and "\x07" not in table
    assert len(table.splitlines()) == 1 + len(before) + 2  # no row drawn by a name
    shown = controller.opsctl("hosts", "show", escaped.host_id).stdout
    assert "\x1b" not in shown and "\\x1b[32mdb-1" in shown and "Evil\\x1b]0;pwned\\x07OS" in shown
    # --raw opts out: the operator asked for the bytes as they came.
    assert "\x1b[32m" in controller.opsctl("hosts", "show", escaped.host_id, "--raw").stdout
    # The audit event keeps what the host reported, escaped and short, and why it was not used.
    events = controller.opsctl_json("audit", "list", "--action", "host.register", "--outcome", "ok")
    details = [json.loads(e["details_json"]) for e in events if e["target"] == huge.host_id]
    assert details and "10000 characters" in details[0]["reported_hostname_refused"]
    assert len(details[0]["reported_hostname"]) < 100
