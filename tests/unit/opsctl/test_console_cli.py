"""``opsctl console``: prints the link, and opens a browser only where a graphical one can open."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleetops.opsctl import console
from fleetops.opsctl.cli import build_parser
from fleetops.v1 import operator_pb2 as pb

URL = "https://fleet.example.com:7445/login?t=abc"


class FakeClient:
    def __init__(self) -> None:
        self.profile = SimpleNamespace(directory=Path("/profiles/default"))

    def create_console_link(self) -> pb.ConsoleLink:
        return pb.ConsoleLink(url=URL)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    urls: list[str] = []
    monkeypatch.setattr(console.webbrowser, "open", urls.append)
    return urls


def run(*argv: str) -> int:
    args = build_parser().parse_args(["console", *argv])
    return int(args.func(FakeClient(), args))


def test_the_link_is_printed_alone_on_stdout_and_opened_with_a_display(
    capsys: pytest.CaptureFixture[str], opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    assert run() == 0
    out = capsys.readouterr()
    assert out.out == URL + "\n" and "/profiles/default/ca.pem" in out.err
    assert opened == [URL]


@pytest.mark.parametrize("argv", [("--no-browser",), ("-o", "json")])
def test_no_browser_is_opened_when_asked_not_to_or_for_json(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str], opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    assert run(*argv) == 0
    out = capsys.readouterr().out
    assert URL in (json.loads(out)["url"] if argv[0] == "-o" else out)
    assert opened == []


def test_a_terminal_without_a_display_never_gets_a_text_browser(
    capsys: pytest.CaptureFixture[str], opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert run() == 0
    assert capsys.readouterr().out == URL + "\n" and opened == []
