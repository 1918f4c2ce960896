"""Unit tests of how commands are launched: POSIX and Windows argv, environment, users, flags."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleetops.agent.commands.platform import (
    EXIT_CANNOT_EXECUTE,
    EXIT_NOT_FOUND,
    EXIT_NOT_STARTED,
    CommandNotStarted,
    explain_spawn_failure,
)
from fleetops.agent.commands.posix import DEFAULT_PATH, PosixPlatform, UserDatabase
from fleetops.agent.commands.windows import (
    CREATE_NEW_PROCESS_GROUP,
    CTRL_BREAK_EVENT,
    UTF8_BOM,
    WindowsPlatform,
    kill_tree_argv,
)
from fleetops.v1 import agent_pb2

ACCOUNTS = {
    "root": SimpleNamespace(pw_name="root", pw_uid=0, pw_gid=0, pw_dir="/root", pw_shell="/bin/bash"),
    "alice": SimpleNamespace(pw_name="alice", pw_uid=1000, pw_gid=1000, pw_dir="/home/alice", pw_shell="/bin/zsh"),
}


def users(euid: int) -> UserDatabase:
    by_uid = {entry.pw_uid: entry for entry in ACCOUNTS.values()}
    return UserDatabase(
        getpwnam=lambda name: ACCOUNTS[name],
        getpwuid=lambda uid: by_uid[uid],
        geteuid=lambda: euid,
        getegid=lambda: euid,
        getgrouplist=lambda name, gid: [gid, 27, 100],
    )


def posix(euid: int = 0) -> PosixPlatform:
    return PosixPlatform(users=users(euid), lang="en_US.UTF-8")


def invocation(**fields: object) -> agent_pb2.RunInvocation:
    return agent_pb2.RunInvocation(invocation_id="inv-1", **fields)


# -- POSIX ----------------------------------------------------------------------------------------


def test_posix_runs_an_argv_directly_in_a_new_session() -> None:
    launch = posix().build_launch(invocation(argv=["ls", "-l", "a b"], cwd="/srv"), None)
    assert launch.argv == ("ls", "-l", "a b")  # no shell: spaces stay inside their argument
    assert launch.cwd == "/srv"
    assert launch.options == {"start_new_session": True}


def test_posix_runs_a_script_with_sh() -> None:
    launch = posix().build_launch(invocation(script=b"echo hi\n"), Path("/tmp/fleetops-script-x.sh"))
    assert launch.argv == ("/bin/sh", "/tmp/fleetops-script-x.sh")


def test_posix_environment_is_a_minimal_base_plus_the_given_variables() -> None:
    launch = posix().build_launch(invocation(argv=["env"], env={"FOO": "bar", "PATH": "/opt/bin"}), None)
    assert launch.env == {
        "PATH": "/opt/bin",  # the invocation's variables win
        "LANG": "en_US.UTF-8",
        "HOME": "/root",
        "USER": "root",
        "LOGNAME": "root",
        "SHELL": "/bin/bash",
        "FOO": "bar",
    }
    assert posix().build_launch(invocation(argv=["env"]), None).env["PATH"] == DEFAULT_PATH


def test_posix_run_as_switches_user_group_and_supplementary_groups() -> None:
    launch = posix(euid=0).build_launch(invocation(argv=["id"], run_as="alice"), None)
    assert launch.options == {
        "start_new_session": True,
        "user": 1000,
        "group": 1000,
        "extra_groups": [1000, 27, 100],
    }
    assert (launch.env["HOME"], launch.env["USER"], launch.env["LOGNAME"], launch.env["SHELL"]) == (
        "/home/alice",
        "alice",
        "alice",
        "/bin/zsh",
    )
    assert posix(euid=0).script_owner(invocation(script=b"id", run_as="alice")) == (1000, 1000)


def test_posix_run_as_oneself_needs_no_switch() -> None:
    launch = posix(euid=1000).build_launch(invocation(argv=["id"], run_as="alice"), None)
    assert "user" not in launch.options
    assert posix(euid=1000).script_owner(invocation(script=b"id", run_as="alice")) is None


def test_posix_run_as_another_user_needs_root() -> None:
    with pytest.raises(CommandNotStarted, match="cannot run as root: the agent does not run as root") as caught:
        posix(euid=1000).build_launch(invocation(argv=["id"], run_as="root"), None)
    assert caught.value.exit_status == EXIT_NOT_STARTED


def test_posix_run_as_an_unknown_user_fails() -> None:
    with pytest.raises(CommandNotStarted, match="^no such user: mallory$"):
        posix().build_launch(invocation(argv=["id"], run_as="mallory"), None)


def test_posix_default_working_directory_is_the_users_home_when_it_exists(tmp_path: Path) -> None:
    home = SimpleNamespace(pw_name="bob", pw_uid=0, pw_gid=0, pw_dir=str(tmp_path), pw_shell="")
    gone = SimpleNamespace(pw_name="bob", pw_uid=0, pw_gid=0, pw_dir="/no/such/home", pw_shell="")
    for entry, expected in ((home, str(tmp_path)), (gone, "/")):
        platform = PosixPlatform(users=UserDatabase(getpwuid=lambda uid, e=entry: e, geteuid=lambda: 0))
        launch = platform.build_launch(invocation(argv=["pwd"]), None)
        assert launch.cwd == expected
        assert launch.env["SHELL"] == "/bin/sh"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "neither an argv nor a script"),
        ({"argv": ["ls"], "script": b"ls"}, "both an argv and a script"),
        ({"argv": [""]}, "program name"),
    ],
)
def test_an_invocation_must_name_exactly_one_thing_to_run(fields: dict, message: str) -> None:
    with pytest.raises(CommandNotStarted, match=message):
        posix().build_launch(invocation(**fields), None)
    with pytest.raises(CommandNotStarted, match=message):
        WindowsPlatform(environ={}).build_launch(invocation(**fields), None)


def test_a_script_file_is_private_and_handed_to_the_target_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    platform = PosixPlatform(script_dir=tmp_path / "scripts", users=users(euid=0))
    path = platform.write_script(invocation(script=b"\x00binary-safe\n", run_as="alice"))
    try:
        # Not in the agent's 0700 state directory, which alice could not enter.
        assert path.parent == Path(tempfile.gettempdir()) and path.suffix == ".sh"
        assert path.read_bytes() == b"\x00binary-safe\n"
        status = path.stat()
        assert (status.st_uid, status.st_gid, status.st_mode & 0o777) == (1000, 1000, 0o600)
    finally:
        path.unlink()


def test_the_scripts_directory_is_created_private_and_again_after_it_was_deleted(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    platform = PosixPlatform(script_dir=scripts, users=users(euid=os.geteuid()))
    for _ in range(2):
        path = platform.write_script(invocation(script=b"echo hi\n"))
        assert path.parent == scripts and path.read_bytes() == b"echo hi\n"
        assert stat.S_IMODE(scripts.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        shutil.rmtree(scripts)  # an operator cleaning up while the agent runs


def test_a_scripts_directory_open_to_others_is_tightened(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir(mode=0o755)
    scripts.chmod(0o777)
    PosixPlatform(script_dir=scripts, users=users(euid=os.geteuid())).write_script(invocation(script=b"true\n"))
    assert stat.S_IMODE(scripts.stat().st_mode) == 0o700


def test_a_scripts_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "scripts").symlink_to(elsewhere)
    platform = PosixPlatform(script_dir=tmp_path / "scripts", users=users(euid=os.geteuid()))
    with pytest.raises(CommandNotStarted, match="is not a directory; remove it"):
        platform.write_script(invocation(script=b"true\n"))
    assert list(elsewhere.iterdir()) == []


def test_a_missing_state_directory_is_explained(tmp_path: Path) -> None:
    platform = PosixPlatform(script_dir=tmp_path / "gone" / "scripts", users=users(euid=os.geteuid()))
    with pytest.raises(CommandNotStarted, match="cannot create the scripts directory .*No such file"):
        platform.write_script(invocation(script=b"true\n"))


@pytest.mark.parametrize(
    ("error", "exit_status", "reason"),
    [
        (FileNotFoundError(2, "No such file or directory", "prog"), EXIT_NOT_FOUND, "command not found: prog"),
        (FileNotFoundError(2, "No such file", "/w"), EXIT_NOT_FOUND, "working directory not found: /w"),
        (
            NotADirectoryError(20, "Not a directory", "/w"),
            EXIT_CANNOT_EXECUTE,
            "working directory is not a directory: /w",
        ),
        (PermissionError(13, "Permission denied", "prog"), EXIT_CANNOT_EXECUTE, "permission denied: prog"),
        (
            PermissionError(13, "Permission denied", "/w"),
            EXIT_CANNOT_EXECUTE,
            "permission denied: working directory /w",
        ),
        (OSError(8, "Exec format error", "prog"), EXIT_CANNOT_EXECUTE, "cannot start prog: Exec format error"),
        (ValueError("embedded null byte"), EXIT_NOT_STARTED, "invalid command: embedded null byte"),
    ],
)
def test_spawn_failures_are_explained_with_the_shells_exit_codes(
    error: Exception, exit_status: int, reason: str
) -> None:
    explained = explain_spawn_failure(error, "prog", "/w")
    assert (explained.exit_status, explained.message) == (exit_status, reason)


# -- Windows --------------------------------------------------------------------------------------

WINDOWS_ENV = {
    "SYSTEMROOT": r"C:\Windows",  # os.environ on Windows is case-insensitive (and upper-cases keys)
    "Path": r"C:\Windows\system32",
    "TEMP": r"C:\Temp",
    "SECRET_AGENT_TOKEN": "must not leak",
}


def test_windows_runs_a_script_with_powershell_from_a_file() -> None:
    platform = WindowsPlatform(environ=WINDOWS_ENV)
    launch = platform.build_launch(invocation(script=b"Get-Date"), Path(r"C:\Temp\fleetops-script-1.ps1"))
    assert launch.argv == (
        "powershell.exe",
        "-NoLogo",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-File",
        r"C:\Temp\fleetops-script-1.ps1",
    )
    assert launch.options == {"creationflags": CREATE_NEW_PROCESS_GROUP}
    assert platform.reboot_exit_code == 3010 and platform.script_suffix == ".ps1"


def test_windows_runs_an_argv_directly_with_a_filtered_environment() -> None:
    launch = WindowsPlatform(environ=WINDOWS_ENV).build_launch(
        invocation(argv=["ipconfig", "/all"], env={"FOO": "1"}, cwd=r"C:\srv"), None
    )
    assert launch.argv == ("ipconfig", "/all")
    assert launch.cwd == r"C:\srv"
    assert launch.env == {"SystemRoot": r"C:\Windows", "PATH": r"C:\Windows\system32", "TEMP": r"C:\Temp", "FOO": "1"}


def test_windows_refuses_run_as() -> None:
    platform = WindowsPlatform(environ={})
    with pytest.raises(CommandNotStarted, match="cannot run as alice: running as another user is not supported"):
        platform.build_launch(invocation(argv=["whoami"], run_as="alice"), None)
    with pytest.raises(CommandNotStarted):
        platform.script_owner(invocation(script=b"whoami", run_as="alice"))


def test_windows_stops_with_ctrl_break_then_kills_the_tree_with_taskkill() -> None:
    calls: list[tuple] = []
    platform = WindowsPlatform(
        environ={},
        runner=lambda argv, **kwargs: calls.append(("run", argv, kwargs)),
        send_signal=lambda pid, signum: calls.append(("signal", pid, signum)),
    )
    platform.terminate_group(4321)
    platform.kill_group(4321)
    assert calls == [
        ("signal", 4321, CTRL_BREAK_EVENT),
        ("run", ["taskkill", "/T", "/F", "/PID", "4321"], {"capture_output": True, "check": False, "timeout": 60}),
    ]
    assert kill_tree_argv(7) == ["taskkill", "/T", "/F", "/PID", "7"]


def test_windows_terminate_ignores_a_process_without_a_console() -> None:
    tried: list[int] = []

    def refuse(pid: int, signum: int) -> None:
        tried.append(pid)
        raise OSError(87, "The parameter is incorrect")

    WindowsPlatform(environ={}, send_signal=refuse).terminate_group(4321)  # no exception: the kill follows
    assert tried == [4321]


@pytest.mark.parametrize(
    ("script", "written"),
    [
        (b"Write-Output hi", b"Write-Output hi"),
        ("Write-Output 'gr\u00fc\u00df'".encode(), UTF8_BOM + "Write-Output 'gr\u00fc\u00df'".encode()),
        (UTF8_BOM + b"Write-Output \xc3\xa9", UTF8_BOM + b"Write-Output \xc3\xa9"),
        (b"Write-Output \xe9", b"Write-Output \xe9"),  # not UTF-8: left as it is
    ],
)
def test_windows_marks_utf8_scripts_with_a_bom(script: bytes, written: bytes) -> None:
    assert WindowsPlatform(environ={}).script_bytes(invocation(script=script)) == written


def test_windows_writes_scripts_into_its_scripts_directory_creating_it(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    platform = WindowsPlatform(script_dir=scripts, environ=WINDOWS_ENV)
    path = platform.write_script(invocation(script="Write-Output 'héllo'\n".encode()))
    assert path.parent == scripts and path.suffix == ".ps1"
    assert path.read_bytes() == UTF8_BOM + "Write-Output 'héllo'\n".encode()
    launch = platform.build_launch(invocation(script=b"x"), path)
    assert launch.argv[-1] == str(path)
