"""``opsctl completion bash|zsh|fish``: scripts generated from the real parser, host names from the controller."""

from __future__ import annotations

import argparse

import pytest

from fleetops.common.errors import Unavailable
from fleetops.opsctl import cli, completion
from fleetops.v1 import operator_pb2 as pb


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_every_shell_gets_a_script_naming_the_commands(shell: str) -> None:
    text = completion.script(shell)
    for word in ("session", "window", "patch", "completion", "whoami", "--output"):
        assert word in text, (shell, word)
    assert "_opsctl_host_names" in text or "--host-names" in text  # host names complete


def test_bash_script_knows_nested_subcommands_and_choices() -> None:
    text = completion.script("bash")
    assert "_shtab_opsctl_window_task_subparsers=(add list remove)" in text
    assert "_shtab_opsctl_window_list__o_choices=(text json)" in text  # -o completes its choices
    assert "_shtab_opsctl_session_connect_pos_0_COMPGEN=_opsctl_host_names" in text
    assert "_shtab_opsctl_run___host_COMPGEN=_opsctl_host_names" in text


def test_session_subcommands_are_described_though_argparse_checks_no_choices() -> None:
    parser = cli.build_parser()
    completion._prepare(parser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    session = sub._name_parser_map["session"]
    session_sub = next(a for a in session._actions if isinstance(a, argparse._SubParsersAction))
    assert session_sub.choices is not None and set(session_sub.choices) >= {"connect", "list", "export"}


class Hosts:
    def __init__(self, *names: str) -> None:
        self.names = names

    def list_hosts(self) -> list[pb.Host]:
        return [pb.Host(name=n) for n in self.names]


def test_only_shell_safe_host_names_are_offered() -> None:
    hostile = ["web-2", "web-1", "$(rm -rf ~)", "a b", "x\ny", "-o", "db_1.example.com", "`id`", ""]
    assert completion.host_names(Hosts(*hostile)) == ["db_1.example.com", "web-1", "web-2"]  # type: ignore[arg-type]  # a fake client


def test_no_controller_means_no_names_and_no_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(profile: str | None) -> None:
        raise Unavailable("the controller at localhost:7443 is unreachable")

    monkeypatch.setattr(completion, "load_profile", unreachable)
    assert cli.main(["completion", "--host-names"]) == 1
    assert capsys.readouterr() == ("", "")


def test_a_shell_must_be_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion"]) == 2
    err = capsys.readouterr().err
    assert "opsctl completion bash|zsh|fish" in err and "completions/opsctl" in err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["completion", "tcsh"])
