"""Unit tests of what a POSIX session starts: login shell, command, environment, user switch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fleetops.agent.commands.posix import DEFAULT_PATH, UserDatabase
from fleetops.agent.sessions.posix_launch import build_posix_launch
from fleetops.common.errors import InvalidInput, NotFound, PermissionDenied

ACCOUNTS = {
    "root": SimpleNamespace(pw_name="root", pw_uid=0, pw_gid=0, pw_dir="/root", pw_shell="/bin/bash"),
    "alice": SimpleNamespace(pw_name="alice", pw_uid=1000, pw_gid=1000, pw_dir="/home/alice", pw_shell="/bin/zsh"),
    "daemon": SimpleNamespace(pw_name="daemon", pw_uid=1, pw_gid=1, pw_dir="/usr/sbin", pw_shell="/usr/sbin/nologin"),
    "noshell": SimpleNamespace(pw_name="noshell", pw_uid=1001, pw_gid=1001, pw_dir="/home/noshell", pw_shell=""),
}


def users(euid: int = 0) -> UserDatabase:
    by_uid = {entry.pw_uid: entry for entry in ACCOUNTS.values()}
    return UserDatabase(
        getpwnam=lambda name: ACCOUNTS[name],
        getpwuid=lambda uid: by_uid[uid],
        geteuid=lambda: euid,
        getegid=lambda: euid,
        getgrouplist=lambda name, gid: [gid, 27, 100],
    )


def launch(user: str | None = None, command: str | None = None, *, euid: int = 0, **kwargs: object):  # type: ignore[no-untyped-def]
    options = {"term": "xterm-256color", "env": {}, "users": users(euid), "agent_environ": {}, "isdir": lambda p: True}
    options.update(kwargs)
    return build_posix_launch(user, command, **options)  # type: ignore[arg-type]


def test_interactive_session_runs_the_login_shell_as_a_login_shell() -> None:
    result = launch("alice")
    assert result.executable == "/bin/zsh"
    assert result.argv == ("-zsh",)  # the leading dash makes it read /etc/profile and ~/.profile
    assert result.cwd == "/home/alice"


def test_command_runs_through_the_shell_with_c() -> None:
    result = launch("alice", "ls -l 'a b' | wc -l")
    assert result.executable == "/bin/zsh"
    assert result.argv == ("zsh", "-c", "ls -l 'a b' | wc -l")


def test_environment_is_the_login_environment_of_the_account() -> None:
    result = launch("alice", agent_environ={"LANG": "de_DE.UTF-8", "SECRET": "agent-only"})
    assert result.env == {
        "TERM": "xterm-256color",
        "HOME": "/home/alice",
        "USER": "alice",
        "LOGNAME": "alice",
        "SHELL": "/bin/zsh",
        "PATH": DEFAULT_PATH,
        "LANG": "de_DE.UTF-8",
    }


def test_lang_is_left_out_when_the_agent_has_none() -> None:
    assert "LANG" not in launch("alice").env


def test_requested_variables_are_added_and_may_replace_lang_and_path() -> None:
    result = launch("alice", env={"LC_ALL": "C.UTF-8", "LANG": "C", "PATH": "/opt/bin"}, agent_environ={"LANG": "x"})
    assert result.env["LC_ALL"] == "C.UTF-8"
    assert result.env["LANG"] == "C"
    assert result.env["PATH"] == "/opt/bin"


@pytest.mark.parametrize("name", ["HOME", "USER", "LOGNAME", "SHELL", "TERM", "home"])
def test_identity_variables_cannot_be_replaced(name: str) -> None:
    with pytest.raises(InvalidInput, match=f"{name} cannot be set"):
        launch("alice", env={name: "x"})


@pytest.mark.parametrize("env", [{"": "x"}, {"A=B": "x"}, {"A": "x\0y"}])
def test_malformed_variables_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        launch("alice", env=env)


def test_switching_user_sets_uid_gid_and_the_users_own_groups() -> None:
    result = launch("alice")
    assert result.options == {"user": 1000, "group": 1000, "extra_groups": [1000, 27, 100]}
    assert result.user.switch


def test_own_account_needs_no_switch() -> None:
    result = launch(None, euid=1000)
    assert result.user.name == "alice"
    assert result.options == {}
    assert launch("alice", euid=1000).options == {}


def test_switching_user_without_root_is_refused() -> None:
    with pytest.raises(PermissionDenied, match="does not run as root") as caught:
        launch("root", euid=1000)
    assert caught.value.hint


def test_unknown_user_is_not_found() -> None:
    with pytest.raises(NotFound, match="no such user on this host: mallory"):
        launch("mallory")


def test_an_account_without_a_login_shell_is_refused() -> None:
    with pytest.raises(PermissionDenied, match=r"daemon has no login shell \(/usr/sbin/nologin\)"):
        launch("daemon")


def test_an_empty_shell_field_means_bin_sh() -> None:
    assert launch("noshell").argv == ("-sh",)


def test_a_missing_home_starts_in_the_root_directory() -> None:
    result = launch("alice", isdir=lambda path: False)
    assert result.cwd == "/"
    assert result.env["HOME"] == "/home/alice"


@pytest.mark.parametrize("term", ["", "xterm 256", "x=y", "é", "a" * 65, "xterm\n"])
def test_malformed_terminal_types_are_refused(term: str) -> None:
    with pytest.raises(InvalidInput, match="terminal type"):
        launch("alice", term=term)


@pytest.mark.parametrize("command", ["", "   ", "echo\0hi"])
def test_malformed_commands_are_refused(command: str) -> None:
    with pytest.raises(InvalidInput):
        launch("alice", command)
