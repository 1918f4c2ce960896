"""``output.emit``: the one helper every command's ``-o`` goes through."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import pytest

from fleetops.opsctl import output
from fleetops.v1 import operator_pb2 as pb


def args(fmt: str) -> argparse.Namespace:
    return argparse.Namespace(output=fmt)


class Calls:
    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self, name: str, value: Any = None) -> Any:
        def record() -> Any:
            self.made.append(name)
            return value

        return record


def test_json_prints_a_message_as_message_dict_and_never_renders_text() -> None:
    calls, out = Calls(), io.StringIO()
    host = pb.Host(name="web-1", status=pb.HOST_STATUS_ONLINE)
    output.emit(args("json"), host, calls("text"), out=out)
    assert json.loads(out.getvalue()) == output.message_dict(host)
    assert out.getvalue() == json.dumps(output.message_dict(host), indent=2, sort_keys=True) + "\n"
    assert calls.made == []


def test_json_of_a_list_of_messages_and_of_a_built_document() -> None:
    out = io.StringIO()
    output.emit(args("json"), [pb.Host(name="a"), pb.Host(name="b")], lambda: None, out=out)
    assert [h["name"] for h in json.loads(out.getvalue())] == ["a", "b"]
    out = io.StringIO()
    output.emit(args("json"), {"b": 1, "a": [pb.Host(name="x").name]}, lambda: None, out=out)
    assert out.getvalue() == '{\n  "a": [\n    "x"\n  ],\n  "b": 1\n}\n'


def test_a_lazy_document_is_built_only_for_json() -> None:
    calls = Calls()
    output.emit(args("text"), calls("doc", {"x": 1}), calls("text"))
    assert calls.made == ["text"]
    out = io.StringIO()
    output.emit(args("json"), calls("doc", {"x": 1}), calls("text"), out=out)
    assert calls.made == ["text", "doc"]
    assert json.loads(out.getvalue()) == {"x": 1}


def test_yaml_goes_to_the_yaml_renderer_and_is_a_programming_error_without_one() -> None:
    calls = Calls()
    output.emit(args("yaml"), {}, calls("text"), yaml=calls("yaml"))
    assert calls.made == ["yaml"]
    with pytest.raises(AssertionError, match="without a YAML form"):
        output.emit(args("yaml"), {}, calls("text"))


def test_text_is_the_default_when_a_command_has_no_output_flag(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit(argparse.Namespace(), pb.Host(), lambda: print("a table"))
    assert capsys.readouterr().out == "a table\n"


def test_duration_writes_every_unit_largest_first() -> None:
    assert [output.duration(s) for s in (0, -5, 59, 3600, 5400, 90061)] == [
        "0s",
        "0s",
        "59s",
        "1h",
        "1h30m",
        "1d1h1m1s",
    ]
