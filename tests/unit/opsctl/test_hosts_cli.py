"""``opsctl hosts tag|deregister``: which request goes on the wire, and what is printed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.common.profile import Profile
from fleetops.opsctl.cli import build_parser
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import operator_pb2 as pb


class RecordingStub:
    def __init__(self, responses: dict[str, Any]) -> None:
        self.responses = responses
        self.requests: list[tuple[str, Any]] = []

    def __getattr__(self, method: str) -> Any:
        def call(request: Any, timeout: float | None = None) -> Any:
            self.requests.append((method, request))
            return self.responses[method]

        return call


def make_client(responses: dict[str, Any]) -> tuple[OperatorClient, RecordingStub]:
    client = OperatorClient.__new__(OperatorClient)
    client.profile = Profile(Path("/nonexistent"), "fleet.example.com:7443", "admin")
    client._timeout = 1.0
    stub = RecordingStub(responses)
    client._stub = stub
    return client, stub


def run(client: OperatorClient, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(client, args))


CHANGES = pb.TagHostsResponse(
    dry_run=True,
    hosts=[
        pb.HostTagChange(
            host_id="h-1",
            host_name="dev-web",
            before={"env": "dev"},
            after={"env": "dev", "team": "blue"},
            changed=True,
        ),
        pb.HostTagChange(host_id="h-2", host_name="dev-db", before={"team": "blue"}, after={"team": "blue"}),
    ],
)


def test_a_target_tags_every_host_at_once_and_a_dry_run_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    client, stub = make_client({"TagHosts": CHANGES})
    assert run(client, "hosts", "tag", "--target", "env=dev", "team=blue", "old-", "--remove", "x", "--dry-run") == 0
    target = pb.Target(selector="env=dev")
    assert stub.requests == [
        ("TagHosts", pb.TagHostsRequest(target=target, set={"team": "blue"}, remove=["old", "x"], dry_run=True))
    ]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "would change the tags of 1 host; 1 host already as asked (dry run: nothing was changed)"
    assert out[1].split() == ["HOST", "TAGS", "BEFORE", "TAGS", "AFTER"]
    assert out[2].split() == ["dev-web", "env=dev", "env=dev,team=blue"]
    assert out[3].split() == ["dev-db", "team=blue", "(unchanged)"]


def test_one_host_changed_now_uses_the_one_host_call(capsys: pytest.CaptureFixture[str]) -> None:
    host = pb.Host(id="h-1", name="web-1", tags={"env": "prod", "tier": "frontend"})
    client, stub = make_client({"TagHost": host})
    assert run(client, "hosts", "tag", "web-1", "tier=frontend", "role-") == 0
    assert stub.requests == [("TagHost", pb.TagHostRequest(host="web-1", set={"tier": "frontend"}, remove=["role"]))]
    assert capsys.readouterr().out == "web-1: env=prod,tier=frontend\n"
    # A dry run of one host goes through the many-host call, which can say what would change.
    client, stub = make_client({"TagHosts": CHANGES})
    run(client, "hosts", "tag", "web-1", "tier=frontend", "--dry-run")
    assert stub.requests[0][1].target == pb.Target(hosts=["web-1"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["team=blue"], "which hosts?"),
        ([], "which hosts?"),
        (["web-1"], "no tag change given"),
        (["--all"], "no tag change given"),
    ],
)
def test_a_tag_command_without_hosts_or_changes_is_refused_before_any_call(argv: list[str], message: str) -> None:
    client, stub = make_client({})
    with pytest.raises(InvalidInput, match=message):
        run(client, "hosts", "tag", *argv)
    assert stub.requests == []


def test_deregister_without_a_terminal_needs_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    client, stub = make_client({"DeregisterHost": pb.Host(id="h-1", name="web-1")})
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(InvalidInput, match="without confirmation") as refused:
        run(client, "hosts", "deregister", "web-1")
    assert "--yes" in refused.value.hint and stub.requests == []
    assert run(client, "hosts", "deregister", "web-1", "--yes") == 0
    assert stub.requests == [("DeregisterHost", pb.DeregisterHostRequest(host="web-1"))]
