"""``opsctl admin user|role``: the requests on the wire, the output, and role files.

The commands run on a real :class:`OperatorClient` whose stub is a recorder, so the tests see the
protobuf requests the controller would receive.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.profile import Profile
from fleetops.opsctl import cli
from fleetops.opsctl.cli import build_parser
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import enrollment_pb2
from fleetops.v1 import operator_pb2 as pb

NOW = int(time.time())
TOKEN = "0a1b2c3d4e5f6a7b.SeCrEt_token-x." + "ab" * 32

OPS_YAML = """\
name: ops
description: Web operators
allow:
  - actions: [command.run, session.start]
    hosts: "role=web"
    logins: [deploy]
  - actions: [hosts.read]
deny:
  - actions: [session.start]
    hosts: "env=prod"
    logins: [root]
"""


def user(name: str, *roles: str, **fields: Any) -> pb.User:
    return pb.User(name=name, roles=list(roles), **fields)


class RecordingStub:
    """Every stub method records its request and returns the canned response for that method."""

    def __init__(self, responses: dict[str, Any]) -> None:
        self.responses = responses
        self.requests: list[tuple[str, Any]] = []

    def __getattr__(self, method: str) -> Any:
        def call(request: Any, timeout: float | None = None) -> Any:
            self.requests.append((method, request))
            response = self.responses.get(method)
            if isinstance(response, Exception):
                raise response
            return response

        return call


def make_client(responses: dict[str, Any] | None = None) -> tuple[OperatorClient, RecordingStub]:
    client = OperatorClient.__new__(OperatorClient)  # no channel: the stub is the recorder
    client.profile = Profile(Path("/nonexistent"), "fleet.example.com:7443", "root-admin")
    client._timeout = 1.0
    stub = RecordingStub(responses or {})
    client._stub = stub
    return client, stub


def run(client: OperatorClient, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(client, args))


def token_response(name: str = "alice", login_command: str = "") -> pb.CreateUserResponse:
    return pb.CreateUserResponse(
        user=user(name, "ops"),
        token=TOKEN,
        token_expires_at=Timestamp(seconds=1_900_000_000),
        login_command=login_command,
    )


# ---- users ---------------------------------------------------------------------------------------


def test_user_create_sends_name_roles_and_ttl_and_prints_the_token_once(capsys: pytest.CaptureFixture[str]) -> None:
    login = f"opsctl login --controller fleet.example.com:7443 --token {TOKEN}"
    client, stub = make_client({"CreateUser": token_response(login_command=login)})
    assert (
        run(client, "admin", "user", "create", "alice", "--role", "ops", "--role", "auditor,ops", "--token-ttl", "2h")
        == 0
    )
    assert stub.requests == [
        ("CreateUser", pb.CreateUserRequest(name="alice", roles=["ops", "auditor"], token_ttl_seconds=7200))
    ]
    out = capsys.readouterr().out
    assert out.count(TOKEN) == 2  # the token line and the login command
    assert f"login token: {TOKEN}" in out
    assert "2030-03-17 17:46:40Z" in out and "shown only now" in out
    assert f"  {login}\n" in out


def test_user_create_without_ttl_leaves_the_default_to_the_controller(capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = make_client({"CreateUser": token_response()})
    run(client, "admin", "user", "create", "alice", "--role", "ops")
    assert stub.requests[0][1].token_ttl_seconds == 0
    # no login command from the controller: opsctl writes one with this profile's controller
    assert f"opsctl login --controller fleet.example.com:7443 --token {TOKEN}" in capsys.readouterr().out


def test_user_create_json(capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = make_client({"CreateUser": token_response()})
    run(client, "admin", "user", "create", "alice", "--role", "ops", "-o", "json")
    doc = json.loads(capsys.readouterr().out)
    assert (
        doc["token"] == TOKEN and doc["user"]["name"] == "alice" and doc["token_expires_at"] == "2030-03-17T17:46:40Z"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--role", "ops", "--token-ttl", "soon"], "bad duration"),
        (["--role", "ops", "--token-ttl", "0s"], "must be positive"),
        (["--role", "ops,,x"], "empty role name"),
    ],
)
def test_bad_user_flags_are_refused_before_sending(argv: list[str], message: str) -> None:
    client, stub = make_client()
    with pytest.raises(InvalidInput, match=message):
        run(client, "admin", "user", "create", "alice", *argv)
    assert stub.requests == []


def test_user_create_needs_a_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["admin", "user", "create", "alice"])
    assert "--role" in capsys.readouterr().err


def test_user_list(capsys: pytest.CaptureFixture[str]) -> None:
    users = [
        user("bob", "auditor", disabled=True),
        user(
            "alice",
            "ops",
            "auditor",
            last_login_at=Timestamp(seconds=NOW - 7200),
            certificate_expires_at=Timestamp(seconds=NOW + 3600),
        ),
        user("carol", certificate_expires_at=Timestamp(seconds=NOW - 60)),
    ]
    client, stub = make_client({"ListUsers": pb.ListUsersResponse(users=users)})
    run(client, "admin", "user", "list")
    assert stub.requests == [("ListUsers", pb.ListUsersRequest())]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "ROLES", "STATE", "LAST", "LOGIN", "CERT", "EXPIRES"]
    assert lines[1].split()[:4] == ["alice", "ops,auditor", "enabled", "2h"]
    assert lines[2].split() == ["bob", "auditor", "disabled", "never", "-"]
    assert lines[3].split()[:4] == ["carol", "-", "enabled", "never"] and lines[3].endswith("(expired)")

    run(client, "admin", "user", "list", "-o", "json")
    assert [u["name"] for u in json.loads(capsys.readouterr().out)] == ["bob", "alice", "carol"]


@pytest.mark.parametrize(
    "argv, request_, said",
    [
        (
            ["disable", "alice"],
            pb.UpdateUserRequest(name="alice", disabled=True, set_disabled=True),
            "refused from now on",
        ),
        (
            ["enable", "alice"],
            pb.UpdateUserRequest(name="alice", disabled=False, set_disabled=True),
            "user token alice",
        ),
        (
            ["roles", "alice", "--role", "ops", "--role", "auditor"],
            pb.UpdateUserRequest(name="alice", roles=["ops", "auditor"], set_roles=True),
            "now has the roles",
        ),
    ],
)
def test_user_updates(
    argv: list[str], request_: pb.UpdateUserRequest, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stub = make_client({"UpdateUser": user("alice", "ops", "auditor")})
    assert run(client, "admin", "user", *argv) == 0
    assert stub.requests == [("UpdateUser", request_)]
    assert said in capsys.readouterr().out


def test_user_delete(capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = make_client({"DeleteUser": pb.DeleteUserResponse()})
    run(client, "admin", "user", "delete", "alice")
    assert stub.requests == [("DeleteUser", pb.DeleteUserRequest(name="alice"))]
    assert "deleted user alice" in capsys.readouterr().out


def test_user_token(capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = make_client({"IssueLoginToken": token_response()})
    run(client, "admin", "user", "token", "alice", "--token-ttl", "1d")
    assert stub.requests == [("IssueLoginToken", pb.IssueLoginTokenRequest(name="alice", token_ttl_seconds=86400))]
    out = capsys.readouterr().out
    assert f"login token: {TOKEN}" in out and "Give alice this command" in out


def test_a_controller_refusal_is_an_error_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _ = make_client({"DeleteUser": NotFound("no user 'zed'", "list them with opsctl admin user list")})
    client.close = lambda: None  # type: ignore[method-assign]
    monkeypatch.setattr(cli.OperatorClient, "from_profile", classmethod(lambda cls, name=None: client))
    assert cli.main(["admin", "user", "delete", "zed"]) == 3
    err = capsys.readouterr().err
    assert "error: no user 'zed'" in err and "hint: list them with opsctl admin user list" in err


def test_renew_operator_certificate_request() -> None:
    answer = enrollment_pb2.OperatorCertificate(operator="alice", certificate_pem=b"cert")
    client, stub = make_client({"RenewOperatorCertificate": answer})
    assert client.renew_operator_certificate(b"csr") == answer
    assert stub.requests == [("RenewOperatorCertificate", pb.RenewOperatorCertificateRequest(csr_pem=b"csr"))]


# ---- roles ---------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def echo_role(method: str) -> dict[str, Any]:
    return {method: pb.Role(name="ops", document_json=json.dumps(yaml.safe_load(OPS_YAML)))}


def test_role_create_from_yaml_sends_the_canonical_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = make_client(echo_role("CreateRole"))
    assert run(client, "admin", "role", "create", "ops", "--file", write(tmp_path, "ops.yaml", OPS_YAML)) == 0
    ((method, request),) = stub.requests
    assert method == "CreateRole" and request.name == "ops"
    assert json.loads(request.document_json) == {
        "name": "ops",
        "description": "Web operators",
        "allow": [
            {"actions": ["command.run", "session.start"], "hosts": "role=web", "logins": ["deploy"]},
            {"actions": ["hosts.read"], "hosts": "", "logins": []},
        ],
        "deny": [{"actions": ["session.start"], "hosts": "env=prod", "logins": ["root"]}],
    }
    assert capsys.readouterr().out.strip() == "created role ops (2 allow, 1 deny)"


def test_a_json_role_file_gives_the_same_document(tmp_path: Path) -> None:
    yaml_client, yaml_stub = make_client(echo_role("UpdateRole"))
    json_client, json_stub = make_client(echo_role("UpdateRole"))
    run(yaml_client, "admin", "role", "update", "ops", "-f", write(tmp_path, "ops.yaml", OPS_YAML))
    as_json = json.dumps(yaml.safe_load(OPS_YAML), indent=2)
    run(json_client, "admin", "role", "update", "ops", "-f", write(tmp_path, "ops.json", as_json))
    assert yaml_stub.requests == json_stub.requests
    assert yaml_stub.requests[0][0] == "UpdateRole"


def test_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(OPS_YAML))
    client, stub = make_client(echo_role("CreateRole"))
    run(client, "admin", "role", "create", "ops", "-f", "-")
    assert json.loads(stub.requests[0][1].document_json)["name"] == "ops"


@pytest.mark.parametrize(
    "filename, text, message",
    [
        ("bad.yaml", "name: ops\nallow:\n  - actions: [command.run\n", r"bad.yaml: not valid YAML at line 4"),
        ("bad.json", '{\n  "name": "ops",\n  "allow": [\n}\n', r"bad.json: not valid JSON at line 4"),
        ("empty.yaml", "", r"empty.yaml is empty"),
        ("list.yaml", "- name: ops\n", r"list.yaml: a role is a mapping"),
        ("twice.yaml", "name: ops\ndeny: []\ndeny: []\n", r"twice.yaml: not valid YAML at line 3.*given twice"),
        (
            "action.yaml",
            "name: ops\nallow:\n  - actions: [comand.run]\n",
            r"action.yaml: .*allow\[0\].actions: unknown action",
        ),
        ("key.yaml", "name: ops\npermissions: []\n", r"key.yaml: unknown key\(s\) in role: permissions"),
        ("other.yaml", "name: web\n", r"other.yaml defines role 'web', not 'ops'"),
        ("noname.yaml", "allow: []\n", r"noname.yaml: the role has no name"),
    ],
)
def test_bad_role_files_are_invalid_input_naming_the_file(
    tmp_path: Path, filename: str, text: str, message: str
) -> None:
    client, stub = make_client(echo_role("CreateRole"))
    with pytest.raises(InvalidInput, match=message) as err:
        run(client, "admin", "role", "create", "ops", "--file", write(tmp_path, filename, text))
    assert stub.requests == []
    if filename == "noname.yaml":
        assert err.value.hint.startswith("add a line `name: ops`")


def test_a_missing_role_file(tmp_path: Path) -> None:
    client, _ = make_client()
    with pytest.raises(InvalidInput, match="cannot read role file .*nope.yaml"):
        run(client, "admin", "role", "create", "ops", "--file", str(tmp_path / "nope.yaml"))


def test_a_bad_role_file_is_an_error_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _ = make_client()
    client.close = lambda: None  # type: ignore[method-assign]
    monkeypatch.setattr(cli.OperatorClient, "from_profile", classmethod(lambda cls, name=None: client))
    path = write(tmp_path, "ops.yaml", "name: ops\nallow:\n  - actions: [command.run]\n    hosts: env=prod,\n")
    assert cli.main(["admin", "role", "create", "ops", "--file", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and "hint:" in err and "Traceback" not in err


def roles_response() -> pb.ListRolesResponse:
    admin_doc = {"name": "admin", "description": "Everything.", "allow": [{"actions": ["*"], "logins": ["*", "root"]}]}
    return pb.ListRolesResponse(
        roles=[
            pb.Role(name="ops", document_json=json.dumps(yaml.safe_load(OPS_YAML))),
            pb.Role(name="admin", document_json=json.dumps(admin_doc), builtin=True),
            pb.Role(name="weird", document_json="not json"),
        ]
    )


def test_role_list(capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = make_client({"ListRoles": roles_response()})
    run(client, "admin", "role", "list")
    assert stub.requests == [("ListRoles", pb.ListRolesRequest())]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "BUILT-IN", "RULES", "DESCRIPTION"]
    assert lines[1].split() == ["admin", "yes", "1", "allow,", "0", "deny", "Everything."]
    assert lines[2].split() == ["ops", "-", "2", "allow,", "1", "deny", "Web", "operators"]
    assert lines[3].split() == ["weird", "-", "0", "allow,", "0", "deny"]

    run(client, "admin", "role", "list", "-o", "json")
    docs = json.loads(capsys.readouterr().out)
    assert docs[0]["document"]["name"] == "ops" and docs[2]["document"] is None


def test_role_show(capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = make_client({"GetRole": roles_response().roles[0]})
    run(client, "admin", "role", "show", "ops")
    assert stub.requests == [("GetRole", pb.GetRoleRequest(name="ops"))]
    out = capsys.readouterr().out
    assert "description  Web operators" in out and "built-in     no" in out
    assert "  allow[0]: command.run, session.start on role=web as deploy" in out
    assert "  allow[1]: hosts.read on every host" in out
    assert "  deny[0]: session.start on env=prod as root" in out

    run(client, "admin", "role", "show", "ops", "-o", "json")
    assert json.loads(capsys.readouterr().out)["document"]["description"] == "Web operators"


def test_role_show_yaml_reads_back_as_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = make_client({"GetRole": roles_response().roles[0]})
    run(client, "admin", "role", "show", "ops", "-o", "yaml")
    shown = capsys.readouterr().out
    assert shown.startswith("name: ops\ndescription: Web operators\n")
    creator, stub = make_client(echo_role("CreateRole"))
    run(creator, "admin", "role", "create", "ops", "-f", write(tmp_path, "shown.yaml", shown))
    assert json.loads(stub.requests[0][1].document_json)["deny"][0]["logins"] == ["root"]


def test_role_delete(capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = make_client({"DeleteRole": pb.DeleteRoleResponse()})
    run(client, "admin", "role", "delete", "ops")
    assert stub.requests == [("DeleteRole", pb.GetRoleRequest(name="ops"))]
    assert capsys.readouterr().out.strip() == "deleted role ops"
