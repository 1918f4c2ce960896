"""``-o`` means the same on every opsctl command: the output format, text (default) or json (or yaml where a
document is shown), never a file or ``table``; every read command has ``-o json``."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from fleetops.common.profile import Profile
from fleetops.opsctl import cli
from fleetops.v1 import operator_pb2 as pb

#: Read commands (list/show/...): each must offer -o json.
READ_VERBS = {"list", "show", "compliance", "next", "history", "whoami", "verify"}


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(``"window task list"``, its parser) for every command that runs (has no subcommands)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
    for action in subs:
        for name, child in action._name_parser_map.items():
            yield from commands(child, (*path, name))


ALL = dict(commands(cli.build_parser()))


def output_action(parser: argparse.ArgumentParser) -> argparse.Action | None:
    return next((a for a in parser._actions if "-o" in a.option_strings or "--output" in a.option_strings), None)


def test_the_walk_sees_every_group() -> None:
    assert {name.split()[0] for name in ALL} >= {"hosts", "run", "session", "patch", "window", "admin", "completion"}
    assert "session export" in ALL and "window task list" in ALL


@pytest.mark.parametrize("name", sorted(n for n, p in ALL.items() if output_action(p) is not None))
def test_every_o_is_text_or_json(name: str) -> None:
    action = output_action(ALL[name])
    assert action is not None
    assert action.option_strings == ["-o", "--output"], name
    assert action.choices is not None and tuple(action.choices)[:2] == ("text", "json"), (name, action.choices)
    assert set(action.choices) <= {"text", "json", "yaml"}, (name, action.choices)
    assert action.default == "text", name


@pytest.mark.parametrize("name", sorted(n for n in ALL if n.split()[-1] in READ_VERBS))
def test_every_read_command_has_json(name: str) -> None:
    action = output_action(ALL[name])
    assert action is not None and "json" in (action.choices or ()), f"opsctl {name} has no -o json"


class WhoAmIClient:
    profile = Profile(Path("/nonexistent"), "ctl.example:7443", "alice")

    def whoami(self) -> pb.WhoAmIResponse:
        return pb.WhoAmIResponse(
            operator="alice",
            certificate_expires_at=Timestamp(seconds=int(datetime(2030, 1, 2, tzinfo=UTC).timestamp())),
        )


def test_whoami_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.build_parser().parse_args(["whoami", "-o", "json"])
    assert args.func(WhoAmIClient(), args) == 0
    assert json.loads(capsys.readouterr().out) == {
        "operator": "alice",
        "controller": "ctl.example:7443",
        "certificate_expires_at": "2030-01-02T00:00:00Z",
    }
    args = cli.build_parser().parse_args(["whoami"])
    assert args.func(WhoAmIClient(), args) == 0
    assert capsys.readouterr().out == "alice at ctl.example:7443 (certificate expires 2030-01-02 00:00:00Z)\n"


def test_table_is_no_longer_a_choice() -> None:
    err = io.StringIO()
    parser = cli.build_parser()
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(err):
        parser.parse_args(["window", "list", "-o", "table"])
    assert exc.value.code == 2 and "invalid choice: 'table'" in err.getvalue()
