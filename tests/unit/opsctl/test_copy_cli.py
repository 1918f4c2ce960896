"""`opsctl cp` without a host: which side is remote, the login, and the progress line."""

from __future__ import annotations

import io

import pytest

from fleetops.common.errors import InvalidInput
from fleetops.opsctl import cli, copy


def test_host_colon_path_is_remote_and_a_path_with_a_slash_first_is_local() -> None:
    assert copy.parse_remote("web-1:/tmp/x") == copy.RemotePath("web-1", "/tmp/x")
    assert copy.parse_remote("deploy@web-1.fleet:rel/x") == copy.RemotePath("web-1", "rel/x", "deploy")
    assert copy.parse_remote("web-1:") == copy.RemotePath("web-1", "")
    assert copy.parse_remote("./a:b") is None
    assert copy.parse_remote("/srv/a:b") is None
    assert copy.parse_remote("plain.txt") is None


def test_upload_and_download_and_the_login() -> None:
    up = copy.parse_spec("./app.tar", "web-1:/srv/", recursive=True)
    assert up.upload and up.local == "./app.tar" and up.remote.path == "/srv/" and up.recursive
    assert up.login == copy.DEFAULT_LOGIN

    down = copy.parse_spec("deploy@web-1:/var/log/app.log", "logs/")
    assert not down.upload and down.local == "logs/" and down.remote.host == "web-1"
    assert down.login == "deploy"

    assert copy.parse_spec("a", "web-1:b", login="ops").login == "ops"
    assert copy.parse_spec("a", "ops@web-1:b", login="ops").login == "ops"


@pytest.mark.parametrize(
    ("src", "dst", "login", "words"),
    [
        ("a", "b", "", "neither"),
        ("web-1:a", "web-2:b", "", "both"),
        ("a", "deploy@web-1:b", "root", "two logins"),
        ("", "web-1:b", "", "empty"),
    ],
)
def test_what_cannot_be_copied_is_refused_before_connecting(src: str, dst: str, login: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        copy.parse_spec(src, dst, login)
    assert words in caught.value.message
    assert caught.value.hint


def test_the_command_line_parses() -> None:
    args = cli.build_parser().parse_args(["cp", "-r", "--as", "deploy", "--no-verify", "dir", "web-1:/srv"])
    assert (args.src, args.dst, args.recursive, args.login, args.verify) == ("dir", "web-1:/srv", True, "deploy", False)
    assert args.func is copy.copy_command


def test_progress_shows_bytes_and_rate_only_when_enabled() -> None:
    now = [100.0]
    shown = io.StringIO()
    progress = copy.Progress(shown, enabled=True, clock=lambda: now[0])
    progress.start("x -> web-1:/x", 10 * 1024 * 1024)
    now[0] += 2.0
    progress.advance(4 * 1024 * 1024)
    assert "4.0 MiB / 10.0 MiB  2.0 MiB/s" in shown.getvalue()
    progress.finish()
    assert shown.getvalue().endswith("\r\x1b[K")

    quiet = io.StringIO()
    off = copy.Progress(quiet, enabled=False, clock=lambda: now[0])
    off.start("x", 10)
    now[0] += 2.0
    off.advance(5)
    off.finish()
    assert quiet.getvalue() == ""
