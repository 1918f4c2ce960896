"""``opsctl activation create|list``: the register command shell-quoted, JSON in the shared conventions."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common import pki
from fleetops.common.profile import Profile
from fleetops.opsctl import activation, cli
from fleetops.v1 import operator_pb2 as pb

EXPIRES = Timestamp(seconds=1_900_000_000)  # 2030-03-17 17:46:40Z


class FakeClient:
    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        (directory / "ca.pem").write_bytes(pki.cert_pem(pki.CertificateAuthority.create().cert))
        self.profile = Profile(directory, "fleet.example.com:7443", "admin")

    def create_activation(self, **kwargs: Any) -> pb.CreateActivationResponse:
        record = pb.Activation(id="a-1", registration_limit=kwargs["limit"], expires_at=EXPIRES)
        return pb.CreateActivationResponse(activation=record, code="Abc123")

    def list_activations(self) -> list[pb.Activation]:
        return [pb.Activation(id="a-1", registration_limit=2, locked=True, failed_codes=1, expires_at=EXPIRES)]


def run(client: FakeClient, *argv: str) -> int:
    args = cli.build_parser().parse_args(list(argv))
    return int(args.func(client, args))


def test_create_prints_a_register_command_a_shell_takes_as_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeClient(tmp_path / "profile")
    assert run(client, "activation", "create", "--limit", "2") == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "fleetops-agent register" in x)
    argv = shlex.split(line)
    assert argv[:4] == ["fleetops-agent", "register", "--controller", "fleet.example.com:7443"]
    assert argv[argv.index("--activation-code") + 1] == "Abc123"


def test_create_json_is_the_record_with_the_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(tmp_path / "profile")
    assert run(client, "activation", "create", "--limit", "2", "-o", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["id"] == "a-1" and doc["code"] == "Abc123" and doc["registration_limit"] == 2
    assert doc["expires_at"] == "2030-03-17T17:46:40Z"
    assert shlex.split(doc["register_command"])[1] == "register"


def test_list_counts_wrong_codes_in_the_singular_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient(tmp_path / "profile")
    assert run(client, "activation", "list") == 0
    assert "locked (1 wrong code)" in capsys.readouterr().out
    assert activation.status(pb.Activation(locked=True, failed_codes=3)) == "locked (3 wrong codes)"
