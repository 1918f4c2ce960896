"""``-o json`` speaks the words the text output prints: ``online``, not ``HOST_STATUS_ONLINE``."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf.descriptor import EnumDescriptor

from fleetops.opsctl import command, hosts, output
from fleetops.v1 import agent_pb2, enrollment_pb2, operator_pb2
from fleetops.v1 import operator_pb2 as pb


def every_enum() -> list[EnumDescriptor]:
    found: list[EnumDescriptor] = []
    for module in (operator_pb2, agent_pb2, enrollment_pb2):
        found += module.DESCRIPTOR.enum_types_by_name.values()
        for message in module.DESCRIPTOR.message_types_by_name.values():
            found += message.enum_types
    return found


def printed(messages: Any) -> Any:
    out = io.StringIO()
    output.print_json(messages, out)
    return json.loads(out.getvalue())


def test_enum_values_are_lowercase_words_without_their_prefix() -> None:
    assert printed(pb.Host(name="web-1", status=pb.HOST_STATUS_ONLINE))["status"] == "online"
    assert [h["status"] for h in printed([pb.Host(status=pb.HOST_STATUS_OFFLINE), pb.Host()])] == [
        "offline",
        "unspecified",
    ]


def test_enums_inside_nested_and_repeated_messages_are_words_too() -> None:
    detail = pb.CommandDetail(
        command=pb.Command(id="c-1"),
        invocations=[
            pb.Invocation(host_name="web-1", state=pb.INVOCATION_STATE_TIMED_OUT),
            pb.Invocation(host_name="web-2", state=pb.INVOCATION_STATE_NOT_STARTED),
        ],
    )
    doc = output.message_dict(detail)
    assert [i["state"] for i in doc["invocations"]] == ["timed_out", "not_started"]


@pytest.mark.parametrize("enum", every_enum(), ids=lambda e: e.full_name)
def test_every_enum_of_the_wire_gives_a_sensible_word(enum: EnumDescriptor) -> None:
    words = [output.enum_word(enum, v.number) for v in enum.values]
    assert all(isinstance(w, str) and re.fullmatch(r"[a-z][a-z0-9_]*", w) for w in words), words
    assert len(set(words)) == len(words)  # no two values collapse into one word
    assert words[0] == "unspecified"  # the prefix came off: the zero value is <PREFIX>_UNSPECIFIED


def test_the_words_are_those_the_text_output_prints() -> None:
    # Text derives its words from the same function JSON uses; these are the documented ones.
    doc = output.message_dict(pb.Host(status=pb.HOST_STATUS_ONLINE))
    assert doc["status"] == hosts.status_word(pb.HOST_STATUS_ONLINE) == "online"
    assert hosts.status_word(pb.HOST_STATUS_DEREGISTERED) == "deregistered"
    inv = output.message_dict(pb.Invocation(state=pb.INVOCATION_STATE_TIMED_OUT))
    assert inv["state"] == command.STATE[pb.INVOCATION_STATE_TIMED_OUT] == "timed_out"


def test_an_unknown_number_from_a_newer_controller_stays_a_number() -> None:
    assert output.enum_word(pb.HostStatus.DESCRIPTOR, 99) == 99
    assert output.message_dict(pb.Host(status=99))["status"] == 99  # type: ignore[arg-type]  # an open enum: any number goes on the wire


def test_times_and_64_bit_integers_stay_as_protobuf_writes_them() -> None:
    inv = pb.Invocation(stdout_bytes=5)
    inv.started_at.FromDatetime(datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    doc = output.message_dict(inv)
    assert doc["started_at"] == "2026-03-01T08:00:00Z" and doc["stdout_bytes"] == "5"
    paris = timezone(timedelta(hours=1))
    assert output.json_time(datetime(2026, 3, 1, 9, 0, tzinfo=paris)) == "2026-03-01T08:00:00Z"


def test_plural_and_command_line() -> None:
    assert [output.plural(n, "host") for n in (0, 1, 2)] == ["0 hosts", "1 host", "2 hosts"]
    assert output.plural(1, "invocation") == "1 invocation"
    assert output.plural(3, "reply", "replies") == "3 replies"
    assert output.command_line(["sh", "-c", "for i in 1 2; do echo $i; done"]) == (
        "sh -c 'for i in 1 2; do echo $i; done'"
    )
