"""``opsctl association``: the request ``create`` builds, the checks made before sending, and the output."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.opsctl import association
from fleetops.opsctl.cli import build_parser
from fleetops.v1 import operator_pb2 as pb


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


class FakeClient:
    def __init__(self) -> None:
        self.sent: list[pb.Association] = []

    def create_association(self, request: pb.Association) -> pb.Association:
        self.sent.append(request)
        return pb.Association(id="assoc-1", name=request.name, document=request.document)

    def get_association(self, key: str) -> pb.AssociationDetail:
        return pb.AssociationDetail(
            association=pb.Association(
                id="assoc-1", name=key, document="keep", target=pb.Target(selector="role=web"),
                schedule="rate(30 minutes)", author="operator:alice", status="drifted",
                counts={"compliant": 1, "drifted": 1}, check_interval_seconds=300,
            ),
            hosts=[
                pb.AssociationHostStatus(host_name="web-1", status="compliant", last_command_id="cmd-1"),
                pb.AssociationHostStatus(host_name="web-2", status="drifted", detail="marker\x1b[2J missing"),
            ],
        )  # fmt: skip


def run(client: Any, *argv: str) -> int:
    args = parse(*argv)
    result: int = args.func(client, args)
    return result


def test_create_sends_the_flags_as_one_association_and_prints_its_id(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient()
    argv = ["association", "create", "web", "--doc", "keep:2", "--target", "role=web", "--schedule", "rate(1 hour)"]
    assert run(client, *argv, "--param", "a=1", "--param", "b=x=y", "--max-errors", "10%", "--check-every", "5m") == 0
    sent = client.sent[0]
    assert (sent.name, sent.document, sent.target.selector, sent.schedule) == (
        "web",
        "keep:2",
        "role=web",
        "rate(1 hour)",
    )
    assert dict(sent.parameters) == {"a": "1", "b": "x=y"} and sent.max_errors == "10%"
    assert sent.check_interval_seconds == 300
    assert capsys.readouterr().out == "assoc-1\n"
    run(client, "association", "create", "--doc", "keep", "--all", "--schedule", "rate(1 hour)", "-o", "json")
    assert json.loads(capsys.readouterr().out)["id"] == "assoc-1"
    assert client.sent[1].check_interval_seconds == 0 and client.sent[1].target.all


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "no target given"),
        (("--all", "--target", "role=web"), "only one of"),
        (("--all", "--param", "novalue"), "bad --param 'novalue'"),
        (("--all", "--max-concurrency", "0"), "max-concurrency"),
        (("--all", "--check-every", "soon"), "--check-every: bad duration"),
    ],
)
def test_create_refuses_bad_flags_before_sending(extra: tuple[str, ...], message: str) -> None:
    client = FakeClient()
    with pytest.raises(InvalidInput, match=message):
        run(client, "association", "create", "--doc", "keep", "--schedule", "rate(1 hour)", *extra)
    assert client.sent == []


def test_check_every() -> None:
    assert association.check_every("") == 0 and association.check_every("0") == 0
    assert association.check_every("1h30m") == 5400


def test_show_prints_the_association_and_each_host_with_host_text_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    run(FakeClient(), "association", "show", "web")
    out = capsys.readouterr().out
    assert "drifted (1 compliant, 1 drifted)" in out and "every 5m" in out and "keep (its default version)" in out
    assert "marker\\x1b[2J missing" in out and "\x1b" not in out
