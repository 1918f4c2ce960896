"""What a request attempted, as audit details: command lines and digests, never environment values."""

from __future__ import annotations

import hashlib

from fleetops.controller.rpc import attempted
from fleetops.controller.rpc.attempted import ARGV_KEPT_BYTES, HOSTS_KEPT
from fleetops.v1 import operator_pb2


def run_request(**fields: object) -> operator_pb2.RunCommandRequest:
    return operator_pb2.RunCommandRequest(**fields)  # type: ignore[arg-type]  # test input


def test_a_run_records_its_command_line_target_and_env_names_but_not_values() -> None:
    request = run_request(
        target=operator_pb2.Target(selector="env=prod"),
        argv=["sh", "-c", "uptime"],
        env={"API_TOKEN": "s3cret-value", "DEBUG": "1"},
        run_as="root",
        comment="ticket 42",
    )
    details = attempted.details("command.run", request)
    assert details == {
        "argv": ["sh", "-c", "uptime"],
        "selector": "env=prod",
        "run_as": "root",
        "env": ["API_TOKEN", "DEBUG"],
        "comment": "ticket 42",
    }
    assert "s3cret-value" not in repr(details)


def test_a_script_is_recorded_as_its_digest_and_size() -> None:
    body = b"#!/bin/sh\necho hi\n"
    details = attempted.details("command.run", run_request(script=body, target=operator_pb2.Target(hosts=["web-1"])))
    assert details["script_sha256"] == hashlib.sha256(body).hexdigest() and details["script_bytes"] == len(body)
    assert details["hosts"] == ["web-1"] and "echo hi" not in repr(details)
    assert "run_as" not in details  # not given: the agent's account (authz records the login it checked)


def test_huge_input_is_cut_and_says_so() -> None:
    argv = ["x" * 1000] * 100
    hosts = [f"h{i}" for i in range(1000)]
    details = attempted.details("command.run", run_request(argv=argv, target=operator_pb2.Target(hosts=hosts)))
    assert details["argv_truncated"] and details["argv_items"] == 100
    assert sum(len(a) + 1 for a in details["argv"]) <= ARGV_KEPT_BYTES + 1
    assert len(details["hosts"]) == HOSTS_KEPT and details["hosts_truncated"] and details["host_count"] == 1000


def test_the_answer_adds_the_hosts_a_selector_resolved_to() -> None:
    attempt = attempted.details("command.run", run_request(argv=["id"], target=operator_pb2.Target(all=True)))
    response = operator_pb2.RunCommandResponse(host_names=["web-1", "db-1"])
    done = attempted.with_response(attempt, response)
    assert done["hosts"] == ["web-1", "db-1"] and done["host_count"] == 2 and done["all"] is True
    assert attempted.with_response(attempt, operator_pb2.Host()) == attempt


def test_patch_window_and_tag_changes() -> None:
    patch = operator_pb2.PatchOperationRequest(target=operator_pb2.Target(selector="os=linux"), reboot="never")
    assert attempted.details("patch.install", patch) == {
        "operation": "install",
        "selector": "os=linux",
        "reboot": "never",
    }
    task = operator_pb2.WindowTask(window="sun", type="run", argv=["reboot"], target=operator_pb2.Target(all=True))
    assert attempted.details("window.task.add", task) == {
        "window": "sun",
        "task_type": "run",
        "argv": ["reboot"],
        "all": True,
    }
    off = operator_pb2.SetWindowEnabledRequest(name="sun", enabled=False)
    assert attempted.details("window.enable", off) == {"window": "sun", "enabled": False}
    tag = operator_pb2.TagHostRequest(host="web-1", set={"team": "blue"}, remove=["old"])
    assert attempted.details("hosts.tag", tag) == {"host": "web-1", "set": {"team": "blue"}, "remove": ["old"]}


def test_secrets_are_never_read() -> None:
    renew = operator_pb2.RenewOperatorCertificateRequest(csr_pem=b"-----BEGIN CERTIFICATE REQUEST-----")
    assert attempted.details("user.renew", renew) == {}
    session = operator_pb2.StartSessionRequest(host="web-1", env={"LANG": "C"})
    assert attempted.details("session.start", session) == {"host": "web-1"}


def test_reads_name_the_host_they_concern() -> None:
    assert attempted.details("hosts.show", operator_pb2.GetHostRequest(host="web-1")) == {"host": "web-1"}
    assert attempted.details("whoami", operator_pb2.WhoAmIRequest()) == {}
    assert attempted.details("x", object()) == {}
