"""Host-reported text is printed with control characters escaped (unless --raw)."""

from __future__ import annotations

import argparse
import io

import pytest

from fleetops.opsctl import output


class Terminal(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.buffer = io.BytesIO()

    def isatty(self) -> bool:
        return True


class Pipe(Terminal):
    def isatty(self) -> bool:
        return False


@pytest.fixture(autouse=True)
def not_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "RAW", False)


def test_controls_are_escaped_visibly() -> None:
    hostile = "web\n\x1b[2K\x1b[32monline\x1b[0m\t\x07\x9b\u202eevil\r"
    assert output.neutralize(hostile) == "web\\x0a\\x1b[2K\\x1b[32monline\\x1b[0m\\x09\\x07\\x9b\\u202eevil\\x0d"
    assert output.neutralize("a\n\tb\x1b", keep_layout=True) == "a\n\tb\\x1b"
    assert output.neutralize("plain ünïcode ✓") == "plain ünïcode ✓"


def test_fields_are_always_escaped_command_output_only_on_a_terminal() -> None:
    assert output.host_text("a\x1bb") == "a\\x1bb"
    assert output.host_text("a\x1bb\n", out=Terminal(), keep_layout=True) == "a\\x1bb\n"
    assert output.host_text("a\x1bb", out=Pipe()) == "a\x1bb"


def test_raw_opts_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "RAW", True)
    assert output.host_text("a\x1bb") == "a\x1bb"


def test_host_output_keeps_characters_split_between_chunks() -> None:
    term = Terminal()
    sink = output.HostOutput(term)
    for chunk in (b"ok \xe2\x9c", b"\x93 \x1b[31mred\n", b"\xc2", b"\x9b"):
        sink.write(chunk)
    sink.flush()
    assert term.getvalue() == "ok ✓ \\x1b[31mred\n\\x9b"
    pipe = Pipe()
    sink = output.HostOutput(pipe)
    sink.write(b"\x1b[31m")
    sink.flush()
    assert pipe.buffer.getvalue() == b"\x1b[31m" and pipe.getvalue() == ""


def test_raw_follows_each_parse() -> None:
    parser = argparse.ArgumentParser()
    seen: list[bool] = []
    parser.set_defaults(func=lambda client, args: seen.append(output.RAW) or 0)
    output.add_raw_argument(parser)
    for argv in (["--raw"], []):
        args = parser.parse_args(argv)
        args.func(None, args)
    assert seen == [True, False]
